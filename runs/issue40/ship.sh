#!/usr/bin/env bash
# Ship the long run (from the repository root, after the run was stopped at 250 kimg or more):
#   bash runs/issue40/ship.sh
# Stretches began at these commits (the HEAD when each resume started; see stretches.jsonl and pauses.log).
set -euo pipefail
cd "$(dirname "$0")/../.."
RUN=runs/issue40/00000-piano-cpu
WALL=$(.venv/bin/python runs/issue40/wall_seconds.py "$RUN" | sed -E 's/.* wall ([0-9]+) s .*/\1/')
KIMG=$(ls "$RUN"/checkpoints | sed -E 's/ckpt-0*([0-9.]+)kimg.pt/\1/' | sort -n | tail -1)
STRETCHES=$(wc -l < "$RUN"/stretches.jsonl)
echo "shipping $RUN at $KIMG kimg, wall $WALL s, $STRETCHES stretches"
OMP_NUM_THREADS=2 .venv/bin/python benchmarks/ship_run.py "$RUN" piano-cpu-long \
  --data runs/issue40/piano128s.h5 --threads 2 --wall-seconds "$WALL" --commit 3c75c0a \
  --command "prepare sampled-piano --size 128x128 --minutes 10 -o DATA" \
  --command "train --preset piano-cpu --data DATA --set schedule.total_kimg=300" \
  --target swd_over_floor=1.5 \
  --description "The piano-cpu preset with schedule.total_kimg=300 on 10 minutes of the sampled piano's music \
(prepare sampled-piano), shipped at its checkpoint of $KIMG kimg (the rest of its schedule was not trained): the \
long run chapter 9 plays beside piano-cpu. Trained on one 2-core AMD EPYC, 2 threads at nice 10, in $STRETCHES \
stretches resumed with --resume, begun at 3c75c0a and continued at 65dec17, db625d2, ecdad98, ca8385f, 2fc9e29, 9a5416b \
and 0e7c75c (the run's stretches.jsonl). Wall time is the ticks' time less the pauses (SIGSTOP) while tests ran \
on the same 2 cores; it includes the times tests that shared the cores slowed it."
