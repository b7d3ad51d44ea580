"""The command line as a product: help for every command, README's commands stay true."""

from __future__ import annotations

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


def test_parser_builds_without_side_effects():
    parser = build_parser()
    assert parser.prog == "transfusion"
