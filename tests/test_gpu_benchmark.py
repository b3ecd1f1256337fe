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


def test_suite_flops_are_the_paper_nets_multiply_adds():
    """3 x 2 x MACs of Sec. 3.5's layers, written out by hand (groups=2 halve conv2/4/5's inputs)."""
    macs = (96 * 55 * 55 * 3 * 11 * 11 + 256 * 27 * 27 * 48 * 5 * 5 + 384 * 13 * 13 * 256 * 3 * 3
            + 384 * 13 * 13 * 192 * 3 * 3 + 256 * 13 * 13 * 192 * 3 * 3
            + 9216 * 4096 + 4096 * 4096 + 4096 * 1000)
    assert load_bench().train_flops_per_image(AlexNet(AlexNetConfig.paper())) == 6 * macs


def test_suite_limit_and_ratios_in_a_row():
    bench = load_bench()
    peaks = bench.peak_tflops("NVIDIA H200")
    assert peaks["fp16"] > peaks["tf32"] > peaks["fp32"] and bench.peak_tflops("Some GPU") is None
    assert bench.peak_tflops("x", "1,2,3") == {"fp32": 1.0, "tf32": 2.0, "fp16": 3.0}
    mini = {"images_per_s": 3000.0, "peak_bytes": 3 * 2**30, "flops_per_image": 4e9}
    ref = {"images_per_s": 6000.0, "peak_bytes": 2 * 2**30}
    row = bench.suite_row("paper", "fp16", 128, mini, ref, peaks)
    assert row["speed_ratio"] == 0.5 and row["memory_ratio"] == 1.5
    assert row["limit_img_s"] == pytest.approx(989.4e12 / 4e9)
    table = bench.format_suite([row, bench.suite_row("cifar", "fp32", 128, mini, None, None)])
    assert table.count("\n") == 3 and "| paper | fp16 | 128 | 3000 | 6000 | 0.50 |" in table
    assert "| cifar | fp32 | 128 | 3000 | - | - |" in table


@pytest.mark.slow
def test_suite_torch_peer_is_the_cifar_net():
    """The generic peer (built from the model's layers) computes minialex's cifar net."""
    torch = pytest.importorskip("torch", reason=TORCH_SKIP)
    bench = load_bench()
    model = AlexNet(AlexNetConfig.cifar(dropout=0.0))
    net = bench.torch_peer(torch, model).eval()
    params = [m for m in net if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    with torch.no_grad():
        for m, (name, w) in zip([m for m in params for _ in (0, 1)], model.named_params()):
            if name.endswith(".w"):
                m.weight.copy_(torch.from_numpy(w.T.copy() if isinstance(m, torch.nn.Linear) else w))
            else:
                m.bias.copy_(torch.from_numpy(w))
    x = (10 * np.random.default_rng(0).standard_normal((2, *model.input_shape))).astype(np.float32)
    with torch.no_grad():
        b = net(torch.from_numpy(x)).numpy()
    assert rel_error(model.predict(x), b) < 1e-4
