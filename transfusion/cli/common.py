"""What the command modules share: the usage error, JSON output, store arguments, and user text
made safe for rich (never read as markup)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any


class UsageError(Exception):
    """Bad user input detected by a command; printed without a traceback, exit code 2."""


def emit_json(obj: Any, dest: str | None) -> None:
    """Write ``obj`` as JSON to ``dest``: a path, ``-`` for stdout, or nothing when ``None``."""
    if not dest:
        return
    from transfusion.core.files import to_json, write_text

    text = to_json(obj)
    if dest == "-":
        sys.stdout.write(text + "\n")
    else:
        write_text(dest, text + "\n")


def store_path(text: str) -> Path:
    """A results store argument (the file, or the folder holding ``results.sqlite``)."""
    from transfusion.harness.store import store_file

    try:
        return store_file(text)
    except FileNotFoundError as exc:
        raise UsageError(str(exc)) from None


def safe(text: Any) -> str:
    """``text`` with rich markup escaped, to interpolate into a markup string: a path or dataset
    spec holding ``[/dim]`` prints as written."""
    from rich.markup import escape

    return escape(str(text))


def plain(text: Any) -> Any:
    """``text`` as a rich ``Text`` (a table cell that is never read as markup)."""
    from rich.text import Text

    return Text(str(text))
