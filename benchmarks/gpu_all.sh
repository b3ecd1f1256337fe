#!/usr/bin/env bash
# Every GPU check of issue 20 in one run, for one H100/H200 session (under 10 minutes).
#
#   bash benchmarks/gpu_all.sh --data DIR [--out DIR] [--epochs N] [--train-minutes M] [--budget S] [-- TRAIN ARGS...]
#   bash benchmarks/gpu_all.sh --dry-run --data DIR      # print the plan, run nothing
#   bash benchmarks/gpu_all.sh --smoke --data DIR        # the same stages on the CPU (numpy, 2 steps)
#
# DIR is Imagenette (train/<wnid>/*.JPEG, val/<wnid>/*.JPEG), or a folder of
# tar parts written by benchmarks/pack_images.py (unpacked and checked first).
# Stages, each with its own time limit, writing these 8 files to --out (default
# $OUT on a device machine, else ./gpu-out; a device call returns at most 8):
#   1. bench.md     first the machine: GPU, driver, python/numpy/cupy/torch versions, date
#   2. tests.log    the GPU tests (tests/test_gpu.py, test_gpu_precision.py) and NVRTC's compile
#                   of every kernel (test_cuda_compile.py, float16 included), then
#                   python -m minialex.reproduce lrn-cifar --quick --backend cupy and its result.md
#                   (the cuda-convnet nets' .to(cupy) and a reproduction's runner on the GPU)
#   3. bench.md     benchmarks/gpu.py --suite: paper and cifar nets x fp32/tf32/fp16 vs PyTorch
#      bench.json   the same rows
#   4. data.log     pack_images.py --unpack (parts only), python -m minialex.data prepare DIR
#                   (Sec. 2: short side 256, centre 256x256)
#   5. train.log    python -m minialex.train --config paper on the prepared set (stopped by
#      metrics.csv  SIGINT at --train-minutes; the trainer checkpoints on the signal)
#      curves.png
#   6. eval.txt     python -m minialex.evaluate --ten-crop on the val split
# Installs nothing: the device image has cupy, torch, numpy, numba, pillow,
# matplotlib, pytest (docs/gpu.md). Every stage runs even if one before it
# failed; the exit status is the number of failed stages.
# --budget S (default 540 on the GPU: a device call is cut at 600 s) caps the
# whole script: each stage's limit shrinks to what is left of the budget, less
# the evaluation's reserve (its limit + 30 s), so the last stages still run
# when early ones take their full limits; a stage with under 10 s left is
# skipped and counted failed. The stages' own limits add up to more than the
# budget (990 s with unpacking): they are maxima, and most stages end early.
set -u

DATA="" OUTDIR="${OUT:-}" EPOCHS=60 TRAIN_MIN=4.5 DRY=0 SMOKE=0 EXTRA=() BUDGET=""
while [ $# -gt 0 ]; do
  case "$1" in
    --data) DATA="$2"; shift 2 ;;
    --out) OUTDIR="$2"; shift 2 ;;
    --epochs) EPOCHS="$2"; shift 2 ;;
    --train-minutes) TRAIN_MIN="$2"; shift 2 ;;
    --budget) BUDGET="$2"; shift 2 ;;
    --dry-run) DRY=1; shift ;;
    --smoke) SMOKE=1; shift ;;
    --) shift; EXTRA=("$@"); break ;;
    *) echo "gpu_all.sh: unknown option $1 (see the header of benchmarks/gpu_all.sh)" >&2; exit 2 ;;
  esac
done
if [ -z "$DATA" ]; then
  echo "gpu_all.sh: --data DIR is required (Imagenette, or pack_images.py parts; docs/gpu.md)" >&2; exit 2
fi
if [ ! -d "$DATA" ]; then
  echo "gpu_all.sh: --data $DATA: no such folder" >&2; exit 2
fi
if [ -n "$BUDGET" ] && ! [[ "$BUDGET" =~ ^[0-9]+$ ]]; then
  echo "gpu_all.sh: --budget $BUDGET: expected whole seconds, e.g. --budget 540" >&2; exit 2
