"""The ``transfusion`` command line: one subcommand per module of ``transfusion.cli``.

Each command module defines ``add_parser(subparsers)``, which adds its parser and sets
``func(args) -> int`` as the parser default. Exit codes: 0 success, 1 a run failed,
2 bad input (unknown model, missing data, bad option).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from .common import UsageError

# order here is the order in --help
COMMANDS = (
    "bench",
    "data",
    "profile",
    "train",
    "pretrain",
    "analyze",
    "report",
    "compare",
    "plan",
    "export",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="transfusion",
        description=(
            "Benchmark transfer learning for medical imaging: small CBR networks and "
            "ResNet50 / Inception-v3 under every initialisation regime of Raghu et al. (2019), "
            "with accuracy beside parameters, MACs and measured latency."
        ),
    )
    from transfusion import __version__

    parser.add_argument("--version", action="version", version=f"transfusion {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="on an error, print the full Python traceback after the one-line message")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"transfusion.cli.{name}").add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (UsageError, ValueError, FileNotFoundError) as exc:
        return _fail(args, str(exc), 2)
    except (NotADirectoryError, IsADirectoryError, PermissionError, FileExistsError) as exc:  # a path of the user's
        where = f": {exc.filename}" if exc.filename else ""
        return _fail(args, f"{exc.strerror or exc}{where}; choose another path", 2)
    except KeyboardInterrupt:
        return _fail(args, "interrupted; rerun the same command to resume", 130)


def _fail(args: argparse.Namespace, message: str, code: int) -> int:
    """The one-line error on stderr (the traceback after it with ``--debug``); returns ``code``."""
    if args.debug:
        import traceback

        traceback.print_exc()
    print(f"transfusion {args.command}: error: {message}" if code != 130 else f"transfusion {args.command}: {message}",
          file=sys.stderr)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
