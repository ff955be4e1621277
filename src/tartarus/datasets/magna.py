"""MagnaTagATune import: ``annotations_final.csv`` and the mp3 folder as a tagging dataset.

``import_magna(annotations_csv, mp3_dir, layout, ds="MTAT")`` turns the published files into a
data root's layout (every name from ``tartarus.layout``), ready for ``tartarus spectrograms MTAT``,
``tartarus patches MTAT`` and the experiments (multi-hot tag targets; ``tartarus text d2v`` for
shufl's doc2vec tag vectors):

* ``annotations_final.csv`` is TAB-separated despite its name: a header ``clip_id``, 188 tag
  columns, ``mp3_path``; then one row per 29 s clip with 0/1 per tag and its mp3 path (e.g.
  ``f/american_bach_soloists-j_s__bach_solo_cantatas-01-bwv54__i_aria-30-59.mp3``). Values may
  be double-quoted; a BOM and CRLF line ends are accepted, and a header without tabs is read as
  comma-separated. A bad row (wrong column count, a tag value other than 0/1, an empty or
  duplicated clip_id, an mp3 path that is empty, absolute or climbs out with ``..``) is counted
  and reported, not fatal; no readable row at all is an error naming the file.
* A clip whose mp3 (``mp3_dir / mp3_path``) is missing, empty (0 bytes; MagnaTagATune ships a few)
  or undecodable is left out and listed in ``layout.import_skipped(ds)``. The decode check is
  cheap: libsndfile opens the file and reads its first 2048 frames (about 0.2 ms a clip); only a file
  it cannot open is decoded in full by ``tartarus.audio.decode.load_audio`` (audioread fallback),
  as the spectrogram stage would. A file cut short further in passes; the spectrogram stage lists
  it in its own ``errors.tsv``.
* Clips without any tag (about a sixth of MagnaTagATune's) are KEPT by default, with an all-zero
  target row: for a multi-label tagger trained with binary cross-entropy they are valid negatives
  for every tag, and the usual MagnaTagATune protocol keeps every clip. ``min_tags=1`` drops
  them, which ``tartarus text d2v`` (shufl's doc2vec targets) needs: an untagged item has no
  document. The report says how many there are either way.
* Splits are by SONG, so that no song has clips in two splits (a random clip split puts clips of
  one song in train and test and inflates test scores). The song of a clip is the file name of its
  mp3 path without the trailing ``-<start>-<end>.mp3`` (see :func:`song_of`); the folder
  (``0`` ... ``f``) is not part of it, so that one song's clips are kept together even if they
  were stored in two folders. Songs are shuffled with ``seed`` and given, one by one, to the split
  that is least filled relative to its share of CLIPS (``fractions``), so the clip fractions end
  within about one song of the target.

Written, each atomically: ``layout.audio_index(ds)`` (``id<TAB>mp3 path``: relative to the data
root's ``audio/`` when ``mp3_dir`` lies inside it, else absolute), ``layout.tags_index(ds)``
(``id<TAB>tag1,tag2,...``, tags in column order; empty for an untagged clip),
``layout.genre_labels(ds)`` (the kept tag names in column order), ``layout.import_skipped(ds)``,
``layout.y(set, "class", n_tags, ds)`` (float32 multi-hot, rows aligned with the items index),
``layout.import_params(ds)`` (JSON: sources, options, counts) and, last, the three
``layout.items_index(set, ds)`` (clip ids in natural order: ``2`` before ``10``), whose presence
marks a complete import. Clip ids are the CSV's ``clip_id`` values as strings.

(The tests' miniature MagnaTagATune, ``make_mini_magna``, is in ``tests/mini_magna.py``.)
"""

from __future__ import annotations

import csv
import os
import re
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
import soundfile as sf

from .. import fileio
from ..checks import check_int
from ..errors import AudioError, ConfigError, DataMismatch, MissingInput
from ..layout import SETS, DataLayout
from ..splits import balanced_split, check_split_fractions

__all__ = ["DATASET", "MagnaReport", "AnnotationTable", "import_magna", "read_annotations", "check_clip",
           "song_of", "assign_splits", "magna_imported"]

