"""dropout (Sec. 4.2): without dropout the net overfits substantially.

The paper also says that dropout roughly doubles the iterations needed to converge.

The cifar AlexNet with no dropout, against the baseline; see ``ablation.py`` for
the recipe, the shared baseline and what is reported.
"""
from __future__ import annotations

from .ablation import run_ablation

NAME = "dropout"
SECTION = "Sec. 4.2"
CLAIM = "without dropout the net overfits substantially; dropout roughly doubles the iterations to converge"


def run(ctx):
    return run_ablation(ctx, NAME, CLAIM, "no dropout", {"net_options": {"dropout": 0.0}},
                        "substantial overfitting without it (no number)",
                        "Sec. 4.2 on CIFAR-10: dropout 0.5 in fc6/fc7 (baseline) vs none")
