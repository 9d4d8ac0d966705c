"""Execute chapters under a profile, outside the book build: ``make chapter NAME=07 PROFILE=cpu``.

Writes the executed notebook to ``_build/chapters/<name>-<profile>.ipynb`` (open it in Jupyter to look at the
figures) and prints each chapter's wall time; exits non-zero when a cell raises. ``execute_chapter`` is also what
the test suite (``tests/test_chapters.py``) and ``make book`` (through ``--cache``) run, so a chapter executes
the same way everywhere.

    python book/run_chapter.py [PATTERN] [--cache DIR] [--jobs N]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

import jupytext
import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from pgsound.profile import PROFILES, current_profile

BOOK = Path(__file__).resolve().parent
ROOT = BOOK.parent
KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}


class ChapterClient(NotebookClient):
    """``NotebookClient`` that keeps its shell socket awake while a cell runs.

    Now and then nbclient's ``execute_request`` reaches the kernel only when the cell's timeout runs out, and the
    cell passes late by the whole timeout. A read of the client's shell socket events frees it, so every 0.2 s we
    ask the socket for them the way pyzmq does after each send (and wake whoever waits on them). The measurements
    are in benchmarks/README.md, "The chapter runner".
    """

    async def async_execute_cell(self, *args, **kwargs):
        nudge = asyncio.ensure_future(self._keep_shell_awake())
        try:
            return await super().async_execute_cell(*args, **kwargs)
        finally:
            nudge.cancel()

    async def _keep_shell_awake(self, every: float = 0.2) -> None:
        while True:
            await asyncio.sleep(every)
            socket = getattr(getattr(self.kc, "shell_channel", None), "socket", None)
            if socket is not None and not socket.closed:
                socket._schedule_remaining_events()


def chapter_notebook(path: Path) -> nbformat.NotebookNode:
    """The chapter's MyST Markdown as a notebook, with the kernel every profile runs."""
    notebook = jupytext.read(path)
    notebook.metadata["kernelspec"] = dict(KERNELSPEC)
    return notebook


# The longest cell a profile may run, in seconds. A training cell takes as long as its machine needs: chapter 9's
# cpu run took 17 minutes on one 2-core machine and over an hour on another (its 3600 s limit stopped it there),
# and the gpu profile trains for hours; neither should fail for being slow. Smoke stays short: it is the tests.
CELL_TIMEOUT_S = {"smoke": 3600, "cpu": 6 * 3600, "gpu": 48 * 3600}


def execute_chapter(path: Path, profile: str, timeout: int | None = None, env: dict[str, str] | None = None):
    """Execute one chapter under ``PGSOUND_PROFILE=profile``; returns the executed notebook.

    ``timeout``: the longest a cell may run, in seconds (default: the profile's :data:`CELL_TIMEOUT_S`).
    Raises ``CellExecutionError`` (the notebook given back on the exception as ``.notebook``) when a cell raises.
    """
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; expected one of {', '.join(PROFILES)}")
    timeout = CELL_TIMEOUT_S[profile] if timeout is None else timeout
    notebook = chapter_notebook(path)
    env = dict(os.environ if env is None else env) | {"PGSOUND_PROFILE": profile}
    # record_timing off: jupyter-cache hashes cell metadata, and timestamps would stop the book matching it.
    client = ChapterClient(notebook, timeout=timeout, kernel_name="python3", record_timing=False,
                           resources={"metadata": {"path": str(path.parent)}})
    try:
        client.execute(env=env)
    except CellExecutionError as error:
        error.notebook = notebook
        raise
    return notebook


def chapter_paths(pattern: str = "") -> list[Path]:
    """The chapters (MyST notebooks, not plain pages) whose file names contain ``pattern``."""
    glob = f"*{pattern}*.md" if pattern else "*.md"
    return sorted(p for p in BOOK.glob(glob) if "jupytext:" in p.read_text()[:400])


def timed_execution(path: Path, profile: str, env: dict[str, str]) -> tuple[nbformat.NotebookNode, str, float]:
    """Execute one chapter: (the notebook, "ok" or "FAILED" and the error, wall seconds)."""
    started = time.perf_counter()
    try:
        notebook, status = execute_chapter(path, profile, env=env), "ok"
    except CellExecutionError as error:
        notebook, status = error.notebook, f"FAILED\n{error}"
    return notebook, status, time.perf_counter() - started


def run(pattern: str, profile: str, cache: Path | None = None, jobs: int = 1) -> int:
    """Execute the matching chapters, ``jobs`` at a time, each kernel with its share of the cores.

    Much of a chapter keeps one core busy at most (start-up, plotting, decoding, small networks), so on a
    2-core machine two chapters on one thread each finish sooner than one after the other on two.
    """
    paths = chapter_paths(pattern)
    if not paths:
        print(f"no chapter in {BOOK} matches {pattern!r}", file=sys.stderr)
        return 2
    out = ROOT / "_build" / "chapters"
    out.mkdir(parents=True, exist_ok=True)
    # The kernel's inline backend, so that the written notebook holds the figures (Agg would drop them).
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    if jobs > 1 and "OMP_NUM_THREADS" not in env:
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // jobs))
    todo = []
    for path in paths:
        if cache is not None and in_jupyter_cache(cache, path):
            print(f"{path.stem:<28} {profile:<6} unchanged, already executed in {cache}", flush=True)
        else:
            todo.append(path)
    failed = 0
    # Each chapter has its own kernel process; the threads here only wait for them. The cache is written from
    # this thread alone (jupyter-cache's database takes one writer).
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        running = {pool.submit(timed_execution, path, profile, env): path for path in todo}
        for done in as_completed(running):
            path = running[done]
            notebook, status, seconds = done.result()
            failed += status != "ok"
            target = out / f"{path.stem}-{profile}.ipynb"
            nbformat.write(notebook, target)
            if cache is not None and status == "ok":
                store_in_jupyter_cache(cache, path, notebook)
            print(f"{path.stem:<28} {profile:<6} {seconds:8.1f} s  {status}  -> {target}", flush=True)
    return 1 if failed else 0


def in_jupyter_cache(cache: Path, path: Path) -> bool:
    """Whether the cache already holds an execution of this chapter's current code."""
    from jupyter_cache import get_cache

    try:
        get_cache(str(cache)).match_cache_notebook(chapter_notebook(path))
    except KeyError:
        return False
    return True


def store_in_jupyter_cache(cache: Path, path: Path, executed: nbformat.NotebookNode) -> None:
    """Put an executed chapter where ``jupyter-book build`` (execute_notebooks: cache) looks it up.

    The cache matches a notebook by its code cells and kernelspec, so the book then renders these outputs and
    executes nothing itself.
    """
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    get_cache(str(cache)).cache_notebook_bundle(
        CacheBundleIn(executed, uri=str(path)), check_validity=False, overwrite=True
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pattern", nargs="?", default="", help="part of the chapter file names (default: all)")
    parser.add_argument("--cache", type=Path, help="also store each executed chapter in this jupyter-cache")
    parser.add_argument("--jobs", type=int, default=1, help="chapters executed at a time (default 1)")
    args = parser.parse_args()
    if args.jobs < 1:
        parser.error(f"--jobs must be at least 1, got {args.jobs}")
    sys.exit(run(args.pattern, current_profile(), args.cache, args.jobs))  # PGSOUND_PROFILE, checked
