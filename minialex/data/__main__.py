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

from ..errors import OneLineParser, run_cli

PREPARE_HELP = """\
Preprocess an image folder once, as in Sec. 2 of the paper: every image is
converted to RGB, rescaled so that its shorter side is --short-side (256), and
the central --crop x --crop (256x256) patch is kept. The result is written as a
uint8 memory-mapped array (DST/images.u8, N x 3 x crop x crop) with labels.npy,
so training epochs never decode JPEGs again. The same pass stores the set's
mean image (mean.npy; Sec. 2 subtracts it from every pixel) and the 3x3
covariance of the RGB pixel values with its eigenvalues/eigenvectors
(rgb_cov.npy, eigvals.npy, eigvecs.npy; Sec. 4.1's PCA colour augmentation).

SRC is a folder in the ILSVRC layout, SRC/<class or wnid>/*.JPEG|jpg|png
(classes in sorted order), or its parent when SRC/<split> exists.
Unreadable images are skipped with one warning; non-image files are ignored.
"""


def _positive(name):
    def parse(s):
        try:
            v = int(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a positive integer, got {s!r}") from None
        if v < 1:
            raise argparse.ArgumentTypeError(f"{name} must be a positive integer, got {v}")
        return v
    return parse


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
    p.add_argument("src", help="image folder (SRC/<class>/<images>), or its parent with --split")
    p.add_argument("dst", help="output folder for the prepared set (must not exist)")
    p.add_argument("--short-side", type=_positive("--short-side"), default=256,
                   help="rescale the shorter side to this (Sec. 2: 256)")
    p.add_argument("--crop", type=_positive("--crop"), default=256, help="central crop size (Sec. 2: 256)")
    p.add_argument("--split", default=None, help="read SRC/SPLIT when it exists (e.g. train, val)")
    p.add_argument("--synsets", default=None, help="wnid<TAB>name file for readable class names")
    p.add_argument("--max-per-class", type=_positive("--max-per-class"), default=None,
                   help="only the first N files of each class")
    p.add_argument("--workers", type=_positive("--workers"), default=None,
                   help="decoding threads (default: CPU count, <= 8)")
    p.add_argument("--overwrite", action="store_true", help="replace DST if it exists")
    p.add_argument("--quiet", action="store_true", help="no progress bar")

    i = sub.add_parser("info", help="describe a prepared set")
    i.add_argument("path")

    c = sub.add_parser("cifar10", help="verify/extract (or --download) the official CIFAR-10 into ROOT")
    c.add_argument("root")
    c.add_argument("--download", action="store_true", help="download the archive if it is not in ROOT")

    args = ap.parse_args(argv)
    if args.cmd == "prepare":
        from .prepared import prepare, resolve_split

        if args.crop > args.short_side:
            ap.error(f"--crop {args.crop} must not exceed --short-side {args.short_side} (Sec. 2: 256 of 256)")
        src = resolve_split(args.src, args.split)
        if not src.is_dir():
            ap.error(f"SRC {src}: no such folder; expected an image folder SRC/<class>/<images>")
        dst = Path(args.dst)
        if dst.exists() and not args.overwrite:
            ap.error(f"DST {dst} exists; choose a new folder, or pass --overwrite to replace it")
        if dst.exists() and not dst.is_dir():
            ap.error(f"DST {dst} is a file; expected a folder for the prepared set")
        parent = dst.parent if str(dst.parent) else Path(".")
        while not parent.exists() and parent != parent.parent:
            parent = parent.parent
        if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
            ap.error(f"DST {dst}: {parent} is not a writable folder")

        t0 = time.perf_counter()
        ps = prepare(args.src, args.dst, short_side=args.short_side, crop=args.crop, split=args.split,
                     synsets=args.synsets, max_per_class=args.max_per_class, workers=args.workers,
                     progress=not args.quiet, overwrite=args.overwrite)
        dt = time.perf_counter() - t0
        print(f"prepared {len(ps)} images, {len(ps.classes)} classes -> {ps.path} "
              f"({dt:.1f} s, {len(ps) / dt:.1f} images/s)")
        print(f"RGB eigenvalues {np.array2string(ps.eigvals, precision=2)}")
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


if __name__ == "__main__":
    sys.exit(main())
