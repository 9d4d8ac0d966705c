"""Prepared datasets: NVIDIA's HDF5 layout bit-exact, our round trip, image folders, the loader and its fade."""

from __future__ import annotations

import json
import re
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from pgsound.datasets import (
    DatasetError,
    DatasetWriter,
    LevelLoader,
    fade_reals,
    open_dataset,
    prepare_images,
    prepare_synthetic_shapes,
)
from pgsound.errors import UserError


def write_like_h5tool(path, images: np.ndarray, labels: np.ndarray | None = None, chunk: int = 8) -> list[np.ndarray]:
    """NVIDIA's h5tool.py HDF5Exporter, step by step, written independently of pgsound: one uint8 dataset
    ``data{r}x{r}`` per level down to 1x1, each level the float32 2x2 box average of the *unrounded* level above,
    rounded and clipped only when stored; one-hot float32 labels in ``<name>-labels.npy``. Returns the levels."""
    n, c, r, _ = images.shape
    levels = []
    with h5py.File(path, "w") as f:
        img = images
        lod = 0
        while r >> lod >= 1:
            size = r >> lod
            if lod:
                img = img.astype(np.float32)
                img = (img[:, :, 0::2, 0::2] + img[:, :, 0::2, 1::2]
                       + img[:, :, 1::2, 0::2] + img[:, :, 1::2, 1::2]) * 0.25
            quant = np.uint8(np.clip(np.round(img), 0, 255))
            ds = f.create_dataset(f"data{size}x{size}", shape=(0, c, size, size), dtype=np.uint8,
                                  maxshape=(None, c, size, size), chunks=(chunk, c, size, size))
            ds.resize(n, axis=0)
            ds[:] = quant
            levels.append(quant)
            lod += 1
    if labels is not None:
        onehot = np.zeros((n, labels.max() + 1), dtype=np.float32)
        onehot[np.arange(n), labels] = 1.0
        np.save(str(path).replace(".h5", "-labels.npy"), onehot)
    return levels


def test_nvidia_h5tool_file_reads_back_bit_exact_at_every_level(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(12, 3, 16, 16), dtype=np.uint8)
    labels = rng.integers(0, 5, size=12)
    path = tmp_path / "celeb.h5"
    expected = write_like_h5tool(path, images, labels)
    dataset = open_dataset(path)
    assert dataset.resolution == (16, 16) and dataset.channels == 3 and dataset.count == 12
    assert sorted(dataset.levels) == [(1, 1), (2, 2), (4, 4), (8, 8), (16, 16)]
    for level in expected:
        r = level.shape[-1]
        stored = dataset.images(r, r)[:]
        assert stored.dtype == np.uint8
        np.testing.assert_array_equal(stored, level)
    np.testing.assert_array_equal(dataset.labels, labels)
    assert dataset.num_labels == labels.max() + 1
    assert dataset.metadata["source"] == "NVIDIA h5tool.py"
    # Values map [0, 255] -> [-1, 1].
    np.testing.assert_allclose(dataset.to_float(np.array([0, 255], np.uint8)), [-1.0, 1.0])


def test_our_writer_matches_h5tool_levels_and_round_trips_metadata(tmp_path):
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, size=(10, 1, 32, 32), dtype=np.uint8)
    expected = write_like_h5tool(tmp_path / "ref.h5", images)
    metadata = {"source": "test", "spectrogram": {"n_fft": 1024}, "note": "é"}
    with DatasetWriter(tmp_path / "ours.h5", (32, 32), 1, "uint8", metadata, chunk=3) as writer:
        writer.add(images[:4])
        writer.add(images[4:])  # streamed in two pieces: the same file as one piece
    dataset = open_dataset(tmp_path / "ours.h5")
    for level in expected:
        r = level.shape[-1]
        np.testing.assert_array_equal(dataset.images(r, r)[:], level)
    assert dataset.metadata["spectrogram"] == {"n_fft": 1024} and dataset.metadata["note"] == "é"
    assert dataset.metadata["count"] == 10 and dataset.metadata["resolution"] == [32, 32]


