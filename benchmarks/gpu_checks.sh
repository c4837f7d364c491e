#!/usr/bin/env bash
# Every GPU check in one script, for a session lent a GPU machine (under 10 min on one H100): the
# gpu-marked tests (every example study at tiny size with its defaults, 16-mixed and bf16-mixed; the
# trainer API; reruns; a killed run resuming; fractional GPUs through Ray; image files streamed through
# pinned memory against the in-memory path), then the benchmarks at
# GPU-sized workloads, each section under its own time limit so one slow part cannot eat the others.
# Quote its output with the card's name. Run from the repository root: bash benchmarks/gpu_checks.sh [LOGDIR]
set -u
log=${1:-/tmp/gpu_checks}
mkdir -p "$log"
section() {  # section NAME SECONDS CMD...: run with a limit, keep the whole log, print its tail
  local name=$1 limit=$2; shift 2
  local t0=$SECONDS
  echo "== $name (limit ${limit}s)"
  timeout "$limit" "$@" > "$log/$name.log" 2>&1
  local rc=$?
  tail -n "${TAIL:-6}" "$log/$name.log"
  echo "-- $name: rc=$rc in $((SECONDS - t0)) s"
}
python -c "import torch; print('device:', torch.cuda.get_device_name(0), '| torch', torch.__version__, '| cuda', torch.version.cuda)"
python -c "import ray; print('ray', ray.__version__)" 2>&1 | tail -1
# pytest-xdist where present: the tiny studies are start-up bound, six at once share the one GPU well
xdist=$(python -c "import xdist" 2>/dev/null && echo "-n 6")
TAIL=30 section gpu_tests 250 python -m pytest -q -m gpu tests/gpu -p no:cacheprovider -rfEs $xdist
cd benchmarks
section bench_workers 110 python bench_workers.py --gpu --epochs 8 --n 8000
section bench_train 70 python bench_train_throughput.py --repeats 2 --n 6000
# packing small runs (issue 27): 8 Simple CNN seeds fused by vmap, and CUDA graphs, against one after another
section bench_packing 40 python bench_packing.py --seeds 8 --epochs 2 --n 6400 --pairs 3
section bench_seg 60 python bench_seg_throughput.py --patch 128 --batch 16 --iters 60 --size 256 --precision 16-mixed --repeats 2
section bench_timm 50 python bench_timm_throughput.py --size 160 --n 2048 --batch 64 --precision bf16-mixed --repeats 2
