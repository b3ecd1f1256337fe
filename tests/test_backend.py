import numpy as np
import pytest

from minialex import backend


def test_get_array_module_numpy():
    assert backend.get_array_module(np.zeros(2)) is np
    assert backend.get_array_module(None, 3.0, np.zeros(1)) is np


def test_get_backend():
    assert backend.get_backend("numpy") is np
    with pytest.raises(ValueError, match="'numpy' or 'cupy', got 'jax'"):
        backend.get_backend("jax")


def test_cupy_error_is_clear_when_unavailable():
    if backend.cupy_available():
        pytest.skip("CuPy and a CUDA device are present here")
    with pytest.raises(RuntimeError) as e:
        backend.get_backend("cupy")
    msg = str(e.value)
    assert "CuPy is not installed" in msg or "no CUDA device" in msg
    assert "pip install" in msg or "nvidia-smi" in msg


def test_info_reports_versions_and_kernel_paths(monkeypatch):
    from minialex.model import AlexNet, AlexNetConfig

    monkeypatch.delenv("MINIALEX_KERNELS", raising=False)
    i = backend.info(AlexNet(AlexNetConfig.tiny()))
    assert i["numpy"] == np.__version__
    assert i["kernels"] == "fast"
    assert i["layers"]["conv1"].startswith("numba (forward ") and i["layers"]["lrn1"] == "numba"
    assert i["layers"]["fc6"] == "reference"                     # no fast twin: the readable layer
    monkeypatch.setenv("MINIALEX_KERNELS", "reference")
    i = backend.info(AlexNet(AlexNetConfig.tiny()))
    assert i["kernels"] == "reference" and set(i["layers"].values()) == {"reference"}


def test_to_numpy_and_to_device():
    a = np.arange(3)
    assert backend.to_numpy(a) is a
    np.testing.assert_array_equal(backend.to_device([1, 2], np), [1, 2])


def test_thread_pools_sleep_by_default_and_user_choice_wins():
    """minialex asks numba's OpenMP pool and OpenBLAS to sleep when idle
    (they busy-wait against each other on 2 cores), unless the user chose."""
    import os
    import subprocess
    import sys

    code = ("import minialex, os; from minialex import backend; i = backend.info(); "
            "print(os.environ['OMP_WAIT_POLICY'], os.environ['OPENBLAS_THREAD_TIMEOUT'], "
            "i['OMP_WAIT_POLICY'])")
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OPENBLAS_THREAD_TIMEOUT")}
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["PASSIVE", "4", "PASSIVE"]
    env["OMP_WAIT_POLICY"] = "ACTIVE"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["ACTIVE", "4", "ACTIVE"]
