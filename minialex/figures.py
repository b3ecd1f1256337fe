"""Figures of Sec. 6.1 and the training curves, with matplotlib (headless).

    plot_filters(model, "filters.png")                   # Figure 3: conv1 kernels, one block per tower
    plot_top5(images, probs, labels, names, "top5.png")  # Figure 4 left: top-5 labels with bars
    plot_neighbours(q_imgs, db_imgs, idx, "nn.png")      # Figure 4 right: nearest neighbours in fc7 space
    plot_curves("run/metrics.csv", "curves.png")         # loss, top-1/top-5 error and lr per epoch

The command line over this module is ``python -m minialex.viz``.

Every figure has a fixed pixel size (``figsize * dpi``; no tight bounding
box), so a caller knows what it gets.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import matplotlib

# Headless by default: with no display and no backend chosen (MPLBACKEND, or a
# notebook's inline backend, which sets MPLBACKEND) and pyplot not yet loaded,
# use Agg. A notebook keeps its inline figures.
if ("matplotlib.pyplot" not in sys.modules and not os.environ.get("MPLBACKEND")
        and not os.environ.get("DISPLAY")):
    matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .backend import to_numpy  # noqa: E402
from .metrics import read_metrics  # noqa: E402

DPI = 100


def _save(fig, path):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp" + path.suffix)   # keep the suffix: it picks the format
    fig.savefig(tmp, dpi=DPI)
    plt.close(fig)
    tmp.replace(path)
    return path


def _to_display(img):
    """(3, H, W) or (H, W, 3), uint8 or float -> (H, W, 3) float in [0, 1]."""
    a = to_numpy(img).astype(np.float64)
    if a.ndim == 3 and a.shape[0] in (1, 3) and a.shape[2] not in (1, 3):
        a = a.transpose(1, 2, 0)                               # (3, H, W) -> (H, W, 3)
    if a.max() > 1.0 or a.min() < 0.0:
        a = a / 255.0 if a.min() >= 0 and a.max() <= 255 else (a - a.min()) / max(np.ptp(a), 1e-12)
    return np.clip(a, 0, 1)


# ---------------------------------------------------------------- Figure 3
def filter_grid(w, tower_slices, cols=None, pad=1, gap=4):
    """Tile conv1 kernels into one RGB image, one block of rows per tower.

    Each kernel is scaled to [0, 1] on its own (min-max), so weak and strong
    kernels are equally visible, as in the paper's Figure 3.

    Shapes:  w: (F, 3, K, K)  ->  (H, W, 3) float in [0, 1]
             tower_slices: [(start, stop), ...] output-kernel ranges, one per tower
    Paper:   Sec. 6.1, Figure 3 (96 kernels, 48 per GPU).
    """
    w = to_numpy(w).astype(np.float64)
    if w.ndim != 4 or w.shape[1] != 3:
        raise ValueError(f"filter_grid: w must be (F, 3, K, K) conv1 weights, got shape {w.shape}")
    F, _, K, _ = w.shape
    per_tower = max(b - a for a, b in tower_slices)
    cols = cols or int(np.ceil(np.sqrt(per_tower * 3)))          # ~3:1 wide blocks, as in Figure 3
    cols = min(cols, per_tower)
    rows = int(np.ceil(per_tower / cols))
    cell = K + pad
    block_h = rows * cell + pad
    H = len(tower_slices) * block_h + (len(tower_slices) - 1) * gap
    W = cols * cell + pad
    canvas = np.ones((H, W, 3))                                 # white background
    lo = w.reshape(F, -1).min(axis=1)[:, None, None, None]      # (F, 1, 1, 1)
    hi = w.reshape(F, -1).max(axis=1)[:, None, None, None]
    wn = (w - lo) / np.maximum(hi - lo, 1e-12)                  # (F, 3, K, K) in [0, 1]
    for t, (a, b) in enumerate(tower_slices):
        top = t * (block_h + gap)
        for j, f in enumerate(range(a, b)):
            r, c = divmod(j, cols)
            y, x = top + pad + r * cell, pad + c * cell
            canvas[y:y + K, x:x + K] = wn[f].transpose(1, 2, 0)  # (3, K, K) -> (K, K, 3)
    return canvas


def moved_from_init(model, layer="conv1"):
    """How far training moved a layer's weights: ||w - w0|| / ||w0|| (0.23 = 23%).

    w0 is rebuilt from the model's own config (same seed and init, Sec. 5),
    so nothing but the checkpoint is needed. Figure 3 is worth reading only
    when this is large: kernels that moved little still show their random
    initialisation, i.e. colour noise.
    """
    from .model import AlexNet

    w = to_numpy(model[layer].params["w"]).astype(np.float64)
    w0 = to_numpy(AlexNet(model.config)[layer].params["w"]).astype(np.float64)
    return float(np.linalg.norm(w - w0) / max(np.linalg.norm(w0), 1e-30))


def plot_filters(model, path, width_px=800, height_px=600, note=None):
    """Figure 3: the learned conv1 kernels, tower 1 above tower 2. Writes a PNG.

    ``note``: a second title line, e.g. how far the kernels moved from their initialisation.
    """
    conv1 = model["conv1"]
    slices = conv1.tower_slices                                 # Sec. 3.2: one range per tower
    grid = filter_grid(conv1.params["w"], slices)
    fig = plt.figure(figsize=(width_px / DPI, height_px / DPI))
    ax = fig.add_axes([0.02, 0.02, 0.96, 0.9])
    ax.imshow(grid, interpolation="nearest")
    ax.set_axis_off()
    F, _, K, _ = conv1.params["w"].shape
    towers = " / ".join(f"tower {i + 1}: kernels {a}-{b - 1}" for i, (a, b) in enumerate(slices))
    fig.suptitle(f"conv1: {F} kernels of {K}x{K}x3 ({towers})" + (f"\n{note}" if note else ""), fontsize=10)
    return _save(fig, path)


# ---------------------------------------------------------------- Figure 4 left
def plot_top5(images, probs, labels, class_names, path, width_px=1000, height_px=500):
    """Figure 4 (left): each image with its five most probable labels as bars.

    The bar of the true label is red, the others blue, as in the paper.

    Shapes:  images: (N, 3, H, W) uint8 (or (N, H, W, 3)), probs: (N, K), labels: (N,)
    Paper:   Sec. 6.1, Figure 4 (left).
    """
    probs, labels = to_numpy(probs), to_numpy(labels)
    N, K = probs.shape
    if len(images) != N or len(labels) != N:
        raise ValueError(f"plot_top5: {len(images)} images, {N} probability rows and "
                         f"{len(labels)} labels must agree")
    k = min(5, K)
    fig, axes = plt.subplots(2, N, figsize=(width_px / DPI, height_px / DPI),
                             gridspec_kw={"height_ratios": [1.2, 1]}, squeeze=False)
    for i in range(N):
        top = np.argsort(-probs[i], kind="stable")[:k]         # (k,) most probable first
        ax = axes[0, i]
        ax.imshow(_to_display(images[i]), interpolation="nearest")
        ax.set_title(class_names[labels[i]], fontsize=8)
        ax.set_axis_off()
        ax = axes[1, i]
        colors = ["tab:red" if c == labels[i] else "tab:blue" for c in top]
        ax.barh(np.arange(k), probs[i, top], color=colors)
        ax.set_yticks(np.arange(k))
        ax.set_yticklabels([class_names[c] for c in top], fontsize=7)
        ax.invert_yaxis()
        ax.set_xlim(0, 1)
        ax.tick_params(axis="x", labelsize=6)
    fig.subplots_adjust(left=0.08, right=0.98, wspace=0.9, hspace=0.15)
    return _save(fig, path)


# ---------------------------------------------------------------- Figure 4 right
def nearest_neighbours(query, database, n=6):
    """Indices of the n database vectors closest to each query (Euclidean distance).

    Shapes:  query: (Q, D), database: (M, D)  ->  (Q, n) int, nearest first
    Paper:   Sec. 6.1: "the Euclidean distance between their feature
             activation vectors in the last, 4096-dimensional hidden layer".
    """
    q = to_numpy(query).astype(np.float64)
    d = to_numpy(database).astype(np.float64)
    if q.ndim != 2 or d.ndim != 2 or q.shape[1] != d.shape[1]:
        raise ValueError(f"nearest_neighbours: query {q.shape} and database {d.shape} must be "
                         "(Q, D) and (M, D)")
    n = min(n, len(d))
    dist2 = (q * q).sum(1)[:, None] + (d * d).sum(1)[None, :] - 2 * q @ d.T   # (Q, M)
    return np.argsort(dist2, axis=1, kind="stable")[:, :n]


def plot_neighbours(query_images, database_images, indices, path, width_px=800, height_px=600):
    """Figure 4 (right): each query image (first column) and its neighbours in a row.

    Shapes:  query_images: (Q, 3, H, W), database_images: (M, 3, H, W), indices: (Q, n)
    """
    indices = np.asarray(indices)
    Q, n = indices.shape
    fig, axes = plt.subplots(Q, n + 1, figsize=(width_px / DPI, height_px / DPI), squeeze=False)
    for i in range(Q):
        axes[i, 0].imshow(_to_display(query_images[i]), interpolation="nearest")
        for j in range(n):
            axes[i, j + 1].imshow(_to_display(database_images[indices[i, j]]), interpolation="nearest")
        for ax in axes[i]:
            ax.set_xticks([])
            ax.set_yticks([])
    axes[0, 0].set_title("query", fontsize=8)
    for j in range(n):
        axes[0, j + 1].set_title(f"#{j + 1}", fontsize=8)
    fig.subplots_adjust(left=0.02, right=0.98, bottom=0.02, top=0.94, wspace=0.05, hspace=0.05)
    return _save(fig, path)


# ---------------------------------------------------------------- curves
def plot_curves(metrics, path, width_px=1200, height_px=400):
    """Training curves from metrics.csv (or its dict): loss, error, learning rate per epoch."""
    m = read_metrics(metrics) if isinstance(metrics, (str, Path)) else metrics
    if not m or not m.get("epoch"):
        raise ValueError(f"plot_curves: no rows in {metrics if isinstance(metrics, (str, Path)) else 'dict'}")
    ep = m["epoch"]
    fig, (a1, a2, a3) = plt.subplots(1, 3, figsize=(width_px / DPI, height_px / DPI))
    a1.plot(ep, m["train_loss"], "o-", label="train")
    if "val_loss" in m:
        a1.plot(ep, m["val_loss"], "o-", label="val")
    a1.set_title("cross-entropy loss")
    for key, style in (("train_top1", "o-"), ("val_top1", "o-"), ("train_top5", "s--"), ("val_top5", "s--")):
        if key in m:
            a2.plot(ep, [100 * v for v in m[key]], style, label=key.replace("_", " "))
    a2.set_title("error (%)")
    a3.plot(ep, m["lr"], "o-")
    a3.set_yscale("log")
    a3.set_title("learning rate")
    for ax in (a1, a2, a3):
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    a1.legend(fontsize=8)
    a2.legend(fontsize=8)
    fig.subplots_adjust(left=0.05, right=0.98, bottom=0.14, top=0.9, wspace=0.25)
    return _save(fig, path)
