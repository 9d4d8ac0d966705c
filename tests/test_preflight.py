"""Preflight and the checks made when a config resolves: every failure a walk of the schedule would find."""

from __future__ import annotations

import subprocess
import sys
import types

import numpy as np
import pytest
import torch

import pgsound.preflight as preflight_module
import pgsound.trainer as trainer_module
from pgsound.checkpoint import state_differences
from pgsound.config import preset_names, resolve_config
from pgsound.datasets import ArrayDataset, DatasetWriter
from pgsound.measure import Stopwatch
from pgsound.plan import PlanError, check_run, run_schedule
from pgsound.preflight import preflight
from pgsound.trainer import new_state, resume_state, starts_new_stage, train_step


def shape_of(name: str) -> tuple[int, tuple[int, int]]:
    channels, height, width = resolve_config(name).data_shape
    return channels, (height, width)


# --- refused when the config resolves or the run starts ----------------------------------------------------------


def test_every_preset_fits_the_data_it_names():
    for name in preset_names():
        channels, resolution = shape_of(name)
        plans = check_run(resolve_config(name), resolution, channels)
        assert plans[-1].shape == resolution or resolve_config(name).schedule.total_kimg < 1, name


@pytest.mark.parametrize("preset", ["paper", "piano512"])
def test_minibatch_14_with_groups_of_4_is_refused_naming_the_group_size(preset):
    """NVIDIA's paper table (14 at 256, 6 at 512) pairs with a whole-minibatch group; groups of 4 fail at 256x256."""
    channels, resolution = shape_of(preset)
    config = resolve_config(preset, ["mbstd_group_size=4"])
    with pytest.raises(PlanError, match=r"minibatch 14 at 256x256 (and 6 at 512x512 do|does) not split into "
                                        r"minibatch-stddev groups of 4: set mbstd_group_size=16 \(or more: each "
                                        r"minibatch is then one group"):
        check_run(config, resolution, channels)
    check_run(resolve_config(preset, ["mbstd_group_size=16"]), resolution, channels)  # the fix it names works
    if preset == "piano512":  # 16, 14 and 6 have a common divisor: groups of 2 work too, and the message says so
        with pytest.raises(PlanError, match=r"or mbstd_group_size=2 \(it divides every level's minibatch\)"):
            check_run(config, resolution, channels)
        check_run(resolve_config(preset, ["mbstd_group_size=2"]), resolution, channels)
    assert resolve_config(preset).mbstd_group_size == 16  # the presets' own setting passes


def test_a_preset_on_larger_data_names_the_width_that_reaches_zero():
    with pytest.raises(PlanError, match=r"g\.fmap_base 64 gives 0 channels at 256x256 .* on 512x512 data: set "
                                        r"g\.fmap_base to at least 256"):
        check_run(resolve_config("smoke"), (512, 512), 1)


def test_four_processes_cannot_split_the_piano_minibatch():
    with pytest.raises(PlanError, match=r"minibatch 14 at 256x256 and 6 at 512x512 do not split across 4 processes: "
                                        r"make each a multiple of 4 in schedule.minibatch \(for example --set "
                                        r"'schedule.minibatch=\{256: 12, 512: 4\}'\)"):
        check_run(resolve_config("piano512"), (512, 512), 1, nproc=4)
    fixed = resolve_config("piano512", ["schedule.minibatch={256: 12, 512: 4}"])
    plans = check_run(fixed, (512, 512), 1, nproc=4)
    assert [p.per_process for p in plans[-2:]] == [3, 1]  # groups of min(16, 3) and min(16, 1)


