"""Spectral statistics of the synthetic piano against a folder of piano recordings (book: chapter 1).

    .venv/bin/python benchmarks/compare_piano.py FOLDER [--clips 96] [--seed 0]

Reads every recording in FOLDER (16 kHz mono after loading), cuts both into the reference 512x512 pictures and
prints one table: mean log spectrum agreement, band energies, spectral centroid, decay per band, levels.
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import torch

from pgsound.audio_io import load_audio, scan_audio_folder
from pgsound.audio_stats import compare_spectra, spectral_statistics
from pgsound.spectrogram import SpectrogramConfig, pieces_to_magnitude, split_audio
from pgsound.synth_piano import piano_dataset


def magnitudes(pieces: np.ndarray, config: SpectrogramConfig) -> np.ndarray:
    return np.concatenate([pieces_to_magnitude(pieces[i : i + 8], config) for i in range(0, len(pieces), 8)])


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.2f}" if abs(value) < 1 else f"{value:.1f}"
    return str(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder")
    parser.add_argument("--clips", type=int, default=96, help="synthetic clips (default 96)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    config = SpectrogramConfig()
    scan = scan_audio_folder(args.folder, config.sample_rate)
    print(scan.summary())
    real = np.concatenate([split_audio(load_audio(path, config.sample_rate), config) for path, _ in scan.usable])
    started = time.perf_counter()
    synth, _ = piano_dataset(args.clips, config.segment_seconds, config.sample_rate, seed=args.seed)
    synth_seconds = time.perf_counter() - started
    a, b = spectral_statistics(magnitudes(real, config), config), spectral_statistics(magnitudes(synth, config), config)
    agreement = compare_spectra(a, b)
    print(
        f"\n{platform.machine()}, torch {torch.__version__}; {args.clips} synthetic clips of "
        f"{config.segment_seconds:.3f} s rendered in {synth_seconds:.1f} s\n"
    )
    rows = [("pictures (512x512)", a["pictures"], b["pictures"])]
    rows += [(f"band {k} Hz, dB re 250-1000", a["band_db"][k], b["band_db"][k]) for k in a["band_db"]]
    rows += [("centroid median, Hz", a["centroid_median_hz"], b["centroid_median_hz"])]
    rows += [
        (
            "centroid quartiles, Hz",
            "{:.0f}-{:.0f}".format(*a["centroid_quartiles_hz"]),
            "{:.0f}-{:.0f}".format(*b["centroid_quartiles_hz"]),
        )
    ]
    rows += [(f"decay {k}, dB/s", a["decay_db_per_s"][k], b["decay_db_per_s"][k]) for k in a["decay_db_per_s"]]
    rows += [
        (f"level {p}th percentile, dB", a["level_percentiles_db"][p], b["level_percentiles_db"][p]) for p in (50, 99)
    ]
    rows += [("level max, dB", a["level_max_db"], b["level_max_db"])]
    rows += [("pixels below floor -50 dB", a["below_floor"], b["below_floor"])]
    print("| statistic | recordings | synthetic |\n|---|---:|---:|")
    for name, x, y in rows:
        print(f"| {name} | {_cell(x)} | {_cell(y)} |")
    print(
        f"\nmean log spectra 50-7000 Hz: correlation {agreement['correlation']:.3f}, "
        f"RMS difference {agreement['rms_difference_db']:.1f} dB"
    )


if __name__ == "__main__":
    main()
