"""What a training loop needs from its surroundings: a clean stop on a signal, and a progress bar (book: chapter 7).

``pgsound train`` stopped by Ctrl-C or a batch scheduler's SIGTERM finishes its step, ends the tick (checkpoint
included) and returns; the loop asks :func:`stop_on_signals` whether to go on.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass
class StopRequest:
    signal: int | None = None  # the signal received, if any

    @property
    def requested(self) -> bool:
        return self.signal is not None


@contextlib.contextmanager
def stop_on_signals() -> Iterator[StopRequest]:
    """SIGINT and SIGTERM set ``requested``: the loop finishes its step and tick, then returns."""
    stop = StopRequest()

    def request_stop(signum, frame):
        stop.signal = signum

    previous = {}
    try:
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, request_stop)
    except ValueError:  # not the main thread: leave signals alone
        previous = {}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def progress_bar(total_kimg: float, images_shown: int):
    """A text bar in kimg (the widget bar needs ipywidgets and a kernel)."""
    from tqdm import tqdm

    shown = round(images_shown / 1000, 3)
    return tqdm(  # tqdm drops a total below the start, which the format below needs
        total=max(round(total_kimg, 3), shown), initial=shown, unit="kimg",
        bar_format="{l_bar}{bar}| {n:.1f}/{total:.1f} kimg [{elapsed}<{remaining}{postfix}]",
    )
