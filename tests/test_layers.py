"""The paper's layers against hand computations and NumPy references (book: chapter 4)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

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

# --- equalized learning rate -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("in_channels", "out_channels", "kernel", "gain"),
    [(64, 32, 3, HIDDEN_GAIN), (16, 8, 1, LINEAR_GAIN), (3, 128, 1, HIDDEN_GAIN), (128, 64, 3, 0.5)],
)
def test_equalized_conv_scale_is_gain_over_sqrt_fan_in(in_channels, out_channels, kernel, gain):
    layer = EqualizedConv2d(in_channels, out_channels, kernel, gain=gain)
    fan_in = in_channels * kernel * kernel  # by hand: every input a weight of one output sees
    assert layer.scale == pytest.approx(gain / math.sqrt(fan_in), rel=1e-12)
    assert layer.weight.shape == (out_channels, in_channels, kernel, kernel)
    assert torch.count_nonzero(layer.bias) == 0


def test_equalized_linear_scale_is_gain_over_sqrt_fan_in():
    layer = EqualizedLinear(200, 30, gain=HIDDEN_GAIN / 4)
    assert layer.scale == pytest.approx(math.sqrt(2.0) / 4 / math.sqrt(200), rel=1e-12)
    assert layer.weight.shape == (30, 200)
    assert torch.count_nonzero(layer.bias) == 0
    assert EqualizedLinear(512, 1).scale == pytest.approx(math.sqrt(2.0 / 512))  # default gain sqrt(2)


def test_equalized_weights_are_standard_normal():
    torch.manual_seed(1)
    weights = torch.cat(
        [EqualizedConv2d(256, 256, 3).weight.flatten(), EqualizedLinear(1024, 256).weight.flatten()]
    ).double()
    # ~850k draws of N(0, 1): the sample mean's sd is ~0.001 and the sample sd's ~0.0008.
    assert abs(weights.mean().item()) < 0.01
    assert weights.std().item() == pytest.approx(1.0, abs=0.01)
    # Fourth moment of a normal is 3 (a uniform init would give 1.8).
    assert (weights**4).mean().item() == pytest.approx(3.0, abs=0.05)


def test_equalized_conv_equals_conv2d_with_scaled_weight_and_unscaled_bias():
    layer = EqualizedConv2d(5, 7, 3, gain=HIDDEN_GAIN)
    with torch.no_grad():
        layer.bias.copy_(torch.randn(7))  # a non-zero bias must come out unscaled
    x = torch.randn(2, 5, 6, 9)
    expected = F.conv2d(x, layer.weight * (math.sqrt(2.0) / math.sqrt(5 * 9)), layer.bias, padding=1)
    torch.testing.assert_close(layer(x), expected, rtol=1e-6, atol=1e-6)
    # Scaling the output instead (a known port bug) scales the bias too: that differs.
    wrong = F.conv2d(x, layer.weight, layer.bias, padding=1) * layer.scale
    assert not torch.allclose(layer(x), wrong, atol=1e-3)


def test_equalized_linear_matches_numpy():
    layer = EqualizedLinear(12, 4, gain=1.0)
    with torch.no_grad():
        layer.bias.copy_(torch.arange(4.0))
    x = torch.randn(3, 12)
    w = layer.weight.detach().double().numpy()
    expected = x.double().numpy() @ (w / math.sqrt(12)).T + np.arange(4.0)
    np.testing.assert_allclose(layer(x).detach().double().numpy(), expected, rtol=1e-5, atol=1e-6)


def test_equalized_layer_output_has_unit_scale_for_unit_inputs():
    # The point of the gain: a linear layer with gain 1 keeps unit-variance inputs at unit variance.
    torch.manual_seed(0)
    layer = EqualizedConv2d(256, 256, 3, gain=1.0)
    x = torch.randn(4, 256, 16, 16)
    y = layer(x)[:, :, 1:-1, 1:-1]  # borders see zero padding
    assert y.std().item() == pytest.approx(1.0, abs=0.05)


def test_equalized_conv_rejects_even_kernel():
    with pytest.raises(ValueError, match="kernel_size must be odd"):
        EqualizedConv2d(3, 3, 2)


def test_equalized_gradient_of_stored_weight_is_scaled():
    # d out / d stored weight = scale * input: the update Adam normalises acts on N(0, 1) numbers.
    layer = EqualizedLinear(8, 1, gain=2.0)
    x = torch.randn(1, 8)
    layer(x).sum().backward()
    torch.testing.assert_close(layer.weight.grad, x * (2.0 / math.sqrt(8)))
    torch.testing.assert_close(layer.bias.grad, torch.ones(1))


# --- pixel norm ----------------------------------------------------------------------------------------------


def test_pixel_norm_matches_numpy_and_gives_unit_mean_square():
    x = torch.randn(3, 16, 5, 7) * 4.0 + 1.0
    y = PixelNorm()(x).numpy().astype(np.float64)
    xn = x.numpy().astype(np.float64)
    expected = xn / np.sqrt(np.mean(xn**2, axis=1, keepdims=True) + 1e-8)
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.mean(y**2, axis=1), 1.0, rtol=1e-5)


def test_pixel_norm_on_latents_and_zero_input():
    z = torch.randn(10, 512) * 7
    np.testing.assert_allclose(PixelNorm()(z).square().mean(dim=1).numpy(), 1.0, rtol=1e-5)
    assert torch.equal(PixelNorm()(torch.zeros(2, 4, 3, 3)), torch.zeros(2, 4, 3, 3))  # eps: no NaN


# --- minibatch stddev ----------------------------------------------------------------------------------------


def minibatch_stddev_numpy(x: np.ndarray, group_size: int, eps: float = 1e-8) -> np.ndarray:
    """The paper's statistic, written independently: sample i belongs to group i mod (N / G)."""
    n, c, h, w = x.shape
    group = min(group_size, n)
    groups = n // group
    stat = np.empty(groups)
    for g in range(groups):
        members = x[g::groups].astype(np.float64)  # the G samples i with i % groups == g
        assert members.shape[0] == group
        std = np.sqrt(members.var(axis=0, ddof=0) + eps)  # per feature and pixel, over the group
        stat[g] = std.mean()
    extra = np.broadcast_to(stat[np.arange(n) % groups][:, None, None, None], (n, 1, h, w))
    return np.concatenate([x, extra], axis=1)


