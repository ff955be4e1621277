"""The embedded dummy dataset: determinism, layout, balance, audio, learnability, text, tags, plays."""

import collections

import numpy as np
import pytest
import soundfile as sf

from tartarus import fileio
from tartarus.datasets import DUMMY, DUMMY_CLASSES, generate_dummy, plan_dummy
from tartarus.datasets.dummy import CLASS_TAGS, CLASS_WORDS, SHARED_WORDS, WEAK_TEXT_DECOY_WORDS
from tartarus.errors import ConfigError
from tartarus.layout import SETS, DataLayout
from tests.fixtures import dummy_split

SMALL = dict(n_items=15, n_users=20, clip_seconds=2.0)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("dummy")
    report = generate_dummy(root, seed=0)
    return DataLayout(root), report


def _all_files(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_report(data):
    layout, report = data
    assert report.created and report.n_items == 60 and report.n_classes == 3
    assert (report.n_train, report.n_val, report.n_test) == (36, 12, 12)
    assert report.n_interactions > 0 and 0 < report.n_users <= 400
    assert "60 items" in report.summary()


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    a = generate_dummy(tmp_path / "a", seed=3, **SMALL)
    generate_dummy(tmp_path / "b", seed=3, **SMALL)
    generate_dummy(tmp_path / "c", seed=4, **SMALL)
    files_a, files_b, files_c = (_all_files(tmp_path / x) for x in "abc")
    assert files_a == files_b
    assert a.n_items == 15 and len([f for f in files_a if f.startswith("audio/")]) == 15
    assert any(f.endswith(".npy") for f in files_a) and any(f.endswith(".tsv") for f in files_a)
    differing = [name for name in files_a if files_a[name] != files_c.get(name)]
    assert "audio/D001.wav" in differing and "text/D001.txt" in differing
    assert "index/interactions_DUMMY.tsv" in differing


def test_existing_dataset_is_left_alone(tmp_path):
    generate_dummy(tmp_path, seed=1, **SMALL)
    wav = DataLayout(tmp_path).audio_dir / "D001.wav"
    before = (wav.stat().st_mtime_ns, wav.read_bytes())
    report = generate_dummy(tmp_path, seed=2, **SMALL)
    assert not report.created and "already present" in report.summary() and report.n_items == 15
    assert (wav.stat().st_mtime_ns, wav.read_bytes()) == before
    again = generate_dummy(tmp_path, seed=2, overwrite=True, **SMALL)
    assert again.created and wav.read_bytes() != before[1]
    assert not [p for p in tmp_path.rglob("*") if ".tmp" in p.name]


def test_bad_arguments():
    with pytest.raises(ConfigError, match="n_items"):
        plan_dummy(0, n_items=5)
    with pytest.raises(ConfigError, match="seed"):
        plan_dummy(-1)


def test_splits_targets_and_balance(data):
    layout, _ = data
    plan = plan_dummy(0)
    assert fileio.read_lines(layout.genre_labels(DUMMY)) == list(DUMMY_CLASSES)
    seen = []
    for set_, n in zip(SETS, (36, 12, 12)):
        ids, y = dummy_split(layout, set_)
        assert len(ids) == n and y.shape == (n, 3) and y.dtype == np.float32
        np.testing.assert_array_equal(y.sum(axis=1), 1.0)
        np.testing.assert_array_equal(y.sum(axis=0), [n // 3] * 3)  # balanced in every split
        cls = {i: c for i, c in zip(plan.ids, plan.classes)}
        np.testing.assert_array_equal(y.argmax(axis=1), [cls[i] for i in ids])
        assert ids == plan.items(set_)
        seen += ids
    assert len(seen) == len(set(seen)) == 60  # disjoint and complete
    audio_ids = [row[0] for row in fileio.read_tsv(layout.audio_index(DUMMY), ncols=2)]
    assert sorted(seen) == audio_ids


def test_hidden_plan_is_complementary():
    plan = plan_dummy(0)
    weak = plan.weak_audio()
    weak_text = plan.weak_text()
    for set_ in SETS:
        in_set = plan.split == set_
        assert 0 < weak[in_set].sum() <= 0.25 * in_set.sum()
        assert 0 < weak_text[in_set].sum() <= 0.25 * in_set.sum()
        per_class = np.bincount(plan.classes[weak_text & in_set], minlength=3)
        assert per_class.max() - per_class.min() <= 1  # weak texts say nothing about the class
    assert (plan.text_strength[weak] >= 0.7).all()
    assert (plan.text_strength[~weak] < 0.5).any()
    assert not (weak & weak_text).any()  # no item is weak in both modalities
    assert (plan.decoy != plan.classes).all()
    assert (plan.rhythm[~weak] == plan.classes[~weak]).all()
    assert ((plan.rhythm != plan.classes) | (plan.timbre != plan.classes) | (plan.pitch != plan.classes))[weak].any()


def test_audio_files(data):
    layout, _ = data
    for item, name in fileio.read_tsv(layout.audio_index(DUMMY), ncols=2):
        info = sf.info(layout.audio_dir / name)
        assert (info.samplerate, info.channels, info.frames) == (22050, 1, 20 * 22050)
        assert info.subtype == "PCM_16" and info.format == "WAV"
    x, sr = sf.read(layout.audio_dir / "D001.wav", dtype="float32")
    assert 0.3 < np.abs(x).max() <= 1.0 and np.abs(x).mean() > 0.01


def test_audio_is_learnable(data):
    librosa = pytest.importorskip("librosa")
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    layout, _ = data
    audio = dict(fileio.read_tsv(layout.audio_index(DUMMY), ncols=2))

    def features(set_):
        ids, y = dummy_split(layout, set_)
        rows = []
        for item in ids:
            x, sr = sf.read(layout.audio_dir / audio[item], dtype="float32")
            mel = librosa.feature.melspectrogram(y=x, sr=sr, n_fft=2048, hop_length=1024, n_mels=96)
            rows.append(librosa.power_to_db(mel).mean(axis=1))
        return np.array(rows), y.argmax(axis=1)

    x_train, y_train = features("train")
    x_test, y_test = features("test")
    clf = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000)).fit(x_train, y_train)
    accuracy = (clf.predict(x_test) == y_test).mean()
    assert accuracy >= 0.6, f"test accuracy {accuracy:.2f} (chance 0.33)"


def _texts(layout):
    return {item: (layout.text_dir / name).read_text(encoding="utf-8")
            for item, name in fileio.read_tsv(layout.text_index(DUMMY), ncols=2)}


def test_text_carries_class_words(data):
    layout, _ = data
    plan = plan_dummy(0)
    texts = _texts(layout)
    assert sorted(texts) == sorted(plan.ids)
    vocab = {c: {w.lower() for w in words} for c, words in CLASS_WORDS.items()}
    assert not {w.lower() for w in SHARED_WORDS} & set().union(*vocab.values())
    right = 0
    strong = plan.text_strength >= 0.55
    weak = plan.weak_text()
    assert weak.any() and not (strong & weak).any()
    for i, item in enumerate(plan.ids):
        words = [w.strip(".!").lower() for w in texts[item].split()]
        counts = [sum(w in vocab[c] for w in words) for c in range(3)]
        assert len(words) >= 15
        if strong[i]:
            right += int(np.argmax(counts) == plan.classes[i])
        if weak[i]:  # generic words and one of the decoy's: a class-word vote is misled
            assert counts[plan.classes[i]] == 0
            assert counts[plan.decoy[i]] == sum(counts) == WEAK_TEXT_DECOY_WORDS
            assert sum(counts) <= 0.15 * len(words)
    assert right >= 0.9 * strong.sum()
    assert any(ch in "".join(texts.values()) for ch in "éíçãêô")


def test_text_is_learnable_except_weak_texts(data):
    """tf-idf + logistic regression: right on every strong text of the test split, not on the weak ones."""
    from sklearn.linear_model import LogisticRegression

    from tartarus.text.vsm import make_vectorizer

    layout, _ = data
    plan = plan_dummy(0)
    texts = _texts(layout)
    weak = dict(zip(plan.ids, plan.weak_text()))
    ids_train, y_train = dummy_split(layout, "train")
    ids_test, y_test = dummy_split(layout, "test")
    vectorizer = make_vectorizer()
    x_train = vectorizer.fit_transform([texts[i] for i in ids_train])
    clf = LogisticRegression(C=10, max_iter=2000).fit(x_train, y_train.argmax(axis=1))
    right = clf.predict(vectorizer.transform([texts[i] for i in ids_test])) == y_test.argmax(axis=1)
    is_weak = np.array([weak[i] for i in ids_test])
    assert is_weak.any() and right[~is_weak].all()
    assert right[is_weak].mean() <= 0.5  # the weak texts are not learnable from the text alone
    assert 0.6 <= right.mean() < 1.0


def test_tags_follow_classes(data):
    layout, _ = data
    plan = plan_dummy(0)
    cls = dict(zip(plan.ids, plan.classes))
    rows = fileio.read_tsv(layout.tags_index(DUMMY), ncols=2)
    assert sorted(r[0] for r in rows) == sorted(plan.ids)
    own = total = 0
    for item, tags in rows:
        tags = tags.split(",")
        assert 2 <= len(tags) <= 5 and len(set(tags)) == len(tags)
        own += sum(t in CLASS_TAGS[cls[item]] for t in tags)
        total += len(tags)
    assert own / total > 0.7


def test_interactions_reference_known_items_and_follow_preferences(data):
    layout, _ = data
    plan = plan_dummy(0)
    cls = dict(zip(plan.ids, plan.classes))
    rows = fileio.read_tsv(layout.interactions(DUMMY), ncols=3)
    assert {item for _, item, _ in rows} == set(plan.ids)  # only known items, each heard
    assert all(int(count) >= 1 for _, _, count in rows)
    assert len({(u, i) for u, i, _ in rows}) == len(rows)
    plays = collections.defaultdict(lambda: np.zeros(3))
    for user, item, count in rows:
        plays[user][cls[item]] += int(count)
    top_share = np.mean([p.max() / p.sum() for p in plays.values()])
    assert top_share > 0.6  # users concentrate on their preferred classes
