"""The command line starts without loading torch: help, suite validation and --dry-run answer from
the catalogues (models, regimes, dataset kinds), and heavy libraries load only in the command
that computes."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("torch", "torchvision", "onnx", "onnxruntime", "fvcore", "matplotlib", "sklearn", "pandas", "scipy",
         "timm", "huggingface_hub", "safetensors")  # timm: only for timm:NAME models


def _modules_after(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys\nprint(' '.join(sorted(sys.modules)))"],
                         capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_help_of_every_command_loads_no_heavy_library():
    mods = _modules_after(
        "import contextlib, io\nfrom transfusion.cli.main import COMMANDS, main\n"
        "for argv in ([], *([c, '--help'] for c in COMMANDS)):\n"
        "    with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "        main(list(argv))")
    assert not mods & set(HEAVY), sorted(mods & set(HEAVY))


def test_dry_run_of_the_quick_suite_loads_no_heavy_library():
    mods = _modules_after(
        "import contextlib, io\nfrom transfusion.cli.main import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    assert main(['bench', 'quick', '--dry-run']) == 0")
    assert not mods & set(HEAVY), sorted(mods & set(HEAVY))
