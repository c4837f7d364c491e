#!/usr/bin/env bash
# Every GPU check of the training path in one script, for a session lent a GPU machine (~10 min on one
# H100): the gpu-marked tests (every example study at tiny size with its defaults, 16-mixed and
# bf16-mixed; the trainer API; reruns), then the benchmarks at GPU-sized workloads. Quote its output with
# the card's name. Run from the repository root: bash benchmarks/gpu_checks.sh
set -u
python -c "import torch; print('device:', torch.cuda.get_device_name(0), '| torch', torch.__version__)"
python -m pytest -q -m gpu tests/gpu -p no:cacheprovider 2>&1 | tail -15
cd benchmarks
python bench_train_throughput.py --repeats 3 --n 6000
python bench_timm_throughput.py --size 160 --n 4096 --batch 64 --precision bf16-mixed --repeats 2
python bench_seg_throughput.py --patch 128 --batch 16 --iters 100 --size 256 --precision 16-mixed --repeats 2
python bench_study_overhead.py demo
python bench_study_overhead.py seg3d --set protocol.epochs=10
python bench_workers.py --gpu --epochs 30 --n 20000
