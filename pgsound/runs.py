"""What is needed to use a trained run, without the training loop (book: chapter 10).

This module describes the data a run was trained on (:class:`DataSpec`), builds G and D for a config and that
data, and rebuilds a trained generator for sampling; ``pgsound generate`` and ``pgsound evaluate`` use it, and
so does the training loop. Where a run's files lie is ``pgsound.run_folder``'s.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pgsound.checkpoint import GENERATOR_KEYS, CheckpointError
from pgsound.config import TrainConfig
from pgsound.datasets.protocol import Dataset
from pgsound.device import default_device
from pgsound.errors import UserError
from pgsound.networks import Discriminator, Generator
from pgsound.run_folder import read_checkpoint
from pgsound.schedule import Phase, Schedule


@dataclass(frozen=True)
class DataSpec:
    """What a run knows of its data: shape, channels, labels, the value mapping and where it was."""

    resolution: tuple[int, int]  # (H, W) of the full-size pictures
    channels: int
    num_labels: int = 0
    metadata: dict[str, Any] = field(default_factory=dict)  # the dataset's: source, spectrogram settings, ...
    path: str = ""  # absolute, so that a run resumed from another folder finds its data
    count: int = 0
    fingerprint: str = ""  # of the metadata and a few pictures: another dataset of the same shape differs
    path_given: str = ""  # the path as the user gave it: found again when a whole project folder has moved
    thumbnails: tuple[float, ...] = ()  # the fingerprint's pictures as 4x4 block means: a re-prepared set matches

    @classmethod
    def of(cls, dataset: Dataset) -> DataSpec:
        """The spec of an opened dataset (a prepared file or pictures in memory)."""
        path = getattr(dataset, "path", None)
        return cls(
            resolution=tuple(int(s) for s in dataset.resolution), channels=int(dataset.channels),
            num_labels=int(dataset.num_labels), metadata=dict(dataset.metadata),
            path=str(Path(path).resolve()) if path else "", count=int(dataset.count),
            fingerprint=dataset_fingerprint(dataset), path_given=str(path) if path else "",
            thumbnails=dataset_thumbnails(dataset),
        )

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> DataSpec:
        return cls(
            resolution=tuple(int(s) for s in record["resolution"]), channels=int(record["channels"]),
            num_labels=int(record["num_labels"]), metadata=dict(record.get("metadata", {})),
            path=str(record.get("path", "") or ""), count=int(record.get("count", 0)),
            fingerprint=str(record.get("fingerprint", "")), path_given=str(record.get("path_given", "") or ""),
            thumbnails=tuple(float(v) for v in record.get("thumbnails", ())),
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain values, as a checkpoint stores them."""
        return {"path": self.path, "resolution": list(self.resolution), "channels": self.channels,
                "num_labels": self.num_labels, "metadata": dict(self.metadata), "count": self.count,
                "fingerprint": self.fingerprint, "path_given": self.path_given, "thumbnails": list(self.thumbnails)}

    def locate(self) -> str:
        """Where the data is now: the absolute path, else the path as given (from here), else the absolute one."""
        if self.path and Path(self.path).exists():
            return self.path
        if self.path_given and Path(self.path_given).exists():
            return self.path_given
        return self.path

    def check_fits(self, other: DataSpec, checkpoint: Path, same_data: bool = True) -> None:
        """Refuse data of another shape than the run was trained on, naming the checkpoint.

        ``same_data`` (resuming) also refuses other data of the same shape; without it (evaluating on a
        held-out split) other data is welcome if its pictures have the same geometry and representation.
        """
        for key in ("resolution", "channels", "num_labels"):
            if getattr(self, key) != getattr(other, key):
                raise UserError(f"{checkpoint} was trained on data with {key} {getattr(self, key)}, but this "
                                 f"dataset has {getattr(other, key)}")
        if not same_data:
            for key in ("spectrogram", "representation"):
                if self.metadata.get(key) != other.metadata.get(key):
                    raise UserError(f"{checkpoint} was trained on pictures with {key} {self.metadata.get(key)}, "
                                    f"but {other.path or 'this dataset'} has {other.metadata.get(key)}")
            return
        if self.fingerprint and other.fingerprint and self.fingerprint != other.fingerprint:
            if self.is_reprepared(other):
                return
            raise UserError(
                f"{checkpoint} was trained on other data of this shape ({self.count} pictures from "
                f"{self.path or 'memory'}); this dataset has {other.count} pictures from {other.path or 'memory'} "
                f"and differs: resume on the data the run was trained on, or pass --allow-other-data to "
                f"continue on this one on purpose")

    def is_reprepared(self, other: DataSpec) -> bool:
        """Whether ``other`` is this data prepared again from the same recipe, on a machine whose floating point
        rounds a few values differently: the same metadata and count, and thumbnails within a float16 step.
        """
        if not self.thumbnails or len(self.thumbnails) != len(other.thumbnails) or self.count != other.count:
            return False
        if _canonical(self.metadata) != _canonical(other.metadata):
            return False
        gap = max(abs(a - b) for a, b in zip(self.thumbnails, other.thumbnails, strict=True))
        return gap <= REPREPARED_TOLERANCE


