"""The progressive G and D: shapes, the fade-in, widths, parameter counts, labels, precision, compile.

(book: chapter 4, The building blocks; chapter 6, Growing)
"""

from __future__ import annotations

import math
import shutil

import pytest
import torch

from pgsound.device import default_device
from pgsound.layers import HIDDEN_GAIN, downsample2x, upsample2x
from pgsound.networks import Discriminator, Generator, count_levels, num_features, parameter_count

DEVICE = default_device()
HAS_C_COMPILER = DEVICE.type == "cuda" or any(shutil.which(cc) for cc in ("cc", "gcc", "clang"))
SMALL = dict(fmap_base=64, fmap_max=16)  # 16 channels everywhere but the last levels: fast on a CPU


def small_pair(base_shape=(4, 4), levels=4, channels=1, **extra):
    height, width = base_shape
    resolution = (height * 2 ** (levels - 1), width * 2 ** (levels - 1))
    kwargs = dict(resolution=resolution, base_shape=base_shape, channels=channels, **SMALL, **extra)
    torch.manual_seed(0)
    G = Generator(**kwargs).to(DEVICE).eval()
    D = Discriminator(**kwargs).to(DEVICE).eval()
    return G, D


def randomise_biases(*modules):
    # Biases start at zero; non-zero ones make the checks below see every term.
    with torch.no_grad():
        for module in modules:
            for name, p in module.named_parameters():
                if name.endswith("bias"):
                    p.normal_(0, 0.1)


# --- shapes --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("base_shape", [(4, 4), (2, 16), (4, 8)])
@pytest.mark.parametrize("channels", [1, 3])
def test_shapes_at_every_level(base_shape, channels):
    G, D = small_pair(base_shape, levels=4, channels=channels)
    assert G.num_levels == D.num_levels == 4
    assert G.latent_size == num_features(0, 64, 1.0, 16) == 16
    z = torch.randn(4, G.latent_size, device=DEVICE)
    for level in range(G.num_levels):
        expected = (4, channels, base_shape[0] * 2**level, base_shape[1] * 2**level)
        for alpha in (0.0, 0.5, 1.0):
            images = G(z, level, alpha)
            assert images.shape == expected
            scores = D(images, level, alpha)
            assert scores.shape == (4,)
            assert torch.isfinite(scores).all()


def test_count_levels_and_bad_resolutions():
    assert count_levels(1024, (4, 4)) == 9
    assert count_levels((128, 1024), (2, 16)) == 7  # GANSynth's 2x16 -> 128x1024
    assert count_levels(4, (4, 4)) == 1
    for resolution, base in [(48, (4, 4)), ((64, 32), (4, 4)), (2, (4, 4)), ((16, 64), (2, 16))]:
        with pytest.raises(ValueError, match="is not base"):
            count_levels(resolution, base)


def test_level_and_alpha_are_checked():
    G, D = small_pair(levels=3)
    z = torch.randn(2, G.latent_size, device=DEVICE)
    with pytest.raises(ValueError, match=r"level 3 is outside this network's levels 0..2"):
        G(z, 3)
    with pytest.raises(ValueError, match="level -1"):
        D(torch.zeros(2, 1, 4, 4, device=DEVICE), -1)
    with pytest.raises(ValueError, match=r"alpha must be in \[0, 1\], got 1.5"):
        G(z, 1, 1.5)


# --- the fade-in ---------------------------------------------------------------------------------------------


def grown_generator_path(G, z, level):
    """The fully grown path written out by hand: base, every block up to ``level``, its toRGB."""
    h = G.blocks[0](z)
    for k in range(1, level + 1):
        h = G.blocks[k](h)
    return G.to_rgb[level](h), h


def grown_discriminator_path(D, x, level):
    h = torch.nn.functional.leaky_relu(D.from_rgb[level](x), 0.2)
    for k in range(level, 0, -1):
        h = D.blocks[k](h)
    return D.blocks[0](h)[:, 0]


@pytest.mark.parametrize("base_shape", [(4, 4), (2, 16)])
def test_generator_fade_in(base_shape):
    G, _ = small_pair(base_shape, levels=4)
    randomise_biases(G)
    z = torch.randn(6, G.latent_size, device=DEVICE)
    with torch.no_grad():
        for level in range(1, G.num_levels):
            grown, _ = grown_generator_path(G, z, level)
            old = upsample2x(G(z, level - 1, 1.0))
            torch.testing.assert_close(G(z, level, 1.0), grown, rtol=0, atol=0)
            assert torch.equal(G(z, level, 0.0), old)  # alpha=0: exactly the previous level, upsampled
            mixed = G(z, level, 0.3)
            torch.testing.assert_close(mixed, 0.7 * old + 0.3 * grown, rtol=1e-5, atol=1e-6)
            assert not torch.allclose(old, grown, atol=1e-3)  # the test would notice a swapped lerp


