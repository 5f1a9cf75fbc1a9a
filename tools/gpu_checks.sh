#!/usr/bin/env bash
# The book's GPU measurements in one call sized to a short GPU window (about 15 minutes on one H100/H200,
# start-up included): the parts run in order of value, each bounded, all within --minutes (default 7.5) of wall time.
#   tools/gpu_checks.sh [--out DIR] [--work DIR] [--minutes M] [--dry-run] [PART ...]
#   PART (default: all, always in this order):
#     bench  lcr_bench --mode gpu: LCR step vs MoCo v2 and the ceiling (bf16, channels-last), peak memory, pipeline, retrieval
#     data   lcr_bench_data on 1,280 CUB-size images: pairs/s of the PIL, CPU v2 and GPU batch pipelines
#     e2e    100 epochs of LCR at CUB size, stopped by --max_minutes 1.5 (set-up included): epochs done, projected total
#     cells  nbdev_test --flags cuda on the notebooks that have `cuda` cells (all at once)
#     study  lcr_experiments --budget gpu --jobs 8 with the rest of the budget; resumable: run `study` again
# The record (every figure with its command, the card, torch/CUDA versions) goes to DIR/gpu_checks.json and .md
# (default records/gpu/, extended by later calls); logs and outputs to runs/gpu_checks/.
# --dry-run runs every part at toy sizes on the CPU (what CI runs, tests/test_gpu_checks.py); its record says so.
# The parts, their order and bounds are documented in nbs/09_bench.ipynb ("The GPU run: one short window").
# Runs from the source tree (PYTHONPATH=.); installs nothing. PYTHON selects the interpreter (default python3).
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH=.${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
exec "${PYTHON:-python3}" tools/gpu_checks.py "$@"
