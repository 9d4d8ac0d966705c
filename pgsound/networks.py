"""The progressive generator and discriminator, static full-depth modules (book: chapters 4 and 6).

Both networks hold every level from the start; ``level`` says how many are used (0 = the base, 4x4 by
default; level k has 2**k times the base's side) and ``alpha`` fades the newest one in:

- G: ``lerp(upsample2x(to_rgb[level-1](h)), to_rgb[level](block[level](h)), alpha)``
- D: ``lerp(from_rgb[level-1](downsample2x(x)), block[level](from_rgb[level](x)), alpha)``, then the rest.

Widths follow NVIDIA's ``nf(stage) = min(fmap_base / 2**(stage * fmap_decay), fmap_max)``; the block at
level k has nf(k + 1) channels, the latent nf(0). Only the layers a level needs run, and at ``alpha == 1`` the
old path is skipped.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from pgsound.layers import (
    HIDDEN_GAIN,
    LINEAR_GAIN,
    EqualizedConv2d,
    EqualizedLinear,
    MinibatchStddev,
    PixelNorm,
    downsample2x,
    lrelu,
    upsample2x,
)

# The fade-in weight: a float, or a 0-dim tensor on the networks' device. The training loop passes a tensor
# during a fade-in so that a compiled G or D sees one graph for the whole fade instead of one per alpha.
Alpha = float | torch.Tensor


def num_features(stage: int, fmap_base: int, fmap_decay: float, fmap_max: int) -> int:
    """NVIDIA's ``nf(stage)``: channels at a stage (stage 0 = the latent, stage k + 1 = level k)."""
    return min(int(fmap_base / (2.0 ** (stage * fmap_decay))), fmap_max)


def count_levels(resolution: int | tuple[int, int], base_shape: tuple[int, int]) -> int:
    """How many levels lead from ``base_shape`` to ``resolution`` by doublings (both sides alike)."""
    height, width = (resolution, resolution) if isinstance(resolution, int) else tuple(resolution)
    ratio_h, ratio_w = height / base_shape[0], width / base_shape[1]
    doublings = math.log2(ratio_h) if ratio_h >= 1 else -1
    if ratio_h != ratio_w or doublings < 0 or doublings != int(doublings):
        raise ValueError(
            f"resolution {height}x{width} is not base {base_shape[0]}x{base_shape[1]} doubled a whole number "
            f"of times"
        )
    return int(doublings) + 1


