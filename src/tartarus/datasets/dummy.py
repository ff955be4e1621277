"""The embedded dummy dataset ``DUMMY``: a small synthetic multimodal music collection.

``generate_dummy(root)`` writes, deterministically from a seed, everything the experiments of the
dummy family read, in the layout of a real data root (see ``tartarus.layout``):

* three genres (``techno``, ``folk``, ``ambient``), balanced, split 60/20/20 per class into
  train/val/test item indexes with one-hot ``y_{set}_class_3_DUMMY.npy`` targets;
* audio: mono 16-bit WAV clips whose genre is audible through rhythm (onset pattern and
  percussion), timbre (waveform, envelope, noise texture) and pitch range;
* text: a few sentences per item whose vocabulary depends on the genre (with accented words), or,
  for weak-text items, generic words plus one word of another genre;
* tags: genre-driven tag sets;
* interactions: users who mostly listen to one or two preferred genres, with play counts.

The evidence is deliberately complementary: in every split one item in five has *weak audio*
(two or all three of its audio aspects borrowed from a decoy genre) and strong text, and another
one in five, spread evenly over the genres, has strong audio and *weak text* (no word of its own
genre, one of the decoy's). No item is weak in both. These hidden per-item strengths are not
written to any file; ``plan_dummy(seed, n_items)`` recomputes them from the seed, so tests and
later experiments can check that fusing modalities helps where one of them is weak.

Generation is vectorised numpy and takes a few seconds for the default 60 clips of 20 s. The same
arguments give byte-identical files on one machine; numpy's vectorised float32 math may round a
few samples differently on another CPU, so compare audio across machines by content, not bytes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import lfilter

from .. import fileio
from ..checks import check_int
from ..errors import ConfigError
from ..layout import SETS, DataLayout
from ..splits import cut, split_sizes

DATASET = "DUMMY"
CLASSES = ("techno", "folk", "ambient")
FACT = "class"
SPLIT_FRACTIONS = {"train": 0.6, "val": 0.2, "test": 0.2}  # of each class's items
WEAK_AUDIO_FRACTION = 0.2
WEAK_TEXT_FRACTION = 0.2  # of each split, taken among the strong-audio items
WEAK_TEXT_BELOW = 0.5  # text_strength below this: a weak (misleading) text
WEAK_TEXT_DECOY_WORDS = 1  # a weak text's only topical words, all of the decoy class

# random streams: each part of the dataset draws from its own generator, so that changing one
# parameter (say n_users) leaves the other parts byte-identical
_PLAN, _AUDIO, _TEXT, _TAGS, _USERS = range(1, 6)

# --------------------------------------------------------------------------------------- audio
# per class: (lowest, highest) MIDI note of the melodic part
PITCH_RANGES = {0: (31, 47), 1: (55, 72), 2: (76, 93)}
SCALE = np.array([0, 3, 5, 7, 10])  # minor pentatonic

# --------------------------------------------------------------------------------------- text
CLASS_WORDS = {
    0: ["techno", "synthesizer", "bassline", "club", "warehouse", "rave", "kick", "drum-machine",
        "strobe", "dancefloor", "électronique", "Berlin", "loop", "sequencer", "DJ", "remix",
        "acid", "pulsating", "hypnotic", "après-club"],
    1: ["folk", "acoustic", "guitar", "fiddle", "banjo", "ballad", "campfire", "village",
        "storyteller", "harvest", "mandolin", "canción", "fado", "tradição", "harmonica", "porch",
        "wooden", "unplugged", "singalong", "hillside"],
    2: ["ambient", "drone", "atmospheric", "ethereal", "pads", "reverb", "meditation", "glacial",
        "texture", "rêverie", "spacious", "tranquil", "shimmering", "horizon", "floating", "mist",
        "stillness", "soundscape", "océan", "slow-motion"],
}
SHARED_WORDS = ["song", "track", "album", "record", "artist", "music", "sound", "listen", "release",
                "night", "mood", "favourite", "café", "naïve", "beautiful", "feels", "really",
                "new", "old", "first", "years", "heard", "live", "voice", "déjà-vu", "summer"]
FUNCTION_WORDS = ["the", "a", "and", "with", "of", "in", "this", "it", "is", "was", "my", "for",
                  "on", "to", "like"]

# --------------------------------------------------------------------------------------- users
POPULARITY_SIGMA = 0.3  # log-normal spread of the items' popularity
PREFERRED_SHARE = 0.95  # of a user's listening that goes to items of the preferred genres

# --------------------------------------------------------------------------------------- tags
CLASS_TAGS = {
    0: ["electronic", "techno", "dance", "club", "energetic", "instrumental", "beats"],
    1: ["folk", "acoustic", "guitar", "singer-songwriter", "mellow", "vocal", "traditional"],
    2: ["ambient", "chillout", "atmospheric", "relaxing", "instrumental", "electronic", "calm"],
}
GENERIC_TAGS = ["favourite", "seen live", "00s", "10s", "female vocalists", "male vocalists"]


def _rng(seed, stream, *more):
    return np.random.default_rng([seed, stream, *more])


# ----------------------------------------------------------------------------------- the plan
@dataclass(frozen=True)
class DummyPlan:
    """The hidden per-item facts of a dummy dataset, recomputed from the seed (never written).

    All arrays have one entry per item, aligned with ``ids``. ``rhythm``, ``timbre`` and ``pitch``
    are the classes each audio aspect was drawn from (the true class, or ``decoy`` for weak-audio
    items); ``audio_strength`` and ``text_strength`` lie in [0, 1].
    """
    seed: int
    ids: tuple
    classes: np.ndarray
    split: np.ndarray
    decoy: np.ndarray
    audio_strength: np.ndarray
    text_strength: np.ndarray
    rhythm: np.ndarray
    timbre: np.ndarray
    pitch: np.ndarray
    class_names: tuple = CLASSES

    @property
    def n_items(self):
        return len(self.ids)

    def items(self, set_):
        """Ids of one split, in id order."""
        return [i for i, s in zip(self.ids, self.split) if s == set_]

    def weak_audio(self):
        """Boolean mask of the items whose audio cues are weak or misleading."""
        return self.audio_strength < 0.6

    def weak_text(self):
        """Boolean mask of the items whose text is uninformative or misleading."""
        return self.text_strength < WEAK_TEXT_BELOW


def plan_dummy(seed=0, n_items=60):
    """Classes, splits and hidden cue strengths of the dummy dataset for ``seed`` and ``n_items``."""
    seed = _check_seed(seed)
    n_classes = len(CLASSES)
    if not isinstance(n_items, (int, np.integer)) or n_items < 5 * n_classes:
        raise ConfigError(f"n_items must be an integer >= {5 * n_classes} "
                          f"(5 per class, so that every split has each class), got {n_items!r}")
    n_items = int(n_items)
    rng = _rng(seed, _PLAN)
    width = max(3, len(str(n_items)))
    ids = tuple(f"D{i + 1:0{width}d}" for i in range(n_items))

    per_class = [n_items // n_classes + (c < n_items % n_classes) for c in range(n_classes)]
    classes = rng.permutation(np.repeat(np.arange(n_classes), per_class))

    # per class, so that every split has each class: a permutation from the plan's stream, cut
    split = np.empty(n_items, dtype=object)
    fractions = tuple(SPLIT_FRACTIONS[s] for s in SETS)
    for c in range(n_classes):
        members = rng.permutation(np.flatnonzero(classes == c))
        _, n_val, n_test = split_sizes(len(members), fractions, at_least=1)
        for set_, rows in cut(members, n_val, n_test).items():
            split[rows] = set_
    split = split.astype(str)

    decoy = (classes + rng.integers(1, n_classes, size=n_items)) % n_classes
    # the same share of weak-audio items in every split, so that test scores are comparable
    weak = np.zeros(n_items, dtype=bool)
    for set_ in SETS:
        members = np.flatnonzero(split == set_)
        weak[rng.choice(members, int(round(WEAK_AUDIO_FRACTION * len(members))), replace=False)] = True
    audio_strength = np.where(weak, rng.uniform(0.15, 0.5, n_items), rng.uniform(0.7, 1.0, n_items))
    # weak text: in every split the same share of items, all with strong audio (so that audio and
    # text never fail on the same item) and spread evenly over the classes (so that a vague text
    # says nothing about the class): round r takes each class's r-th item by ``order``
    order = rng.random(n_items)
    weak_text = np.zeros(n_items, dtype=bool)
    for set_ in SETS:
        members = np.flatnonzero((split == set_) & ~weak)
        rounds = np.empty(len(members))
        for c in range(n_classes):
            in_class = classes[members] == c
            rounds[in_class] = np.argsort(np.argsort(order[members][in_class]))
        n_weak = int(round(WEAK_TEXT_FRACTION * np.sum(split == set_)))
        weak_text[members[np.lexsort((order[members], rounds))[:n_weak]]] = True
    text_strength = np.where(weak, rng.uniform(0.7, 1.0, n_items),
                             np.where(weak_text, rng.uniform(0.1, 0.4, n_items),
                                      rng.uniform(0.55, 1.0, n_items)))
    # a weak-audio item borrows two of its three audio aspects (rhythm, timbre, pitch; which ones
    # at random) from its decoy class, all three when its strength is below 0.3
    n_flip = np.where(weak, np.where(audio_strength < 0.3, 3, 2), 0)
    rank = np.argsort(np.argsort(rng.random((n_items, 3)), axis=1), axis=1)
    flip = rank < n_flip[:, None]
    aspects = [np.where(flip[:, j], decoy, classes) for j in range(3)]
    return DummyPlan(seed=seed, ids=ids, classes=classes, split=split, decoy=decoy,
                     audio_strength=audio_strength, text_strength=text_strength,
                     rhythm=aspects[0], timbre=aspects[1], pitch=aspects[2])


def _check_seed(seed):
    return check_int("seed", seed, minimum=0)


# ----------------------------------------------------------------------------------- audio
def _midi_hz(m):
    return 440.0 * 2.0 ** ((np.asarray(m, dtype=float) - 69.0) / 12.0)


def _onepole_lowpass(x, cutoff, sr):
    a = np.exp(-2.0 * np.pi * cutoff / sr)
    return lfilter([1.0 - a], [1.0, -a], x)


def _place(out, onsets, snippet):
    """Add ``snippet`` into ``out`` at each onset (sample index), cut at the end of ``out``."""
    if len(onsets) == 0:
        return
    idx = onsets[:, None] + np.arange(len(snippet))[None, :]
    keep = idx < len(out)
    np.add.at(out, idx[keep], np.broadcast_to(snippet, idx.shape)[keep])


def _rhythm(rng, rhythm, seconds):
    """Note onsets (s) and percussion hits {name: onsets (s)} for one rhythm class."""
    if rhythm == 0:  # techno: steady four-on-the-floor, notes on every eighth, hats off-beat
        beat = 60.0 / rng.uniform(120, 136)
        beats = np.arange(0.0, seconds, beat)
        notes = np.arange(0.0, seconds, beat / 2)
        notes = notes + rng.normal(0, 0.003, len(notes))
        return np.clip(notes, 0, None), {"kick": beats, "hat": beats + beat / 2}
    if rhythm == 1:  # folk: a human eighth-note pattern, repeated per bar, with a soft tap on 2 and 4
        beat = 60.0 / rng.uniform(84, 108)
        pattern = rng.random(8) < 0.65
        pattern[0] = True
        grid = np.arange(0.0, seconds, beat / 2)
        notes = grid[pattern[np.arange(len(grid)) % 8]]
        notes = notes + rng.normal(0, 0.015, len(notes))
        beats = np.arange(0.0, seconds, beat)
        return np.clip(notes, 0, None), {"tap": beats[1::2]}
    # ambient: few, irregular, long notes; no percussion
    rate = rng.uniform(0.25, 0.5)
    gaps = rng.exponential(1.0 / rate, int(seconds * rate * 3) + 4)
    notes = np.concatenate([[0.0], np.cumsum(gaps)])
    return notes[notes < seconds], {}


def _melody(rng, pitch, n_notes):
    """MIDI notes: a random walk on a pentatonic scale within the pitch class's range."""
    lo, hi = PITCH_RANGES[pitch]
    root = rng.integers(lo, lo + 12)
    degrees = (root + (SCALE[None, :] + 12 * np.arange(-1, 4)[:, None]).ravel())
    degrees = np.sort(degrees[(degrees >= lo) & (degrees <= hi)])
    pos = rng.integers(0, len(degrees))
    steps = rng.choice([-2, -1, 0, 1, 2], size=n_notes, p=[0.15, 0.3, 0.1, 0.3, 0.15])
    out = np.empty(n_notes, dtype=int)
    for i, s in enumerate(steps):  # reflect at the range ends (cheap: a few dozen notes)
        pos = pos + s
        if pos < 0 or pos >= len(degrees):
            pos = pos - 2 * s
        pos = int(np.clip(pos, 0, len(degrees) - 1))
        out[i] = degrees[pos]
    return out