DATASET = "MTAT"
FACT = "class"
DEFAULT_FRACTIONS = (0.8, 0.1, 0.1)
ID_COLUMN = "clip_id"
PATH_COLUMN = "mp3_path"
CHECK_FRAMES = 2048  # frames read by the decode check
CHECK_SR = 22050  # rate of the full decode that confirms a file libsndfile cannot open
SHOWN = 5  # bad rows or clips named in a summary
SHOWN_BAD = 20  # bad rows kept in a report and its params JSON
_SEGMENT = re.compile(r"-\d+-\d+\.mp3$", re.IGNORECASE)
_BAD_ID_CHARS = set("/\\\t\r\n\0")


# ================================================================================ the report
@dataclass
class MagnaReport:
    """What ``import_magna`` read, left out and wrote.

    ``skipped``: ``(clip_id, mp3 path, reason)`` of the clips left out for their audio, in CSV order;
    ``skipped_kinds``: their counts by kind (``missing``, ``empty``, ``undecodable``).
    ``bad_lines``: the first few ``(line number, reason)`` of the unreadable CSV rows (1-based
    physical lines); ``bad_reasons``: counts by reason. ``counts`` / ``song_counts``: clips / songs
    per split. ``files``: role -> path of everything written.
    """
    dataset: str
    root: Path
    annotations: Path
    mp3_dir: Path
    seed: int = 0
    fractions: tuple = DEFAULT_FRACTIONS
    min_tag_count: int = 0
    top_tags: int | None = None
    min_tags: int = 0
    decode_check: bool = True
    n_rows: int = 0  # non-blank data rows of the CSV
    n_bad: int = 0
    bad_lines: list = field(default_factory=list)
    bad_reasons: dict = field(default_factory=dict)
    skipped: list = field(default_factory=list)
    skipped_kinds: dict = field(default_factory=dict)
    n_tags_read: int = 0
    tag_names: list = field(default_factory=list)  # kept, in column order
    dropped_tags: list = field(default_factory=list)
    n_untagged: int = 0  # clips with no kept tag (before min_tags)
    n_few_tags: int = 0  # clips dropped by min_tags
    n_clips: int = 0
    n_songs: int = 0
    counts: dict = field(default_factory=dict)
    song_counts: dict = field(default_factory=dict)
    files: dict = field(default_factory=dict)
    elapsed: float = 0.0

    @property
    def n_tags(self):
        return len(self.tag_names)

    def summary(self):
        clips = " / ".join(f"{self.counts.get(s, 0)} {s}" for s in SETS)
        songs = " / ".join(str(self.song_counts.get(s, 0)) for s in SETS)
        text = (f"{self.dataset} imported into {self.root}: {self.n_clips} clips of {self.n_songs} songs, "
                f"{self.n_tags} tags; {clips} clips ({songs} songs, no song in two splits, seed {self.seed}); "
                f"from {self.annotations} ({self.n_rows} rows")
        if self.n_bad:
            shown = ", ".join(f"line {n} ({why})" for n, why in self.bad_lines[:SHOWN])
            text += f", {_n(self.n_bad, 'bad row')} skipped: {shown}" + (" ..." if self.n_bad > SHOWN else "")
        text += ")"
        if self.skipped:
            kinds = ", ".join(f"{n} {kind}" for kind, n in self.skipped_kinds.items())
            where = self.files.get("skipped")
            text += f"; {_n(len(self.skipped), 'clip')} skipped ({kinds})" + (f": see {where}" if where else "")
        if self.dropped_tags:
            why = []
            if self.min_tag_count > 1:
                why.append(f"on fewer than {self.min_tag_count} clips")
            if self.top_tags:
                why.append(f"not in the top {self.top_tags}")
            why = " or ".join(why) or "on no clip"
            text += f"; {len(self.dropped_tags)} of {self.n_tags_read} tags dropped ({why})"
        if self.min_tags > 0:
            if self.n_few_tags:
                text += f"; {_n(self.n_few_tags, 'clip')} with fewer than {_n(self.min_tags, 'tag')} dropped"
        elif self.n_untagged:
            text += (f"; {_n(self.n_untagged, 'clip')} without any tag kept (all-zero targets; --min-tags 1 "
                     f"drops them, which `tartarus text d2v` needs)")
        return text + f" [{self.elapsed:.1f} s]"