@pytest.mark.parametrize(("batch", "group_size"), [(8, 4), (12, 4), (4, 4), (6, 2), (5, 1), (3, 4), (16, 16)])
def test_minibatch_stddev_matches_numpy(batch, group_size):
    x = torch.randn(batch, 6, 4, 3) * torch.linspace(0.5, 3, batch).reshape(-1, 1, 1, 1)
    y = MinibatchStddev(group_size)(x)
    assert y.shape == (batch, 7, 4, 3)
    torch.testing.assert_close(y[:, :6], x)  # the features pass through untouched
    np.testing.assert_allclose(y.numpy(), minibatch_stddev_numpy(x.numpy(), group_size), rtol=1e-5, atol=1e-6)


def test_minibatch_stddev_is_across_the_batch_not_the_whole_tensor():
    # DeepSound's bug: the std over the whole tensor. Identical samples must give (almost) zero.
    x = torch.randn(1, 8, 4, 4).repeat(4, 1, 1, 1)
    y = MinibatchStddev(4)(x)
    assert y[:, 8].max().item() < 1e-3
    assert x.std().item() > 0.5


def test_minibatch_stddev_groups_are_independent():
    # With group size 2 and a batch of 4, groups are {0, 2} and {1, 3}: changing sample 1 leaves group 0 alone.
    x = torch.randn(4, 3, 2, 2)
    before = MinibatchStddev(2)(x)[:, 3, 0, 0]
    x[1] += 5.0
    after = MinibatchStddev(2)(x)[:, 3, 0, 0]
    assert after[0] == before[0] and after[2] == before[2]
    assert after[1] != before[1] and after[1] == after[3]


def test_minibatch_stddev_rejects_a_batch_the_group_does_not_divide():
    with pytest.raises(ValueError, match=r"batch of 6 does not split into groups of 4"):
        MinibatchStddev(4)(torch.randn(6, 3, 4, 4))
    with pytest.raises(ValueError, match="group_size must be at least 1"):
        MinibatchStddev(0)


def test_minibatch_stddev_under_bf16_keeps_dtype():
    x = torch.randn(8, 4, 4, 4).bfloat16()
    y = MinibatchStddev(4)(x)
    assert y.dtype == torch.bfloat16
    expected = minibatch_stddev_numpy(x.float().numpy(), 4)[:, 4]
    np.testing.assert_allclose(y[:, 4].float().numpy(), expected, rtol=1e-2)


# --- resampling and activation -------------------------------------------------------------------------------


def test_upsample2x_is_nearest_neighbour():
    x = torch.randn(2, 3, 4, 5)
    expected = np.repeat(np.repeat(x.numpy(), 2, axis=2), 2, axis=3)
    assert upsample2x(x).shape == (2, 3, 8, 10)
    np.testing.assert_array_equal(upsample2x(x).numpy(), expected)


def test_downsample2x_is_box_average():
    x = torch.randn(2, 3, 6, 8)
    xn = x.numpy().astype(np.float64)
    expected = xn.reshape(2, 3, 3, 2, 4, 2).mean(axis=(3, 5))
    assert downsample2x(x).shape == (2, 3, 3, 4)
    np.testing.assert_allclose(downsample2x(x).numpy(), expected, rtol=1e-6, atol=1e-6)


def test_downsample_undoes_upsample_exactly():
    x = torch.randn(1, 2, 2, 16)
    assert torch.equal(downsample2x(upsample2x(x)), x)


def test_lrelu_slope():
    x = torch.tensor([-2.0, -0.5, 0.0, 3.0])
    torch.testing.assert_close(lrelu(x), torch.tensor([-0.4, -0.1, 0.0, 3.0]))
