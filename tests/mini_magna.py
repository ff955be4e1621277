"""A miniature MagnaTagATune for the tests: the published file format, synthetic mp3 clips.

``make_mini_magna(root)`` writes ``root/annotations_final.csv`` (tab-separated, quoted, as the real
one) and ``root/mp3/{0..f}/*.mp3``, clips whose timbre follows their song's tag group, with one empty
and one corrupt mp3 among them, and returns a :class:`MiniMagna` that holds the facts an import of
it is checked against (tags per clip, song per clip, which clips are broken). A test fixture, not part
of the library: ``tartarus.datasets.magna`` imports the real files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from tartarus import fileio
from tartarus.datasets.magna import ID_COLUMN, PATH_COLUMN, song_of

__all__ = ["MINI_TAGS", "MINI_GROUPS", "MiniMagna", "make_mini_magna"]

MINI_TAGS = ("no voice", "guitar", "classical", "slow", "techno", "strings", "drums", "electronic",
             "rock", "fast", "beat", "violin", "loud", "synth", "hard rock", "ambient")
"""Tag columns of the miniature, in file order (real MagnaTagATune names; ``ambient`` is on no clip)."""

MINI_GROUPS = {
    "classical": ("classical", "strings", "violin", "slow", "no voice"),
    "techno": ("techno", "electronic", "beat", "fast", "synth"),
    "rock": ("rock", "guitar", "hard rock", "loud", "drums"),
}
"""Tag group -> its tags; a song's clips draw their tags from its group, their sound from its timbre."""


@dataclass
class MiniMagna:
    """What ``make_mini_magna`` wrote: the paths to import and the facts to check an import against.

    ``clips``: ``(clip_id, mp3_path, tags)`` per CSV row, in file order; ``groups``: song -> tag group.
    """
    root: Path
    annotations: Path
    mp3_dir: Path
    tag_names: tuple
    clips: list
    groups: dict
    empty_clip: str
    corrupt_clip: str
    untagged_clip: str

    @property
    def tags(self):
        """``{clip_id: [tag, ...]}`` in column order."""
        return {c: [t for t in self.tag_names if t in tags] for c, _, tags in self.clips}

    @property
    def songs(self):
        """``{clip_id: song}`` by :func:`song_of`."""
        return {c: song_of(p) for c, p, _ in self.clips}


def _mini_clip(rng, group, seconds, sr):
    """A mono float32 clip whose timbre and rhythm follow ``group`` (cheap numpy synthesis)."""
    n = int(round(seconds * sr))
    t = np.arange(n) / sr
    if group == "classical":  # slow bowed notes: harmonic partials, vibrato, soft attacks
        step = rng.uniform(0.7, 1.1)
        notes = 2.0 ** (rng.choice([0, 2, 4, 5, 7, 9, 12], size=int(seconds / step) + 1) / 12.0)
        f = rng.uniform(220, 330) * notes[(t / step).astype(int)] * (1 + 0.004 * np.sin(2 * np.pi * 5.5 * t))
        phase = 2 * np.pi * np.cumsum(f) / sr
        y = sum(np.sin(h * phase) / h ** 1.5 for h in range(1, 7))
        since = t % step
        y *= (1 - np.exp(-since / 0.15)) * np.exp(-since / 2.0)
    elif group == "techno":  # four-on-the-floor kick, eighth-note saw bass, off-beat hats
        beat = 60.0 / rng.uniform(124, 136)
        since = t % beat
        kick = np.sin(2 * np.pi * (50 * since + 2.5 * (1 - np.exp(-since / 0.025)))) * np.exp(-since / 0.12)
        bass_f = rng.uniform(50, 70) * 2.0 ** (rng.choice([0, 0, 3, 7], size=int(seconds / (beat / 2)) + 1)
                                               [(t / (beat / 2)).astype(int)] / 12.0)
        saw = 2 * ((np.cumsum(bass_f) / sr) % 1.0) - 1
        off = (t + beat / 2) % beat
        hats = rng.uniform(-1, 1, n) * np.exp(-off / 0.01) * 0.3
        y = kick + 0.4 * saw * np.exp(-(t % (beat / 2)) / 0.1) + hats
    else:  # rock: distorted power chords, snare noise on 2 and 4
        beat = 60.0 / rng.uniform(100, 120)
        root = rng.uniform(82, 110) * 2.0 ** (rng.choice([0, 3, 5, 7], size=int(seconds / (2 * beat)) + 1)
                                              [(t / (2 * beat)).astype(int)] / 12.0)
        chord = sum(2 * ((np.cumsum(root * r) / sr) % 1.0) - 1 for r in (1.0, 1.5, 2.0))
        y = np.tanh(4.0 * chord / 3.0)
        bar = t % (2 * beat)
        y += rng.uniform(-1, 1, n) * np.exp(-(bar - beat).clip(0) / 0.05) * (bar >= beat) * 0.8
    y = y + rng.normal(0, 0.01, n)
    return (0.8 * y / (np.max(np.abs(y)) + 1e-9)).astype(np.float32)


