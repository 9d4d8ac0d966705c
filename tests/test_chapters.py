"""Every chapter listed in _toc.yml executes under the smoke profile (jupytext + nbclient).

Chapters run through ``book/run_chapter.py``'s ``execute_chapter``, as ``make chapter`` and ``make book`` run
them. A failure names the chapter and the cell that raised, with the cell's source and the error.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "book"))

from run_chapter import execute_chapter  # noqa: E402

from pgsound.profile import PROFILES  # noqa: E402


def chapter_paths() -> list[Path]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    paths = [ROOT / f"{c['file']}.md" for c in toc.get("chapters") or []]
    # Only notebooks execute; plain MyST pages (the introduction) have no jupytext header.
    return [p for p in paths if p.exists() and "jupytext:" in p.read_text()[:400]]


@pytest.mark.slow
@pytest.mark.parametrize("path", chapter_paths(), ids=lambda p: p.stem)
def test_chapter_executes_under_smoke_profile(path: Path, tmp_path: Path):
    from nbclient.exceptions import CellExecutionError

    env = dict(os.environ) | {"MPLBACKEND": "Agg", "PGSOUND_RUNS": str(tmp_path / "runs")}
    try:
        execute_chapter(path, "smoke", timeout=600, env=env)
    except CellExecutionError as error:
        cells = [c for c in error.notebook.cells if c.cell_type == "code"]
        failing = next(
            (i for i, c in enumerate(cells) if any(o.get("output_type") == "error" for o in c.get("outputs", []))),
            None,
        )
        where = f"code cell {failing + 1} of {len(cells)}" if failing is not None else "a cell"
        source = cells[failing].source if failing is not None else ""
        pytest.fail(f"{path.relative_to(ROOT)}: {where} raised\n--- cell ---\n{source}\n--- error ---\n{error}")


def test_cell_time_limit_follows_the_profile(monkeypatch):
    """A slow machine must not fail the cpu profile: chapter 9's training cell ran over an hour on a 2 GHz Xeon."""
    import run_chapter

    limits = []

    class RecordingClient:
        def __init__(self, notebook, timeout, **kwargs):
            limits.append(timeout)

        def execute(self, env):
            assert env["PGSOUND_PROFILE"] in ("smoke", "cpu", "gpu")

    monkeypatch.setattr(run_chapter, "ChapterClient", RecordingClient)
    path = chapter_paths()[0]
    for profile in ("smoke", "cpu", "gpu"):
        run_chapter.execute_chapter(path, profile)
    run_chapter.execute_chapter(path, "cpu", timeout=5)
    assert limits == [3600, 6 * 3600, 48 * 3600, 5]
    assert set(run_chapter.CELL_TIMEOUT_S) == set(PROFILES)  # a limit for every profile the package knows
    # jupyter-book executes a chapter changed since `make book` filled its cache: the same limit as the cpu profile.
    assert yaml.safe_load((ROOT / "_config.yml").read_text())["execute"]["timeout"] == 6 * 3600
    with pytest.raises(ValueError, match="unknown profile 'laptop'"):
        run_chapter.execute_chapter(path, "laptop")
