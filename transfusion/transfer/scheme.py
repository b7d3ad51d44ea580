"""Training schemes — how much of an initialised network is trained, and how — parsed and
checked against a regime and a model without building anything (no torch); :func:`apply_scheme`
makes the scheme's network.

- ``finetune`` (the default): every stage trained, the model's own head.
- ``linear``: the body frozen (its BatchNorm statistics too), a new linear head on the last
  stage's average-pooled features trained by the same optimiser and schedule as fine-tuning.
- ``knn``: no training at all: the k training images nearest (cosine) in the same pooled
  features vote; a test image's score is the fraction of votes per class (k: ``knn_k``).
- ``lp-ft``: ``linear`` for the first ``lp_fraction`` of the steps, then every stage trained
  (linear probing, then fine-tuning: Kumar et al., ICLR 2022), one optimiser and schedule.
- ``truncate:K``: stages 1..K of the stage view (with their weights from the regime), pooled, a
  new linear head; everything trained. Its cost is the truncated network's.

Schemes compose with regimes where that means something. Refused, with the reason:
``freeze:K`` with ``linear`` / ``knn`` (they freeze every stage already) and with ``lp-ft``
(which trains every stage in its second phase); ``transfusion:K`` / ``freeze:K`` with
``truncate:J`` for K > J (stages past the cut would be copied for nothing).
"""

from __future__ import annotations

from dataclasses import dataclass

from .regime import Regime, parse_regime

SCHEME_NAMES = ("finetune", "linear", "knn", "lp-ft", "truncate")
SCHEME_FORMS = ("finetune", "linear", "knn", "lp-ft", "truncate:K")
DEFAULT_SCHEME = "finetune"


@dataclass(frozen=True)
class Scheme:
    """A parsed scheme string: ``name`` and, for ``truncate``, the stages kept ``k``."""

    name: str
    k: int | None = None

    def __str__(self) -> str:
        return self.name if self.k is None else f"{self.name}:{self.k}"

    @property
    def trains_body(self) -> bool:
        """Whether the body's weights change (at some point) during training."""
        return self.name in ("finetune", "lp-ft", "truncate")

    @property
    def rebuilds(self) -> bool:
        """Whether the scheme's network differs from the model's own (new head, or fewer stages)."""
        return self.name != "finetune"


def parse_scheme(text: str) -> Scheme:
    """Parse ``finetune``, ``linear``, ``knn``, ``lp-ft`` or ``truncate:K``; raises ``ValueError``
    listing the valid forms."""
    name, _, arg = str(text).strip().partition(":")
    if name == "truncate":
        if not arg.strip().isdigit() or int(arg) < 1:
            raise ValueError(f"scheme {text!r} needs the number of stages to keep, K >= 1, e.g. truncate:2")
        return Scheme(name, int(arg))
    if name in SCHEME_NAMES and not arg:
        return Scheme(name)
    raise ValueError(f"unknown training scheme {text!r}; known: {', '.join(SCHEME_FORMS)}")


def check_scheme(scheme: str | Scheme, regime: str | Regime, num_stages: int) -> Scheme:
    """Parse ``scheme`` and check it against ``regime`` and a model whose stage view has
    ``num_stages`` stages (head included); raises ``ValueError`` saying why a pair does not
    make sense."""
    s = scheme if isinstance(scheme, Scheme) else parse_scheme(scheme)
    r = regime if isinstance(regime, Regime) else parse_regime(regime)
    body = int(num_stages) - 1
    if s.name == "truncate" and not 1 <= int(s.k) < body:
        raise ValueError(f"truncate:{s.k} must keep 1..{body - 1} of the model's {body} body stages (keeping all "
                         "of them is finetune)")
    if r.name == "freeze" and s.name in ("linear", "knn"):
        raise ValueError(f"{s} already freezes every stage, so {r} adds nothing; use transfusion:{r.k} or transfer "
                         f"with {s}")
    if r.name == "freeze" and s.name == "lp-ft":
        raise ValueError(f"lp-ft trains every stage in its second phase, which {r} forbids; use transfusion:{r.k}")
    if s.name == "truncate" and r.name in ("transfusion", "freeze") and int(r.k) > int(s.k):
        raise ValueError(f"{r} copies stages past the cut of {s}: they would be dropped; use K <= {s.k}")
    return s


def scheme_label(init: str, scheme: str) -> str:
    """How a (regime, scheme) arm is named in tables: the regime alone for ``finetune``, else
    ``"transfer · linear"``."""
    return init if scheme in ("", None, DEFAULT_SCHEME) else f"{init} · {scheme}"


def regime_of(label: str) -> str:
    """The regime of a :func:`scheme_label` (``"transfer · linear"`` → ``"transfer"``)."""
    return label.split(" · ", 1)[0]


def scheme_of(label: str) -> str:
    """The scheme of a :func:`scheme_label` (``"transfer · linear"`` → ``"linear"``, ``"transfer"``
    → ``"finetune"``)."""
    return label.split(" · ", 1)[1] if " · " in label else DEFAULT_SCHEME
