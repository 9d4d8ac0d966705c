"""The training loop: exact resume, fixed-resolution mode, NaN stop, signals, two-process training."""

from __future__ import annotations

import math
import os
import shutil
import signal

import pytest
import torch

import pgsound.trainer as trainer_module
from pgsound.checkpoint import CheckpointError
from pgsound.config import resolve_config
from pgsound.generate import sample
from pgsound.run_folder import latest_checkpoint
from pgsound.trainer import TrainingDiverged, draw_labels, new_state, resume_state, train, train_step

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
    straight = train(config, open_shapes(shapes_file), tmp_path / "a", max_steps=7, progress=False).state
    first = train(config, open_shapes(shapes_file), tmp_path / "b", max_steps=4, progress=False)
    assert first.checkpoint is not None  # the run ends with a checkpoint
    dataset = open_shapes(shapes_file)
    resumed = resume_state(tmp_path / "b", dataset)
    assert resumed.images_shown == first.state.images_shown == 16
    train(resumed.config, dataset, tmp_path / "b", state=resumed, max_steps=3, progress=False)
    assert resumed.images_shown == straight.images_shown
    for name in ("G", "D", "Gs"):
        torch.testing.assert_close(weights(getattr(resumed, name)), weights(getattr(straight, name)), rtol=0, atol=0)


def test_a_run_saved_on_a_gpu_resumes_on_the_cpu_the_same_way_each_time(shapes_file, tmp_path):
    """A GPU's generators keep 16-byte Philox states, a CPU's 5 KB ones: a state saved on CUDA (made here by
    hand) cannot be set on the CPU, so the streams restart from seeds drawn from it, with a warning, alike on
    every try."""
    from pgsound.checkpoint import load_checkpoint, save_checkpoint

    config = tiny_config()
    train(config, open_shapes(shapes_file), tmp_path / "run", max_steps=2, progress=False)
    path = latest_checkpoint(tmp_path / "run")
    state = load_checkpoint(path)
    philox = torch.arange(16, dtype=torch.uint8)  # the shape of torch.cuda.get_rng_state()
    state["rng"]["latent"] = state["rng"]["penalty"] = philox
    state["rng"]["loader"]["flip_generator"] = philox + 1
    state["rng"]["cuda"] = philox
    save_checkpoint(state, path)
    after = []
    for _ in range(2):
        dataset = open_shapes(shapes_file)
        with pytest.warns(UserWarning, match="saved on another kind of device than cpu"):
            resumed = resume_state(path, dataset)
        train(resumed.config, dataset, None, state=resumed, max_steps=2, progress=False)
        after.append(weights(resumed.G))
    torch.testing.assert_close(after[0], after[1], rtol=0, atol=0)
    assert torch.isfinite(after[0]).all()


def test_growth_reaches_every_level_and_logs(shapes_file, tmp_path):
    config = tiny_config("schedule.total_kimg=0.2", "schedule.lod_training_kimg=0.024",
                         "schedule.lod_transition_kimg=0.024", "schedule.tick_kimg_default=0.024")
    reports = train(config, open_shapes(shapes_file), tmp_path / "run", progress=False).ticks
    levels = {r.phase.level for r in reports}
    assert levels == {0, 1, 2}  # 4x4, 8x8, 16x16 for a 16x16 dataset
    assert any(0 < r.phase.alpha < 1 for r in reports)  # a tick inside a fade
    from pgsound.runlog import read_log

    log = read_log(tmp_path / "run")
    assert len(log) == len(reports) and log[-1]["level"] == 2
    schedule = new_state(config, open_shapes(shapes_file)).schedule
    for record in log:  # each tick logs the phase of its last step
        last = schedule.phase(round(record["kimg"] * 1000) - record["batch"])
        assert (record["level"], record["alpha"], record["batch"], record["lr"]) == (
            last.level, pytest.approx(last.alpha), last.batch_size, pytest.approx(last.lr))
    assert {"kimg", "level", "alpha", "batch", "loss_d", "loss_g", "penalty", "sec_per_kimg"} <= set(log[-1])
    assert (tmp_path / "run" / "samples" / "reals.png").exists()
    # Ticks of 24 images: each tick's samples under their own name (kimg to the image, as checkpoints)
    grids = sorted(p.name for p in (tmp_path / "run" / "samples").glob("fakes-*kimg.png"))
    every = config.samples_every_ticks
    assert len(grids) == len({r["kimg"] for i, r in enumerate(log, 1) if i % every == 0 or i == len(log)})
    assert grids[-1] == f"fakes-{log[-1]['kimg']:010.3f}kimg.png"


