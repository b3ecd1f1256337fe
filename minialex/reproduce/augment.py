"""augment (Sec. 4.1): without data augmentation the net suffers from substantial overfitting.

The cifar AlexNet with no augmentation, against the baseline; see ``ablation.py`` for
the recipe, the shared baseline and what is reported.
"""
from __future__ import annotations

from .ablation import run_ablation

NAME = "augment"
SECTION = "Sec. 4.1"
CLAIM = "without data augmentation the net suffers from substantial overfitting"


def run(ctx):
    return run_ablation(ctx, NAME, CLAIM, "no augmentation", {"pad": 0, "flip": False},
                        "substantial overfitting without it (no number)",
                        "Sec. 4.1 on CIFAR-10: random crops + flips (baseline) vs none")