def _noise(rng, n):
    """Uniform white noise with unit variance (float32; much cheaper than Gaussian draws)."""
    return (rng.random(n, dtype=np.float32) - np.float32(0.5)) * np.float32(np.sqrt(12.0))


def synth_clip(rng, rhythm, timbre, pitch, noise_level, seconds=20.0, sr=22050):
    """One mono clip (float32 in [-1, 1]) with the given rhythm, timbre and pitch classes.

    The work is float32 element-wise numpy over the whole clip (phases are accumulated in float64
    and wrapped to one cycle before the sines), so a 20 s clip takes a few tens of milliseconds.
    """
    f32 = np.float32
    two_pi = f32(2 * np.pi)
    n = int(round(seconds * sr))
    t = np.arange(n, dtype=f32) * f32(1.0 / sr)
    note_times, hits = _rhythm(rng, rhythm, seconds)
    onsets = np.unique(np.round(note_times * sr).astype(np.int64))
    onsets = onsets[onsets < n]
    if len(onsets) == 0 or onsets[0] != 0:
        onsets = np.concatenate([[0], onsets])
    notes = _melody(rng, pitch, len(onsets))

    # the note sounding at each sample and the time since it started
    starts = np.zeros(n, dtype=np.int32)
    starts[onsets[1:]] = 1
    which = np.cumsum(starts)
    since = t - (onsets / sr).astype(f32)[which]
    vibrato = f32(1.0) + f32(0.003) * np.sin(two_pi * f32(rng.uniform(3, 6)) * t)
    cycles = np.cumsum((_midi_hz(notes).astype(f32)[which] * vibrato).astype(np.float64)) / sr
    frac = (cycles - np.floor(cycles)).astype(f32)  # position within the cycle, [0, 1)
    phase = two_pi * frac

    def decay(tau):
        return np.exp(since * f32(-1.0 / tau))

    if timbre == 0:  # bright sawtooth plus some square, short staccato envelope, hiss
        wave = f32(1.4) * frac - f32(0.7) + f32(0.3) * np.sign(np.sin(phase))
        env = (f32(1) - decay(0.004)) * decay(rng.uniform(0.08, 0.18))
        texture = np.diff(_noise(rng, n + 1)) * f32(0.06)
    elif timbre == 1:  # plucked string: a few decaying harmonics, clean
        bright = rng.uniform(1.2, 1.8)
        wave = sum(np.sin(f32(h) * phase) * f32(1.0 / h ** bright) for h in (1, 2, 3, 4))
        env = (f32(1) - decay(0.003)) * decay(rng.uniform(0.25, 0.5))
        texture = f32(0.0)
    else:  # sine pad with a detuned partner, slow swell, airy low noise
        detuned = cycles * 1.004
        detuned = (detuned - np.floor(detuned)).astype(f32) * two_pi
        wave = np.sin(phase) + f32(0.7) * np.sin(detuned) + f32(0.12) * np.sin(f32(2) * phase)
        env = (f32(1) - decay(rng.uniform(0.2, 0.5))) * decay(rng.uniform(1.5, 3.0))
        air = _onepole_lowpass(_noise(rng, n), 400.0, sr).astype(f32)
        texture = f32(1.5) * air * (f32(0.6) + f32(0.4) * np.sin(two_pi * f32(rng.uniform(0.05, 0.15)) * t))
    signal = wave * env
    signal = signal * f32(0.25 / (np.sqrt(np.mean(signal ** 2, dtype=np.float64)) + 1e-9)) + texture * f32(0.25)

    for name, times in hits.items():
        at = np.round(times * sr).astype(np.int64)
        at = at[(at >= 0) & (at < n)]
        if name == "kick":
            tk = np.arange(int(0.18 * sr)) / sr
            f = 50 + 100 * np.exp(-tk / 0.03)
            snippet = np.sin(2 * np.pi * np.cumsum(f) / sr) * np.exp(-tk / 0.12) * 0.9
        elif name == "hat":
            tk = np.arange(int(0.05 * sr)) / sr
            snippet = np.diff(_noise(rng, len(tk) + 1)) * np.exp(-tk / 0.012) * 0.25
        else:  # tap
            tk = np.arange(int(0.08 * sr)) / sr
            snippet = _onepole_lowpass(_noise(rng, len(tk)), 1500.0, sr) * np.exp(-tk / 0.02) * 0.6
        _place(signal, at, snippet.astype(f32))

    rms = np.sqrt(np.mean(signal ** 2, dtype=np.float64)) + 1e-9
    signal += _noise(rng, n) * f32(noise_level * rms)
    signal *= f32(rng.uniform(0.5, 0.9) / (np.max(np.abs(signal)) + 1e-9))
    return signal


