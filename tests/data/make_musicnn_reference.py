"""Run the original musicnn 0.1.0 extractor (TF 2.15 through tf.compat.v1) on the SUPER songs and
save taggrams, a few features and one input spectrogram as tests/data/musicnn_reference.npz."""
import sys, time, json, os
import numpy as np
from musicnn.extractor import extractor, batch_data
audio_dir, out = sys.argv[1], sys.argv[2]
songs = sorted(f for f in os.listdir(audio_dir) if f.endswith(".mp3"))
arrays, timing = {}, {}
for model in ["MTT_musicnn", "MSD_musicnn", "MTT_vgg", "MSD_vgg"]:
    t0 = time.perf_counter()
    for song in songs:
        taggram, labels, feats = extractor(os.path.join(audio_dir, song), model=model, input_length=3,
                                           input_overlap=False, extract_features=True)
        stem = song[:-4]
        arrays[f"{model}/{stem}/taggram"] = taggram.astype(np.float32)
        if "musicnn" in model:
            for k in ("penultimate", "max_pool", "mean_pool"):
                arrays[f"{model}/{stem}/{k}"] = np.asarray(feats[k], np.float32)
        else:
            arrays[f"{model}/{stem}/pool5"] = np.asarray(feats["pool5"], np.float32).reshape(taggram.shape[0], -1)
    timing[model] = (time.perf_counter() - t0) / len(songs)
    arrays[f"{model}/labels"] = np.array(labels)
batch, rep = batch_data(os.path.join(audio_dir, songs[0]), 187, 187)
arrays["input/" + songs[0][:-4]] = rep.astype(np.float16)
arrays["songs"] = np.array([s[:-4] for s in songs])
np.savez_compressed(out, **arrays)
print(json.dumps({"seconds_per_file": timing}))
