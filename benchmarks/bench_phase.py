"""Phase reconstruction: our torch fast Griffin-Lim against librosa.griffinlim, measured in the same run.

    .venv/bin/python benchmarks/bench_phase.py [--iters 1000] [--batch 8] [--threads 1] [--audio FILE]

A 4.09 s clip (65408 samples: one 512x512 picture at n_fft 1024, hop 128; the synthetic piano unless --audio
names a recording) goes through the sound path: picture, denormalise, Nyquist bin back as zeros. Then each
method rebuilds audio from that magnitude and the table gives seconds per clip, the spectral convergence (SC)
of the result against the picture's magnitude, and the speed ratio to librosa (the anchor). A second table
(skip with --no-storage) shows what storing the picture as float16, 16-bit PNG or 8 bits costs in SC.
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import torch

from pgsound.audio_io import load_audio
from pgsound.phase_retrieval import griffin_lim, spectral_convergence_db
from pgsound.spectrogram import SpectrogramConfig, audio_to_frames, denormalise, restore_bin, split_audio
from pgsound.synth_piano import piano_dataset


def clip_pictures(args: argparse.Namespace, config: SpectrogramConfig, count: int) -> np.ndarray:
    if args.audio:
        pieces = split_audio(load_audio(args.audio, config.sample_rate), config)
        pieces = pieces[np.argsort(-np.abs(pieces).mean(axis=1))][:count]  # the busiest windows
        if len(pieces) < count:
            pieces = np.concatenate([pieces] * (-(-count // len(pieces))))[:count]
    else:
        pieces, _ = piano_dataset(count, config.segment_seconds, config.sample_rate, seed=1, kinds=("chord",))
    return np.concatenate([audio_to_frames(p, config) for p in pieces])


def timed(function, *args, **kwargs):
    started = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=1000, help="Griffin-Lim iterations (default 1000)")
    parser.add_argument("--batch", type=int, default=8, help="clips in the batched run (default 8)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1, as librosa uses)")
    parser.add_argument("--audio", help="a recording to use instead of the synthetic piano")
    parser.add_argument("--no-storage", action="store_true", help="skip the storage table")
    parser.add_argument("--pghi-only", action="store_true",
                        help="only the PGHI table: its heap integration interpreted against compiled")
    parser.add_argument("--gpu-focus", action="store_true",
                        help="on the CPU only the anchor and ours at batch 1 (for GPU runs short of time)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    import librosa

    config = SpectrogramConfig()
    frames = clip_pictures(args, config, max(args.batch, 1))
    picture = denormalise(frames, config)  # (N, 512, 512): the magnitude the picture holds
    full = restore_bin(picture, config).numpy()  # (N, 513, 512), Nyquist zero
    if args.pghi_only:
        pghi_table(full, config, args.audio or "synthetic piano (chords)")
        return
    n = args.iters
    rows = []

    def add(name: str, audio: np.ndarray, seconds: float, clips: int = 1) -> None:
        sc = spectral_convergence_db(picture[:clips], audio.reshape(clips, -1), config)
        rows.append((name, seconds / clips, float(np.mean(sc))))

    theirs, seconds = timed(
        librosa.griffinlim,
        full[0],
        n_iter=n,
        hop_length=128,
        n_fft=1024,
        momentum=0.99,
        init="random",
        random_state=0,
        length=config.segment_length,
        pad_mode="constant",
    )
    add(f"librosa.griffinlim, {n} it (anchor)", theirs, seconds)
    anchor = rows[-1][1]
    ours, seconds = timed(
        griffin_lim, full[0], config, n_iter=n, seed=0, device="cpu", cpu_threads=None, length=config.segment_length
    )
    add(f"ours FGLA, {n} it, CPU batch 1", ours, seconds)
    if not args.gpu_focus:
        if args.batch > 1:
            ours, seconds = timed(
                griffin_lim,
                full,
                config,
                n_iter=n,
                seed=0,
                device="cpu",
                cpu_threads=None,
                batch_size=None,
                length=config.segment_length,
            )
            add(f"ours FGLA, {n} it, CPU batch {args.batch} (per clip)", ours, seconds, args.batch)
        plain, seconds = timed(
            griffin_lim,
            full[0],
            config,
            n_iter=n,
            momentum=0.0,
            seed=0,
            device="cpu",
            cpu_threads=None,
            length=config.segment_length,
        )
        add(f"ours plain GLA (momentum 0), {n} it, CPU", plain, seconds)
        start, seconds = timed(
            griffin_lim,
            full[0],
            config,
            n_iter=0,
            init="pghi",
            device="cpu",
            cpu_threads=None,
            length=config.segment_length,
        )
        add("ours PGHI alone, CPU", start, seconds)
        short = min(100, n)
        pghi_fgla, seconds = timed(
            griffin_lim,
            full[0],
            config,
            n_iter=short,
            init="pghi",
            device="cpu",
            cpu_threads=None,
            length=config.segment_length,
        )
        add(f"ours PGHI + {short} it FGLA, CPU", pghi_fgla, seconds)
        if n > short:
            (pghi_long, history), seconds = timed(
                griffin_lim,
                full[0],
                config,
                n_iter=n,
                init="pghi",
                device="cpu",
                cpu_threads=None,
                length=config.segment_length,
                return_history=True,
            )
            add(f"ours PGHI + {n} it FGLA, CPU", pghi_long, seconds)
            reached = np.flatnonzero(history <= rows[0][2])
            if reached.size:
                k = int(reached[0])
                name = f"ours PGHI + {k} it reaches the anchor's SC (time pro rata)"
                rows.append((name, seconds * k / n, history[k]))
    if torch.cuda.is_available():
        griffin_lim(full[0], config, n_iter=5, device="cuda")  # warm-up: kernels, cuFFT plans
        for batch in sorted({1, args.batch}):
            torch.cuda.synchronize()
            ours, seconds = timed(
                griffin_lim,
                full[:batch],
                config,
                n_iter=n,
                seed=0,
                device="cuda",
                batch_size=None,
                length=config.segment_length,
            )
            torch.cuda.synchronize()
            add(f"ours FGLA, {n} it, {torch.cuda.get_device_name()} batch {batch} (per clip)", ours, seconds, batch)

    source = args.audio or "synthetic piano (chords)"
    print(
        f"{platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} torch thread(s), "
        f"librosa {librosa.__version__}; {source}; 512x512 picture, n_fft 1024, hop 128, 65408 samples\n"
    )
    print("| method | seconds per clip | SC (dB) | speed vs librosa |")
    print("|---|---:|---:|---:|")
    for name, seconds, sc in rows:
        print(f"| {name} | {seconds:.2f} | {sc:.1f} | {anchor / seconds:.1f}x |")
    if not args.no_storage:
        storage_table(frames[: min(4, len(frames))], config, short)


def pghi_table(full: np.ndarray, config: SpectrogramConfig, source: str) -> None:
    """PGHI on each picture with its heap integration run by the interpreter (the anchor: the same function,
    not compiled) and compiled by numba, the first call (compiling or loading numba's disk cache) apart."""
    from unittest import mock

    from pgsound import phase_retrieval

    with mock.patch.object(phase_retrieval, "_compiled_integrate", lambda: phase_retrieval._integrate_flat):
        interpreted, anchor = timed(phase_retrieval.pghi, full, config)
    first, first_seconds = timed(phase_retrieval.pghi, full[:1], config)
    compiled, seconds = timed(phase_retrieval.pghi, full, config)
    assert np.array_equal(interpreted, compiled) and np.array_equal(first, compiled[:1])
    print(f"\nPGHI, {len(full)} pictures of {source} (513x512 magnitudes); the same phases from each row\n")
    print("| PGHI | seconds per picture | speed vs interpreted |")
    print("|---|---:|---:|")
    for name, per_picture in (("heap integration interpreted (anchor)", anchor / len(full)),
                              ("compiled, first call of the process (1 picture)", first_seconds),
                              ("compiled", seconds / len(full))):
        print(f"| {name} | {per_picture:.3f} | {anchor / len(full) / per_picture:.1f}x |")


def storage_table(frames: np.ndarray, config: SpectrogramConfig, n_iter: int) -> None:
    """SC cost of storing the normalised picture at lower precision: the stored magnitude itself against the
    float32 one, and the audio rebuilt from it (PGHI + ``n_iter`` FGLA) against the float32 magnitude."""
    reference = denormalise(frames, config)
    variants = {
        "float32 (reference)": frames,
        "float16": frames.astype(np.float16).astype(np.float32),
        "16-bit PNG": np.round((frames + 1) * 32767.5) / 32767.5 - 1,
        "8-bit (0..255)": np.round((frames + 1) * 127.5) / 127.5 - 1,
    }
    print(
        f"\nStorage of the normalised picture ({len(frames)} clips, floor {config.floor_db} dB, range "
        f"{config.range_db} dB): SC of the stored magnitude, and after PGHI + {n_iter} it FGLA\n"
    )
    print("| storage | bytes per picture | step (dB) | SC stored vs float32 (dB) | SC of rebuilt audio (dB) |")
    print("|---|---:|---:|---:|---:|")
    sizes = {"float32 (reference)": 4, "float16": 2, "16-bit PNG": 2, "8-bit (0..255)": 1}
    for name, stored in variants.items():
        magnitude = denormalise(stored, config)
        direct = spectral_convergence_db(reference, magnitude) if name != "float32 (reference)" else -np.inf
        audio = griffin_lim(
            restore_bin(magnitude, config),
            config,
            n_iter=n_iter,
            init="pghi",
            device="cpu",
            cpu_threads=None,
            length=config.segment_length,
        )
        rebuilt = spectral_convergence_db(reference, audio, config)
        step = {"float16": "<=0.049", "16-bit PNG": "0.0015", "8-bit (0..255)": "0.39"}.get(name, "-")
        print(f"| {name} | {sizes[name] * frames[0].size} | {step} | {np.mean(direct):.1f} | {np.mean(rebuilt):.1f} |")


if __name__ == "__main__":
    main()