def _n(count, noun):
    return f"{count} {noun}{'' if count == 1 else 's'}"


# ============================================================================ the annotations
@dataclass
class AnnotationTable:
    """The readable rows of an annotations file.

    ``tag_names``: the tag columns in file order; ``ids`` / ``paths``: clip id and mp3 path (as
    written, relative to the mp3 folder) per row; ``tags``: uint8 ``(n_rows, n_tags)`` 0/1.
    ``n_rows`` counts every non-blank data row, ``n_bad`` those that were skipped.
    """
    path: Path
    delimiter: str
    tag_names: list
    ids: list
    paths: list
    tags: np.ndarray
    n_rows: int = 0
    n_bad: int = 0
    bad_lines: list = field(default_factory=list)
    bad_reasons: dict = field(default_factory=dict)


def _tag_name(raw):
    """A header cell as a tag name: whitespace runs one space; a comma (the tags file's separator) a space."""
    return " ".join(raw.replace(",", " ").split())


def _bad_path(mp3_path):
    if not mp3_path or any(c in mp3_path for c in "\t\r\n\0"):
        return True
    pure = PurePosixPath(mp3_path.replace("\\", "/"))
    return pure.is_absolute() or ".." in pure.parts or re.match(r"^[A-Za-z]:", mp3_path) is not None


