"""A stand-in for ``cupy`` on the CPU that enforces CuPy's device rules.

Not a GPU emulator: arrays are NumPy arrays (a subclass) labelled with a
device id, and ``FakeCupy.cuda.Device(d)`` sets a thread's "current device".
What it checks is what multi-GPU code gets wrong:

* every ufunc, NumPy function, ``astype``, ``copy`` into a new array and
  ``__setitem__`` runs on the current device and refuses arrays that live
  on another one (CuPy: "Array device must be same as the current device",
  without peer access);
* ``asarray`` under another device copies, and -- like CuPy -- refuses to
  copy a non-contiguous array between devices;
* new arrays are allocated on the current device;
* minialex.kernels._cuda's kernels run through tests/cuda_cpu_harness.py (the CUDA
  bodies compiled as C++), with the same device check on every argument.

Use: ``fake = FakeCupy(n_devices=2, kernel_lib=...)``, then
``monkeypatch.setitem(sys.modules, "cupy", fake)`` and
``fake.install(monkeypatch)`` so ``minialex.kernels._cuda`` uses the harness.
"""
from __future__ import annotations

import threading

import numpy as np


class DeviceMismatch(ValueError):
    pass


class FakeArray(np.ndarray):
    """A NumPy array that lives on a (fake) device."""

    _fake = None        # the FakeCupy that owns the class (set by FakeCupy)

    def __array_finalize__(self, obj):
        self._dev = getattr(obj, "_dev", None)
        if self._dev is None:
            self._dev = self._fake.current

    # -- device bookkeeping -------------------------------------------------
    @property
    def device(self):
        return self._fake.cuda.Device(self._dev)

    def get(self):
        """To the host, from whatever device is current (as CuPy's ``get``)."""
        self._fake.no_sync("get()")
        return np.array(self.view(np.ndarray))

    def set(self, arr, stream=None):
        """From the host (as CuPy's ``set``; asynchronous on ``stream`` there)."""
        self._fake.check(self)
        np.copyto(self.view(np.ndarray), np.asarray(arr, dtype=self.dtype).reshape(self.shape))

    def _result(self, out):
        """Label new arrays with the current device (CuPy allocates there)."""
        if isinstance(out, FakeArray):
            out._dev = self._fake.current
        elif isinstance(out, tuple):
            for o in out:
                self._result(o)
        return out

    # -- computation ----------------------------------------------------------
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        fake = self._fake
        out = kwargs.get("out")
        fake.check(*inputs, *(out or ()))
        if out is not None:
            kwargs["out"] = _unwrap(tuple(out))
        result = getattr(ufunc, method)(*_unwrap(inputs), **kwargs)
        if out is not None:                    # in place, e.g. v *= m: the written FakeArray
            return out[0] if len(out) == 1 else tuple(out)
        return None if method == "at" else fake.wrap(result)

    def __array_function__(self, func, types, args, kwargs):
        fake = self._fake
        fake.check(*_flatten(args), *_flatten(list(kwargs.values())))
        args = _unwrap(args)
        kwargs = {k: _unwrap(v) for k, v in kwargs.items()}
        return fake.wrap(func(*args, **kwargs))

    def __setitem__(self, key, value):
        self._fake.check(self, value, *(_flatten(key) if isinstance(key, tuple) else [key]))
        np.ndarray.__setitem__(self.view(np.ndarray), _unwrap(key), _unwrap(value))

    def copy(self, order="C"):
        fake = self._fake
        if self._dev != fake.current and not (self.flags.c_contiguous or self.flags.f_contiguous):
            raise NotImplementedError("CuPy cannot copy non-contiguous array between devices.")
        return fake.wrap(np.ndarray.copy(self.view(np.ndarray), order=order))

    def astype(self, dtype, order="K", casting=None, subok=None, copy=True):
        self._fake.check(self)
        return self._fake.wrap(np.ndarray.astype(self.view(np.ndarray), dtype, copy=True))

    def __float__(self):
        self._fake.no_sync("float()")
        return float(self.view(np.ndarray))

    def __int__(self):
        self._fake.no_sync("int()")
        return int(self.view(np.ndarray))

    def __bool__(self):
        self._fake.no_sync("bool()")
        return bool(self.view(np.ndarray))


def _flatten(obj):
    if isinstance(obj, (list, tuple)):
        out = []
        for o in obj:
            out += _flatten(o)
        return out
    return [obj]


def _unwrap(obj):
    if isinstance(obj, FakeArray):
        return obj.view(np.ndarray)
    if isinstance(obj, tuple):
        return tuple(_unwrap(o) for o in obj)
    if isinstance(obj, list):
        return [_unwrap(o) for o in obj]
    return obj


