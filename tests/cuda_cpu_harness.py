"""Build the CUDA kernel bodies of minialex/kernels/_cuda.py as C++ and call them like ElementwiseKernels.

Shared by tests/test_cuda_kernels_on_cpu.py and tests/fake_cupy.py. Each body
is pasted into a C++ loop over ``i`` (CuPy's output index), raw parameters
become pointers and output parameters references to element ``i``: the
semantics CuPy gives them.
"""
import ctypes
import shutil
import subprocess

import numpy as np

from minialex.kernels import _cuda

CXX = shutil.which("g++") or shutil.which("clang++")
CTYPES = {"float32": ("float", ctypes.c_float), "float64": ("double", ctypes.c_double),
          "float16": ("_Float16", None)}
# Kernels also built for float16 (as GCC's _Float16): those without T scalar
# arguments, which ctypes cannot pass as a 16-bit float (LRN takes its constants
# as float64).
HALF_KERNELS = ("im2col", "col2im", "maxpool_fwd", "maxpool_bwd", "lrn_fwd", "lrn_bwd")


def parse_params(text):
    """'raw T x, int32 N' -> [(raw, type, name), ...]."""
    out = []
    for item in text.split(","):
        words = item.split()
        out.append((words[0] == "raw", words[-2], words[-1]))
    return out


def c_type(t, T):
    """The C type of an ElementwiseKernel parameter type (``T`` is the float type)."""
    return {"T": T, "int32": "int", "uint64": "unsigned long long", "float64": "double",
            "uint8": "unsigned char"}[t]


def kernel_source(name, T):
    """A C++ function ``{name}_{T}`` looping the CUDA body over i."""
    ins, outs, body = _cuda.KERNEL_SPECS[name]
    args, binds = [], []
    for raw, t, n in parse_params(ins):
        args.append(f"const {c_type(t, T)}* {n}" if raw else f"{c_type(t, T)} {n}")
    for raw, t, n in parse_params(outs):
        args.append(f"{c_type(t, T)}* {n}_ptr")
        binds.append(f"{c_type(t, T)}& {n} = {n}_ptr[i];")
    return (f'extern "C" void {name}_{T}({", ".join(args)}, ptrdiff_t n_out) {{\n'
            f"  typedef {T} T;\n"
            f"  for (ptrdiff_t i = 0; i < n_out; ++i) {{\n    {' '.join(binds)}\n{body}\n  }}\n}}\n")


def half_supported(directory):
    """True when the C++ compiler has _Float16 (GCC 12+ and clang on x86-64 and arm64)."""
    probe = directory / "half.cpp"
    probe.write_text("_Float16 f(_Float16 a, _Float16 b) { return a + b; }\n")
    r = subprocess.run([CXX, "-c", "-o", str(directory / "half.o"), str(probe)], capture_output=True)
    return r.returncode == 0


def build_library(directory):
    """Compile every kernel in float and double (and HALF_KERNELS in _Float16 where the compiler
    has it: ``lib.half``) into ``directory``; returns the ctypes library."""
    HALF = half_supported(directory)
    src = ["#include <cmath>", "#include <cstddef>", "#include <algorithm>",
           "using std::min; using std::max; using std::pow;", _cuda.ACC_PREAMBLE]
    for name in _cuda.KERNEL_SPECS:
        for T in ("float", "double") + (("_Float16",) if name in HALF_KERNELS and HALF else ()):
            src.append(kernel_source(name, T))
    (directory / "k.cpp").write_text("\n".join(src))
    so = directory / "k.so"
    r = subprocess.run([CXX, "-O1", "-shared", "-fPIC", "-o", str(so), str(directory / "k.cpp")],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(r.stderr)
    lib = ctypes.CDLL(str(so))
    lib.half = HALF
    return lib


class CpuKernel:
    """Calls the compiled loop like ``ElementwiseKernel.__call__(*ins, *outs)``.

    ``check(array)`` is called on every array argument (the fake CuPy checks devices there).
    """

    def __init__(self, lib, name, check=None):
        self.lib, self.name, self.check = lib, name, check
        self.ins = parse_params(_cuda.KERNEL_SPECS[name][0])
        self.outs = parse_params(_cuda.KERNEL_SPECS[name][1])

    def __call__(self, *args):
        ins, outs = args[:len(self.ins)], args[len(self.ins):]
        arrays = [a for a in args if isinstance(a, np.ndarray) and a.dtype.kind == "f"]
        T, ct = CTYPES[str(arrays[0].dtype)]
        c_args = []
        for (raw, t, _), a in zip(self.ins + self.outs, list(ins) + list(outs)):
            if isinstance(a, np.ndarray):
                if self.check is not None:
                    self.check(a)
                expected = {"int32": np.int32, "uint8": np.uint8, "uint64": np.uint64}.get(t, arrays[0].dtype)
                assert a.flags.c_contiguous and a.dtype == expected, (self.name, t, a.dtype)
                c_args.append(a.ctypes.data_as(ctypes.c_void_p))
            else:
                scalar = {"int32": lambda v: ctypes.c_int(int(v)), "uint64": lambda v: ctypes.c_ulonglong(int(v)),
                          "float64": lambda v: ctypes.c_double(float(v))}.get(t, lambda v: ct(float(v)))
                c_args.append(scalar(a))
        fn = getattr(self.lib, f"{self.name}_{T}")
        fn(*c_args, ctypes.c_ssize_t(outs[0].size))


def splitmix_uniform(n, seed):
    """The first ``n`` uniforms in [0, 1) of the splitmix64 stream from ``seed`` (Steele, Lea & Flood
    2014; Vigna's splitmix64.c), in plain NumPy: the twin of ``_cuda.dropout_mask``'s generator.
    Returns (uniforms, the raw 64-bit outputs)."""
    with np.errstate(over="ignore"):
        z = np.uint64(seed) + np.arange(1, n + 1, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) / 2.0 ** 53, z
