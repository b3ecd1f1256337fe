"""Run tests/test_gpu.py on the CPU against the CuPy stand-in (tests/fake_cupy.py).

    python tests/gpu_stand_in.py                 # all of test_gpu.py
    python tests/gpu_stand_in.py -k "not paper"  # pytest options pass through

A dry run of the GPU test file for machines without a GPU: it shows that the
tests are sound and that the CuPy code paths respect CuPy's device rules,
with minialex/kernels/_cuda.py's kernels compiled as C++. It is not a GPU result:
nothing here compiles CUDA or runs on a device. Needs a C++ compiler.
"""
import sys
import tempfile
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
sys.path[:0] = [str(TESTS), str(TESTS.parent)]

from cuda_cpu_harness import build_library  # noqa: E402
from fake_cupy import FakeCupy, patch_minialex  # noqa: E402

import minialex.kernels._cuda  # noqa: E402,F401  (every module patch_minialex patches must be imported first)
import minialex.checkpoint  # noqa: E402,F401
import minialex.im2col  # noqa: E402,F401
import minialex.kernels  # noqa: E402,F401
import minialex.layers  # noqa: E402,F401
import minialex.model  # noqa: E402,F401
import minialex.optim  # noqa: E402,F401
import minialex.towers  # noqa: E402,F401


class _Patch:
    """The two monkeypatch methods patch_minialex uses, applied for the whole process."""

    def setattr(self, obj, name, value):
        setattr(obj, name, value)

    def setitem(self, d, key, value):
        d[key] = value


if __name__ == "__main__":
    fake = FakeCupy(n_devices=2, kernel_lib=build_library(Path(tempfile.mkdtemp(prefix="minialex-cuda-"))))
    patch_minialex(_Patch(), fake)
    sys.exit(pytest.main(["-p", "no:cacheprovider", str(TESTS / "test_gpu.py"), *sys.argv[1:]]))
