"""Mixed-precision training: float16 activations and gradients, float32 master weights.

Bag of Tricks (He et al. 2019) Sec. 3.2, after Micikevicius et al. 2018,
"Mixed precision training":

* the forward and backward passes run in float16 on a working copy of the
  net, whose weights are the float32 master weights rounded to float16;
* the loss's gradient is multiplied by a scale S before the float16
  backward pass, so that small gradients do not underflow to 0 (float16's
  smallest subnormal is 6e-8), and the float32 copies of the gradients are
  divided by S again before SGD updates the **float32 master weights**
  (an update lr * g is often below float16's resolution of a weight);
* **dynamic loss scaling**: when a gradient overflows (inf or NaN in float16),
  the step is skipped (weights and momentum untouched) and S is halved;
  after ``growth_interval`` good steps in a row S is doubled again.

The logits are cast to float32 before the softmax and the loss, which are
reductions (the paper keeps those in float32). Evaluation (``predict``) runs
the float32 master weights, which is what a checkpoint stores.

Both classes use ``get_array_module``: the same plumbing serves CuPy (the GPU
backend). On NumPy the float16 net runs the readable layers, since numba has no
float16 type; there it is a correctness reference, about a hundred times
slower than float32 (NumPy has no float16 BLAS). docs/tricks.md has details.

The four ``--precision`` modes (``PRECISIONS``; docs/gpu.md, "Precision"):

======  ==================  ==============================================  =========
mode    arrays              matrix products (cuBLAS on CuPy)                backends
======  ==================  ==============================================  =========
fp32    float32             float32 in, float32 compute (TF32 off)          both
tf32    float32             float32 in, TF32 tensor cores, float32 sums     cupy
fp16    float16 + fp32 mst  float16 in, tensor cores, float32 accumulation  both
bf16    bfloat16 + fp32 mst bfloat16 in (needs ``ml_dtypes``)               both
======  ==================  ==============================================  =========

``configure_matmul(xp, precision)`` sets CuPy's cuBLAS compute type once,
where the run starts (the switch is process-wide in CuPy, as
``torch.backends.cuda.matmul.allow_tf32`` is in PyTorch).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from .backend import device_of, get_array_module
from .kernels import accelerate

HALF = "float16"
PRECISIONS = ("fp32", "tf32", "fp16", "bf16")
MIXED = {"fp16": "float16", "bf16": "bfloat16"}     # precision -> the working copy's dtype


def working_dtype(name):
    """np.dtype for "float16" or "bfloat16" (the latter from ``ml_dtypes``; ValueError naming it if absent)."""
    if name == "bfloat16":
        try:
            import ml_dtypes  # noqa: F401  (registers np.dtype("bfloat16"))
        except ImportError:
            raise ValueError("precision bf16 needs the ml_dtypes package (NumPy and CuPy take bfloat16 "
                             "from it): pip install ml_dtypes, or use --precision fp16") from None
        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(name)


def configure_matmul(xp, precision):
    """Set how matrix products compute for ``precision``; returns a line for the log.

    CuPy hands ``matmul`` to cuBLAS ``gemmEx``; its compute type per input
    dtype is set by ``cupy._core._routines_linalg.set_compute_type`` (the
    setting ``CUPY_TF32=1`` also reaches, but only before the first product).
    fp32 asks for plain float32 compute (CUBLAS_COMPUTE_32F: no TF32), tf32
    for CUBLAS_COMPUTE_32F_FAST_TF32; float16 inputs always accumulate in
    float32 there (CUBLAS_COMPUTE_32F, tensor-core algorithm on sm_70+),
    which COMPUTE_TYPE_FP32 states explicitly. On NumPy only fp32, fp16 and
    bf16 exist (the CPU has no TF32): tf32 raises ValueError.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if xp is np:
        if precision == "tf32":
            raise ValueError("precision tf32 needs --backend cupy: TF32 is a tensor-core mode of NVIDIA GPUs "
                             "(sm_80+); on the CPU use fp32")
        return f"matmul: numpy BLAS, {MIXED.get(precision, 'float32')} inputs"
    linalg = xp._core._routines_linalg                   # CuPy's matmul module (cupy >= 10)
    f32 = linalg.COMPUTE_TYPE_TF32 if precision == "tf32" else linalg.COMPUTE_TYPE_FP32
    linalg.set_compute_type(np.float32, f32)
    linalg.set_compute_type(np.float16, linalg.COMPUTE_TYPE_FP32)   # half inputs, float32 sums
    return (f"matmul: cuBLAS, float32 inputs in {'TF32' if precision == 'tf32' else 'float32'} compute"
            + (f"; the working copy's {MIXED[precision]} inputs accumulate in float32" if precision in MIXED else ""))


