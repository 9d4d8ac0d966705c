"""MAESTRO's catalogue: its performances, their splits, and the filters a researcher asks for (book: chapter 9).

MAESTRO (Hawthorne et al. 2019) ships a catalogue beside its audio, ``maestro-v{version}.csv`` and a
``.json`` of the same table. One row per performance: ``canonical_composer``, ``canonical_title``,
``split`` (train, validation or test), ``year``, ``midi_filename``, ``audio_filename`` (relative to the
dataset's folder) and ``duration`` in seconds. The splits are by performance (from v2 on, no composition
crosses them either), so a dataset prepared per split cannot leak a recording into its test set. Versions
1.0.0, 2.0.0 and 3.0.0 share the columns; the v3 JSON is column-oriented, the v1/v2 JSON a list of rows.
Nothing here downloads: the user brings the unpacked dataset.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pgsound.datasets.hdf5 import PreparedDataset
from pgsound.datasets.prepare import (
    PreparationReport,
    Recording,
    piece_seconds,
    spectrogram_metadata,
    write_recordings,
)
from pgsound.datasets.writer import DatasetWriter, check_disk_space
from pgsound.errors import MissingFileError, UserError
from pgsound.representations import channels_of
from pgsound.spectrogram import SpectrogramConfig

COLUMNS: tuple[str, ...] = (
    "canonical_composer", "canonical_title", "split", "year", "midi_filename", "audio_filename", "duration",
)
SPLITS: tuple[str, ...] = ("train", "validation", "test")
CATALOGUE_NAME = re.compile(r"^maestro-v(\d+(?:\.\d+)*)\.(csv|json)$")


@dataclass(frozen=True)
class Performance:
    """One row of the catalogue."""

    canonical_composer: str
    canonical_title: str
    split: str
    year: int
    midi_filename: str
    audio_filename: str
    duration: float

    def entry(self) -> dict[str, Any]:
        """The record kept as a picture's provenance."""
        return asdict(self)


@dataclass(frozen=True)
class Catalogue:
    """A MAESTRO folder's catalogue: the file it came from, MAESTRO's version and every performance."""

    folder: Path
    path: Path
    version: str
    performances: tuple[Performance, ...]


def find_catalogue(folder: str | Path) -> Path:
    """The folder's ``maestro-v*.csv`` (or its ``.json`` when there is no CSV); the newest version if several."""
    folder = Path(folder)
    if not folder.is_dir():
        raise MissingFileError(f"{folder}: no such folder (expected an unpacked MAESTRO dataset)")
    found = [(tuple(int(x) for x in m.group(1).split(".")), m.group(2) == "csv", p)
             for p in folder.iterdir() if (m := CATALOGUE_NAME.match(p.name))]
    if not found:
        raise MissingFileError(f"{folder}: no maestro-v*.csv or maestro-v*.json (MAESTRO's catalogue, which sits "
                               f"beside the year folders of audio in the unpacked dataset)")
    return max(found)[2]


