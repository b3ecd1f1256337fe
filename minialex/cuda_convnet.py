"""The CIFAR-10 nets of Sec. 3.1 and 3.3, after cuda-convnet's example layer definitions.

The paper's CIFAR-10 figures come from the authors' 2012 code, cuda-convnet,
whose ``example-layers/`` folder defines them (public copies on GitHub, e.g.
dnouri/cuda-convnet). Two are built here from minialex layers:

``fig1`` -- Figure 1's "four-layer convolutional neural network" (Sec. 3.1),
    after ``layers-18pct.cfg`` / ``layers-80sec.cfg``: four weight layers,

        32x32 -> conv1 32@5x5 p2 -> act -> max 3/2 -> conv2 32@5x5 p2 -> act -> max 3/2
              -> conv3 64@5x5 p2 -> act -> max 3/2 -> fc10          (32 -> 15 -> 7 -> 3; 576 -> 10)

    ``activation="relu"`` or ``"tanh"`` (the figure's two nets); no
    normalisation, no dropout ("no regularization of any kind").

``conv-local`` -- Sec. 3.3's "four-layer CNN" (13% test error without
    normalisation, 11% with), ``layers-conv-local-13pct.cfg`` / ``-11pct.cfg``:

        24x24 crop -> conv1 64@5x5 p2 -> relu -> [lrn] -> max 3/2 -> conv2 64@5x5 p2 -> relu -> [lrn]
              -> max 3/2 -> local3 32@3x3 p1 -> relu -> local4 32@3x3 p1 -> relu -> fc10
              (24 -> 11 -> 5; 32*5*5 = 800 -> 10)

    ``lrn=True`` is the 11pct net (cross-map response normalisation, size 5,
    "scale" 0.001, "pow" 0.75), ``lrn=False`` the 13pct net. local3/local4
    are ``LocallyConnected2D`` (unshared weights); ``local=False`` makes them
    ordinary 3x3 convolutions.

Choices where we could not or did not follow the files (docs/deviations.md):

* **Pooling size**: cuda-convnet's pools (``outputsX=0``) cover the image
  with partial windows at the edge (24 -> 12 -> 6); by default ours take
  whole windows only (24 -> 11 -> 5), as ``MaxPool2D`` does everywhere in
  minialex. ``cover_pools=True`` builds cuda-convnet's sizes
  (``MaxPool2D(3, 2, cover=True)``; conv-local: 32*6*6 = 1152 -> 10).
* **Average pools**: ``layers-18pct``/``-80sec`` use average pooling in pool2
  and pool3 and put pool1 before its ReLU; ``fig1`` uses max pooling after
  every nonlinearity (the order is the same function for max pooling and
  ReLU, not for tanh). They also have a spatial ("rnorm") normalisation
  that Figure 1's no-regularisation net leaves out, and ``-80sec`` an extra
  fc64.
* **LRN constants**: cuda-convnet divides "scale" by the window size and
  adds 1: b = a / (1 + 0.001/5 * sum a^2)^0.75. That is
  ``LocalResponseNorm(5, alpha=0.001, beta=0.75, k=1, alpha_convention="pytorch")``.
* **Initialisation**: He-style, N(0, 2/fan_in) before a ReLU, N(0, 1/fan_in)
  before tanh and in fc10, biases 0 (the files' initW, e.g. 0.0001 in conv1,
  are for raw 0-255 pixels; our inputs are scaled to unit variance).
  Local layers' biases are per output unit (F, OH, OW). ``conv2_bias=1``
  sets conv2's to 1 instead, Sec. 5's rule for the second conv layer.
* **Training**: per-layer learning rates are replaced by one SGD (Sec. 5)
  for all layers, its learning rate chosen on a validation split
  (``minialex.reproduce``). The weight costs (wc 0 in conv1/2, 0.004
  elsewhere, none on biases) are available as ``SGD(layer_decay=...)``;
  lrn-cifar's fourth recipe tried them and validation did not choose them.

Both nets run on NumPy or, after ``net.to("cupy")``, on a GPU (the
readable ``LocallyConnected2D`` is array-agnostic; the other layers become
their CUDA twins).
"""
from __future__ import annotations

import numpy as np

from .backend import get_array_module
from .kernels import accelerate, move
from .layers import (Conv2D, Flatten, Linear, LocallyConnected2D, LocalResponseNorm, MaxPool2D, ReLU,
                     Sequential, Tanh)

NETS = ("fig1", "conv-local")


