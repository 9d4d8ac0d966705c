"""What a run writes as it trains: the tick line, a JSON-lines log and TensorBoard (book: chapter 7).

One tick is a fixed number of images shown. At the end of each tick the loop reads its statistics from the
device once and hands them here; nothing in this module runs per step.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from pgsound.files import append_whole, atomic_write, read_jsonl
from pgsound.run_folder import LOG, LOG_TEXT


class RunLog:
    """Appends one JSON object per tick to ``log.jsonl`` and mirrors scalars to TensorBoard when installed.

    ``images_shown``: where the run stands (a resumed run: its checkpoint's count). Ticks logged after it, by a
    run that crashed between its log line and its checkpoint, are dropped from ``log.jsonl`` and ``log.txt``
    and purged from TensorBoard's view, so that a resumed run's log is exactly the uninterrupted run's.
    """

    def __init__(self, run_dir: str | Path, tensorboard: bool = True, images_shown: int | None = None) -> None:
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.jsonl_path = self.run_dir / LOG
        self.text_path = self.run_dir / LOG_TEXT
        if images_shown is not None:
            self.truncate(images_shown)
        self._writer = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                # On resume, purge_step hides the events of ticks after the checkpoint, as truncate() drops
                # their lines: TensorBoard then shows each step once.
                purge = images_shown + 1 if images_shown else None
                self._writer = SummaryWriter(str(self.run_dir / "tensorboard"), purge_step=purge)
            except ImportError:  # tensorboard is optional
                self._writer = None

    def tick(self, record: dict[str, Any]) -> str:
        """Write one tick's record; returns the human-readable tick line (also appended to log.txt)."""
        record = {k: (float(v) if isinstance(v, (np.floating, float)) else v) for k, v in record.items()}
        append_whole(self.jsonl_path, json.dumps(record) + "\n")
        line = format_tick(record)
        append_whole(self.text_path, line + "\n")
        if self._writer is not None:
            step = int(round(record["kimg"] * 1000))
            for key, value in record.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                    self._writer.add_scalar(key, value, step)
            self._writer.flush()
        return line

    def truncate(self, images_shown: int) -> int:
        """Keep the ticks up to ``images_shown`` images (rewriting both logs atomically); returns how many went."""
        if not self.jsonl_path.exists():
            return 0
        records = read_log(self.run_dir)
        kept = [r for r in records if round(r["kimg"] * 1000) <= images_shown]
        lines = sum(1 for line in self.jsonl_path.read_text(errors="replace").splitlines() if line.strip())
        if len(kept) == lines:  # nothing past the checkpoint and nothing damaged: nothing to rewrite
            return 0
        with atomic_write(self.jsonl_path) as tmp:
            tmp.write_text("".join(json.dumps(r) + "\n" for r in kept))
        with atomic_write(self.text_path) as tmp:
            tmp.write_text("".join(format_tick(r) + "\n" for r in kept))
        return len(records) - len(kept)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


def format_tick(record: dict[str, Any]) -> str:
    """``tick 12  kimg 48.0  level 3 (32x32)  alpha 0.500  batch 16  ...``"""
    parts = [
        f"tick {record['tick']:<4d}",
        f"kimg {record['kimg']:<8.1f}",
        f"level {record['level']} ({record['resolution']})",
        f"alpha {record['alpha']:.3f}",
        f"batch {record['batch']:<3d}",
        f"loss_d {record['loss_d']:+.3f}",
        f"loss_g {record['loss_g']:+.3f}",
        f"gp {record['penalty']:.3f}",
        f"sec/kimg {record['sec_per_kimg']:.2f}",
    ]
    if record.get("peak_mem_gb") is not None:
        parts.append(f"mem {record['peak_mem_gb']:.2f} GB")
    return "  ".join(parts)


def read_log(run_dir: str | Path) -> list[dict[str, Any]]:
    """All tick records of a run, in order (for plots: ``[r['loss_d'] for r in read_log(run)]``)."""
    return read_jsonl(Path(run_dir) / LOG)
