"""python -m minialex.reproduce: the paper's claims re-run on the full CIFAR-10, one module per claim.

    python -m minialex.reproduce --list
    python -m minialex.reproduce fig1 --quick                 # a miniature, well under 2 minutes
    python -m minialex.reproduce cifar-best --out runs/best    # the full experiment (hours)
    python -m minialex.reproduce cifar-best --out runs/best --resume   # continue it, run by run
    python -m minialex.reproduce cifar-best --out runs/best --report   # result.md from what has finished

Each experiment trains its runs through ``minialex.trainer.Trainer``
(``runner.py``), chooses learning rates on a validation split held out from
the training images (``minialex.data.split``), reads the test split once per
finished run, and writes ``result.md`` and a figure (``context.py``,
``figures.py``). docs/results.md collects the results.
"""
from __future__ import annotations

import importlib

# name -> module (in minialex.reproduce); the order of --list
EXPERIMENTS = {
    "fig1": "fig1",
    "lrn-cifar": "lrn_cifar",
    "pool": "pool",
    "depth": "depth",
    "dropout": "dropout",
    "augment": "augment",
    "cifar-best": "cifar_best",
    "tricks": "tricks",
}


def available():
    """{name: module} of the experiments whose module exists (in --list order)."""
    out = {}
    for name, mod in EXPERIMENTS.items():
        try:
            out[name] = importlib.import_module(f"{__name__}.{mod}")
        except ModuleNotFoundError as e:
            if e.name != f"{__name__}.{mod}":
                raise
    return out
