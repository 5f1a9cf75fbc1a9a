#!/usr/bin/env bash
# The book's GPU measurements in one command, each part's log (and JSON) under OUT.
#   tools/gpu_checks.sh OUT [PART ...]        PART: bench data cells e2e study (default: bench data cells e2e)
#   bench  lcr_bench --mode gpu: the LCR, MoCo v2 and ceiling steps, the data pipeline, retrieval, peak memory
#   data   lcr_bench_data on the CUB-size embedded preset: pairs/s of the PIL, CPU v2 and GPU batch pipelines
#   cells  the notebooks' tests with the `cuda` cells (sync-free step check, GPU profile, CUB-size training)
#   e2e    100 epochs of LCR on the CUB-size embedded set (ResNet-50, 224 px, batch 128), wall time
#   study  the experiments' `gpu` budget, STUDY_JOBS runs at once (default 8), starting no new run after
#          STUDY_MINUTES (default 20); rerun to go on
# Runs from the source tree (PYTHONPATH=.), so nothing needs installing beyond the packages in settings.ini.
set -uo pipefail
out=${1:?usage: tools/gpu_checks.sh OUT [bench] [data] [cells] [e2e] [study]}; shift
parts=${*:-bench data cells e2e}
py=${PYTHON:-python3}
export PYTHONPATH=.${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
mkdir -p "$out"
$py -c "import torch; assert torch.cuda.is_available(), 'CUDA is not available'" || exit 1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$out/gpu.txt" 2>&1
declare -A rc
for p in $parts; do
  t0=$(date +%s)
  case $p in
    bench) $py -m lcr.bench --mode gpu --out "$out/bench" ;;
    data)  $py -m lcr.augment --preset cub --root "$out/data_cache" --n_batches 8 ;;
    cells) LCR_TEST_FLAGS=cuda $py -m pytest -q tests/test_notebooks.py ;;
    e2e)   $py -m lcr.train --method lcr --backbone resnet50 --weights None --dataset synthetic --synth_preset cub \
             --epochs 100 --batch_size 128 --device cuda --progress print --out runs/bench_e2e ;;
    study) $py -m lcr.experiments --budget gpu --device cuda --out runs/study_gpu --max_minutes "${STUDY_MINUTES:-20}" \
             --jobs "${STUDY_JOBS:-8}" ;;
    *)     echo "unknown part '$p': choose from bench data cells e2e study" ;;
  esac > "$out/$p.log" 2>&1
  rc[$p]=$?
  echo "$p: exit ${rc[$p]}, $(( $(date +%s) - t0 )) s" | tee -a "$out/summary.txt"
done
rm -rf "$out/data_cache"
for p in $parts; do [ "${rc[$p]}" = 0 ] || exit 1; done
