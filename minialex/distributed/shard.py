"""Random numbers under data parallelism: the same augmentation as one process, independent dropout.

    rng = SliceRNG(np.random.default_rng([seed, epoch, b]), lo, hi, total)
    transform(x[lo:hi], rng)          # the crops/flips/colour shifts one process gives images lo..hi-1
    use_rank_dropout(model, rank)     # each rank's dropout masks from its own stream

**Augmentation (Sec. 4.1).** One process augments batch b with one
generator: ``rng.integers(..., size=B)`` for the crop offsets,
``rng.random(B)`` for the flips, ``rng.normal(size=(B, 3))`` for the colour
shifts. A rank that holds images lo..hi-1 of the batch draws every one of
these for the whole batch (B numbers: nothing next to the step) and keeps
rows lo..hi-1, so it augments its images exactly as the single process does
and the ranks' generators stay in step. ``SliceRNG`` does this for any
transform that draws per-image values with ``size`` whose first axis is the
batch, without the transform knowing about ranks.

**Dropout (Sec. 4.2).** Masks are not sliced: drawing the whole global
batch's mask on every rank would cost each rank the whole batch's random
numbers. Instead each mask comes from a fresh generator seeded with one draw
from the shared layer generator and the rank: ``default_rng([s, rank])``.
The ranks' masks are independent (the same seed on every rank would drop the
same units of rank 0's image i and rank 1's image i), the shared generator
advances identically on every rank, so a checkpoint's dropout state (rank
0's) is every rank's, and a run reproduces for a given number of ranks. The
masks differ from a single process's (docs/deviations.md, 23).
"""
from __future__ import annotations

import numpy as np

# Generator methods that draw per-image values, and the position of their ``size`` argument.
_SIZE_POSITION = {"integers": 2, "random": 0, "standard_normal": 0, "normal": 2, "uniform": 2}


class SliceRNG:
    """A ``numpy.random.Generator`` stand-in that draws for the whole batch and returns rows lo..hi-1.

    Parameters
    ----------
    rng : the batch's generator, the one a single process would use
    lo, hi : this rank's images in the batch (``shard_range``)
    total : the batch's size

    A draw whose ``size`` has the rank's batch (hi - lo) as first axis is drawn
    with ``total`` instead and sliced; a draw without ``size`` (one number) is
    passed through, identical on every rank. Any other size, or a method not in
    the table, raises: it could not be split consistently.
    """

    def __init__(self, rng, lo, hi, total):
        self.rng, self.lo, self.hi, self.total = rng, lo, hi, total

    def __getattr__(self, name):
        if name not in _SIZE_POSITION:
            raise AttributeError(f"SliceRNG: Generator.{name} is not split across ranks; draw per-image "
                                 f"values with one of {', '.join(_SIZE_POSITION)} and size=(batch, ...)")
        pos, method = _SIZE_POSITION[name], getattr(self.rng, name)

        def draw(*args, **kwargs):
            args = list(args)
            if "size" in kwargs:
                size = kwargs["size"]
            elif len(args) > pos:
                size = args[pos]
            else:
                size = None
            if size is None:
                return method(*args, **kwargs)       # one number: the same on every rank
            shape = (size,) if np.ndim(size) == 0 else tuple(size)
            if shape[0] != self.hi - self.lo:
                raise ValueError(f"SliceRNG.{name}: size {shape} does not start with this rank's batch "
                                 f"({self.hi - self.lo} images)")
            full = (self.total,) + shape[1:]
            if "size" in kwargs:
                kwargs["size"] = full
            else:
                args[pos] = full
            return method(*args, **kwargs)[self.lo:self.hi]     # (total, ...) -> (hi - lo, ...)

        return draw


class RankRNG:
    """Dropout's generator on one rank: one draw from the shared ``base`` seeds a rank-own generator.

    ``bit_generator`` is the shared one, so ``AlexNet.rng_state()`` and
    checkpoints see the same state on every rank.
    """

    def __init__(self, base, rank):
        self.base, self.rank = base, rank

    @property
    def bit_generator(self):
        return self.base.bit_generator

    def _fresh(self):
        return np.random.default_rng([int(self.base.integers(0, 2 ** 63)), self.rank])

    def random(self, *args, **kwargs):
        return self._fresh().random(*args, **kwargs)

    def integers(self, *args, **kwargs):
        return self._fresh().integers(*args, **kwargs)


def use_rank_dropout(model, rank):
    """Give each dropout layer of ``model`` (an AlexNet) a ``RankRNG``; returns the number wrapped."""
    layers = model.dropout_layers()
    for _, layer in layers:
        if not isinstance(layer.rng, RankRNG):
            layer.rng = RankRNG(layer.rng, rank)
    return len(layers)
