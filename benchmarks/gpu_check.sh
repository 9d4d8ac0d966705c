#!/usr/bin/env bash
# Every GPU figure and GPU test of the project in one run, sized to about 10 minutes on a recent card.
#
#   benchmarks/gpu_check.sh                 # logs to _build/gpu_check/ (or to $OUT when it is set)
#
# 0. pgsound preflight --preset piano512 at the paper's widths, bf16 (the default on CUDA) then fp32: every phase
#    to 512x512 at its minibatch, peak memory and s/step per phase, hours to 2000 kimg (preflight-*.json);
# 1. the tests that need CUDA or change on it (bf16 autocast, torch.compile, the CUDA Griffin-Lim, the trainer,
#    the step under torch.cuda.set_sync_debug_mode("error"));
# 2. bench_gpu_memory.py --compile: peak memory and sec/kimg at 512x512 with piano512 (batch 6), fp32 eager
#    against bf16 + channels_last (+ compile), the issue's "under 9.5 GB" and "bf16 >= 2.5x fp32" at 512;
# 3. bench_train_step.py at 256 and 512 with the paper's widths: plain fp32 eager (the anchor) against
#    Trainer.step in fp32 and with bf16 + channels_last (the peer is left out: pip would have to fetch it);
# 4. bench_phase.py: Griffin-Lim on the GPU (batch 1 and 8) beside librosa on the CPU.
# Each step has its own time limit, so a hang costs that step only; the summary at the end gives each exit code.
# Needs the project's dependencies in the Python it runs ($PY, else .venv/bin/python, else python3): on a
# machine with no network, put the wheels of librosa, soundfile and their dependencies in .whl/ (git ignores
# nothing there by default: add it to .git/info/exclude) and the script installs them first (benchmarks/README.md).
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)}
LOGS=${OUT:-_build/gpu_check}
mkdir -p "$LOGS"
if compgen -G ".whl/*.whl" >/dev/null; then  # carried wheels (a machine with no network): install them beside
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/pgsound-site \
    .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/pgsound-site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

if ! "$PY" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  echo "no CUDA device visible to $PY: nothing to measure" >&2
  exit 0
fi
"$PY" -c "import torch; print('#', torch.cuda.get_device_name(), '| torch', torch.__version__, '| CUDA', torch.version.cuda)" \
  | tee "$LOGS/device.log"

summary=()
step() {  # step NAME SECONDS COMMAND...
  local name=$1 limit=$2
  shift 2
  echo "==> $name (at most $limit s): $*"
  local start=$SECONDS
  timeout "$limit" "$@" 2>&1 | tee "$LOGS/$name.log"
  local status=${PIPESTATUS[0]}
  summary+=("$(printf '%-12s exit %3d  %4d s' "$name" "$status" $((SECONDS - start)))")
}

step preflight 150 "$PY" -m pgsound.cli preflight --preset piano512 --json "$LOGS/preflight-bf16.json"
step preflight_fp32 150 "$PY" -m pgsound.cli preflight --preset piano512 --set precision=fp32 --no-resume-check \
  --json "$LOGS/preflight-fp32.json"
step tests 180 "$PY" -m pytest -q -p no:cacheprovider tests/test_networks.py tests/test_loss.py tests/test_phase_retrieval.py \
  tests/test_trainer.py tests/test_preflight.py::test_the_step_makes_no_host_synchronisation_on_cuda
step memory 180 "$PY" benchmarks/bench_gpu_memory.py --compile --steps 10 --rounds 2 --warmup 3
step train_step 150 "$PY" benchmarks/bench_train_step.py --paper-widths --resolutions 256,512 --alphas 1 \
  --paths plain,trainer,bf16 --warmup 2 --rounds 3 --seconds 2
step phase 120 "$PY" benchmarks/bench_phase.py --no-storage --gpu-focus

echo "==> summary (logs in $LOGS)"
printf '%s\n' "${summary[@]}" | tee "$LOGS/summary.log"
