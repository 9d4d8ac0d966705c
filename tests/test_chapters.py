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
from pgsound.spectrogram import SpectrogramConfig  # noqa: E402


def chapter_paths() -> list[Path]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    paths = [ROOT / f"{c['file']}.md" for c in toc.get("chapters") or []]
    # Only notebooks execute; plain MyST pages (the introduction) have no jupytext header.
    return [p for p in paths if p.exists() and "jupytext:" in p.read_text()[:400]]


def run_under_smoke(path: Path, tmp_path: Path, **environment: str) -> None:
    """Execute one chapter under the smoke profile; a failure names the cell that raised and shows it."""
    from nbclient.exceptions import CellExecutionError

    env = dict(os.environ) | {"MPLBACKEND": "Agg", "PGSOUND_RUNS": str(tmp_path / "runs")} | environment
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


@pytest.mark.slow
@pytest.mark.parametrize("path", chapter_paths(), ids=lambda p: p.stem)
def test_chapter_executes_under_smoke_profile(path: Path, tmp_path: Path):
    run_under_smoke(path, tmp_path, PGSOUND_PRETRAINED="0")


SWITCHED_CHAPTERS = [p for p in chapter_paths() if "use_pretrained()" in p.read_text()]


@pytest.mark.slow
@pytest.mark.parametrize("path", SWITCHED_CHAPTERS, ids=lambda p: p.stem)
def test_chapter_executes_with_the_shipped_runs(path: Path, tmp_path: Path):
    """PGSOUND_PRETRAINED=1: the branches that load a shipped run instead of training run too."""
    run_under_smoke(path, tmp_path, PGSOUND_PRETRAINED="1")


def test_cell_time_limit_follows_the_profile(monkeypatch):
    """A slow machine must not fail the cpu profile: chapter 9's training cell ran over an hour on a 2 GHz Xeon."""
    import run_chapter

    limits = []

    class RecordingClient:
        def __init__(self, notebook, timeout, **kwargs):
            limits.append(timeout)

        def execute(self, env):
            assert env["PGSOUND_PROFILE"] in PROFILES

    monkeypatch.setattr(run_chapter, "ChapterClient", RecordingClient)
    path = chapter_paths()[0]
    for profile in PROFILES:  # smoke, cpu, gpu
        run_chapter.execute_chapter(path, profile)
    run_chapter.execute_chapter(path, "cpu", timeout=5)
    assert limits == [3600, 6 * 3600, 48 * 3600, 5]
    assert set(run_chapter.CELL_TIMEOUT_S) == set(PROFILES)  # a limit for every profile the package knows
    # jupyter-book executes a chapter changed since `make book` filled its cache: the same limit as the cpu profile.
    assert yaml.safe_load((ROOT / "_config.yml").read_text())["execute"]["timeout"] == 6 * 3600
    with pytest.raises(ValueError, match="unknown profile 'laptop'"):
        run_chapter.execute_chapter(path, "laptop")


def chapter_parameters(path: Path, profile: str) -> dict:
    """The chapter's ``NAME = pick(...)`` parameters as that profile sets them, without running the chapter."""
    import ast
    import functools

    import jupytext

    from pgsound.profile import pick

    namespace = {"pick": functools.partial(pick, profile=profile)}
    for cell in jupytext.read(path).cells:
        if cell.cell_type != "code":
            continue
        for node in ast.parse(cell.source).body:
            call = getattr(node, "value", None)
            if isinstance(node, ast.Assign) and isinstance(call, ast.Call) and getattr(call.func, "id", "") == "pick":
                exec(compile(ast.Module([node], type_ignores=[]), str(path), "exec"), namespace)
    return namespace


def piano_chapter_runs(path: Path, profile: str) -> list[tuple[str, list[str], SpectrogramConfig]]:
    """(preset, overrides, spectrogram geometry) of the runs each piano chapter trains under a profile."""
    p = chapter_parameters(path, profile)
    if path.stem.startswith("09"):
        return [(p["PRESET"], p["OVERRIDES"], SpectrogramConfig(**p["GEOMETRY"]))]
    size, n_fft, hop = p["PICTURES"]["size"], p["PICTURES"]["n_fft"], p["PICTURES"]["hop_length"]
    square = SpectrogramConfig(n_fft=n_fft, hop_length=hop, n_bins=size, n_frames=size)
    # Variant (c), as chapter 11 builds it: twice the bins, half the frames, grown from an 8x2 base.
    tall = SpectrogramConfig(n_fft=2 * n_fft, hop_length=2 * hop, n_bins=2 * size, n_frames=size // 2)
    return [(p["PRESET"], p["WIDTHS"], square), (p["PRESET"], [*p["WIDTHS"], "base_shape=[8, 2]"], tall)]


# Chapter 10 trains nothing: it generates from the shipped piano512-cpu run (or, under gpu, the reader's).
PIANO_CHAPTERS = [p for p in chapter_paths() if p.stem[:2] in ("09", "11")]


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("path", PIANO_CHAPTERS, ids=lambda p: p.stem)
def test_piano_chapter_networks_build_and_run_under_every_profile(path: Path, profile: str):
    """The gpu profile's runs take hours on a GPU; on the CPU we can at least check that what each piano chapter
    would train under it exists: its preset and overrides resolve, its spectrogram geometry is valid, and G and D
    of that size turn a latent into a picture of the data's shape and back into a score (finite, where the
    networks are small enough to run here; the gpu profile's 23M-parameter networks run on the meta device,
    which checks every shape without computing a value)."""
    import contextlib

    import torch

    from pgsound.config import resolve_config
    from pgsound.plan import check_run
    from pgsound.runs import DataSpec, build_networks

    for preset, overrides, geometry in piano_chapter_runs(path, profile):
        config = resolve_config(preset, overrides)
        data = DataSpec(resolution=(geometry.n_bins, geometry.n_frames), channels=1)
        check_run(config, data.resolution, data.channels, num_labels=12)  # what train refuses at the start
        on_meta = profile == "gpu"
        with torch.device("meta") if on_meta else contextlib.nullcontext(), torch.no_grad():
            G, D = build_networks(config, data)
            top = G.num_levels - 1
            pictures = G(torch.randn(2, G.latent_size), top)
            scores = D(pictures, top)
        assert pictures.shape == (2, 1, geometry.n_bins, geometry.n_frames), (path.stem, profile)
        assert scores.shape == (2,)
        if not on_meta:
            assert torch.isfinite(scores).all()
