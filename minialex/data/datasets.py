"""Which images a run trains and tests on: ``--data default | cifar10 | PATH`` resolved into a Dataset.

    data = load_dataset("default")                     # the bundled CIFAR-10 subset (no download)
    x, y = subset(data.x_test, data.y_test, 500, seed=0)

Used by the command lines (``python -m minialex.train``, ``evaluate``,
``viz``) and by anything else that names a dataset the same way.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError
from .cifar10 import CIFAR10NotFound, load_cifar10
from .default import load_default
from .folder_images import FolderImages
from .prepared import open_prepared


@dataclass
class Dataset:
    """Training and held-out images for a run: uint8 NCHW arrays, memmaps (prepared sets) or
    ``FolderImages`` (image folders, decoded by ``subset`` only where used)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple
    name: str
    mean: np.ndarray = None        # (3, S, S) training mean image (Sec. 2); computed when None
    pca: tuple = None              # (eigvals, eigvecs) of the training RGB covariance (Sec. 4.1)
    held_name: str = "test"        # what the held-out split is: "val" or "test" (the log says so)


def check_data_folder(spec, need_train=True):
    """Raise DataError unless ``spec`` is a folder with train/ (if needed) and val/ or test/."""
    root = Path(spec)
    if not root.exists():
        raise DataError(f"--data {spec!r}: no such folder; expected default, cifar10 or a folder with train/ "
                        "and val/ (or test/)")
    if not root.is_dir():
        raise DataError(f"--data {spec!r} is a file; expected default, cifar10 or a folder with train/ and "
                        "val/ (or test/)")
    missing = ([] if (root / "train").is_dir() or not need_train else ["train/"]) + \
        ([] if (root / "val").is_dir() or (root / "test").is_dir() else ["val/ (or test/)"])
    if missing:
        raise DataError(f"--data {spec}: no {' and no '.join(missing)} in it; expected {root}/train/ and "
                        f"{root}/val/ (or {root}/test/), each an image folder or a prepared set")


def load_dataset(spec, image_size=32, data_root="data", download=False, seed=0):
    """Resolve --data into a Dataset.

    image_size: the stored size for image folders (256 for the paper net,
    Sec. 2; 32 for CIFAR-sized nets, where no rescale happens).
    """
    if spec == "default":
        d = load_default()
        return Dataset(d.x_train, d.y_train, d.x_test, d.y_test, tuple(d.class_names), "bundled CIFAR-10 subset")
    if spec == "cifar10":
        root = Path(data_root)
        try:
            xtr, ytr, xte, yte, classes = load_cifar10(root, download=download)
            return Dataset(xtr, ytr, xte, yte, tuple(classes), f"CIFAR-10 ({root})")
        except CIFAR10NotFound:                     # absent: the JPEG copy; corrupt or forged: an error
            jpg = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "cifar10-jpg"
            if not jpg.is_dir():
                raise
            print(f"no official CIFAR-10 in {root}; using the JPEG copy {jpg}", file=sys.stderr)
            tr, te = FolderImages(jpg / "train", progress=True), FolderImages(jpg / "test", progress=True)
            if tr.classes != te.classes:
                raise ValueError(f"{jpg}: train classes {tr.classes} differ from test classes {te.classes}")
            return Dataset(tr, tr.labels, te, te.labels, tuple(tr.classes), f"CIFAR-10 JPEG copy ({jpg})")
    root = Path(spec)
    check_data_folder(spec)
    held = next(root / s for s in ("val", "test") if (root / s).is_dir())
    if (root / "train" / "meta.json").is_file():
        tr, te = open_prepared(root / "train"), open_prepared(held)
        names = tuple(tr.names)
        return Dataset(tr.images, tr.labels, te.images, te.labels, names, f"prepared {root}", tr.mean, tr.pca,
                       held_name=held.name)
    big = image_size > 64
    kw = dict(short_side=image_size, crop=image_size) if big else {}
    tr, te = FolderImages(root / "train", progress=True, **kw), FolderImages(held, progress=True, **kw)
    if tr.classes != te.classes:
        raise DataError(f"--data {spec}: classes of train/ and {held.name}/ differ "
                        f"({len(tr.classes)} and {len(te.classes)} class folders)")
    return Dataset(tr, tr.labels, te, te.labels, tuple(tr.names), f"image folder {root}", held_name=held.name)


def subset(x, y, n, seed):
    """A seeded random subset of n items (all when n >= len), in sorted index order.

    For ``FolderImages`` the subset is chosen from the listing and only its
    files are decoded (unreadable ones are skipped with a warning), so a
    ``--limit N`` run's set-up grows with N, not with the folder.
    """
    idx = None
    if n is not None and n < len(y):
        idx = np.sort(np.random.default_rng([seed, 12345]).choice(len(y), size=n, replace=False))
    if isinstance(x, FolderImages):
        return x.load(idx)
    return (x, y) if idx is None else (x[idx], y[idx])
