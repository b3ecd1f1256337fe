"""CIFAR-10: the official pickle batches, md5 checks, atomic extraction and download, the JPEG copy."""
import hashlib
import io
import pickle
import tarfile
import urllib.error

import numpy as np
import pytest

from data_helpers import SHARED_DATA
from minialex.data import cifar10
from minialex.data.cifar10 import (MD5, download_cifar10, extract_cifar10, load_cifar10,
                                   load_cifar10_jpg, read_batch)

N_PER_BATCH = 4


def synthetic_archive(path):
    """A tiny archive in the official format: 5 x 4 training + 4 test images."""
    rng = np.random.default_rng(0)
    batches = {}
    with tarfile.open(path, "w:gz") as tf:
        def add(name, obj):
            raw = pickle.dumps(obj, protocol=2)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(raw)
            tf.addfile(info, io.BytesIO(raw))

        for name in cifar10.TRAIN_BATCHES + cifar10.TEST_BATCHES:
            data = rng.integers(0, 256, (N_PER_BATCH, 3072), dtype=np.uint8)
            labels = rng.integers(0, 10, N_PER_BATCH).tolist()
            batches[name] = (data, labels)
            add(name, {b"batch_label": name.encode(), b"labels": labels, b"data": data,
                       b"filenames": [b"f%d.png" % i for i in range(N_PER_BATCH)]})
        add("batches.meta", {b"label_names": [c.encode() for c in cifar10.CLASSES],
                             b"num_vis": 3072, b"num_cases_per_batch": N_PER_BATCH})
    return batches


def md5(path):
    return hashlib.md5(path.read_bytes()).hexdigest()


def leftovers(root):
    return sorted(p.name for p in root.iterdir())


def test_official_md5_constant():
    assert MD5 == "c58f30108f718f92721af3b95e74349a"


def test_extract_and_read(tmp_path):
    arc = tmp_path / "dl" / cifar10.ARCHIVE
    arc.parent.mkdir()
    batches = synthetic_archive(arc)
    xtr, ytr, xte, yte, classes = load_cifar10(arc.parent, md5=md5(arc))
    assert xtr.shape == (20, 3, 32, 32) and xtr.dtype == np.uint8 and ytr.dtype == np.int64
    assert xte.shape == (4, 3, 32, 32) and classes == cifar10.CLASSES
    data, labels = batches["data_batch_2"]
    row = data[1]  # image 1 of batch 2 = training image 5
    np.testing.assert_array_equal(xtr[5, 0], row[:1024].reshape(32, 32))      # R plane, row-major
    np.testing.assert_array_equal(xtr[5, 2], row[2048:].reshape(32, 32))      # B plane
    assert ytr[4:8].tolist() == labels
    np.testing.assert_array_equal(xte.reshape(4, -1), batches["test_batch"][0])
    assert leftovers(arc.parent) == sorted([cifar10.ARCHIVE, cifar10.FOLDER])  # no temp folders left


def test_wrong_md5_leaves_nothing(tmp_path):
    arc = tmp_path / cifar10.ARCHIVE
    synthetic_archive(arc)
    with pytest.raises(ValueError, match="md5 is .* expected c58f30108f718f92721af3b95e74349a"):
        extract_cifar10(arc, tmp_path)  # the official checksum: our synthetic file fails it
    assert leftovers(tmp_path) == [cifar10.ARCHIVE]


def test_truncated_archive_leaves_nothing(tmp_path):
    arc = tmp_path / cifar10.ARCHIVE
    synthetic_archive(arc)
    raw = arc.read_bytes()
    arc.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match="md5"):  # with the official checksum: caught by md5 first
        extract_cifar10(arc, tmp_path)
    with pytest.raises(ValueError, match="truncated"):  # checksum matches the truncated bytes
        extract_cifar10(arc, tmp_path, md5=md5(arc))
    assert leftovers(tmp_path) == [cifar10.ARCHIVE]


def test_not_a_batch(tmp_path):
    p = tmp_path / "data_batch_1"
    p.write_bytes(pickle.dumps({b"something": 1}))
    with pytest.raises(ValueError, match="not a CIFAR-10 python batch"):
        read_batch(p)


def test_missing_data_without_download(tmp_path):
    with pytest.raises(ValueError, match="download=True"):
        load_cifar10(tmp_path)


class FakeResponse(io.BytesIO):
    def __init__(self, raw):
        super().__init__(raw)
        self.headers = {"Content-Length": str(len(raw))}


def test_download_offline_is_a_clear_error(tmp_path, monkeypatch):
    def offline(url, timeout=None):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(cifar10.urllib.request, "urlopen", offline)
    with pytest.raises(RuntimeError, match="could not download CIFAR-10.*place it at"):
        download_cifar10(tmp_path, progress=False)
    assert leftovers(tmp_path) == []


def test_download_checksum(tmp_path, monkeypatch):
    src = tmp_path / "src.tar.gz"
    synthetic_archive(src)
    raw = src.read_bytes()
    monkeypatch.setattr(cifar10.urllib.request, "urlopen", lambda url, timeout=None: FakeResponse(raw))
    root = tmp_path / "root"
    with pytest.raises(ValueError, match="md5"):
        download_cifar10(root, progress=False)  # official md5: mismatch, download deleted
    assert leftovers(root) == []
    xtr, *_ = load_cifar10(root, download=True, md5=md5(src))
    assert xtr.shape == (20, 3, 32, 32)
    assert leftovers(root) == sorted([cifar10.ARCHIVE, cifar10.FOLDER])


def test_jpeg_copy_through_image_folder():
    root = SHARED_DATA / "cifar10-jpg"
    if not root.is_dir():
        pytest.skip(f"real data absent: {root}")
    xtr, ytr, xte, yte, classes = load_cifar10_jpg(root, max_per_class=3)
    assert classes == cifar10.CLASSES
    assert xtr.shape == (30, 3, 32, 32) and xte.shape == (30, 3, 32, 32)
    assert ytr.tolist() == [k for k in range(10) for _ in range(3)]
    assert 20 < xtr.mean() < 235 and xtr.std() > 10  # real pictures, not blank
