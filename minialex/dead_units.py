"""Dead ReLUs: the share of a net's rectified units that are zero on every image.

    x = preprocessed images, (N, C, S, S)             # e.g. evaluation.centre_batch(uint8, prep)
    dead_fraction(model, x)                           # {"relu1": 0.0, "relu2": 0.40, ...}

Sec. 3.1: a ReLU passes gradient only where its input is positive. A unit
whose input is negative for every image passes none to the weights that feed
it, so no later step moves it back: it is dead for good, and the net has lost
that much width. A large early step can do it (too high a learning rate
without warm-up; the lrn-cifar recipes in docs/deviations.md, section 24).

A "unit" is one output element per image: (C, H, W) positions of a conv or
locally connected layer's map, or D features of a fully connected one. With
shared conv weights a whole map tends to die at once; in a locally connected
layer each position lives or dies alone.
"""
from __future__ import annotations

from .backend import get_array_module, to_numpy
from .layers import ReLU


def dead_fraction(model, x, layers=None, batch_size=256):
    """{layer name: fraction of its output units that are <= 0 for every image of ``x``}.

    model: runs its ``layers`` in order under ``names`` (``Sequential``, ``AlexNet``,
        the nets of ``minialex.cuda_convnet``), in test mode (no dropout).
    x: (N, C, H, W) float, the net's input (crops, mean subtracted, scaled), NumPy or CuPy.
    layers: names whose outputs count; default every ReLU.
    Returns floats in [0, 1], one per counted layer, in the net's order.
    """
    names = list(model.names)
    wanted = list(layers) if layers is not None else [n for n, lay in zip(names, model.layers)
                                                      if isinstance(lay, ReLU)]
    unknown = [n for n in wanted if n not in names]
    if unknown:
        raise ValueError(f"dead_fraction: no layer named {unknown[0]!r}; the net has {names}")
    if len(x) == 0:
        raise ValueError("dead_fraction: x holds no images; expected (N, C, H, W) with N >= 1")
    xp = get_array_module(x)
    alive = {}                                            # name -> (units,) bool: positive on some image
    for i in range(0, len(x), batch_size):
        h = x[i:i + batch_size]                           # (B, C, H, W)
        for name, layer in zip(names, model.layers):
            h = layer.forward(h, train=False)
            layer.cache = None                            # no backward follows
            if name in wanted:
                fired = (h > 0).reshape(len(h), -1).any(axis=0)   # (B, ...) -> (B, units) -> (units,)
                alive[name] = fired if name not in alive else xp.logical_or(alive[name], fired)
    return {n: 1.0 - float(to_numpy(alive[n]).mean()) for n in wanted}