def test_fixed_level_trains_only_that_level(shapes_file, tmp_path):
    config = tiny_config("schedule.fixed_level=1")
    result = train(config, open_shapes(shapes_file), None, max_steps=3, progress=False)
    assert {(r.phase.level, r.phase.alpha) for r in result.ticks} == {(1, 1.0)}
    # The layers of level 2 were never used, so they never received a gradient step.
    fresh = new_state(config, open_shapes(shapes_file))
    before, after = fresh.G.state_dict(), result.state.G.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(not k.startswith(("blocks.2.", "to_rgb.2.")) for k in changed)


@pytest.mark.parametrize("rampup_from", ["run", "level"])
def test_ema_rampup_from_level_restarts_with_each_fade_in(shapes_file, rampup_from):
    """One step into level 1's fade-in, Gs is G (beta ~ 1e-6) when the ramp-up counts from the level's start;
    counted from the run's start (400 images, a half-life of 20) Gs still lags G."""
    config = tiny_config(f"ema_rampup_from={rampup_from}", "schedule.lod_training_kimg=0.4",
                         "schedule.lod_transition_kimg=0.4")
    # 101 steps of 4 images at 4x4 (0..400), then one into level 1
    state = train(config, open_shapes(shapes_file), None, stop_kimg=0.408, progress=False).state
    assert state.phase().level == 1
    lag = (weights(state.Gs) - weights(state.G)).abs().max().item()
    if rampup_from == "level":
        assert lag < 1e-6
    else:
        assert lag > 1e-3


def test_nan_stops_with_the_last_good_checkpoint(shapes_file, tmp_path):
    config, dataset = tiny_config(), open_shapes(shapes_file)
    result = train(config, dataset, tmp_path / "run", max_steps=2, progress=False)
    good = result.checkpoint
    with torch.no_grad():
        next(result.state.D.parameters()).fill_(float("nan"))
    with pytest.raises(TrainingDiverged, match=f"last good checkpoint is {good}"):
        train(config, dataset, tmp_path / "run", state=result.state, max_steps=2, progress=False)
    assert latest_checkpoint(tmp_path / "run") == good  # nothing written after the NaN


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_finishes_the_step_writes_a_checkpoint_and_returns(shapes_file, tmp_path, signum, monkeypatch):
    """The signal arrives during the third step; training stops after it. A broken handler fails the test (a
    KeyboardInterrupt, or 50 steps run to max_steps) instead of hanging it."""
    steps = []

    def step_and_signal(state):
        steps.append(1)
        if len(steps) == 3:
            os.kill(os.getpid(), signum)
        return train_step(state)

    monkeypatch.setattr(trainer_module, "train_step", step_and_signal)
    result = train(tiny_config("schedule.total_kimg=1000"), open_shapes(shapes_file), tmp_path / "run",
                   max_steps=50, progress=False)
    assert len(steps) == 3 and result.state.images_shown == 3 * 4 and result.stop_signal == signum
    checkpoint = latest_checkpoint(tmp_path / "run")
    assert checkpoint == result.checkpoint
    assert resume_state(checkpoint, open_shapes(shapes_file)).images_shown == result.state.images_shown


def test_truncated_checkpoint_on_resume(shapes_file, tmp_path):
    path = train(tiny_config(), open_shapes(shapes_file), tmp_path / "run", max_steps=1, progress=False).checkpoint
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match=str(path.name)):
        resume_state(path, open_shapes(shapes_file))