def test_float_non_square_levels_are_box_averages(tmp_path):
    rng = np.random.default_rng(2)
    images = rng.uniform(-1, 1, size=(5, 1, 8, 32)).astype(np.float32)
    with DatasetWriter(tmp_path / "spec.h5", (8, 32), 1, "float32") as writer:
        writer.add(images)
    dataset = open_dataset(tmp_path / "spec.h5")
    assert sorted(dataset.levels) == [(1, 4), (2, 8), (4, 16), (8, 32)]
    level = images.astype(np.float64)
    for h, w in [(4, 16), (2, 8), (1, 4)]:
        level = level.reshape(5, 1, h, 2, w, 2).mean(axis=(3, 5))
        np.testing.assert_allclose(dataset.images(h, w)[:], level, atol=1e-6)


def test_fade_at_alpha_0_and_1_gives_the_lower_and_the_full_level_exactly(tmp_path):
    rng = np.random.default_rng(3)
    images = rng.uniform(-1, 1, size=(6, 1, 16, 16)).astype(np.float32)
    with DatasetWriter(tmp_path / "f.h5", (16, 16), 1, "float32") as writer:
        writer.add(images)
    loader = LevelLoader(open_dataset(tmp_path / "f.h5"), seed=0)
    full = loader.peek(2, 6)  # level 2 = 16x16 with the 4x4 base
    lower = loader.peek(1, 6)
    assert torch.equal(fade_reals(full, 1.0), full)
    expected_lower = lower.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
    torch.testing.assert_close(fade_reals(full, 0.0), expected_lower, atol=1e-6, rtol=0)
    halfway = fade_reals(full, 0.5)
    torch.testing.assert_close(halfway, 0.5 * (full + expected_lower), atol=1e-6, rtol=0)


def test_loader_visits_every_image_once_per_pass_and_is_seeded(tmp_path):
    prepare_synthetic_shapes(tmp_path / "s.h5", count=10, resolution=8, seed=0)
    dataset = open_dataset(tmp_path / "s.h5")
    loader = LevelLoader(dataset, seed=5)
    level = loader.peek(1, 10)  # all ten at 8x8, in some order
    seen = torch.cat([loader.batch(1, 5), loader.batch(1, 5)])  # one pass
    # Each image of the pass matches exactly one stored image.
    matches = (seen[:, None] == level[None]).flatten(2).all(dim=2)
    assert matches.sum(dim=1).eq(1).all() and matches.sum(dim=0).eq(1).all()
    again = LevelLoader(dataset, seed=5)
    assert torch.equal(torch.cat([again.batch(1, 5), again.batch(1, 5)]), seen)
    other = LevelLoader(dataset, seed=6)
    assert not torch.equal(torch.cat([other.batch(1, 5), other.batch(1, 5)]), seen)


def test_mirroring_flips_time_in_about_half_the_reals_and_resumes_exactly():
    """Mirror augmentation reverses the width (a spectrogram's time axis), never the height (its frequencies)."""
    from pgsound.datasets import ArrayDataset

    dataset = ArrayDataset.random(16, 1, (8, 8), seed=2)
    plain, mirrored = LevelLoader(dataset, seed=3), LevelLoader(dataset, seed=3, mirror=True)
    flipped = 0
    for _ in range(50):  # 400 reals: the same order of images in both loaders
        a, b = plain.batch(1, 8), mirrored.batch(1, 8)
        same = (a == b).flatten(1).all(1)
        reversed_in_time = (a.flip(3) == b).flatten(1).all(1)
        assert (same | reversed_in_time).all()
        assert not (a.flip(2) == b).flatten(1).all(1).any()
        flipped += int(reversed_in_time.sum())
    assert 0.42 < flipped / 400 < 0.58
    saved = mirrored.state_dict()
    expected = [mirrored.batch(1, 8) for _ in range(3)]
    resumed = LevelLoader(dataset, seed=9, mirror=True)
    resumed.load_state_dict(saved)
    assert all(torch.equal(resumed.batch(1, 8), batch) for batch in expected)


