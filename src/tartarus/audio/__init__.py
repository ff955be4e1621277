"""Audio preprocessing: decoding, spectrograms, the parallel spectrogram runner, and patches.

    decode.load_audio(path, sr)                   -> mono float32 samples at sr
    features.spectrogram(y, entry)                -> (frames, bins) float32
    features.spectrogram_from_file(path, entry)
    features.n_frames(seconds, entry), features.silence_value(entry), features.SILENCE_DB
    runner.compute_spectrograms(layout, entry, n_jobs=None, progress=True, overwrite=False)
                                                  -> SpectrogramReport
    patches.create_patches(layout, entry, sets=..., npatches=None, window=None, mode=None, seed=None)
                                                  -> {set: Path} (a PatchFiles dict)

The submodules are imported on first use, so ``import tartarus.audio`` stays cheap (h5py, joblib,
tqdm and librosa load only when the stage that needs them runs).
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "load_audio": "decode",
    "spectrogram": "features",
    "spectrogram_from_file": "features",
    "n_frames": "features",
    "silence_value": "features",
    "SILENCE_DB": "features",
    "compute_spectrograms": "runner",
    "SpectrogramReport": "runner",
    "create_patches": "patches",
    "PatchFiles": "patches",
}
_SUBMODULES = ("decode", "features", "runner", "patches")

__all__ = list(_EXPORTS) + list(_SUBMODULES)


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
