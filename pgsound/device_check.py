"""Which device to train on: CUDA, else Apple's GPU when a one-step self-check passes, else the CPU.

:func:`pgsound.device.default_device` (CUDA or the CPU) is where library functions run when not told; this module
sits above the trainer, so that the check can run the trainer's own step. The commands (``pgsound train``,
``preflight``, ``generate``, ``evaluate``, ``info``) and the chapters ask :func:`choose_device`. (book: Introduction)
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from dataclasses import dataclass

import torch

from pgsound.config import NetworkConfig, TrainConfig
from pgsound.datasets.arrays import ArrayDataset
from pgsound.datasets.loader import fade_reals
from pgsound.loss import discriminator_loss, generator_loss
from pgsound.networks import Discriminator, Generator
from pgsound.schedule import ScheduleConfig
from pgsound.trainer import new_state, train_step


@dataclass(frozen=True)
class DeviceChoice:
    """The device to train on and why: ``note`` is one line, e.g. ``mps: not available: ...``."""

    device: torch.device
    note: str
    notable: bool = False  # MPS chosen, or a Mac's GPU passed over: worth a line when a command trains

    def line(self) -> str:
        """``device mps (self-check passed: ...)``: what ``pgsound info`` and the training commands print."""
        return f"device {self.device} ({self.note})"


@dataclass(frozen=True)
class SelfCheck:
    """The outcome of :func:`self_check`: whether it passed, and one line saying how."""

    passed: bool
    detail: str


# float32 throughout; a relative difference, per result, against the result's largest magnitude on the CPU.
SELF_CHECK_TOLERANCE = 1e-3


def choose_device() -> DeviceChoice:
    """The device to train on, CUDA, then MPS, then the CPU, with the reason for it (book: Introduction).

    MPS is taken only when torch reports it and a one-step self-check passes (:func:`mps_self_check`); the check
    runs once per process. Where it is not taken the note says why: not built into this torch, not available on
    this machine, or how the self-check failed.
    """
    if torch.cuda.is_available():
        return DeviceChoice(torch.device("cuda"), f"CUDA comes first; {torch.cuda.device_count()} CUDA GPU(s)")
    on_mac = sys.platform == "darwin"
    if not torch.backends.mps.is_built():
        return DeviceChoice(torch.device("cpu"), f"no CUDA GPU; mps: not built into torch {torch.__version__}",
                            notable=on_mac)
    if not torch.backends.mps.is_available():
        return DeviceChoice(torch.device("cpu"), "mps: not available: torch is built with MPS but this machine has "
                            "no Apple GPU it can use (Apple silicon and macOS 12.3 or later)", notable=True)
    try:
        check = mps_self_check()
    except Exception as error:  # a check that cannot even run is a failed check
        check = SelfCheck(False, describe_error(error))
    if not check.passed:
        return DeviceChoice(torch.device("cpu"), f"mps: self-check failed: {check.detail}", notable=True)
    return DeviceChoice(torch.device("mps"), f"self-check passed: {check.detail}", notable=True)


@functools.cache
def mps_self_check() -> SelfCheck:
    """:func:`self_check` on ``mps``, once per process (each call after the first returns the first's answer)."""
    return self_check("mps")


def describe_error(error: BaseException) -> str:
    """``RuntimeError: the first line of its message``."""
    message = str(error).strip().splitlines()
    return f"{type(error).__name__}: {message[0]}" if message else type(error).__name__


def self_check(
    device: torch.device | str,
    steps: Callable[[torch.device], torch.Tensor] | None = None,
    pinned: Callable[[torch.device], dict[str, torch.Tensor]] | None = None,
    tolerance: float = SELF_CHECK_TOLERANCE,
) -> SelfCheck:
    """Whether training works on ``device``: the trainer's steps run, and their arithmetic agrees with the CPU's.

    Two parts. ``steps`` (default :func:`training_steps`) runs the trainer's own :func:`~pgsound.trainer.train_step`
    on ``device``; its statistics and the weights after it must be finite. ``pinned`` (default
    :func:`pinned_step`) computes the losses and gradients of a D and a G step from inputs drawn on the CPU, on
    ``device`` and on the CPU; each result must agree within ``tolerance`` of its largest magnitude on the CPU.
    (The trainer's step draws its noise on the device, and devices draw different numbers from one seed, so the
    comparison needs the inputs pinned.) Never raises: an error is a failed check.
    """
    device = torch.device(device)
    steps = steps or training_steps
    pinned = pinned or pinned_step
    try:
        finite = steps(device)
        if not bool(torch.isfinite(finite).all()):
            return SelfCheck(False, f"the trainer's step gives non-finite statistics or weights on {device}")
        got = pinned(device)
        want = pinned(torch.device("cpu"))
    except Exception as error:
        return SelfCheck(False, describe_error(error))
    worst_name, worst = "", 0.0
    for name, expected in want.items():
        value = got[name].detach().to("cpu", torch.float32)
        if not torch.isfinite(value).all():
            return SelfCheck(False, f"{name} is not finite on {device}")
        expected = expected.detach().to("cpu", torch.float32)
        scale = max(float(expected.abs().max()), 1e-12)
        difference = float((value - expected).abs().max()) / scale
        if not difference <= tolerance:
            return SelfCheck(False, f"{name} on {device} differs from the CPU's by {difference:.1e} of its "
                             f"largest value (tolerance {tolerance:.0e})")
        if difference >= worst:
            worst_name, worst = name, difference
    return SelfCheck(True, f"the trainer's steps run, and G and D steps agree with the CPU within {tolerance:.0e} "
                     f"(largest difference {worst:.1e}, in {worst_name})")


# The smoke preset's widths for 1x8x8 pictures: small enough to check in about a second on any device.
CHECK_SHAPE = (1, 8, 8)
CHECK_WIDTHS = NetworkConfig(fmap_base=64, fmap_max=16)
CHECK_LATENT = 16
CHECK_BATCH = 4


def training_steps(device: torch.device | str) -> torch.Tensor:
    """Two of the trainer's steps on ``device``, mid-way through the fade-in from 4x4 to 8x8.

    They run D's WGAN-GP loss with the penalty's double backward, G's loss through a frozen D, both Adam steps,
    the EMA, and the loader's faded, mirrored reals. Returns the statistics and the weights after the steps, as
    one flat tensor on the CPU. Leaves the process's random state as it was.
    """
    channels, height, width = CHECK_SHAPE
    # 8 images at 4x4, then 8x8 fades in over 16: the steps at 12 and 16 images shown are in the fade.
    schedule = ScheduleConfig(total_kimg=0.032, lod_training_kimg=0.008, lod_transition_kimg=0.016,
                              minibatch_default=CHECK_BATCH)
    config = TrainConfig(latent_size=CHECK_LATENT, g=CHECK_WIDTHS, d=CHECK_WIDTHS, schedule=schedule,
                         mirror_augment=True)
    dataset = ArrayDataset.random(CHECK_BATCH, channels, (height, width), seed=0)
    with torch.random.fork_rng(devices=[]):
        state = new_state(config, dataset, device)
        state.images_shown = 12
        stats = [train_step(state)[1] for _ in range(2)]
    weights = [p.detach().flatten() for net in (state.G, state.D, state.Gs) for p in net.parameters()]
    return torch.cat([*stats, *weights]).cpu()


class _PinnedPoint(torch.nn.Module):
    """D evaluated at ``point`` wherever the gradient penalty asks for it, with the penalty's gradients intact.

    ``x + (point - x).detach()`` has the value ``point`` and the derivative 1 with respect to ``x``, so both
    devices differentiate D (twice) at the same point, one drawn on the CPU.
    """

    def __init__(self, D: torch.nn.Module, point: torch.Tensor) -> None:
        super().__init__()
        self.D, self.point = D, point

    def forward(self, x: torch.Tensor, level: int, alpha: object) -> object:
        return self.D(x + (self.point - x).detach(), level, alpha)


def pinned_step(device: torch.device | str) -> dict[str, torch.Tensor]:
    """The losses and gradients of a D step and a G step on ``device``, from weights and inputs drawn on the CPU.

    The networks of :func:`training_steps`, half-way through the fade-in, with the paper's loss; the penalty is
    taken at an interpolation drawn on the CPU. Any device should give the CPU's numbers up to rounding. Returns
    the results by name, on the CPU; leaves the process's random state as it was.
    """
    device = torch.device(device)
    channels, height, width = CHECK_SHAPE
    level, fade = 1, 0.5
    config = TrainConfig()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        G = Generator(resolution=(height, width), channels=channels, fmap_base=CHECK_WIDTHS.fmap_base,
                      fmap_max=CHECK_WIDTHS.fmap_max, latent_size=CHECK_LATENT).to(device)
        D = Discriminator(resolution=(height, width), channels=channels, fmap_base=CHECK_WIDTHS.fmap_base,
                          fmap_max=CHECK_WIDTHS.fmap_max).to(device)
    cpu = torch.Generator().manual_seed(1)
    alpha = torch.full((), fade, device=device)  # a tensor during a fade-in, as the trainer passes it
    images = ArrayDataset.random(CHECK_BATCH, channels, (height, width), seed=0).images(height, width)
    reals = fade_reals(torch.from_numpy(images[:]).to(device), fade)
    latents = torch.randn(2, CHECK_BATCH, CHECK_LATENT, generator=cpu).to(device)
    mix = torch.rand(CHECK_BATCH, 1, 1, 1, generator=cpu).to(device)
    with torch.no_grad():
        fakes = G(latents[0], level, alpha)
    loss_d, parts = discriminator_loss(
        D, reals, fakes, level, alpha, config.loss, generator=torch.Generator(device=device).manual_seed(0),
        penalty_net=_PinnedPoint(D, torch.lerp(reals, fakes, mix)))
    loss_d.backward()
    D.requires_grad_(False)  # as the trainer's G step: the gradient flows through D to G
    loss_g = generator_loss(D, G(latents[1], level, alpha), level, alpha, config.loss)
    loss_g.backward()
    results = {"D's loss": loss_d, "the gradient penalty": parts["penalty"], "D's gradients": _gradients(D),
               "G's loss": loss_g, "G's gradients": _gradients(G)}
    return {name: value.detach().cpu() for name, value in results.items()}


def _gradients(net: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.grad.flatten() for p in net.parameters() if p.grad is not None])