# A block mean moves by at most one float16 step (2**-11 below 1) even if every value in the block rounds the
# other way; another dataset's block means differ by far more.
REPREPARED_TOLERANCE = 1e-3


def _canonical(metadata: dict[str, Any]) -> str:
    return json.dumps(metadata, sort_keys=True, default=str)


def _fingerprint_pictures(dataset: Dataset) -> list[np.ndarray]:
    """The first, middle and last full-size pictures."""
    pictures = dataset.images(*tuple(int(s) for s in dataset.resolution))
    return [np.asarray(pictures[i]) for i in sorted({0, dataset.count // 2, dataset.count - 1})]


def dataset_fingerprint(dataset: Dataset) -> str:
    """A short hash of a dataset's metadata, count and first, middle and last full-size pictures."""
    digest = hashlib.sha256()
    digest.update(_canonical(dataset.metadata).encode())
    digest.update(str(int(dataset.count)).encode())
    for picture in _fingerprint_pictures(dataset):
        digest.update(np.ascontiguousarray(picture).tobytes())
    return digest.hexdigest()[:16]


def dataset_thumbnails(dataset: Dataset) -> tuple[float, ...]:
    """The fingerprint's pictures as means over a grid of 4x4 blocks (fewer on a side under 4), per channel, in
    one flat tuple; sides that 4 does not divide get blocks of nearly equal size."""
    values: list[float] = []
    for picture in _fingerprint_pictures(dataset):
        channels, height, width = picture.shape
        rows = np.array_split(np.arange(height), min(4, height))
        cols = np.array_split(np.arange(width), min(4, width))
        picture = picture.astype(np.float64)
        blocks = np.array([[picture[:, r[0]:r[-1] + 1, c[0]:c[-1] + 1].mean(axis=(1, 2)) for c in cols] for r in rows])
        values.extend(float(v) for v in blocks.transpose(2, 0, 1).ravel())  # channel, block row, block column
    return tuple(values)


def build_networks(config: TrainConfig, data: DataSpec | Any) -> tuple[torch.nn.Module, torch.nn.Module]:
    """G and D sized for the data's full resolution and channels, with the config's widths."""

    common = dict(
        resolution=tuple(data.resolution), base_shape=config.base_shape, channels=data.channels,
        num_labels=data.num_labels if config.conditional else 0,
    )
    G = Generator(
        **common, fmap_base=config.g.fmap_base, fmap_decay=config.g.fmap_decay, fmap_max=config.g.fmap_max,
        latent_size=config.latent_size, first_gain_tf=config.g_first_gain_tf,
    )
    D = Discriminator(
        **common, fmap_base=config.d.fmap_base, fmap_decay=config.d.fmap_decay, fmap_max=config.d.fmap_max,
        mbstd_group_size=config.mbstd_group_size,
    )
    return G, D


def load_into(module: torch.nn.Module, state: dict[str, Any], path: Path) -> None:
    """``module.load_state_dict(state)``; a state that does not fit is a ``CheckpointError`` naming the file."""
    if "blocks.0.dense.bias" in state:  # G before its first layer had one bias per channel
        raise CheckpointError(
            f"{path} was written by an older pgsound, whose G had one bias per unit of its first dense layer "
            f"(NVIDIA's has one per channel, as this version): train again, or load it with the version that "
            f"wrote it"
        )
    try:
        module.load_state_dict(state)
    except RuntimeError as error:
        detail = str(error).strip().splitlines()[0]
        raise CheckpointError(f"{path} does not fit these networks: {detail}") from None


@dataclass(frozen=True)
class TrainedRun:
    """What a checkpoint says about the generator loaded from it."""

    checkpoint: Path
    config: TrainConfig
    data: DataSpec
    images_shown: int
    phase: Phase  # the level and alpha the generator was at


def load_generator(
    checkpoint: str | Path, device: torch.device | str | None = None, use_ema: bool = True
) -> tuple[torch.nn.Module, TrainedRun]:
    """Gs (or G) of a run folder or checkpoint, in eval mode, and the checkpoint's record of its run.

    (book: chapter 10, Loading a trained run)
    """

    saved = read_checkpoint(checkpoint, needs=GENERATOR_KEYS if use_ema else (*GENERATOR_KEYS, "G"))
    path, state = saved.path, saved.state
    config = TrainConfig.from_dict(state["config"])
    data = DataSpec.from_dict(state["data"])
    G, _ = build_networks(config, data)
    load_into(G, state["Gs" if use_ema else "G"], path)
    G.to(torch.device(device) if device is not None else default_device()).eval().requires_grad_(False)
    images_shown = int(state["images_shown"])
    phase = Schedule(config.schedule, G.num_levels, config.base_shape).phase(images_shown)
    return G, TrainedRun(checkpoint=path, config=config, data=data, images_shown=images_shown, phase=phase)
