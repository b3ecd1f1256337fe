"""The fast twin of Dropout (Sec. 4.2) on the GPU: the mask made on the device from one seed.

Drawing half a million numbers on the host took 2 ms a layer on an H100
machine, longer than the layer itself. ``CudaDropout`` draws one seed from the
layer's ``rng`` per mask and ``_cuda.dropout_mask`` makes the mask on the GPU:
reproducible from the seed, but not the units the CPU's host-drawn masks drop
(docs/deviations.md 21). On the CPU the readable ``Dropout`` runs.
"""
from __future__ import annotations

from ..layers.dropout import Dropout
from . import _cuda


class CudaDropout(Dropout):
    """Dropout on CuPy arrays with masks from ``_cuda.dropout_mask`` (no host draws, no copy)."""

    kernel_path = "cuda"
    seed_buffer = None      # a CUDA graph's (1,) uint64 device seed (kernels/graphs.py), set per layer

    def _new_mask(self, x):
        seed = self.seed_buffer                   # set by a CUDA graph (kernels/graphs.py), else
        if seed is None:                          # drawn here, once per mask
            seed = int(self.rng.integers(0, 2 ** 63))
        return _cuda.dropout_mask(x.shape, self.p, seed, x.dtype, device=x.device.id)