class CudaConvnetNet(Sequential):
    """A Sequential with what the trainer and checkpoints ask of a model.

    Shapes:  x: (N, 3, input_size, input_size)  ->  logits (N, 10)
    ``spec`` holds the name and options it was built from (stored in run metadata).
    """

    def __init__(self, items, input_size, spec, num_classes=10, kernels=None):
        super().__init__(*items)
        self.input_size, self.spec, self.num_classes = input_size, dict(spec), num_classes
        accelerate(self, np, kernels)      # the fast twins or the readable layers, chosen once here

    def num_params(self):
        return int(sum(p.size for _, p in self.named_params()))

    def to(self, xp, kernels=None):
        """Move every parameter to ``xp`` (``numpy``, ``cupy`` or their names), in place; returns self.

        As ``AlexNet.to``: the layers become the fast twins for that device (or
        the readable ones, ``kernels="reference"``); create the optimizer after
        moving.
        """
        return move(self, xp, kernels)

    @property
    def xp(self):
        """The array module holding the parameters."""
        return get_array_module(*[p for _, p in self.named_params()])

    def predict(self, x):
        """Logits in test mode, without keeping backward caches."""
        out = self.forward(x, train=False)
        for layer in self.layers:
            layer.cache = None
        return out

    def build_record(self):
        """What ``rebuild`` needs to make this net again (stored in checkpoints as meta/net)."""
        return {"builder": "cuda_convnet", **self.spec, "num_classes": self.num_classes,
                "dtype": str(next(iter(self.named_params()))[1].dtype)}

    def rng_state(self):
        return {}                                    # no dropout: nothing random after the init

    def set_rng_state(self, state):
        pass


def build(name, seed=0, activation="relu", lrn=True, local=True, conv2_bias=0.0, cover_pools=False, num_classes=10,
          dtype="float32"):
    """The cuda-convnet net ``name`` ("fig1" or "conv-local"); see the module docstring.

    cover_pools: True pools as cuda-convnet does, partial windows at the edge
    (conv-local 24 -> 12 -> 6, fig1 32 -> 16 -> 8 -> 4); False (default) takes
    whole windows only (24 -> 11 -> 5, 32 -> 15 -> 7 -> 3).

    conv2_bias: the initial bias of conv2's units. 0 follows cuda-convnet's files; 1 is
    Sec. 5's rule for the second convolutional layer ("provides the ReLUs with positive
    inputs"), which keeps conv2's ReLUs alive early in training (docs/deviations.md).
    """
    if name not in NETS:
        raise ValueError(f"cuda_convnet.build: unknown net {name!r}; expected one of {NETS}")
    if activation not in ("relu", "tanh"):
        raise ValueError(f"cuda_convnet.build: activation must be relu or tanh, got {activation!r}")
    rng = np.random.default_rng(seed)
    dtype = np.dtype(dtype)
    gain = 2.0 if activation == "relu" else 1.0
    act = ReLU if activation == "relu" else Tanh

    def std(fan_in, last=False):
        return float(np.sqrt((1.0 if last else gain) / fan_in))

    def pool():
        return MaxPool2D(3, 2, cover=cover_pools)

    items = []
    if name == "fig1":
        S, C = 32, 3
        for i, F in enumerate((32, 32, 64), start=1):
            p = pool()
            items += [(f"conv{i}", Conv2D(C, F, 5, padding=2, rng=rng, weight_std=std(C * 25),
                                          bias_init=conv2_bias if i == 2 else 0.0, dtype=dtype)),
                      (f"{activation}{i}", act()), (f"pool{i}", p)]
            C, S = F, p.output_shape((F, S, S))[1]       # 32 -> 15 -> 7 -> 3 (cover: 16 -> 8 -> 4)
        spec = dict(name=name, activation=activation, conv2_bias=conv2_bias)
    else:
        S, C = 24, 3
        for i in (1, 2):
            items += [(f"conv{i}", Conv2D(C, 64, 5, padding=2, rng=rng, weight_std=std(C * 25),
                                          bias_init=conv2_bias if i == 2 else 0.0, dtype=dtype)),
                      (f"{activation}{i}", act())]
            if lrn:
                items.append((f"lrn{i}", LocalResponseNorm(5, alpha=0.001, beta=0.75, k=1.0,
                                                           alpha_convention="pytorch")))
            p = pool()
            items.append((f"pool{i}", p))
            C, S = 64, p.output_shape((64, S, S))[1]     # 24 -> 11 -> 5 (cover: 12 -> 6)
        for i in (3, 4):
            w = std(C * 9)
            layer = (LocallyConnected2D(C, 32, 3, S, padding=1, rng=rng, weight_std=w, dtype=dtype) if local
                     else Conv2D(C, 32, 3, padding=1, rng=rng, weight_std=w, dtype=dtype))
            items += [(f"{'local' if local else 'conv'}{i}", layer), (f"{activation}{i}", act())]
            C = 32
        spec = dict(name=name, activation=activation, lrn=lrn, local=local, conv2_bias=conv2_bias)
    if cover_pools:                                      # only when set: older records stay as they were
        spec["cover_pools"] = True
    items += [("flatten", Flatten()),
              ("fc10", Linear(C * S * S, num_classes, rng=rng, weight_std=std(C * S * S, last=True),
                              dtype=dtype))]
    return CudaConvnetNet(items, 32 if name == "fig1" else 24, spec, num_classes)


def rebuild(record):
    """The net a ``CudaConvnetNet.build_record()`` describes (weights freshly initialised).

    Raises ValueError naming what is wrong with the record.
    """
    rec = dict(record)
    if rec.pop("builder", None) != "cuda_convnet":
        raise ValueError(f"cuda_convnet.rebuild: not a cuda_convnet record: {record!r}")
    name = rec.pop("name", None)
    try:
        return build(name, **rec)
    except TypeError as e:
        raise ValueError(f"cuda_convnet.rebuild: the record {record!r} does not fit build() ({e})") from None
