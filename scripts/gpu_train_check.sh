#!/usr/bin/env bash
# One-shot GPU check of the training paths (CUDA, channels-last, bf16 autocast) — run on a rented
# GPU machine from the repository root with OUT set to a folder for the results:
#   OUT=/tmp/gpu bash scripts/gpu_train_check.sh
# Issue 4's note: CBR-Small and ResNet50 on synth-retina at 224 px under random, transfer (from a
# synth-natural pretraining run), meanvar, transfusion:1/2, with test AUC, steps to target and
# training throughput. Then the quick suite's grid on the GPU. Each step writes JSON under $OUT.
set -u
export PYTHONPATH="$PWD:$PWD/.whl/site:${PYTHONPATH:-}" TRANSFUSION_CACHE=/tmp/tcache PYTHONUNBUFFERED=1
PY=python3
RET="synth-retina?n=2000&res=224"
NAT="synth-natural?n=3000&res=224&difficulty=0.2"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
$PY -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name(0))"
for m in cbr_small resnet50; do
  $PY -m transfusion pretrain $m --data "$NAT" --epochs 3 --lr 0.002 --device cuda --out "/tmp/src_$m.pt" \
      --json "$OUT/pretrain_$m.json" > /dev/null || echo "pretrain $m failed"
  for init in random transfer meanvar transfusion:1 transfusion:2; do
    src=""; [ "$init" != random ] && src="--source file:/tmp/src_$m.pt"
    $PY -m transfusion train $m --data "$RET" --init $init $src --epochs 5 --lr 0.002 --device cuda \
        --target-auc 0.85 --out "/tmp/run_${m}_${init/:/_}" --json "$OUT/train_${m}_${init/:/_}.json" > /dev/null \
        || echo "train $m $init failed"
    $PY - "$OUT/train_${m}_${init/:/_}.json" <<'PYEOF'
import json, sys
s = json.load(open(sys.argv[1]))
print(f"{s['model']:10s} {s['init']:14s} AUC {s['test_auc']:.4f} CI {s['test_auc_ci']} steps_to_target {s['steps_to_target']} "
      f"{s['train_img_s']:.0f} img/s amp={s['amp']} {s['device']}")
PYEOF
  done
done
timeout 240 $PY -m transfusion bench quick --device cuda --out /tmp/quick_gpu --no-report > "$OUT/quick_gpu.log" 2>&1
echo "quick on GPU exit $?"; tail -40 "$OUT/quick_gpu.log"
cp /tmp/quick_gpu/summary.csv "$OUT/quick_gpu_summary.csv" 2>/dev/null
