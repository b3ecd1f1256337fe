"""Data-pipeline throughput: the prepare step (Sec. 2) and the augmenting loader (Sec. 4.1).

    python benchmarks/data.py [--quick] [--imagenette ../shared/data/imagenette2-224]

Prints images/s for
  1. ``prepare`` on Imagenette train (decode + RGB + short side 256 + central 256 crop + stats);
  2. the background loader over that prepared set, batch 128, with the paper's
     augmentation (random 224 crop, flip, PCA colour, mean image), float32 NCHW;
  3. the loader on the bundled CIFAR-10 subset with the suggested CIFAR
     augmentation (pad 4, random 32 crop, flip, PCA colour), and, measured in
     the same run, one SGD step's forward+backward of the cifar AlexNet config
     (``minialex.model``) on 128 images: the loader must outpace it.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from minialex.data import (BatchLoader, TrainTransform, image_statistics, load_default,  # noqa: E402
                           pca_eigen, prepare)


def loader_rate(loader, max_batches, consume=None):
    """Images/s of iterating ``loader`` (in a background thread) for ``max_batches`` batches.

    The first batch is not timed (numba compiles or loads its kernel then);
    epochs are restarted as needed.
    """
    n, t0, b = 0, None, 0
    while b <= max_batches:
        for x, y in loader:
            if consume is not None:
                consume(x, y)
            if t0 is None:
                t0 = time.perf_counter()
            else:
                n += len(y)
            b += 1
            if b > max_batches:
                break
    return n / (time.perf_counter() - t0)


def train_step_rate(batch=128, steps=3):
    """Images/s of forward+backward (+ loss) of the cifar config, or None if minialex.model is absent."""
    try:
        from minialex.layers import SoftmaxCrossEntropy
        from minialex.model import AlexNet, AlexNetConfig
    except ImportError as e:
        print(f"  (no training baseline: {e})")
        return None
    model, loss = AlexNet(AlexNetConfig.cifar()), SoftmaxCrossEntropy()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(batch, 3, 32, 32)).astype(np.float32)
    y = rng.integers(0, 10, batch)
    loss.forward(model.forward(x, train=True), y)
    model.backward(loss.backward())  # warm-up (numba compilation)
    t0 = time.perf_counter()
    for _ in range(steps):
        loss.forward(model.forward(x, train=True), y)
        model.backward(loss.backward())
    return steps * batch / (time.perf_counter() - t0)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="100 images per class, fewer batches")
    ap.add_argument("--imagenette", default=str(REPO.parent / "shared" / "data" / "imagenette2-224"))
    ap.add_argument("--workers", type=int, default=None, help="prepare's decoding processes (default: all cores)")
    ap.add_argument("--batches", type=int, default=None, help="loader batches to time")
    args = ap.parse_args(argv)
    per_class = 100 if args.quick else None
    batches = args.batches or (8 if args.quick else 40)
    src = Path(args.imagenette)

    if src.is_dir():
        tmp = Path(tempfile.mkdtemp(prefix="minialex-bench-"))
        try:
            t0 = time.perf_counter()
            ps = prepare(src, tmp / "train", split="train", max_per_class=per_class,
                         workers=args.workers, progress=False)
            dt = time.perf_counter() - t0
            print(f"prepare   Imagenette train: {len(ps)} images in {dt:.1f} s = {len(ps) / dt:.1f} images/s "
                  f"(short side 256, central 256 crop, mean + RGB covariance)")
            tf = TrainTransform(mean=ps.mean, crop=224, flip=True, pca=ps.pca)
            ld = BatchLoader(ps.images, ps.labels, 128, transform=tf, seed=0, drop_last=True)
            rate = loader_rate(ld, batches)
            print(f"loader    Imagenette 256->224 crop+flip+PCA, batch 128: {rate:.1f} images/s")
            del ps, ld
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    else:
        print(f"Imagenette not found at {src}: skipping prepare/loader on it")

    t0 = time.perf_counter()
    d = load_default()
    print(f"load_default: {len(d.y_train) + len(d.y_test)} JPEGs decoded in {time.perf_counter() - t0:.2f} s")
    mean, cov = image_statistics(d.x_train)
    tf = TrainTransform(mean=mean, crop=32, pad=4, flip=True, pca=pca_eigen(cov))
    ld = BatchLoader(d.x_train, d.y_train, 128, transform=tf, seed=0, drop_last=True)
    rate = loader_rate(ld, 10 * batches)
    print(f"loader    CIFAR subset pad4+crop32+flip+PCA, batch 128: {rate:.1f} images/s")
    train = train_step_rate()
    if train is not None:
        print(f"training  cifar AlexNet config forward+backward, batch 128, CPU: {train:.1f} images/s")
        print(f"ratio     loader / training = {rate / train:.1f}x")


if __name__ == "__main__":
    main()