class GeneratorBlock(nn.Module):
    """Nearest 2x upsample, then two 3x3 convolutions, each followed by LeakyReLU and pixel norm."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv0 = EqualizedConv2d(in_channels, out_channels, 3)
        self.conv1 = EqualizedConv2d(out_channels, out_channels, 3)
        self.norm = PixelNorm()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm(lrelu(self.conv0(upsample2x(x))))
        return self.norm(lrelu(self.conv1(x)))


class GeneratorBase(nn.Module):
    """The base level: normalised latent -> dense to a 4x4 (or base-shaped) map -> one 3x3 convolution."""

    def __init__(self, in_features: int, channels: int, base_shape: tuple[int, int], first_gain_tf: bool) -> None:
        super().__init__()
        self.base_shape = base_shape
        self.channels = channels
        # NVIDIA's G_paper gives the first dense layer gain sqrt(2)/4, to match the Theano original's 4x4
        # full convolution (fan-in 16 times larger); without first_gain_tf, gain sqrt(2): 4x the scale of either.
        gain = HIDDEN_GAIN / 4 if first_gain_tf else HIDDEN_GAIN
        # One bias per channel, added after the reshape to a map (NVIDIA's apply_bias on the 4x4 map), not one
        # per output unit of the dense layer.
        self.dense = EqualizedLinear(in_features, channels * base_shape[0] * base_shape[1], gain=gain, bias=False)
        self.bias = nn.Parameter(torch.zeros(channels))
        self.conv = EqualizedConv2d(channels, channels, 3)
        self.norm = PixelNorm()

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.dense(self.norm(z)).reshape(-1, self.channels, *self.base_shape)
        x = self.norm(lrelu(x + self.bias.to(x.dtype).reshape(1, -1, 1, 1)))
        return self.norm(lrelu(self.conv(x)))


class Generator(nn.Module):
    """G(z, level, alpha, labels=None) -> images (N, channels, H, W) at ``level``, linear output.

    (book: chapter 4, The building blocks; chapter 6, Growing)
    """

    def __init__(
        self,
        resolution: int | tuple[int, int] = 1024,
        base_shape: tuple[int, int] = (4, 4),
        channels: int = 3,
        fmap_base: int = 8192,
        fmap_decay: float = 1.0,
        fmap_max: int = 512,
        latent_size: int | None = None,
        num_labels: int = 0,
        first_gain_tf: bool = True,
    ) -> None:
        super().__init__()
        base_shape = tuple(base_shape)
        self.num_levels = count_levels(resolution, base_shape)
        nf = [num_features(s, fmap_base, fmap_decay, fmap_max) for s in range(self.num_levels + 1)]
        self.latent_size = latent_size or nf[0]
        self.num_labels = num_labels
        self.channels = channels
        self.base_shape = base_shape
        self.blocks = nn.ModuleList([GeneratorBase(self.latent_size + num_labels, nf[1], base_shape, first_gain_tf)])
        self.blocks.extend(GeneratorBlock(nf[k], nf[k + 1]) for k in range(1, self.num_levels))
        self.to_rgb = nn.ModuleList(
            EqualizedConv2d(nf[k + 1], channels, 1, gain=LINEAR_GAIN) for k in range(self.num_levels)
        )

    def forward(
        self, z: torch.Tensor, level: int, alpha: Alpha = 1.0, labels: torch.Tensor | None = None
    ) -> torch.Tensor:
        check_level(level, alpha, self.num_levels)
        if self.num_labels:
            if labels is None:
                raise ValueError(f"this generator is conditioned on {self.num_labels} labels: pass labels")
            z = torch.cat([z, F.one_hot(labels.long(), self.num_labels).to(z.dtype)], dim=1)
        x = self.blocks[0](z)
        for block in self.blocks[1:level]:
            x = block(x)
        if level == 0:
            return self.to_rgb[0](x)
        new = self.to_rgb[level](self.blocks[level](x))
        if not is_fading(alpha):
            return new
        old = upsample2x(self.to_rgb[level - 1](x))
        return fade(old, new, alpha)


class DiscriminatorBlock(nn.Module):
    """Two 3x3 convolutions with LeakyReLU, then 2x2 average pooling."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv0 = EqualizedConv2d(in_channels, in_channels, 3)
        self.conv1 = EqualizedConv2d(in_channels, out_channels, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return downsample2x(lrelu(self.conv1(lrelu(self.conv0(x)))))


class DiscriminatorBase(nn.Module):
    """The base level: minibatch stddev, a 3x3 convolution, dense to nf(0), dense to the score (+ labels)."""

    def __init__(
        self, channels: int, latent_channels: int, base_shape: tuple[int, int], num_labels: int, group_size: int
    ) -> None:
        super().__init__()
        self.mbstd = MinibatchStddev(group_size) if group_size > 1 else None
        extra = 1 if self.mbstd is not None else 0
        self.conv = EqualizedConv2d(channels + extra, channels, 3)
        self.dense0 = EqualizedLinear(channels * base_shape[0] * base_shape[1], latent_channels)
        self.dense1 = EqualizedLinear(latent_channels, 1 + num_labels, gain=LINEAR_GAIN)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mbstd is not None:
            x = self.mbstd(x)
        x = lrelu(self.conv(x))
        return self.dense1(lrelu(self.dense0(x.flatten(1))))


class Discriminator(nn.Module):
    """D(x, level, alpha) -> scores (N,), or (scores, label logits (N, num_labels)) when conditioned.

    Reals and fakes must go through D in separate calls: minibatch stddev would otherwise mix them.
    (book: chapter 4, The building blocks; chapter 6, Growing)
    """

    def __init__(
        self,
        resolution: int | tuple[int, int] = 1024,
        base_shape: tuple[int, int] = (4, 4),
        channels: int = 3,
        fmap_base: int = 8192,
        fmap_decay: float = 1.0,
        fmap_max: int = 512,
        num_labels: int = 0,
        mbstd_group_size: int = 4,
    ) -> None:
        super().__init__()
        base_shape = tuple(base_shape)
        self.num_levels = count_levels(resolution, base_shape)
        nf = [num_features(s, fmap_base, fmap_decay, fmap_max) for s in range(self.num_levels + 1)]
        self.num_labels = num_labels
        self.channels = channels
        self.from_rgb = nn.ModuleList(EqualizedConv2d(channels, nf[k + 1], 1) for k in range(self.num_levels))
        self.blocks = nn.ModuleList(
            [DiscriminatorBase(nf[1], nf[0], base_shape, num_labels, mbstd_group_size)]
        )
        self.blocks.extend(DiscriminatorBlock(nf[k + 1], nf[k]) for k in range(1, self.num_levels))

    def forward(
        self, x: torch.Tensor, level: int, alpha: Alpha = 1.0
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        check_level(level, alpha, self.num_levels)
        h = lrelu(self.from_rgb[level](x))
        if level > 0:
            h = self.blocks[level](h)
            if is_fading(alpha):
                old = lrelu(self.from_rgb[level - 1](downsample2x(x)))
                h = fade(old, h, alpha)
        for block in self.blocks[level - 1 : 0 : -1] if level > 1 else ():
            h = block(h)
        out = self.blocks[0](h)
        scores = out[:, 0]
        return (scores, out[:, 1:]) if self.num_labels else scores


def is_fading(alpha: Alpha) -> bool:
    """Whether the old path must run: always for a tensor alpha (one compiled graph for a whole fade-in)."""
    return isinstance(alpha, torch.Tensor) or alpha < 1.0


def fade(old: torch.Tensor, new: torch.Tensor, alpha: Alpha) -> torch.Tensor:
    """``lerp(old, new, alpha)``, computed in float32 as lerp does for a Python alpha.

    A tensor alpha stays float32: cast to bf16 under autocast, 0.999 would become 1.0 and the networks would
    finish a fade-in before the loader's reals do.
    """
    if isinstance(alpha, torch.Tensor) and new.dtype != alpha.dtype:
        return torch.lerp(old.to(alpha.dtype), new.to(alpha.dtype), alpha).to(new.dtype)
    return torch.lerp(old, new, alpha)


def check_level(level: int, alpha: Alpha, num_levels: int) -> None:
    if not 0 <= level < num_levels:
        raise ValueError(f"level {level} is outside this network's levels 0..{num_levels - 1}")
    # A tensor alpha is not read here: that would be a host synchronisation per forward pass.
    if not isinstance(alpha, torch.Tensor) and not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")


def parameter_count(module: nn.Module) -> int:
    """Trainable parameters of a network (the paper's 1024x1024 generator has about 23.1M)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
