#!/usr/bin/env bash
# All GPU checks in one go (under 9 minutes on one H100), most important first; each stage has
# its own time limit and writes its JSON as it goes, so a stage cut short still leaves numbers.
#   1. speed at the paper setting: plain vs fast (the default) vs fast-cl (the diffusion net
#      channels-last too), with an operator profile; restoring 1024x1024 plain / fast / fast-tuned
#   2. the loss-curve check (small setting, 300 steps): fast and fast-cl against plain
#   3. restoring with torch.compile
#   4. the noise-da step with torch.compile (the whole forward traces as one graph; compiling
#      takes minutes). Its ratio is taken against stage 1's plain path (same machine, same run).
#   5. QUALITY=1 only: the quality benchmark at 800 steps (gpu-paper preset, ~3 minutes)
#
#   benchmarks/gpu_check.sh DATA OUT          # DATA: ../shared/data, or a folder made by pack_data.py
#   CHECK=tiny benchmarks/gpu_check.sh DATA OUT   # a rehearsal of a few minutes (CPU is fine)
set -u
data=${1:?data folder}
out=${2:?output folder}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
cd "$(dirname "$0")"
if [ "${CHECK:-full}" = tiny ]; then
    speed=(--settings small --paths plain fast fast-cl --warmup 1 --steps 1 --repeats 1 --restore-size 64
           --restore-paths fast fast-tuned)
    curve=(--settings small --methods vanilla --paths plain fast fast-cl --warmup 1 --steps 1 --repeats 1
           --skip-restore --curve-steps 4)
    restore_compiled=(--methods --restore-paths fast-compile --repeats 1 --restore-size 64)
    compiled=(--settings small --methods vanilla --paths fast-compile --warmup 1 --steps 1 --repeats 1 --skip-restore)
    quality=(--preset cpu-small --steps 4)
    limit=(300 300 300 300 300)
else
    speed=(--settings paper --paths plain fast fast-cl --profile paper noise-da fast-cl
           --restore-paths fast fast-tuned)
    curve=(--settings small --methods vanilla --paths plain fast fast-cl --skip-restore --curve-steps 300)
    restore_compiled=(--methods --restore-paths fast-compile)
    compiled=(--settings paper --methods noise-da --paths fast-compile --warmup 3 --skip-restore)
    quality=(--preset gpu-paper --steps 800)
    limit=(120 80 70 260 170)
fi
nvidia-smi > "$out/nvidia-smi.txt" 2>&1 || true
timeout "${limit[0]}" python3 speed.py "${speed[@]}" --out "$out/speed.json" 2>&1 | tee "$out/log.txt"
timeout "${limit[1]}" python3 speed.py "${curve[@]}" --out "$out/speed-curve.json" 2>&1 | tee -a "$out/log.txt"
timeout "${limit[2]}" python3 speed.py "${restore_compiled[@]}" --out "$out/speed-restore-compile.json" 2>&1 \
    | grep -v Warning | tee -a "$out/log.txt"
timeout "${limit[3]}" python3 speed.py "${compiled[@]}" --out "$out/speed-compile.json" 2>&1 \
    | grep -v Warning | tee -a "$out/log.txt"
if [ "${QUALITY:-0}" = 1 ]; then
    timeout "${limit[4]}" python3 quality.py --data "$data" "${quality[@]}" --runs /tmp/noiseda-quality \
        --out "$out/quality.json" 2>&1 | tee -a "$out/log.txt"
fi
ls -la "$out"
