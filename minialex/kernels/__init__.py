"""The fast paths, kept apart from the readable layers and chosen once per model.

    model = AlexNet(cfg)                  # built with the fast twins (MINIALEX_KERNELS, default "fast")
    model.to("cupy")                      # moved: the CUDA twins (``move``)
    accelerate(layer_or_model, np, "reference")   # or back to the readable layers

Every fast layer is a subclass of its readable layer in ``minialex.layers``
with the same parameters, state and results (tested against it), and says
which path it runs in ``kernel_path``:

=================  ============================  ===========================
readable layer     on NumPy arrays               on CuPy arrays
=================  ============================  ===========================
Conv2D             conv.NumbaConv2D              conv.CudaConv2D
MaxPool2D          pool.NumbaMaxPool2D           pool.CudaMaxPool2D
LocalResponseNorm  lrn.NumbaLocalResponseNorm    lrn.CudaLocalResponseNorm
ReLU               activation.NumbaReLU          (the readable layer)
Dropout            (the readable layer)          dropout.CudaDropout
=================  ============================  ===========================

The kernels themselves are in ``_numba.py`` (numba, CPU) and ``_cuda.py``
(CUDA source for CuPy); a kernel with a twin on the other device takes the
same arguments in the same order (im2col, col2im, maxpool_forward,
maxpool_backward, lrn_forward, lrn_backward). The readable layers never
import this package.
"""
from __future__ import annotations

from ..backend import get_array_module, get_backend, kernels_choice, to_device
from ..layers import Conv2D, Dropout, LocalResponseNorm, MaxPool2D, ReLU
from .activation import NumbaReLU
from .conv import CudaConv2D, NumbaConv2D
from .dropout import CudaDropout
from .lrn import CudaLocalResponseNorm, NumbaLocalResponseNorm
from .pool import CudaMaxPool2D, NumbaMaxPool2D

# readable class -> {array module name: fast twin}
FAST = {
    Conv2D: {"numpy": NumbaConv2D, "cupy": CudaConv2D},
    MaxPool2D: {"numpy": NumbaMaxPool2D, "cupy": CudaMaxPool2D},
    LocalResponseNorm: {"numpy": NumbaLocalResponseNorm, "cupy": CudaLocalResponseNorm},
    ReLU: {"numpy": NumbaReLU},
    Dropout: {"cupy": CudaDropout},
}
# fast twin -> its readable class
READABLE = {fast: base for base, twins in FAST.items() for fast in twins.values()}


def _layers(obj):
    """The layers of ``obj``: a Sequential's (recursively), or the layer itself."""
    inner = getattr(obj, "layers", None)
    if inner is None:
        return [obj]
    return [leaf for layer in inner for leaf in _layers(layer)]


def accelerate(obj, xp=None, kernels=None):
    """Give every layer of ``obj`` the path ``kernels`` selects on ``xp``; returns ``obj``.

    Parameters
    ----------
    obj : a layer, or a Sequential / AlexNet (its layers, recursively)
    xp : the array module the layers will run on (``numpy`` or ``cupy``, or
        their names); default: where ``obj``'s parameters live, else numpy.
    kernels : "fast" or "reference"; default the ``MINIALEX_KERNELS``
        switch (``minialex.backend.kernels_choice``).

    A readable layer becomes its fast twin on ``xp`` (or stays readable where it
    has none), a fast layer becomes the twin for ``xp`` or, with "reference",
    its readable class again. Parameters and state are kept: only the class
    changes. Layers of other classes (e.g. a user's subclass) are left alone.
    """
    choice = kernels_choice(kernels)
    if isinstance(xp, str):
        xp = get_backend(xp)
    if xp is None:
        params = [p for layer in _layers(obj) for p in layer.params.values()]
        xp = get_array_module(*params)
    device = "numpy" if xp.__name__ == "numpy" else "cupy"
    for layer in _layers(obj):
        base = READABLE.get(type(layer), type(layer))
        if base not in FAST:
            continue
        fast = FAST[base].get(device) if choice == "fast" else None
        layer.__class__ = fast or base
    return obj


def move(obj, xp, kernels=None):
    """Move every parameter of ``obj`` to ``xp`` in place, then ``accelerate`` it there; returns ``obj``.

    ``obj``: a layer or a Sequential / AlexNet (its layers, recursively);
    ``xp``: ``numpy``, ``cupy`` or their names. Gradients and backward caches
    are dropped (they live on the old device). This is what ``AlexNet.to`` and
    ``CudaConvnetNet.to`` do; create the optimizer after moving, since it holds
    references to the parameter arrays.
    """
    if isinstance(xp, str):
        xp = get_backend(xp)
    for layer in _layers(obj):
        for k in list(layer.params):
            layer.params[k] = to_device(layer.params[k], xp)
        if layer.params:
            layer.grads = {k: None for k in layer.params}
        layer.cache = None
    return accelerate(obj, xp, kernels)
