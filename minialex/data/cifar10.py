"""CIFAR-10 (Sec. 3.1, 3.3 use it for the small experiments).

Three sources:
- the official python batches ``cifar-10-batches-py`` (``data_batch_1..5``,
  ``test_batch``, ``batches.meta``), extracted from ``cifar-10-python.tar.gz``
  after its md5 is verified (``load_cifar10``, ``extract_cifar10``);
- a download of that archive, checksum-verified (``download_cifar10``);
- the JPEG copy ``cifar10-jpg/{train,test}/<class>/*.jpg`` through the
  image-folder path (``load_cifar10_jpg``).

All return ``x (N, 3, 32, 32) uint8`` (NCHW, the layers' layout) and
``y (N,) int64``.

The official batches are Python pickles, and unpickling a file can run any
code its author chose. Two guards, so that a planted file never does:
- every batch file's md5 is checked against the official value
  (``FILE_MD5``, the same values torchvision lists) *before* it is
  unpickled, also when ``cifar-10-batches-py`` was extracted by someone else;
- the unpickler itself (``_BatchUnpickler``) refuses every global except the
  few a CIFAR batch needs (numpy's array reconstruction), so even a file
  read without the md5 check (``file_md5=None``, synthetic test archives)
  cannot call ``os.system``.
"""
from __future__ import annotations

import hashlib
import os
import pickle
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np

from ..tempfiles import remove_stale, temp_prefix

URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
ARCHIVE = "cifar-10-python.tar.gz"
MD5 = "c58f30108f718f92721af3b95e74349a"
FOLDER = "cifar-10-batches-py"
TRAIN_BATCHES = [f"data_batch_{i}" for i in range(1, 6)]
TEST_BATCHES = ["test_batch"]
CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
# md5 of each extracted file of the official archive (https://www.cs.toronto.edu/~kriz/cifar.html)
FILE_MD5 = {
    "data_batch_1": "c99cafc152244af753f735de768cd75f",
    "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
    "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
    "test_batch": "40351d587109b95175f43aff81a1287e",
    "batches.meta": "5ff9c542aee3614f3951f8cda6e48888",
}


class CIFAR10NotFound(ValueError):
    """Neither the extracted batches nor the archive is in the folder (and no --download)."""


class _BatchUnpickler(pickle.Unpickler):
    """Unpickles dicts, lists, bytes, numbers and numpy arrays; any other global is refused.

    The allowed globals rebuild an ndarray (and, in pickles written by
    Python 3 with protocol 2, bytes through ``_codecs.encode``); none of them
    can run a command.
    """

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refused global {module}.{name}: a CIFAR-10 batch holds only "
                                         "dicts, lists, bytes and numpy arrays")
        return super().find_class(module, name)


def _unpickle(path):
    """A batch file's object, through ``_BatchUnpickler``; ValueError naming the file on any failure."""
    try:
        with open(path, "rb") as f:
            return _BatchUnpickler(f, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, IndexError, TypeError,
            ValueError, KeyError) as e:
        raise ValueError(f"{path} is not a CIFAR-10 python batch ({type(e).__name__}: {e})") from None


def md5sum(path, chunk=1 << 20) -> str:
    """Hex md5 of a file, read in chunks."""
    h = hashlib.md5()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def verify_md5(path, md5=MD5):
    """Raise ValueError naming the file and both checksums when they differ."""
    got = md5sum(path)
    if got != md5:
        raise ValueError(
            f"{path}: md5 is {got}, expected {md5}. The archive is corrupt or incomplete "
            "(or not the official cifar-10-python.tar.gz); delete it and download it again.")


def read_batch(path, md5=None):
    """Read one official batch file (its md5 checked first when ``md5`` is given).

    Returns
    -------
    x : (n, 3, 32, 32) uint8 -- rows of 3072 bytes are R(1024) G(1024) B(1024), row-major
    y : (n,) int64
    """
    if md5 is not None:
        _verify_file(path, md5)
    d = _unpickle(path)
    try:
        data, labels = d[b"data"], d[b"labels"]
        x = np.asarray(data, dtype=np.uint8).reshape(-1, 3, 32, 32)  # (n, 3072) -> (n, 3, 32, 32)
        y = np.asarray(labels, dtype=np.int64)
    except (KeyError, TypeError, IndexError, ValueError):
        raise ValueError(f"{path} is not a CIFAR-10 python batch (no b'data'/b'labels' of 3072-byte rows)") from None
    if len(x) != len(y):
        raise ValueError(f"{path}: {len(x)} images but {len(y)} labels")
    return x, y


def _verify_file(path, md5):
    got = md5sum(path)
    if got != md5:
        raise ValueError(f"{path}: md5 is {got}, expected {md5} (the official CIFAR-10 file); it was not "
                         "read. Delete the folder and extract the official archive again "
                         "(python -m minialex.data cifar10 ROOT --download)")


def read_batches_folder(folder, file_md5=FILE_MD5):
    """Read ``cifar-10-batches-py``: ``(x_train, y_train, x_test, y_test, classes)``.

    Each file's md5 is checked against ``file_md5`` (the official values)
    before it is unpickled; ``file_md5=None`` skips that (synthetic sets).
    """
    folder = Path(folder)
    missing = [b for b in TRAIN_BATCHES + TEST_BATCHES if not (folder / b).is_file()]
    if missing:
        raise ValueError(f"{folder} lacks CIFAR-10 batch file(s) {missing}")
    sums = file_md5 or {}
    tr = [read_batch(folder / b, sums.get(b)) for b in TRAIN_BATCHES]
    te = read_batch(folder / TEST_BATCHES[0], sums.get(TEST_BATCHES[0]))
    classes = CLASSES
    if (folder / "batches.meta").is_file():
        if "batches.meta" in sums:
            _verify_file(folder / "batches.meta", sums["batches.meta"])
        meta = _unpickle(folder / "batches.meta")
        try:
            classes = [n.decode() for n in meta.get(b"label_names", [])] or CLASSES
        except (AttributeError, TypeError):
            raise ValueError(f"{folder / 'batches.meta'} is not a CIFAR-10 batches.meta") from None
    return (np.concatenate([a for a, _ in tr]), np.concatenate([b for _, b in tr]),
            te[0], te[1], classes)


