#!/usr/bin/env bash
# All GPU checks in one go, most important first; each stage has its own time limit and writes
# its JSON as it goes, so a stage cut short still leaves numbers. About 8.5 minutes on one H100;
# QUALITY=1 adds 3 (run it as its own call if the device time is short).
#   1. speed at the paper setting, plain vs fast (the default), with an operator profile of the
#      noise-da step; restoring 1024x1024 plain vs fast vs fast-compile
#   2. the loss-curve check (small setting, 300 steps): fast against plain
#   3. the noise-da step with torch.compile, in the default layout and with the compiler's
#      channels-last conversion forced (fast-compile-cl, profiled); compiling took 110 s for
#      the first on an H100. Ratios are taken against stage 1's plain path (same machine, run).
#   4. LOADER=1 only: data-loader samples/s per data.cache mode with 1, 4, 8 workers, on images
#      enlarged 3x (does the machine's CPU feed the step of stage 1? ~2 minutes)
#   5. QUALITY=1 only: the quality benchmark at 800 steps (gpu-paper preset, ~3 minutes)
#
#   benchmarks/gpu_check.sh DATA OUT          # DATA: ../shared/data, or a folder made by pack_data.py
#   CHECK=tiny benchmarks/gpu_check.sh DATA OUT   # a rehearsal of a few minutes (CPU is fine)
set -u
data=${1:?data folder}
out=${2:?output folder}
data=$(realpath "$data")  # absolute: the stages run from benchmarks/
mkdir -p "$out" && out=$(realpath "$out")
export PYTHONUNBUFFERED=1
cd "$(dirname "$0")"
if [ "${CHECK:-full}" = tiny ]; then
    speed=(--settings small --paths plain fast --warmup 1 --steps 1 --repeats 1 --restore-size 64
           --restore-paths fast fast-compile)
    curve=(--methods --paths plain fast --curve-steps 4 --skip-restore)
    compiled=(--settings small --methods vanilla --paths fast-compile fast-compile-cl --warmup 1 --steps 1
              --repeats 1 --skip-restore)
    loader=(--max-images 4 --batch 4 --steps 2 --repeats 1 --workers 0 2)
    quality=(--preset cpu-small --steps 4)
    limit=(300 300 300 300 300)
else
    speed=(--settings paper --paths plain fast --profile paper noise-da fast --restore-paths fast fast-compile)
    curve=(--methods --paths plain fast --curve-steps 300 --skip-restore)
    compiled=(--settings paper --methods noise-da --paths fast-compile fast-compile-cl --warmup 3 --skip-restore
              --profile paper noise-da fast-compile-cl)
    loader=(--max-images 40 --steps 4 --repeats 2 --workers 1 4 8 --cache memory disk disk-cold none)  # slowest last
    quality=(--preset gpu-paper --steps 800)
    limit=(150 75 290 150 170)
fi
nvidia-smi > "$out/nvidia-smi.txt" 2>&1 || true
timeout "${limit[0]}" python3 speed.py "${speed[@]}" --out "$out/speed.json" 2>&1 | grep -v Warning \
    | tee "$out/log.txt"
timeout "${limit[1]}" python3 speed.py "${curve[@]}" --out "$out/speed-curve.json" 2>&1 | tee -a "$out/log.txt"
timeout "${limit[2]}" python3 speed.py "${compiled[@]}" --out "$out/speed-compile.json" 2>&1 \
    | grep -v Warning | tee -a "$out/log.txt"
if [ "${LOADER:-0}" = 1 ]; then
    timeout "${limit[3]}" python3 loader.py --clean "$data/clean" --real "$data/denoise/real-unlabeled" --upscale 3 \
        "${loader[@]}" --out "$out/loader.json" 2>&1 | tee -a "$out/log.txt"
fi
if [ "${QUALITY:-0}" = 1 ]; then
    timeout "${limit[4]}" python3 quality.py --data "$data" "${quality[@]}" --runs /tmp/noiseda-quality \
        --out "$out/quality.json" 2>&1 | tee -a "$out/log.txt"
fi
ls -la "$out"