def test_streaming_path_serves_the_same_batches_as_the_in_memory_path(tmp_path):
    prepare_synthetic_shapes(tmp_path / "s.h5", count=20, resolution=16, seed=0)
    dataset = open_dataset(tmp_path / "s.h5")
    held = LevelLoader(dataset, seed=1)
    streamed = LevelLoader(dataset, seed=1, memory_budget=0)
    for _ in range(5):  # crosses a pass boundary (20 images, batches of 7)
        assert torch.equal(held.batch(2, 7, alpha=0.3), streamed.batch(2, 7, alpha=0.3))
    assert streamed._cache == {}


def test_interrupted_preparation_leaves_no_complete_looking_file(tmp_path):
    path = tmp_path / "broken.h5"
    images = np.zeros((4, 3, 8, 8), np.uint8)
    with pytest.raises(RuntimeError, match="power cut"):
        with DatasetWriter(path, (8, 8), 3) as writer:
            writer.add(images)
            raise RuntimeError("power cut")
    assert not path.exists() and not list(tmp_path.iterdir())
    # A process killed mid-write leaves only the hidden partial file: opening names the problem.
    with DatasetWriter(path, (8, 8), 3) as writer:
        writer.add(images)
    path.rename(tmp_path / ".broken.h5.partial")
    with pytest.raises(FileNotFoundError, match="interrupted preparation"):
        open_dataset(path)
    # A file of ours whose 'complete' flag was never set is refused.
    (tmp_path / ".broken.h5.partial").rename(path)
    with h5py.File(path, "a") as f:
        f.attrs["complete"] = False
    with pytest.raises(DatasetError, match="incomplete"):
        open_dataset(path)


def test_not_a_dataset_is_a_clear_error(tmp_path):
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"not hdf5 at all")
    with pytest.raises(DatasetError, match="junk.h5"):
        open_dataset(junk)
    with h5py.File(tmp_path / "empty.h5", "w") as f:
        f.create_dataset("something", data=np.zeros(3))
    with pytest.raises(DatasetError, match="no data"):
        open_dataset(tmp_path / "empty.h5")


def test_another_programs_metadata_or_a_damaged_label_file_is_one_error_and_the_file_is_closed(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (4, 1, 4, 4), dtype=np.uint8)
    foreign = tmp_path / "foreign.h5"
    write_like_h5tool(foreign, images)
    with h5py.File(foreign, "a") as f:
        f.attrs["metadata"] = "created by another tool, v2"
    with pytest.raises(DatasetError, match="foreign.h5: its 'metadata' attribute is not pgsound's JSON"):
        open_dataset(foreign)
    with h5py.File(foreign, "w"):  # only a closed file can be opened for writing again
        pass
    labelled = tmp_path / "labelled.h5"
    write_like_h5tool(labelled, images, labels=np.array([0, 1, 0, 1]))
    beside = tmp_path / "labelled-labels.npy"
    beside.write_bytes(beside.read_bytes()[:40])  # cut short
    with pytest.raises(DatasetError, match="labelled-labels.npy: not a readable label array"):
        open_dataset(labelled)
    with h5py.File(labelled, "w"):
        pass


def save_image(path, array):
    from PIL import Image

    Image.fromarray(array).save(path)


