"""Decode only what is used (issue 17, item 3): image folders named by --data
are listed, and --limit decodes only its subset; a folder too large for memory
is refused with a pointer to prepare."""
import numpy as np
import pytest

import minialex.data.prepared as prepared_mod
from data_helpers import SHARED_DATA, make_folder
from minialex.data import FolderImages, load_dataset, load_image_folder, subset
from minialex.data import folder_images as fi


@pytest.fixture
def count_decodes(monkeypatch):
    """Count the files that the folder loader decodes."""
    calls = []
    orig = prepared_mod.preprocess_image

    def counting(p, *a, **k):
        calls.append(p)
        return orig(p, *a, **k)

    monkeypatch.setattr(prepared_mod, "preprocess_image", counting)
    return calls


def test_listing_decodes_nothing_and_subset_decodes_its_files(tmp_path, count_decodes):
    make_folder(tmp_path / "r")
    imgs = FolderImages(tmp_path / "r", short_side=16, crop=16)
    assert len(imgs) == 6 and imgs.shape == (6, 3, 16, 16) and count_decodes == []
    x, y = subset(imgs, imgs.labels, 3, seed=4)
    assert len(count_decodes) == 3 and x.shape == (3, 3, 16, 16)
    # the same images and labels as decoding everything, then taking the subset
    xa, ya, _ = load_image_folder(tmp_path / "r", short_side=16, crop=16)
    xs, ys = subset(xa, ya, 3, seed=4)
    np.testing.assert_array_equal(x, xs)
    np.testing.assert_array_equal(y, ys)
    np.testing.assert_array_equal(imgs[np.array([0, 5])], xa[[0, 5]])   # figures index it directly
    x_all, _ = subset(imgs, imgs.labels, None, seed=0)
    np.testing.assert_array_equal(x_all, xa)


def test_too_large_for_memory_points_at_prepare(tmp_path, monkeypatch):
    make_folder(tmp_path / "data" / "train")
    monkeypatch.setattr(fi, "available_memory", lambda: 4 * 3 * 256 * 256)   # room for two images, not six
    imgs = FolderImages(tmp_path / "data" / "train", short_side=256, crop=256)
    with pytest.raises(ValueError, match=r"python -m minialex.data prepare .*data DST.*--data DST"):
        imgs.load()
    with pytest.raises(ValueError, match="prepare"):
        imgs[np.arange(6)]                # indexing (figures) is checked too
    x, _ = imgs.load(np.array([1]))   # one image fits
    assert x.shape == (1, 3, 256, 256) and imgs[np.array([2])].shape == (1, 3, 256, 256)


def test_train_on_a_folder_with_limit_decodes_only_the_limit(tmp_path, count_decodes):
    for split in ("train", "val"):
        make_folder(tmp_path / "d" / split)
    data = load_dataset(str(tmp_path / "d"), image_size=224)
    assert count_decodes == []
    x, y = subset(data.x_train, data.y_train, 2, seed=0)
    xv, yv = subset(data.x_test, data.y_test, 2, seed=1)
    assert len(count_decodes) == 4 and x.shape == (2, 3, 224, 224) and xv.shape == (2, 3, 224, 224)


def test_cifar10_jpeg_copy_with_limit(tmp_path, count_decodes):
    jpg = SHARED_DATA / "cifar10-jpg"
    if not jpg.is_dir():
        pytest.skip(f"real data absent: {jpg}")
    data = load_dataset("cifar10", data_root=str(tmp_path))   # no official batches there: the JPEG copy
    assert len(data.y_train) == 50000 and len(data.y_test) == 10000 and count_decodes == []
    x, y = subset(data.x_train, data.y_train, 200, seed=0)
    assert len(count_decodes) == 200 and x.shape == (200, 3, 32, 32)
    assert np.bincount(y, minlength=10).sum() == 200

