"""--precision on a real GPU (marked ``gpu``; skipped without CuPy or a CUDA device). Issue 20.

What only a GPU can show: cuBLAS honours the compute type configure_matmul
sets (TF32 rounds float32 inputs to 10-bit mantissas, so a product whose
exact value needs more bits differs from float32's, and fp32 mode does
not), the CUDA kernels compile and run in float16, and a float16 training
step of the paper's layers agrees with float32 within float16's rounding.
The CPU versions: tests/test_precision_modes.py.
"""
import numpy as np
import pytest

from minialex import precision
from minialex.gradcheck import rel_error
from minialex.layers import SoftmaxCrossEntropy
from minialex.model import AlexNet, AlexNetConfig

pytestmark = pytest.mark.gpu

cp = pytest.importorskip("cupy", reason="CuPy is not installed: GPU tests skipped")
try:
    N_DEVICES = cp.cuda.runtime.getDeviceCount()
except Exception as e:  # no driver, CUDA_VISIBLE_DEVICES empty, ...
    pytest.skip(f"CuPy is installed but no CUDA device is usable ({e})", allow_module_level=True)
if N_DEVICES == 0:
    pytest.skip("CuPy is installed but no CUDA device is visible", allow_module_level=True)


@pytest.fixture(autouse=True)
def back_to_fp32():
    yield
    precision.configure_matmul(cp, "fp32")


def test_tf32_rounds_float32_products_and_fp32_does_not():
    if cp.cuda.Device().compute_capability < "80":
        pytest.skip("TF32 needs sm_80 or newer")
    a = cp.full((64, 64), 1 + 2.0 ** -20, dtype=cp.float32)     # 1 + 2^-20: below TF32's 10-bit mantissa
    b = cp.ones((64, 64), dtype=cp.float32)
    precision.configure_matmul(cp, "fp32")
    exact = float((a @ b)[0, 0])
    precision.configure_matmul(cp, "tf32")
    rounded = float((a @ b)[0, 0])
    assert exact == pytest.approx(64 * (1 + 2.0 ** -20), rel=1e-7)
    assert rounded == 64.0                                      # the 2^-20 was rounded away


def test_float16_products_accumulate_in_float32():
    precision.configure_matmul(cp, "fp16")
    k = 4096
    a = cp.full((1, k), 1.0, dtype=cp.float16)
    b = cp.full((k, 1), 1.0 + 2.0 ** -10, dtype=cp.float16)    # 1 + 2^-10 is exact in float16
    got = float((a @ b)[0, 0])
    # a float16 running sum stalls at 2048 (its spacing there is 2); float32 sums reach k*(1+2^-10)
    assert got == pytest.approx(k * (1 + 2.0 ** -10), rel=2e-3)


@pytest.mark.parametrize("config", ["tiny", "cifar"])
def test_fp16_training_step_on_the_gpu_matches_float32(config):
    cfg = getattr(AlexNetConfig, config)(dtype="float32", dropout=0.0, seed=1)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((16, *AlexNet(cfg).input_shape)).astype(np.float32)
    y = rng.integers(0, cfg.num_classes, 16)
    loss = SoftmaxCrossEntropy()
    precision.configure_matmul(cp, "fp16")
    ref = AlexNet(cfg).to(cp)
    loss.forward(ref.forward(cp.asarray(x)), cp.asarray(y))
    ref.backward(loss.backward())
    net = precision.MixedPrecisionNet(AlexNet(cfg).to(cp))
    loss.forward(net.forward(cp.asarray(x)), cp.asarray(y))
    net.backward(loss.backward())
    assert net.grads_finite
    g32, g16 = dict(ref.named_grads()), dict(net.named_grads())
    worst = max(rel_error(cp.asnumpy(g16[k]), cp.asnumpy(g32[k])) for k in g32)
    assert worst < 5e-2, worst            # float16 rounding; pool winners may flip (test_tricks' note)


def test_cuda_graph_replays_equal_the_eager_steps_with_dropout():
    """A captured step of the cifar net (dropout 0.5) replayed on a GPU: same losses and weights as
    the eager loop (same kernels, same seeds from each Dropout's generator), to float32 round-off."""
    from minialex.kernels.graphs import CapturedStep
    from minialex.optim import SGD

    precision.configure_matmul(cp, "fp32")
    cfg = AlexNetConfig.cifar(seed=4)
    rng = np.random.default_rng(4)
    data = [(cp.asarray(rng.standard_normal((32, *AlexNet(cfg).input_shape)).astype(np.float32)),
             cp.asarray(rng.integers(0, cfg.num_classes, 32))) for _ in range(4)]
    ref, model = AlexNet(cfg).to(cp), AlexNet(cfg).to(cp)
    ref_opt, opt = SGD(ref, lr=0.01), SGD(model, lr=0.01)
    loss = SoftmaxCrossEntropy(check_finite=False)
    step = CapturedStep(model, SoftmaxCrossEntropy(check_finite=False, check_labels=False), opt)
    for x, y in data:
        a = float(loss.forward(ref.forward(x), y))
        ref.backward(loss.backward())
        ref_opt.step()
        b = float(step(x, y))
        assert abs(a - b) <= 1e-5 * max(1.0, abs(a))
    assert step.captures == 1
    for (k, a), (_, b) in zip(ref.named_params(), model.named_params()):
        assert rel_error(cp.asnumpy(a), cp.asnumpy(b)) < 1e-5, k