fi
OUTDIR="${OUTDIR:-gpu-out}"
DATA="$(cd "$DATA" && pwd)"                                  # absolute: the script moves to the repo root
case "$OUTDIR" in /*) ;; *) OUTDIR="$PWD/$OUTDIR" ;; esac
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
PY="${PYTHON:-python3}"
WORK="${GPU_ALL_WORK:-/tmp/minialex-gpu-all}"
BACKEND=cupy
[ "$SMOKE" = 1 ] && BACKEND=numpy

if [ "$SMOKE" = 1 ]; then      # the CPU: a few images, two steps, the same commands otherwise
  TRAIN_ARGS=(--limit 32 --batch-size 16 --max-steps 2 --epochs 1)
  PREP_ARGS=(--max-per-class 8 --workers 1)
  EVAL_ARGS=(--limit 16 --batch-size 16)
  BENCH_ARGS=(--suite --steps 1 --warmup 0)
  TEST_LIMIT=120 BENCH_LIMIT=60 PREP_LIMIT=300 TRAIN_LIMIT=600 EVAL_LIMIT=300 REPRO_LIMIT=400
  BUDGET="${BUDGET:-3600}"     # a CPU has no device call's 600 s; the stages' own limits rule
else
  TRAIN_ARGS=(--epochs "$EPOCHS" --loader-workers 8)
  EVAL_ARGS=(--batch-size 256)
  BENCH_ARGS=(--suite --cuda-graphs --steps 20 --warmup 5)
  PREP_ARGS=(--workers "$(nproc 2>/dev/null || echo 4)")
  TEST_LIMIT=150 BENCH_LIMIT=150 PREP_LIMIT=120 EVAL_LIMIT=60 REPRO_LIMIT=120
  TRAIN_LIMIT=$(awk "BEGIN { print int($TRAIN_MIN * 60) }")
  BUDGET="${BUDGET:-540}"      # a device call is cut at 600 s; 60 s for bench.md's first lines and slack
fi
DEADLINE=$((SECONDS + BUDGET))

FAILED=0
stage() {   # stage NAME LIMIT_S LOGFILE CMD...: run CMD under a time limit, output appended to LOGFILE
  local name="$1" limit="$2" log="$3"; shift 3
  local reserve=$((EVAL_LIMIT + 30))            # the evaluation's own time is kept for it
  [ "$name" = "evaluate" ] && reserve=0
  local left=$((DEADLINE - SECONDS - reserve))
  if [ "$left" -lt 10 ]; then
    echo "== $name: skipped, the --budget of ${BUDGET}s is spent (${left}s left after the evaluation's reserve)"
    FAILED=$((FAILED + 1)); return 0
  fi
  [ "$limit" -gt "$left" ] && limit=$left
  echo "== $name (limit ${limit}s): $*"
  [ "$DRY" = 1 ] && return 0
  local t0=$SECONDS
  timeout --signal=INT --kill-after=30 "$limit" "$@" >>"$OUTDIR/$log" 2>&1
  local rc=$?
  if [ "$SMOKE" = 1 ] && [ "$name" = "gpu tests" ] && [ $rc -eq 5 ]; then
    rc=0                      # pytest's 5: every test skipped (no CuPy), which is right on the CPU
  fi
  echo "   $name: exit $rc after $((SECONDS - t0)) s -> $OUTDIR/$log"
  if [ $rc -ne 0 ]; then FAILED=$((FAILED + 1)); tail -5 "$OUTDIR/$log"; fi
  return 0
}

if [ "$DRY" = 0 ]; then
  mkdir -p "$OUTDIR" "$WORK"
  (cd "$OUTDIR" && rm -f bench.md bench.json tests.log data.log train.log metrics.csv curves.png eval.txt)
fi

# 1. what this machine is
if [ "$DRY" = 0 ]; then
  { date -u; nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1 | head -3
    "$PY" -c "import platform, numpy; print('python', platform.python_version(), 'numpy', numpy.__version__)"
    "$PY" -c "import cupy; print('cupy', cupy.__version__, 'CUDA runtime', cupy.cuda.runtime.runtimeGetVersion())" 2>&1 | tail -1
    "$PY" -c "import torch; print('torch', torch.__version__, 'CUDA', torch.version.cuda, 'cuDNN', torch.backends.cudnn.version())" 2>&1 | tail -1
    git log -1 --format='minialex %H %cd' 2>/dev/null; echo; } >"$OUTDIR/bench.md"
fi

# 2. the GPU tests (they skip without CuPy or a device: the smoke run shows them skipping)
stage "gpu tests" "$TEST_LIMIT" tests.log "$PY" -m pytest -q -p no:cacheprovider \
  tests/test_gpu.py tests/test_gpu_precision.py tests/test_cuda_compile.py

# 2b. a reproduction on the GPU: lrn-cifar's miniature (bundled data, the cuda-convnet nets)
REPRO="$WORK/repro"
[ "$DRY" = 0 ] && rm -rf "$REPRO"
stage "reproduce" "$REPRO_LIMIT" tests.log "$PY" -m minialex.reproduce lrn-cifar --quick \
  --backend "$BACKEND" --out "$REPRO"
[ "$DRY" = 0 ] && [ -f "$REPRO/result.md" ] && cat "$REPRO/result.md" >>"$OUTDIR/tests.log"

# 3. the benchmark table
stage "benchmark" "$BENCH_LIMIT" bench.md "$PY" benchmarks/gpu.py "${BENCH_ARGS[@]}" --json "$OUTDIR/bench.json"

# 4. the data: unpack the parts if DATA holds them, then prepare (decode once, Sec. 2)
SRC="$DATA"
if [ -f "$DATA/manifest.tsv" ]; then
  SRC="$WORK/images"
  stage "unpack" 120 data.log "$PY" benchmarks/pack_images.py "$DATA" --unpack "$SRC"
fi
PREPARED="$WORK/prepared"
stage "prepare" "$PREP_LIMIT" data.log "$PY" -m minialex.data prepare "$SRC" "$PREPARED" \
  "${PREP_ARGS[@]}" --overwrite --quiet

# 5. the paper net on Imagenette (Sec. 5's SGD and init unless TRAIN ARGS say otherwise)
RUN="$WORK/run"
stage "train" "$TRAIN_LIMIT" train.log "$PY" -m minialex.train --backend "$BACKEND" --config paper \
  --data "$PREPARED" --out "$RUN" --overwrite --quiet "${TRAIN_ARGS[@]}" "${EXTRA[@]}"
if [ "$DRY" = 0 ]; then
  for f in metrics.csv curves.png; do [ -f "$RUN/$f" ] && cp "$RUN/$f" "$OUTDIR/"; done
fi

# 6. ten-crop evaluation on the val split
stage "evaluate" "$EVAL_LIMIT" eval.txt "$PY" -m minialex.evaluate "$RUN/checkpoint.npz" --ten-crop \
  --backend "$BACKEND" --data "$PREPARED" "${EVAL_ARGS[@]}"

echo "gpu_all.sh: $FAILED stage(s) failed; files in $OUTDIR"
exit "$FAILED"