def by_hand_pixel_norm(x):
    return x / torch.sqrt(x.square().mean(dim=1, keepdim=True) + 1e-8)


def test_every_generator_block_is_convolution_leaky_relu_then_pixel_norm():
    """Each block's maps have unit mean square over channels at every pixel, and a block is the paper's
    composition; the latent is normalised, so its length does not matter."""
    lrelu = torch.nn.functional.leaky_relu
    G, _ = small_pair(levels=4)
    randomise_biases(G)
    z = torch.randn(5, G.latent_size, device=DEVICE)
    with torch.no_grad():
        torch.testing.assert_close(G(z, 3, 1.0), G(3.0 * z, 3, 1.0), rtol=1e-3, atol=1e-4)
        base = G.blocks[0]
        x = base.dense(by_hand_pixel_norm(z[:, :, None, None])[:, :, 0, 0]).reshape(5, base.channels, 4, 4)
        x = by_hand_pixel_norm(lrelu(x + base.bias.reshape(1, -1, 1, 1), 0.2))
        h = by_hand_pixel_norm(lrelu(base.conv(x), 0.2))
        torch.testing.assert_close(base(z), h, rtol=1e-4, atol=1e-5)
        for k in range(1, G.num_levels):
            block = G.blocks[k]
            inner = by_hand_pixel_norm(lrelu(block.conv0(upsample2x(h)), 0.2))
            expected = by_hand_pixel_norm(lrelu(block.conv1(inner), 0.2))
            h = block(h)
            torch.testing.assert_close(h, expected, rtol=1e-4, atol=1e-5)
            mean_square = h.square().mean(dim=1)
            torch.testing.assert_close(mean_square, torch.ones_like(mean_square), rtol=1e-4, atol=1e-4)


def test_generator_alpha_one_ignores_the_old_path():
    G, _ = small_pair(levels=3)
    z = torch.randn(4, G.latent_size, device=DEVICE)
    with torch.no_grad():
        before = G(z, 2, 1.0)
        G.to_rgb[1].weight.mul_(-3.0)
        assert torch.equal(G(z, 2, 1.0), before)
        assert not torch.allclose(G(z, 2, 0.5), before)


@pytest.mark.parametrize("base_shape", [(4, 4), (2, 16)])
def test_discriminator_fade_in(base_shape):
    _, D = small_pair(base_shape, levels=4)
    randomise_biases(D)
    with torch.no_grad():
        for level in range(1, D.num_levels):
            x = torch.randn(8, 1, base_shape[0] * 2**level, base_shape[1] * 2**level, device=DEVICE)
            grown = grown_discriminator_path(D, x, level)
            old = D(downsample2x(x), level - 1, 1.0)
            torch.testing.assert_close(D(x, level, 1.0), grown, rtol=0, atol=0)
            assert torch.equal(D(x, level, 0.0), old)  # alpha=0: exactly the previous level on the pooled input
            assert not torch.allclose(old, grown, atol=1e-4)


def test_discriminator_alpha_one_ignores_the_old_path():
    _, D = small_pair(levels=3)
    x = torch.randn(4, 1, 16, 16, device=DEVICE)
    with torch.no_grad():
        before = D(x, 2, 1.0)
        D.from_rgb[1].weight.mul_(-3.0)
        assert torch.equal(D(x, 2, 1.0), before)
        assert not torch.allclose(D(x, 2, 0.5), before)


def test_only_the_used_levels_get_gradients():
    G, D = small_pair(levels=4)
    z = torch.randn(4, G.latent_size, device=DEVICE)
    D(G(z, 2, 0.5), 2, 0.5).sum().backward()
    for net in (G, D):
        for name, p in net.named_parameters():
            level = int(name.split(".")[1])
            used = level <= 2 and not (name.startswith(("to_rgb", "from_rgb")) and level < 1)
            assert (p.grad is not None) == used, name


# --- widths, gains and parameter counts ----------------------------------------------------------------------


def test_num_features_matches_the_paper_table():
    # Paper Table 2 (fmap_base 8192, decay 1, max 512): 512 up to 32x32, then 256, 128, 64, 32, 16.
    widths = [num_features(s, 8192, 1.0, 512) for s in range(10)]
    assert widths == [512, 512, 512, 512, 512, 256, 128, 64, 32, 16]
    assert [num_features(s, 256, 1.0, 64) for s in range(6)] == [64, 64, 64, 32, 16, 8]
    assert [num_features(s, 1024, 0.5, 1024) for s in range(4)] == [1024, 724, 512, 362]


