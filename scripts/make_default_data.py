"""Make minialex/data/default_cifar10.npz, the CIFAR-10 subset bundled in the package.

    python scripts/make_default_data.py [--src ../shared/data/cifar10-jpg] [--train 1000] [--test 200]

Takes the first ``--train`` files (in name order, which keeps the original
dataset order) of each class of ``SRC/train`` and the first ``--test`` of each
class of ``SRC/test``: 10,000 + 2,000 class-balanced images. The JPEG bytes are
stored unchanged (no re-encoding, quality 75 as in the shared copy), packed
without pickle:

    train_bytes, test_bytes   (B,) uint8    all JPEG files concatenated
    train_offsets, test_offsets (n+1,) int64 image i is bytes[off[i]:off[i+1]]
    train_labels, test_labels (n,) int64
    class_names               (10,) fixed-width unicode
    source                    () unicode, where the files came from
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from minialex.data.folder import list_image_folder  # noqa: E402


def pack(folder, n_per_class):
    f = list_image_folder(folder, max_per_class=n_per_class)
    counts = np.bincount(f.labels)
    if (counts != n_per_class).any():
        raise SystemExit(f"{folder}: wanted {n_per_class} per class, found {counts.tolist()}")
    blobs = [p.read_bytes() for p in f.paths]
    offsets = np.zeros(len(blobs) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(b) for b in blobs])
    data = np.frombuffer(b"".join(blobs), dtype=np.uint8)
    return data, offsets, f.labels, f.classes


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--src", default=str(REPO.parent / "shared" / "data" / "cifar10-jpg"))
    ap.add_argument("--train", type=int, default=1000, help="training images per class")
    ap.add_argument("--test", type=int, default=200, help="test images per class")
    ap.add_argument("--out", default=str(REPO / "minialex" / "data" / "default_cifar10.npz"))
    args = ap.parse_args(argv)
    src = Path(args.src)
    trb, tro, trl, classes = pack(src / "train", args.train)
    teb, teo, tel, classes_te = pack(src / "test", args.test)
    assert classes == classes_te, (classes, classes_te)
    tmp = args.out + ".tmp.npz"
    np.savez(tmp, train_bytes=trb, train_offsets=tro, train_labels=trl,
             test_bytes=teb, test_offsets=teo, test_labels=tel,
             class_names=np.array(classes, dtype="<U16"),
             source=np.array(f"{src.name}: first {args.train} train / {args.test} test files per class"))
    os.replace(tmp, args.out)
    print(f"wrote {args.out}: {len(trl)} train + {len(tel)} test images, "
          f"{os.path.getsize(args.out) / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