def read_annotations(path):
    """Parse ``annotations_final.csv`` (see the module doc) into an :class:`AnnotationTable`.

    MissingInput if the file is absent; DataMismatch naming it if its header is not
    ``clip_id``, tag columns, ``mp3_path``, or if no data row can be read.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingInput(path, what="MagnaTagATune annotations file (annotations_final.csv)")
    with open(path, encoding="utf-8-sig", errors="replace", newline="") as f:
        first = f.readline()
        while first and not first.strip():
            first = f.readline()
        if not first:
            raise DataMismatch(f"{path}: empty file; expected the MagnaTagATune annotations "
                               f"(a header clip_id, tag columns, mp3_path, then one row per clip)")
        delimiter = "\t" if "\t" in first else ","
        header = [c.strip() for c in next(csv.reader([first], delimiter=delimiter, quotechar='"'))]
        if len(header) < 3 or header[0].lower() != ID_COLUMN or header[-1].lower() != PATH_COLUMN:
            raise DataMismatch(f"{path}: not a MagnaTagATune annotations file: the header must be {ID_COLUMN}, "
                               f"the tag columns, {PATH_COLUMN} (tab-separated); got {len(header)} columns "
                               f"{header[0]!r} ... {header[-1]!r}")
        tag_names = [_tag_name(c) for c in header[1:-1]]
        seen = {}
        for j, name in enumerate(tag_names):
            if not name:
                raise DataMismatch(f"{path}: tag column {j + 2} of the header has no name")
            if name in seen:
                raise DataMismatch(f"{path}: tag {name!r} names two columns ({seen[name] + 2} and {j + 2})")
            seen[name] = j
        width = len(header)
        table = AnnotationTable(path=path, delimiter=delimiter, tag_names=tag_names, ids=[], paths=[],
                                tags=np.zeros((0, len(tag_names)), np.uint8))
        reasons = Counter()

        def bad(line_no, kind, detail):
            table.n_bad += 1
            reasons[kind] += 1
            if len(table.bad_lines) < SHOWN_BAD:
                table.bad_lines.append((line_no, detail))

        rows, first_line = [], {}
        offset = 1  # the header's line; csv's line_num counts from the line after it
        reader = csv.reader(f, delimiter=delimiter, quotechar='"')
        for row in reader:
            line_no = reader.line_num + offset
            if not any(c.strip() for c in row):
                continue
            table.n_rows += 1
            if len(row) == width + 1 and not row[-1].strip():  # a trailing separator
                row = row[:-1]
            if len(row) != width:
                bad(line_no, "wrong column count", f"{len(row)} columns, expected {width}")
                continue
            clip_id, mp3_path = row[0].strip(), row[-1].strip()
            if not clip_id or clip_id in (".", "..") or _BAD_ID_CHARS & set(clip_id):
                bad(line_no, "bad clip_id", f"clip_id {clip_id!r} cannot be a file name")
                continue
            if _bad_path(mp3_path):
                bad(line_no, "bad mp3_path", f"mp3_path {mp3_path!r} must be a relative path")
                continue
            values = [v.strip() for v in row[1:-1]]
            if not set(values) <= {"0", "1"}:
                j = next(j for j, v in enumerate(values) if v not in ("0", "1"))
                bad(line_no, "tag value not 0/1", f"{tag_names[j]!r} is {values[j]!r}, expected 0 or 1")
                continue
            if clip_id in first_line:
                bad(line_no, "duplicate clip_id", f"clip_id {clip_id} already on line {first_line[clip_id]}")
                continue
            first_line[clip_id] = line_no
            table.ids.append(clip_id)
            table.paths.append(mp3_path)
            rows.append(values)
    table.bad_reasons = dict(reasons)
    if rows:
        table.tags = (np.array(rows) == "1").astype(np.uint8)
    if not table.ids:
        detail = f"; {table.n_bad} bad rows, e.g. line {table.bad_lines[0][0]}: {table.bad_lines[0][1]}" \
            if table.bad_lines else ""
        raise DataMismatch(f"{path}: no readable clip row ({table.n_rows} data rows{detail})")
    return table


# ================================================================================== the clips
def check_clip(path, decode_check=True):
    """None if the mp3 at ``path`` looks usable, else ``(kind, reason)``.

    kind is ``missing`` (no such file, or not a regular file), ``empty`` (0 bytes) or ``undecodable``
    (libsndfile cannot open it or read a first block, and a full ``load_audio`` fails too).
    ``decode_check=False`` checks only that a non-empty file is there.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return "missing", "file not found"
    except OSError as exc:
        return "missing", f"cannot read: {exc.strerror or exc}"
    if not path.is_file():
        return "missing", "not a regular file"
    if size == 0:
        return "empty", "empty file (0 bytes)"
    if not decode_check:
        return None
    try:
        with sf.SoundFile(str(path)) as f:
            if f.read(CHECK_FRAMES, dtype="float32", always_2d=True).shape[0] > 0:
                return None
    except (RuntimeError, OSError, ValueError, EOFError):  # libsndfile's (sf.LibsndfileError is a RuntimeError):
        pass  # not the end of the clip: the full decoder below tries again, audioread included, and reports
    from ..audio.decode import load_audio
    try:
        load_audio(path, CHECK_SR)
    except AudioError as exc:
        text = " ".join(str(exc).split())
        lead = f"{path}: "
        return "undecodable", (text[len(lead):] if text.startswith(lead) else text).replace("\t", " ")
    except Exception as exc:  # anything a decoder trips on makes the clip unusable, not the import
        return "undecodable", f"{type(exc).__name__}: {' '.join(str(exc).split())}".replace("\t", " ")
    return None


def _check_clips(paths, decode_check, n_jobs, progress):
    """``check_clip`` of every path, in order, over ``n_jobs`` threads (libsndfile frees the GIL)."""
    from tqdm.auto import tqdm

    # threads, not joblib workers: a plain count (the CLI's -j), at most 8 by default
    n_jobs = min(8, os.cpu_count() or 1) if n_jobs is None else check_int("n_jobs", n_jobs)
    bar = tqdm(total=len(paths), unit="clip", desc="checking clips", disable=not progress)
    try:
        if n_jobs == 1 or len(paths) < 64:
            out = []
            for p in paths:
                out.append(check_clip(p, decode_check))
                bar.update(1)
            return out
        with ThreadPoolExecutor(max_workers=n_jobs) as pool:
            out = []
            for result in pool.map(lambda p: check_clip(p, decode_check), paths, chunksize=64):
                out.append(result)
                bar.update(1)
            return out
    finally:
        bar.close()