def test_layer_widths_follow_nf():
    kwargs = dict(resolution=64, fmap_base=256, fmap_decay=1.0, fmap_max=64, channels=3)
    G, D = Generator(**kwargs), Discriminator(**kwargs)
    nf = [num_features(s, 256, 1.0, 64) for s in range(G.num_levels + 1)]
    assert G.latent_size == nf[0] == 64
    assert G.blocks[0].dense.weight.shape == (nf[1] * 16, nf[0])
    assert G.blocks[0].dense.bias is None and G.blocks[0].bias.shape == (nf[1],)  # one bias per channel
    for k in range(1, G.num_levels):
        assert G.blocks[k].conv0.weight.shape == (nf[k + 1], nf[k], 3, 3)
        assert G.blocks[k].conv1.weight.shape == (nf[k + 1], nf[k + 1], 3, 3)
        assert D.blocks[k].conv0.weight.shape == (nf[k + 1], nf[k + 1], 3, 3)
        assert D.blocks[k].conv1.weight.shape == (nf[k], nf[k + 1], 3, 3)
    for k in range(G.num_levels):
        assert G.to_rgb[k].weight.shape == (3, nf[k + 1], 1, 1)
        assert D.from_rgb[k].weight.shape == (nf[k + 1], 3, 1, 1)
    assert D.blocks[0].conv.weight.shape == (nf[1], nf[1] + 1, 3, 3)  # +1: the minibatch stddev map
    assert D.blocks[0].dense0.weight.shape == (nf[0], nf[1] * 16)
    assert D.blocks[0].dense1.weight.shape == (1, nf[0])
    assert Generator(resolution=64, fmap_base=256, fmap_max=64, latent_size=32).latent_size == 32


def test_gains():
    G, D = small_pair(levels=3)
    assert G.blocks[0].dense.gain == pytest.approx(math.sqrt(2) / 4)  # TF port's G_paper
    assert Generator(resolution=8, **SMALL, first_gain_tf=False).blocks[0].dense.gain == pytest.approx(HIDDEN_GAIN)
    assert all(layer.gain == 1.0 for layer in G.to_rgb)  # linear outputs
    assert D.blocks[0].dense1.gain == 1.0  # D's score layer is scaled too (DeepSound forgot it)
    assert all(layer.gain == pytest.approx(math.sqrt(2)) for layer in D.from_rgb)
    assert G.blocks[1].conv0.gain == D.blocks[1].conv1.gain == pytest.approx(math.sqrt(2))


def paper_generator_count(channels: int, widths: list[int]) -> int:
    """Hand count from the paper's Table 2 layer list (G: dense latent -> 4x4 map, 3x3 convs, 1x1 toRGB)."""
    total = widths[0] * widths[1] * 16 + widths[1]  # dense to 4x4, one bias per channel (NVIDIA's apply_bias)
    total += 9 * widths[1] ** 2 + widths[1]  # 3x3 conv at 4x4
    for k in range(1, len(widths) - 1):
        total += 9 * widths[k] * widths[k + 1] + widths[k + 1] + 9 * widths[k + 1] ** 2 + widths[k + 1]
    total += sum(w * channels + channels for w in widths[1:])  # a toRGB per level
    return total


def paper_discriminator_count(channels: int, widths: list[int]) -> int:
    total = sum(channels * w + w for w in widths[1:])  # a fromRGB per level
    for k in range(1, len(widths) - 1):
        total += 9 * widths[k + 1] ** 2 + widths[k + 1] + 9 * widths[k + 1] * widths[k] + widths[k]
    total += 9 * (widths[1] + 1) * widths[1] + widths[1]  # mbstd, 3x3 conv
    total += widths[1] * 16 * widths[0] + widths[0] + widths[0] + 1  # 4x4 -> dense, dense -> score
    return total


@pytest.mark.parametrize(
    ("resolution", "channels", "g_count", "d_count"),
    [
        # The paper's CelebA-HQ networks: 23.1M each (Table 2); NVIDIA's G_paper and D_paper have exactly these.
        (1024, 3, 23_079_115, 23_087_249),
        (512, 1, 23_067_048, 23_075_169),  # the piano run's 512x512 one-channel networks
    ],
)
def test_parameter_counts(resolution, channels, g_count, d_count):
    with torch.device("meta"):  # shapes only: no 23M random numbers
        G = Generator(resolution=resolution, channels=channels)
        D = Discriminator(resolution=resolution, channels=channels)
    widths = [num_features(s, 8192, 1.0, 512) for s in range(G.num_levels + 1)]
    assert parameter_count(G) == paper_generator_count(channels, widths) == g_count
    assert parameter_count(D) == paper_discriminator_count(channels, widths) == d_count
    if resolution == 1024:
        assert round(parameter_count(G) / 1e6, 1) == 23.1


