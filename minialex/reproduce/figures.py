"""Figures of the reproductions, drawn from metrics.csv columns (so they redraw without training).

    error_curves("cifar-best.png", runs)          # train (dashed) and validation (solid) top-1 error
    fig1_curves("fig1.png", relu_runs, tanh_runs) # Figure 1: training error, ReLU solid, tanh dashed, 25% line

Small PNGs (about 600x400 px) for docs/results.md; matplotlib, headless
(``minialex.figures`` picks the Agg backend).
"""
from __future__ import annotations

from .. import figures  # noqa: F401  (selects a headless matplotlib backend before pyplot loads)
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

DPI = 100
SIZE = (6.0, 4.0)


def _save(fig, path):
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return str(path)


def error_curves(path, runs, title=""):
    """Top-1 error per epoch: training (dashed) and validation (solid), one colour per run."""
    fig, ax = plt.subplots(figsize=SIZE)
    for i, r in enumerate(runs):
        m = r.get("metrics") or {}
        if not m.get("epoch"):
            continue
        c = f"C{i % 10}"
        name = r["spec"]["name"]
        ax.plot(m["epoch"], [100 * v for v in m["train_top1"]], "--", color=c, lw=1, label=f"{name} train")
        ax.plot(m["epoch"], [100 * v for v in m["val_top1"]], "-", color=c, lw=1.5, label=f"{name} val")
        if r.get("test_top1") is not None:
            ax.plot([m["epoch"][-1]], [100 * r["test_top1"]], "*", color=c, ms=10,
                    label=f"{name} test {100 * r['test_top1']:.1f}%")
    ax.set_xlabel("epochs")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("top-1 error (%)")
    ax.set_ylim(0, None)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


def grouped_curves(path, groups, title="", column="val_top1", ylabel="validation top-1 error (%)"):
    """One colour per arm (e.g. 'LRN' / 'no LRN'), one line per seed: ``groups`` is {label: [runs]}."""
    fig, ax = plt.subplots(figsize=SIZE)
    for i, (label, runs) in enumerate(groups.items()):
        first = True
        for r in runs:
            m = r.get("metrics") or {}
            if not m.get("epoch"):
                continue
            ax.plot(m["epoch"], [100 * v for v in m[column]], "-", color=f"C{i}", lw=1.2,
                    label=label if first else None)
            ax.plot(m["epoch"], [100 * v for v in m["train_top1"]], ":", color=f"C{i}", lw=0.8)
            first = False
    ax.set_xlabel("epochs")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(ylabel + " (solid); train, dotted")
    ax.set_ylim(0, None)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


def fig1_curves(path, relu_runs, tanh_runs, target=0.25, title=""):
    """Figure 1 of the paper: training error rate against epochs; ReLU solid, tanh dashed, the 25% line."""
    fig, ax = plt.subplots(figsize=SIZE)
    top = 0.8
    for runs, style, label in ((relu_runs, "-", "ReLU"), (tanh_runs, "--", "tanh")):
        first = True
        for r in runs:
            m = r.get("metrics") or {}
            if not m.get("epoch"):
                continue
            ax.plot([0] + list(m["epoch"]), [0.9] + list(m["train_top1"]), style, color="k", lw=1.3,
                    label=label if first else None)
            top = max(top, min(1.0, 1.05 * max(m["train_top1"])))
            first = False
    ax.axhline(target, color="0.5", lw=0.8)
    ax.text(ax.get_xlim()[1], target, f" {int(100 * target)}%", va="center", fontsize=8, color="0.4")
    ax.set_xlabel("Epochs")
    ax.set_ylabel("Training error rate")
    ax.set_ylim(0, top)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


def tricks_bars(path, rows, title=""):
    """Bag of Tricks ablation: test top-1 error per recipe (bar: mean over seeds, dots: each seed),
    the baseline's mean as a dashed line; recipes without a finished run are left empty."""
    import numpy as np

    names = list(rows)
    fig, ax = plt.subplots(figsize=SIZE)
    base = [r["test_top1"] for r in rows.get("baseline", []) if r.get("test_top1") is not None]
    for i, name in enumerate(names):
        t = [100 * r["test_top1"] for r in rows[name] if r.get("test_top1") is not None]
        if not t:
            continue
        ax.barh(i, np.mean(t), color="C0" if name not in ("baseline", "all", "chosen") else "C1", alpha=0.7)
        ax.plot(t, [i] * len(t), "k.", ms=4)
        ax.text(np.mean(t), i, f" {np.mean(t):.2f}%", va="center", fontsize=7)
    if base:
        ax.axvline(100 * np.mean(base), color="0.3", ls="--", lw=0.8)
    ax.set_yticks(range(len(names)))
    ax.set_yticklabels(names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("test top-1 error (%), centre crop")
    ax.grid(axis="x", alpha=0.3)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return _save(fig, path)