class LossScaler:
    """Dynamic loss scale S for float16 backward passes (Micikevicius et al. 2018, Sec. 3.2).

    Parameters
    ----------
    init_scale : float, 2**16 (as PyTorch's GradScaler)
    growth_factor, backoff_factor : S *= 2 after ``growth_interval`` finite
        steps in a row; S *= 0.5 after a step whose gradients overflowed.
    growth_interval : int, 2000

    State (``state_dict``): scale, good_steps (finite steps since the last
    change) and skipped (overflowed steps in total).
    """

    def __init__(self, init_scale=2.0 ** 16, growth_factor=2.0, backoff_factor=0.5, growth_interval=2000):
        if not init_scale > 0:
            raise ValueError(f"LossScaler: init_scale must be > 0, got {init_scale}")
        if not growth_factor > 1 or not 0 < backoff_factor < 1:
            raise ValueError(f"LossScaler: need growth_factor > 1 and 0 < backoff_factor < 1, got "
                             f"{growth_factor}, {backoff_factor}")
        if growth_interval < 1:
            raise ValueError(f"LossScaler: growth_interval must be >= 1, got {growth_interval}")
        self.scale = float(init_scale)
        self.growth_factor, self.backoff_factor = float(growth_factor), float(backoff_factor)
        self.growth_interval = int(growth_interval)
        self.good_steps = 0
        self.skipped = 0

    def unscale(self, grads):
        """float32 gradients divided by S, and whether all of them are finite.

        ``grads``: name -> float16 array. One host sync for the finite check.
        Returns (dict name -> float32 array, bool).
        """
        out, flags = {}, []
        for name, g in grads.items():
            xp = get_array_module(g)
            with device_of(g):
                g32 = g.astype(np.float32)
                g32 *= np.float32(1.0 / self.scale)          # S is a power of 2: exact
                out[name] = g32
                flags.append(xp.isfinite(g32).all())
        finite = all(bool(f) for f in flags)
        return out, finite

    def update(self, finite):
        """Adjust S after a step: halve it on overflow (a skipped step), double it after a run of good ones."""
        if finite:
            self.good_steps += 1
            if self.good_steps >= self.growth_interval:
                self.scale *= self.growth_factor
                self.good_steps = 0
        else:
            self.scale *= self.backoff_factor
            self.good_steps = 0
            self.skipped += 1

    def state_dict(self):
        return {"scale": self.scale, "good_steps": self.good_steps, "skipped": self.skipped,
                "growth_factor": self.growth_factor, "backoff_factor": self.backoff_factor,
                "growth_interval": self.growth_interval}

    def load_state_dict(self, state):
        self.scale, self.good_steps = float(state["scale"]), int(state["good_steps"])
        self.skipped = int(state["skipped"])
        self.growth_factor, self.backoff_factor = float(state["growth_factor"]), float(state["backoff_factor"])
        self.growth_interval = int(state["growth_interval"])


def use_readable_kernels(model):
    """Make every layer of ``model`` run its readable xp code (numba has no float16)."""
    accelerate(model, kernels="reference")


class MixedPrecisionNet:
    """A float32 master model trained through a float16 working copy (module docstring).

    Looks like the model to the trainer, the optimizer and the checkpoint:
    ``named_params`` are the float32 master weights (SGD updates them),
    ``named_grads`` the float32, unscaled gradients of the last backward,
    ``rng_state`` the working copy's dropout generators (its masks are the
    ones used), ``config`` the master's.

    After ``backward``, ``grads_finite`` says whether the step may be taken;
    the caller skips ``optimizer.step()`` when it is False and then calls
    ``scaler.update(finite)`` (the trainer does both; with data parallelism
    "finite" means finite on every rank, so that the ranks' scales agree).

    Shapes:  forward: x (N, C, S, S) float32 -> logits (N, K) float32 (computed in float16)
    Paper:   Bag of Tricks Sec. 3.2; Micikevicius et al. 2018.
    """

    def __init__(self, master, scaler=None, dtype=HALF):
        self.master = master
        self.config = master.config
        self.dtype = working_dtype(dtype)                    # float16, or bfloat16 (float32's range:
        if scaler is None:                                   # no underflow to guard, S = 1 and stays
            scaler = LossScaler() if dtype == HALF else LossScaler(init_scale=1.0, growth_interval=2 ** 62)
        self.scaler = scaler
        xp = master.xp
        half_cfg = dataclasses.replace(master.config, dtype=dtype)
        self.half = type(master)(half_cfg)                   # same seed: same dropout streams
        if xp is not np:
            self.half.to(xp)
        else:
            use_readable_kernels(self.half)
        first, first_half = master.layers[0], self.half.layers[0]
        if hasattr(first, "input_grad"):                     # e.g. conv1 skips dL/d(image)
            first_half.input_grad = first.input_grad
        self.grads_finite = True
        self._grads = {}
        self._sync()

    @property
    def xp(self):
        return self.master.xp

    def _sync(self):
        """Round the float32 master weights into the float16 working copy."""
        for (name, w32), (_, w16) in zip(self.master.named_params(), self.half.named_params()):
            with device_of(w16):
                w16[...] = w32                                # cast to float16 in place

    # ------------------------------------------------------------ the model's interface
    def forward(self, x, train=True):
        """float16 forward pass of the working copy; logits returned in float32 for the loss."""
        if not train:
            return self.master.forward(x, train=False)
        self._sync()                                          # the master moved since the last step
        logits = self.half.forward(x.astype(self.dtype), train=True)    # (N, K) float16
        return logits.astype(np.float32)

    def backward(self, dlogits):
        """Scale dL/dlogits by S, backpropagate in float16, unscale into float32; sets ``grads_finite``."""
        with np.errstate(over="ignore", invalid="ignore"):         # an overflow is expected, and handled
            d16 = (dlogits * np.float32(self.scaler.scale)).astype(self.dtype)   # (N, K); may overflow to inf
            self.half.backward(d16)
        self._grads, self.grads_finite = self.scaler.unscale(dict(self.half.named_grads()))
        return None

    def predict(self, x):
        """Test-mode logits from the float32 master weights (what a checkpoint stores)."""
        return self.master.predict(x)

    def named_params(self):
        return self.master.named_params()

    def named_grads(self):
        return iter(self._grads.items())

    def rng_state(self):
        return self.half.rng_state()

    def set_rng_state(self, state):
        self.half.set_rng_state(state)
