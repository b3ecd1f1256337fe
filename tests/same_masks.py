"""Give several AlexNets the same dropout masks (tests that compare backends step for step).

CuPy arrays draw their dropout masks on the GPU (``_cuda.dropout_mask``, another
stream than the CPU's ``rng.random``), so nets that must agree across backends
get their masks from here, drawn on the host.
"""
import numpy as np


def same_dropout_masks(rng, N, *models):
    """Freeze one host-drawn (N, width) 0/1 mask per dropout layer in every model."""
    for layers in zip(*(m.dropout_layers() for m in models)):
        name, first = layers[0]
        width = models[0][name.replace("drop", "fc")].out_features
        mask = (rng.random((N, width)) >= first.p).astype(np.dtype(models[0].config.dtype))
        for _, layer in layers:
            layer.freeze(mask)
