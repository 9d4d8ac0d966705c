#!/usr/bin/env bash
# Wall time of `make test` and `make book` (cpu profile) against the issue's targets on a 2-core machine:
# make test under 15 minutes, make book under 45 minutes. The anchor is the target itself; the ratio is
# target / measured (above 1.00x: within the target).
#
#   benchmarks/bench_make.sh            # both (the book takes tens of minutes)
#   benchmarks/bench_make.sh test       # only make test
#   benchmarks/bench_make.sh book       # only make book (PROFILE=cpu)
#
# Run it from the repository root on an otherwise idle machine; the set-up of .venv on a first run is timed
# separately (make venv) so that it does not count. Each target's full log goes to _build/bench_make-NAME.log.
set -euo pipefail
cd "$(dirname "$0")/.."
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(test book)
for name in "${targets[@]}"; do
  case "$name" in test|book) ;; *) echo "unknown target '$name': expected test or book" >&2; exit 2 ;; esac
done
mkdir -p _build

start=$(date +%s.%N)
make venv >/dev/null
printf '# set-up (make venv): %.0f s\n' "$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')"
printf '# %s, %s cores, %s\n' "$(uname -m)" "$(nproc)" "$(.venv/bin/python -c 'import torch; print("torch", torch.__version__)')"
printf '%-10s | %10s | %12s | %7s | %s\n' target "wall (min)" "target (min)" ratio status
for name in "${targets[@]}"; do
  case "$name" in
    test) limit=15; cmd=(make test) ;;
    # The book build caches executed notebooks: clear the cpu cache so that every chapter really runs.
    book) limit=45; cmd=(make book PROFILE=cpu); rm -rf _build/.jupyter_cache-cpu ;;
  esac
  start=$(date +%s.%N)
  status=ok
  "${cmd[@]}" >"_build/bench_make-$name.log" 2>&1 || status="FAILED (see _build/bench_make-$name.log)"
  minutes=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { print (b - a) / 60 }')
  printf '%-10s | %10.1f | %12d | %6.2fx | %s\n' "make $name" "$minutes" "$limit" \
    "$(awk -v l="$limit" -v m="$minutes" 'BEGIN { print l / m }')" "$status"
done
