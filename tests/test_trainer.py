"""The training loop: exact resume, fixed-resolution mode, NaN stop, signals, two-process training."""

from __future__ import annotations

import os
import shutil
import signal

import pytest
import torch

from pgsound.checkpoint import CheckpointError
from pgsound.config import resolve_config
from pgsound.runs import latest_checkpoint
from pgsound.trainer import Trainer, TrainingDiverged

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def shapes_file(tmp_path_factory):
    from pgsound.datasets import prepare_synthetic_shapes

    path = tmp_path_factory.mktemp("data") / "shapes16.h5"
    prepare_synthetic_shapes(path, count=64, resolution=16, seed=0)
    return path


def tiny_config(*overrides):
    return resolve_config("smoke", ["schedule.minibatch_default=4", *overrides])


def open_shapes(path):
    from pgsound.datasets import open_dataset

    return open_dataset(path)


def weights(module):
    return torch.cat([p.detach().reshape(-1) for p in module.parameters()])


def test_exact_resume(shapes_file, tmp_path):
    """N steps, a checkpoint, a new process's worth of state, M steps == N + M steps."""
    config = tiny_config()
    straight = Trainer(config, open_shapes(shapes_file), tmp_path / "a", progress=False)
    straight.train(max_steps=7)
    first = Trainer(config, open_shapes(shapes_file), tmp_path / "b", progress=False)
    first.train(max_steps=4)  # ends with a checkpoint
    resumed = Trainer.resume(tmp_path / "b", open_shapes(shapes_file), progress=False)
    assert resumed.images_shown == first.images_shown == 16
    resumed.train(max_steps=3)
    assert resumed.images_shown == straight.images_shown
    for name in ("G", "D", "Gs"):
        torch.testing.assert_close(weights(getattr(resumed, name)), weights(getattr(straight, name)), rtol=0, atol=0)


def test_growth_reaches_every_level_and_logs(shapes_file, tmp_path):
    config = tiny_config("schedule.total_kimg=0.2", "schedule.lod_training_kimg=0.024",
                         "schedule.lod_transition_kimg=0.024", "schedule.tick_kimg_default=0.024")
    trainer = Trainer(config, open_shapes(shapes_file), tmp_path / "run", progress=False)
    reports = trainer.train()
    levels = {r.phase.level for r in reports}
    assert levels == {0, 1, 2}  # 4x4, 8x8, 16x16 for a 16x16 dataset
    assert any(0 < r.phase.alpha < 1 for r in reports)  # a tick inside a fade
    from pgsound.runlog import read_log

    log = read_log(tmp_path / "run")
    assert len(log) == len(reports) and log[-1]["level"] == 2
    assert {"kimg", "level", "alpha", "batch", "loss_d", "loss_g", "penalty", "sec_per_kimg"} <= set(log[-1])
    assert (tmp_path / "run" / "samples" / "reals.png").exists()
    assert list((tmp_path / "run" / "samples").glob("fakes*.png"))


def test_fixed_level_trains_only_that_level(shapes_file, tmp_path):
    trainer = Trainer(tiny_config("schedule.fixed_level=1"), open_shapes(shapes_file), None, progress=False)
    reports = trainer.train(max_steps=3)
    assert {(r.phase.level, r.phase.alpha) for r in reports} == {(1, 1.0)}
    # The layers of level 2 were never used, so they never received a gradient step.
    fresh = Trainer(tiny_config("schedule.fixed_level=1"), open_shapes(shapes_file), None, progress=False)
    before, after = fresh.G.state_dict(), trainer.G.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(not k.startswith(("blocks.2.", "to_rgb.2.")) for k in changed)


@pytest.mark.parametrize("rampup_from", ["run", "level"])
def test_ema_rampup_from_level_restarts_with_each_fade_in(shapes_file, rampup_from):
    """One step into level 1's fade-in, Gs is G (beta ~ 1e-6) when the ramp-up counts from the level's start;
    counted from the run's start (400 images, a half-life of 20) Gs still lags G."""
    config = tiny_config(f"ema_rampup_from={rampup_from}", "schedule.lod_training_kimg=0.4",
                         "schedule.lod_transition_kimg=0.4")
    trainer = Trainer(config, open_shapes(shapes_file), None, progress=False)
    trainer.train(stop_kimg=0.408)  # 101 steps of 4 images at 4x4 (0..400), then one into level 1
    assert trainer.phase().level == 1
    lag = (weights(trainer.Gs) - weights(trainer.G)).abs().max().item()
    if rampup_from == "level":
        assert lag < 1e-6
    else:
        assert lag > 1e-3


