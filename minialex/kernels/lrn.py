"""The fast twins of LocalResponseNorm (Sec. 3.3): one loop kernel per pass, numba on the CPU, CUDA on the GPU.

The numba kernels keep only x for backward and recompute the scale there
(``lrn_forward`` returns scale=None); the CUDA kernels keep (x, scale, out)
as the readable layer does. The two modules' ``lrn_forward`` and
``lrn_backward`` take the same arguments, so one class serves both. Tested
against ``LocalResponseNorm`` in tests/test_numba_kernels.py,
tests/test_cuda_kernels_on_cpu.py and tests/test_gpu.py.

16-bit arrays (``--precision fp16|bf16``): the CUDA kernels square, sum and
take the power in float32 and round out, scale and dx once to the 16-bit
type (the readable layer keeps its scale in float32). numba has no float16
(its kernels raise NotImplementedError), so on NumPy those modes run the
readable layer (``precision.use_readable_kernels``).
"""
from __future__ import annotations

from ..layers.lrn import LocalResponseNorm
from . import _cuda, _numba


class _FastLocalResponseNorm(LocalResponseNorm):
    ops = None                      # the kernel module: _numba or _cuda (same signatures)

    def _forward(self, x):
        out, scale = self.ops.lrn_forward(x, self.size, self.k, self.coeff, self.beta)  # (N, C, H, W) each
        self.cache = (x, scale, None if scale is None else out)   # numba: x alone, the scale is recomputed
        return out

    def _backward(self, dout):
        x, scale, out = self.cache
        dx = self.ops.lrn_backward(dout, x, scale, out, self.size, self.k, self.coeff, self.beta)
        self.cache = None
        return dx


class NumbaLocalResponseNorm(_FastLocalResponseNorm):
    """LocalResponseNorm on NumPy arrays through ``_numba.lrn_forward`` / ``lrn_backward``."""

    kernel_path = "numba"
    ops = _numba


class CudaLocalResponseNorm(_FastLocalResponseNorm):
    """LocalResponseNorm on CuPy arrays through ``_cuda.lrn_forward`` / ``lrn_backward``."""

    kernel_path = "cuda"
    ops = _cuda
