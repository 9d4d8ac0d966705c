"""The book's controls work without a kernel: headless Chromium moves them and decodes their audio."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "book"))

from check_controls import find_chromium, probe_page, problems  # noqa: E402

from pgsound.display import audio_table, media_slider  # noqa: E402

CHROMIUM = find_chromium()
pytestmark = [pytest.mark.slow, pytest.mark.skipif(CHROMIUM is None, reason="needs chromium (apt-get install "
                                                                            "chromium; .ci/run installs it)")]


def tone(frequency: float, seconds: float = 0.3, rate: int = 16000) -> np.ndarray:
    return 0.3 * np.sin(2 * np.pi * frequency * np.arange(int(seconds * rate)) / rate)


def page(tmp_path: Path, *parts) -> Path:
    path = tmp_path / "page.html"
    path.write_text("<html><body>" + "".join(p.data for p in parts) + "</body></html>")
    return path


def test_a_slider_changes_its_picture_and_sound_and_every_clip_decodes(tmp_path):
    steps = [(f"alpha {a:.1f}", np.full((16, 16, 3), int(255 * a), np.uint8), tone(220 * (1 + a)))
             for a in (0.0, 0.5, 1.0)]
    report = probe_page(page(tmp_path, media_slider(steps, title="fade"),
                             audio_table({"a": tone(330), "b": tone(440)})), CHROMIUM)
    assert problems(report) == []
    ((slider,),) = [report["sliders"]]
    assert slider == {"id": slider["id"], "steps": 3, "pictures": 3, "sounds": 3, "has_audio": True}
    assert len(report["audio"]) == 5 and all(a["seconds"] == pytest.approx(0.3, abs=0.01) for a in report["audio"])


def test_a_slider_stuck_on_one_picture_and_a_broken_clip_are_reported(tmp_path):
    same = np.zeros((8, 8, 3), np.uint8)
    slider = media_slider([("a", same, None), ("b", same, None)])
    broken = type("Html", (), {"data": '<audio controls src="data:audio/wav;base64,AAAA"></audio>'})()
    found = "\n".join(problems(probe_page(page(tmp_path, slider, broken), CHROMIUM)))
    assert "1 pictures for 2 steps" in found and "audio that does not decode" in found


def test_an_audio_table_says_its_caption(tmp_path):
    table = audio_table({"a": tone(330)}, caption="each clip scaled to the real clip's RMS")
    assert "<caption" in table.data and "each clip scaled to the real clip&#x27;s RMS" in table.data
    assert problems(probe_page(page(tmp_path, table), CHROMIUM)) == []
