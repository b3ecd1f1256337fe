"""Error rates (Sec. 2, Sec. 6) and the per-epoch metrics log (metrics.csv).

The paper reports two numbers (Sec. 2): **top-1 error**, the fraction of
images whose most probable label is wrong, and **top-5 error**, the fraction
whose true label is not among the five most probable.

    err1 = topk_error(probs, labels, k=1)
    log = MetricsLog(out / "metrics.csv")
    log.append({"epoch": 1, "train_loss": 2.1, ...})
    rows = read_metrics(out / "metrics.csv")     # {"epoch": [1, 2, ...], ...}
"""
from __future__ import annotations

import csv
import math
import os
from pathlib import Path

import numpy as np

from .backend import to_numpy

# One row per epoch. "train_*" are running figures over the epoch's training
# batches (augmented, dropout on), as cuda-convnet logged them; "val_*" come
# from a separate test-mode pass (centre crop, no dropout) over the held-out set.
# "data_wait_s" is the part of "epoch_s" the training loop spent waiting for the
# loader: near 0 when loading overlaps with the steps, as it should.
FIELDS = ("epoch", "step", "lr", "train_loss", "train_top1", "train_top5",
          "val_loss", "val_top1", "val_top5", "images_per_s", "epoch_s", "wall_s", "data_wait_s",
          "skipped_steps")
TIMING_FIELDS = ("images_per_s", "epoch_s", "wall_s", "data_wait_s")   # the columns that measure time


def correct_topk(scores, labels, k):
    """Boolean (N,) array: is the true label among the k highest scores?

    A label counts as among the top k when fewer than k classes score
    strictly higher than it, so ties are resolved in the label's favour
    (and the result does not depend on a sort's tie order).

    Shapes:  scores: (N, K) logits or probabilities, labels: (N,) ints  ->  (N,) bool
    Paper:   Sec. 2 (top-1 and top-5 error).
    """
    scores, labels = to_numpy(scores), to_numpy(labels)
    if scores.ndim != 2:
        raise ValueError(f"scores must be 2-D (N, K), got shape {scores.shape}")
    N, K = scores.shape
    labels = np.asarray(labels)
    if labels.shape != (N,):
        raise ValueError(f"labels must have shape ({N},) to match scores {scores.shape}, got {labels.shape}")
    if not 1 <= k:
        raise ValueError(f"k must be >= 1, got {k}")
    true = scores[np.arange(N), labels]                         # (N,)
    higher = (scores > true[:, None]).sum(axis=1)               # (N,) classes strictly above the label
    return higher < k


def topk_error(scores, labels, k=1):
    """Fraction of rows whose label is not among the k highest scores (Sec. 2)."""
    return float(np.mean(~correct_topk(scores, labels, k)))


class MetricsLog:
    """Append-only CSV of per-epoch metrics, safe to resume.

    The file is rewritten atomically (temporary file + ``os.replace``) on
    every append, so a crash never leaves half a row; it is tiny.

    ``truncate(epoch)`` drops rows after ``epoch``: a resumed run first cuts
    the log back to its checkpoint, so rows written after the checkpoint by
    the interrupted run are replaced, not duplicated.
    """

    def __init__(self, path, fields=FIELDS):
        self.path = Path(path)
        self.fields = tuple(fields)
        self.rows = []
        if self.path.is_file():
            self.rows = [r for r in _read_rows(self.path)]

    def truncate(self, epoch):
        self.rows = [r for i, r in enumerate(self.rows, 2)
                     if int(_number(r.get("epoch"), self.path, i, "epoch")) <= epoch]
        self._write()

    def append(self, row):
        unknown = set(row) - set(self.fields)
        if unknown:
            raise ValueError(f"MetricsLog: unknown field(s) {sorted(unknown)}; expected {self.fields}")
        self.rows.append({f: _fmt(row.get(f, "")) for f in self.fields})
        self._write()

    def _write(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=self.fields)
            w.writeheader()
            for r in self.rows:
                w.writerow({k: r.get(k, "") for k in self.fields})
        os.replace(tmp, self.path)


def _fmt(v):
    if isinstance(v, float):
        return repr(v) if math.isfinite(v) else str(v)
    return v


def _read_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _number(value, path, line, column):
    """float(value), or a ValueError naming the file, line and column (a hand-edited or damaged CSV)."""
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{path}, line {line}, column {column!r}: {value!r} is not a number; expected a "
                         "metrics.csv written by minialex.train") from None


def read_metrics(path):
    """metrics.csv -> {field: list of floats} (empty cells become NaN)."""
    rows = _read_rows(path)
    if not rows:
        return {}
    out = {}
    for k in rows[0]:
        out[k] = [_number(r[k], path, i, k) if r[k] not in ("", None) else float("nan")
                  for i, r in enumerate(rows, 2)]
    return out