def test_nan_stops_with_the_last_good_checkpoint(shapes_file, tmp_path):
    trainer = Trainer(tiny_config(), open_shapes(shapes_file), tmp_path / "run", progress=False)
    trainer.train(max_steps=2)
    good = trainer.last_checkpoint
    with torch.no_grad():
        next(trainer.D.parameters()).fill_(float("nan"))
    with pytest.raises(TrainingDiverged, match=f"last good checkpoint is {good}"):
        trainer.train(max_steps=2)
    assert latest_checkpoint(tmp_path / "run") == good  # nothing written after the NaN


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_finishes_the_step_writes_a_checkpoint_and_returns(shapes_file, tmp_path, signum):
    """The signal arrives during the third step; training stops after it. A broken handler fails the test (a
    KeyboardInterrupt, or 50 steps run to max_steps) instead of hanging it."""
    trainer = Trainer(tiny_config("schedule.total_kimg=1000"), open_shapes(shapes_file), tmp_path / "run",
                      progress=False)
    step, steps = trainer.step, []

    def step_and_signal():
        steps.append(1)
        if len(steps) == 3:
            os.kill(os.getpid(), signum)
        return step()

    trainer.step = step_and_signal
    trainer.train(max_steps=50)
    assert len(steps) == 3 and trainer.images_shown == 3 * 4
    checkpoint = latest_checkpoint(tmp_path / "run")
    resumed = Trainer.resume(checkpoint, open_shapes(shapes_file), progress=False)
    assert resumed.images_shown == trainer.images_shown


def test_truncated_checkpoint_on_resume(shapes_file, tmp_path):
    trainer = Trainer(tiny_config(), open_shapes(shapes_file), tmp_path / "run", progress=False)
    trainer.train(max_steps=1)
    path = trainer.last_checkpoint
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match=str(path.name)):
        Trainer.resume(path, open_shapes(shapes_file), progress=False)


def _distributed_worker(rank, world_size, port, data_path, out_dir):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world_size))
    torch.set_num_threads(1)
    from pgsound.distributed import init_from_environment

    group = init_from_environment(torch.device("cpu"))
    trainer = Trainer(tiny_config(), open_shapes(data_path), None, device="cpu", group=group, progress=False)
    trainer.train(max_steps=3)
    torch.save({"G": weights(trainer.G), "D": weights(trainer.D)}, os.path.join(out_dir, f"rank{rank}.pt"))
    torch.distributed.destroy_process_group()


def test_two_processes_keep_identical_weights(shapes_file, tmp_path):
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_distributed_worker, args=(2, port, str(shapes_file), str(tmp_path)), nprocs=2, join=True)
    a, b = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    single = Trainer(tiny_config(), open_shapes(shapes_file), None, progress=False)
    assert torch.equal(a["G"], b["G"]) and torch.equal(a["D"], b["D"])
    assert not torch.equal(a["G"], weights(single.G))  # they did train


def test_conditional_two_channel_run_trains_and_writes_audio(tmp_path):
    """AC-GAN on magnitude + instantaneous frequency pictures with octave labels (chapter 11's options)."""
    from pgsound.datasets import open_dataset
    from pgsound.datasets.prepare import prepare_synthetic_piano
    from pgsound.spectrogram import SpectrogramConfig

    geometry = SpectrogramConfig(n_fft=512, hop_length=256, n_bins=32, n_frames=32)
    data = prepare_synthetic_piano(tmp_path / "p.h5", geometry, minutes=0.1, representation="mag-if", labels="octave")
    config = tiny_config("conditional=true", "schedule.total_kimg=0.1")
    trainer = Trainer(config, open_dataset(data.path), tmp_path / "run", progress=False)
    assert trainer.G.num_labels == 8 and trainer.G.channels == 2
    trainer.train()
    wavs = sorted((tmp_path / "run" / "samples").glob("*.wav"))
    assert wavs, "a spectrogram run writes WAV samples"
    labels = torch.arange(4) % 8
    images = trainer.generate(torch.randn(4, trainer.G.latent_size), labels)
    assert images.shape[1] == 2 and torch.isfinite(images).all()