# ----------------------------------------------------------------------------------- text
def make_text(rng, cls, decoy, strength):
    """A few sentences of function, shared and topical words; topical words name ``cls`` or ``decoy``.

    A strong text (``strength >= WEAK_TEXT_BELOW``) has many topical words (a third to a half of
    its words, the more the stronger), 80 % to all of them of its own class. A weak text is made
    of function and shared words except for ``WEAK_TEXT_DECOY_WORDS`` topical words, all of the
    decoy class: it says nothing of its own class and leans, faintly, the wrong way.
    """
    lengths = rng.integers(7, 15, size=rng.integers(3, 7))  # words per sentence
    n_words = int(lengths.sum())
    if strength >= WEAK_TEXT_BELOW:
        topical = rng.random(n_words) < 0.12 + 0.38 * strength
        own = rng.random(n_words) < 0.55 + 0.45 * strength
    else:
        topical = np.zeros(n_words, dtype=bool)
        topical[rng.choice(n_words, size=min(WEAK_TEXT_DECOY_WORDS, n_words), replace=False)] = True
        own = np.zeros(n_words, dtype=bool)
    plain = rng.random(n_words) < 0.4  # a function word, else a shared word
    pick = rng.random(n_words)
    words = []
    for k in range(n_words):
        if topical[k]:
            source = CLASS_WORDS[cls] if own[k] else CLASS_WORDS[decoy]
        else:
            source = FUNCTION_WORDS if plain[k] else SHARED_WORDS
        words.append(source[int(pick[k] * len(source))])
    ends = rng.random(len(lengths)) < 0.85
    sentences = []
    for start, length, full_stop in zip(np.cumsum(lengths) - lengths, lengths, ends):
        sentence = words[start:start + length]
        sentence[0] = sentence[0][:1].upper() + sentence[0][1:]
        sentences.append(" ".join(sentence) + ("." if full_stop else "!"))
    return " ".join(sentences) + "\n"