# ================================================================================== the splits
def song_of(mp3_path):
    """The song of a clip: its mp3 file name without the trailing ``-<start>-<end>.mp3``.

    ``f/american_bach_soloists-j_s__bach_solo_cantatas-01-bwv54__i_aria-30-59.mp3`` ->
    ``american_bach_soloists-j_s__bach_solo_cantatas-01-bwv54__i_aria``. The folder is left out
    (clips with the same song name are one song wherever they are stored); a name without the
    segment suffix is its own song (its name without the extension).
    """
    name = PurePosixPath(str(mp3_path).replace("\\", "/")).name
    stripped = _SEGMENT.sub("", name)
    return stripped if stripped != name else PurePosixPath(name).stem


def assign_splits(clip_songs, fractions=DEFAULT_FRACTIONS, seed=0):
    """``{song: set}`` for ``clip_songs`` (one song name a clip): every clip of a song in one split.

    Songs (sorted, then shuffled by ``seed``) go one by one to the split whose clip count is lowest
    relative to its target (``fractions`` of all clips, normalised; ties go to the earlier split),
    so every split with a non-zero fraction gets a song as soon as there are enough, and the clip
    fractions end within about one song of the targets (``splits.balanced_split``). Deterministic
    for the same songs and seed.
    """
    return balanced_split(Counter(clip_songs), fractions, seed, what="songs")


def _natural_key(item_id):
    return (0, int(item_id), item_id) if item_id.isascii() and item_id.isdigit() else (1, 0, item_id)


# ================================================================================== the import
def magna_imported(layout, ds=DATASET):
    """True when every split's items index of ``ds`` exists (a complete import)."""
    return all(layout.items_index(s, ds).exists() for s in SETS)


def _audio_name(path, layout):
    """The audio index's path of a clip: relative to the root's audio folder when inside it, else absolute."""
    try:
        return path.relative_to(layout.audio_dir.resolve()).as_posix()
    except ValueError:
        return str(path)


def _remove_previous(layout, ds):
    """Before a re-import: the items indexes first (no state looks complete), then stale targets."""
    for set_ in SETS:
        layout.items_index(set_, ds).unlink(missing_ok=True)
    try:
        old = fileio.read_json(layout.import_params(ds))
        n_old = int(old["n_tags"])
    except (OSError, ValueError, KeyError, TypeError):
        return
    for set_ in SETS:
        layout.y(set_, FACT, n_old, ds).unlink(missing_ok=True)