def test_per_process_minibatch_against_groups_of_four():
    config = resolve_config("paper-v2")
    check_run(config, (1024, 1024), 3, nproc=1)  # 128 .. 4, all multiples of 4
    with pytest.raises(PlanError, match=r"minibatch 4 at 512x512 and 4 at 1024x1024 do not split across 8"):
        check_run(config, (1024, 1024), 3, nproc=8)
    with pytest.raises(PlanError, match=r"minibatch 32 per process at 4x4 to 16x16, 16 at 32x32, 8 at 64x64 and 4 "
                                        r"at 128x128 do not split into minibatch-stddev groups of 3: set "
                                        r"mbstd_group_size=32"):
        check_run(resolve_config("paper-v2", ["mbstd_group_size=3"]), (1024, 1024), 3, nproc=4)


def test_data_the_base_cannot_grow_to_and_missing_labels():
    with pytest.raises(PlanError, match=r"data of 96x96 cannot be grown to from base_shape \[4, 4\].*base_shape="
                                        r"\[6, 6\]"):
        check_run(resolve_config("smoke"), (96, 96), 1)
    with pytest.raises(PlanError, match="conditional=true needs labels"):
        check_run(resolve_config("smoke", ["conditional=true"]), (32, 32), 1, num_labels=0)
    with pytest.raises(PlanError, match="schedule.minibatch has the key 265, which is no level's resolution"):
        check_run(resolve_config("smoke", ["schedule.minibatch={265: 4}"]), (32, 32), 1)


def test_override_values_parse_as_people_write_them():
    assert resolve_config("smoke", ["schedule.lr_default=1e-3"]).schedule.lr_default == 1e-3
    assert resolve_config("smoke", ["loss.drift=2E-4"]).loss.drift == 2e-4
    assert resolve_config("smoke", ["compile=true"]).compile is True
    with pytest.raises(ValueError, match="loss.kind expects one of 'wgan-gp', 'logistic', got 'no'"):
        resolve_config("smoke", ["loss.kind=no"])  # YAML 1.1 would make this False
    with pytest.raises(ValueError, match="compile expects bool, got 'no'"):
        resolve_config("smoke", ["compile=no"])


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("samples_every_ticks=0", "samples_every_ticks must be >= 1, got 0"),
        ("keep_checkpoints=0", "keep_checkpoints must be >= 1, got 0"),
        ("checkpoint_every_ticks=0", "checkpoint_every_ticks must be >= 1, got 0"),
        ("latent_size=0", "latent_size must be >= 1, got 0"),
        ("metrics=[fid]", r"metrics\[0\] expects one of 'swd', 'ms_ssim', 'ndb', 'audio', 'notes', got 'fid'"),
        ("metrics=[swd]", r"metrics \['swd'\] are never computed with metrics_every_ticks=0"),
        ("schedule.minibatch={256: 0}", r"minibatch\[256\] must be >= 1, got 0"),
        ("schedule.tick_kimg_default=0", "tick_kimg_default must be > 0.0, got 0"),
        ("ema_beta=1.5", "ema_beta must be >= 0.0 and < 1.0, got 1.5"),
        ("precision=fp16", "precision expects one of 'bf16', 'fp32', got 'fp16'"),
    ],
)
def test_counts_intervals_and_names_are_checked_when_the_config_resolves(override, message):
    with pytest.raises(ValueError, match=message):
        resolve_config("smoke", [override])


def test_metric_names_match_the_metrics_package():
    import typing

    from pgsound.config import TrainConfig
    from pgsound.metrics import METRICS

    hint = typing.get_type_hints(TrainConfig)["metrics"]
    assert typing.get_args(typing.get_args(hint)[0]) == METRICS