def make_tags(rng, cls):
    """2 to 5 distinct tags, mostly from the class's tag list."""
    n = int(rng.integers(2, 6))
    tags = []
    while len(tags) < n:
        if rng.random() < 0.8:
            pool = CLASS_TAGS[cls]
        elif rng.random() < 0.5:
            pool = GENERIC_TAGS
        else:
            pool = CLASS_TAGS[(cls + rng.integers(1, len(CLASSES))) % len(CLASSES)]
        tag = pool[rng.integers(len(pool))]
        if tag not in tags:
            tags.append(tag)
    return tags


# ----------------------------------------------------------------------------------- users
def make_interactions(seed, plan, n_users):
    """Rows ``(user, item, count)``: each user mostly plays items of 1-2 preferred classes."""
    rng = _rng(seed, _USERS)
    n_items, n_classes = plan.n_items, len(CLASSES)
    width = max(3, len(str(n_users)))
    users = [f"U{u + 1:0{width}d}" for u in range(n_users)]
    # taste, not item popularity, drives listening: the genre is what a cold-start model can hear
    # or read, so a popularity ranking must not be able to beat a model that gets the genre right
    popularity = rng.lognormal(0.0, POPULARITY_SIGMA, n_items)
    counts = {}
    preferred = []
    for u in range(n_users):
        n_pref = 1 if rng.random() < 0.6 else 2
        pref = rng.choice(n_classes, size=n_pref, replace=False)
        preferred.append(set(int(c) for c in pref))
        liked = np.isin(plan.classes, pref)
        weight = popularity * np.where(liked, PREFERRED_SHARE / liked.sum(),
                                       (1.0 - PREFERRED_SHARE) / max(1, (~liked).sum()))
        n_listen = int(min(n_items, 8 + rng.poisson(10)))
        items = rng.choice(n_items, size=n_listen, replace=False, p=weight / weight.sum())
        activity = rng.uniform(0.5, 2.0)
        plays = 1 + rng.poisson(activity * np.where(liked[items], 3.0, 0.7))
        for i, c in zip(items, plays):
            counts[(u, int(i))] = int(c)
    # every item gets at least one listener, a user who prefers its class
    heard = {i for _, i in counts}
    for i in range(n_items):
        if i not in heard:
            fans = [u for u in range(n_users) if int(plan.classes[i]) in preferred[u]] or list(range(n_users))
            counts[(fans[int(rng.integers(len(fans)))], i)] = 1
    return [(users[u], plan.ids[i], c) for (u, i), c in sorted(counts.items())]


