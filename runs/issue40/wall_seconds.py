"""The long run's wall time for ship_run.py --wall-seconds: each tick's seconds (sec_per_kimg times its kimg),
less the SIGSTOP pauses of pauses.log that fall inside ticks.   python wall_seconds.py RUN_FOLDER [pauses.log]"""

import datetime
import json
import sys
from pathlib import Path

run = Path(sys.argv[1])
pauses_file = Path(sys.argv[2] if len(sys.argv) > 2 else Path(__file__).with_name("pauses.log"))
ticks, previous = [], 0.0
for line in (run / "log.jsonl").read_text().splitlines():
    tick = json.loads(line)
    seconds = tick["sec_per_kimg"] * (tick["kimg"] - previous)
    ticks.append((tick["time"] - seconds, tick["time"]))
    previous = tick["kimg"]
stopped, pauses = None, []
for line in pauses_file.read_text().splitlines():
    when = datetime.datetime.fromisoformat(line.split()[0].replace("Z", "+00:00")).timestamp()
    if "SIGSTOP" in line:
        stopped = when
    elif "SIGCONT" in line and stopped is not None:
        pauses.append((stopped, when))
        stopped = None
paused = sum(max(0.0, min(end, b) - max(start, a)) for start, end in ticks for a, b in pauses)
total = sum(end - start for start, end in ticks)
print(f"ticks {total:.0f} s, paused inside ticks {paused:.0f} s, wall {total - paused:.0f} s "
      f"({(total - paused) / 3600:.2f} h) to {previous} kimg")
