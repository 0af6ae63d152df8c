#!/usr/bin/env bash
# All GPU checks in one go (at most 10 minutes on one H100): the speed benchmark at the paper
# setting (plain vs fast, with an operator profile), the torch.compile path (the whole noise-da
# forward traces as one graph; compiling it took over 2 minutes on an H100, twice cut short when
# it ran last), the loss-curve check (small setting, 300 steps), the quality benchmark at 800
# steps (gpu-paper preset). The compile stage times fast-compile alone: its ratio is taken
# against the plain path of the first stage, on the same machine in the same run.
# Each stage has its own time limit and writes its JSON as it goes, so a stage cut short
# still leaves its numbers.
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
    speed=(--settings small --warmup 1 --steps 1 --repeats 1 --restore-size 64)
    curve=(--settings small --methods vanilla --paths plain fast --warmup 1 --steps 1 --repeats 1 --skip-restore
           --curve-steps 4)
    quality=(--preset cpu-small --steps 4)
    compiled=(--settings small --methods vanilla --paths fast --warmup 1 --steps 1 --repeats 1 --skip-restore)
    limit=(300 300 300 300)
else
    # Most important first: the paper-setting step times and restore (plain vs the default fast path).
    speed=(--settings paper --paths plain fast fast-nchw --profile paper noise-da fast)
    curve=(--settings small --methods vanilla --paths plain fast --skip-restore --curve-steps 300)
    quality=(--preset gpu-paper --steps 800)
    compiled=(--settings paper --methods noise-da --paths fast-compile --warmup 3 --skip-restore)
    limit=(110 80 170 230)
fi
nvidia-smi > "$out/nvidia-smi.txt" 2>&1 || true
timeout "${limit[0]}" python3 speed.py "${speed[@]}" --out "$out/speed.json" 2>&1 | tee "$out/log.txt"
timeout "${limit[3]}" python3 speed.py "${compiled[@]}" --out "$out/speed-compile.json" 2>&1 \
    | grep -v Warning | tee -a "$out/log.txt"
timeout "${limit[1]}" python3 speed.py "${curve[@]}" --out "$out/speed-curve.json" 2>&1 | tee -a "$out/log.txt"
timeout "${limit[2]}" python3 quality.py --data "$data" "${quality[@]}" --runs /tmp/noiseda-quality \
    --out "$out/quality.json" 2>&1 | tee -a "$out/log.txt"
ls -la "$out"
