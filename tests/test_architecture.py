"""The package's layering, checked by import-linter against the contract in pyproject.toml:
models/data → transfer → stats/cost → train → harness → deploy/analysis → report → cli, with
core below everything. A module importing upwards (or a cycle between packages) fails here."""

from __future__ import annotations

import os
from pathlib import Path

from importlinter.cli import lint_imports

ROOT = Path(__file__).resolve().parents[1]


def test_layers_contract_is_kept(tmp_path, capsys):
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        code = lint_imports(config_filename=str(ROOT / "pyproject.toml"), cache_dir=str(tmp_path), no_logo=True)
    finally:
        os.chdir(cwd)
    out = capsys.readouterr().out
    assert code == 0, out
    assert "1 kept, 0 broken" in out


def test_every_package_is_in_a_layer():
    import tomllib

    layers = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"][0]["layers"]
    named = {name.strip() for layer in layers for name in layer.split("|")}
    packages = {f"transfusion.{p.name}" for p in (ROOT / "transfusion").iterdir()
                if p.is_dir() and (p / "__init__.py").exists()}
    assert packages == named, f"packages outside the contract: {sorted(packages - named)}"


def test_the_declared_python_floor_has_what_it_imports():
    """requires-python admits 3.10, which has no tomllib: one shim (harness.suite, tomli below 3.11,
    declared for those Pythons) is the only place that imports it, and every library the package
    imports at top level directly is declared (PIL came in only through torchvision before)."""
    import re

    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["requires-python"] == ">=3.10"
    deps = " ".join(project["dependencies"])
    assert "tomli>=2.0; python_version < '3.11'" in deps and "pillow" in deps.lower()
    bare = [str(p.relative_to(ROOT)) for p in (ROOT / "transfusion").rglob("*.py")
            if re.search(r"^\s*import tomllib", p.read_text(), re.M)]
    assert bare == ["transfusion/harness/suite.py"], bare