def extract_cifar10(archive, root, md5=MD5) -> Path:
    """Verify ``archive``'s md5 and extract it to ``root/cifar-10-batches-py``.

    Extraction goes to a temporary folder inside ``root`` and is renamed into
    place only when complete: a wrong checksum or a truncated archive raises
    ValueError and leaves nothing behind. ``md5=None`` skips the check
    (tests with synthetic archives).
    """
    archive, root = Path(archive), Path(root)
    if not archive.is_file():
        raise ValueError(f"CIFAR-10 archive {archive} does not exist")
    if md5 is not None:
        verify_md5(archive, md5)
    root.mkdir(parents=True, exist_ok=True)
    dst = root / FOLDER
    remove_stale(root, ".cifar10-extract.")   # what an extraction killed half-way left behind
    tmp = Path(tempfile.mkdtemp(prefix=temp_prefix("cifar10-extract"), dir=root))
    try:
        try:
            with tarfile.open(archive, "r:gz") as tf:
                members = [m for m in tf.getmembers() if m.isfile() or m.isdir()]
                for m in members:  # refuse absolute paths and '..' (a hostile archive)
                    if Path(m.name).is_absolute() or ".." in Path(m.name).parts:
                        raise ValueError(f"{archive}: unsafe member path {m.name!r}")
                tf.extractall(tmp, members=members, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
        except (tarfile.TarError, EOFError, OSError) as e:
            raise ValueError(f"{archive} is truncated or not a valid tar.gz ({type(e).__name__}: {e})") from e
        if not (tmp / FOLDER).is_dir():
            raise ValueError(f"{archive} does not contain a {FOLDER}/ folder")
        read_batches_folder(tmp / FOLDER, FILE_MD5 if md5 == MD5 else None)  # fail now, not in epoch 1
        if dst.exists():
            shutil.rmtree(dst)
        os.rename(tmp / FOLDER, dst)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dst


def download_cifar10(root, url=URL, md5=MD5, progress=True) -> Path:
    """Download the archive to ``root`` (atomic: ``.part`` then rename) and verify it.

    Raises RuntimeError with a manual-download hint when offline, ValueError on
    a checksum mismatch (and deletes the bad download).
    """
    from ..progress import Progress

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    final = root / ARCHIVE
    part = root / (ARCHIVE + ".part")
    try:
        with urllib.request.urlopen(url, timeout=30) as r, open(part, "wb") as f:
            total = int(r.headers.get("Content-Length") or 0) or None
            bar = Progress(total, desc="download CIFAR-10", unit="B", enabled=progress)
            while block := r.read(1 << 20):
                f.write(block)
                bar.update(len(block))
            bar.close()
        verify_md5(part, md5)
        os.replace(part, final)
    except (urllib.error.URLError, OSError) as e:
        part.unlink(missing_ok=True)
        raise RuntimeError(
            f"could not download CIFAR-10 from {url} ({type(e).__name__}: {e}). Without a network, "
            f"fetch {ARCHIVE} elsewhere and place it at {final}, or use the bundled subset "
            "(minialex.data.load_default()).") from e
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    return final


def load_cifar10(root, download=False, md5=MD5):
    """Load the official CIFAR-10 from ``root``.

    Looks for ``root/cifar-10-batches-py``; else extracts ``root/cifar-10-python.tar.gz``
    (md5-verified); else downloads it when ``download`` is True. Every batch
    file's md5 is checked before it is read, when ``md5`` is the official
    archive's (a caller's own ``md5`` is for synthetic archives, whose files
    have no official sums; the restricted unpickler still guards them).
    Raises CIFAR10NotFound when there is nothing to read.

    Returns ``(x_train (50000, 3, 32, 32) uint8, y_train (50000,) int64,
    x_test (10000, 3, 32, 32), y_test (10000,), classes)``.
    """
    root = Path(root)
    if not (root / FOLDER).is_dir():
        if not (root / ARCHIVE).is_file():
            if not download:
                raise CIFAR10NotFound(f"no {FOLDER}/ or {ARCHIVE} in {root}; pass download=True "
                                      f"(--download) or place the archive there")
            download_cifar10(root, md5=md5)
        extract_cifar10(root / ARCHIVE, root, md5=md5)
    return read_batches_folder(root / FOLDER, FILE_MD5 if md5 == MD5 else None)


def load_cifar10_jpg(root, max_per_class=None, progress=False):
    """Load the JPEG copy ``root/{train,test}/<class>/*.jpg`` (e.g. ../shared/data/cifar10-jpg).

    Returns ``(x_train, y_train, x_test, y_test, classes)`` like ``load_cifar10``.
    The copy is JPEG quality 75: pixels differ from the original by ~5.8/255.
    """
    from .prepared import load_image_folder

    root = Path(root)
    xtr, ytr, ftr = load_image_folder(root / "train", max_per_class=max_per_class, progress=progress)
    xte, yte, fte = load_image_folder(root / "test", max_per_class=max_per_class, progress=progress)
    if ftr.classes != fte.classes:
        raise ValueError(f"{root}: train classes {ftr.classes} differ from test classes {fte.classes}")
    return xtr, ytr, xte, yte, ftr.classes