def _rows(path: Path) -> list[dict[str, Any]]:
    """The catalogue's rows as dicts, from the CSV or either JSON layout.

    UTF-8 with or without a byte-order mark (a spreadsheet's "CSV UTF-8" adds one); another encoding (a
    spreadsheet's plain "CSV" on Windows) is an error that says which to save as.
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise UserError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start}); save the catalogue as "
                        f"UTF-8 (a spreadsheet's \"CSV UTF-8\")") from None
    if path.suffix == ".csv":
        reader = csv.DictReader(io.StringIO(text, newline=""))
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise UserError(f"{path}: missing column(s) {', '.join(missing)}; a MAESTRO catalogue has "
                            f"{', '.join(COLUMNS)}")
        return list(reader)
    try:
        table = json.loads(text)
    except json.JSONDecodeError as error:
        raise UserError(f"{path}: not JSON ({error})") from None
    if isinstance(table, list):  # v1 and v2: a list of rows
        return table
    if isinstance(table, dict):  # v3: {column: {row number: value}}
        missing = [c for c in COLUMNS if c not in table]
        if missing:
            raise UserError(f"{path}: missing column(s) {', '.join(missing)}; a MAESTRO catalogue has "
                            f"{', '.join(COLUMNS)}")
        keys = list(table["audio_filename"])
        return [{c: table[c].get(k) for c in COLUMNS} for k in keys]
    raise UserError(f"{path}: expected a list of rows or a table of columns, got {type(table).__name__}")


def read_catalogue(folder: str | Path) -> Catalogue:
    """Read a MAESTRO folder's catalogue; a missing column or a malformed value names the file and the row.

    The same audio file listed in two splits would leak; it is refused.
    """
    path = find_catalogue(folder)
    performances = []
    split_of: dict[str, str] = {}
    for number, row in enumerate(_rows(path), start=1):
        missing = [c for c in COLUMNS if row.get(c) in (None, "")]
        if missing:
            raise UserError(f"{path}, row {number}: no value for {', '.join(missing)}")
        try:
            performance = Performance(
                str(row["canonical_composer"]), str(row["canonical_title"]), str(row["split"]),
                int(row["year"]), str(row["midi_filename"]), str(row["audio_filename"]), float(row["duration"]),
            )
        except ValueError as error:
            raise UserError(f"{path}, row {number}: {error} (year is an integer, duration seconds)") from None
        if performance.split not in SPLITS:
            raise UserError(f"{path}, row {number}: split {performance.split!r} is not one of {', '.join(SPLITS)}")
        earlier = split_of.setdefault(performance.audio_filename, performance.split)
        if earlier != performance.split:
            raise UserError(f"{path}: {performance.audio_filename} is listed in both {earlier} and "
                            f"{performance.split}; a performance must belong to one split")
        performances.append(performance)
    if not performances:
        raise UserError(f"{path}: the catalogue lists no performances")
    version = CATALOGUE_NAME.match(path.name).group(1)  # type: ignore[union-attr]
    return Catalogue(Path(folder), path, version, tuple(performances))


def parse_years(values: list[str]) -> set[int]:
    """``["2004", "2008-2011"]`` to the set of years; a malformed value is a UserError naming it."""
    years: set[int] = set()
    for value in values:
        for part in str(value).split(","):
            match = re.fullmatch(r"\s*(\d{4})\s*(?:-\s*(\d{4})\s*)?", part)
            if not match:
                raise UserError(f"--year {part!r}: expected a year such as 2004 or a range such as 2004-2009")
            low, high = int(match.group(1)), int(match.group(2) or match.group(1))
            if high < low:
                raise UserError(f"--year {part!r}: the range ends before it starts")
            years.update(range(low, high + 1))
    return years


def _spread_order(performance: Performance) -> str:
    # The catalogue is sorted by composer; a hash of the file name gives a fixed order that mixes them.
    return hashlib.sha256(performance.audio_filename.encode()).hexdigest()


def select(
    catalogue: Catalogue,
    split: str,
    composers: list[str] | None = None,
    years: set[int] | None = None,
    max_hours: float | None = None,
) -> list[Performance]:
    """The performances of ``split`` that pass the filters, in catalogue order.

    ``composers``: case-insensitive parts of ``canonical_composer`` (any one matches). ``years``: the
    competition years kept. ``max_hours``: at most this much audio, taken in a fixed order that mixes the
    composers (a hash of each file name), so that a small subset is not all by one composer. Nothing matching
    is a UserError saying how many performances each filter removed.
    """
    if split not in SPLITS:
        raise UserError(f"split {split!r} is not one of {', '.join(SPLITS)}")
    if max_hours is not None and max_hours <= 0:
        raise UserError(f"--max-hours must be positive, got {max_hours:g}")
    removed: list[tuple[str, int]] = []

    def keep(name: str, chosen: list[Performance], rule: Any) -> list[Performance]:
        kept = [p for p in chosen if rule(p)]
        removed.append((name, len(chosen) - len(kept)))
        return kept

    chosen = keep(f"split {split}", list(catalogue.performances), lambda p: p.split == split)
    if composers:
        wanted = [c.lower() for c in composers]
        chosen = keep(f"--composer {', '.join(composers)}", chosen,
                      lambda p: any(c in p.canonical_composer.lower() for c in wanted))
    if years:
        chosen = keep("--year", chosen, lambda p: p.year in years)
    if max_hours is not None:
        budget, taken = max_hours * 3600.0, set()
        for p in sorted(chosen, key=_spread_order):
            if p.duration <= budget:
                taken.add(p.audio_filename)
                budget -= p.duration
        chosen = keep(f"--max-hours {max_hours:g}", chosen, lambda p: p.audio_filename in taken)
    if not chosen:
        counts = "; ".join(f"{name} removed {n}" for name, n in removed)
        raise UserError(f"{catalogue.path}: no performance left ({len(catalogue.performances)} listed; {counts})")
    return chosen


def split_paths(out: str | Path, splits: list[str]) -> dict[str, Path]:
    """One output per split: ``OUT`` itself for one split, ``OUT-train.h5`` and so on for several."""
    out = Path(out)
    if len(splits) == 1:
        return {splits[0]: out}
    return {s: out.with_name(f"{out.stem}-{s}{out.suffix or '.h5'}") for s in splits}


def prepare_maestro(
    out: str | Path,
    folder: str | Path,
    config: SpectrogramConfig | None = None,
    split: str = "train",
    composers: list[str] | None = None,
    years: set[int] | None = None,
    max_hours: float | None = None,
    dtype: str = "float16",
    workers: int | None = None,
    progress: bool = False,
    representation: str = "magnitude",
) -> list[tuple[PreparedDataset, PreparationReport]]:
    """MAESTRO's recordings, one prepared dataset per split.

    (book: chapter 9, "From the sampled piano to real recordings")

    ``split`` is ``train``, ``validation``, ``test`` or ``all`` (three files: ``OUT-train.h5``, ...). The
    catalogue (:mod:`pgsound.datasets.maestro`) gives each split's performances, filtered by ``composers``,
    ``years`` and ``max_hours`` (per split). The 44.1/48 kHz stereo WAV files are mixed to mono and resampled
    to ``config.sample_rate`` in the worker processes. Every picture records its performance's catalogue row
    and its start in seconds; the metadata records the split and MAESTRO's version. A listed file that is
    missing or unreadable is skipped and listed. The disk is checked for room for every split before any
    audio is read, from the catalogue's durations.
    """
    config = config or SpectrogramConfig()
    catalogue = read_catalogue(folder)
    splits = list(SPLITS) if split == "all" else [split]
    chosen = {s: select(catalogue, s, composers, years, max_hours) for s in splits}
    paths = split_paths(out, splits)
    writers = {}
    for s in splits:
        metadata = {
            "source": "maestro", "maestro_version": catalogue.version, "split": s,
            "catalogue": str(catalogue.path.resolve()), "root": str(Path(folder).resolve()),
            "filters": {"composers": composers or [], "years": sorted(years or []), "max_hours": max_hours},
            **spectrogram_metadata(config, representation),
        }
        writers[s] = DatasetWriter(paths[s], config.shape, channels_of(representation), dtype, metadata,
                                   with_provenance=True)
    pictures = {s: sum(int(np.ceil(p.duration / piece_seconds(config))) for p in chosen[s]) for s in splits}
    check_disk_space([(writers[s], pictures[s]) for s in splits], "use --max-hours, --dtype float16 or another -o")
    results = []
    for s, writer in writers.items():
        recordings = [Recording(Path(folder) / p.audio_filename, entry=p.entry()) for p in chosen[s]]
        with writer:
            report = write_recordings(writer, recordings, config, representation, workers, progress,
                                      description=f"maestro {s}")
        results.append((PreparedDataset(writer.path), report))
    return results