# ----------------------------------------------------------------------------------- writing
@dataclass
class DummyReport:
    """What ``generate_dummy`` did (or found)."""
    root: Path
    dataset: str = DATASET
    created: bool = True
    n_items: int = 0
    n_classes: int = len(CLASSES)
    n_train: int = 0
    n_val: int = 0
    n_test: int = 0
    n_users: int = 0
    n_interactions: int = 0
    n_tags: int = 0
    clip_seconds: float = 0.0
    sr: int = 0
    seed: int | None = None
    elapsed: float = 0.0
    files: list = field(default_factory=list)

    def summary(self):
        split = f"{self.n_train} train / {self.n_val} val / {self.n_test} test"
        if not self.created:
            return (f"{self.dataset} already present in {self.root} ({self.n_items} items: {split}); "
                    f"nothing written (use --overwrite to rebuild)")
        return (f"{self.dataset} written to {self.root}: {self.n_items} items in {self.n_classes} classes "
                f"({split}), {self.clip_seconds:g} s clips at {self.sr} Hz, texts, {self.n_tags} tags, "
                f"{self.n_interactions} plays by {self.n_users} users (seed {self.seed}, "
                f"{self.elapsed:.1f} s)")


def dummy_exists(layout, dataset=DATASET):
    """True when every split's items index of the dataset is present."""
    return all(layout.items_index(s, dataset).exists() for s in SETS)


