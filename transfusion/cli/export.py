"""``transfusion export``: ONNX export of a trained run with a parity check and a model card."""

from __future__ import annotations

import argparse
import sys

from transfusion.deploy.parity import AUC_TOL, REL_TOL
from transfusion.deploy.target import DEFAULT_STORE


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="export a trained run to ONNX, check parity on its test images, write a model card",
        description=(
            "Rebuild a trained model from its checkpoint, export it to ONNX (dynamo exporter; "
            "model.onnx + model.onnx.data), validate it with onnx.checker, run ONNX Runtime and "
            "PyTorch on the run's real test images and compare their outputs and AUCs, time ONNX "
            "Runtime at batch 1 and batch N, and write model_card.md / model_card.json. A parity "
            "failure exits with status 1. With --quantize / --fp16, int8 and fp16 variants are made and "
            "each is timed and checked for non-inferiority against fp32 on the same test images. The "
            "export is recorded in the store, and the report lists it."
        ),
    )
    p.add_argument("target", metavar="RUN_OR_CHECKPOINT",
                   help="a run id (or unique prefix) in the store, a checkpoint (best.pt) or a run folder")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--store", metavar="PATH", help=f"results store or its folder (default {DEFAULT_STORE})")
    p.add_argument("--batch", type=int, default=32, metavar="N", help="second latency batch size (default 32)")
    p.add_argument("--threads", type=int, metavar="N", help="intra-op threads (default: all cores)")
    p.add_argument("--repeats", type=int, default=20, metavar="N", help="timed calls per latency (default 20)")
    p.add_argument("--max-images", type=int, metavar="N", help="compare on the first N test images only")
    p.add_argument("--rel-tol", type=float, default=REL_TOL,
                   help=f"max relative output error, against the largest |logit| (default {REL_TOL:g})")
    p.add_argument("--auc-tol", type=float, default=AUC_TOL, help=f"max |AUC difference| (default {AUC_TOL:g})")
    p.add_argument("--quantize", action="append", choices=("static", "dynamic"), default=[], metavar="static|dynamic",
                   help="add an int8 variant: static (QDQ, per-channel weights, activations calibrated on --calib "
                        "training images) or dynamic; repeat for both")
    p.add_argument("--fp16", action="store_true", help="add a half-precision variant (for GPU deployment)")
    p.add_argument("--calib", type=int, default=256, metavar="N",
                   help="training images that calibrate static int8 (default 256)")
    p.add_argument("--margin", type=float, metavar="AUC",
                   help="non-inferiority margin of a variant against fp32, AUC units (default: the suite's "
                        "[report] margin, else 0.005)")
    p.add_argument("--strict", action="store_true", help="exit 1 when a variant fails its non-inferiority check")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from transfusion.deploy.export import ParityError, export_run

    try:
        r = export_run(args.target, args.out, store_path=args.store, batch=args.batch, threads=args.threads,
                       repeats=args.repeats, rel_tol=args.rel_tol, auc_tol=args.auc_tol, max_images=args.max_images,
                       variants=(*args.quantize, *(["fp16"] if args.fp16 else [])), calib=args.calib,
                       margin=args.margin)
    except ParityError as exc:
        print(f"transfusion export: {exc} (figures in {exc.result.card_md})", file=sys.stderr)
        return 1
    p, lat = r.card["parity"], r.card["latency"]
    print(f"exported {r.card['source']['model']} · {r.card['source']['init']} (run {r.card['source']['run_id']}) "
          f"→ {r.onnx_path}")
    print(f"  parity passed on {p['n_images']} test images: max abs err {p['max_abs_err']:.3g}, "
          f"max rel err {p['max_rel_err']:.3g}; AUC torch {p['auc_torch']} vs ONNX {p['auc_onnx']}")
    print(f"  ONNX Runtime {lat['ort_ms_batch1']:.3f} ms at batch 1, {lat['ort_ms_batchN']:.3f} ms at batch "
          f"{lat['batch']}; PyTorch {lat['torch_ms_batch1']:.3f} ms at batch 1")
    failed = []
    for v in r.card["variants"]:
        ok = "passed" if v["passed"] else "FAILED"
        print(f"  {v['variant']:8s} {v['bytes'] / 1e6:6.2f} MB  {v['ms_batch1']:.3f} ms at batch 1 (p95 "
              f"{v['p95_ms_batch1']:.3f}), {v['img_s_batchN']:.0f} img/s at batch {v['batch']}; AUC {v['test_auc']:.4f}, "
              f"{v['auc_diff']:+.4f} vs fp32 [{v['auc_diff_low']:+.4f}, {v['auc_diff_high']:+.4f}]: non-inferiority "
              f"at margin {v['margin']:g} {ok}")
        if not v["passed"]:
            failed.append(v["variant"])
    print(f"  model card: {r.card_md}" + (f"; recorded in {r.store_path}" if r.store_path else ""))
    if failed and args.strict:
        print(f"transfusion export: variant(s) {', '.join(failed)} lose more than the margin against fp32",
              file=sys.stderr)
        return 1
    return 0
