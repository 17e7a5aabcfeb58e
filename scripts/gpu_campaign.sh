#!/usr/bin/env bash
# The prepared GPU training window (docs/gpu-training.md). Run from the repository root.
#
#   scripts/gpu_campaign.sh plan               here: pack .gpu/pack.npz if stale, check the size that
#                                              travels, print the device tool's `run` arguments
#   scripts/gpu_campaign.sh device [ARGS]      on the GPU machine (the `run` command): train within
#                                              the budget, write fp16 weights, log, summary to $OUT
#   scripts/gpu_campaign.sh score DIR [LIMIT]  here: score DIR/fcanet-gpu-fp16.safetensors and the
#                                              bundle (held-out objects + GrabCut, network alone)
#                                              into EVAL_DIR (default runs/gpu-eval/<DIR's name>);
#                                              LIMIT: only the first LIMIT GrabCut/held-out objects
#   scripts/gpu_campaign.sh dry-run            here: the same device command on the CPU, 3 steps of a
#                                              batch of 2, into runs/gpu-dry-run/out, then scored
#                                              on 3 held-out objects and 3 GrabCut images
#
# Environment: GPU_CONFIG (default model/training/configs/gpu-h100.yaml), PYTHON (default
# python3 on the GPU machine, /work/main/.venv/bin/python or python here), GRABCUT_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
CONFIG=${GPU_CONFIG:-model/training/configs/gpu-h100.yaml}
GRABCUT_DIR=${GRABCUT_DIR:-../shared/datasets/GrabCut}
BUNDLE=model/weights/fcanet-efficientnet-lite0.safetensors
local_python() {
  if [[ -n "${PYTHON:-}" ]]; then echo "$PYTHON"
  elif [[ -x /work/main/.venv/bin/python ]]; then echo /work/main/.venv/bin/python
  else echo python; fi
}

grabcut() {  # CHECKPOINT OUTDIR [LIMIT]: GrabCut, the network's own output, 20 clicks
  local py; py=$(local_python)
  "$py" -m model.cli evaluate --dataset grabcut --data-dir "$GRABCUT_DIR" --checkpoint "$1" \
    --no-edge-refine --no-graphcut-refine --max-clicks 20 --out "$2" ${3:+--limit "$3"} --resume
}

mode=${1:-}
shift || true
case "$mode" in
  plan)
    "$(local_python)" -m model.training.gpu_campaign plan --config "$CONFIG" "$@"
    ;;
  device)
    : "${OUT:?OUT must name the folder whose files come back}"
    export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1
    (nvidia-smi || echo "no nvidia-smi") >"$OUT/device.txt" 2>&1
    # TERM at 540 s to python alone (--foreground: its loader and robot processes must not get it,
    # or a step would fail instead of finishing): it ends its step, saves, and the export still
    # runs. KILL 20 s later. Training normally stops well before, on its own time_budget_s.
    set +e -o pipefail
    timeout --foreground -k 20 "${TRAIN_TIMEOUT_S:-540}" "${PYTHON:-python3}" -m model.training.gpu_campaign \
      train --config "$CONFIG" --pack .gpu/pack.npz --out "$OUT" "$@" 2>&1 | tee "$OUT/console.log"
    status=$?
    set -e
    if [[ $status -eq 124 && -f "$OUT/fcanet-gpu-fp16.safetensors" ]]; then
      echo "stopped by the time limit; the weights were saved and exported"
      status=0
    fi
    ls -l "$OUT"
    exit $status
    ;;
  score)
    dir=${1:?give the folder the device call returned}
    limit=${2:-}
    eval_dir=${EVAL_DIR:-runs/gpu-eval/$(basename "$(realpath "$dir")")}
    grabcut "$BUNDLE" "$eval_dir/bundle-grabcut" "$limit"
    grabcut "$dir/fcanet-gpu-fp16.safetensors" "$eval_dir/candidate-grabcut" "$limit"
    "$(local_python)" -m model.training.gpu_campaign score --config "$CONFIG" \
      --candidate "$dir/fcanet-gpu-fp16.safetensors" ${limit:+--samples "$limit"} \
      --bundle-grabcut "$eval_dir/bundle-grabcut" --candidate-grabcut "$eval_dir/candidate-grabcut" \
      --json "$eval_dir/compare.json"
    ;;
  dry-run)
    "$(local_python)" -m model.training.gpu_campaign plan --config "$CONFIG" --no-size-check
    rm -rf runs/gpu-dry-run
    mkdir -p runs/gpu-dry-run/out
    OUT=runs/gpu-dry-run/out PYTHON=$(local_python) bash "$0" device --device cpu --steps 3 --batch-size 2 \
      --workers 1 --robot-workers 1 --time-budget 600 --work-dir runs/gpu-dry-run/work
    EVAL_DIR=runs/gpu-dry-run/eval bash "$0" score runs/gpu-dry-run/out 3
    ;;
  -h|--help)
    sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$0"
    ;;
  *)
    sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$0" >&2
    exit 2
    ;;
esac