def test_image_folder_round_trips_and_names_bad_files(tmp_path, monkeypatch):
    rng = np.random.default_rng(4)
    folder = tmp_path / "imgs"
    (folder / "sub").mkdir(parents=True)
    arrays = [rng.integers(0, 256, size=(16, 16, 3), dtype=np.uint8) for _ in range(3)]
    for i, a in enumerate(arrays):
        save_image(folder / ("sub" if i == 2 else "") / f"im{i}.png", a)
    dataset = prepare_images(tmp_path / "imgs.h5", folder)
    assert dataset.count == 3 and dataset.channels == 3
    stored = dataset.images(16, 16)[:]
    np.testing.assert_array_equal(stored, np.stack(arrays).transpose(0, 3, 1, 2))

    save_image(folder / "odd.png", rng.integers(0, 256, size=(8, 8, 3), dtype=np.uint8))
    with pytest.raises(ValueError, match=r"odd\.png: size 8x8, expected 16x16"):
        prepare_images(tmp_path / "bad.h5", folder)
    assert not (tmp_path / "bad.h5").exists() and not (tmp_path / ".bad.h5.partial").exists()
    (folder / "odd.png").unlink()

    save_image(folder / "zgray.png", rng.integers(0, 256, size=(16, 16), dtype=np.uint8))
    import pgsound.datasets.images as images_module

    decoded = []
    read = images_module.read_image
    monkeypatch.setattr(images_module, "read_image", lambda path: decoded.append(path) or read(path))
    with pytest.raises(ValueError, match=r"zgray\.png: grayscale, expected RGB"):
        prepare_images(tmp_path / "bad.h5", folder)
    assert decoded == []  # found from the headers, before a picture was decoded or written
    (folder / "zgray.png").unlink()

    (folder / "zz.jpg").write_bytes(b"\xff\xd8 truncated")
    with pytest.raises(ValueError, match=r"zz\.jpg: not a readable image"):
        prepare_images(tmp_path / "bad.h5", folder)

    odd = tmp_path / "odd"
    odd.mkdir()
    save_image(odd / "a.png", rng.integers(0, 256, size=(24, 24), dtype=np.uint8))
    with pytest.raises(ValueError, match="not a power of two"):
        prepare_images(tmp_path / "bad.h5", odd)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="holds no"):
        prepare_images(tmp_path / "bad.h5", tmp_path / "empty")


def test_prepare_and_dataset_info_commands(tmp_path, capsys):
    from pgsound.cli import main

    out = tmp_path / "shapes.h5"
    assert main(["prepare", "synthetic-shapes", "--count", "12", "--resolution", "8", "-o", str(out)]) == 0
    capsys.readouterr()
    assert main(["dataset", "info", str(out)]) == 0
    text = capsys.readouterr().out
    assert "12 images" in text and "8x8" in text and "1x1" in text and "labels (3)" in text
    assert json.loads(json.dumps(open_dataset(out).metadata))["source"] == "synthetic-shapes"
    assert main(["dataset", "info", str(tmp_path / "missing.h5")]) == 2


def test_synthetic_piano_dataset_is_seeded_and_labelled(tmp_path):
    from pgsound.datasets import prepare_synthetic_piano
    from pgsound.spectrogram import SpectrogramConfig

    # The lowest 32 bins of a 512-point STFT, hop 256: pictures of 0.5 s (7936 samples).
    config = SpectrogramConfig(n_fft=512, hop_length=256, n_bins=32, n_frames=32)
    one = prepare_synthetic_piano(tmp_path / "a.h5", config, minutes=0.05, seed=3)
    two = prepare_synthetic_piano(tmp_path / "b.h5", config, minutes=0.05, seed=3)
    other = prepare_synthetic_piano(tmp_path / "c.h5", config, minutes=0.05, seed=4)
    # 3 s of audio: 6 pictures, every level down to 1x1.
    assert one.count == 6 and one.resolution == (32, 32) and (1, 1) in one.levels
    np.testing.assert_array_equal(one.images(32, 32)[:], two.images(32, 32)[:])
    assert not np.array_equal(one.images(32, 32)[:], other.images(32, 32)[:])
    assert one.num_labels == 88 and one.labels.min() >= 0 and one.labels.max() < 88
    assert SpectrogramConfig.from_dict(one.metadata["spectrogram"]) == config
    values = one.images(32, 32)[:].astype(np.float32)
    assert values.min() >= -1 and values.max() <= 1 and values.std() > 0.1


