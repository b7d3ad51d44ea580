"""Published numbers of Raghu, Zhang, Kleinberg & Bengio, "Transfusion: Understanding Transfer
Learning for Medical Imaging" (NeurIPS 2019, arXiv:1902.07208), as data for report comparisons.

Only numbers this project could verify are filled in: the headline RETINA AUCs (Table 1) and
the 5,000-example regime (Table 3) as quoted in the project's design notes. Every other cell
is ``None`` with a note saying so — a missing number is never guessed. AUCs are in percent
(AUC points), as the paper prints them; a run's AUC of 0.964 is 96.4 here.

Suites opt into a comparison with ``[report] paper = "retina" | "chexpert" | "small-data"``.
"""

from __future__ import annotations

from dataclasses import dataclass

CITATION = (
    "Raghu, Zhang, Kleinberg & Bengio, Transfusion: Understanding Transfer Learning for Medical "
    "Imaging, NeurIPS 2019 (arXiv:1902.07208)"
)
_UNVERIFIED = "not verified by this project; see the paper's table"


@dataclass(frozen=True)
class PaperValue:
    """One published cell: ``auc_pct`` (mean AUC in percent) of ``model`` under ``init``
    (``"random"`` or ``"transfer"``), or ``None`` with ``note`` saying why it is empty."""

    model: str
    init: str
    auc_pct: float | None
    note: str = ""


@dataclass(frozen=True)
class PaperTable:
    """The published numbers a paper suite is compared with."""

    key: str
    title: str
    source: str
    values: tuple[PaperValue, ...]
    note: str = ""


def _pair(model: str, random: float | None, transfer: float | None, note: str = "") -> tuple[PaperValue, ...]:
    return (PaperValue(model, "random", random, note if random is None else ""),
            PaperValue(model, "transfer", transfer, note if transfer is None else ""))


PAPER: dict[str, PaperTable] = {
    "retina": PaperTable(
        key="retina",
        title="RETINA, referable diabetic retinopathy: test AUC (%), random init vs ImageNet transfer",
        source=f"{CITATION}, Table 1",
        values=(
            *_pair("resnet50", 96.4, 96.7),
            *_pair("inception_v3", 96.6, 96.7),
            *_pair("cbr_large_t", 96.2, 96.2),
            *_pair("cbr_large_w", None, None, _UNVERIFIED),
            *_pair("cbr_small", None, None, _UNVERIFIED),
            *_pair("cbr_tiny", None, None, _UNVERIFIED),
        ),
        note="The paper's RETINA data is private; the suite runs on a public stand-in (APTOS/EyePACS), "
             "so differences measure the data as much as the method.",
    ),
    "chexpert": PaperTable(
        key="chexpert",
        title="CheXpert, 5 pathologies: test AUC (%), random init vs ImageNet transfer",
        source=f"{CITATION}, Table 2",
        values=tuple(v for m in ("resnet50", "inception_v3", "cbr_large_t", "cbr_large_w", "cbr_small",
                                 "cbr_tiny") for v in _pair(m, None, None, _UNVERIFIED)),
        note="No CheXpert number of the paper has been verified by this project yet: the comparison "
             "lists our numbers beside empty cells.",
    ),
    "small-data": PaperTable(
        key="small-data",
        title="RETINA with 5,000 training examples: test AUC (%), random init vs ImageNet transfer",
        source=f"{CITATION}, Table 3",
        values=(
            *_pair("resnet50", 92.2, 94.6),
            *_pair("inception_v3", None, None, _UNVERIFIED),
            *_pair("cbr_large_t", 93.6, 93.9),
            *_pair("cbr_small", None, None, _UNVERIFIED),
            *_pair("cbr_tiny", None, None, _UNVERIFIED),
        ),
        note="The paper's RETINA data is private; the suite runs on a public stand-in (APTOS/EyePACS).",
    ),
}


def paper_table(key: str) -> PaperTable:
    """The published table for a suite's ``[report] paper`` key."""
    try:
        return PAPER[key]
    except KeyError:
        raise ValueError(f"unknown paper table {key!r}; known: {', '.join(sorted(PAPER))}") from None
