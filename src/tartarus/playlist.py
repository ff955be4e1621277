"""Seed-based playlists: the catalogue ranked by its closeness to one or more seed items.

``make_playlist(layout, "model_1", ["D042", "D007"], n=300)`` scores every item of the model's
predictions (or of a layer's embeddings, ``layer=``) against the seeds and keeps the best ``n``,
optionally only items of a whitelist and only scores above a threshold. The seeds themselves are
never in the result. A seed is an item id of the model's dataset or an audio file (run through
the model as ``tartarus similar`` does). Nothing is written here: :func:`write_playlist` saves a
playlist as TSV and M3U, and the command line decides where.

Scores (``score=``):

- ``"dot"`` (default, the original Tartarus ``scripts/recommend.py``): the seed's vector dotted
  with the unit-length candidate vector, ``seed . c / |c|``. For one seed it ranks exactly as the
  cosine does; its size, and so a useful threshold, depends on the length of the seed's vector.
- ``"cosine"``: the cosine of seed and candidate, in [-1, 1] whatever the vectors' lengths.

Several seeds (``combine=``):

- ``"mean"`` (default): one list, ranked by the mean of the seeds' scores. With ``"dot"`` this is
  the mean seed vector dotted with each unit candidate; with ``"cosine"``, the mean of the unit
  seed vectors dotted with each unit candidate.
- ``"each"``: one list per seed, as the original script writes (``seed<TAB>item<TAB>score`` rows);
  that script combines no seeds.

Like the original, an item is kept only when its score is strictly above the threshold; a list
stops at exactly ``n`` items (the original cuts at 300, or 301 in its unused per-seed writer).
Unlike the original, a whitelist here is the set of items allowed in the playlist; the original's
seeds x songs 0/1 matrix marked the songs known to go with a seed, whose mean score it took as the
threshold. ``experiments/papers.md`` lists the differences.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import fileio
from .checks import check_choice, check_int
from .errors import ConfigError, DataMismatch
from .layout import SETS, DataLayout
from .recommend import (ItemInfo, _experiment, _is_audio_path, _normalised, _top, item_vectors,
                        query_vector)

SCORES = ("dot", "cosine")
COMBINES = ("mean", "each")


@dataclass
class Playlist:
    """The ranked lists of one playlist query; ``lists`` holds ``(seed label, [Hit])`` pairs.

    One pair with ``combine="mean"`` (label: the seeds joined by ``+``), one per seed with ``"each"``.
    """
    model_id: str
    dataset: str
    seeds: list
    lists: list
    score: str = "dot"
    combine: str = "mean"
    threshold: float | None = None
    whitelist_unknown: list = field(default_factory=list)  # whitelist ids that are not candidates

    @property
    def hits(self):
        """Every hit of every list, in list order."""
        return [h for _, hits in self.lists for h in hits]


def read_whitelist(path):
    """The item ids of a whitelist file: the first column of each non-empty line (TSV or plain list)."""
    return [row[0].strip() for row in fileio.read_tsv(path) if row and row[0].strip()]


def seed_scores(seeds, candidates, score="dot"):
    """Scores ``(n_seeds, n_candidates)`` of each seed vector against each candidate vector.

    seeds : (n_seeds, d); candidates : (n_candidates, d). ``"dot"``: ``seed . c / |c|``;
    ``"cosine"``: ``seed . c / (|seed| |c|)``. A zero vector scores 0 against everything.
    """
    check_choice("score", score, SCORES)
    seeds = np.asarray(seeds, dtype=np.float64)
    return (seeds if score == "dot" else _normalised(seeds)) @ _normalised(candidates).T


def _seed_vectors(layout, model_id, seeds, layer, sets, candidates):
    """``(vectors, item ids)`` of the seeds; a seed item outside ``sets`` is looked up in the other splits."""
    others = {}  # split -> (ids, vectors), read only when a seed is not a candidate
    vectors, items = [], set()
    for seed in seeds:
        where = candidates
        if seed not in candidates[0] and not _is_audio_path(seed):
            for split in (s for s in SETS if s not in sets):
                if split not in others:
                    others[split] = item_vectors(layout, model_id, [split], layer)
                if seed in others[split][0]:
                    where = others[split]
                    break
        vector, item = query_vector(layout, model_id, seed, layer, sets, items=where)
        vectors.append(vector)
        if item is not None:
            items.add(item)
    return vectors, items


def make_playlist(layout, model_id, seeds, n=300, whitelist=None, threshold=None, sets=SETS, layer=None,
                  score="dot", combine="mean"):
    """Rank the items of ``sets`` by their score against ``seeds``; returns a :class:`Playlist`.

    Parameters
    ----------
    layout : DataLayout or path of the data root
    model_id : str, e.g. ``"model_1"``; its saved predictions are read (computed in memory if missing)
    seeds : list of item ids of the model's dataset or audio files; at least one
    n : int > 0, the most items a list holds (default 300)
    whitelist : ids allowed in the playlist (a list, or the path of a file, one id a line); None: all
    threshold : float or None; only items scoring strictly above it are kept
    sets : the candidate splits (default all); a seed item may be in any split
    layer : index or name of the layer whose embeddings are compared (default: the model's outputs)
    score : ``"dot"`` or ``"cosine"`` (see the module doc)
    combine : ``"mean"`` or ``"each"`` (see the module doc)
    """
    layout = layout if isinstance(layout, DataLayout) else DataLayout(layout)
    n = check_int("n", n)
    check_choice("combine", combine, COMBINES)
    check_choice("score", score, SCORES)
    seeds = [str(s) for s in seeds]
    if not seeds:
        raise ConfigError("a playlist needs at least one seed item (or audio file)")
    if threshold is not None and not np.isfinite(float(threshold)):
        raise ConfigError(f"threshold must be a finite number, got {threshold!r}")
    experiment = _experiment(layout, model_id)
    ids, vectors = item_vectors(layout, model_id, sets, layer)
    if len(ids) == 0:
        raise DataMismatch(f"{model_id} has no predicted item in {'/'.join(sets)}: nothing to rank")
    bad = ~np.all(np.isfinite(vectors), axis=1)
    if bad.any():
        raise DataMismatch(f"{model_id}'s vectors of {int(bad.sum())} item(s) are not finite "
                           f"(e.g. {ids[int(np.flatnonzero(bad)[0])]}): predict again or retrain")
    seed_vectors, seed_items = _seed_vectors(layout, model_id, seeds, layer, sets, (ids, vectors))

    allowed = np.array([name not in seed_items for name in ids])
    unknown = []
    if whitelist is not None:
        wanted = read_whitelist(whitelist) if isinstance(whitelist, (str, Path)) else [str(w) for w in whitelist]
        known = set(ids)
        unknown = [w for w in dict.fromkeys(wanted) if w not in known]
        if len(unknown) == len(set(wanted)):
            source = f" of {whitelist}" if isinstance(whitelist, (str, Path)) else ""
            raise DataMismatch(f"none of the {len(set(wanted))} whitelist items{source} is among {model_id}'s "
                               f"{'/'.join(sets)} items (e.g. {', '.join(ids[:3])})")
        allowed &= np.isin(np.array(ids, dtype=object), np.array(sorted(set(wanted)), dtype=object))

    per_seed = seed_scores(np.stack(seed_vectors), vectors, score)
    rows = [("+".join(seeds), per_seed.mean(axis=0))] if combine == "mean" else list(zip(seeds, per_seed))
    info = ItemInfo(layout, experiment.dataset.dataset)
    lists = []
    for label, scores in rows:
        keep = allowed & (scores > threshold if threshold is not None else True)
        masked = np.where(keep, scores, -np.inf)
        lists.append((label, [info.hit(ids[r], scores[r]) for r in _top(masked, n) if np.isfinite(masked[r])]))
    return Playlist(model_id, experiment.dataset.dataset, seeds, lists, score, combine,
                    None if threshold is None else float(threshold), unknown)


def audio_paths(layout, entry):
    """``{item id: audio file path}`` from the dataset's audio index (empty when there is none).

    entry : the dataset's DatasetEntry (its ``audio_folder`` and ``index_file``).
    """
    from .audio.runner import audio_index_path, read_audio_index
    if not audio_index_path(layout, entry).exists():
        return {}
    return dict(read_audio_index(layout, entry))


def m3u_text(playlist, hits, audio, base=None):
    """An extended M3U playlist of ``hits``: ``#EXTINF`` with the item id and score, then the audio path.

    audio : ``{item id: path}``; an item without a path gets a comment line instead (players skip it).
    base : the folder the M3U file will be in; paths are written relative to it (absolute without it,
    or when no relative path exists).
    """
    lines = ["#EXTM3U", f"# tartarus playlist {playlist.model_id}: seeds {', '.join(playlist.seeds)}; "
                        f"score {playlist.score}"
                        + (f", above {playlist.threshold:g}" if playlist.threshold is not None else "")]
    for h in hits:
        path = audio.get(h.id)
        if path is None:
            lines.append(f"# {h.id} ({h.score:.6f}): no audio file in the dataset's audio index")
            continue
        path = Path(path).absolute()
        if base is not None:
            try:
                path = Path(os.path.relpath(path, Path(base).absolute()))
            except ValueError:  # another drive (Windows): keep it absolute
                pass
        lines += [f"#EXTINF:-1,{h.id} ({h.score:.6f})", path.as_posix()]
    return "\n".join(lines) + "\n"


def playlist_paths(layout, playlist, out=None):
    """``(tsv path, [m3u path per list])`` of a playlist.

    Default: ``layout.playlist`` of the first seed for the table and, per list, of its seed for the
    M3U (the first seed for a combined list). ``out``: a path stem, as ``DataLayout.playlist_at``
    spells it.
    """
    if out is None:
        m3u_seeds = playlist.seeds[:1] if len(playlist.lists) == 1 else playlist.seeds
        return (layout.playlist(playlist.model_id, playlist.seeds[0], "tsv"),
                [layout.playlist(playlist.model_id, s, "m3u") for s in m3u_seeds])
    return layout.playlist_at(out, len(playlist.lists))


def write_playlist(playlist, tsv_path, m3u_paths, audio):
    """Write ``playlist`` atomically: one TSV of every list, one M3U per list.

    The TSV has a header and ``seed, rank, item, score, set, audio`` rows (``seed`` is the list's
    label); ``m3u_paths`` gives one path per list of ``playlist.lists``; ``audio`` maps item ids to
    audio files (see :func:`audio_paths`). Returns the paths written.
    """
    if len(m3u_paths) != len(playlist.lists):
        raise ValueError(f"{len(playlist.lists)} list(s) but {len(m3u_paths)} M3U path(s)")
    rows = [("seed", "rank", "item", "score", "set", "audio")]
    for label, hits in playlist.lists:
        rows += [(label, rank, h.id, f"{h.score:.6f}", h.set, str(audio.get(h.id, "")))
                 for rank, h in enumerate(hits, 1)]
    fileio.write_tsv(tsv_path, rows)
    for (_, hits), path in zip(playlist.lists, m3u_paths):
        fileio.write_text(path, m3u_text(playlist, hits, audio, Path(path).parent))
    return [Path(tsv_path), *map(Path, m3u_paths)]