def import_magna(annotations_csv, mp3_dir, layout, ds=DATASET, seed=0, fractions=DEFAULT_FRACTIONS,
                 min_tag_count=0, top_tags=None, min_tags=0, decode_check=True, n_jobs=None,
                 overwrite=False, progress=False):
    """Import MagnaTagATune into ``layout`` (a DataLayout or a root path) as dataset ``ds``; see the module doc.

    annotations_csv: ``annotations_final.csv``; mp3_dir: the folder holding its ``mp3_path`` values
        (the unzipped ``0/`` ... ``f/`` folders).
    seed, fractions: the song-level split (:func:`assign_splits`); fractions are of clips.
    min_tag_count: drop the tag columns on fewer kept clips than this (0 or 1: keep every column);
    top_tags: then keep only the ``top_tags`` most frequent (ties by column order; e.g. 50 for the
        usual top-50 benchmark); the kept columns stay in file order.
    min_tags: drop the clips with fewer kept tags than this (default 0: keep untagged clips).
    decode_check: open and read the start of every mp3 (see :func:`check_clip`); n_jobs: threads for it.
    overwrite: an existing import of ``ds`` (its items indexes) is an error unless True, since new
        splits would no longer match models, patches and targets made from the old ones.

    Returns a :class:`MagnaReport`. MissingInput names a missing CSV or mp3 folder; DataMismatch an
    annotations file with no readable row, or no usable clip left.
    """
    start = time.perf_counter()
    layout = layout if isinstance(layout, DataLayout) else DataLayout(layout)
    annotations_csv, mp3_dir = Path(annotations_csv), Path(mp3_dir)
    if not isinstance(ds, str) or not ds or any(c in ds for c in "/\\\t\n ") or ds in (".", ".."):
        raise ConfigError(f"dataset name must be a non-empty word without slashes or spaces, got {ds!r}")
    seed = check_int("seed", seed, minimum=0)
    fr = check_split_fractions(fractions)
    min_tag_count = check_int("min_tag_count", min_tag_count, minimum=0)
    top_tags = None if top_tags is None else check_int("top_tags", top_tags)
    min_tags = check_int("min_tags", min_tags, minimum=0)
    n_jobs = None if n_jobs is None else check_int("n_jobs", n_jobs)  # threads: a count, no joblib -1
    if not annotations_csv.is_file():
        raise MissingInput(annotations_csv, what="MagnaTagATune annotations file (annotations_final.csv)")
    if not mp3_dir.is_dir():
        raise MissingInput(mp3_dir, what="MagnaTagATune mp3 folder (the unzipped mp3.zip: folders 0 ... f)")
    if magna_imported(layout, ds) and not overwrite:
        again = layout.cli("magna", "import", annotations_csv, mp3_dir, "--dataset", ds, "--overwrite")
        raise ConfigError(f"{ds} is already imported in {layout.root} ({layout.items_index('train', ds)} exists); "
                          f"importing again makes new splits: pass overwrite=True ({again})")

    table = read_annotations(annotations_csv)
    report = MagnaReport(dataset=ds, root=layout.root, annotations=annotations_csv, mp3_dir=mp3_dir, seed=seed,
                         fractions=tuple(float(x) for x in fr), min_tag_count=min_tag_count, top_tags=top_tags,
                         min_tags=min_tags, decode_check=bool(decode_check), n_rows=table.n_rows,
                         n_bad=table.n_bad, bad_lines=list(table.bad_lines), bad_reasons=dict(table.bad_reasons),
                         n_tags_read=len(table.tag_names))

    # the clips: missing, empty and undecodable mp3s are left out
    base = mp3_dir.resolve()
    sources = [base / p for p in table.paths]
    checks = _check_clips(sources, decode_check, n_jobs, progress)
    keep = np.array([c is None for c in checks], dtype=bool)
    kinds = Counter()
    for clip_id, mp3_path, check in zip(table.ids, table.paths, checks):
        if check is not None:
            report.skipped.append((clip_id, mp3_path, check[1]))
            kinds[check[0]] += 1
    report.skipped_kinds = dict(sorted(kinds.items()))
    if not keep.any():
        first = report.skipped[0]
        raise DataMismatch(f"none of the {len(table.ids)} clips of {annotations_csv} is usable under {mp3_dir} "
                           f"(e.g. {mp3_dir / first[1]}: {first[2]}); is {mp3_dir} the folder holding 0/ ... f/?")

    # the tags: columns on too few kept clips, or outside the top_tags, are dropped
    tag_counts = table.tags[keep].sum(axis=0, dtype=np.int64)
    columns = np.flatnonzero(tag_counts >= max(min_tag_count, 1)) if min_tag_count > 0 \
        else np.arange(len(table.tag_names))
    if top_tags is not None and len(columns) > top_tags:
        ranked = sorted(columns, key=lambda j: (-tag_counts[j], j))[:top_tags]
        columns = np.array(sorted(ranked), dtype=np.int64)
    if len(columns) == 0:
        raise ConfigError(f"no tag of {annotations_csv} is on at least {min_tag_count} usable clips; "
                          f"lower min_tag_count")
    report.tag_names = [table.tag_names[j] for j in columns]
    kept = set(columns.tolist())
    report.dropped_tags = [t for j, t in enumerate(table.tag_names) if j not in kept]
    tags = table.tags[:, columns]
    n_tags_of = tags.sum(axis=1)
    report.n_untagged = int(np.sum(keep & (n_tags_of == 0)))
    few = keep & (n_tags_of < min_tags)
    report.n_few_tags = int(few.sum())
    keep &= ~few
    if not keep.any():
        raise DataMismatch(f"no clip of {annotations_csv} has at least {min_tags} of the kept tags")

    rows = np.flatnonzero(keep)
    ids = [table.ids[i] for i in rows]
    songs = [song_of(table.paths[i]) for i in rows]
    split_of_song = assign_splits(songs, fr, seed)
    members = {s: [] for s in SETS}
    for r, song in zip(rows, songs):
        members[split_of_song[song]].append(r)
    for set_ in SETS:
        members[set_].sort(key=lambda r: _natural_key(table.ids[r]))
    report.n_clips, report.n_songs = len(ids), len(split_of_song)
    report.counts = {s: len(members[s]) for s in SETS}
    report.song_counts = {s: sum(1 for v in split_of_song.values() if v == s) for s in SETS}

    # writing: the previous import's completion marks go first, the new ones last
    if overwrite:
        _remove_previous(layout, ds)
    files = report.files
    order = sorted(rows, key=lambda r: _natural_key(table.ids[r]))
    files["audio_index"] = layout.audio_index(ds)
    fileio.write_tsv(files["audio_index"], ((table.ids[r], _audio_name(sources[r], layout)) for r in order))
    files["tags"] = layout.tags_index(ds)
    names = report.tag_names
    fileio.write_tsv(files["tags"], ((table.ids[r], ",".join(names[j] for j in np.flatnonzero(tags[r])))
                                     for r in order))
    files["labels"] = layout.genre_labels(ds)
    fileio.write_lines(files["labels"], names)
    files["skipped"] = layout.import_skipped(ds)
    fileio.write_tsv(files["skipped"], report.skipped)
    for set_ in SETS:
        files[f"y_{set_}"] = layout.y(set_, FACT, len(names), ds)
        y = tags[members[set_]].astype(np.float32).reshape(len(members[set_]), len(names))
        fileio.save_npy(files[f"y_{set_}"], y)
    files["params"] = layout.import_params(ds)
    report.elapsed = time.perf_counter() - start
    fileio.write_json(files["params"], _params(report, table, sources, tag_counts))
    for set_ in SETS:  # last: their presence marks a complete import
        files[f"items_{set_}"] = layout.items_index(set_, ds)
        fileio.write_lines(files[f"items_{set_}"], [table.ids[r] for r in members[set_]])
    report.elapsed = time.perf_counter() - start
    return report


