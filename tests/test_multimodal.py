"""Text and multimodal: the seed's dummy chain end to end, and text models on the real SUPER lyrics."""

import numpy as np

from tartarus.cli import main
from tartarus.fileio import load_npy, read_lines, read_tsv
from tartarus.layout import SETS, DataLayout


def test_dummy_pipeline_fusion_matches_or_beats_each_modality(tmp_path, capsys):
    layout = DataLayout(tmp_path / "data")
    assert main(["pipeline", "dummy", "--data-dir", str(layout.root)]) == 0
    out = capsys.readouterr().out
    assert "dummy_multimodal" in out
    # the seed's file names, as its commands would have written them
    for set_ in SETS:
        ids = read_lines(layout.items_index(set_, "DUMMY"))
        audio = load_npy(layout.x(set_, "model_1-pred_9", "DUMMY"))
        text = load_npy(layout.x(set_, "model_2-pred_5", "DUMMY"))
        assert audio.shape == (len(ids), 3) and text.shape == (len(ids), 128)
        assert read_lines(layout.items_index(set_, "DUMMY", "model_2-pred_5")) == ids
        assert np.isfinite(audio).all() and np.isfinite(text).all()
    rows = read_tsv(layout.comparison_table("dummy"))
    header, body = rows[0], rows[1:]
    table = {r[1]: dict(zip(header, r)) for r in body}
    assert list(table) == ["dummy_audio", "dummy_text_vsm", "dummy_text_w2v", "dummy_multimodal"]
    accuracy = {name: float(r["accuracy"]) for name, r in table.items()}
    assert accuracy["dummy_audio"] > 0.6 and accuracy["dummy_text_vsm"] > 0.6 and accuracy["dummy_text_w2v"] > 0.5
    best_single = max(accuracy["dummy_audio"], accuracy["dummy_text_vsm"], accuracy["dummy_text_w2v"])
    assert accuracy["dummy_multimodal"] >= best_single, accuracy
    # layer embeddings of the text CNN and of the two-input fusion model, by name
    root = str(layout.root)
    assert main(["predict", "model_3", "-l", "dense_1", "-s", "test", "--data-dir", root]) == 0
    assert main(["predict", "model_4", "-l", "concat", "-s", "test", "--data-dir", root]) == 0
    fused = load_npy(layout.x("test", "model_4-pred_concat", "DUMMY"))
    assert fused.shape == (12, 3 + 128) and np.isfinite(fused).all()
    # the concatenated inputs are L2-normalised: each half has unit norm
    assert np.allclose(np.linalg.norm(fused[:, :3], axis=1), 1, atol=1e-5)


def test_text_models_on_the_real_super_lyrics(super_root):
    root = str(super_root)
    layout = DataLayout(super_root)
    assert main(["text", "vsm", "SUPER", "--data-dir", root]) == 0
    assert main(["text", "w2v", "SUPER", "--data-dir", root, "--embedding-dim", "16", "--sequence-length", "120"]) == 0
    assert main(["run", "super_text_vsm", "bow", "--data-dir", root, "--set", "training.n_epochs=2"]) == 0
    assert main(["run", "dummy_text_w2v", "w2v", "--data-dir", root, "--set", "dataset.dataset=SUPER",
                 "--set", "cnn.embedding_dim=16", "--set", "cnn.sequence_length=120", "--set", "training.n_epochs=2",
                 "--set", "training.n_minibatch=3"]) == 0
    # 128: the seed's n_dense of dummy_text_vsm (two layers) and of dummy_text_w2v
    for model, layer, dim in (("model_1", "5", 128), ("model_2", "dense_1", 128)):
        assert main(["predict", model, "-l", layer, "-s", "train", "-s", "val", "-s", "test", "--data-dir", root]) == 0
        x = load_npy(layout.x("test", f"{model}-pred_{layer}", "SUPER"))
        assert x.shape == (3, dim) and np.isfinite(x).all()
    assert main(["run", "dummy_multimodal", "model_1-pred_5", "model_2-pred_dense_1", "--data-dir", root,
                 "--set", "dataset.dataset=SUPER", "--set", "training.n_epochs=1", "--set", "training.n_minibatch=3"]) == 0
    probs = load_npy(layout.prediction("model_3", "test"))  # the seed's sigmoid head on dummy_multimodal
    assert probs.shape == (3, 3) and ((probs > 0) & (probs < 1)).all()
