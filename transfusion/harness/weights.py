"""The pretrained weight files a grid's runs need — torchvision's ImageNet files, timm's
pretrained weights in the Hugging Face cache (``timm:NAME`` models) and ``file:`` checkpoints —
checked all at once before any work, so that an offline run of a paper-style suite
does not pretrain and train everything else first and then fail each transfer run in turn."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from transfusion.models import is_timm_name
from transfusion.train.spec import RunSpec
from transfusion.transfer import parse_regime, source_arch


@dataclass(frozen=True)
class WeightFile:
    """One weight file the runs need: ``source`` as the spec writes it (``imagenet`` or
    ``file:PATH``), the architecture, where the file is or must go, how many runs need it, and
    ``problem`` (empty when the file is there, else why it is not usable)."""

    source: str
    arch: str
    path: Path
    runs: int
    problem: str = ""

    @property
    def present(self) -> bool:
        return not self.problem


def weight_files(specs: Iterable[RunSpec]) -> list[WeightFile]:
    """Every ImageNet file and ``file:`` checkpoint that ``specs`` load, each once, in first-use
    order. Sources produced by pretraining runs (``run:ID``) are not files and are skipped."""
    uses: Counter[tuple[str, str]] = Counter()
    for spec in specs:
        if not spec.source or spec.source.startswith("run:") or not parse_regime(spec.init).needs_source:
            continue
        arch = source_arch(spec.model, spec.init) if spec.source == "imagenet" else ""
        uses[(spec.source, arch)] += 1
    out = []
    for (source, arch), n in uses.items():
        if source == "imagenet":
            # torchvision loads only for ImageNet sources (a dry run of the quick suite stays torch-free)
            from transfusion.transfer.sources import imagenet_file, imagenet_missing

            try:
                _, path = imagenet_file(arch)
            except ValueError as exc:  # an architecture without published weights
                out.append(WeightFile(source, arch, Path(), n, str(exc)))
                continue
            out.append(WeightFile(source, arch, path, n, "" if path.is_file() else imagenet_missing(arch)))
        else:
            path = Path(source.removeprefix("file:")).expanduser()
            problem = "" if path.is_file() else (f"{path} is a folder, not a checkpoint file" if path.is_dir()
                                                 else f"weight file {path} does not exist")
            out.append(WeightFile(source, arch, path, n, problem))
    return out


def check_weights(specs: Iterable[RunSpec], *, fetch: bool = False) -> list[WeightFile]:
    """The weight files of ``specs``; raises ``SourceUnavailable`` (a ``FileNotFoundError``) listing every one that is
    missing and cannot be had. A missing ImageNet file can be had when downloads are allowed
    (no ``TRANSFUSION_OFFLINE``): with ``fetch`` it is downloaded here, before any run starts,
    and a failed download is listed with the rest."""
    files = weight_files(specs)
    if all(f.present for f in files):
        return files
    from transfusion.transfer.sources import SourceUnavailable, downloads_allowed, load_imagenet

    problems = []
    for f in files:
        if f.present:
            continue
        if f.source == "imagenet" and f.path != Path() and downloads_allowed():
            if not fetch:
                continue  # the run will download it
            try:
                load_imagenet(f.arch, allow_download=True)
                continue
            except SourceUnavailable as exc:
                reason = str(exc).rpartition("download failed: ")[2].removesuffix(")")
                problems.append(f"{f.problem}; downloading it failed: {reason}")
                continue
        problems.append(f.problem)
    if problems:
        offline = " (TRANSFUSION_OFFLINE is set, so nothing is downloaded)" if not downloads_allowed() else ""
        raise SourceUnavailable(
            f"{len(problems)} weight file(s) the runs need are missing{offline}:\n  " + "\n  ".join(problems)
            + "\nPlace ImageNet files in torchvision's cache (the folder named above; set TORCH_HOME to move it)"
            + (", timm's in the Hugging Face cache (HF_HOME)" if any(is_timm_name(f.arch) for f in files
                                                                    if not f.present) else "")
            + ", fix the file: paths in the suite's [source], or exclude the runs that need them")
    return files