@pytest.mark.parametrize("seed", [-1, 2**32, True, 1.5])
def test_a_preparation_refuses_a_seed_as_the_config_does_before_writing(seed, tmp_path):
    from pgsound.config import TrainConfig
    from pgsound.datasets import prepare_synthetic_piano
    from pgsound.spectrogram import SpectrogramConfig

    message = f"seed must be a whole number from 0 to 4294967295, got {seed!r}"
    config = SpectrogramConfig(n_fft=64, hop_length=32, n_bins=32, n_frames=32)
    with pytest.raises(UserError, match=re.escape(message)):  # one line, status 2, from the CLI
        prepare_synthetic_shapes(tmp_path / "s.h5", count=4, resolution=8, seed=seed)
    with pytest.raises(UserError, match=re.escape(message)):
        prepare_synthetic_piano(tmp_path / "p.h5", config, minutes=0.01, seed=seed)
    with pytest.raises(UserError, match=re.escape(message)):  # the same check, the same words
        TrainConfig(seed=seed)
    assert not list(tmp_path.iterdir())


def test_prepare_audio_skips_and_reports_bad_files(tmp_path):
    import soundfile as sf

    from pgsound.datasets import prepare_audio
    from pgsound.spectrogram import SpectrogramConfig, audio_to_frames

    config = SpectrogramConfig(n_fft=64, hop_length=32, n_bins=32, n_frames=32)
    folder = tmp_path / "audio"
    folder.mkdir()
    t = np.arange(16000) / 16000
    tone = (0.5 * np.sin(2 * np.pi * 440 * t) * np.exp(-2 * t)).astype(np.float32)
    sf.write(folder / "good.wav", tone, 16000)
    (folder / "broken.flac").write_bytes(b"fLaC garbage")
    sf.write(folder / "empty.wav", np.zeros(0, np.float32), 16000)
    dataset, report = prepare_audio(tmp_path / "out.h5", folder, config, dtype="float32", workers=1)
    assert report.files_used == 1 and sorted(Path(n).name for n, _ in report.skipped) == ["broken.flac", "empty.wav"]
    assert "broken.flac" in report.summary()
    # The stored pictures are exactly the sound path's pictures of the good file.
    stored = sf.read(folder / "good.wav", dtype="float32")[0]  # 16-bit PCM, as written
    np.testing.assert_allclose(dataset.images(32, 32)[:, 0], audio_to_frames(stored, config), atol=1e-5)
    assert len(dataset.metadata["skipped"]) == 2
    with pytest.raises(ValueError, match="no usable audio"):
        (folder / "good.wav").unlink()
        prepare_audio(tmp_path / "none.h5", folder, config, workers=1)
    assert not (tmp_path / "none.h5").exists()


def test_float_pictures_outside_minus_one_one_are_refused_on_open(tmp_path):
    """Float data in [0, 255] would train without a word (NVIDIA's float layout is used as stored)."""
    path = tmp_path / "float255.h5"
    with h5py.File(path, "w") as f:
        for size in (1, 2, 4):
            f[f"data{size}x{size}"] = np.random.default_rng(0).uniform(0, 255, (3, 1, size, size)).astype(np.float32)
    with pytest.raises(DatasetError, match=r"float pictures must be in \[-1, 1\], but these reach \[\d"):
        open_dataset(path)


