"""Prepared sets: image folders decoded and preprocessed once (Sec. 2), then
read as a uint8 memory-mapped array, so training epochs never re-decode JPEGs.

A prepared set is a folder:

    images.u8     raw uint8, (N, 3, S, S) in C order (S = crop, 256 by default)
    labels.npy    (N,) int64
    mean.npy      (3, S, S) float32, the mean image of this set (Sec. 2)
    rgb_cov.npy   (3, 3) float64, covariance of the RGB values of all pixels
    eigvals.npy   (3,) float64, eigvecs.npy (3, 3): its PCA (Sec. 4.1)
    classes.txt   one line per class: folder name<TAB>readable name
    manifest.tsv  every listed source file: label, class, status (ok/skipped), row, reason
    skipped.tsv   the skipped files and why
    meta.json     shape, dtype, source, short_side, crop, skipped files, ...; written last

``preparer.prepare`` writes it (resumably, in worker processes);
``python -m minialex.data prepare`` is its command line.

For a validation set, subtract the *training* set's mean (``train.mean``),
not the validation set's own.
"""
from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..progress import Progress
from .folder import list_image_folder, warn_skipped
from .preprocess import pixel_moments, preprocess_image

FORMAT_VERSION = 1


def _decode_all(paths, short_side, crop, workers, progress, desc, moments=False):
    """Yield ``(i, image or None, error)`` in order, decoding in threads.

    With ``moments`` the items are ``(i, (image, pixel_moments(image)) or None, error)``.

    Pillow releases the GIL while decoding and resizing, so threads give
    real parallelism. Work is submitted in chunks to bound memory.
    """
    workers = workers or min(8, os.cpu_count() or 1)

    def job(p):
        try:
            a = preprocess_image(p, short_side, crop)
            return ((a, pixel_moments(a)) if moments else a), None
        except Exception as e:  # corrupt / truncated / unreadable: skip, warn once later
            return None, f"{type(e).__name__}: {e}"

    bar = Progress(len(paths), desc=desc, unit="img", enabled=progress)
    chunk = 256
    with ThreadPoolExecutor(workers) as pool:
        for start in range(0, len(paths), chunk):
            for j, (a, err) in enumerate(pool.map(job, paths[start:start + chunk])):
                bar.update()
                yield start + j, a, err
    bar.close()


def load_image_folder(root, short_side=None, crop=None, synsets=None, max_per_class=None,
                      workers=None, progress=False, folder=None, indices=None):
    """Decode an image folder (or the files ``indices`` of it) into memory.

    With ``short_side=None, crop=None`` the images are kept at their size, and
    must all share it (CIFAR-10: 32x32). Unreadable files are skipped with one
    warning. ``folder`` is a listing already made (``list_image_folder``);
    ``indices`` (sorted ints) picks the files to decode, the rest are never
    opened (``FolderImages`` decides which, e.g. for ``--limit``).

    Returns
    -------
    x : (N, 3, H, W) uint8
    y : (N,) int64
    folder : ImageFolder (classes, names, paths)
    """
    if folder is None:
        folder = list_image_folder(root, synsets=synsets, max_per_class=max_per_class)
    pick = np.arange(len(folder)) if indices is None else np.asarray(indices)
    xs, ys, skipped = [], [], []
    for j, a, err in _decode_all([folder.paths[i] for i in pick], short_side, crop, workers, progress,
                                 f"load {root}"):
        i = pick[j]
        if a is None:
            skipped.append((folder.paths[i], err))
            continue
        if xs and a.shape != xs[0].shape:
            raise ValueError(
                f"{folder.paths[i]} is {a.shape[1]}x{a.shape[0]}, but earlier images are "
                f"{xs[0].shape[1]}x{xs[0].shape[0]}; pass short_side= and crop= to make them equal")
        xs.append(a)
        ys.append(folder.labels[i])
    warn_skipped(skipped, root)
    if not xs:
        raise ValueError(f"no readable images in {str(root)!r}")
    x = np.stack(xs).transpose(0, 3, 1, 2)  # (N, H, W, 3) -> (N, 3, H, W)
    return np.ascontiguousarray(x), np.asarray(ys, dtype=np.int64), folder


@dataclass
class PreparedSet:
    """A prepared set opened for reading (see the module docstring).

    images: (N, 3, S, S) uint8 np.memmap (read-only); labels: (N,) int64;
    mean: (3, S, S) float32; rgb_cov: (3, 3); eigvals: (3,); eigvecs: (3, 3);
    classes, names: lists of str; meta: dict; path: Path.
    """

    path: Path
    images: np.ndarray
    labels: np.ndarray
    mean: np.ndarray
    rgb_cov: np.ndarray
    eigvals: np.ndarray
    eigvecs: np.ndarray
    classes: list
    names: list
    meta: dict

    def __len__(self):
        return len(self.labels)

    @property
    def pca(self):
        """``(eigvals, eigvecs)``, ready for ``TrainTransform(pca=...)``."""
        return self.eigvals, self.eigvecs


def open_prepared(path) -> PreparedSet:
    """Open a prepared set; the images stay on disk (read-only memmap)."""
    path = Path(path)
    meta_file = path / "meta.json"
    if not meta_file.is_file():
        raise ValueError(f"{path} is not a prepared set (no meta.json); run `python -m minialex.data prepare`")
    try:
        with open(meta_file, encoding="utf-8") as f:
            meta = json.load(f)
        shape = tuple(int(v) for v in meta["shape"])
    except (ValueError, KeyError, TypeError) as e:   # JSONDecodeError is a ValueError
        raise ValueError(f"{meta_file} is corrupt ({type(e).__name__}: {e}); prepare the set again") from None
    if meta.get("format") != FORMAT_VERSION:
        raise ValueError(f"{path}: prepared-set format {meta.get('format')!r}, expected {FORMAT_VERSION}")
    expected = int(np.prod(shape))
    size = (path / "images.u8").stat().st_size
    if size != expected:
        raise ValueError(f"{path / 'images.u8'} has {size} bytes, expected {expected} for shape {shape}")
    images = np.memmap(path / "images.u8", dtype=np.uint8, mode="r", shape=shape)
    classes, names = [], []
    with open(path / "classes.txt", encoding="utf-8") as f:
        for line in f:
            c, name = line.rstrip("\n").split("\t", 1)
            classes.append(c)
            names.append(name)
    return PreparedSet(
        path=path, images=images, labels=np.load(path / "labels.npy"),
        mean=np.load(path / "mean.npy"), rgb_cov=np.load(path / "rgb_cov.npy"),
        eigvals=np.load(path / "eigvals.npy"), eigvecs=np.load(path / "eigvecs.npy"),
        classes=classes, names=names, meta=meta)