def _distributed_worker(rank, world_size, port, data_path, out_dir):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world_size))
    torch.set_num_threads(1)
    from pgsound.distributed import average_gradients, average_tensor, init_from_environment

    group = init_from_environment(torch.device("cpu"))
    state = train(tiny_config(), open_shapes(data_path), None, max_steps=3, device="cpu", group=group,
                  progress=False).state
    # Rank-dependent values, so that a sum in place of a mean shows: gradients rank + 1, statistics (rank, 1 - rank).
    for p in state.G.parameters():
        p.grad = torch.full_like(p, rank + 1.0)
    average_gradients(state.G, group)
    averaged = torch.cat([p.grad.reshape(-1) for p in state.G.parameters()])
    statistics = average_tensor(torch.tensor([float(rank), 1.0 - rank]), group)
    torch.save({"G": weights(state.G), "D": weights(state.D), "grads": averaged, "statistics": statistics},
               os.path.join(out_dir, f"rank{rank}.pt"))
    torch.distributed.destroy_process_group()


def test_two_processes_average_and_keep_identical_weights(shapes_file, tmp_path):
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_distributed_worker, args=(2, port, str(shapes_file), str(tmp_path)), nprocs=2, join=True)
    a, b = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    single = new_state(tiny_config(), open_shapes(shapes_file))
    assert torch.equal(a["G"], b["G"]) and torch.equal(a["D"], b["D"])
    assert not torch.equal(a["G"], weights(single.G))  # they did train
    for rank in (a, b):  # the mean of 1 and 2, of (0, 1) and (1, 0): averaged, not summed
        assert torch.equal(rank["grads"], torch.full_like(rank["grads"], 1.5))
        assert torch.equal(rank["statistics"], torch.tensor([0.5, 0.5]))


def test_conditional_two_channel_run_trains_and_writes_audio(tmp_path):
    """AC-GAN on magnitude + instantaneous frequency pictures with octave labels (chapter 11's options)."""
    from pgsound.datasets import open_dataset, prepare_synthetic_piano
    from pgsound.spectrogram import SpectrogramConfig

    geometry = SpectrogramConfig(n_fft=512, hop_length=256, n_bins=32, n_frames=32)
    data = prepare_synthetic_piano(tmp_path / "p.h5", geometry, minutes=0.1, representation="mag-if", labels="octave")
    config = tiny_config("conditional=true", "schedule.total_kimg=0.1")
    dataset = open_dataset(data.path)
    state = new_state(config, dataset)
    assert state.G.num_labels == 8 and state.G.channels == 2
    train(config, dataset, tmp_path / "run", state=state, progress=False)
    wavs = sorted((tmp_path / "run" / "samples").glob("*.wav"))
    assert wavs, "a spectrogram run writes WAV samples"
    labels = torch.arange(4) % 8
    phase = state.phase()
    images = sample(state.Gs, torch.randn(4, state.G.latent_size), phase.level, phase.alpha, labels)
    assert images.shape[1] == 2 and torch.isfinite(images).all()


def test_conditional_labels_follow_the_data(shapes_file):
    """G is asked for each class as often as the data holds it (NVIDIA: labels of random reals), not uniformly."""
    import numpy as np

    dataset = open_shapes(shapes_file)
    state = new_state(tiny_config("conditional=true"), dataset)
    data_share = np.bincount(dataset.labels, minlength=dataset.num_labels) / len(dataset.labels)
    drawn = torch.cat([draw_labels(state, 512) for _ in range(40)]).cpu().numpy()
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
    states = [new_state(tiny_config("schedule.fixed_level=1", "precision=fp32", f"compile={flag}"),
                        open_shapes(shapes_file))
              for flag in ("false", "true")]
    eager, compiled = states
    (_, eager_stats), (_, compiled_stats) = (train_step(state) for state in states)
    torch.testing.assert_close(compiled_stats, eager_stats, rtol=1e-4, atol=1e-5)
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
    stats = {}
    for name, overrides in {"default": [], "fp32": ["precision=fp32"], "cpu_bf16": ["cpu_bf16=true"]}.items():
        state = new_state(tiny_config("schedule.fixed_level=1", *overrides), open_shapes(shapes_file), device="cpu")
        seen = dtypes.setdefault(name, set())
        handles = [m.register_forward_hook(lambda module, args, out, seen=seen: seen.add(out.dtype))
                   for m in state.D.modules() if isinstance(m, EqualizedConv2d)]
        _, stats[name] = train_step(state)
        for handle in handles:
            handle.remove()
    assert dtypes == {"default": {torch.float32}, "fp32": {torch.float32}, "cpu_bf16": {torch.bfloat16}}
    # Same seed, same batch: bf16's 8-bit mantissa moves the losses by a few percent of their size at most.
    fp32, bf16 = stats["fp32"], stats["cpu_bf16"]
    assert torch.isfinite(bf16).all()
    torch.testing.assert_close(bf16, fp32, rtol=0.05, atol=0.05 * float(fp32.abs().max()))
    assert not torch.equal(bf16, fp32)  # it really computed something else