def test_a_full_disk_is_a_message_and_leaves_no_partial_file(tmp_path, monkeypatch, capsys):
    """HDF5 on a full disk crashes the process when it frees its buffers; the writer must stop before that."""
    import shutil
    from collections import namedtuple

    from pgsound.cli import main

    usage = namedtuple("usage", "total used free")
    free = {"bytes": 20 * 2**20}  # room for the first 512 images (4 MiB with every level) and the margin

    def disk_usage(path):
        left = free["bytes"]
        free["bytes"] -= 12 * 2**20  # each batch written takes more than it needs
        return usage(2**30, 0, max(left, 0))

    monkeypatch.setattr(shutil, "disk_usage", disk_usage)
    out = tmp_path / "shapes.h5"
    assert main(["prepare", "synthetic-shapes", "--count", "2048", "-o", str(out)]) == 2
    error = capsys.readouterr().err
    assert f"no space left on {tmp_path} for shapes.h5" in error and "MiB free" in error
    assert list(tmp_path.iterdir()) == []  # neither the file nor its partial


def test_files_on_one_disk_add_up_and_a_folder_to_be_made_counts_its_parents_disk(tmp_path, monkeypatch):
    """Two files that each fit but not together are refused, naming both; nothing is created by asking."""
    import shutil
    from collections import namedtuple

    from pgsound.datasets.writer import DISK_MARGIN_BYTES, DatasetError, DatasetWriter, check_disk_space

    a = DatasetWriter(tmp_path / "new" / "deeper" / "a.h5", (32, 32), 1)
    b = DatasetWriter(tmp_path / "new" / "b.h5", (32, 32), 1)
    one_file = 100 * a.bytes_per_image() + DISK_MARGIN_BYTES
    asked = []

    def disk_usage(path):
        asked.append(path)
        return namedtuple("usage", "total used free")(2**40, 0, one_file + 1)

    monkeypatch.setattr(shutil, "disk_usage", disk_usage)
    check_disk_space([(a, 100)])
    check_disk_space([(b, 100)])
    with pytest.raises(DatasetError, match=r"^no space left on .* for a.h5, b.h5: 4 MiB free, 8 MiB needed for 200 "
                                           r"more picture\(s\); nothing was kept, free some space"):
        check_disk_space([(a, 100), (b, 100)])
    assert set(asked) == {tmp_path} and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("kind", ["synthetic-piano", "sampled-piano"])
def test_a_piano_too_large_for_the_disk_is_refused_before_any_sound_is_made(kind, tmp_path, monkeypatch, capsys):
    import shutil
    from collections import namedtuple

    import pgsound.datasets.pianos as pianos
    import pgsound.piano_music as piano_music
    from pgsound.cli import main

    monkeypatch.setattr(shutil, "disk_usage", lambda path: namedtuple("usage", "total used free")(2**30, 0, 2**20))
    for module, name in ((pianos, "piano_dataset"), (piano_music, "render_performance")):
        monkeypatch.setattr(module, name, lambda *args, **kwargs: pytest.fail("sound was made"))
    out = tmp_path / "piano.h5"
    assert main(["prepare", kind, "--minutes", "10", "--size", "128x128", "-o", str(out)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and f"no space left on {tmp_path} for piano.h5: 1 MiB free" in error, error
    assert list(tmp_path.iterdir()) == []


def test_both_kinds_of_dataset_offer_the_dataset_interface(tmp_path):
    """What the trainer and the metrics read exists on a prepared file and on pictures in memory alike."""
    from pgsound.datasets import ArrayDataset, Dataset, open_dataset

    prepare_synthetic_shapes(tmp_path / "s.h5", count=8, resolution=8)
    for dataset in (open_dataset(tmp_path / "s.h5"), ArrayDataset.random(8, 3, (8, 8), num_labels=3, seed=0)):
        assert isinstance(dataset, Dataset)
        assert (dataset.count, dataset.channels, tuple(dataset.resolution), dataset.num_labels) == (8, 3, (8, 8), 3)
        pictures = dataset.to_float(np.asarray(dataset.images(4, 4)[:2]))
        assert pictures.shape == (2, 3, 4, 4) and pictures.dtype == np.float32
        assert -1 <= pictures.min() and pictures.max() <= 1
        dataset.close()