def _params(report, table, sources, tag_counts):
    from .. import __version__

    return {
        "stage": "magna import", "dataset": report.dataset, "tartarus_version": __version__,
        "annotations": str(report.annotations.resolve()), "mp3_dir": str(report.mp3_dir.resolve()),
        "delimiter": table.delimiter, "seed": report.seed, "fractions": list(report.fractions),
        "split_unit": "song (mp3 file name without -<start>-<end>.mp3; all its clips in one split)",
        "min_tag_count": report.min_tag_count, "top_tags": report.top_tags, "min_tags": report.min_tags,
        "untagged_clips": "dropped" if report.min_tags > 0 else "kept (all-zero target rows)",
        "decode_check": report.decode_check, "fact": FACT, "n_tags": report.n_tags,
        "n_tags_read": report.n_tags_read, "dropped_tags": report.dropped_tags,
        "tag_clip_counts": {t: int(n) for t, n in zip(table.tag_names, tag_counts)},
        "n_rows": report.n_rows, "n_bad_rows": report.n_bad, "bad_reasons": report.bad_reasons,
        "bad_lines": [list(b) for b in report.bad_lines],
        "n_skipped": len(report.skipped), "skipped_kinds": report.skipped_kinds,
        "n_untagged": report.n_untagged, "n_few_tags_dropped": report.n_few_tags,
        "n_clips": report.n_clips, "n_songs": report.n_songs, "clips": report.counts, "songs": report.song_counts,
        "files": {role: str(p) for role, p in report.files.items()}, "elapsed_s": round(report.elapsed, 3),
    }

