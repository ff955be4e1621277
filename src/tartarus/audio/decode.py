"""Decoding audio files to mono float32 at a target sample rate.

soundfile (libsndfile, which reads WAV, FLAC, OGG and MP3) decodes; audioread is the fallback for
what libsndfile cannot open. Channels are averaged to mono *before* resampling, and resampling is
soxr's high quality mode, as ``librosa.load(path, sr=sr)`` does, so the samples match librosa's.

Every failure is an :class:`~tartarus.errors.AudioError` whose message says why: a missing or
zero-byte file, a file cut short (its header declares more audio than it holds), one that neither
decoder understands, one with no samples, or one with non-finite samples.
"""

from __future__ import annotations

import re
import struct
import warnings
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from ..errors import AudioError

RESAMPLE_QUALITY = "soxr_hq"  # librosa.load's default res_type


def load_audio(path, sr):
    """Mono float32 samples of ``path`` at ``sr`` Hz; AudioError with the reason if it cannot."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise AudioError(f"{path}: file not found") from None
    except OSError as exc:
        raise AudioError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if not path.is_file():
        raise AudioError(f"{path}: not a regular file")
    if size == 0:
        raise AudioError(f"{path}: empty file (0 bytes)")
    data, native_sr = _decode(path, size)
    if data.shape[0] == 0:
        raise AudioError(f"{path}: no audio samples (header only, or empty stream)")
    y = to_mono(data)
    if data.dtype.kind == "f" and not (np.isfinite(y.sum()) or np.isfinite(y).all()):
        raise AudioError(f"{path}: decoded samples are not finite (NaN or infinity)")
    return resample(y, native_sr, sr)


def to_mono(data):
    """Average the channels of ``(frames, channels)`` samples to float32 (librosa.to_mono's mean).

    16-bit integer samples are scaled by 1/32768 as libsndfile does, folded into the averaging
    weights: for one or two channels the result is bit for bit the mean of libsndfile's float32
    samples, without libsndfile's (ten times slower) conversion pass.
    """
    if data.ndim == 1:
        data = data[:, np.newaxis]
    channels = data.shape[1]
    scale = 1.0 / 32768.0 if data.dtype == np.int16 else 1.0
    if channels == 1:
        y = data[:, 0].astype(np.float32)
        if scale != 1.0:
            y *= np.float32(scale)
        return y
    weights = np.full(channels, scale / channels, dtype=np.float32)
    return data.astype(np.float32, copy=False).dot(weights).astype(np.float32, copy=False)


def resample(y, orig_sr, target_sr):
    """soxr resampling to ``target_sr``; the length is ``ceil(len(y) * target_sr / orig_sr)``."""
    orig_sr, target_sr = int(orig_sr), int(target_sr)
    if orig_sr == target_sr:
        return y
    if target_sr <= 0:
        raise ValueError(f"target sample rate must be positive, got {target_sr}")
    n = int(np.ceil(y.shape[0] * float(target_sr) / orig_sr))
    out = soxr.resample(y, orig_sr, target_sr, quality=RESAMPLE_QUALITY)
    if out.shape[0] > n:
        out = out[:n]
    elif out.shape[0] < n:
        out = np.pad(out, (0, n - out.shape[0]))
    if out.size == 0:
        raise AudioError(f"audio of {y.shape[0]} samples at {orig_sr} Hz is empty at {target_sr} Hz")
    return np.ascontiguousarray(out, dtype=np.float32)


# ----------------------------------------------------------------------------- decoders
def _decode(path, size):
    """``((frames, channels) int16 or float32 samples, native sr)`` from soundfile, else audioread."""
    try:
        return _decode_soundfile(path, size)
    except AudioError:
        raise
    except Exception as exc:  # libsndfile errors, and anything else soundfile trips on
        sf_reason = _clean(exc)
        if "does not exist" in sf_reason:  # libsndfile's words for an MPEG stream it cannot parse
            sf_reason = "unrecognised or corrupt data"
    try:
        return _decode_audioread(path)
    except Exception as exc:  # audioread raises many kinds (NoBackendError, DecodeError, EOFError...)
        if type(exc).__name__ == "NoBackendError":
            ar_reason = "no backend can read it"
        else:
            ar_reason = _clean(exc) or type(exc).__name__
    raise AudioError(f"{path}: cannot decode (not a readable audio file?): soundfile: {sf_reason}; "
                     f"audioread: {ar_reason}")


def _decode_soundfile(path, size):
    with sf.SoundFile(str(path)) as f:
        declared = f.frames
        sr = f.samplerate
        fmt = f.format
        # 16-bit PCM is read as it is stored: 10x faster than libsndfile's conversion to float
        data = f.read(dtype="int16" if f.subtype == "PCM_16" else "float32", always_2d=True)
    if fmt in ("WAV", "WAVEX", "RF64", "W64"):
        _check_riff(path, size)
    if fmt not in ("MP3", "MPEG") and declared > 0 and data.shape[0] < declared:
        # MP3 frame counts are estimates; for other formats the header's count is exact.
        raise AudioError(f"{path}: truncated: header declares {declared} frames, only "
                         f"{data.shape[0]} could be decoded")
    return data, sr


def _check_riff(path, size):
    """A WAV file whose ``data`` chunk declares more bytes than the file holds was cut short.

    libsndfile silently reads what is there, so the check is done on the header itself.
    """
    try:
        with open(path, "rb") as f:
            head = f.read(65536)
    except OSError:
        return
    if len(head) < 12 or head[:4] not in (b"RIFF", b"RIFX") or head[8:12] != b"WAVE":
        return
    endian = "<" if head[:4] == b"RIFF" else ">"
    pos = 12
    while pos + 8 <= len(head):
        chunk, length = head[pos:pos + 4], struct.unpack(endian + "I", head[pos + 4:pos + 8])[0]
        if chunk == b"data":
            available = size - (pos + 8)
            if length not in (0, 0xFFFFFFFF) and length > available:
                raise AudioError(f"{path}: truncated: the WAV header declares {length} bytes of audio, "
                                 f"the file holds {max(available, 0)}")
            return
        pos += 8 + length + (length & 1)


def _decode_audioread(path):
    with warnings.catch_warnings():  # audioread's raw backend imports aifc, audioop, sunau
        warnings.simplefilter("ignore", DeprecationWarning)
        import audioread

    with audioread.audio_open(str(path)) as f:
        sr, channels = f.samplerate, f.channels
        chunks = [np.frombuffer(buf, dtype="<i2") for buf in f]
    raw = np.concatenate(chunks) if chunks else np.zeros(0, dtype="<i2")
    if channels < 1:
        raise AudioError(f"{path}: audioread reports {channels} channels")
    raw = raw[: raw.size - raw.size % channels]
    return raw.reshape(-1, channels), sr


def _clean(exc):
    """One line of an exception's message, without libsndfile's "Error opening 'PATH': " prefix."""
    text = " ".join(str(exc).split())
    return re.sub(r"^Error opening .*?': ", "", text)