def generate_dummy(root, seed=0, n_items=60, n_users=400, clip_seconds=20.0, sr=22050, overwrite=False):
    """Write the dummy dataset ``DUMMY`` under data root ``root`` (a path or a DataLayout).

    Deterministic: the same arguments give byte-identical files. If the dataset is already there
    (its three items index files exist) and not ``overwrite``, nothing is written and the report
    says so. The items index files are written last, so an interrupted run is redone next time.
    """
    layout = root if isinstance(root, DataLayout) else DataLayout(root)
    if dummy_exists(layout) and not overwrite:
        return _existing_report(layout)
    seed = _check_seed(seed)
    if n_users < 1:
        raise ConfigError(f"n_users must be >= 1, got {n_users!r}")
    if clip_seconds <= 0 or sr <= 0:
        raise ConfigError(f"clip_seconds and sr must be positive, got {clip_seconds!r}, {sr!r}")
    start = time.perf_counter()
    plan = plan_dummy(seed, n_items)
    files = []

    audio_rows, text_rows, tag_rows = [], [], []
    all_tags = set()
    for i, item in enumerate(plan.ids):
        c, d = int(plan.classes[i]), int(plan.decoy[i])
        rng = _rng(seed, _AUDIO, i)
        # the noise level is independent of the hidden audio strength, so weakness is not audible
        noise_level = rng.uniform(0.05, 0.3)
        clip = synth_clip(rng, int(plan.rhythm[i]), int(plan.timbre[i]), int(plan.pitch[i]), noise_level,
                          clip_seconds, sr)
        path = layout.dummy_audio(item)
        with fileio.atomic_path(path) as tmp:
            sf.write(tmp, clip, sr, subtype="PCM_16", format="WAV")
        files.append(path)
        audio_rows.append((item, path.name))

        path = layout.dummy_text(item)
        fileio.write_text(path, make_text(_rng(seed, _TEXT, i), c, d, plan.text_strength[i]))
        files.append(path)
        text_rows.append((item, path.name))

        tags = make_tags(_rng(seed, _TAGS, i), c)
        all_tags.update(tags)
        tag_rows.append((item, ",".join(tags)))

    interactions = make_interactions(seed, plan, n_users)
    for path, rows in ((layout.audio_index(DATASET), audio_rows), (layout.text_index(DATASET), text_rows),
                       (layout.tags_index(DATASET), tag_rows), (layout.interactions(DATASET), interactions)):
        fileio.write_tsv(path, rows)
        files.append(path)

    fileio.write_lines(layout.genre_labels(DATASET), CLASSES)
    files.append(layout.genre_labels(DATASET))
    eye = np.eye(len(CLASSES), dtype=np.float32)
    counts = {}
    for set_ in SETS:
        members = np.flatnonzero(plan.split == set_)
        fileio.save_npy(layout.y(set_, FACT, len(CLASSES), DATASET), eye[plan.classes[members]])
        files.append(layout.y(set_, FACT, len(CLASSES), DATASET))
        counts[set_] = len(members)
    for set_ in SETS:  # last: their presence marks a complete dataset
        fileio.write_lines(layout.items_index(set_, DATASET), plan.items(set_))
        files.append(layout.items_index(set_, DATASET))

    return DummyReport(root=layout.root, created=True, n_items=plan.n_items, n_train=counts["train"],
                       n_val=counts["val"], n_test=counts["test"], n_users=len({r[0] for r in interactions}),
                       n_interactions=len(interactions), n_tags=len(all_tags), clip_seconds=float(clip_seconds),
                       sr=int(sr), seed=seed, elapsed=time.perf_counter() - start, files=files)


def _existing_report(layout):
    counts = {s: len(fileio.read_lines(layout.items_index(s, DATASET))) for s in SETS}
    report = DummyReport(root=layout.root, created=False, n_items=sum(counts.values()), n_train=counts["train"],
                         n_val=counts["val"], n_test=counts["test"])
    inter = layout.interactions(DATASET)
    if inter.exists():
        rows = fileio.read_tsv(inter)
        report.n_interactions = len(rows)
        report.n_users = len({r[0] for r in rows})
    labels = layout.genre_labels(DATASET)
    if labels.exists():
        report.n_classes = len(fileio.read_lines(labels))
    return report

