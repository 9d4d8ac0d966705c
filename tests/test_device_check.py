"""The device to train on: CUDA, else Apple's GPU (MPS) when its one-step self-check passes, else the CPU.

No Apple hardware runs these tests: the MPS backend is reported present or absent by monkeypatching torch, and
the self-check itself runs on the CPU against the CPU.
"""

from __future__ import annotations

import math
import sys

import pytest
import torch

from pgsound import device_check
from pgsound.device_check import DeviceChoice, SelfCheck, choose_device, pinned_step, self_check, training_steps


@pytest.fixture(autouse=True)
def _fresh_self_check():
    """Each test starts with no cached self-check and leaves none behind."""
    device_check.mps_self_check.cache_clear()
    yield
    device_check.mps_self_check.cache_clear()


@pytest.fixture(scope="module")
def cpu_pinned() -> dict[str, torch.Tensor]:
    """The pinned step on the CPU, computed once for this file."""
    return pinned_step("cpu")


@pytest.fixture(scope="module")
def cpu_steps() -> torch.Tensor:
    return training_steps("cpu")


def fake_machine(monkeypatch, cuda: bool = False, built: bool = True, available: bool = True) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: int(cuda))
    monkeypatch.setattr(torch.backends.mps, "is_built", lambda: built)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: available)


def fake_mps(monkeypatch, cpu_steps, cpu_pinned, steps=None, pinned=None) -> None:
    """An Apple GPU whose steps give ``steps(cpu result)`` and ``pinned(cpu results)`` (default: the CPU's)."""
    fake_machine(monkeypatch)
    monkeypatch.setattr(device_check, "training_steps",
                        lambda device: (steps or (lambda r: r))(cpu_steps) if device.type == "mps" else cpu_steps)
    monkeypatch.setattr(device_check, "pinned_step",
                        lambda device: (pinned or (lambda r: r))(cpu_pinned) if device.type == "mps" else cpu_pinned)


def test_mps_present_and_passing_is_the_choice(monkeypatch, cpu_steps, cpu_pinned):
    fake_mps(monkeypatch, cpu_steps, cpu_pinned)
    choice = choose_device()
    assert choice.device == torch.device("mps") and choice.notable
    assert choice.line().startswith("device mps (self-check passed: the trainer's steps run, and G and D steps "
                                    "agree with the CPU within 1e-03")


def test_a_self_check_that_raises_falls_back_to_the_cpu_naming_the_error(monkeypatch):
    fake_machine(monkeypatch)

    def broken() -> SelfCheck:
        raise RuntimeError("MPS backend out of memory\nmore detail")

    monkeypatch.setattr(device_check, "mps_self_check", broken)
    choice = choose_device()
    assert choice.device == torch.device("cpu") and choice.notable
    assert choice.note == "mps: self-check failed: RuntimeError: MPS backend out of memory"


def test_a_training_step_that_raises_on_mps_is_a_failed_check(monkeypatch, cpu_steps, cpu_pinned):
    """An operator MPS lacks raises NotImplementedError inside the step: the check fails and says so."""

    def missing(result):
        raise NotImplementedError("The operator 'aten::foo' is not currently implemented for the MPS device")

    fake_mps(monkeypatch, cpu_steps, cpu_pinned, steps=missing)
    choice = choose_device()
    assert choice.device == torch.device("cpu")
    assert choice.note.startswith("mps: self-check failed: NotImplementedError: The operator 'aten::foo'")


def test_a_training_step_that_goes_non_finite_on_mps_is_a_failed_check(monkeypatch, cpu_steps, cpu_pinned):
    def nan_weight(result):
        result = result.clone()
        result[-1] = math.nan
        return result

    fake_mps(monkeypatch, cpu_steps, cpu_pinned, steps=nan_weight)
    choice = choose_device()
    assert choice.device == torch.device("cpu") and choice.notable
    assert choice.note == "mps: self-check failed: the trainer's step gives non-finite statistics or weights on mps"


def test_non_finite_pinned_results_on_mps_fall_back_to_the_cpu(monkeypatch, cpu_steps, cpu_pinned):
    def nan_gradients(results):
        return {**results, "D's gradients": torch.full_like(results["D's gradients"], math.nan)}

    fake_mps(monkeypatch, cpu_steps, cpu_pinned, pinned=nan_gradients)
    choice = choose_device()
    assert choice.device == torch.device("cpu") and choice.notable
    assert choice.note == "mps: self-check failed: D's gradients is not finite on mps"


def test_mps_not_available_or_not_built_is_the_cpu_with_the_reason(monkeypatch):
    fake_machine(monkeypatch, available=False)
    monkeypatch.setattr(device_check, "self_check", lambda device: pytest.fail("no check without the backend"))
    choice = choose_device()
    assert choice.device == torch.device("cpu") and choice.notable
    assert choice.note.startswith("mps: not available: ")
    fake_machine(monkeypatch, built=False, available=False)
    choice = choose_device()
    assert choice.device == torch.device("cpu")
    assert "mps: not built into torch" in choice.note
    assert choice.notable == (sys.platform == "darwin")  # a Linux machine's CPU is no fallback worth a line
    monkeypatch.setattr(sys, "platform", "darwin")
    assert choose_device().notable  # a Mac whose torch lacks MPS: the learner should hear it


def test_cuda_comes_first(monkeypatch):
    fake_machine(monkeypatch, cuda=True)
    monkeypatch.setattr(device_check, "self_check", lambda device: pytest.fail("no MPS check where CUDA is"))
    choice = choose_device()
    assert choice.device == torch.device("cuda") and not choice.notable


