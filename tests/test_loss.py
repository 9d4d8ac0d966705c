"""WGAN-GP (with drift) and logistic + R1 against closed forms and hand computations (book: chapter 3)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from pgsound.config import LossConfig
from pgsound.loss import discriminator_loss, generator_loss, gradient_penalty, r1_penalty
from pgsound.networks import Discriminator


class LinearCritic(nn.Module):
    """D(x) = w . flatten(x) + b (plus linear label logits): its gradient is w everywhere, so ||grad|| = |w|."""

    def __init__(self, features: int, num_labels: int = 0) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.randn(features, dtype=torch.float64).float())
        self.b = nn.Parameter(torch.tensor(0.3))
        self.label_weight = nn.Parameter(torch.randn(features, num_labels)) if num_labels else None
        self.calls: list[torch.Tensor] = []

    def forward(self, x, level, alpha):
        self.calls.append(x.detach().clone())
        flat = x.flatten(1)
        scores = flat @ self.w + self.b
        return (scores, flat @ self.label_weight) if self.label_weight is not None else scores


class QuadraticCritic(nn.Module):
    """D(x) = ||x||^2 / 2: its gradient at x is x itself."""

    def forward(self, x, level, alpha):
        return 0.5 * x.flatten(1).square().sum(dim=1)


def softplus(x):
    return np.log1p(np.exp(x))


def cross_entropy(logits, labels):
    logits = logits - logits.max(axis=1, keepdims=True)
    log_probs = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    return -log_probs[np.arange(len(labels)), labels].mean()


def numpy_of(t):
    return t.detach().double().numpy()


# --- the gradient penalty ------------------------------------------------------------------------------------


@pytest.mark.parametrize("target", [1.0, 750.0])
@pytest.mark.parametrize("shape", [(6, 2), (6, 1, 4, 4), (6, 3, 2, 8)])
def test_penalty_of_a_linear_critic_is_its_closed_form(shape, target):
    critic = LinearCritic(int(np.prod(shape[1:])))
    with torch.no_grad():
        critic.w.mul_(3.0 if target == 1.0 else 200.0)
    reals, fakes = torch.randn(shape), torch.randn(shape)
    penalty = gradient_penalty(critic, reals, fakes, level=0, alpha=1.0, target=target)
    norm_w = np.linalg.norm(numpy_of(critic.w))
    expected = (norm_w - target) ** 2 / target**2  # the same for every sample, wherever x_hat lies
    assert penalty.shape == (6,)
    np.testing.assert_allclose(numpy_of(penalty), expected, rtol=1e-5)


def test_penalty_is_taken_on_the_line_between_real_and_fake():
    # A quadratic critic has ||grad D(x_hat)|| = ||x_hat||, so the penalty reveals where x_hat lies.
    reals, fakes = torch.randn(5, 2, 3, 3), torch.randn(5, 2, 3, 3) + 2.0
    penalty = gradient_penalty(QuadraticCritic(), reals, fakes, 0, 1.0, generator=torch.Generator().manual_seed(7))
    u = torch.rand(5, generator=torch.Generator().manual_seed(7)).double().numpy()[:, None, None, None]
    x_hat = (1 - u) * numpy_of(reals) + u * numpy_of(fakes)
    expected = (np.linalg.norm(x_hat.reshape(5, -1), axis=1) - 1.0) ** 2
    np.testing.assert_allclose(numpy_of(penalty), expected, rtol=1e-5)
    assert np.ptp(u) > 0.1  # one u per sample, not one for the batch


def test_penalty_rejects_mismatched_batches():
    with pytest.raises(ValueError, match=r"reals \(4, 2\) and fakes \(3, 2\) must have the same shape"):
        gradient_penalty(QuadraticCritic(), torch.zeros(4, 2), torch.zeros(3, 2), 0, 1.0)


def test_penalty_gradient_reaches_the_critic():
    # d/dw lambda (|w| - 1)^2 = 2 lambda (|w| - 1) w / |w|: the double backward works.
    critic = LinearCritic(3)
    penalty = gradient_penalty(critic, torch.randn(4, 3), torch.randn(4, 3), 0, 1.0).mean()
    penalty.backward()
    w = numpy_of(critic.w)
    norm_w = np.linalg.norm(w)
    np.testing.assert_allclose(numpy_of(critic.w.grad), 2 * (norm_w - 1) * w / norm_w, rtol=1e-5)


# --- the WGAN-GP D loss and G loss ---------------------------------------------------------------------------


def test_wgan_gp_discriminator_loss_by_hand():
    config = LossConfig()  # lambda 10, gamma 1, epsilon 0.001: the paper's values
    assert (config.gp_lambda, config.gp_target, config.drift) == (10.0, 1.0, 0.001)
    critic = LinearCritic(8)
    reals, fakes = torch.randn(5, 2, 2, 2), torch.randn(5, 2, 2, 2)
    loss, stats = discriminator_loss(critic, reals, fakes, 0, 1.0, config)
    w, b = numpy_of(critic.w), 0.3
    real_scores = numpy_of(reals).reshape(5, -1) @ w + b
    fake_scores = numpy_of(fakes).reshape(5, -1) @ w + b
    penalty = (np.linalg.norm(w) - 1.0) ** 2
    drift = np.mean(real_scores**2)  # epsilon * D(real)^2, a mean over the batch
    expected = fake_scores.mean() - real_scores.mean() + 10.0 * penalty + 0.001 * drift
    np.testing.assert_allclose(loss.item(), expected, rtol=1e-5)
    np.testing.assert_allclose(stats["penalty"].item(), penalty, rtol=1e-5)
    np.testing.assert_allclose(stats["drift"].item(), drift, rtol=1e-5)
    np.testing.assert_allclose(stats["score_real"].item(), real_scores.mean(), rtol=1e-5)
    np.testing.assert_allclose(stats["score_fake"].item(), fake_scores.mean(), rtol=1e-5)


def test_wgan_gp_gradient_by_hand():
    config = LossConfig(gp_lambda=10.0, gp_target=1.0, drift=0.1)
    critic = LinearCritic(3)
    reals, fakes = torch.randn(4, 3), torch.randn(4, 3)
    loss, _ = discriminator_loss(critic, reals, fakes, 0, 1.0, config)
    loss.backward()
    w, r, f = numpy_of(critic.w), numpy_of(reals), numpy_of(fakes)
    s = r @ w + 0.3
    norm_w = np.linalg.norm(w)
    grad_w = f.mean(0) - r.mean(0) + 10 * 2 * (norm_w - 1) * w / norm_w + 0.1 * (2 * s[:, None] * r).mean(0)
    np.testing.assert_allclose(numpy_of(critic.w.grad), grad_w, rtol=1e-4)
    np.testing.assert_allclose(critic.b.grad.item(), 0.1 * 2 * s.mean(), rtol=1e-4)


def test_reals_and_fakes_go_through_d_in_separate_calls():
    critic = LinearCritic(2)
    reals, fakes = torch.randn(4, 2), torch.randn(4, 2) + 10.0
    discriminator_loss(critic, reals, fakes, 0, 1.0, LossConfig())
    assert len(critic.calls) == 3  # reals, fakes, then the interpolates of the penalty
    assert torch.equal(critic.calls[0], reals) and torch.equal(critic.calls[1], fakes)
    assert all(call.shape == (4, 2) for call in critic.calls)


def test_d_loss_leaves_the_generator_alone():
    critic = LinearCritic(2)
    g_weight = nn.Parameter(torch.ones(2))
    fakes = torch.randn(4, 2) * g_weight
    loss, _ = discriminator_loss(critic, torch.randn(4, 2), fakes, 0, 1.0, LossConfig())
    loss.backward()
    assert g_weight.grad is None and critic.w.grad is not None


def test_penalty_net_computes_the_penalty():
    scoring, penalising = LinearCritic(2), LinearCritic(2)
    penalising.load_state_dict(scoring.state_dict())
    discriminator_loss(scoring, torch.randn(4, 2), torch.randn(4, 2), 0, 1.0, LossConfig(), penalty_net=penalising)
    assert len(scoring.calls) == 2 and len(penalising.calls) == 1


def test_generator_loss_by_hand():
    critic = LinearCritic(4)
    fakes = torch.randn(6, 4)
    scores = numpy_of(fakes) @ numpy_of(critic.w) + 0.3
    wgan = generator_loss(critic, fakes, 0, 1.0, LossConfig())
    np.testing.assert_allclose(wgan.item(), -scores.mean(), rtol=1e-5)
    logistic = generator_loss(critic, fakes, 0, 1.0, LossConfig(kind="logistic"))
    np.testing.assert_allclose(logistic.item(), softplus(-scores).mean(), rtol=1e-5)


def test_losses_do_not_depend_on_batch_size_for_identical_samples():
    # Means, not sums: the same samples twice over give the same loss (pytorch_GAN_zoo summed).
    torch.manual_seed(3)
    D = Discriminator(resolution=8, channels=1, fmap_base=32, fmap_max=8, mbstd_group_size=1)
    reals, fakes = torch.randn(4, 1, 8, 8), torch.randn(4, 1, 8, 8)
    for kind in ("wgan-gp", "logistic"):
        config = LossConfig(kind=kind, gp_lambda=0.0, r1_gamma=10.0)
        small, _ = discriminator_loss(D, reals, fakes, 1, 0.5, config)
        large, _ = discriminator_loss(D, reals.repeat(3, 1, 1, 1), fakes.repeat(3, 1, 1, 1), 1, 0.5, config)
        torch.testing.assert_close(large, small, rtol=1e-5, atol=1e-6)
        g_small = generator_loss(D, fakes, 1, 0.5, config)
        g_large = generator_loss(D, fakes.repeat(3, 1, 1, 1), 1, 0.5, config)
        torch.testing.assert_close(g_large, g_small, rtol=1e-5, atol=1e-6)
    critic = LinearCritic(64)  # the penalty of a linear critic does not depend on u: check it too
    small, _ = discriminator_loss(critic, reals, fakes, 1, 0.5, LossConfig())
    large, _ = discriminator_loss(critic, reals.repeat(3, 1, 1, 1), fakes.repeat(3, 1, 1, 1), 1, 0.5, LossConfig())
    torch.testing.assert_close(large, small, rtol=1e-5, atol=1e-6)


# --- AC-GAN label term ---------------------------------------------------------------------------------------


def test_ac_gan_label_term_by_hand():
    config = LossConfig(label_weight=0.5)
    critic = LinearCritic(3, num_labels=4)
    reals, fakes = torch.randn(6, 3), torch.randn(6, 3)
    real_labels, fake_labels = torch.tensor([0, 1, 2, 3, 0, 1]), torch.tensor([3, 3, 2, 1, 0, 0])
    loss, _ = discriminator_loss(critic, reals, fakes, 0, 1.0, config, real_labels, fake_labels)
    w, v = numpy_of(critic.w), numpy_of(critic.label_weight)
    r, f = numpy_of(reals), numpy_of(fakes)
    rs, fs = r @ w + 0.3, f @ w + 0.3
    base = fs.mean() - rs.mean() + 10.0 * (np.linalg.norm(w) - 1) ** 2 + 0.001 * np.mean(rs**2)
    labels = cross_entropy(r @ v, real_labels.numpy()) + cross_entropy(f @ v, fake_labels.numpy())
    np.testing.assert_allclose(loss.item(), base + 0.5 * labels, rtol=1e-5)
    g_loss = generator_loss(critic, fakes, 0, 1.0, config, fake_labels)
    np.testing.assert_allclose(g_loss.item(), -fs.mean() + 0.5 * cross_entropy(f @ v, fake_labels.numpy()), rtol=1e-5)


def test_ac_gan_needs_labels():
    critic = LinearCritic(3, num_labels=2)
    x = torch.randn(4, 3)
    with pytest.raises(ValueError, match="needs real_labels and fake_labels"):
        discriminator_loss(critic, x, x, 0, 1.0, LossConfig())
    with pytest.raises(ValueError, match="needs fake_labels"):
        generator_loss(critic, x, 0, 1.0, LossConfig())


# --- logistic + R1 -------------------------------------------------------------------------------------------


def test_logistic_r1_by_hand():
    config = LossConfig(kind="logistic", r1_gamma=4.0)
    critic = LinearCritic(5)
    reals, fakes = torch.randn(7, 5), torch.randn(7, 5)
    loss, stats = discriminator_loss(critic, reals, fakes, 0, 1.0, config)
    w = numpy_of(critic.w)
    rs, fs = numpy_of(reals) @ w + 0.3, numpy_of(fakes) @ w + 0.3
    r1 = np.sum(w**2)  # ||grad D(real)||^2 of a linear critic
    expected = softplus(fs).mean() + softplus(-rs).mean() + 4.0 / 2 * r1
    np.testing.assert_allclose(loss.item(), expected, rtol=1e-5)
    np.testing.assert_allclose(stats["penalty"].item(), r1, rtol=1e-5)


def test_r1_of_a_quadratic_critic_is_the_squared_norm_of_the_reals():
    reals = torch.randn(3, 1, 4, 4)
    expected = (numpy_of(reals).reshape(3, -1) ** 2).sum(axis=1)
    np.testing.assert_allclose(numpy_of(r1_penalty(QuadraticCritic(), reals, 0, 1.0)), expected, rtol=1e-5)


def test_unknown_loss_kind():
    with pytest.raises(ValueError, match="loss.kind must be one of 'wgan-gp', 'logistic', got 'hinge'"):
        LossConfig(kind="hinge")


# --- on the real networks ------------------------------------------------------------------------------------


def test_penalty_on_the_discriminator_under_bf16_autocast():
    torch.manual_seed(0)
    D = Discriminator(resolution=8, channels=1, fmap_base=32, fmap_max=8)
    reals, fakes = torch.randn(4, 1, 8, 8), torch.randn(4, 1, 8, 8)
    full = gradient_penalty(D, reals, fakes, 1, 0.5, generator=torch.Generator().manual_seed(1))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        half = gradient_penalty(D, reals, fakes, 1, 0.5, generator=torch.Generator().manual_seed(1))
    assert half.dtype == torch.float32 and torch.isfinite(half).all()
    torch.testing.assert_close(half, full, rtol=0.1, atol=0.02)
