"""Spectrograms and patches on a Dask cluster (``--scheduler``), against a local run of the same data.

One ``distributed.LocalCluster`` of 2 worker processes stands in for a cluster (module scope); the
dummy dataset (15 items of 3 s, plus bad audio files) is the data, its local spectrograms and
patches the reference.
"""

from __future__ import annotations

import errno
import functools
import os
import shutil
import socket
import threading

import h5py
import numpy as np
import pytest

from tartarus import fileio
from tartarus.audio import patches, runner
from tartarus.cli import main
from tartarus.config import Registry
from tartarus.datasets.dummy import generate_dummy
from tartarus.errors import ConfigError, MissingInput, OutputError
from tartarus.layout import SETS, DataLayout
from tartarus.scheduler import SCHEDULER_ENV, check_workers_see, connect, on_cluster

from tests.conftest import cli_error_line
from tests.fixtures import local_cluster

distributed = pytest.importorskip("distributed")

DS = "DUMMY"
NPATCHES, WINDOW = 2, 1.0  # 43-frame random crops of the 3 s clips: offsets matter
BAD = {"B_empty": "empty.wav", "B_cut": "cut.wav", "B_junk": "junk.wav", "B_ext": "clip.mp3"}


def make_data(root):
    """The dummy dataset (15 items of 3 s) with four bad files appended to its audio index."""
    layout = DataLayout(root)
    generate_dummy(layout.root, n_items=15, clip_seconds=3.0)
    good = layout.dummy_audio("D001").read_bytes()
    (layout.audio_dir / "empty.wav").write_bytes(b"")
    (layout.audio_dir / "cut.wav").write_bytes(good[:len(good) // 3])
    (layout.audio_dir / "junk.wav").write_bytes(np.random.default_rng(0).bytes(5000))
    (layout.audio_dir / "clip.mp3").write_bytes(good)
    rows = fileio.read_tsv(layout.audio_index(DS)) + [[k, v] for k, v in BAD.items()]
    fileio.write_tsv(layout.audio_index(DS), rows)
    return layout


@pytest.fixture(scope="module")
def cluster():
    with local_cluster() as cluster:
        yield cluster


@pytest.fixture(scope="module")
def entry():
    return Registry().dataset(DS)


@pytest.fixture(scope="module")
def reference(tmp_path_factory, entry):
    """A local run: its layout, spectrogram report and patch files."""
    layout = make_data(tmp_path_factory.mktemp("local") / "data")
    report = runner.compute_spectrograms(layout, entry, n_jobs=1, progress=False)
    files = patches.create_patches(layout, entry, npatches=NPATCHES, window=WINDOW)
    return layout, report, files


@pytest.fixture
def client(cluster):
    """A client of the module's cluster, both workers up (a test may have killed one)."""
    with distributed.Client(cluster, set_as_default=False) as client:
        client.wait_for_workers(2, timeout=60)
        yield client


def assert_same_spectrograms(layout, ref_layout):
    names = [p.name for p in ref_layout.spectrogram_files(DS)]
    assert names and [p.name for p in layout.spectrogram_files(DS)] == names
    for name in names:
        a, b = np.load(ref_layout.spectrograms_dir(DS) / name), np.load(layout.spectrograms_dir(DS) / name)
        assert a.dtype == b.dtype and np.array_equal(a, b), name
    assert fileio.read_json(layout.spectrogram_params(DS)) == fileio.read_json(ref_layout.spectrogram_params(DS))
    assert not list(layout.spectrograms_dir(DS).glob(".*tmp*"))


def read(path):
    with h5py.File(path, "r") as h5:
        return (h5["features"][...], list(h5["index"].asstr()[...]), h5.attrs["params"], h5.attrs["missing"],
                h5["features"].is_virtual)


def assert_same_patches(files, ref_files, virtual=True):
    assert set(files) == set(ref_files) == set(SETS)
    for set_ in SETS:
        feats, index, params, missing, is_virtual = read(files[set_])
        ref = read(ref_files[set_])
        assert feats.shape == ref[0].shape and feats.dtype == np.float32
        assert np.array_equal(feats, ref[0]), set_
        assert (index, params, missing) == ref[1:4]
        assert is_virtual == virtual and not ref[4]


def errors_of(layout):
    return [(row[0], os.path.basename(row[1]), row[2]) for row in fileio.read_tsv(layout.spectrogram_errors(DS))]


def test_cluster_runs_equal_local_runs(tmp_path, monkeypatch, cluster, client, entry, reference):
    """Spectrograms (bad files reported in errors.tsv) and patches, array for array as a local run;
    the patch file is a virtual dataset over the shards, read the same by h5py, inputs.py and from
    another working folder or a moved data root."""
    ref_layout, ref_report, ref_files = reference
    layout = make_data(tmp_path / "data")
    report = runner.compute_spectrograms(layout, entry, progress=False, scheduler=cluster.scheduler_address)
    assert (report.done, report.skipped) == (ref_report.done, 0) == (15, 0)
    assert [row[0] for row in report.failed] == [row[0] for row in ref_report.failed] == list(BAD)
    assert errors_of(layout) == errors_of(ref_layout)  # ids, files and reasons
    assert_same_spectrograms(layout, ref_layout)

    files = patches.create_patches(layout, entry, npatches=NPATCHES, window=WINDOW, scheduler=client,
                                   shard_items=4, progress=False)
    assert_same_patches(files, ref_files)
    assert dict(files.counts) == dict(ref_files.counts) and files.missing == ref_files.missing
    shards = sorted(layout.patch_shards_dir("train", DS, NPATCHES, WINDOW).iterdir())
    n_train = ref_files.counts["train"]
    assert [p.name for p in shards] == [f"shard_{k:05d}.hdf5" for k in range(-(-n_train // 4))]
    assert patches.missing_sources(files["train"]) == []
    from tartarus.inputs import iter_patch_batches  # here: it loads Keras, which the workers need not

    for set_ in SETS:  # what training and prediction read
        a = np.concatenate([b for _, b in iter_patch_batches(files[set_], 3)])
        b = np.concatenate([b for _, b in iter_patch_batches(ref_files[set_], 3)])
        assert np.array_equal(a, b)

    # the sources are relative to the virtual file: another working folder, a moved root
    moved = tmp_path / "elsewhere" / "root"
    shutil.copytree(layout.root, moved)
    shutil.rmtree(layout.root)
    monkeypatch.chdir(tmp_path / "elsewhere")
    for path in (moved / "patches" / files["train"].name, os.path.join("root", "patches", files["train"].name)):
        assert np.array_equal(read(path)[0], read(ref_files["train"])[0])
    # a shard gone: NaN rows, which missing_sources names
    (moved / "patches" / shards[1].parent.name / shards[1].name).unlink()
    assert patches.missing_sources(moved / "patches" / files["train"].name) == [
        f"{shards[1].parent.name}/{shards[1].name}"]
    feats = read(moved / "patches" / files["train"].name)[0]
    assert np.isnan(feats[4 * NPATCHES:8 * NPATCHES]).all() and not np.isnan(feats[:4 * NPATCHES]).any()
    # every tartarus reader refuses it, naming the shard, instead of training on NaN
    with pytest.raises(MissingInput, match=shards[1].name):
        next(iter_patch_batches(moved / "patches" / files["train"].name, 3))


def test_patch_shards_resume_and_local_rerun(tmp_path, client, entry, reference):
    """A rerun reuses the shards whose parameters and items match; other parameters rewrite them; a
    local run afterwards writes the plain file again and removes the shards."""
    ref_layout, _, ref_files = reference
    layout = DataLayout(tmp_path / "data")
    shutil.copytree(ref_layout.root, layout.root)
    for path in ref_files.values():  # the cluster writes these
        (layout.patches_dir / path.name).unlink()
    run = functools.partial(patches.create_patches, layout, entry, npatches=NPATCHES, window=WINDOW,
                            scheduler=client, shard_items=4, progress=False)
    run()
    folder = layout.patch_shards_dir("train", DS, NPATCHES, WINDOW)
    stamps = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    (folder / "shard_00001.hdf5").unlink()
    fileio.write_text(folder / "shard_00009.hdf5", "left over from a longer split")
    files = run()
    after = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    assert set(after) == set(stamps)  # shard 1 written again, the leftover removed
    assert all(after[name] == stamps[name] for name in stamps if name != "shard_00001.hdf5")
    assert_same_patches(files, ref_files)

    other = run(seed=5)  # other crops: every shard is rewritten
    assert all(p.stat().st_mtime_ns != after[p.name] for p in folder.iterdir())
    assert not np.array_equal(read(other["train"])[0], read(ref_files["train"])[0])
    files = run()
    assert_same_patches(files, ref_files)

    local = patches.create_patches(layout, entry, npatches=NPATCHES, window=WINDOW)
    assert_same_patches(local, ref_files, virtual=False)
    assert not any(layout.patch_shards_dir(s, DS, NPATCHES, WINDOW).exists() for s in SETS)


# ------------------------------------------------------------------ a worker killed mid-run
def exit_once(marker, name, chunk, *shared):
    """The first time any worker gets here (the marker file says it happened), start the work on
    the chunk and end this worker process at once, midway; afterwards, the work itself.

    ``name``: ``process_chunk`` or ``write_shard``, looked up in the worker's own, unpatched module.
    """
    work = getattr(runner if name == "process_chunk" else patches, name)
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return work(chunk, *shared)
    os.close(fd)
    if name == "write_shard":  # half a shard's temporary file, as a worker dying mid-write leaves
        path, _ = chunk
        with fileio.atomic_path(path) as tmp:
            tmp.write_bytes(b"\x89HDF\r\n half")
            os._exit(1)
    work(chunk[:1], *shared)
    os._exit(1)


def test_a_killed_worker_loses_nothing(tmp_path, monkeypatch, cluster, client, entry, reference):
    ref_layout, _, ref_files = reference
    layout = make_data(tmp_path / "data")
    marker = tmp_path / "killed_spectrograms"
    monkeypatch.setattr(runner, "process_chunk", functools.partial(exit_once, str(marker), "process_chunk"))
    report = runner.compute_spectrograms(layout, entry, progress=False, scheduler=cluster.scheduler_address)
    assert marker.exists()  # a worker did die
    assert (report.done, len(report.failed)) == (15, 4)
    assert_same_spectrograms(layout, ref_layout)
    assert errors_of(layout) == errors_of(ref_layout)
    monkeypatch.undo()

    # a rerun (after a killed client, say) computes only what is missing
    for name in ("D003.npy", "D011.npy"):
        (layout.spectrograms_dir(DS) / name).unlink()
    client.wait_for_workers(2, timeout=60)
    again = runner.compute_spectrograms(layout, entry, progress=False, scheduler=client)
    assert (again.done, again.skipped, len(again.failed)) == (2, 13, 4)
    assert_same_spectrograms(layout, ref_layout)

    marker = tmp_path / "killed_patches"
    monkeypatch.setattr(patches, "write_shard", functools.partial(exit_once, str(marker), "write_shard"))
    files = patches.create_patches(layout, entry, npatches=NPATCHES, window=WINDOW, scheduler=client,
                                   shard_items=3, progress=False)
    monkeypatch.undo()
    assert marker.exists()
    assert_same_patches(files, ref_files)
    folders = [layout.patch_shards_dir(s, DS, NPATCHES, WINDOW) for s in SETS]
    # the dead worker's half shard: gone already if a worker swept the folder after the death
    assert len([p for f in folders for p in f.glob(".*tmp*")]) <= 1
    patches.create_patches(layout, entry, npatches=NPATCHES, window=WINDOW, scheduler=client, shard_items=3,
                           progress=False)
    assert not [p for f in folders for p in f.glob(".*tmp*")]  # removed by the rerun


def raise_full_disk(chunk, plan):
    raise OutputError(chunk[0][2], errno.ENOSPC)


def test_output_error_on_a_worker_stops_the_run(tmp_path, monkeypatch, client, entry):
    layout = make_data(tmp_path / "data")
    monkeypatch.setattr(runner, "process_chunk", raise_full_disk)
    with pytest.raises(OutputError) as info:
        runner.compute_spectrograms(layout, entry, progress=False, scheduler=client)
    assert info.value.code == errno.ENOSPC and info.value.path.startswith(os.path.abspath(layout.spectrograms_dir(DS)))
    assert "no space left" in str(info.value)
    assert not layout.spectrogram_errors(DS).exists()  # no input blamed


# ------------------------------------------------------------------- addresses and the CLI
def closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_scheduler_is_one_config_error(tmp_path, entry, capsys, monkeypatch):
    layout = make_data(tmp_path / "data")
    address = f"tcp://127.0.0.1:{closed_port()}"
    with pytest.raises(ConfigError, match="cannot reach the Dask scheduler") as info:
        runner.compute_spectrograms(layout, entry, progress=False, scheduler=address)
    assert address in str(info.value) and "dask scheduler" in str(info.value)
    assert not layout.spectrograms_dir(DS).exists()  # nothing written
    with pytest.raises(ConfigError, match="port 'x' is not a number"):
        with connect("tcp://127.0.0.1:x"):
            pass
    # a server of another protocol (an HTTP reply): one ConfigError, not the client reading it as a frame
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)

        def answer():
            conn, _ = server.accept()
            with conn:
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")
        thread = threading.Thread(target=answer, daemon=True)
        thread.start()
        with pytest.raises(ConfigError, match="answered b'HTTP/1.1', unlike a Dask scheduler"):
            with connect(f"127.0.0.1:{server.getsockname()[1]}"):
                pass
        thread.join(5)
    monkeypatch.setenv(SCHEDULER_ENV, address)
    assert main(["spectrograms", DS, "--data-dir", str(layout.root)]) == 2
    line = cli_error_line(capsys)
    assert "cannot reach the Dask scheduler" in line and address in line
    assert not layout.spectrograms_dir(DS).exists()


def test_workers_must_see_the_data_root(tmp_path, client):
    check_workers_see(client, tmp_path)
    with pytest.raises(ConfigError, match="cannot see the data root"):
        check_workers_see(client, tmp_path / "not here")


def test_cli_scheduler_option_and_environment(tmp_path, cluster, entry, reference, monkeypatch, capsys):
    """--scheduler reaches the cluster; so does $TARTARUS_SCHEDULER; --scheduler wins over it."""
    ref_layout, _, ref_files = reference
    layout = make_data(tmp_path / "data")
    root = str(layout.root)
    monkeypatch.setenv(SCHEDULER_ENV, f"tcp://127.0.0.1:{closed_port()}")  # unreachable: the option wins
    assert main(["spectrograms", DS, "--data-dir", root, "--scheduler", cluster.scheduler_address]) == 0
    assert_same_spectrograms(layout, ref_layout)
    monkeypatch.setenv(SCHEDULER_ENV, cluster.scheduler_address)
    assert main(["patches", DS, "--npatches", str(NPATCHES), "--window", str(WINDOW), "--data-dir", root]) == 0
    files = {s: layout.patches(s, DS, NPATCHES, WINDOW) for s in SETS}
    assert_same_patches(files, ref_files)  # virtual: the cluster wrote it
    assert main(["patches", DS, "--npatches", str(NPATCHES), "--window", str(WINDOW), "--data-dir", root,
                 "--scheduler", ""]) == 0  # an empty address: here
    assert_same_patches(files, ref_files, virtual=False)
    capsys.readouterr()


def test_a_cluster_without_workers_is_one_clear_error(tmp_path):
    """A scheduler alone runs nothing: with or without a data root to check, one ConfigError."""
    with local_cluster(n_workers=0) as empty:
        for root in (None, tmp_path):
            with pytest.raises(ConfigError, match="has no workers; start some with `dask worker"):
                with on_cluster(empty.scheduler_address, root):
                    pass