def test_the_self_check_runs_once_per_process(monkeypatch):
    fake_machine(monkeypatch)
    calls = []
    monkeypatch.setattr(device_check, "self_check", lambda device: calls.append(device) or SelfCheck(True, "ok"))
    for _ in range(3):
        assert choose_device().device == torch.device("mps")
    assert calls == ["mps"]


def test_this_machine_reports_its_device_and_why():
    from pgsound.commands.info import info_lines

    choice = choose_device()
    assert choice.note
    assert any(line.startswith(f"device    {choice.device}") and choice.note in line for line in info_lines())


def test_the_self_check_passes_on_the_cpu_against_the_cpu():
    check = self_check("cpu")
    assert check.passed, check.detail
    assert "agree with the CPU within 1e-03 (largest difference 0.0e+00" in check.detail


def test_the_check_runs_the_trainers_own_step_during_a_fade_in(monkeypatch):
    """Two real train_step calls, both while 8x8 fades in: D's penalty, G's step, Adam, the EMA, the loader."""
    from pgsound import trainer

    phases = []

    def recording_step(state):
        phase, stats = trainer.train_step(state)
        phases.append(phase)
        return phase, stats

    monkeypatch.setattr(device_check, "train_step", recording_step)
    result = training_steps("cpu")
    assert [(p.level, p.fading) for p in phases] == [(1, True), (1, True)]
    assert 0 < phases[0].alpha < phases[1].alpha < 1
    assert torch.isfinite(result).all()


def test_the_pinned_step_covers_both_networks_and_the_penalty(cpu_pinned):
    assert set(cpu_pinned) == {"D's loss", "the gradient penalty", "D's gradients", "G's loss", "G's gradients"}
    assert all(torch.isfinite(value).all() for value in cpu_pinned.values())
    assert float(cpu_pinned["the gradient penalty"]) > 0
    assert cpu_pinned["D's gradients"].abs().max() > 0 and cpu_pinned["G's gradients"].abs().max() > 0


def test_a_perturbed_step_fails_the_self_check(cpu_steps, cpu_pinned):
    gradients = cpu_pinned["G's gradients"].clone()
    gradients[0] += 0.01 * gradients.abs().max()
    calls = []

    def pinned(device: torch.device) -> dict[str, torch.Tensor]:
        """The device's results first (perturbed), then the CPU's reference."""
        calls.append(device)
        return {**cpu_pinned, "G's gradients": gradients} if len(calls) % 2 else cpu_pinned

    check = self_check("cpu", steps=lambda device: cpu_steps, pinned=pinned)
    assert not check.passed
    assert check.detail == ("G's gradients on cpu differs from the CPU's by 1.0e-02 of its largest value "
                            "(tolerance 1e-03)")
    assert self_check("cpu", steps=lambda device: cpu_steps, pinned=pinned, tolerance=0.02).passed


def test_the_check_changes_no_random_state(cpu_steps, cpu_pinned):
    before = torch.get_rng_state()
    steps, pinned = training_steps("cpu"), pinned_step("cpu")
    assert torch.equal(torch.get_rng_state(), before)
    assert torch.equal(steps, cpu_steps)  # the same numbers every time
    assert all(torch.equal(pinned[name], cpu_pinned[name]) for name in cpu_pinned)


@pytest.mark.parametrize("notable", [True, False])
def test_train_prints_the_choice_when_it_takes_or_passes_over_apples_gpu(monkeypatch, capsys, notable):
    from pgsound import cli

    choice = DeviceChoice(torch.device("cpu"), "mps: not available: simulated", notable)
    monkeypatch.setattr(device_check, "choose_device", lambda: choice)
    assert cli.main(["train", "--resume", "nowhere", "--preset", "smoke"]) == 2  # refused after the choice
    assert (choice.line() in capsys.readouterr().out) == notable


def test_generate_leaves_apples_gpu_to_training(monkeypatch):
    """The self-check is a training step: only the training commands take Apple's GPU unasked."""
    from pgsound import cli, generate

    fake_machine(monkeypatch)
    monkeypatch.setattr(device_check, "choose_device", lambda: pytest.fail("generate asked for the training choice"))
    seen = []

    def stop(*args, device=None, **kwargs):
        seen.append(device)
        raise generate.UserError("stopped")

    monkeypatch.setattr(generate, "generate_run", stop)
    assert cli.main(["generate", "--pretrained", "shapes-cpu", "--n", "1"]) == 2
    assert seen == [None]  # the library's default: CUDA or the CPU


def test_preflight_prints_the_device_and_why(monkeypatch, capsys):
    from pgsound import cli, preflight
    from pgsound.errors import UserError

    choice = DeviceChoice(torch.device("mps"), "self-check passed: simulated", True)
    monkeypatch.setattr(device_check, "choose_device", lambda: choice)

    def stop(config, dataset, device, **options):
        raise UserError(f"stopped on {device}")

    monkeypatch.setattr(preflight, "preflight", stop)
    assert cli.main(["preflight", "--preset", "smoke"]) == 2
    captured = capsys.readouterr()
    assert "device mps (self-check passed: simulated)" in captured.out and "stopped on mps" in captured.err
    assert cli.main(["preflight", "--preset", "smoke", "--device", "cpu"]) == 2
    assert "device cpu (chosen with --device)" in capsys.readouterr().out
