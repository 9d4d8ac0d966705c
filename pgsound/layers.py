"""The paper's layers: equalized learning rate, pixel norm, minibatch stddev, resampling (book: chapter 4).

Each class is one idea, small enough to read in full (in the manner of pro_gan_pytorch), with its gain
explicit at the call site (in the manner of stylegan2-ada-pytorch).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

HIDDEN_GAIN = math.sqrt(2.0)  # He's constant for LeakyReLU-ish hidden layers
LINEAR_GAIN = 1.0  # toRGB and D's score: linear outputs
LRELU_SLOPE = 0.2


class EqualizedLinear(nn.Module):
    """Dense layer with equalized learning rate: weights N(0, 1), scaled by ``gain / sqrt(fan_in)`` at run time.

    Scaling the weight (not the output) leaves the bias unscaled, as in NVIDIA's code. Adam's step is then
    the same size relative to every weight, whatever the layer's fan-in. (book: chapter 4, The building blocks)
    """

    def __init__(self, in_features: int, out_features: int, gain: float = HIDDEN_GAIN, bias: bool = True) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features))
        # bias=False where the caller adds its own (G's first layer: one bias per channel, not per unit).
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None
        self.scale = gain / math.sqrt(in_features)
        self.gain = gain

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.scale, self.bias)

    def extra_repr(self) -> str:
        return f"{self.weight.shape[1]}, {self.weight.shape[0]}, gain={self.gain:.4g}"


class EqualizedConv2d(nn.Module):
    """Convolution with equalized learning rate (``fan_in = in_channels * k * k``), 'same' padding.

    (book: chapter 4, The building blocks)
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, gain: float = HIDDEN_GAIN) -> None:
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd for 'same' padding, got {kernel_size}")
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.scale = gain / math.sqrt(in_channels * kernel_size * kernel_size)
        self.padding = kernel_size // 2
        self.gain = gain

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.scale, self.bias, padding=self.padding)

    def extra_repr(self) -> str:
        out_c, in_c, k, _ = self.weight.shape
        return f"{in_c}, {out_c}, kernel_size={k}, gain={self.gain:.4g}"


class PixelNorm(nn.Module):
    """Normalise each pixel's feature vector to unit mean square: ``x / sqrt(mean_c(x^2) + eps)``.

    Used on the latent and after every convolution of G (never in D). (book: chapter 4, The building blocks)
    """

    def __init__(self, eps: float = 1e-8) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + self.eps)


class MinibatchStddev(nn.Module):
    """Append one feature map: the average standard deviation of the features across a group of samples.

    The batch is split into groups of ``group_size`` (sample ``i`` joins group ``i % (N / group_size)``, as in
    NVIDIA's code); a batch smaller than the group forms one group. D can then see how varied a batch is, which
    penalises a generator that collapses to a few outputs. (book: chapter 4, The building blocks)
    """

    def __init__(self, group_size: int = 4, eps: float = 1e-8) -> None:
        super().__init__()
        if group_size < 1:
            raise ValueError(f"group_size must be at least 1, got {group_size}")
        self.group_size = group_size
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        group = min(self.group_size, n)
        if n % group:
            raise ValueError(
                f"minibatch stddev: a batch of {n} does not split into groups of {group}; "
                f"use a minibatch divisible by {group} or change mbstd_group_size"
            )
        y = x.float().reshape(group, n // group, c, h, w)
        y = (y - y.mean(dim=0)).square().mean(dim=0)  # variance over the group
        y = (y + self.eps).sqrt().mean(dim=(1, 2, 3))  # one number per group
        y = y.to(x.dtype).reshape(1, n // group, 1, 1, 1).expand(group, -1, 1, h, w).reshape(n, 1, h, w)
        return torch.cat([x, y], dim=1)

    def extra_repr(self) -> str:
        return f"group_size={self.group_size}"


def lrelu(x: torch.Tensor) -> torch.Tensor:
    """LeakyReLU with the paper's slope 0.2."""
    return F.leaky_relu(x, LRELU_SLOPE)


def upsample2x(x: torch.Tensor) -> torch.Tensor:
    """Nearest-neighbour 2x upsampling: each pixel becomes a 2x2 block."""
    return F.interpolate(x, scale_factor=2.0, mode="nearest")


def downsample2x(x: torch.Tensor) -> torch.Tensor:
    """2x2 average pooling: the box average NVIDIA's datasets use between levels."""
    return F.avg_pool2d(x, kernel_size=2)
