"""Command line for the data pipeline.

    python -m minialex.data prepare SRC DST [--short-side 256] [--crop 256] [--split train]
    python -m minialex.data info DST
    python -m minialex.data cifar10 ROOT [--download]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

from ..errors import OneLineParser, positive_int, run_cli

PREPARE_HELP = """\
Preprocess images once, as in Sec. 2 of the paper: every image is converted to
RGB, rescaled so that its shorter side is --short-side (256), and the central
--crop x --crop (256x256) patch is kept. Each split is written as a uint8
memory-mapped array (images.u8, N x 3 x crop x crop) with labels.npy, so
training epochs never decode JPEGs again. The same pass stores the split's
mean image (mean.npy; Sec. 2 subtracts the training set's from every pixel)
and the 3x3 covariance of the RGB pixel values with its eigenvalues and
eigenvectors (rgb_cov.npy, eigvals.npy, eigvecs.npy; Sec. 4.1's PCA colour
augmentation), plus manifest.tsv (every source file: label, status, row) and
skipped.tsv (unreadable files and why).

SRC layouts (ILSVRC-2012 as distributed, or any image folder):
  SRC/train/<wnid>/*.JPEG        class folders (also Imagenette, CIFAR-10 jpg)
  SRC/train/<wnid>.tar           the per-class tar files of ILSVRC2012_img_train.tar,
                                 read in place (not extracted)
  SRC/val/<wnid>/*.JPEG          class folders, or
  SRC/val/ILSVRC2012_val_*.JPEG  the flat val folder, labelled by --val-labels:
                                 LOC_val_solution.csv, or the devkit's
                                 ILSVRC2012_validation_ground_truth.txt with
                                 --devkit-meta data/meta.mat (or a text file, line k =
                                 the wnid of ILSVRC2012_ID k); found automatically
                                 in SRC or SRC/ILSVRC2012_devkit_t12/data/
Labels follow the training split's wnids in sorted order, which is the order of
imagenet-synsets.tsv (class 0 = n01440764), or the order of --synsets.

One command prepares every split SRC holds (train, val, test) into DST/<split>:

  python -m minialex.data prepare ILSVRC2012 DST
  python -m minialex.train --config paper --data DST     # reads DST/train and DST/val

SRC without split folders (SRC/<class>/...) is prepared into DST itself;
--split NAME prepares only SRC/NAME into DST.

Worker processes decode in chunks (--workers, default: all cores). Progress
shows images/s and the ETA. A prepare that is killed (even kill -9) resumes
when the same command is run again: finished chunks are kept in the hidden
folder .DST.partial beside each output until the split is complete; the
output folder appears only when it is complete (meta.json is written last).
Unreadable images are skipped and listed; non-image files are ignored.
"""


def main(argv=None):
    """The command line; every error is one line on stderr and exit code 2 (minialex.errors)."""
    return run_cli(_main, argv)


def _main(argv=None):
    ap = OneLineParser(prog="python -m minialex.data", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="errors: one line and exit code 2; --debug (or MINIALEX_DEBUG=1) shows the traceback")
    ap.add_argument("--debug", action="store_true", help="on an error, show the full Python traceback")
    sub = ap.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("prepare", help="preprocess an image folder (Sec. 2) into a prepared set",
                       description=PREPARE_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("src", help="folder holding train/ and val/ (or test/), or one split's folder")
    p.add_argument("dst", help="output folder: DST/train, DST/val, ... (must not exist)")
    p.add_argument("--short-side", type=positive_int("--short-side"), default=256,
                   help="rescale the shorter side to this (Sec. 2: 256)")
    p.add_argument("--crop", type=positive_int("--crop"), default=256, help="central crop size (Sec. 2: 256)")
    p.add_argument("--split", default=None, help="prepare only SRC/SPLIT (e.g. train, val) into DST")
    p.add_argument("--synsets", default=None,
                   help="wnid<TAB>name file (e.g. imagenet-synsets.tsv): readable names, class order")
    p.add_argument("--val-labels", default=None, metavar="FILE",
                   help="ground truth of a flat val/: LOC_val_solution.csv or ILSVRC2012_validation_ground_truth.txt")
    p.add_argument("--devkit-meta", default=None, metavar="FILE",
                   help="the devkit's data/meta.mat (ILSVRC2012_ID -> wnid), or its text form, for the ground truth")
    p.add_argument("--max-per-class", type=positive_int("--max-per-class"), default=None,
                   help="only the first N files of each class")
    p.add_argument("--workers", type=positive_int("--workers"), default=None,
                   help="decoding processes (default: all cores)")
    p.add_argument("--chunk", type=positive_int("--chunk"), default=256,
                   help="images per unit of work; a kill loses at most one chunk per worker (default 256)")
    p.add_argument("--overwrite", action="store_true", help="replace DST if it exists")
    p.add_argument("--quiet", action="store_true", help="no progress bar")

    i = sub.add_parser("info", help="describe a prepared set")
    i.add_argument("path")

    c = sub.add_parser("cifar10", help="verify/extract (or --download) the official CIFAR-10 into ROOT")
    c.add_argument("root")
    c.add_argument("--download", action="store_true", help="download the archive if it is not in ROOT")

    args = ap.parse_args(argv)
    if args.cmd == "prepare":
        _check_prepare_paths(ap, args)
        return _prepare(args)
    elif args.cmd == "info":
        from .prepared import open_prepared

        ps = open_prepared(args.path)
        print(f"{ps.path}: {ps.images.shape} uint8, {len(ps.classes)} classes, "
              f"short_side {ps.meta['short_side']}, crop {ps.meta['crop']}, "
              f"{len(ps.meta['skipped'])} skipped")
        print("class counts:", np.bincount(ps.labels, minlength=len(ps.classes)).tolist())
        print("mean RGB:", np.array2string(ps.mean.reshape(3, -1).mean(1), precision=2))
        print("RGB eigenvalues:", np.array2string(ps.eigvals, precision=2))
    elif args.cmd == "cifar10":
        from .cifar10 import load_cifar10

        xtr, ytr, xte, yte, classes = load_cifar10(args.root, download=args.download)
        print(f"CIFAR-10 in {args.root}: train {xtr.shape}, test {xte.shape}, classes {classes}")
    return 0


def _check_prepare_paths(ap, args):
    """SRC, DST and the sizes, checked before any image is read (one line each, exit 2)."""
    if args.crop > args.short_side:
        ap.error(f"--crop {args.crop} must not exceed --short-side {args.short_side} (Sec. 2: 256 of 256)")
    src = Path(args.src) / args.split if args.split else Path(args.src)
    if not src.is_dir():
        ap.error(f"SRC {src}: no such folder; expected an image folder (SRC/train/<class>/<images>, ...)")
    for name in ("val_labels", "devkit_meta", "synsets"):
        f = getattr(args, name)
        if f is not None and not Path(f).is_file():
            ap.error(f"--{name.replace('_', '-')} {f}: no such file")
    dst = Path(args.dst)
    if dst.exists() and not dst.is_dir():
        ap.error(f"DST {dst} is a file; expected a folder for the prepared set")
    parent = dst
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        ap.error(f"DST {dst}: {parent} is not a writable folder")


def _prepare(args):
    from .ilsvrc import read_val_labels, source_classes
    from .preparer import prepare, prepare_splits

    t0 = time.perf_counter()               # errors: one line and exit code 2, through run_cli
    val_labels = read_val_labels(args.val_labels, args.devkit_meta) if args.val_labels else None
    kw = dict(short_side=args.short_side, crop=args.crop, synsets=args.synsets, val_labels=val_labels,
              max_per_class=args.max_per_class, workers=args.workers, progress=not args.quiet,
              overwrite=args.overwrite, chunk=args.chunk)
    if args.split:   # labelled against SRC/train's classes when there is one, as prepare_splits does
        train = Path(args.src) / "train"
        classes = source_classes(train, args.synsets) if args.split != "train" and train.is_dir() else None
        sets = {args.split: prepare(args.src, args.dst, split=args.split, classes=classes, **kw)}
    else:
        sets = prepare_splits(args.src, args.dst, **kw)
    dt = time.perf_counter() - t0
    n = sum(len(ps) for ps in sets.values())
    for split, ps in sets.items():
        print(f"prepared {len(ps)} images, {len(ps.classes)} classes -> {ps.path} "
              f"({len(ps.meta['skipped'])} skipped; RGB eigenvalues {np.array2string(ps.eigvals, precision=2)})")
    print(f"{n} images in {dt:.1f} s, {n / dt:.1f} images/s")
    if "train" in sets and not any(s in sets for s in ("val", "test")):
        print(f"note: python -m minialex.train --data {args.dst} also needs {args.dst}/val (or test)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
