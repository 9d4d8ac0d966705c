"""Sampling a trained generator: batches, latent interpolations, and the files ``pgsound generate`` writes.

(book: chapter 10, The full 512x512 run)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from pgsound.errors import UserError
from pgsound.files import atomic_write, check_writable_folder
from pgsound.memory import check_pictures_fit
from pgsound.run_folder import run_of
from pgsound.runs import TrainedRun, load_generator
from pgsound.samples import write_sample_set
from pgsound.schedule import level_resolution


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between latents ``a`` and ``b`` (each (L,)) at fractions ``t`` (T,) -> (T, L).

    G normalises its latent (pixel norm), so only the direction of z matters. Between ends of equal length the
    direction turns at a constant angular speed (ends of unequal length bend the speed a little); along a
    straight line it turns fastest in the middle, and the line passes near zero, where the direction is
    undefined, when the ends point apart. (book: chapter 10, A walk through latent
    space)
    """
    a_unit, b_unit = a / a.norm(), b / b.norm()
    omega = torch.arccos((a_unit * b_unit).sum().clamp(-1 + 1e-7, 1 - 1e-7))
    t = t[:, None]
    out = (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / torch.sin(omega)
    return out


@torch.no_grad()
def sample(
    generator: torch.nn.Module,
    latents: torch.Tensor,
    level: int,
    alpha: float = 1.0,
    labels: torch.Tensor | None = None,
    batch_size: int = 16,
) -> torch.Tensor:
    """Images for ``latents`` in batches, on the generator's device, returned on the CPU in [-1, 1]."""
    device = next(generator.parameters()).device
    out = []
    for start in range(0, len(latents), batch_size):
        z = latents[start : start + batch_size].to(device)
        y = labels[start : start + batch_size].to(device) if labels is not None else None
        out.append(generator(z, level, alpha, y).float().clamp(-1, 1).cpu())
    return torch.cat(out)


def generate_run(
    run: str | Path,
    n: int = 16,
    seed: int = 0,
    out: Path | None = None,
    interpolation_steps: int = 8,
    label: int | None = None,
    use_ema: bool = True,
    n_iter: int | None = None,
    device: str | None = None,
) -> dict[str, list[Path]]:
    """Write ``n`` samples (grid, single PNGs, WAVs for spectrograms) and a latent interpolation; list the files."""
    G, record = load_generator(run, device=device, use_ema=use_ema)
    phase = record.phase
    data = record.data
    shape = level_resolution(phase.level, record.config.base_shape)
    check_pictures_fit(n, (data.channels, *shape), "generate", "--n")  # before any sample or folder
    out = Path(out) if out is not None else run_of(record.checkpoint) / f"generated-seed{seed}"
    check_writable_folder(out, "the samples folder")  # before any sample is drawn
    rng = torch.Generator().manual_seed(seed)
    latents = torch.randn(n, G.latent_size, generator=rng)
    labels = _labels(n, data.num_labels, label, record.config.conditional)
    images = sample(G, latents, phase.level, phase.alpha, labels)
    cols = min(n, 8)
    grid = (-(-n // cols), cols)
    written: dict[str, list[Path]] = {"grid": [], "images": [], "audio": [], "interpolation": []}
    _clear_earlier_set(out)
    files = write_sample_set(images, out, "samples", data.metadata, grid=grid, singles=True, n_iter=n_iter,
                             audio_count=n)
    _sort_files(files, written, "samples")
    written["index"] = [_write_index(out / "samples.json", record, seed, n, labels, data.metadata)]

    ends = torch.randn(2, G.latent_size, generator=rng)
    path = slerp(ends[0], ends[1], torch.linspace(0, 1, interpolation_steps))
    path_labels = labels[:1].repeat(interpolation_steps) if labels is not None else None
    frames = sample(G, path, phase.level, phase.alpha, path_labels)
    files = write_sample_set(frames, out, "interpolation", data.metadata, grid=(1, interpolation_steps),
                             n_iter=n_iter, concatenate_audio=True)
    written["interpolation"] = files
    return written


def _clear_earlier_set(folder: Path) -> None:
    """Remove what an earlier ``generate`` wrote here (its ``samples.json`` says it did), so that a smaller
    ``--n`` or another run leaves no stale samples beside the new ones; other files stay."""
    if not (folder / "samples.json").is_file():
        return
    for pattern in ("samples.json", "samples.png", "samples-[0-9][0-9]*.png", "samples-[0-9][0-9]*.wav",
                    "interpolation.png", "interpolation.wav"):
        for path in folder.glob(pattern):
            path.unlink()


def _write_index(path: Path, record: TrainedRun, seed: int, n: int, labels: torch.Tensor | None,
                 metadata: dict[str, Any]) -> Path:
    """``samples.json``: the run, the seed, and each sample's label and its name (None without labels)."""
    names = metadata.get("label_names") or []

    def name(label: int) -> str | None:
        return names[label] if label < len(names) else None

    entries = [{"index": i, "label": None if labels is None else int(labels[i]),
                "label_name": None if labels is None else name(int(labels[i]))} for i in range(n)]
    index = {"checkpoint": str(record.checkpoint), "images_shown": int(record.images_shown), "seed": seed,
             "conditional": bool(record.config.conditional), "samples": entries}
    with atomic_write(path) as tmp:
        tmp.write_text(json.dumps(index, indent=1))
    return path


def _labels(n: int, count: int, label: int | None, conditional: bool) -> torch.Tensor | None:
    if not conditional:
        if label is not None:
            raise UserError("--label needs a conditional run; this run was trained without labels")
        return None
    if label is not None and not 0 <= label < count:
        raise UserError(f"--label must be in 0..{count - 1} for this run, got {label}")
    return torch.full((n,), label) if label is not None else torch.arange(n) % count


def _sort_files(files: list[Path], written: dict[str, list[Path]], stem: str) -> None:
    for f in files:
        if f.suffix == ".wav":
            written["audio"].append(f)
        elif f.name == f"{stem}.png":
            written["grid"].append(f)
        else:
            written["images"].append(f)
