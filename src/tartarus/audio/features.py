"""Spectrograms of decoded audio: mel, constant-Q (CQT) and linear STFT, in dB or linear power.

Every spectrogram is a float32 array of shape ``(frames, bins)`` (time first, as patches are cut
along time). Frames follow librosa's ``center=True`` convention (zero padding, so a clip of ``n``
samples has ``1 + n // hop`` frames); values match librosa's ``melspectrogram``, ``cqt`` and
``stft`` power followed by ``power_to_db(S, ref=db_ref, amin=1e-10, top_db=top_db)`` to within
float32 rounding, with the entry's ``db_ref`` (1.0, or ``"max"``: each track's own maximum) and
``top_db`` (0: no clipping).

mel is librosa's default (Slaney) filterbank from 0 Hz to Nyquist, as the seed used it; ``fmin``
sets the lowest bin of the CQT only. The CQT is librosa.cqt's with its defaults (no tuning
estimation, Hann window, sparsity 0.01, length-scaled).

By default the dB scale has a fixed reference (power 1.0): values are comparable across files, and
digital silence maps to :data:`SILENCE_DB` (-100 dB), the floor set by ``amin``. The seed's CQT
datasets (SUPER, MSD-I) use ``db_ref = "max"`` and ``top_db = 80`` instead (its ``create_patches.py``:
``power_to_db(|C|**2, ref=np.max)``, librosa's default ``top_db`` 80): every track then peaks at
0 dB and is floored at -80 dB. ``silence_value(entry)`` gives the floor for an entry (0.0 for
linear power, ``-top_db`` under ``db_ref = "max"``), which is what short clips are padded with.

``log_scale = "musicnn"`` replaces the dB scale by musicnn's input scale (:func:`musicnn_log`): the
mel power cast to float16, then ``log10(10000 x + 1)`` in float32. With musicnn's settings (16 kHz,
n_fft 512, hop 256, 96 mel bands; the entries ``*_musicnn``) the spectrogram is what the pretrained
musicnn and VGG taggers were trained on (``tartarus.pretrained.log_mel``).

The filterbank (mel), window and constant-Q kernels are built once per process and set of
parameters (:func:`get_plan`, an LRU cache) rather than once per file, and the per-file work runs
in float32: a windowed framing view, one real FFT, ``re**2 + im**2`` and one matrix product. The
CQT reproduces librosa's multi-rate algorithm (per-octave FFT kernels applied to an STFT, the
signal halved between octaves with soxr) with the kernels taken from librosa's own filter
functions. librosa is imported only when a plan is first built, so importing this module is cheap.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass
from typing import Optional

import numpy as np
import scipy.fft
import soxr

from ..errors import AudioError, ConfigError

AMIN = 1e-10
"""Power floor before the logarithm (librosa's default ``amin``)."""
SILENCE_DB = -100.0
"""The dB value of digital silence (-100.0): the floor of every log spectrogram."""

_CQT_SPARSITY = 0.01  # librosa.cqt defaults
_CQT_RES_QUALITY = "soxr_hq"


def silence_value(entry):
    """The value silence has in this entry's spectrograms (what short clips are padded with).

    0.0 for linear power and for musicnn's scale (``log10(10000 * 0 + 1)``); in dB,
    :data:`SILENCE_DB` shifted by a fixed ``db_ref``, or ``-top_db`` (the floor of every track) when
    ``db_ref = "max"`` clips at ``top_db``. (The seed padded its dB patches with 0, the loudest value
    under ``ref=max``; only clips shorter than a patch differ.)
    """
    if not entry.log or entry.log_scale == "musicnn":
        return 0.0
    ref = entry.db_reference()
    if ref == "max":
        return -float(entry.top_db) if entry.top_db else SILENCE_DB
    return SILENCE_DB - 10.0 * math.log10(max(ref, AMIN))


def n_frames(seconds, entry):
    """Frames of a patch ``seconds`` long: ``int(seconds * sr / hop)`` (15 s at 22050/1024 -> 322)."""
    return int(float(seconds) * entry.resample_sr / entry.hop)


# ------------------------------------------------------------------------------------- plans
@dataclass(frozen=True, eq=False)
class CqtOctave:
    n_fft: int
    kernel: np.ndarray  # (n_fft // 2 + 1, bins of this octave), complex64: STFT frames @ kernel


@dataclass(frozen=True, eq=False)
class SpectrogramPlan:
    """Everything about a spectrogram that does not depend on the audio; cheap to pickle to workers."""
    kind: str
    sr: int
    hop: int
    n_fft: int
    n_bins: int
    log: bool
    window: Optional[np.ndarray] = None  # (n_fft,) float32 periodic Hann, mel and stft
    mel_t: Optional[np.ndarray] = None  # (n_fft // 2 + 1, n_mels) float32
    cqt_early_factor: int = 1  # power of two the signal is decimated by before the first octave
    cqt_octaves: tuple = ()  # CqtOctave, highest octave first
    cqt_octave_bins: tuple = ()  # bins each octave contributes, highest first
    cqt_scale: Optional[np.ndarray] = None  # (n_bins,) float32, 1 / sqrt(filter length)
    db_ref: object = 1.0  # dB reference power: a float, or "max" (the track's own maximum)
    top_db: float = 0.0  # clip at (max - top_db) dB; 0 = no clipping
    log_scale: str = "db"  # with log: "db" (10 log10), or "musicnn" (musicnn_log)

    # The mel filterbank is 98% zeros: it travels to worker processes as its non-zero entries
    # (about 2% of the bytes) and is made dense again on arrival.
    def __getstate__(self):
        state = dict(self.__dict__)
        if self.mel_t is not None:
            rows, cols = np.nonzero(self.mel_t)
            state["mel_t"] = ("nonzero", self.mel_t.shape, rows.astype(np.int32), cols.astype(np.int32),
                              self.mel_t[rows, cols])
        return state

    def __setstate__(self, state):
        mel = state.get("mel_t")
        if isinstance(mel, tuple):
            _, shape, rows, cols, values = mel
            dense = np.zeros(shape, dtype=np.float32)
            dense[rows, cols] = values
            state = {**state, "mel_t": dense}
        self.__dict__.update(state)


def _plan_key(entry):
    kind = entry.spectrogram_type
    key = (kind, int(entry.resample_sr), int(entry.hop), int(entry.n_fft), bool(entry.log))
    if kind == "mel":
        return key + (int(entry.n_mels),)
    if kind == "cqt":
        return key + (int(entry.cqt_bins), int(entry.bins_per_octave), float(entry.fmin))
    if kind == "stft":
        return key
    raise ValueError(f"dataset {entry.name!r}: unknown spectrogram_type {kind!r} (mel, cqt or stft)")


def get_plan(entry):
    """The (cached) plan of ``entry``'s spectrogram parameters; built once per process and key."""
    scale = entry.log_scale
    if scale not in ("db", "musicnn"):
        raise ConfigError(f"dataset {entry.name!r}: log_scale must be \"db\" or \"musicnn\", got {scale!r}")
    if scale == "musicnn" and entry.spectrogram_type != "mel":
        raise ConfigError(f"dataset {entry.name!r}: log_scale = \"musicnn\" is musicnn's scale of mel "
                          f"power, got spectrogram_type = {entry.spectrogram_type!r}: use \"mel\"")
    plan = _cached_plan(_plan_key(entry))
    ref, top_db = entry.db_reference(), float(entry.top_db)
    if not entry.log:
        if ref != 1.0 or top_db:
            raise ConfigError(f"dataset {entry.name!r}: db_ref and top_db set the dB scale, but log = false "
                              f"(linear power): leave them out or set log = true")
        if scale != "db":
            raise ConfigError(f"dataset {entry.name!r}: log_scale = {scale!r} is a log scale, but log = false "
                              f"(linear power): leave log_scale out or set log = true")
        return plan
    if scale == "musicnn":
        if ref != 1.0 or top_db:
            raise ConfigError(f"dataset {entry.name!r}: db_ref and top_db set the dB scale, but log_scale = "
                              f"\"musicnn\" has no reference or clipping: leave them out")
        return dataclasses.replace(plan, log_scale="musicnn")
    if ref == 1.0 and not top_db:
        return plan
    # the dB step needs no kernels: a copy of the cached plan that shares its arrays
    return dataclasses.replace(plan, db_ref=ref, top_db=top_db)


@functools.lru_cache(maxsize=16)
def _cached_plan(key):
    plan = _build_plan(key)
    arrays = [plan.window, plan.mel_t, plan.cqt_scale] + [o.kernel for o in plan.cqt_octaves]
    for array in arrays:
        if array is not None:
            array.flags.writeable = False  # shared by every caller of the cache
    return plan


def _build_plan(key):
    kind, sr, hop, n_fft, log = key[:5]
    if hop <= 0 or sr <= 0:
        raise ValueError(f"spectrogram needs positive resample_sr and hop, got {sr} and {hop}")
    if kind in ("mel", "stft") and n_fft < 2:
        raise ValueError(f"n_fft must be at least 2, got {n_fft}")
    if kind == "mel" and key[5] < 1:
        raise ValueError(f"n_mels must be positive, got {key[5]}")
    if kind == "cqt":
        n_bins, bins_per_octave, fmin = key[5:]
        if n_bins < 2 or bins_per_octave < 1 or not fmin > 0:
            raise ValueError(f"a CQT needs cqt_bins >= 2, bins_per_octave >= 1 and fmin > 0, got "
                             f"{n_bins}, {bins_per_octave} and {fmin}")
    if kind in ("mel", "stft"):
        import scipy.signal
        window = scipy.signal.get_window("hann", n_fft, fftbins=True).astype(np.float32)
        if kind == "stft":
            return SpectrogramPlan(kind, sr, hop, n_fft, n_fft // 2 + 1, log, window=window)
        import librosa
        n_mels = key[5]
        mel = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, dtype=np.float32)
        return SpectrogramPlan(kind, sr, hop, n_fft, n_mels, log, window=window,
                               mel_t=np.ascontiguousarray(mel.T))
    return _build_cqt_plan(sr, hop, n_fft, log, *key[5:])


def _relative_bandwidth(freqs):
    """librosa.filters._relative_bandwidth (private there), for the constant-Q kernel widths."""
    bpo = np.empty_like(freqs)
    logf = np.log2(freqs)
    bpo[0] = 1 / (logf[1] - logf[0])
    bpo[-1] = 1 / (logf[-1] - logf[-2])
    bpo[1:-1] = 2 / (logf[2:] - logf[:-2])
    return (2.0 ** (2 / bpo) - 1) / (2.0 ** (2 / bpo) + 1)


def _build_cqt_plan(sr, hop, n_fft, log, n_bins, bins_per_octave, fmin):
    """The kernels of ``librosa.cqt(y, sr=sr, hop_length=hop, fmin=fmin, n_bins=n_bins,
    bins_per_octave=bins_per_octave)`` with its defaults (tuning 0, filter_scale 1, norm 1,
    sparsity 0.01, Hann window, scale=True, soxr_hq), as librosa's ``vqt`` builds them per call."""
    import librosa

    n_octaves = int(math.ceil(n_bins / bins_per_octave))
    n_filters = min(bins_per_octave, n_bins)
    freqs = librosa.interval_frequencies(n_bins=n_bins, fmin=fmin, intervals="equal",
                                         bins_per_octave=bins_per_octave, sort=True)
    alpha = _relative_bandwidth(freqs)
    _, cutoff = librosa.filters.wavelet_lengths(freqs=freqs, sr=sr, window="hann", filter_scale=1,
                                                gamma=0, alpha=alpha)
    nyquist = sr / 2.0
    if cutoff > nyquist:
        raise ValueError(f"CQT with {n_bins} bins from {fmin:g} Hz reaches {cutoff:.0f} Hz, above the "
                         f"Nyquist frequency {nyquist:g} Hz of resample_sr={sr}: use fewer bins")
    # early downsampling (librosa.core.constantq.__early_downsample_count)
    count1 = max(0, int(np.ceil(np.log2(nyquist / cutoff)) - 1) - 1)
    twos, h = 0, hop
    while h > 0 and h % 2 == 0:
        twos, h = twos + 1, h // 2
    count2 = max(0, twos - n_octaves + 1)
    early = 2 ** min(count1, count2)
    sr_eff, hop_eff = sr / early, hop // early

    octaves, octave_bins = [], []
    my_sr, my_hop = sr_eff, hop_eff
    for i in range(n_octaves):
        sl = slice(-n_filters, None) if i == 0 else slice(-n_filters * (i + 1), -n_filters * i)
        f_oct, a_oct = freqs[sl], alpha[sl]
        basis, lengths = librosa.filters.wavelet(freqs=f_oct, sr=my_sr, filter_scale=1, norm=1,
                                                 pad_fft=True, window="hann", gamma=0, alpha=a_oct)
        nfft = basis.shape[1]
        basis = basis * (lengths[:, np.newaxis] / float(nfft))
        fft_basis = np.fft.fft(basis, n=nfft, axis=1)[:, : nfft // 2 + 1]
        fft_basis = librosa.util.sparsify_rows(fft_basis, quantile=_CQT_SPARSITY,
                                               dtype=np.complex64).toarray()
        fft_basis *= np.sqrt(sr_eff / my_sr)
        octaves.append(CqtOctave(nfft, np.ascontiguousarray(fft_basis.T.astype(np.complex64))))
        octave_bins.append(len(f_oct))
        if my_hop % 2 == 0:
            my_hop //= 2
            my_sr /= 2.0
    lengths, _ = librosa.filters.wavelet_lengths(freqs=freqs, sr=sr_eff, window="hann",
                                                 filter_scale=1, gamma=0, alpha=alpha)
    scale = (1.0 / np.sqrt(lengths)).astype(np.float32)
    return SpectrogramPlan("cqt", sr, hop, n_fft, n_bins, log, cqt_early_factor=early,
                           cqt_octaves=tuple(octaves), cqt_octave_bins=tuple(octave_bins),
                           cqt_scale=scale)


# ---------------------------------------------------------------------------- computation
def _stft(y, n_fft, hop, window=None):
    """Complex STFT frames ``(1 + len(y) // hop, n_fft // 2 + 1)``, centred with zero padding."""
    pad = n_fft // 2
    yp = np.pad(y, (pad, pad))
    count = 1 + (yp.size - n_fft) // hop
    frames = np.lib.stride_tricks.as_strided(yp, shape=(count, n_fft),
                                             strides=(hop * yp.itemsize, yp.itemsize),
                                             writeable=False)
    if window is not None:
        frames = frames * window
    return scipy.fft.rfft(frames, axis=-1)


def _power(spec):
    """|spec|**2 in float32, as librosa computes it (np.abs, then squared in place)."""
    power = np.abs(spec)
    power *= power
    return power


def _halve(y):
    """librosa.resample(y, orig_sr=2, target_sr=1, res_type='soxr_hq', scale=True)."""
    n = int(np.ceil(y.shape[-1] * 0.5))
    out = soxr.resample(y, 2, 1, quality=_CQT_RES_QUALITY)
    if out.shape[-1] != n:
        out = out[:n] if out.shape[-1] > n else np.pad(out, (0, n - out.shape[-1]))
    out = out * np.float32(np.sqrt(2.0))
    return out.astype(np.float32, copy=False)


def _decimate(y, factor):
    n = int(np.ceil(y.shape[-1] / factor))
    out = soxr.resample(y, factor, 1, quality=_CQT_RES_QUALITY)
    if out.shape[-1] != n:
        out = out[:n] if out.shape[-1] > n else np.pad(out, (0, n - out.shape[-1]))
    return (out * np.float32(np.sqrt(factor))).astype(np.float32, copy=False)


def _cqt_power(y, plan):
    if plan.cqt_early_factor > 1:
        if y.size < plan.cqt_early_factor:
            raise AudioError(f"audio of {y.size} samples is too short for this CQT")
        y = _decimate(y, plan.cqt_early_factor)
    hop = plan.hop // plan.cqt_early_factor
    responses = []
    for i, octave in enumerate(plan.cqt_octaves):
        responses.append(_stft(y, octave.n_fft, hop) @ octave.kernel)
        if i + 1 < len(plan.cqt_octaves) and hop % 2 == 0:
            hop //= 2
            y = _halve(y)
    count = min(r.shape[0] for r in responses)
    out = np.empty((count, plan.n_bins), dtype=np.float32)
    end = plan.n_bins
    for resp, k in zip(responses, plan.cqt_octave_bins):
        take = min(k, end)
        out[:, end - take:end] = _power(resp[:count, k - take:])
        end -= take
    out *= np.square(plan.cqt_scale)  # |V / sqrt(L)|**2
    return out


def compute(y, plan):
    """The spectrogram of mono float32 audio ``y`` (already at ``plan.sr``) under ``plan``."""
    y = np.ascontiguousarray(y, dtype=np.float32)
    if y.ndim != 1:
        raise ValueError(f"expected mono audio (1-D), got shape {y.shape}")
    if y.size == 0:
        raise AudioError("no audio samples")
    if plan.kind == "cqt":
        spec = _cqt_power(y, plan)
    else:
        spec = _power(_stft(y, plan.n_fft, plan.hop, plan.window))
        if plan.kind == "mel":
            spec = spec @ plan.mel_t
    spec = np.ascontiguousarray(spec, dtype=np.float32)
    if plan.log and plan.log_scale == "musicnn":
        return musicnn_log(spec)
    if plan.log:
        np.maximum(spec, np.float32(AMIN), out=spec)
        np.log10(spec, out=spec)
        spec *= np.float32(10.0)
        # float32 log10 of AMIN is a hair below -10: clamp so silence is exactly SILENCE_DB
        np.maximum(spec, np.float32(SILENCE_DB), out=spec)
        to_db(spec, plan.db_ref, plan.top_db)
    return spec


def musicnn_log(power):
    """musicnn's log scale of a power spectrogram: ``log10(10000 * float16(power) + 1)``, float32.

    power : ``(frames, bins)`` non-negative power (mel power at 16 kHz, n_fft 512, hop 256 for the
    pretrained taggers). musicnn casts the power to float16 before the logarithm; the product and
    the logarithm are float32, as they were under the numpy 1.x musicnn ran on (there ``10000 *
    float16`` promoted to float32; under numpy 2 it would stay float16 and overflow to inf above a
    power of 6.55, which music reaches: musicnn's input of a SUPER song peaks at 6.24, a power of
    about 1.7e2). Returns a new float32 array; silence (power 0) maps to 0.
    """
    x = np.asarray(power, dtype=np.float32).astype(np.float16).astype(np.float32)
    x *= np.float32(10000.0)
    x += np.float32(1.0)
    return np.log10(x, out=x)


def to_db(spec_db, db_ref=1.0, top_db=0.0):
    """Rescale a dB spectrogram (reference 1.0) in place to ``db_ref`` and clip it at ``top_db``.

    ``spec_db`` : (frames, bins) float32, ``10 log10(max(S, amin))``; ``db_ref`` : a reference power
    or ``"max"`` (the largest power of this spectrogram); ``top_db`` : dynamic range kept below the
    peak, 0 for all. The result is librosa's ``power_to_db(S, ref=db_ref, amin=1e-10, top_db=...)``.
    """
    if spec_db.size == 0:
        return spec_db
    peak = None
    if db_ref == "max":
        spec_db -= spec_db.max()  # 10 log10 is monotonic: the peak in dB is the peak power's
        peak = np.float32(0.0)  # x - max(x) is exactly 0 at the peak: no second pass for top_db
    elif db_ref != 1.0:
        spec_db -= np.float32(10.0 * math.log10(max(float(db_ref), AMIN)))
    if top_db:
        peak = spec_db.max() if peak is None else peak
        np.maximum(spec_db, peak - np.float32(top_db), out=spec_db)
    return spec_db


def spectrogram(y, entry):
    """``(frames, bins)`` float32 spectrogram of mono audio ``y`` sampled at ``entry.resample_sr``."""
    return compute(y, get_plan(entry))


def spectrogram_from_file(path, entry):
    """Decode ``path`` at ``entry.resample_sr`` and return its spectrogram (AudioError if it cannot)."""
    from .decode import load_audio
    return spectrogram(load_audio(path, entry.resample_sr), entry)
