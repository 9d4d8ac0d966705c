"""The default device: CUDA, else Apple's GPU (MPS) when its one-step self-check passes, else the CPU.

No Apple hardware runs these tests: the MPS backend is reported present or absent by monkeypatching torch, and
the self-check itself runs on the CPU against the CPU.
"""

from __future__ import annotations

import math
import sys

import pytest
import torch

from pgsound import device as device_module
from pgsound.device import DeviceChoice, SelfCheck, check_step, choose_device, default_device, self_check


@pytest.fixture(autouse=True)
def _fresh_self_check():
    """Each test starts with no cached self-check and leaves none behind."""
    device_module.mps_self_check.cache_clear()
    yield
    device_module.mps_self_check.cache_clear()


@pytest.fixture(scope="module")
def cpu_step() -> dict[str, torch.Tensor]:
    """The self-check's step on the CPU, computed once for this file (it takes a few seconds on a busy CPU)."""
    return check_step("cpu")


def fake_machine(monkeypatch, cuda: bool = False, built: bool = True, available: bool = True) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: int(cuda))
    monkeypatch.setattr(torch.backends.mps, "is_built", lambda: built)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: available)


def test_mps_present_and_passing_is_the_default(monkeypatch):
    fake_machine(monkeypatch)
    monkeypatch.setattr(device_module, "self_check", lambda device: SelfCheck(True, "agrees"))
    choice = choose_device()
    assert choice.device == torch.device("mps") and choice.notable
    assert choice.line() == "device mps (self-check passed: agrees)"
    assert default_device() == torch.device("mps")


def test_a_self_check_that_raises_falls_back_to_the_cpu_naming_the_error(monkeypatch):
    fake_machine(monkeypatch)

    def broken() -> SelfCheck:
        raise RuntimeError("MPS backend out of memory\nmore detail")

    monkeypatch.setattr(device_module, "mps_self_check", broken)
    choice = choose_device()
    assert choice.device == torch.device("cpu") and choice.notable
    assert choice.note == "mps: self-check failed: RuntimeError: MPS backend out of memory"


def test_a_step_that_raises_on_mps_is_a_failed_check(monkeypatch, cpu_step):
    """An operator MPS lacks raises NotImplementedError inside the step: the check fails and says so."""
    fake_machine(monkeypatch)

    def step(device: torch.device) -> dict[str, torch.Tensor]:
        if device.type == "mps":
            raise NotImplementedError("The operator 'aten::foo' is not currently implemented for the MPS device")
        return cpu_step

    monkeypatch.setattr(device_module, "check_step", step)
    choice = choose_device()
    assert choice.device == torch.device("cpu")
    assert choice.note.startswith("mps: self-check failed: NotImplementedError: The operator 'aten::foo'")


def test_non_finite_results_on_mps_fall_back_to_the_cpu(monkeypatch, cpu_step):
    fake_machine(monkeypatch)

    def step(device: torch.device) -> dict[str, torch.Tensor]:
        if device.type == "mps":
            return {**cpu_step, "D's gradients": torch.full_like(cpu_step["D's gradients"], math.nan)}
        return cpu_step

    monkeypatch.setattr(device_module, "check_step", step)
    choice = choose_device()
    assert choice.device == torch.device("cpu") and choice.notable
    assert choice.note == "mps: self-check failed: D's gradients is not finite on mps"


def test_mps_not_available_or_not_built_is_the_cpu_with_the_reason(monkeypatch):
    fake_machine(monkeypatch, available=False)
    monkeypatch.setattr(device_module, "self_check", lambda device: pytest.fail("no check without the backend"))
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
    monkeypatch.setattr(device_module, "self_check", lambda device: pytest.fail("no MPS check where CUDA is"))
    choice = choose_device()
    assert choice.device == torch.device("cuda") and not choice.notable


def test_the_self_check_runs_once_per_process(monkeypatch):
    fake_machine(monkeypatch)
    calls = []
    monkeypatch.setattr(device_module, "self_check", lambda device: calls.append(device) or SelfCheck(True, "ok"))
    for _ in range(3):
        assert default_device() == torch.device("mps")
    assert calls == ["mps"]


