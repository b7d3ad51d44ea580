"""Regime strings, parsed and checked without building anything (no torch): what suites,
``--dry-run`` and the CLI validate against. :mod:`.regimes` applies them to a model.

Forms: ``random``, ``transfer``, ``meanvar``, ``transfusion:K``, ``freeze:K``, ``gabor``, ``slim``
(see :mod:`.regimes` for what each does).
"""

from __future__ import annotations

from dataclasses import dataclass

from transfusion.models import model_config

#: the regime names the table in :mod:`.regimes` implements
REGIME_NAMES = ("random", "transfer", "meanvar", "transfusion", "freeze", "gabor", "slim")


@dataclass(frozen=True)
class Regime:
    """A parsed regime string: ``name`` and the stage count ``k`` (for transfusion/freeze)."""

    name: str
    k: int | None = None

    def __str__(self) -> str:
        return self.name if self.k is None else f"{self.name}:{self.k}"

    @property
    def needs_source(self) -> bool:
        return self.name in ("transfer", "meanvar", "slim") or (
            self.name in ("transfusion", "freeze") and bool(self.k)
        )


def parse_regime(text: str) -> Regime:
    """Parse ``random``, ``transfer``, ``meanvar``, ``gabor``, ``slim``, ``transfusion:K``,
    ``freeze:K``; raises ``ValueError`` listing the valid forms."""
    name, _, arg = str(text).strip().partition(":")
    if name in ("transfusion", "freeze"):
        if not arg.strip().lstrip("-").isdigit():
            raise ValueError(f"regime {text!r} needs a stage count, e.g. {name}:2")
        return Regime(name, int(arg))
    if name in REGIME_NAMES and not arg:
        return Regime(name)
    raise ValueError(f"unknown init regime {text!r}; known: {', '.join(REGIME_FORMS)}")


REGIME_FORMS = ("random", "transfer", "meanvar", "transfusion:K", "freeze:K", "gabor", "slim")


def source_arch(model_name: str, regime: str | Regime) -> str:
    """Architecture whose weights ``regime`` needs for ``model_name`` (``slim`` → resnet50)."""
    r = parse_regime(str(regime))
    return "resnet50" if r.name == "slim" else model_name


def validate(model_name: str, regime: str | Regime, num_stages: int | None = None) -> Regime:
    """Parse and check a regime against a model before anything is built or trained;
    ``num_stages`` (the stage view's length, head included) defaults to the model's declared one."""
    r = parse_regime(str(regime))
    if num_stages is None:
        num_stages = model_config(model_name).num_stages
    if num_stages is None:  # a model registered without its stage count (timm:NAME): build it to count
        from transfusion.models import num_stages as count_stages

        num_stages = count_stages(model_name)
    body = num_stages - 1
    if r.k is not None and not 0 <= r.k <= body:
        raise ValueError(f"{r}: K must be between 0 and {body} for {model_name} (stages before the head)")
    if r.name == "slim" and model_name != "slim_resnet50":
        raise ValueError(f"regime 'slim' applies to model slim_resnet50, not {model_name!r}")
    if r.name == "gabor" and model_config(model_name).first_conv is None:
        raise ValueError(f"{model_name} has no first conv to fill with Gabor filters")
    return r


