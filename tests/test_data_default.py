"""The bundled default dataset: a real, class-balanced CIFAR-10 subset inside the package."""
import numpy as np
import pytest

from data_helpers import SHARED_DATA
from minialex.data import load_default, load_rgb
from minialex.data.default import PATH


def test_shapes_balance_and_names():
    d = load_default()
    assert d.x_train.shape == (10000, 3, 32, 32) and d.x_train.dtype == np.uint8
    assert d.x_test.shape == (2000, 3, 32, 32) and d.x_test.dtype == np.uint8
    assert d.y_train.dtype == np.int64 and d.y_test.dtype == np.int64
    assert np.bincount(d.y_train).tolist() == [1000] * 10
    assert np.bincount(d.y_test).tolist() == [200] * 10
    assert d.class_names == ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                             "ship", "truck")
    assert 80 < d.x_train.mean() < 170 and d.x_train.std() > 40  # real photographs


def test_small_cached_and_read_only():
    assert PATH.stat().st_size <= 15 * 2 ** 20
    d = load_default()
    assert load_default() is d
    with pytest.raises(ValueError):
        d.x_train[0, 0, 0, 0] = 1


def test_matches_the_shared_jpeg_copy():
    root = SHARED_DATA / "cifar10-jpg"
    if not root.is_dir():
        pytest.skip(f"real data absent: {root}")
    d = load_default()
    for split, x, idx in (("train", d.x_train, [0, 999, 1000, 9999]), ("test", d.x_test, [0, 1999])):
        for i in idx:
            cls = d.class_names[i // (len(x) // 10)]
            name = f"{i % (len(x) // 10):04d}.jpg"
            ref = np.asarray(load_rgb(root / split / cls / name)).transpose(2, 0, 1)  # (H, W, 3) -> (3, H, W)
            np.testing.assert_array_equal(x[i], ref)


def test_the_script_that_made_it(tmp_path):
    root = SHARED_DATA / "cifar10-jpg"
    if not root.is_dir():
        pytest.skip(f"real data absent: {root}")
    import importlib.util
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "scripts" / "make_default_data.py"
    spec = importlib.util.spec_from_file_location("make_default_data", script)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = tmp_path / "small.npz"
    mod.main(["--src", str(root), "--train", "3", "--test", "2", "--out", str(out)])
    small = load_default(out)
    d = load_default()
    assert small.x_train.shape == (30, 3, 32, 32) and small.x_test.shape == (20, 3, 32, 32)
    np.testing.assert_array_equal(small.x_train[:3], d.x_train[:3])      # same first files of class 0
    np.testing.assert_array_equal(small.x_train[3:6], d.x_train[1000:1003])  # and of class 1
    assert small.class_names == d.class_names


def test_default_subset_is_random_class_mixed_and_seeded():
    import numpy as np
    import pytest

    from minialex.data import default_subset, load_default

    d = load_default()
    xtr, ytr, xte, yte = default_subset(500, 200, seed=3)
    assert xtr.shape == (500, 3, 32, 32) and xte.shape == (200, 3, 32, 32) and xtr.dtype == np.uint8
    assert len(np.unique(ytr)) == 10 and len(np.unique(yte)) == 10      # a plain slice would hold 1 class
    pick = np.random.default_rng(3)                                     # the documented draws
    tr, te = pick.permutation(10000)[:500], pick.permutation(2000)[:200]
    np.testing.assert_array_equal(xtr, d.x_train[tr])
    np.testing.assert_array_equal(yte, d.y_test[te])
    again = default_subset(500, 200, seed=3)
    np.testing.assert_array_equal(again[0], xtr)
    with pytest.raises(ValueError, match=r"n_train must be in 1..10000, got 0"):
        default_subset(0, 10)
