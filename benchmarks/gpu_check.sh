#!/usr/bin/env bash
# All GPU checks in one go (about 7 minutes on one H100): the speed benchmark (paper and small
# settings, plain vs fast, loss curves), the quality benchmark at 800 steps (gpu-paper preset),
# then the torch.compile path. Each stage has its own time limit and writes its JSON as it
# goes, so a stage cut short still leaves its numbers.
#
#   benchmarks/gpu_check.sh DATA OUT          # DATA: ../shared/data, or a folder made by pack_data.py
#   CHECK=tiny benchmarks/gpu_check.sh DATA OUT   # a minute-long rehearsal (CPU is fine)
set -u
data=${1:?data folder}
out=${2:?output folder}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
cd "$(dirname "$0")"
if [ "${CHECK:-full}" = tiny ]; then
    speed=(--settings small --warmup 1 --steps 1 --repeats 1 --restore-size 64 --curve-steps 4)
    quality=(--preset cpu-small --steps 4)
    compiled=(--settings small --methods vanilla --paths plain fast --warmup 1 --steps 1 --repeats 1 --restore-size 64)
    limit=(300 300 300)
else
    speed=(--settings paper small --paths plain fast --curve-steps 300)
    quality=(--preset gpu-paper --steps 800)
    compiled=(--settings paper --methods noise-da --paths plain fast fast-compile)
    limit=(130 200 170)
fi
nvidia-smi > "$out/nvidia-smi.txt" 2>&1 || true
timeout "${limit[0]}" python3 speed.py "${speed[@]}" --out "$out/speed.json" 2>&1 | tee "$out/log.txt"
timeout "${limit[1]}" python3 quality.py --data "$data" "${quality[@]}" --runs /tmp/noiseda-quality \
    --out "$out/quality.json" 2>&1 | tee -a "$out/log.txt"
timeout "${limit[2]}" python3 speed.py "${compiled[@]}" --out "$out/speed-compile.json" 2>&1 | tee -a "$out/log.txt"
ls -la "$out"