# --- labels (AC-GAN) -----------------------------------------------------------------------------------------


def test_label_conditioning():
    G, D = small_pair(levels=3, num_labels=5)
    z = torch.randn(8, G.latent_size, device=DEVICE)
    labels = torch.tensor([0, 1, 2, 3, 4, 0, 1, 2], device=DEVICE)
    assert G.blocks[0].dense.weight.shape[1] == G.latent_size + 5  # one-hot concatenated to the latent
    images = G(z, 2, 0.5, labels)
    assert images.shape == (8, 1, 16, 16)
    assert not torch.allclose(images, G(z, 2, 0.5, (labels + 1) % 5))
    scores, logits = D(images, 2, 0.5)
    assert scores.shape == (8,) and logits.shape == (8, 5)
    with pytest.raises(ValueError, match="conditioned on 5 labels: pass labels"):
        G(z, 1)
    assert D.blocks[0].dense1.weight.shape == (6, D.blocks[0].dense0.weight.shape[0])


# --- batch independence, precision, compile ------------------------------------------------------------------


def test_generator_is_batch_size_independent():
    G, D = small_pair(levels=3)
    z = torch.randn(8, G.latent_size, device=DEVICE)
    with torch.no_grad():
        whole = G(z, 2, 0.5)
        torch.testing.assert_close(G(z[:3], 2, 0.5), whole[:3], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(G(z[5:6], 2, 0.5), whole[5:6], rtol=1e-5, atol=1e-5)


def test_discriminator_depends_on_the_batch_only_through_mbstd():
    _, D = small_pair(levels=3)
    x = torch.randn(8, 1, 16, 16, device=DEVICE)
    with torch.no_grad():
        before = D(x, 2, 1.0)
        # Sample i sits in group i % 2 (group size 4): changing sample 1 moves the scores of group 1 only,
        # including sample 3, whose own input did not change.
        y = x.clone()
        y[1] += 2.0
        after = D(y, 2, 1.0)
        torch.testing.assert_close(after[[0, 2, 4, 6]], before[[0, 2, 4, 6]], rtol=0, atol=0)
        assert not torch.allclose(after[3], before[3])
    plain = Discriminator(resolution=16, channels=1, **SMALL, mbstd_group_size=1).to(DEVICE).eval()
    assert plain.blocks[0].mbstd is None
    with torch.no_grad():
        torch.testing.assert_close(plain(x[:2], 2, 1.0), plain(x, 2, 1.0)[:2], rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="batch of 6 does not split into groups of 4"):
        D(x[:6], 2, 1.0)


def test_bf16_autocast_is_close_to_float32():
    G, D = small_pair(levels=3)
    z = torch.randn(8, G.latent_size, device=DEVICE)
    with torch.no_grad():
        images = G(z, 2, 0.5)
        scores = D(images, 2, 0.5)
        with torch.autocast(DEVICE.type, dtype=torch.bfloat16):
            images_bf16 = G(z, 2, 0.5)
            scores_bf16 = D(images, 2, 0.5)
    assert images_bf16.dtype == torch.bfloat16  # the convolutions really ran in bf16
    # bf16 keeps 8 bits of mantissa (0.4%); over a dozen layers the error stays at a few percent of the
    # signal's spread (RMS), with single pixels up to a few times that.
    image_error = images_bf16.float() - images
    assert image_error.square().mean().sqrt() < 0.03 * images.std()
    assert image_error.abs().max() < 0.15 * images.std()
    assert (scores_bf16.float() - scores).abs().max() < 0.05 * scores.std() + 0.01


@pytest.mark.slow
@pytest.mark.skipif(not HAS_C_COMPILER, reason="torch.compile (inductor) needs a C compiler on the CPU")
def test_torch_compile_agrees_with_eager():
    # One (level, alpha) only: every new Python float alpha is a recompile, and each costs seconds on a CPU.
    G, D = small_pair(base_shape=(2, 4), levels=3)
    z = torch.randn(4, G.latent_size, device=DEVICE)
    compiled_G, compiled_D = torch.compile(G), torch.compile(D)
    with torch.no_grad():
        images = G(z, 2, 0.25)
        torch.testing.assert_close(compiled_G(z, 2, 0.25), images, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(compiled_D(images, 2, 0.25), D(images, 2, 0.25), rtol=1e-4, atol=1e-4)
