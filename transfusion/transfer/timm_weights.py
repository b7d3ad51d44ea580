"""timm's pretrained weights for ``timm:NAME`` models, read from the local Hugging Face cache.

timm publishes its weights on the Hugging Face hub (``pretrained_cfg.hf_hub_id``, e.g.
``timm/resnet18.a1_in1k``); ``timm.create_model(NAME, pretrained=True)`` downloads them into the
Hugging Face cache (``$HF_HUB_CACHE``, default ``$HF_HOME/hub``, default
``~/.cache/huggingface/hub``). Here the cached file is found with huggingface_hub's
``try_to_load_from_cache`` (no network) and loaded by timm itself (``pretrained_cfg_overlay`` with
the file), so its model-specific checkpoint filters apply. A missing file is downloaded only when
downloads are allowed (see :func:`~.sources.downloads_allowed`); otherwise
:class:`~.sources.SourceUnavailable` names the repository, the file, the cache folder and the
command that fetches it on a machine with network. The few models whose weights are only a URL
use torch.hub's cache, as timm does.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

#: the files timm looks for in a hub repository, in its order (safetensors first)
HUB_FILENAMES = ("model.safetensors", "pytorch_model.bin")


def hf_cache_dir() -> Path:
    """The Hugging Face hub cache, resolved from the environment now (as huggingface_hub does at
    import): ``$HF_HUB_CACHE``, ``$HUGGINGFACE_HUB_CACHE``, ``$HF_HOME/hub``,
    ``$XDG_CACHE_HOME/huggingface/hub`` or ``~/.cache/huggingface/hub``."""
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "huggingface")
    hub = os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE") or os.path.join(home, "hub")
    return Path(os.path.expandvars(os.path.expanduser(hub)))


@dataclass(frozen=True)
class TimmWeights:
    """Where the pretrained weights of one ``timm:NAME`` model live.

    ``repo`` (with ``revision``, usually ``None`` = main) and ``filenames`` (candidates, timm's
    order) for weights on the Hugging Face hub, else ``url``; ``path`` is the cached file when it
    is on this machine, ``None`` otherwise; ``folder`` is where it goes (the repository's folder
    in the Hugging Face cache, or torch.hub's checkpoints folder for a URL)."""

    arch: str
    repo: str | None
    revision: str | None
    filenames: tuple[str, ...]
    url: str | None
    folder: Path
    path: Path | None

    @property
    def label(self) -> str:
        """``timm/resnet18.a1_in1k: model.safetensors or pytorch_model.bin`` (for messages)."""
        if self.repo:
            return f"{self.repo}{'@' + self.revision if self.revision else ''}: {' or '.join(self.filenames)}"
        return os.path.basename(self.url or "")

    def missing(self) -> str:
        """What is missing, where it must go and how to get it (the message of a missing file)."""
        from transfusion.models.timm_models import timm_arch

        arch = timm_arch(self.arch)
        fetch = f"python -c \"import timm; timm.create_model('{arch}', pretrained=True)\""
        if self.repo:
            return (
                f"timm's pretrained weights for {self.arch} are not in the Hugging Face cache: "
                f"repository {self.repo}{'@' + self.revision if self.revision else ''}, file "
                f"{' or '.join(self.filenames)}, expected under {self.folder} (the cache is "
                f"{self.folder.parent}; set HF_HOME or HF_HUB_CACHE to move it). On a machine with network run "
                f"{fetch} and copy its {self.folder.name} folder (from its $HF_HOME/hub) to {self.folder.parent}, "
                f"or pass --source file:PATH with a checkpoint of your own"
            )
        return (
            f"timm's pretrained weights for {self.arch} are not cached: place {self.label} (from {self.url}) "
            f"in {self.folder} (torch.hub's cache; set TORCH_HOME to move it) — on a machine with network, "
            f"{fetch} puts it there — or pass --source file:PATH with a checkpoint of your own"
        )


def timm_weights(arch: str) -> TimmWeights:
    """Where ``timm:NAME``'s pretrained weights are or must go (no network, no download).

    Raises ``ValueError`` for a model timm publishes no weights for."""
    from transfusion.models.timm_models import hub_weights, pretrained_cfg, timm_arch

    cfg = pretrained_cfg(arch)
    if not hub_weights(cfg):
        raise ValueError(
            f"{arch!r} has no published pretrained weights in timm (timm.list_pretrained('{timm_arch(arch)}*') "
            f"lists those that do); pretrain it yourself with `transfusion pretrain {arch} --data ... --out "
            f"model.pt` and pass --source file:model.pt"
        )
    repo = getattr(cfg, "hf_hub_id", None)
    if repo:
        repo, _, revision = repo.partition("@")
        named = getattr(cfg, "hf_hub_filename", None)
        if named:
            safe = named[:-4] + ".safetensors" if named.endswith(".bin") else None
            filenames = tuple(n for n in (safe, named) if n)
        else:
            filenames = HUB_FILENAMES
        cache = hf_cache_dir()
        folder = cache / ("models--" + repo.replace("/", "--"))
        return TimmWeights(arch, repo, revision or None, filenames, None, folder,
                           _cached(repo, revision or None, filenames, cache))
    import torch

    url = str(cfg.url)
    folder = Path(torch.hub.get_dir()) / "checkpoints"
    path = folder / os.path.basename(url)
    return TimmWeights(arch, None, None, (path.name,), url, folder, path if path.is_file() else None)


def _cached(repo: str, revision: str | None, filenames: tuple[str, ...], cache: Path) -> Path | None:
    """The first of ``filenames`` in the local cache of ``repo`` (huggingface_hub's own lookup)."""
    from huggingface_hub import try_to_load_from_cache

    for name in filenames:
        found = try_to_load_from_cache(repo, name, cache_dir=cache, revision=revision)
        if isinstance(found, str) and Path(found).is_file():
            return Path(found)
    return None


def _download(w: TimmWeights) -> Path:
    """Fetch the weights into their cache (network); raises on failure."""
    if w.repo:
        from huggingface_hub import hf_hub_download
        from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError

        for name in w.filenames:
            try:
                return Path(hf_hub_download(w.repo, name, revision=w.revision, cache_dir=w.folder.parent))
            except LocalEntryNotFoundError:  # offline, or the hub out of reach: not a missing file
                raise
            except EntryNotFoundError:  # the repository has no such file: try the next name
                continue
        raise FileNotFoundError(f"{w.repo} holds none of {', '.join(w.filenames)}")
    import torch

    w.folder.mkdir(parents=True, exist_ok=True)
    path = w.folder / w.filenames[0]
    torch.hub.download_url_to_file(str(w.url), str(path), progress=False)
    return path


def load_timm_weights(arch: str, *, allow_download: bool) -> tuple[dict, tuple[float, ...], tuple[float, ...], TimmWeights]:
    """(state dict, mean, std, where) of ``timm:NAME``'s pretrained weights: from the local cache,
    else downloaded when ``allow_download``; a :class:`~.sources.SourceUnavailable` otherwise.

    timm loads the file (``pretrained_cfg_overlay={'file': ...}``) into the model at its
    pretrained class count, so the state dict has exactly the model's keys."""
    from transfusion.models.timm_models import import_timm, pretrained_cfg, timm_arch

    from .sources import SourceUnavailable

    w = timm_weights(arch)
    path = w.path
    if path is None:
        if not allow_download:
            raise SourceUnavailable(w.missing())
        try:
            path = _download(w)
        except Exception as exc:  # network errors come in many types
            raise SourceUnavailable(f"{w.missing()} (download failed: {exc})") from exc
        w = TimmWeights(w.arch, w.repo, w.revision, w.filenames, w.url, w.folder, path)
    timm = import_timm(arch)
    cfg = pretrained_cfg(arch)
    try:
        model = timm.create_model(timm_arch(arch), pretrained=True, pretrained_cfg_overlay={"file": str(path)})
    except Exception as exc:  # a truncated or foreign file
        raise ValueError(f"{path}: not usable as timm's pretrained weights for {arch}: {exc}") from exc
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    mean = tuple(float(x) for x in (cfg.mean or ()))
    std = tuple(float(x) for x in (cfg.std or ()))
    return state, mean, std, w
