"""An image folder that a run names, decoded only where it is used.

``--data PATH`` with image folders (not a prepared set) and the CIFAR-10 JPEG
copy used to be decoded whole before training started: 13,394 Imagenette
images (40 s, 5.5 GB) for a ``--limit 64`` run, 60,000 CIFAR-10 images for
``--limit 2000``. ``FolderImages`` lists the files (no decoding) and decodes
only what is asked for:

    imgs = FolderImages("imagenette2-224/train", short_side=256, crop=256)
    len(imgs), imgs.shape                  # 9469, (9469, 3, 256, 256): from the listing alone
    x, y = imgs.load(np.array([3, 17]))    # decodes two files
    x, y = imgs.load()                     # every file, if it fits in memory

``load`` refuses, with a message that points at ``python -m minialex.data
prepare``, when the images would take more than half of the memory that is
available: a prepared set is read from disk batch by batch instead.
``imgs[idx]`` decodes the files ``idx`` as an array (for figures), raising
on an unreadable file; ``load`` skips unreadable files with one warning.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .folder import list_image_folder
from .prepared import load_image_folder
from .preprocess import preprocess_image


def available_memory() -> int:
    """Bytes of memory available to a new allocation (Linux MemAvailable; else physical memory)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 1 << 62


class FolderImages:
    """A listed image folder, ``root/<class>/<image>``; decodes on demand.

    Shapes:  shape = (N, 3, H, W) uint8; labels: (N,) int64
    ``short_side``/``crop`` as in ``preprocess_image`` (Sec. 2); with both
    None the files keep their size, which the first file tells.
    """

    dtype = np.dtype(np.uint8)

    def __init__(self, root, short_side=None, crop=None, synsets=None, progress=False):
        self.root = Path(root)
        self.folder = list_image_folder(self.root, synsets=synsets)
        self.short_side, self.crop, self.progress = short_side, crop, progress
        self.labels = self.folder.labels
        self.classes, self.names = self.folder.classes, self.folder.names
        self._hw = (crop, crop) if crop is not None else None

    def __len__(self):
        return len(self.folder)

    @property
    def shape(self) -> tuple:
        if self._hw is None:   # native size: the first file decides (all must share it)
            self._hw = preprocess_image(self.folder.paths[0], self.short_side, None).shape[:2]
        return (len(self),) + (3,) + tuple(self._hw)

    def nbytes(self, n=None) -> int:
        """Bytes that ``n`` decoded images (default: all) take in memory."""
        _, C, H, W = self.shape
        return (len(self) if n is None else n) * C * H * W

    def load(self, indices=None, what="--data"):
        """Decode the files ``indices`` (sorted; default all), skipping unreadable ones.

        Returns ``(x (n, 3, H, W) uint8, y (n,) int64)``.
        Raises ValueError, pointing at prepare, when they would not fit.
        """
        self._check_fits(len(self) if indices is None else len(indices), what)
        x, y, _ = load_image_folder(self.root, self.short_side, self.crop, folder=self.folder, indices=indices,
                                    progress=self.progress)
        return x, y

    def _check_fits(self, n, what="--data"):
        need, avail = self.nbytes(n), available_memory()
        if need > avail // 2:
            raise ValueError(
                f"{what} {self.root}: decoding {n:,} images into memory needs {need / 2**30:.1f} GiB, more than "
                f"half of the {avail / 2**30:.1f} GiB available; prepare the folder once "
                f"(python -m minialex.data prepare {self.root.parent} DST) and train with --data DST, which reads "
                "the images from disk batch by batch, or use --limit N")

    def __getitem__(self, idx):
        """Decode the files ``idx`` (int array or slice) -> (n, 3, H, W) uint8; raise on an unreadable file."""
        pick = np.arange(len(self))[idx]
        self._check_fits(np.size(pick))
        out = np.empty((len(np.atleast_1d(pick)),) + self.shape[1:], dtype=np.uint8)
        for j, i in enumerate(np.atleast_1d(pick)):
            a = preprocess_image(self.folder.paths[i], self.short_side, self.crop)
            if a.shape[:2] != self.shape[2:]:
                raise ValueError(f"{self.folder.paths[i]} is {a.shape[1]}x{a.shape[0]}, but the folder's images "
                                 f"are {self.shape[3]}x{self.shape[2]}")
            out[j] = a.transpose(2, 0, 1)   # (H, W, 3) -> (3, H, W)
        return out[0] if np.ndim(pick) == 0 else out