def test_conditional_labels_follow_the_data(shapes_file):
    """G is asked for each class as often as the data holds it (NVIDIA: labels of random reals), not uniformly."""
    import numpy as np

    dataset = open_shapes(shapes_file)
    trainer = Trainer(tiny_config("conditional=true"), dataset, None, progress=False)
    data_share = np.bincount(dataset.labels, minlength=dataset.num_labels) / len(dataset.labels)
    drawn = torch.cat([trainer._labels(512) for _ in range(40)]).cpu().numpy()
    drawn_share = np.bincount(drawn, minlength=dataset.num_labels) / drawn.size
    # 20480 draws: the standard error of a share is below 0.004.
    np.testing.assert_allclose(drawn_share, data_share, atol=0.015)
    assert np.ptp(data_share) > 0.05, "the fixture's classes must be uneven for this test to mean anything"


@pytest.mark.skipif(
    not torch.cuda.is_available() and not any(shutil.which(cc) for cc in ("cc", "gcc", "clang")),
    reason="torch.compile (inductor) needs a C compiler on the CPU",
)
def test_compiled_step_matches_eager(shapes_file):
    """compile=true: the same losses and gradients as the eager step (the penalty's double backward stays eager)."""
    trainers = [
        Trainer(tiny_config("schedule.fixed_level=1", "precision=fp32", f"compile={flag}"),
                open_shapes(shapes_file), None, progress=False)
        for flag in ("false", "true")
    ]
    for trainer in trainers:
        trainer.step()
    eager, compiled = trainers
    torch.testing.assert_close(compiled._stats, eager._stats, rtol=1e-4, atol=1e-5)
    compared = 0
    for name in ("G", "D"):
        for (param, p_eager), p_compiled in zip(
            getattr(eager, name).named_parameters(), getattr(compiled, name).parameters()
        ):
            if p_eager.grad is None:  # a level above the one trained
                assert p_compiled.grad is None, f"{name}.{param}: a gradient where eager has none"
                continue
            compared += 1
            assert p_compiled.grad is not None, f"{name}.{param} got no gradient in the compiled step"
            torch.testing.assert_close(p_compiled.grad, p_eager.grad, rtol=1e-3, atol=1e-5, msg=f"{name}.{param}")
    assert compared > 10


def test_cpu_bf16_runs_the_step_in_bf16_only_when_asked(shapes_file):
    """cpu_bf16=true: D's convolutions run in bf16 on the CPU and the losses stay near fp32's; off by default."""
    from pgsound.layers import EqualizedConv2d

    dtypes = {}
    trainers = {}
    for name, overrides in {"default": [], "fp32": ["precision=fp32"], "cpu_bf16": ["cpu_bf16=true"]}.items():
        trainer = Trainer(tiny_config("schedule.fixed_level=1", *overrides), open_shapes(shapes_file), None,
                          device="cpu", progress=False)
        seen = dtypes.setdefault(name, set())
        handles = [m.register_forward_hook(lambda module, args, out, seen=seen: seen.add(out.dtype))
                   for m in trainer.D.modules() if isinstance(m, EqualizedConv2d)]
        trainer.step()
        for handle in handles:
            handle.remove()
        trainers[name] = trainer
    assert dtypes == {"default": {torch.float32}, "fp32": {torch.float32}, "cpu_bf16": {torch.bfloat16}}
    # Same seed, same batch: bf16's 8-bit mantissa moves the losses by a few percent of their size at most.
    fp32, bf16 = trainers["fp32"]._stats, trainers["cpu_bf16"]._stats
    assert torch.isfinite(bf16).all()
    torch.testing.assert_close(bf16, fp32, rtol=0.05, atol=0.05 * float(fp32.abs().max()))
    assert not torch.equal(bf16, fp32)  # it really computed something else
