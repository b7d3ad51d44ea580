#!/usr/bin/env python
"""One-shot GPU check of the training paths (CUDA, channels-last, bf16 autocast).

    OUT=/tmp/gpu python scripts/gpu_train_check.py [--res 224] [--epochs 5]

Issue 4's GPU note: CBR-Small and ResNet50 on synth-retina under random, transfer (from a
synth-natural pretraining run), meanvar, transfusion:1 and transfusion:2 — test AUC, steps to a
target AUC and training throughput — plus a determinism check (two identical CUDA runs).
Everything runs in this one process; results go to ``$OUT/gpu_train.json`` after every run.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch

from transfusion.data import load_dataset
from transfusion.train import train_run
from transfusion.train.spec import RunSpec, TrainConfig
from transfusion.transfer import load_source


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--res", type=int, default=224)
    ap.add_argument("--epochs", type=float, default=5)
    args = ap.parse_args()
    out = Path(os.environ.get("OUT", "/tmp/gpu"))
    out.mkdir(parents=True, exist_ok=True)
    if not torch.cuda.is_available():
        print("no CUDA: nothing to check")
        return
    work = Path("/tmp/gpu_runs")
    results: dict = {"gpu": torch.cuda.get_device_name(0), "torch": torch.__version__, "res": args.res, "runs": []}
    retina = f"synth-retina?n=2000&res={args.res}"
    natural = f"synth-natural?n=3000&res={args.res}&difficulty=0.2"
    t0 = time.time()
    ds = load_dataset(retina)
    nat = load_dataset(natural)
    results["data_seconds"] = time.time() - t0
    cfg = TrainConfig(epochs=args.epochs, lr=2e-3, target_auc=0.85, device="cuda", bootstrap=500)
    for model in ("cbr_small", "resnet50"):
        pre = RunSpec(model=model, data=natural, kind="pretrain", train=TrainConfig(epochs=3, lr=2e-3, device="cuda",
                                                                                    bootstrap=0))
        ps = train_run(pre, work / f"pre_{model}", dataset=nat)
        src = load_source(f"file:{work / f'pre_{model}' / 'best.pt'}", model)
        results["runs"].append({k: ps[k] for k in ("model", "init", "kind", "test_auc", "train_img_s", "amp")})
        for init in ("random", "transfer", "meanvar", "transfusion:1", "transfusion:2"):
            spec = RunSpec(model=model, data=retina, init=init, source="file:pretrained" if init != "random" else None,
                           train=cfg)
            s = train_run(spec, work / f"{model}_{init.replace(':', '_')}", dataset=ds,
                          source=src if init != "random" else None)
            row = {k: s[k] for k in ("model", "init", "test_auc", "test_auc_ci", "steps_to_target", "steps",
                                      "train_seconds", "train_img_s", "amp", "device")}
            results["runs"].append(row)
            print(json.dumps(row), flush=True)
            (out / "gpu_train.json").write_text(json.dumps(results, indent=2))
    # determinism on CUDA: the same run twice
    spec = RunSpec(model="cbr_small", data=retina, train=TrainConfig(steps=30, device="cuda", bootstrap=0))
    a = train_run(spec, work / "det_a", dataset=ds)
    b = train_run(spec, work / "det_b", dataset=ds)
    results["cuda_determinism"] = {"auc_a": a["test_auc"], "auc_b": b["test_auc"], "equal": a["test_auc"] == b["test_auc"]}
    print(json.dumps(results["cuda_determinism"]))
    results["total_seconds"] = time.time() - t0
    (out / "gpu_train.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
