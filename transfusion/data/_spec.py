"""Dataset spec strings: ``KIND[:TARGET][?key=value&...]``.

``TARGET`` is a path for file formats (``folder:/data/x``) and ``NAME[:PATH]`` for MedMNIST.
Each kind declares its options (type, default, allowed values); parsing fills in the defaults,
and :func:`format_spec` writes the canonical form (sorted options, absolute path).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Option:
    """One ``key=value`` option of a dataset kind.

    ``type`` is ``int``, ``float``, ``bool`` or ``str``; ``choices`` restricts a ``str``;
    ``lo``/``hi`` bound a number (inclusive). ``default=None`` means "no value" (e.g. an
    optional class name).
    """

    type: type
    default: Any
    help: str = ""
    choices: tuple[str, ...] = ()
    lo: float | None = None
    hi: float | None = None

    def parse(self, key: str, raw: Any, kind: str) -> Any:
        """Convert ``raw`` (a string from a spec, or a Python value from a table) and check it."""
        where = f"option {key}={raw!r} of {kind!r}"
        if raw is None:
            return None
        try:
            if self.type is bool:
                value = _parse_bool(raw)
            elif self.type is int:
                if isinstance(raw, float) and not raw.is_integer():
                    raise ValueError
                value = int(raw) if not isinstance(raw, str) else int(raw.strip())
            elif self.type is float:
                value = float(raw)
                if not math.isfinite(value):
                    raise ValueError
            else:
                value = str(raw).strip()
        except (TypeError, ValueError):
            raise ValueError(f"{where}: expected {self.type.__name__}") from None
        if self.choices and value not in self.choices:
            raise ValueError(f"{where}: expected one of {', '.join(self.choices)}")
        if self.lo is not None and value < self.lo:
            raise ValueError(f"{where}: must be >= {self.lo:g}")
        if self.hi is not None and value > self.hi:
            raise ValueError(f"{where}: must be <= {self.hi:g}")
        return value


def _parse_bool(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError


def format_value(value: Any) -> str:
    """Canonical text of an option value (``True`` → ``1``, floats by ``repr``)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return repr(value)
    return str(value)


@dataclass(frozen=True)
class ParsedSpec:
    """A parsed spec: ``kind``, ``target`` (path or ``NAME[:PATH]``; ``""`` if none) and the
    full option dict with defaults filled in."""

    kind: str
    target: str
    options: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, key: str) -> Any:
        return self.options[key]

    def with_options(self, **changes: Any) -> ParsedSpec:
        return ParsedSpec(self.kind, self.target, {**self.options, **changes})


def split_spec(spec: str) -> tuple[str, str, dict[str, str]]:
    """Split ``KIND[:TARGET][?k=v&...]`` into kind, target and raw option strings."""
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"dataset spec must be a non-empty string like 'synth-retina?n=2000', got {spec!r}")
    spec = spec.strip()
    head, _, query = spec.partition("?")
    kind, _, target = head.partition(":")
    kind = kind.strip().lower()
    raw: dict[str, str] = {}
    for part in query.split("&") if query else []:
        if not part:
            continue
        key, eq, value = part.partition("=")
        key = key.strip().lower()
        if not eq or not key:
            raise ValueError(f"dataset spec {spec!r}: option {part!r} is not key=value")
        if key in raw:
            raise ValueError(f"dataset spec {spec!r}: option {key!r} given twice")
        raw[key] = value
    return kind, target.strip(), raw


def parse_options(
    kind: str, options: dict[str, Option], raw: dict[str, Any], spec: str
) -> dict[str, Any]:
    """Typed options with defaults filled in; unknown keys are an error listing the valid ones."""
    unknown = sorted(set(raw) - set(options))
    if unknown:
        raise ValueError(
            f"dataset spec {spec!r}: unknown option(s) {', '.join(unknown)} for {kind!r}; "
            f"valid options: {', '.join(sorted(options))}"
        )
    out = {}
    for key, opt in options.items():
        out[key] = opt.parse(key, raw[key], kind) if key in raw else opt.default
    return out


def absolute_path(text: str) -> str:
    """``~`` expanded, made absolute and symlinks resolved (the file need not exist)."""
    return str(Path(text).expanduser().resolve())


def format_spec(parsed: ParsedSpec) -> str:
    """``kind[:target]?k=v&...`` with the options sorted by key (``None`` values left out)."""
    head = parsed.kind + (f":{parsed.target}" if parsed.target else "")
    items = [f"{k}={format_value(v)}" for k, v in sorted(parsed.options.items()) if v is not None]
    return head + ("?" + "&".join(items) if items else "")
