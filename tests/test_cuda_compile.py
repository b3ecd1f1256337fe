"""The CUDA kernel bodies of minialex/kernels/_cuda.py compile with NVRTC (no GPU needed).

Each body is wrapped the way CuPy's ElementwiseKernel wraps it -- raw
parameters as ``CArray`` from CuPy's own ``cupy/carray.cuh``, outputs as
references to element ``i``, the ``CUPY_FOR`` grid-stride loop -- and
compiled for compute_80 in float32 and float64. Runs wherever CuPy and its
NVRTC library import, with or without a CUDA device or driver; skipped
otherwise. What runs on a device is tested in tests/test_gpu.py.
"""
import os

import pytest
from cuda_cpu_harness import c_type, parse_params  # the same parameter parsing as the C++ harness

from minialex.kernels import _cuda

cupy = pytest.importorskip("cupy", reason="CuPy is not installed: NVRTC compile check skipped")


def nvrtc_or_skip():
    try:
        from cupy.cuda import nvrtc

        nvrtc.getVersion()
    except Exception as e:  # the NVRTC shared library is missing
        pytest.skip(f"NVRTC is not available ({type(e).__name__}: {e})")
    return nvrtc


NDIM = {"x": 4, "cols": 2, "dout": 4, "arg": 4, "scale": 4, "out": 4, "g": 1,
        "mean": 3, "top": 1, "left": 1, "flip": 1, "shift": 2, "seeds": 1}


def wrapped_source(name, T):
    ins, outs, body = _cuda.KERNEL_SPECS[name]
    args, binds = [], []
    for raw, t, n in parse_params(ins):
        ct = c_type(t, T)
        args.append(f"CArray<{ct}, {NDIM[n]}, true, true> {n}" if raw else f"{ct} {n}")
    for _, t, n in parse_params(outs):
        ct = c_type(t, T)
        args.append(f"CArray<{ct}, 1, true, true> _raw_{n}")
        binds.append(f"{ct} &{n} = _raw_{n}[i];")
    return (f"#include <cupy/carray.cuh>\n{_cuda.ACC_PREAMBLE}\ntypedef {T} T;\n"
            f'extern "C" __global__ void minialex_{name}({", ".join(args)}, CIndexer<1, true> _ind) {{\n'
            f"  CUPY_FOR(i, _ind.size()) {{ {' '.join(binds)}\n{body}\n  }}\n}}\n")


@pytest.mark.parametrize("T", ["float", "double"])
@pytest.mark.parametrize("name", list(_cuda.KERNEL_SPECS))
def test_kernel_body_compiles_with_nvrtc(name, T):
    nvrtc = nvrtc_or_skip()
    include = os.path.join(os.path.dirname(cupy.__file__), "_core", "include")
    prog = nvrtc.createProgram(wrapped_source(name, T), f"{name}.cu", [], [])
    try:
        nvrtc.compileProgram(prog, [f"-I{include}", "--std=c++17", "-arch=compute_80", *_cuda._NVRTC_OPTIONS])
    except Exception:
        pytest.fail(f"{name} ({T}) does not compile:\n{nvrtc.getProgramLog(prog)}")
    assert len(nvrtc.getPTX(prog)) > 0


@pytest.mark.parametrize("name", ["im2col", "col2im", "maxpool_fwd", "maxpool_bwd", "lrn_fwd", "lrn_bwd"])
def test_gather_kernels_compile_in_float16(name):
    """--precision fp16 runs them on CuPy's float16 type; the sums (and LRN's pow) in float (ACC_PREAMBLE)."""
    nvrtc = nvrtc_or_skip()
    include = os.path.join(os.path.dirname(cupy.__file__), "_core", "include")
    prog = nvrtc.createProgram(wrapped_source(name, "float16"), f"{name}.cu", [], [])
    try:
        nvrtc.compileProgram(prog, [f"-I{include}", "--std=c++17", "-arch=compute_80", *_cuda._NVRTC_OPTIONS])
    except Exception:
        pytest.fail(f"{name} (float16) does not compile:\n{nvrtc.getProgramLog(prog)}")
    assert len(nvrtc.getPTX(prog)) > 0