def test_this_machine_reports_its_device_and_why():
    choice = choose_device()
    assert choice.device == default_device()
    assert choice.note
    from pgsound.commands.info import info_lines

    assert any(line.startswith(f"device    {choice.device}") and choice.note in line for line in info_lines())


def test_the_self_check_passes_on_the_cpu_against_the_cpu():
    check = self_check("cpu")
    assert check.passed, check.detail
    assert check.detail.startswith("G and D steps agree with the CPU within 1e-03 (largest difference 0.0e+00")


def test_the_step_covers_both_networks_and_the_penalty(cpu_step):
    assert set(cpu_step) == {"D's loss", "the gradient penalty", "D's gradients", "G's loss", "G's gradients"}
    assert all(torch.isfinite(value).all() for value in cpu_step.values())
    assert float(cpu_step["the gradient penalty"]) > 0
    assert cpu_step["D's gradients"].abs().max() > 0 and cpu_step["G's gradients"].abs().max() > 0


def test_a_perturbed_step_fails_the_self_check(cpu_step):
    def perturbed(device: torch.device) -> dict[str, torch.Tensor]:
        gradients = cpu_step["G's gradients"].clone()
        gradients[0] += 0.01 * gradients.abs().max()
        return {**cpu_step, "G's gradients": gradients}

    check = self_check("cpu", step=perturbed, reference=lambda device: cpu_step)
    assert not check.passed
    assert check.detail == ("G's gradients on cpu differs from the CPU's by 1.0e-02 of its largest value "
                            "(tolerance 1e-03)")
    assert self_check("cpu", step=perturbed, reference=lambda device: cpu_step, tolerance=0.02).passed


def test_the_step_changes_no_random_state(cpu_step):
    before = torch.get_rng_state()
    again = check_step("cpu")
    assert torch.equal(torch.get_rng_state(), before)
    assert all(torch.equal(again[name], cpu_step[name]) for name in cpu_step)  # the same numbers every time


@pytest.mark.parametrize("notable", [True, False])
def test_train_prints_the_choice_when_it_takes_or_passes_over_apples_gpu(monkeypatch, capsys, notable):
    from pgsound import cli

    choice = DeviceChoice(torch.device("cpu"), "mps: not available: simulated", notable)
    monkeypatch.setattr(device_module, "choose_device", lambda: choice)
    assert cli.main(["train", "--resume", "nowhere", "--preset", "smoke"]) == 2  # refused after the choice
    assert (choice.line() in capsys.readouterr().out) == notable


def test_preflight_prints_the_device_and_why(monkeypatch, capsys):
    from pgsound import cli, preflight
    from pgsound.errors import UserError

    choice = DeviceChoice(torch.device("mps"), "self-check passed: simulated", True)
    monkeypatch.setattr(device_module, "choose_device", lambda: choice)

    def stop(config, dataset, device, **options):
        raise UserError(f"stopped on {device}")

    monkeypatch.setattr(preflight, "preflight", stop)
    assert cli.main(["preflight", "--preset", "smoke"]) == 2
    captured = capsys.readouterr()
    assert "device mps (self-check passed: simulated)" in captured.out and "stopped on mps" in captured.err
    assert cli.main(["preflight", "--preset", "smoke", "--device", "cpu"]) == 2
    assert "device cpu (chosen with --device)" in capsys.readouterr().out


def test_preflight_waits_for_apples_gpu_and_reads_its_memory(monkeypatch):
    """MPS runs asynchronously like CUDA: a step's time must include its work; its buffers are the driver's."""
    from pgsound import preflight

    calls = []
    monkeypatch.setattr(torch.mps, "synchronize", lambda: calls.append("synchronize"))
    monkeypatch.setattr(torch.mps, "driver_allocated_memory", lambda: 123 << 20)
    preflight._synchronize(torch.device("mps"))
    assert calls == ["synchronize"]
    memory = preflight.PeakMemory(torch.device("mps"))
    memory.reset()
    assert memory.read() == 123 << 20 and "mps" in memory.kind
