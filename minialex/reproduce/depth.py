"""depth (Sec. 7): removing any middle convolutional layer costs about 2% top-1 error.

The cifar AlexNet with conv3 removed, against the baseline; see ``ablation.py`` for
the recipe, the shared baseline and what is reported.
"""
from __future__ import annotations

from .ablation import run_ablation

NAME = "depth"
SECTION = "Sec. 7"
CLAIM = "removing any middle convolutional layer costs about 2% top-1 error"


def run(ctx):
    return run_ablation(ctx, NAME, CLAIM, "conv3 removed", {"net_options": {"drop_conv": (3,)}},
                        "+2 points top-1 (ImageNet)",
                        "Sec. 7 on CIFAR-10: five conv layers (baseline) vs conv3 removed")
