"""Inline media for the chapters: audio players, image grids and sliders (book: Introduction).

Audio is embedded with ``normalize=False`` so that loudness can be compared between clips; a clip whose peak
exceeds 1 is scaled down rather than clipped. :func:`match_loudness` scales clips to a common loudness for
listening side by side, :func:`fade_steps` makes the steps of a fade-in slider for :func:`media_slider`.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch

DEFAULT_MAX_SECONDS = 6.0


def _as_numpy(x: np.ndarray | torch.Tensor) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().float().cpu().numpy()
    return np.asarray(x, dtype=np.float32)


def prepare_clip(audio: np.ndarray | torch.Tensor, max_seconds: float, sample_rate: int) -> np.ndarray:
    """Mono float32 clip, cut to ``max_seconds``, scaled down only if its peak exceeds 1."""
    clip = _as_numpy(audio).squeeze()
    if clip.ndim != 1:
        raise ValueError(f"expected a mono clip (one dimension after squeeze), got shape {clip.shape}")
    if not np.all(np.isfinite(clip)):
        raise ValueError("the audio clip contains NaN or Inf samples")
    clip = clip[: int(max_seconds * sample_rate)]
    peak = float(np.abs(clip).max()) if clip.size else 0.0
    return clip / peak if peak > 1.0 else clip


def audio(
    clip: np.ndarray | torch.Tensor, sample_rate: int = 16000, max_seconds: float = DEFAULT_MAX_SECONDS
):
    """An ``IPython.display.Audio`` player for one clip (not normalised, at most ``max_seconds`` long)."""
    from IPython.display import Audio

    return Audio(prepare_clip(clip, max_seconds, sample_rate), rate=sample_rate, normalize=False)


def audio_table(
    clips: Mapping[str, np.ndarray | torch.Tensor],
    sample_rate: int = 16000,
    max_seconds: float = DEFAULT_MAX_SECONDS,
    columns: int = 4,
    caption: str | None = None,
):
    """Several clips side by side in one HTML table, each under its title, ``caption`` (if given) below.

    Returns an ``IPython.display.HTML`` object; in the static book the players still work.
    """
    from IPython.display import HTML

    cells = []
    for title, clip in clips.items():
        player = audio(clip, sample_rate, max_seconds)._repr_html_().strip()
        cells.append(
            f'<td style="text-align:center;padding:4px"><b>{html.escape(str(title))}</b><br>{player}</td>'
        )
    rows = ["<tr>" + "".join(cells[i : i + columns]) + "</tr>" for i in range(0, len(cells), columns)]
    below = (f'<caption style="caption-side:bottom;text-align:left">{html.escape(caption)}</caption>'
             if caption else "")
    return HTML('<table style="border:none">' + below + "".join(rows) + "</table>")


LOUDNESS_MEASURES = ("rms", "peak")


def loudness(clip: np.ndarray | torch.Tensor, how: str = "rms") -> float:
    """The RMS (``how="rms"``) or the largest absolute sample (``how="peak"``) of a clip."""
    x = _as_numpy(clip).reshape(-1).astype(np.float64)
    if how not in LOUDNESS_MEASURES:
        raise ValueError(f"how must be one of {', '.join(LOUDNESS_MEASURES)}, got {how!r}")
    if x.size == 0:
        return 0.0
    return float(np.sqrt(np.mean(x**2))) if how == "rms" else float(np.abs(x).max())


def match_loudness(
    clips: Mapping[str, np.ndarray | torch.Tensor], reference: str, how: str = "rms"
) -> dict[str, np.ndarray]:
    """Every clip scaled to the loudness of ``clips[reference]``: the same RMS, or the same peak.

    For listening side by side (book: chapter 9, "The shipped run beside yours"): a louder clip sounds better
    to most ears, so clips are compared at one loudness. If a scaled clip would peak above 1, every clip,
    the reference too, is scaled down by the same factor, so the loudness stays matched and nothing clips.
    A silent clip (loudness 0) is left as it is. Returns float32 clips under the same titles.
    """
    if reference not in clips:
        raise KeyError(f"the reference {reference!r} is not one of the clips: {', '.join(map(str, clips))}")
    target = loudness(clips[reference], how)
    scaled = {}
    for title, clip in clips.items():
        x = _as_numpy(clip).squeeze()
        level = loudness(x, how)
        scaled[title] = x * (target / level) if level > 0 else x
    peak = max((float(np.abs(x).max()) for x in scaled.values() if x.size), default=0.0)
    shrink = 1.0 / peak if peak > 1.0 else 1.0
    return {title: (x * shrink).astype(np.float32) for title, x in scaled.items()}


def fade_steps(
    generator: torch.nn.Module,
    latents: torch.Tensor,
    level: int,
    count: int,
    picture: Callable[[torch.Tensor], np.ndarray],
    sound: Callable[[torch.Tensor], np.ndarray] | None = None,
) -> list[tuple[str, np.ndarray, np.ndarray | None]]:
    """The steps of a fade-in slider: the generator's images of the same latents at ``level``, alpha from 0 to 1.

    ``count`` alphas, evenly spaced, 0 and 1 included; at each, ``picture(images)`` makes the uint8 (H, W, 3)
    picture and ``sound(images)``, if given, the clip. Pass the result to :func:`media_slider`.
    The sound comes in chapter 9 (book: chapter 6, "The fade-in, across alpha"; chapter 9).
    """
    from pgsound.generate import sample

    if count < 2:
        raise ValueError(f"a fade needs at least 2 steps (alpha 0 and 1), got {count}")
    steps = []
    for alpha in np.linspace(0.0, 1.0, count):
        images = sample(generator, latents, level, float(alpha))
        steps.append((f"alpha = {alpha:.2f}", picture(images), sound(images) if sound is not None else None))
    return steps


def image_grid(
    images: np.ndarray | torch.Tensor | Sequence[np.ndarray],
    columns: int | None = None,
    titles: Sequence[str] | None = None,
    value_range: tuple[float, float] = (-1.0, 1.0),
    cmap: str = "magma",
    cell_size: float = 1.6,
    origin: str = "upper",
    suptitle: str | None = None,
):
    """Show a batch of images (N, C, H, W) or (N, H, W) in a grid; returns the matplotlib figure.

    One channel is drawn with ``cmap`` (spectrograms: pass ``origin="lower"`` so low frequencies sit at the
    bottom); three channels are drawn as RGB. Values are mapped from ``value_range`` to the colour range.
    """
    import matplotlib.pyplot as plt

    batch = _as_numpy(images) if not isinstance(images, Sequence) else np.stack([_as_numpy(i) for i in images])
    if batch.ndim == 3:
        batch = batch[:, None]
    if batch.ndim != 4 or batch.shape[1] not in (1, 3):
        raise ValueError(f"expected images of shape (N, 1|3, H, W) or (N, H, W), got {batch.shape}")
    n = batch.shape[0]
    if titles is not None and len(titles) != n:
        raise ValueError(f"got {len(titles)} titles for {n} images")
    columns = columns or min(n, 8)
    rows = -(-n // columns)
    aspect = batch.shape[3] / batch.shape[2]
    fig, axes = plt.subplots(
        rows, columns, figsize=(cell_size * columns * min(aspect, 3), cell_size * rows), squeeze=False
    )
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        _draw(ax, batch[i], value_range, cmap, origin)
        if titles is not None:
            ax.set_title(titles[i], fontsize=8)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def _draw(ax, image: np.ndarray, value_range: tuple[float, float], cmap: str, origin: str) -> None:
    """One (1|3, H, W) image on ``ax``, values mapped from ``value_range`` to the colour range."""
    lo, hi = value_range
    img = np.clip((image - lo) / (hi - lo), 0.0, 1.0)
    if img.shape[0] == 1:
        ax.imshow(img[0], cmap=cmap, vmin=0, vmax=1, origin=origin, aspect="auto", interpolation="nearest")
    else:
        ax.imshow(img.transpose(1, 2, 0), origin=origin, interpolation="nearest")


def image_rows(
    rows: Sequence[tuple[str, np.ndarray | torch.Tensor]],
    columns: int = 8,
    title: str | None = None,
    value_range: tuple[float, float] = (-1.0, 1.0),
    cmap: str = "magma",
    cell_size: float = 1.1,
    origin: str = "upper",
):
    """One row of ``columns`` images per ``(label, images)`` pair, the label at the row's left.

    The rows may hold images of different sizes (samples at each level of a run, say): each is drawn at the
    same cell size, pixels repeated. Returns the matplotlib figure. (book: chapters 5 and 6)
    """
    import matplotlib.pyplot as plt

    if not rows:
        raise ValueError("image_rows needs at least one row")
    fig, axes = plt.subplots(len(rows), columns, figsize=(cell_size * columns, cell_size * len(rows)),
                             squeeze=False)
    for r, (label, images) in enumerate(rows):
        batch = _as_numpy(images)
        if batch.ndim == 3:
            batch = batch[:, None]
        if batch.ndim != 4 or batch.shape[1] not in (1, 3) or batch.shape[0] < columns:
            raise ValueError(f"row {label!r}: expected at least {columns} images of shape (1|3, H, W), "
                             f"got {batch.shape}")
        for c in range(columns):
            _draw(axes[r, c], batch[c], value_range, cmap, origin)
            axes[r, c].set_xticks([])
            axes[r, c].set_yticks([])
        axes[r, 0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def _png_data_uri(picture: np.ndarray) -> str:
    """A uint8 (H, W, 3) picture as a ``data:image/png;base64,...`` URI."""
    import base64
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(picture)).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _wav_data_uri(clip: np.ndarray, sample_rate: int) -> str:
    """A clip in [-1, 1] as a 16-bit ``data:audio/wav;base64,...`` URI (not normalised)."""
    import base64
    import io
    import wave

    samples = np.round(np.clip(clip, -1.0, 1.0) * 32767).astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(sample_rate)
        out.writeframes(samples.tobytes())
    return "data:audio/wav;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def media_slider(
    steps: Sequence[tuple[str, np.ndarray, np.ndarray | torch.Tensor | None]],
    sample_rate: int = 16000,
    title: str = "",
    max_seconds: float = DEFAULT_MAX_SECONDS,
    scale: int = 1,
):
    """A slider over precomputed steps, each a label, a picture and (optionally) its sound.

    ``picture`` is uint8 (H, W, 3) (``pgsound.samples.grid_canvas`` makes one); the clips are embedded without
    normalisation, as :func:`audio`. Every step is in the page and the slider is a few lines of JavaScript,
    so it works in Jupyter and in the static HTML book alike, with no kernel. Returns ``IPython.display.HTML``.
    (book: chapters 2, 6 and 9)
    """
    import json
    import uuid

    from IPython.display import HTML

    if not steps:
        raise ValueError("media_slider needs at least one step")
    labels = [str(label) for label, _, _ in steps]
    pictures = [_png_data_uri(picture) for _, picture, _ in steps]
    sounds = [_wav_data_uri(prepare_clip(clip, max_seconds, sample_rate), sample_rate) if clip is not None else ""
              for _, _, clip in steps]
    height, width = np.asarray(steps[0][1]).shape[:2]
    key = f"pgsound-slider-{uuid.uuid4().hex[:12]}"
    data = json.dumps({"labels": labels, "pictures": pictures, "sounds": sounds})
    audio_tag = (f'<br><audio id="{key}-audio" controls="controls" src="{sounds[0]}"></audio>'
                 if any(sounds) else "")
    return HTML(
        f'<div class="pgsound-slider" id="{key}">'
        + (f"<b>{html.escape(title)}</b><br>" if title else "")
        + f'<input type="range" id="{key}-range" min="0" max="{len(steps) - 1}" value="0" step="1" '
        f'style="width:{max(width * scale, 240)}px"> <span id="{key}-label">{html.escape(labels[0])}</span><br>'
        f'<img id="{key}-picture" src="{pictures[0]}" width="{width * scale}" height="{height * scale}" '
        f'style="image-rendering:pixelated">{audio_tag}'
        f"<script>(function() {{ const d = {data}; const k = {json.dumps(key)};"
        " const range = document.getElementById(k + '-range');"
        " range.addEventListener('input', function() { const i = Number(range.value);"
        " document.getElementById(k + '-label').textContent = d.labels[i];"
        " document.getElementById(k + '-picture').src = d.pictures[i];"
        " const a = document.getElementById(k + '-audio'); if (a && d.sounds[i]) { a.src = d.sounds[i]; } });"
        " })();</script></div>"
    )
