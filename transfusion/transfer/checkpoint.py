"""The checkpoint format and a run folder's checkpoint layout, in one place.

A run folder holds ``best.pt`` (the weights its test metrics come from) and ``last.pt`` (the
latest weights; while training is unfinished also the optimizer and schedule state to resume
from). Each file is a dict with ``format`` = :data:`FORMAT` that carries, beside the weights,
what rebuilding the model needs: the architecture, task, input size (px), channels, input
normalisation and the run's spec. Checkpoints are data, never code: every read uses
``torch.load(..., weights_only=True)`` and every write is atomic.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

from transfusion.core.files import save_torch

FORMAT = "transfusion-checkpoint/1"
BEST = "best.pt"
LAST = "last.pt"
REQUIRED_KEYS = ("arch", "spec", "task", "res", "in_chans", "mean", "std", "state_dict")


def best_path(run_dir: str | Path) -> Path:
    """``RUN_DIR/best.pt``: the checkpoint a run's test metrics come from."""
    return Path(run_dir) / BEST


def last_path(run_dir: str | Path) -> Path:
    """``RUN_DIR/last.pt``: the latest checkpoint (resumable while training is unfinished)."""
    return Path(run_dir) / LAST


def make_checkpoint(*, run_id: str, spec: dict, arch: str, task: dict, res: int, in_chans: int,
                    mean: tuple[float, ...], std: tuple[float, ...], step: int, model: nn.Module,
                    trainer: dict | None = None) -> dict[str, Any]:
    """A checkpoint dict of ``model``'s weights (copied to the CPU) and its metadata."""
    return {"format": FORMAT, "run_id": run_id, "spec": spec, "arch": arch, "task": task, "res": int(res),
            "in_chans": int(in_chans), "mean": list(mean), "std": list(std), "step": int(step),
            "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "trainer": dict(trainer or {})}


def save_checkpoint(path: str | Path, checkpoint: dict[str, Any], *, optimizer: Any = None,
                    scheduler: Any = None) -> Path:
    """Write ``checkpoint`` atomically; with ``optimizer`` / ``scheduler`` their state goes in
    too, so training can resume from the file (a finished run's files hold weights only:
    ResNet50's is 94 MB instead of 283 MB with AdamW's moments)."""
    ck = dict(checkpoint)
    if optimizer is not None:
        ck["optimizer"] = optimizer.state_dict()
    if scheduler is not None:
        ck["scheduler"] = scheduler.state_dict()
    return save_torch(ck, path)


def read_file(path: str | Path) -> Any:
    """Whatever ``torch.load(path, weights_only=True)`` finds; ``FileNotFoundError`` for a
    missing file and ``ValueError`` for one torch cannot read."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist (expected a .pt file written by "
                                f"`transfusion train`/`pretrain`, or a torch state dict)")
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        text = str(exc)
        if "Weights only load failed" in text:  # not tensor data: another file type, or a pickle of objects
            detail = text.partition("WeightsUnpickler error:")[2].strip().split("\n")[0].strip()
            raise ValueError(
                f"cannot read checkpoint {path}: it is not a tensor-only PyTorch file ({detail or 'unpickling refused'}); "
                "transfusion loads weights with weights_only=True and never runs code from a file — give a "
                "checkpoint written by `transfusion train`/`pretrain` or a saved state dict") from None
        raise ValueError(f"cannot read checkpoint {path}: {_what_it_is(path)}; give a checkpoint written by "
                         f"`transfusion train`/`pretrain` or a state dict saved with torch.save "
                         f"(torch said {type(exc).__name__}: {text.splitlines()[0] if text else 'nothing'})") from None


def _what_it_is(path: Path) -> str:
    """What a file torch cannot load looks like: empty, text, or some other binary."""
    size = path.stat().st_size
    if size == 0:
        return "the file is empty (0 bytes)"
    head = path.open("rb").read(512)
    try:
        head.decode("utf-8")
        return f"it is a text file ({size} bytes), not a PyTorch file"
    except UnicodeDecodeError:
        return f"it is not a PyTorch file (neither a torch.save zip archive nor a legacy pickle; {size} bytes)"


def is_checkpoint(obj: Any) -> bool:
    """Whether ``obj`` (a loaded file) is a transfusion checkpoint."""
    return isinstance(obj, dict) and obj.get("format") == FORMAT


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """A transfusion checkpoint, read with ``weights_only=True`` and checked for its keys."""
    ck = read_file(path)
    if not is_checkpoint(ck):
        raise ValueError(f"{path} is not a transfusion checkpoint (format {FORMAT}); a plain state dict "
                         "lacks the task, input size and normalisation that rebuilding the model needs")
    missing = [k for k in REQUIRED_KEYS if k not in ck]
    if missing:
        raise ValueError(f"checkpoint {path} lacks {', '.join(missing)}")
    return ck


def model_from_checkpoint(ck: dict[str, Any]) -> nn.Module:
    """The checkpoint's trained model in eval mode (fp32, CPU).

    The architecture is built on the meta device and the stored tensors are assigned to it, so
    no time goes into a random initialisation that would be overwritten (0.2 s for ResNet50).
    """
    import torch

    from transfusion.models import create_model

    spec = ck.get("spec") or {}
    scheme = spec.get("scheme") or "finetune"
    outputs = len(ck["task"]["labels"])

    def build() -> nn.Module:
        model = create_model(ck["arch"], num_classes=outputs, in_chans=int(ck["in_chans"]))
        if scheme == "finetune":
            return model
        from .regimes import apply_scheme

        net = apply_scheme(model, scheme, outputs)
        if scheme == "knn":  # the head's stored neighbours: shaped from the checkpoint
            from transfusion.models.schemed import KNNHead

            sd = ck["state_dict"]
            net.fc = KNNHead(torch.empty(sd["fc.bank"].shape), torch.empty(sd["fc.votes"].shape),
                             torch.empty(sd["fc.known"].shape), int((spec.get("train") or {}).get("knn_k", 11)),
                             ck["task"]["kind"])
        return net

    try:
        with torch.device("meta"):
            model = build()
    except NotImplementedError:  # a builder that computes with tensors (RegNet's widths)
        model = build()
    model.load_state_dict(ck["state_dict"], assign=True)
    if any(t.is_meta for t in [*model.parameters(), *model.buffers()]):
        model = build()  # a tensor the state dict does not hold (a non-persistent buffer): build it for real
        model.load_state_dict(ck["state_dict"])
    return model.eval()