class _Device:
    def __init__(self, fake, i):
        if not 0 <= int(i) < fake.n_devices:
            raise ValueError(f"fake cupy: device {i} does not exist ({fake.n_devices} devices)")
        self.fake, self.id = fake, int(i)
        self._prev = []

    def __enter__(self):
        self._prev.append(self.fake.current)
        self.fake.current = self.id
        return self

    def __exit__(self, *exc):
        self.fake.current = self._prev.pop()
        return False

    def synchronize(self):
        pass


class StreamCaptureError(RuntimeError):
    pass


class _Stream:
    """cupy.cuda.Stream: a context manager; ``begin_capture``/``end_capture`` as CuPy's (CUDA graphs).

    The stand-in cannot record kernels: while a capture is open the step
    still runs on NumPy, and ``end_capture`` returns a ``_Graph`` whose
    ``launch`` calls ``fake.replay(graph)`` (set by the test to rerun the step),
    so tests check the plumbing, not CUDA's capture. What it does enforce as
    CUDA does: no host sync (``float``, ``int``, ``bool``, ``get``) while
    capturing (cudaErrorStreamCaptureUnsupported on a GPU).
    """

    def __init__(self, fake, non_blocking=False):
        self.fake = fake

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def synchronize(self):
        self.fake.no_sync("Stream.synchronize()")

    def begin_capture(self, mode=None):
        if self.fake.capturing:
            raise StreamCaptureError("a capture is already open")
        self.fake.capturing = True
        self.fake.captures += 1

    def end_capture(self):
        self.fake.capturing = False
        return _Graph(self.fake)


class _Graph:
    def __init__(self, fake):
        self.fake = fake

    def launch(self, stream=None):
        self.fake.launches += 1
        self.fake.replay(self)


class _MemoryPool:
    def __init__(self, fake):
        self.fake, self.allocations = fake, 0

    def malloc(self, nbytes):
        self.allocations += 1


