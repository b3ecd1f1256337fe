"""Learning-rate schedules beyond the paper's, for short runs.

The paper divides the learning rate by 10 when the validation error stops
improving (Sec. 5; ``minialex.optim.ReduceOnPlateau``). A run of a few
epochs, like the embedded default, has no time for plateaus, and its
"validation" set is the test split, which a schedule should not watch. These
two schedules look at nothing but the epoch count:

- ``CosineDecay``: lr_e = lr_0 * (1 + cos(pi * e / E)) / 2 after epoch e of E
  (Loshchilov & Hutter 2017; one of the Bag of Tricks, PAPER.md "Beyond the paper").
- ``Constant``: the learning rate never changes.

Both follow ``minialex.optim``'s interface: ``step(val_error=None)`` once per
epoch, ``state_dict()`` / ``load_state_dict()`` with a "kind" entry.
"""
from __future__ import annotations

import math


class CosineDecay:
    """Cosine decay of the learning rate from its initial value to 0 over ``epochs`` epochs."""

    def __init__(self, optimizer, epochs):
        if epochs < 1 or int(epochs) != epochs:
            raise ValueError(f"CosineDecay: epochs must be a positive integer, got {epochs!r}")
        self.optimizer, self.epochs = optimizer, int(epochs)
        self.base_lr = float(optimizer.lr)
        self.count = 0

    def step(self, *_):
        """Count one epoch and set lr for the next one; arguments are ignored."""
        self.count += 1
        e = min(self.count, self.epochs)
        self.optimizer.lr = self.base_lr * 0.5 * (1.0 + math.cos(math.pi * e / self.epochs))
        return True

    def state_dict(self):
        return {"kind": "CosineDecay", "epochs": self.epochs, "base_lr": self.base_lr, "count": self.count}

    def load_state_dict(self, state):
        _check_kind(self, state)
        self.epochs, self.base_lr, self.count = int(state["epochs"]), float(state["base_lr"]), int(state["count"])


class Constant:
    """The learning rate stays where it is."""

    def __init__(self, optimizer):
        self.optimizer = optimizer

    def step(self, *_):
        return False

    def state_dict(self):
        return {"kind": "Constant"}

    def load_state_dict(self, state):
        _check_kind(self, state)


def _check_kind(sched, state):
    if state.get("kind") != type(sched).__name__:
        raise ValueError(f"{type(sched).__name__}.load_state_dict: state is for {state.get('kind')!r}, "
                         f"expected {type(sched).__name__!r}")
