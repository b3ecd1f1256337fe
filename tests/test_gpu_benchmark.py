"""benchmarks/gpu.py's PyTorch peer is the same network as minialex's paper config.

Runs on the CPU (PyTorch CPU, NumPy minialex): same weights, same batch, test
mode with dropout off (the paper scales by 0.5 at test time, PyTorch's
inverted dropout does not), logits agree to float32 round-off. The GPU timing
itself needs CuPy and a device and is not run here.
"""
import importlib.util
from pathlib import Path

import numpy as np
import pytest

from minialex.gradcheck import rel_error
from minialex.model import PAPER_NUM_PARAMS, AlexNet, AlexNetConfig

TORCH_SKIP = ("PyTorch is not installed: these tests compare with torch as an oracle; "
              "run them with `pip install torch==2.13.0` (CPU build, README: Run the whole test suite)")

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu.py"


def load_bench():
    spec = importlib.util.spec_from_file_location("bench_gpu", BENCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.slow
def test_torch_peer_is_the_paper_network():
    torch = pytest.importorskip("torch", reason=TORCH_SKIP)
    bench = load_bench()
    net = bench.torch_alexnet(torch).eval()
    assert sum(p.numel() for p in net.parameters()) == PAPER_NUM_PARAMS
    model = AlexNet(AlexNetConfig.paper(dropout=0.0))
    bench.load_minialex_weights(torch, net, dict(model.named_params()))
    # x100: large activations, so LRN (alpha, the window) changes the logits visibly
    x = (100 * np.random.default_rng(0).standard_normal((1, 3, 224, 224))).astype(np.float32)
    a = model.predict(x)
    with torch.no_grad():
        b = net(torch.from_numpy(x)).numpy()
    assert rel_error(a, b) < 1e-4


def test_without_cupy_the_benchmark_says_why_and_exits_0(capsys):
    from minialex import backend

    if backend.cupy_available():
        pytest.skip("CuPy and a CUDA device are present here")
    assert load_bench().main(["--steps", "1"]) == 0
    out = capsys.readouterr().out
    assert "nothing measured" in out and ("CuPy is not installed" in out or "no CUDA device" in out)
