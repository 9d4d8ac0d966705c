"""The chapters' display helpers that need no browser: loudness matching and fade-in steps."""

from __future__ import annotations

import numpy as np
import pytest


def test_match_loudness_gives_every_clip_the_reference_rms_or_peak():
    from pgsound.display import loudness, match_loudness

    real = np.array([0.5, -0.5, 0.5, -0.5])  # RMS 0.5, peak 0.5
    quiet = np.array([0.1, -0.1, 0.0, 0.0])  # RMS sqrt(0.02 / 4) = 0.0707..., peak 0.1
    assert loudness(quiet) == pytest.approx(np.sqrt(0.005))
    by_rms = match_loudness({"real": real, "quiet": quiet}, "real")
    # scaled by 0.5 / sqrt(0.005) = 7.0711: 0.1 -> 0.70711
    np.testing.assert_allclose(by_rms["quiet"], [0.70711, -0.70711, 0, 0], atol=1e-5)
    np.testing.assert_allclose(by_rms["real"], real)
    by_peak = match_loudness({"real": real, "quiet": quiet}, "real", how="peak")
    np.testing.assert_allclose(by_peak["quiet"], [0.5, -0.5, 0, 0], atol=1e-6)
    # A spiky clip scaled to RMS 0.5 would peak at 2: everything is halved, the match kept.
    spiky = np.array([1.0, 0.0, 0.0, 0.0])  # RMS 0.5 already; scaled x1, peak 1: no change
    louder = np.array([0.25, 0.0, 0.0, 0.0])  # RMS 0.125 -> x4 -> peak 1
    spike = np.array([0.5, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    # spike: RMS 0.5 / 4 = 0.125, scaled x4 to 2.0 peak -> all scaled by 1/2
    out = match_loudness({"real": real, "spike": spike, "spiky": spiky, "louder": louder}, "real")
    np.testing.assert_allclose(out["spike"][0], 1.0, atol=1e-6)
    np.testing.assert_allclose(out["real"], real / 2, atol=1e-6)
    assert {round(loudness(x), 6) for x in out.values()} == {0.25}
    silent = match_loudness({"real": real, "silent": np.zeros(4)}, "real")["silent"]
    assert not silent.any()
    with pytest.raises(KeyError, match="'nope'"):
        match_loudness({"real": real}, "nope")


def test_fade_steps_evaluate_the_generator_at_every_alpha_from_0_to_1():
    import torch

    from pgsound.display import fade_steps

    class Fading(torch.nn.Module):
        """Images whose every pixel is alpha + level / 10 (clamped to [-1, 1] by sample)."""

        def __init__(self):
            super().__init__()
            self.weight = torch.nn.Parameter(torch.zeros(()))

        def forward(self, z, level, alpha=1.0, labels=None):
            return torch.full((len(z), 1, 2, 2), alpha + level / 10) + self.weight

    seen = []
    steps = fade_steps(Fading(), torch.zeros(3, 4), level=2, count=5,
                       picture=lambda x: np.full((2, 2, 3), round(float(x.mean()) * 100), np.uint8),
                       sound=lambda x: seen.append(x.shape) or np.zeros(8))
    assert [label for label, _, _ in steps] == [f"alpha = {a}" for a in ("0.00", "0.25", "0.50", "0.75", "1.00")]
    # alpha + 0.2, clamped to 1 at the last two: 20, 45, 70, 95, 100
    assert [int(p[0, 0, 0]) for _, p, _ in steps] == [20, 45, 70, 95, 100]
    assert seen == [(3, 1, 2, 2)] * 5 and all(clip is not None for _, _, clip in steps)
    assert all(clip is None for _, _, clip in fade_steps(Fading(), torch.zeros(1, 4), 1, 2, lambda x: x))
    with pytest.raises(ValueError, match="at least 2"):
        fade_steps(Fading(), torch.zeros(1, 4), 1, 1, lambda x: x)


def test_image_rows_draws_each_row_with_its_label_and_maps_values_to_colours():
    import matplotlib

    matplotlib.use("Agg")
    import torch

    from pgsound.display import image_rows

    small = torch.full((8, 3, 4, 4), -1.0)  # black, 4x4
    small[0, 0] = 1.0  # image 0: pure red
    large = torch.zeros(8, 1, 16, 16)  # grey 0 -> the middle of the colour map
    fig = image_rows([("4x4", small), ("16x16", large)], title="levels")
    axes = fig.axes
    assert len(axes) == 16 and axes[0].get_ylabel() == "4x4" and axes[8].get_ylabel() == "16x16"
    assert fig._suptitle.get_text() == "levels"
    red = axes[0].images[0].get_array()
    assert red.shape == (4, 4, 3) and np.allclose(red[..., 0], 1) and np.allclose(red[..., 1:], 0)
    assert axes[8].images[0].get_array().shape == (16, 16)
    assert np.allclose(axes[8].images[0].get_array(), 0.5)  # -1..1 mapped to 0..1
    with pytest.raises(ValueError, match="row 'short': expected at least 8 images"):
        image_rows([("short", small[:3])])
