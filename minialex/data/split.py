"""A validation split held out from the training images.

Hyper-parameters (learning rates, epochs, widths) are chosen on images the
test set never sees: ``holdout_split`` sets aside ``n_val`` training images,
the same number from every class, with a fixed seed, so every experiment
uses the same split and the test split is read once, at the end of a run.

    train_idx, val_idx = holdout_split(y_train, 5000, seed=0)   # 45,000 / 5,000 on CIFAR-10

Shapes:  labels: (N,) ints  ->  train_idx (N - n_val,), val_idx (n_val,), sorted int64
"""
from __future__ import annotations

import numpy as np


def holdout_split(labels, n_val, seed=0):
    """Indices of a class-balanced validation split and of the rest, both sorted.

    ``n_val`` must be a multiple of the number of classes and leave images of
    every class for training; ``seed`` picks which images (one generator,
    classes drawn in label order).
    """
    labels = np.asarray(labels)
    classes = np.unique(labels)
    K = len(classes)
    if n_val < K or n_val % K:
        raise ValueError(f"holdout_split: n_val must be a positive multiple of the {K} classes, got {n_val}")
    per_class = n_val // K
    rng = np.random.default_rng([seed, 2012])
    val = []
    for c in classes:
        idx = np.flatnonzero(labels == c)                     # (n_c,) this class's images
        if len(idx) <= per_class:
            raise ValueError(f"holdout_split: class {c} has {len(idx)} images, fewer than the "
                             f"{per_class} + 1 needed for {n_val} validation images")
        val.append(rng.choice(idx, size=per_class, replace=False))
    val_idx = np.sort(np.concatenate(val)).astype(np.int64)
    keep = np.ones(len(labels), dtype=bool)
    keep[val_idx] = False
    return np.flatnonzero(keep).astype(np.int64), val_idx
