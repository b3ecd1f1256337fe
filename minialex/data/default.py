"""The bundled default dataset: a small, real, class-balanced CIFAR-10 subset.

It ships inside the package (``default_cifar10.npz``, ~11 MB), so the default
training run works on a fresh machine with no network and no ../shared. It
holds the first 1,000 training and first 200 test images of each class of
the JPEG copy of CIFAR-10 (original dataset order), as the JPEG bytes
themselves (quality 75, ~1 KB each); ``scripts/make_default_data.py`` made it.
They are decoded with Pillow on first use and cached for the process.
"""
from __future__ import annotations

import io
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

PATH = Path(__file__).with_name("default_cifar10.npz")


@dataclass(frozen=True)
class DefaultData:
    """The bundled CIFAR-10 subset. Arrays are shared and read-only; copy to modify.

    x_train : (10000, 3, 32, 32) uint8, NCHW (the layers' layout)
    y_train : (10000,) int64, 1,000 per class
    x_test  : (2000, 3, 32, 32) uint8
    y_test  : (2000,) int64, 200 per class
    class_names : tuple of 10 str ("airplane", ..., "truck")
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple


def decode_jpegs(data: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Decode concatenated JPEG files into one array (about 0.15 ms per 32x32 image).

    Shapes:  data: (B,) uint8; offsets: (n+1,) -> (n, 3, H, W) uint8
    All images must share one size (CIFAR: 32x32).
    """
    buf = data.tobytes()
    n = len(offsets) - 1
    out = None
    for i in range(n):
        with Image.open(io.BytesIO(buf[offsets[i]:offsets[i + 1]]), formats=("JPEG",)) as im:
            a = np.asarray(im if im.mode == "RGB" else im.convert("RGB"))  # (H, W, 3)
        if out is None:
            out = np.empty((n,) + a.shape, dtype=np.uint8)  # (n, H, W, 3)
        out[i] = a
    return np.ascontiguousarray(out.transpose(0, 3, 1, 2))  # (n, H, W, 3) -> (n, 3, H, W)


_cache = {}
_lock = threading.Lock()


def load_default(path=None) -> DefaultData:
    """Return the bundled CIFAR-10 subset (decoded once per process, then cached).

    Shapes:  x_train (10000, 3, 32, 32) uint8, y_train (10000,) int64,
             x_test (2000, 3, 32, 32) uint8, y_test (2000,) int64
    The images are **grouped by class** (all of class 0, then class 1, ...),
    so ``x_train[:2000]`` holds two classes only: draw a random subset
    (``rng.permutation``) or let ``BatchLoader`` shuffle.
    """
    path = Path(path) if path is not None else PATH
    with _lock:
        if path not in _cache:
            if not path.is_file():
                raise FileNotFoundError(
                    f"bundled dataset {path} is missing; reinstall minialex or rebuild it with "
                    "`python scripts/make_default_data.py`")
            with np.load(path, allow_pickle=False) as z:
                arrays = {}
                for split in ("train", "test"):
                    x = decode_jpegs(z[f"{split}_bytes"], z[f"{split}_offsets"])
                    y = z[f"{split}_labels"].astype(np.int64)
                    x.flags.writeable = False
                    y.flags.writeable = False
                    arrays[split] = (x, y)
                names = tuple(str(s) for s in z["class_names"])
            _cache[path] = DefaultData(*arrays["train"], *arrays["test"], names)
        return _cache[path]


def default_subset(n_train, n_test, seed=0, data=None):
    """A random, class-mixed subset of the bundled data, for quick experiments.

    The bundled arrays are grouped by class, so a plain slice would hold a
    few classes only. One generator seeded with ``seed`` draws a permutation
    of the training split, then one of the test split; the first ``n_train``
    and ``n_test`` indices are kept.

    Shapes:  -> x_train (n_train, 3, 32, 32) uint8, y_train (n_train,) int64,
                x_test (n_test, 3, 32, 32) uint8, y_test (n_test,) int64
    """
    data = load_default() if data is None else data
    for name, n, total in (("n_train", n_train, len(data.x_train)), ("n_test", n_test, len(data.x_test))):
        if not 0 < n <= total:
            raise ValueError(f"default_subset: {name} must be in 1..{total}, got {n!r}")
    pick = np.random.default_rng(seed)
    tr = pick.permutation(len(data.x_train))[:n_train]
    te = pick.permutation(len(data.x_test))[:n_test]
    return data.x_train[tr], data.y_train[tr], data.x_test[te], data.y_test[te]
