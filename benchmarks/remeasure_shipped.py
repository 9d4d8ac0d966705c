"""Measure shipped runs again with today's metrics and rewrite their manifests' ``evaluation``.

    python benchmarks/remeasure_shipped.py NAME [NAME ...] [--data-folder DIR]

Each run's real data is regenerated from its manifest's recipe into ``DIR/NAME-data.h5`` (kept there, so that a
second call reuses it); the weights are not touched. Use it when a metric is added (the note classifier's
``fid_notes`` and its companions were added so) and the shipped runs' manifests should carry it.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from pgsound import pretrained
from pgsound.commands.prepare import regenerate_pretrained_data


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="+", choices=pretrained.names())
    parser.add_argument("--data-folder", type=Path, default=Path("."))
    args = parser.parse_args(argv)
    for name in args.names:
        data = args.data_folder / f"{name}-data.h5"
        if not data.exists():
            regenerate_pretrained_data(name, data)
        started = time.perf_counter()
        metrics = pretrained.remeasure(name, data)
        shown = ", ".join(f"{k} {v:.3g}" for k, v in metrics.items() if "notes" in k or k == "swd_avg")
        print(f"{name}: {shown} ({time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
