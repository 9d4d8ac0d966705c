"""Serving minibatches of the current level, with the reals faded like the networks (book: chapter 6).

During a fade-in the networks blend the new level with the level below; the real images must be blended the
same way, with the same alpha, or D could tell reals from fakes by their sharpness alone:

    fade_reals(x, alpha) = lerp(upsample2x(downsample2x(x)), x, alpha)

The fade runs on the training device inside ``batch``, never in worker processes (one older port forked its
workers before alpha was set, so its reals never faded). A level that fits in memory is held there (on the
GPU when there is one); larger ones are read from the file per batch into pinned memory.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from pgsound.datasets.protocol import Dataset
from pgsound.device import restore_generator
from pgsound.layers import downsample2x, upsample2x
from pgsound.schedule import level_resolution

DEFAULT_MEMORY_BUDGET = 2 * 2**30  # bytes of float32 a level may take when held in memory


def fade_reals(images: torch.Tensor, alpha: float) -> torch.Tensor:
    """Blend real images with their own lower-level version, as G and D blend their two paths.

    alpha = 0 gives exactly the level below (scaled up), alpha = 1 exactly the images. (book: chapter 6)
    """
    if alpha >= 1.0:
        return images
    return torch.lerp(upsample2x(downsample2x(images)), images, alpha)


class LevelLoader:
    """An infinite, seeded, reshuffled-per-pass sampler of one dataset's levels on a device.

    ``batch(level, batch_size, alpha)`` returns faded reals in [-1, 1] (and labels with ``with_labels=True``);
    ``state_dict``/``load_state_dict`` make the sequence resume exactly.
    """

    def __init__(
        self,
        dataset: Dataset,
        device: torch.device | str = "cpu",
        seed: int = 0,
        mirror: bool = False,
        memory_budget: int = DEFAULT_MEMORY_BUDGET,
        base_shape: tuple[int, int] = (4, 4),
    ) -> None:
        self.dataset = dataset
        self.device = torch.device(device)
        self.mirror = mirror
        self.memory_budget = memory_budget
        self.base_shape = tuple(base_shape)  # level 0, as in the networks
        # The order is drawn on the host once per pass and copied to the device without blocking; flips and
        # labels are drawn and picked on the device. A step then waits for no copy (on a GPU, a blocking copy
        # per step is a host synchronisation), and a level streamed from disk reads the host's copy of the order.
        self.generator = torch.Generator().manual_seed(seed)
        self.flip_generator = torch.Generator(device=self.device).manual_seed(seed + 1)
        self._set_order(torch.randperm(dataset.count, generator=self.generator))
        self._cache: dict[tuple[int, int], torch.Tensor] = {}
        self.labels = (
            torch.from_numpy(dataset.labels).to(self.device) if dataset.labels is not None else None
        )

    def level_shape(self, level: int) -> tuple[int, int]:
        return level_resolution(level, self.base_shape)

    def _set_order(self, order: torch.Tensor, position: int = 0) -> None:
        self.order = order
        pinned = order.pin_memory() if self.device.type == "cuda" else order
        self.order_on_device = pinned.to(self.device, non_blocking=True)
        self.position = position

    def _next_indices(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The next ``n`` indices of the shuffled order, on the device and on the host; a new order each pass."""
        on_device, on_host = [], []
        while n > 0:
            if self.position >= len(self.order):
                self._set_order(torch.randperm(self.dataset.count, generator=self.generator))
            end = self.position + n
            on_device.append(self.order_on_device[self.position : end])
            on_host.append(self.order[self.position : end])
            taken = len(on_host[-1])
            self.position += taken
            n -= taken
        return torch.cat(on_device), torch.cat(on_host)

    def _level_tensor(self, shape: tuple[int, int]) -> torch.Tensor | None:
        """The whole level as float32 on the device, or None when it exceeds the memory budget."""
        if shape not in self._cache:
            c = self.dataset.channels
            if self.dataset.count * c * shape[0] * shape[1] * 4 > self.memory_budget:
                return None
            array = self.dataset.to_float(self.dataset.images(*shape)[:])
            self._cache[shape] = torch.from_numpy(array).to(self.device)
        return self._cache[shape]

    def _gather(self, shape: tuple[int, int], indices: torch.Tensor, host_indices: torch.Tensor) -> torch.Tensor:
        held = self._level_tensor(shape)
        if held is not None:
            return held[indices]
        # Streaming: one read per image, by the host's indices. h5py's fancy indexing (data[[i, j, ...]]) is
        # about 100x slower than reading the same images one by one (benchmarks/bench_loader.py).
        data = self.dataset.images(*shape)
        block = np.empty((len(host_indices), *data.shape[1:]), dtype=data.dtype)
        for row, index in enumerate(host_indices.tolist()):
            block[row] = data[index]
        tensor = torch.from_numpy(self.dataset.to_float(block))
        if self.device.type == "cuda":
            tensor = tensor.pin_memory()
        return tensor.to(self.device, non_blocking=True)

    def batch(
        self, level: int, batch_size: int, alpha: float = 1.0, with_labels: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """``batch_size`` reals at ``level`` faded by ``alpha``, float32 on the device. (book: chapter 6)"""
        indices, host_indices = self._next_indices(batch_size)
        images = self._gather(self.level_shape(level), indices, host_indices)
        if self.mirror:
            flip = torch.rand(batch_size, generator=self.flip_generator, device=self.device) < 0.5
            images = torch.where(flip[:, None, None, None], images.flip(3), images)
        images = fade_reals(images, alpha)
        if not with_labels:
            return images
        if self.labels is None:
            raise ValueError(f"{self.dataset.path} has no labels; train without conditioning")
        return images, self.labels[indices]

    def peek(self, level: int, n: int, seed: int = 0) -> torch.Tensor:
        """``n`` reals at ``level`` (no fade), a fixed random choice that does not touch the sampler's state."""
        n = min(n, self.dataset.count)
        chosen = torch.randperm(self.dataset.count, generator=torch.Generator().manual_seed(seed))[:n]
        return self._gather(self.level_shape(level), chosen.to(self.device), chosen)

    def peek_labels(self, n: int, seed: int = 0) -> torch.Tensor | None:
        """The labels of ``peek(level, n, seed)``'s images."""
        if self.labels is None:
            return None
        n = min(n, self.dataset.count)
        chosen = torch.randperm(self.dataset.count, generator=torch.Generator().manual_seed(seed))[:n]
        return self.labels[chosen.to(self.device)]

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state(), "flip_generator": self.flip_generator.get_state(),
                "order": self.order.clone(), "position": self.position}

    def load_state_dict(self, state: dict[str, Any]) -> bool:
        """Take over a saved order and streams; returns whether the streams fit as saved (see
        :func:`pgsound.device.restore_generator`: a state saved on another kind of device does not)."""
        self.generator.set_state(state["generator"].cpu())  # a CPU generator on every device
        exact = restore_generator(self.flip_generator, state["flip_generator"])
        self._set_order(state["order"].cpu().clone(), int(state["position"]))
        return exact
