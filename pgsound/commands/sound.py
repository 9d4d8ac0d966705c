"""``pgsound spectrogram`` and ``pgsound invert``: one recording to pictures and back (book: chapters 1 and 2)."""

from __future__ import annotations

import argparse

from pgsound.commands.options import (
    add_device_option,
    add_geometry_options,
    add_seed_option,
    check_output,
    integer,
    number,
    spectrogram_config,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    forward = subparsers.add_parser(
        "spectrogram",
        help="a recording to normalised log-magnitude pictures (16-bit PNG, or .npy)",
        description="Cut a recording into pictures (consecutive windows, 512x512 by default) and write them side "
        "by side as one 16-bit grayscale PNG whose text chunk holds the geometry; --npy also writes the exact "
        "float32 array and a .json sidecar.",
    )
    forward.add_argument("input", help="a WAV, FLAC, OGG or MP3 file")
    forward.add_argument("-o", "--out", required=True, help="the PNG to write (or a .npy path)")
    forward.add_argument("--npy", action="store_true", help="also write OUT.npy (float32) and OUT.json")
    add_geometry_options(forward)
    forward.set_defaults(func=run_spectrogram)

    inverse = subparsers.add_parser(
        "invert",
        help="pictures (PNG or .npy from `pgsound spectrogram`, or generated) back to a WAV file",
        description="Undo the normalisation, put back the dropped bin, reconstruct the phase (PGHI, then fast "
        "Griffin-Lim) and write a peak-safe 16-bit WAV.",
    )
    inverse.add_argument("input", help="a .png or .npy spectrogram with pgsound settings")
    inverse.add_argument("-o", "--out", required=True, help="the WAV file to write")
    inverse.add_argument("--iters", type=integer(0, 100_000), default=1000,
                         help="fast Griffin-Lim iterations (default 1000)")
    inverse.add_argument("--init", choices=("pghi", "random"), default="pghi", help="starting phase (default pghi)")
    inverse.add_argument("--momentum", type=number(0, 1), default=0.99, help="0.99: fast Griffin-Lim; 0: the original")
    add_seed_option(inverse)
    add_device_option(inverse)
    inverse.set_defaults(func=run_invert)


def run_spectrogram(args: argparse.Namespace) -> int:
    from pathlib import Path

    from pgsound.audio_io import load_audio
    from pgsound.spectrogram import audio_to_frames
    from pgsound.spectrogram_files import SpectrogramFile, save_npy, save_png

    config = spectrogram_config(args)
    out = check_output(args.out, "-o", "a spectrogram", suffixes=(".png", ".npy"), inputs=[args.input])
    if args.npy and out.suffix.lower() != ".npy":
        check_output(out.with_suffix(".npy"), "--npy", "the float32 array", inputs=[args.input])
    audio = load_audio(args.input, config.sample_rate)
    item = SpectrogramFile(
        audio_to_frames(audio, config), config, samples=int(audio.size), source=Path(args.input).name
    )
    written = [save_npy(out, item)] if out.suffix.lower() == ".npy" else [save_png(out, item)]
    if args.npy and out.suffix.lower() != ".npy":
        written.append(save_npy(out.with_suffix(".npy"), item))
    n, bins, frames = item.frames.shape
    print(
        f"{args.input}: {audio.size / config.sample_rate:.2f} s -> {n} picture(s) of {bins}x{frames} "
        f"(n_fft {config.n_fft}, hop {config.hop_length}, {config.framing}) -> {', '.join(map(str, written))}"
    )
    return 0


def run_invert(args: argparse.Namespace) -> int:
    import time

    import numpy as np

    from pgsound.audio_io import write_wav
    from pgsound.phase_retrieval import frames_to_audio, spectral_convergence_db
    from pgsound.spectrogram import denormalise
    from pgsound.spectrogram_files import load_spectrogram

    check_output(args.out, "-o", "the recording", suffixes=(".wav",), inputs=[args.input])
    item = load_spectrogram(args.input)
    config = item.config
    started = time.perf_counter()
    audio = frames_to_audio(
        item.frames,
        config,
        n_iter=args.iters,
        momentum=args.momentum,
        init=args.init,
        seed=args.seed,
        device=args.device,
    )
    seconds = time.perf_counter() - started
    convergence = spectral_convergence_db(denormalise(item.frames, config), audio, config)
    recording = audio.reshape(-1)  # the pictures' audio, one after the other
    if item.samples and config.framing == "consecutive":
        recording = recording[: item.samples]  # the zero padding of the last window goes
    path = write_wav(args.out, recording, config.sample_rate)
    print(
        f"{args.input}: {len(item.frames)} picture(s), {args.iters} iterations ({args.init} start) in "
        f"{seconds:.1f} s, spectral convergence {float(np.mean(convergence)):.1f} dB -> {path} "
        f"({recording.size / config.sample_rate:.2f} s)"
    )
    return 0