class FakeCupy:
    """The module object that stands in for ``cupy`` (only what minialex uses)."""

    __name__ = "cupy"
    __version__ = "fake"
    float16, float32, float64, int32, int64 = np.float16, np.float32, np.float64, np.int32, np.int64

    def __init__(self, n_devices=2, kernel_lib=None):
        self.n_devices = n_devices
        self._local = threading.local()
        self.kernel_lib = kernel_lib
        self.array_class = type("ndarray", (FakeArray,), {"_fake": self, "__module__": "cupy"})
        fake = self

        class cuda:
            @staticmethod
            def Device(i=None):
                return _Device(fake, fake.current if i is None else i)

            class runtime:
                @staticmethod
                def getDeviceCount():
                    return fake.n_devices

        class _using_allocator:
            def __init__(self, malloc):
                self.malloc = malloc

            def __enter__(self):
                fake.allocators.append(self.malloc)

            def __exit__(self, *exc):
                fake.allocators.pop()
                return False

        cuda.Stream = lambda non_blocking=False: _Stream(fake, non_blocking)
        cuda.MemoryPool = lambda: _MemoryPool(fake)
        cuda.using_allocator = _using_allocator
        self.cuda = cuda
        self.ndarray = self.array_class
        self.capturing, self.captures, self.launches = False, 0, 0
        self.allocators = []            # the allocator stack of cuda.using_allocator
        self.replay = None              # what a _Graph's launch runs (tests set it)

        class random:
            @staticmethod
            def standard_normal(size=None, dtype=np.float64):
                return fake.wrap(np.random.default_rng().standard_normal(size).astype(dtype))

        self.random = random

        class _routines_linalg:
            """cupy._core._routines_linalg's compute-type switch: records what was asked, per dtype."""
            COMPUTE_TYPE_TBD, COMPUTE_TYPE_DEFAULT, COMPUTE_TYPE_PEDANTIC = 0, 1, 2
            COMPUTE_TYPE_FP16, COMPUTE_TYPE_FP32, COMPUTE_TYPE_FP64 = 3, 4, 5
            COMPUTE_TYPE_BF16, COMPUTE_TYPE_TF32 = 6, 7
            compute_types = {}

            @classmethod
            def set_compute_type(cls, dtype, compute_type):
                cls.compute_types[np.dtype(dtype).name] = compute_type

        class _core:
            pass

        _core._routines_linalg = _routines_linalg
        self._core = _core
        self.transfers = []            # (from device, to device, bytes) of every cross-device copy

    # -- current device, per thread as in CUDA -----------------------------
    @property
    def current(self):
        return getattr(self._local, "dev", 0)

    @current.setter
    def current(self, d):
        self._local.dev = d

    def no_sync(self, what):
        if self.capturing:
            raise StreamCaptureError(f"{what} during a CUDA graph capture: a host sync "
                                     "(cudaErrorStreamCaptureUnsupported on a GPU)")

    def check(self, *objs):
        for o in objs:
            if isinstance(o, FakeArray) and o._dev != self.current:
                raise DeviceMismatch(f"Array device must be same as the current device: array device = "
                                     f"{o._dev} while current = {self.current}")

    def wrap(self, result):
        if isinstance(result, np.generic):             # CuPy's reductions return 0-d device arrays
            result = np.asarray(result)
        if self.allocators and isinstance(result, np.ndarray):
            self.allocators[-1](result.nbytes)         # new arrays come from the active allocator
        if isinstance(result, np.ndarray) and not isinstance(result, FakeArray):
            out = result.view(self.array_class)
            out._dev = self.current
            return out
        if isinstance(result, tuple):
            return tuple(self.wrap(r) for r in result)
        if isinstance(result, FakeArray):
            result._dev = self.current
        return result

    # -- creation and transfer ---------------------------------------------
    def asarray(self, a, dtype=None, order=None):
        if isinstance(a, FakeArray):
            if a._dev == self.current:
                return a if dtype is None or a.dtype == dtype else a.astype(dtype)
            if not (a.flags.c_contiguous or a.flags.f_contiguous):
                raise NotImplementedError("CuPy cannot copy non-contiguous array between devices.")
            self.transfers.append((a._dev, self.current, a.nbytes))
            out = self.wrap(np.array(a.view(np.ndarray)))
            return out if dtype is None else out.astype(dtype)
        return self.wrap(np.array(a, dtype=dtype))

    array = asarray

    def ascontiguousarray(self, a, dtype=None):
        self.check(a)
        return self.wrap(np.ascontiguousarray(_unwrap(a), dtype=dtype))

    def asnumpy(self, a):
        return a.get() if isinstance(a, FakeArray) else np.asarray(a)

    def __getattr__(self, name):
        """Everything else (zeros, empty, matmul, concatenate, ...) is NumPy's, on the current device."""
        fn = getattr(np, name)
        if not callable(fn):
            return fn

        def on_device(*args, **kwargs):
            self.check(*_flatten(list(args)), *_flatten(list(kwargs.values())))
            return self.wrap(fn(*_unwrap(args), **{k: _unwrap(v) for k, v in kwargs.items()}))

        return on_device

    # -- minialex.kernels._cuda through the C++ harness -----------------------------
    def install(self, monkeypatch):
        from cuda_cpu_harness import CpuKernel

        from minialex.kernels import _cuda

        monkeypatch.setattr(_cuda, "_cupy", lambda: self)
        monkeypatch.setattr(_cuda, "_kernel", lambda name: CpuKernel(self.kernel_lib, name, check=self.check))


def patch_minialex(monkeypatch, fake):
    """Make minialex's ``get_array_module``/``to_numpy`` see FakeArrays as CuPy's.

    FakeArray subclasses numpy.ndarray, which ``get_array_module`` would take
    for NumPy; every minialex module that imported the two functions gets a
    version that knows the fake.
    """
    import sys

    from minialex import backend

    real_gam, real_to_numpy = backend.get_array_module, backend.to_numpy

    def get_array_module(*arrays):
        if any(isinstance(a, FakeArray) for a in arrays):
            return fake
        return real_gam(*arrays)

    def to_numpy(a):
        return a.get() if isinstance(a, FakeArray) else real_to_numpy(a)

    for name, mod in list(sys.modules.items()):
        if name == "minialex" or name.startswith("minialex."):
            if getattr(mod, "get_array_module", None) is real_gam:
                monkeypatch.setattr(mod, "get_array_module", get_array_module)
            if getattr(mod, "to_numpy", None) is real_to_numpy:
                monkeypatch.setattr(mod, "to_numpy", to_numpy)
    monkeypatch.setitem(sys.modules, "cupy", fake)
    monkeypatch.setitem(sys.modules, "cupyx", _fake_cupyx(fake))
    fake.install(monkeypatch)


def _fake_cupyx(fake):
    """``cupyx.scatter_add`` (the readable col2im's unbuffered scatter on CuPy) as NumPy's ``add.at``."""
    import types

    def scatter_add(a, slices, value):
        fake.check(a, *_flatten(list(slices) if isinstance(slices, tuple) else [slices]), value)
        np.add.at(a.view(np.ndarray), _unwrap(slices), _unwrap(value))

    return types.SimpleNamespace(scatter_add=scatter_add, __name__="cupyx")
