"""Reading recordings: formats, mixing, resampling against librosa, and every kind of bad file."""

from __future__ import annotations

import librosa
import numpy as np
import pytest
import soundfile as sf

from pgsound import audio_io
from pgsound.audio_io import AudioError, find_audio_files, load_audio, scan_audio_folder


def tone(frequency: float, seconds: float, rate: int, amplitude: float = 0.5) -> np.ndarray:
    return (amplitude * np.sin(2 * np.pi * frequency * np.arange(int(seconds * rate)) / rate)).astype(np.float32)


def peak_frequency(audio: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(audio.size)))
    return float(np.argmax(spectrum) * rate / audio.size)


def test_stereo_44k_becomes_mono_16k_like_librosa(tmp_path):
    left, right = tone(440.0, 1.0, 44100), tone(1000.0, 1.0, 44100, 0.25)
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([left, right], axis=1), 44100, subtype="FLOAT")
    audio = load_audio(path, 16000)
    assert audio.dtype == np.float32 and audio.ndim == 1 and audio.size == 16000
    expected = librosa.resample((left + right) / 2, orig_sr=44100, target_sr=16000)
    np.testing.assert_allclose(audio, expected, atol=1e-6)
    # Independently of librosa: both tones are still where they were, at half their amplitude (the mix).
    spectrum = np.abs(np.fft.rfft(audio[2000:14000] * np.hanning(12000))) / (np.hanning(12000).sum() / 2)
    bins = np.fft.rfftfreq(12000, 1 / 16000)
    assert spectrum[np.argmin(np.abs(bins - 440))] == pytest.approx(0.25, rel=0.02)
    assert spectrum[np.argmin(np.abs(bins - 1000))] == pytest.approx(0.125, rel=0.02)


@pytest.mark.parametrize(
    ("suffix", "fmt", "subtype"),
    [
        (".flac", "FLAC", "PCM_16"),
        (".ogg", "OGG", "VORBIS"),
        (".mp3", "MP3", "MPEG_LAYER_III"),
        (".WAV", "WAV", None),
    ],
)
def test_common_formats(tmp_path, suffix, fmt, subtype):
    path = tmp_path / f"clip{suffix}"
    sf.write(path, tone(523.25, 0.5, 22050), 22050, format=fmt, subtype=subtype)
    audio = load_audio(path, 16000)
    assert abs(audio.size - 8000) <= 1200  # MP3 adds encoder delay and padding
    assert peak_frequency(audio, 16000) == pytest.approx(523.25, abs=3.0)
    assert find_audio_files(tmp_path) == [path]


def test_librosa_fallback_when_soundfile_fails(tmp_path, monkeypatch):
    path = tmp_path / "clip.wav"
    sf.write(path, tone(300.0, 0.5, 16000), 16000, subtype="FLOAT")
    direct = load_audio(path)

    def broken(_path):
        raise RuntimeError("Format not recognised")

    monkeypatch.setattr(audio_io, "_read_soundfile", broken)
    np.testing.assert_allclose(load_audio(path), direct, atol=1e-7)


def test_bad_files_name_the_file_and_the_reason(tmp_path):
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunk" + bytes(range(256)) * 4)
    with pytest.raises(AudioError, match=r"corrupt\.wav: cannot decode as audio .*expected a WAV, FLAC, OGG or MP3"):
        load_audio(corrupt)
    empty = tmp_path / "empty.flac"
    empty.touch()
    with pytest.raises(AudioError, match=r"empty\.flac: empty file"):
        load_audio(empty)
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(16000, np.float32), 16000)
    with pytest.raises(AudioError, match=r"silent\.wav: silent \(peak all zeros"):
        load_audio(silent)
    hum = tmp_path / "hum.wav"
    sf.write(hum, tone(50.0, 1.0, 16000, 1e-5), 16000, subtype="FLOAT")  # -100 dB
    with pytest.raises(AudioError, match=r"hum\.wav: silent \(peak -100\.0 dB"):
        load_audio(hum)
    short = tmp_path / "short.wav"
    sf.write(short, tone(440.0, 0.02, 16000), 16000)
    with pytest.raises(AudioError, match=r"short\.wav: too short \(0\.020 s, need at least 0\.1 s\)"):
        load_audio(short)
    nan = tmp_path / "nan.wav"
    sf.write(nan, np.array([0.1, np.nan, 0.2] * 2000, np.float32), 16000, subtype="FLOAT")
    with pytest.raises(AudioError, match=r"nan\.wav: contains NaN"):
        load_audio(nan)
    with pytest.raises(FileNotFoundError, match=r"missing\.wav: no such audio file"):
        load_audio(tmp_path / "missing.wav")
    assert issubclass(AudioError, ValueError)  # the command line prints it as a user error


def test_scan_skips_bad_files_and_reports_them(tmp_path):
    (tmp_path / "a" / "deep").mkdir(parents=True)
    sf.write(tmp_path / "a" / "one.wav", tone(440.0, 1.0, 16000), 16000)
    sf.write(tmp_path / "a" / "deep" / "two.flac", tone(660.0, 2.0, 48000), 48000)
    (tmp_path / "a" / "broken.ogg").write_bytes(b"OggS" + b"\x00" * 100)
    (tmp_path / "empty.mp3").touch()
    sf.write(tmp_path / "quiet.wav", np.zeros(8000, np.float32), 16000)
    (tmp_path / "notes.txt").write_text("not audio")
    scan = scan_audio_folder(tmp_path, 16000)
    assert [p.name for p, _ in scan.usable] == ["two.flac", "one.wav"]  # sorted by path: a/deep/... before a/one
    assert [s for _, s in scan.usable] == pytest.approx([2.0, 1.0])
    assert scan.seconds == pytest.approx(3.0)
    reasons = {p.name: r for p, r in scan.skipped}
    assert set(reasons) == {"broken.ogg", "empty.mp3", "quiet.wav"}
    assert reasons["empty.mp3"].startswith("empty file") and reasons["quiet.wav"].startswith("silent")
    summary = scan.summary()
    assert "2 usable files" in summary and "3 skipped" in summary
    assert all(f"skipped {p}: {r}" in summary for p, r in scan.skipped)


def test_scan_skips_unreadable_files_and_broken_links(tmp_path, monkeypatch):
    """A file this user may not read, or a link to nothing: skipped and named, the rest of the folder read."""
    import pgsound.audio_io

    sf.write(tmp_path / "one.wav", tone(440.0, 1.0, 16000), 16000)
    sf.write(tmp_path / "locked.wav", tone(440.0, 1.0, 16000), 16000)
    (tmp_path / "gone.flac").symlink_to(tmp_path / "nowhere.flac")
    check = pgsound.audio_io.wav_truncation

    def no_permission(path):
        if path.name == "locked.wav":
            raise PermissionError(13, "Permission denied", str(path))
        return check(path)

    monkeypatch.setattr(pgsound.audio_io, "wav_truncation", no_permission)
    scan = scan_audio_folder(tmp_path, 16000)
    assert [p.name for p, _ in scan.usable] == ["one.wav"]
    reasons = {p.name: r for p, r in scan.skipped}
    assert reasons["locked.wav"] == "cannot be read (Permission denied)"
    assert reasons["gone.flac"].startswith("a broken symbolic link")


def test_find_audio_files_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere: no such folder"):
        find_audio_files(tmp_path / "nowhere")
    (tmp_path / "readme.txt").write_text("x")
    with pytest.raises(ValueError, match=r"no audio files \(looked for \.flac, \.mp3, \.ogg, \.wav"):
        find_audio_files(tmp_path)
