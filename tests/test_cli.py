"""The command line as a product: help for every command, README's commands stay true."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

import pytest

from transfusion.cli.main import COMMANDS, build_parser, main

ROOT = Path(__file__).resolve().parents[1]


def test_top_level_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for name in COMMANDS:
        assert re.search(rf"^\s+{name}\s", out, re.M), name


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_has_help(name, capsys):
    with pytest.raises(SystemExit) as exc:
        main([name, "--help"])
    assert exc.value.code == 0
    assert len(capsys.readouterr().out) > 200


def test_no_command_prints_help_and_exits_2(capsys):
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().out


def test_readme_names_every_command_and_the_two_commands():
    readme = (ROOT / "README.md").read_text()
    for name in COMMANDS:
        assert f"transfusion {name}" in readme, name
    blocks = re.findall(r"```bash\n(.*?)\n```", readme, re.S)
    assert any("transfusion bench" in b and "pip install -e ." in b for b in blocks)
    test_cmd = next(b for b in blocks if "pytest" in b)
    assert test_cmd.strip().splitlines()[-1] in (ROOT / ".ci" / "run").read_text()


def test_module_entry_point_runs():
    out = subprocess.run([sys.executable, "-m", "transfusion", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("transfusion ")


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(sub.choices)


def test_parser_builds_without_side_effects(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    parser = build_parser()
    assert list(tmp_path.iterdir()) == []  # building the parser writes nothing (no runs/, no reports/)
    # one subcommand per command module, in the order of COMMANDS (the order --help shows)
    commands = _subparsers(parser)
    assert list(commands) == list(COMMANDS)
    options = {name: {o for a in p._actions for o in a.option_strings} for name, p in commands.items()}
    # every option in the synopses of README's command table exists on that command
    synopses = re.findall(r"^\| `transfusion (\w+)([^`]*)`", (ROOT / "README.md").read_text(), re.M)
    assert {name for name, _ in synopses} == set(COMMANDS)
    for name, synopsis in synopses:
        named = set(re.findall(r"--[a-z][a-z0-9-]*", synopsis))
        assert named <= options[name], (name, sorted(named - options[name]))
    # and the bench options README describes
    assert {"--dry-run", "--workers", "--executor", "--rerun-failed", "--force"} <= options["bench"]
