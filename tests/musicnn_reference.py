"""Our pretrained taggers against the original musicnn 0.1.0 extractor, on the real SUPER songs.

``tests/data/musicnn_reference.npz`` holds what the original package gave (``extractor(file, model,
input_length=3, input_overlap=False)``, run by ``tests/data/make_musicnn_reference.py`` in a separate
virtualenv with tensorflow-cpu 2.15.1, numpy<2, librosa 0.10.2.post1 and musicnn 0.1.0 --no-deps):
per model and song the taggram (patches, 50), the ``penultimate`` (musicnn) or ``pool5`` (VGG)
features, the labels, and the first 374 input frames of one song (float16).

Only the first row of the original's musicnn ``penultimate`` is its own: the release's extractor
keeps appending the first patch's values for every later patch (its loop unpacks the features into
other names), so later rows repeat row 0 and are not compared.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

REFERENCE = Path(__file__).parent / "data" / "musicnn_reference.npz"
SUPER_AUDIO = Path(__file__).resolve().parents[2] / "shared" / "super" / "audio"


def load_reference():
    with np.load(REFERENCE, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def top5(taggram):
    """Indices of the 5 highest tags of the mean taggram, highest first (musicnn's top tags)."""
    return [int(i) for i in np.argsort(-taggram.mean(axis=0), kind="stable")[:5]]


def compare(names, songs=None, cache_dir=None):
    """For each model: the worst per-song mean |taggram - reference|, the songs whose top 5 differ,
    and the largest difference of the compared features. Runs on the current Keras backend."""
    import keras

    from tartarus import pretrained

    ref = load_reference()
    songs = list(ref["songs"]) if songs is None else list(songs)
    patches = {s: pretrained.file_patches(SUPER_AUDIO / f"{s}.mp3") for s in songs}
    out = {"backend": keras.backend.backend()}
    for name in names:
        spec = pretrained.get_spec(name)
        layer = spec.default_layer
        model = pretrained.feature_model(pretrained.load_pretrained(name, cache_dir), ["taggram", layer])
        worst, top_differs, feature = 0.0, [], 0.0
        for s in songs:
            taggram, features = (np.asarray(a) for a in model.predict(patches[s], verbose=0, batch_size=16))
            expected = ref[f"{name}/{s}/taggram"]
            assert taggram.shape == expected.shape, (name, s, taggram.shape, expected.shape)
            worst = max(worst, float(np.abs(taggram - expected).mean()))
            if top5(taggram) != top5(expected):
                top_differs.append(s)
            features = features.reshape(len(features), -1)
            rows = 1 if layer == "penultimate" else len(features)  # see the module docstring
            feature = max(feature, float(np.abs(features[:rows] - ref[f"{name}/{s}/{layer}"][:rows]).max()))
        out[name] = {"mean_abs_diff": worst, "top5_differs": top_differs, "feature_max_diff": feature,
                     "labels_equal": list(ref[f"{name}/labels"]) == list(spec.labels)}
    return out