def test_train_refuses_at_the_start_without_making_a_run_folder(tmp_path):
    path = tmp_path / "big.h5"
    with DatasetWriter(path, (512, 512), channels=1, dtype="float16", metadata={"source": "test"}) as writer:
        writer.add(np.zeros((2, 1, 512, 512), dtype=np.float32))
    runs = tmp_path / "runs"
    result = subprocess.run(
        [sys.executable, "-m", "pgsound.cli", "train", "--preset", "smoke", "--data", str(path), "--out", str(runs)],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2, result.stderr
    assert "g.fmap_base 64 gives 0 channels" in result.stderr and "Traceback" not in result.stderr
    assert not runs.exists() or not any(runs.iterdir())


# --- Adam's reset, NVIDIA's rule ----------------------------------------------------------------------------------


def nvidia_resets(images: list[int], config, max_level: int) -> list[bool]:
    """NVIDIA's train.py: lod = resolution_log2 - 2 - phase - fade; reset when floor or ceil of lod changes."""
    schedule = config.schedule
    phase_dur = schedule.lod_training_kimg + schedule.lod_transition_kimg
    resets, prev_lod = [], -1.0
    for nimg in images:
        kimg = nimg / 1000.0
        phase_idx = int(np.floor(kimg / phase_dur))
        phase_kimg = kimg - phase_idx * phase_dur
        lod = max_level - phase_idx - max(phase_kimg - schedule.lod_training_kimg, 0.0) / schedule.lod_transition_kimg
        lod = max(lod, 0.0)
        resets.append(bool(np.floor(lod) != np.floor(prev_lod) or np.ceil(lod) != np.ceil(prev_lod)))
        prev_lod = lod
    return resets


def test_adam_resets_where_nvidia_resets_at_the_start_and_end_of_each_fade():
    config = resolve_config("smoke", ["schedule.minibatch_default=4", "schedule.total_kimg=0.3"])
    dataset = ArrayDataset.random(8, 1, (16, 16))
    state = new_state(config, dataset, device="cpu")
    seen_images, resets = [], []
    param = state.G.blocks[0].dense.weight
    while state.images_shown < 300:
        seen_images.append(state.images_shown)
        train_step(state)
        resets.append(state.opt_g.state[param]["step"].item() == 1)  # moments restarted at this step
    expected = nvidia_resets(seen_images, config, state.max_level)
    assert resets == expected
    # Each fade-in resets twice (its first step and the first step after it): levels 1 and 2 here.
    assert sum(expected) == 1 + 2 * 2
    assert starts_new_stage(0.0, 0.25) and starts_new_stage(0.75, 1.0) and not starts_new_stage(0.25, 0.75)


def test_cpu_presets_keep_adam_across_fades_and_the_paper_resets():
    assert resolve_config("paper").optimizer.reset_on_growth and resolve_config("piano512").optimizer.reset_on_growth
    assert not resolve_config("piano-cpu").optimizer.reset_on_growth


# --- alpha as a tensor, the loader on the device, evaluation like training ----------------------------------------


def test_a_compiled_generator_and_discriminator_compile_once_for_a_whole_fade():
    from pgsound.networks import Discriminator, Generator

    compiles = {"G": 0, "D": 0}

    def counting_backend(name):
        def backend(graph_module, example_inputs):
            compiles[name] += 1
            return graph_module.forward
        return backend

    torch._dynamo.reset()
    kwargs = dict(resolution=16, channels=1, fmap_base=64, fmap_max=16)
    G, D = Generator(**kwargs), Discriminator(**kwargs)
    compiled_g = torch.compile(G, backend=counting_backend("G"))
    compiled_d = torch.compile(D, backend=counting_backend("D"))
    z = torch.randn(4, G.latent_size)
    for alpha in (0.1, 0.35, 0.6, 0.85, 0.99):
        a = torch.full((), alpha)
        images = compiled_g(z, 2, a)
        torch.testing.assert_close(images, G(z, 2, alpha))  # the tensor alpha gives the float alpha's images
        compiled_d(images, 2, a)
    assert compiles == {"G": 1, "D": 1}
    torch._dynamo.reset()


def test_the_training_step_passes_alpha_as_a_tensor_during_a_fade():
    config = resolve_config("smoke", ["schedule.minibatch_default=4"])
    state = new_state(config, ArrayDataset.random(8, 1, (16, 16)), device="cpu")
    seen = []
    hook = state.G.register_forward_pre_hook(lambda module, args: seen.append(args[2]))
    state.images_shown = round(1000 * (config.schedule.lod_training_kimg + config.schedule.lod_transition_kimg / 2))
    train_step(state)
    state.images_shown = round(1000 * (config.schedule.lod_training_kimg + config.schedule.lod_transition_kimg))
    train_step(state)
    hook.remove()
    assert all(isinstance(a, torch.Tensor) and a.shape == () for a in seen[:2])
    assert torch.allclose(seen[0], torch.tensor(0.5))
    assert all(a == 1.0 and not isinstance(a, torch.Tensor) for a in seen[2:])


def test_the_loader_copies_nothing_to_the_device_per_step(monkeypatch):
    """Flips are drawn on the device; the order goes to the device once per pass, never per batch."""
    from pgsound.datasets import LevelLoader

    devices, copies = [], []
    original_rand, original_to = torch.rand, torch.Tensor.to

    def spy_rand(*args, **kwargs):
        devices.append(kwargs.get("device"))
        return original_rand(*args, **kwargs)

    def spy_to(self, *args, **kwargs):
        copies.append(self.dtype)
        return original_to(self, *args, **kwargs)

    dataset = ArrayDataset.random(6, 1, (8, 8), num_labels=3)
    loader = LevelLoader(dataset, "cpu", mirror=True)
    loader.batch(1, 4, 0.5)  # holds the level in memory: its one copy to the device
    monkeypatch.setattr(torch, "rand", spy_rand)
    monkeypatch.setattr(torch.Tensor, "to", spy_to)
    for _ in range(6):  # 24 pictures of 6: four passes, four new orders
        images, labels = loader.batch(1, 4, 0.5, with_labels=True)
    monkeypatch.undo()
    assert devices == [torch.device("cpu")] * 6  # each batch's flips, drawn on the device
    assert copies.count(torch.int64) <= 4  # the order, once per pass; no indices per batch
    assert loader.order_on_device.device == loader.device and labels.device == loader.device
    assert loader.flip_generator.device == loader.device


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_the_step_makes_no_host_synchronisation_on_cuda():
    config = resolve_config("smoke", ["schedule.minibatch_default=4", "mirror_augment=true"])
    state = new_state(config, ArrayDataset.random(8, 1, (16, 16)), device="cuda")
    state.images_shown = round(1000 * (config.schedule.lod_training_kimg + config.schedule.lod_transition_kimg / 2))
    train_step(state)  # the first step at this level: allocations, the level's copy to the GPU, cuDNN set-up
    torch.cuda.set_sync_debug_mode("error")
    try:
        for _ in range(3):
            train_step(state)
    finally:
        torch.cuda.set_sync_debug_mode("default")


def test_evaluation_during_training_fades_the_reals_and_draws_labels_from_the_data(monkeypatch):
    import pgsound.evaluate as evaluate
    from pgsound.datasets import fade_reals

    labels = np.array([0] * 14 + [1, 2])  # uneven classes
    rng = np.random.default_rng(0)
    dataset = ArrayDataset(rng.uniform(-1, 1, (16, 1, 16, 16)).astype(np.float32), labels)
    config = resolve_config("smoke", ["schedule.minibatch_default=4", "conditional=true"])
    state = new_state(config, dataset, device="cpu")
    state.images_shown = round(1000 * (config.schedule.lod_training_kimg + config.schedule.lod_transition_kimg / 4))
    phase = state.phase()
    assert 0 < phase.alpha < 1
    captured = {}
    monkeypatch.setattr(evaluate, "evaluate_metrics", lambda reals, fakes, **kw: captured.update(reals=reals) or {})
    asked = []
    original = evaluate.sample
    monkeypatch.setattr(evaluate, "sample", lambda G, z, level, alpha, labels=None: asked.append((labels, alpha))
                        or original(G, z, level, alpha, labels))
    evaluate.evaluate_generator(state.Gs, state.loader, phase.level, phase.alpha, 16, ["swd"], seed=config.seed,
                                conditional=True, held_out=False)
    expected = fade_reals(state.loader.peek(phase.level, 16, seed=config.seed), phase.alpha)
    torch.testing.assert_close(captured["reals"], expected)
    assert not torch.equal(captured["reals"], state.loader.peek(phase.level, 16, seed=config.seed))
    ((labels, alpha),) = asked
    assert alpha == phase.alpha
    torch.testing.assert_close(labels, state.loader.peek_labels(16, seed=config.seed))


# --- the walk -----------------------------------------------------------------------------------------------------


def test_the_schedule_windows_cover_the_run_and_stop_at_total_kimg():
    config = resolve_config("piano512")
    windows = run_schedule(config, (512, 512)).windows()
    assert sum(w.kimg for w in windows) == pytest.approx(2000)
    assert [(w.level, w.kind) for w in windows[:3]] == [(0, "stable"), (1, "fade"), (1, "stable")]
    # 150/150 kimg phases: 512x512 starts to fade in at 1950 kimg, so 2000 kimg ends a third into that fade.
    last = windows[-1]
    assert (last.level, last.kind, last.start_kimg, last.end_kimg) == (7, "fade", 1950, 2000)
    fixed = run_schedule(resolve_config("smoke", ["schedule.fixed_level=2"]), (32, 32)).windows()
    assert [(w.level, w.kind, w.kimg) for w in fixed] == [(2, "stable", pytest.approx(0.4))]


@pytest.mark.slow
@pytest.mark.parametrize("name", preset_names())
def test_every_preset_passes_preflight_with_narrow_widths(name):
    """Every phase of every preset at its real minibatch table, data shape and schedule; resume is bit-exact."""
    config = resolve_config(name)
    channels, (height, width) = config.data_shape[0], config.data_shape[1:]
    dataset = ArrayDataset.random(8, channels, (height, width))  # the loader reuses pictures for larger batches
    report = preflight(config, dataset, device="cpu", widths="narrow")
    windows = run_schedule(config, (height, width)).windows()
    assert [r.phase.split()[1] for r in report.rows] == [w.kind for w in windows]
    top = report.rows[-1]
    assert max(int(side) for side in top.phase.split()[0].split("x")) == max(
        config.data_shape[1:]) or config.schedule.total_kimg < 1
    for row, window in zip(report.rows, windows, strict=True):
        expected = config.schedule.minibatch.get(max(int(s) for s in row.phase.split()[0].split("x")),
                                                 config.schedule.minibatch_default)
        assert row.minibatch == row.per_process == expected
        assert row.gflop_per_image > 0 and row.step_seconds > 0 and row.checkpoint_bytes > 0
        assert row.hours == pytest.approx(row.kimg * 1000 / row.minibatch * row.step_seconds / 3600)
        assert row.kimg == pytest.approx(window.kimg) and row.level == window.level
    assert report.resume_exact is True
    assert report.total_hours == pytest.approx(sum(r.hours for r in report.rows))


def test_preflight_with_four_processes_stops_before_any_step(monkeypatch):
    def no_step(state):
        raise AssertionError("a step ran")

    monkeypatch.setattr(trainer_module, "train_step", no_step)
    monkeypatch.setattr(preflight_module, "train_step", no_step)
    dataset = ArrayDataset.random(2, 1, (512, 512))
    with pytest.raises(PlanError, match="do not split across 4 processes"):
        preflight(resolve_config("piano512"), dataset, device="cpu", nproc=4, widths="narrow")


def test_preflight_under_four_processes_steps_with_each_process_share():
    config = resolve_config("smoke", ["schedule.minibatch_default=8", "mbstd_group_size=2"])
    report = preflight(config, ArrayDataset.random(8, 3, (32, 32)), device="cpu", nproc=4, widths="narrow",
                       check_resume=False)
    assert {(r.minibatch, r.per_process) for r in report.rows} == {(8, 2)}
    assert "8/4=2" in report.table()


def resume_check_run(monkeypatch, forget=None):
    """resumes_bit_exactly on the smoke preset, recording the continuous level of each state's steps;
    ``forget(state)`` damages each resumed state, as a resume that drops part of the checkpoint would."""
    import pgsound.resume_check as resume_check

    levels: dict[int, list[float]] = {}
    resumed: list[int] = []

    def recording_step(state):
        levels.setdefault(id(state), []).append(state.continuous_level())
        return train_step(state)

    def damaged_resume(*args, **kwargs):
        state = resume_state(*args, **kwargs)
        resumed.append(id(state))
        if forget is not None:
            forget(state)
        return state

    monkeypatch.setattr(resume_check, "train_step", recording_step)
    monkeypatch.setattr(resume_check, "resume_state", damaged_resume)
    config = resolve_config("smoke")
    dataset = ArrayDataset.random(8, config.data_shape[0], tuple(config.data_shape[1:]))
    exact, _ = resume_check.resumes_bit_exactly(config, dataset, torch.device("cpu"))
    return exact, [levels[key] for key in resumed]


def test_the_resume_check_steps_into_each_new_stage_after_resuming(monkeypatch):
    exact, resumed_levels = resume_check_run(monkeypatch)
    assert exact is True
    (b1, c1), (b2, c2) = resumed_levels  # the resumed run's two steps at each boundary
    assert b1 < 1.0 == c1  # the first fade-in ends: the old path goes
    assert b2 == 1.0 < c2 < 2.0  # the next fade-in begins: 16x16 comes in
    assert starts_new_stage(b1, c1) and starts_new_stage(b2, c2)


@pytest.mark.parametrize("forget", [
    lambda state: state.penalty_rng.manual_seed(12345),  # the penalty's random stream
    lambda state: setattr(state, "last_level", -1.0),  # where Adam last reset
], ids=["penalty-stream", "last-level"])
def test_the_resume_check_fails_a_resume_that_forgets_part_of_the_state(monkeypatch, forget):
    exact, _ = resume_check_run(monkeypatch, forget)
    assert exact is False


def test_state_differences_finds_one_changed_number():
    a = {"G": {"w": torch.zeros(3)}, "images_shown": 5, "rng": {"latent": torch.zeros(2, dtype=torch.uint8)}}
    b = {"G": {"w": torch.zeros(3)}, "images_shown": 5, "rng": {"latent": torch.zeros(2, dtype=torch.uint8)}}
    assert state_differences(a, b) == []
    b["G"]["w"][1] = 1e-30
    b["images_shown"] = 6
    assert sorted(state_differences(a, b)) == ["G.w", "images_shown"]


def test_the_preflight_command(tmp_path):
    out = tmp_path / "report.json"
    ok = subprocess.run([sys.executable, "-m", "pgsound.cli", "preflight", "--preset", "smoke", "--widths", "narrow",
                         "--device", "cpu", "--json", str(out)], capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0, ok.stderr
    assert "32x32 stable" in ok.stdout and "bit-identical" in ok.stdout
    assert out.exists()
    bad = subprocess.run([sys.executable, "-m", "pgsound.cli", "preflight", "--preset", "piano512", "--nproc", "4",
                          "--widths", "narrow", "--device", "cpu"], capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "do not split across 4 processes" in bad.stderr
    assert "Traceback" not in bad.stderr and "s per step" not in bad.stdout


def test_array_dataset_levels_are_box_averages():
    images = np.arange(2 * 1 * 4 * 4, dtype=np.float32).reshape(2, 1, 4, 4)
    dataset = ArrayDataset(images)
    assert sorted(dataset.levels) == [(1, 1), (2, 2), (4, 4)]
    np.testing.assert_allclose(dataset.images(2, 2)[0, 0, 0, 0], images[0, 0, :2, :2].mean())
    np.testing.assert_allclose(dataset.images(1, 1)[:, 0, 0, 0], images.mean(axis=(1, 2, 3)))


def test_a_checkpoint_of_the_old_networks_is_a_clear_error(tmp_path):
    """Checkpoints from before G's per-channel bias (a bias per dense unit) name the file and what changed."""
    from pgsound.checkpoint import CheckpointError, save_checkpoint

    config = resolve_config("smoke", ["schedule.minibatch_default=4"])
    dataset = ArrayDataset.random(8, 1, (16, 16))
    state = new_state(config, dataset, device="cpu").state_dict()
    for name in ("G", "Gs"):
        channels = state[name].pop("blocks.0.bias").numel()
        state[name]["blocks.0.dense.bias"] = torch.zeros(channels * 16)
    path = save_checkpoint(state, tmp_path / "checkpoints" / "ckpt-old.pt")
    with pytest.raises(CheckpointError, match=r"ckpt-old\.pt was written by an older pgsound"):
        resume_state(path, dataset, device="cpu")
    from pgsound.runs import load_generator

    with pytest.raises(CheckpointError, match=r"one bias per unit of its first dense layer"):
        load_generator(path, device="cpu")


def test_a_tensor_alpha_fades_in_float32_under_bf16_autocast():
    """Cast to bf16, alpha 0.999 would be 1.0: the networks would end a fade-in before the loader's reals."""
    from pgsound.networks import fade

    old, new = torch.randn(4, 8).bfloat16(), torch.randn(4, 8).bfloat16()
    for alpha in (0.3, 0.999):
        expected = torch.lerp(old, new, alpha)  # a Python alpha: lerp's arithmetic in float32
        assert torch.equal(fade(old, new, torch.full((), alpha)), expected)
    assert not torch.equal(fade(old, new, torch.full((), 0.999)), new)


FIRST_STEP_S = 1000.0


def test_preflight_times_no_first_step_at_new_shapes_on_the_cpu(monkeypatch):
    """The first step at a level's shapes pays set-up (oneDNN kernels, first touch of memory): untimed, or every
    fade-in's hours come out inflated. Preflight's clock is a fake one that a stand-in step moves by 1000 s the
    first time it meets a level and by 1 ms after, so a timed first step fails the test on any machine, busy or
    not."""
    real_step = preflight_module.train_step
    seen = set()
    clock = [0.0]

    def step(state):
        level = state.phase().level
        clock[0] += 1e-3 if level in seen else FIRST_STEP_S
        seen.add(level)
        return real_step(state)

    monkeypatch.setattr(preflight_module, "train_step", step)
    monkeypatch.setattr(preflight_module, "time", types.SimpleNamespace(perf_counter=lambda: clock[0]))
    # The step's own stopwatch reads the fake clock too (its default clock is bound when measure is imported).
    monkeypatch.setattr(preflight_module, "Stopwatch", lambda device: Stopwatch(device, clock=lambda: clock[0]))
    report = preflight(resolve_config("smoke"), ArrayDataset.random(8, 3, (32, 32)), device="cpu",
                       widths="narrow", check_resume=False)
    assert len(report.rows) >= 5 and seen == {0, 1, 2, 3}
    timed = [(r.phase, r.step_seconds) for r in report.rows]
    assert all(seconds == pytest.approx(1e-3) for _, seconds in timed), timed  # never a level's first step
    schedule = resolve_config("smoke").schedule
    for row in report.rows:  # the phase's steps at the timed step's seconds, in hours
        assert row.hours == pytest.approx(row.kimg * 1000 / row.minibatch * 1e-3 / 3600)
        assert row.minibatch == schedule.minibatch_default or row.minibatch in schedule.minibatch.values()
    assert all(row.gflop_per_image > 0 for row in report.rows)  # counted in the warm-up step or the timed one