def make_mini_magna(root, n_songs=9, clips_per_song=3, seed=0, seconds=3.0, sr=22050):
    """Write a miniature MagnaTagATune under ``root``; return a :class:`MiniMagna`.

    ``root/annotations_final.csv`` has the real format (tab-separated, every header cell and value
    double-quoted, ``clip_id``, the :data:`MINI_TAGS` columns, ``mp3_path``; ids spaced as the real
    ones, 2, 6, 10 ...); ``root/mp3/{0..f}/{artist}-{album}-{track}-{title}-{start}-{end}.mp3`` are
    mono mp3 clips of ``seconds`` at ``sr`` Hz. Songs cycle over the :data:`MINI_GROUPS`; each clip
    has 2 to 4 of its group's tags, except one clip with none (``untagged_clip``). The second
    clip of the second song is an empty file (``empty_clip``), the first clip of the third song
    is garbage bytes (``corrupt_clip``). One song title ends in ``-part-2`` (a song name with a
    number in it). Deterministic for the same arguments.
    """
    if n_songs < 3 or clips_per_song < 2:
        raise ValueError(f"a mini MagnaTagATune needs n_songs >= 3 and clips_per_song >= 2, "
                         f"got {n_songs!r}, {clips_per_song!r}")
    root = Path(root)
    mp3_dir = root / "mp3"
    rng = np.random.default_rng(seed)
    names = list(MINI_GROUPS)
    clips, groups = [], {}
    empty_at, corrupt_at = (1, 1), (2, 0)
    untagged_at = (min(3, n_songs - 1), clips_per_song - 1)
    special = {}
    for s in range(n_songs):
        group = names[s % len(names)]
        title = f"{group}_piece_{s}" + ("-part-2" if s == 4 else "")
        song = f"mini_{group}_band_{s}-{group}_album_{s // 3}-{s % 3 + 1:02d}-{title}"
        groups[song] = group
        folder = "0123456789abcdef"[s % 16]
        for k in range(clips_per_song):
            clip_id = str(2 + 4 * len(clips))
            begin = int(round(k * 29.1))
            mp3_path = f"{folder}/{song}-{begin}-{begin + 29}.mp3"
            pool = MINI_GROUPS[group]
            chosen = () if (s, k) == untagged_at else \
                tuple(pool[j] for j in sorted(rng.choice(len(pool), size=int(rng.integers(2, 5)), replace=False)))
            path = mp3_dir / mp3_path
            path.parent.mkdir(parents=True, exist_ok=True)
            if (s, k) == empty_at:
                fileio.write_text(path, "")
                special["empty"] = clip_id
            elif (s, k) == corrupt_at:
                fileio.write_text(path, "this is not an mp3 file, only text where audio should be\n" * 40)
                special["corrupt"] = clip_id
            else:
                y = _mini_clip(np.random.default_rng([seed, len(clips)]), group, seconds, sr)
                with fileio.atomic_path(path) as tmp:
                    sf.write(tmp, y, sr, format="MP3")
            if (s, k) == untagged_at:
                special["untagged"] = clip_id
            clips.append((clip_id, mp3_path, chosen))

    header = [ID_COLUMN, *MINI_TAGS, PATH_COLUMN]
    lines = ["\t".join(f'"{c}"' for c in header)]
    for clip_id, mp3_path, chosen in clips:
        values = [clip_id, *("1" if t in chosen else "0" for t in MINI_TAGS), mp3_path]
        lines.append("\t".join(f'"{v}"' for v in values))
    annotations = root / "annotations_final.csv"
    fileio.write_lines(annotations, lines)
    return MiniMagna(root=root, annotations=annotations, mp3_dir=mp3_dir, tag_names=MINI_TAGS, clips=clips,
                     groups=groups, empty_clip=special["empty"], corrupt_clip=special["corrupt"],
                     untagged_clip=special["untagged"])
