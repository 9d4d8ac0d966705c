"""Execute chapters under a profile, outside the book build: ``make chapter NAME=07 PROFILE=cpu``.

Writes the executed notebook to ``_build/chapters/<name>-<profile>.ipynb`` (open it in Jupyter to look at the
figures) and prints each chapter's wall time; exits non-zero when a cell raises.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import jupytext
import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

BOOK = Path(__file__).resolve().parent


def run(pattern: str, profile: str) -> int:
    paths = sorted(p for p in BOOK.glob(f"*{pattern}*.md") if "jupytext:" in p.read_text()[:400])
    if not paths:
        print(f"no chapter in {BOOK} matches {pattern!r}", file=sys.stderr)
        return 2
    out = BOOK.parent / "_build" / "chapters"
    out.mkdir(parents=True, exist_ok=True)
    failed = 0
    for path in paths:
        notebook = jupytext.read(path)
        notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        # The kernel's inline backend, so that the written notebook holds the figures (Agg would drop them).
        env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"} | {"PGSOUND_PROFILE": profile}
        resources = {"metadata": {"path": str(BOOK)}}
        client = NotebookClient(notebook, timeout=3600, kernel_name="python3", resources=resources)
        started = time.perf_counter()
        try:
            client.execute(env=env)
            status = "ok"
        except CellExecutionError as error:
            status = f"FAILED\n{error}"
            failed += 1
        target = out / f"{path.stem}-{profile}.ipynb"
        nbformat.write(notebook, target)
        print(f"{path.stem:<28} {profile:<6} {time.perf_counter() - started:8.1f} s  {status}  -> {target}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(run(sys.argv[1] if len(sys.argv) > 1 else "", os.environ.get("PGSOUND_PROFILE", "cpu")))