def test_a_continued_state_refuses_another_config_dataset_device_or_group():
    """train(state=...) would otherwise ignore them silently: the state carries its own."""
    from pgsound.datasets import ArrayDataset
    from pgsound.distributed import ProcessGroup

    config = tiny_config()
    dataset = ArrayDataset.random(8, 3, (16, 16), seed=0)
    state = new_state(config, dataset, "cpu")
    other_data = ArrayDataset.random(8, 3, (16, 16), seed=1)
    with pytest.raises(ValueError, match="its own config and dataset"):
        train(config, other_data, state=state, max_steps=1, progress=False)
    with pytest.raises(ValueError, match="its own config and dataset"):
        train(tiny_config("seed=1"), dataset, state=state, max_steps=1, progress=False)
    for extra in ({"device": "cpu"}, {"group": ProcessGroup()}):
        with pytest.raises(ValueError, match="leave out device and group"):
            train(config, dataset, state=state, max_steps=1, progress=False, **extra)
    assert state.images_shown == 0  # refused before any step
    train(config, dataset, state=state, max_steps=1, progress=False)
    assert state.images_shown == 4


def test_each_step_gives_both_optimizers_its_phases_learning_rate(shapes_file):
    """Adam with the paper's betas (0, 0.99) moves every stored weight by lr * sign(grad) on its first step
    after a reset (m = g, v-hat = g^2): the largest move of G and of D is the rate the schedule names."""
    config = tiny_config("schedule.lr={4: 0.003, 8: 0.0007}", "schedule.lr_default=0.01")
    state = new_state(config, open_shapes(shapes_file))

    def largest_moves() -> tuple[float, float]:
        before = weights(state.G), weights(state.D)
        train_step(state)
        return tuple(float((weights(net) - old).abs().max()) for net, old in zip((state.G, state.D), before))

    assert largest_moves() == pytest.approx((0.003, 0.003), rel=2e-3)  # 4x4: the first step resets
    fade = round(1000 * state.schedule.level_start_kimg(1)) + 8  # into 8x8's fade-in: Adam resets again
    state.images_shown = fade
    # rel: float32 weights near 1 round a move of 1e-3 by about 1e-7
    assert largest_moves() == pytest.approx((0.0007, 0.0007), rel=2e-3)
    config = tiny_config("schedule.lr_rampup_kimg=1")  # the Theano ramp-up: lr * exp(-5 (1 - t)^2)
    state = new_state(config, open_shapes(shapes_file))
    state.images_shown = 500
    expected = config.schedule.lr_default * math.exp(-5 * 0.5**2)
    assert largest_moves() == pytest.approx((expected, expected), rel=2e-3)


def test_a_run_keeps_its_last_plain_checkpoints_and_every_milestone(shapes_file, tmp_path):
    config = tiny_config("schedule.tick_kimg_default=0.016", "schedule.total_kimg=0.096", "checkpoint_every_ticks=1",
                         "keep_checkpoints=2", "milestone_every_kimg=0.032", "samples_every_ticks=1000")
    train(config, open_shapes(shapes_file), tmp_path / "run", progress=False)
    # Ticks end at 16, 32, ..., 96 images; those at 32, 64 and 96 cross a milestone.
    assert sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir()) == [
        "ckpt-000000.048kimg.pt", "ckpt-000000.080kimg.pt",
        "milestone-000000.032kimg.pt", "milestone-000000.064kimg.pt", "milestone-000000.096kimg.pt",
    ]
    assert latest_checkpoint(tmp_path / "run").name == "milestone-000000.096kimg.pt"
