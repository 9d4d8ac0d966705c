"""Every chapter listed in _toc.yml executes under the smoke profile (jupytext + nbclient).

A failure names the chapter and the cell that raised, with the cell's source and the error.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def chapter_paths() -> list[Path]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    paths = [ROOT / f"{c['file']}.md" for c in toc.get("chapters") or []]
    # Only notebooks execute; plain MyST pages (the introduction) have no jupytext header.
    return [p for p in paths if p.exists() and "jupytext:" in p.read_text()[:400]]


@pytest.mark.slow
@pytest.mark.parametrize("path", chapter_paths(), ids=lambda p: p.stem)
def test_chapter_executes_under_smoke_profile(path: Path, tmp_path: Path, monkeypatch):
    import jupytext
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    notebook = jupytext.read(path)
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    monkeypatch.setenv("PGSOUND_PROFILE", "smoke")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("PGSOUND_RUNS", str(tmp_path / "runs"))
    client = NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    try:
        client.execute(env=dict(os.environ))
    except CellExecutionError as error:
        cells = [c for c in notebook.cells if c.cell_type == "code"]
        failing = next(
            (i for i, c in enumerate(cells) if any(o.get("output_type") == "error" for o in c.get("outputs", []))),
            None,
        )
        where = f"code cell {failing + 1} of {len(cells)}" if failing is not None else "a cell"
        source = cells[failing].source if failing is not None else ""
        pytest.fail(f"{path.relative_to(ROOT)}: {where} raised\n--- cell ---\n{source}\n--- error ---\n{error}")
