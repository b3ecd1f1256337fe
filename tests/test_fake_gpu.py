"""The CuPy code paths on the CPU, against a stand-in that enforces CuPy's device rules.

tests/fake_cupy.py labels NumPy arrays with a device id and refuses, as CuPy
does, any operation on an array that is not on the current device, and any
copy of a strided array between devices; minialex.kernels._cuda's kernels run
through their C++ build (tests/cuda_cpu_harness.py). With it the two towers
run on "devices" 0 and 1 through the same code a two-GPU run executes:
placement, every cross-device copy, the project's SGD and checkpoints.
What this cannot show: CUDA itself (compilation and launch, streams,
timing, memory); tests/test_gpu.py covers those on a real GPU.
"""
import numpy as np
import pytest
from cuda_cpu_harness import CXX, build_library
from fake_cupy import DeviceMismatch, FakeCupy, patch_minialex
from same_masks import same_dropout_masks

import minialex.kernels._cuda
import minialex.checkpoint  # noqa: F401  (imported before patching, see fake_cupy.patch_minialex)
import minialex.cuda_convnet  # noqa: F401
import minialex.data  # noqa: F401
import minialex.evaluation  # noqa: F401
import minialex.optim  # noqa: F401
import minialex.reproduce.runner  # noqa: F401
import minialex.towers  # noqa: F401
import minialex.trainer  # noqa: F401
import minialex.tricks  # noqa: F401
from minialex.gradcheck import rel_error
from minialex.layers import (Conv2D, Dropout, Flatten, Linear, LocalResponseNorm, MaxPool2D, ReLU,
                             SoftmaxCrossEntropy)
from minialex.model import AlexNet, AlexNetConfig

pytestmark = pytest.mark.skipif(CXX is None, reason="no C++ compiler to build minialex/kernels/_cuda.py's kernels")


@pytest.fixture(scope="module")
def kernel_lib(tmp_path_factory):
    return build_library(tmp_path_factory.mktemp("fake_gpu"))


@pytest.fixture
def cp(kernel_lib, monkeypatch):
    fake = FakeCupy(n_devices=2, kernel_lib=kernel_lib)
    patch_minialex(monkeypatch, fake)
    return fake


def test_the_stand_in_enforces_device_rules(cp):
    with cp.cuda.Device(1):
        a = cp.asarray(np.arange(12.0).reshape(3, 4))
    assert a.device.id == 1
    with pytest.raises(DeviceMismatch, match="array device = 1 while current = 0"):
        a + 1
    with pytest.raises(NotImplementedError, match="non-contiguous"):
        cp.asarray(a[:, :2])                          # strided, on another device
    b = cp.asarray(a)                                 # contiguous: copied to device 0
    assert b.device.id == 0 and cp.transfers == [(1, 0, a.nbytes)]
    with cp.cuda.Device(1):
        np.testing.assert_array_equal((a * 2).get(), np.arange(12.0).reshape(3, 4) * 2)


@pytest.mark.parametrize("layer,shape", [
    (Conv2D(4, 6, 3, padding=1, groups=2, rng=0, dtype=np.float64, weight_std=0.3), (2, 4, 7, 7)),
    (MaxPool2D(3, 2), (2, 3, 9, 9)),
    (LocalResponseNorm(5, 1.0, 0.75, 1.0), (2, 7, 4, 4)),
    (Linear(12, 5, rng=0, dtype=np.float64), (3, 12)),
    (ReLU(), (2, 3, 4, 4)),
    (Flatten(), (2, 3, 2, 2)),
])
def test_layers_run_on_the_device_of_their_input(cp, layer, shape):
    import copy

    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape)
    ref_out = layer.forward(x)
    dout = rng.standard_normal(ref_out.shape)
    ref_dx = layer.backward(dout)
    from minialex.kernels import accelerate

    gpu = accelerate(copy.deepcopy(layer), cp, "fast")     # as model.to(cupy) places it: the CUDA twins
    with cp.cuda.Device(1):
        gpu.params = {k: cp.asarray(v) for k, v in layer.params.items()}
        out = gpu.forward(cp.asarray(x))
        dx = gpu.backward(cp.asarray(dout))
    assert out.device.id == 1 and dx.device.id == 1
    assert rel_error(ref_out, out.get()) < 1e-12 and rel_error(ref_dx, dx.get()) < 1e-12
    for k in layer.grads:
        assert rel_error(layer.grads[k], gpu.grads[k].get()) < 1e-12


def test_dropout_mask_lands_on_the_device_of_x(cp):
    layer = Dropout(0.5, rng=3)
    with cp.cuda.Device(1):
        x = cp.asarray(np.ones((4, 6)))
        out = layer.forward(x)
        dx = layer.backward(cp.asarray(np.ones((4, 6))))
    assert out.device.id == 1 and dx.device.id == 1


def tower_step(net, x, y):
    from minialex.backend import to_numpy

    loss = SoftmaxCrossEntropy()
    value = float(loss(net.forward(x), y))
    net.backward(loss.backward())
    return value, to_numpy(net.forward(x, train=False))


@pytest.mark.parametrize("config", ["tiny", "cifar"])
def test_two_towers_on_devices_0_1_match_the_cpu_and_copy_what_they_count(cp, config):
    from minialex.checkpoint import load_checkpoint, save_checkpoint
    from minialex.optim import SGD
    from minialex.towers import TwoTowerAlexNet

    cfg = getattr(AlexNetConfig, config)(dtype="float64")
    ref, model = AlexNet(cfg), AlexNet(cfg)
    net = TwoTowerAlexNet(model, devices=(0, 1), xp=cp)
    placed = {name: p.device.id for name, p in net.named_params()}
    assert placed["conv1.w@t0"] == 0 and placed["conv1.w@t1"] == 1 and placed["fc8.w"] == 0
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4,) + ref.input_shape)
    y = rng.integers(0, cfg.num_classes, 4)
    same_dropout_masks(rng, 4, ref, model)

    # one step on the CPU, one on the towers
    loss = SoftmaxCrossEntropy()
    ref_value = float(loss(ref.forward(x), y))
    ref.backward(loss.backward())
    xg, yg = cp.asarray(x), cp.asarray(y)             # the batch arrives on device 0
    cp.transfers.clear()
    loss = SoftmaxCrossEntropy()
    value = float(loss(net.forward(xg), yg))
    net.backward(loss.backward())
    assert abs(ref_value - value) < 1e-10
    grads = net.unsplit_grads()
    for k, g in ref.named_grads():
        assert rel_error(g, grads[k]) < 1e-10, k

    # every byte the towers count crossed devices (0 -> 1 or 1 -> 0), and nothing else did:
    # the input's copy to tower 1 and its gradient back are counted under "input"
    counted = net.bytes_per_step()
    moved = sum(b for src, dst, b in cp.transfers if src != dst)
    assert moved == counted["between_towers"] + 2 * x.nbytes
    assert {(s, d) for s, d, _ in cp.transfers} == {(0, 1), (1, 0)}

    # the project's SGD updates each tower's params on its own device
    opt, opt_ref = SGD(net), SGD(ref)
    opt.step()
    opt_ref.step()
    assert {v.device.id for v in opt.velocity.values()} == {0, 1}
    params = net.unsplit_params()
    for k, w in ref.named_params():
        assert rel_error(w, params[k]) < 1e-10, k

    # checkpoints written from and read into the two devices
    path = save_checkpoint(cp_tmp(config) / "ckpt.npz", net, opt)
    again = TwoTowerAlexNet(AlexNet(cfg), devices=(0, 1), xp=cp)
    opt2 = SGD(again)
    load_checkpoint(path, again, opt2)
    for (k, a), (_, b) in zip(net.named_params(), again.named_params()):
        assert a.device.id == b.device.id
        np.testing.assert_array_equal(a.get(), b.get())
    assert {v.device.id for v in opt2.velocity.values()} == {0, 1}


def cp_tmp(name, _dirs={}):
    import tempfile
    from pathlib import Path

    if name not in _dirs:
        _dirs[name] = Path(tempfile.mkdtemp(prefix=f"minialex-fake-gpu-{name}-"))
    return _dirs[name]


def test_moved_model_runs_the_cuda_pool_and_lrn_kernels(cp, monkeypatch):
    """model.to(cupy) gives MaxPool2D and LocalResponseNorm their CUDA twins (minialex/kernels/);
    a whole training step of the tiny net through minialex/kernels/_cuda.py matches the NumPy layers."""
    from minialex.kernels.lrn import CudaLocalResponseNorm
    from minialex.kernels.pool import CudaMaxPool2D
    from minialex.optim import SGD

    calls = []
    kernel = minialex.kernels._cuda._kernel
    monkeypatch.setattr(minialex.kernels._cuda, "_kernel", lambda name: calls.append(name) or kernel(name))

    cfg = AlexNetConfig.tiny()
    ref, gpu = AlexNet(cfg), AlexNet(cfg)
    with cp.cuda.Device(1):
        gpu.to(cp)
        assert isinstance(gpu["pool1"], CudaMaxPool2D) and isinstance(gpu["lrn1"], CudaLocalResponseNorm)
        rng = np.random.default_rng(2)
        x = rng.standard_normal((4,) + ref.input_shape)
        y = rng.integers(0, cfg.num_classes, 4)
        same_dropout_masks(rng, 4, ref, gpu)
        out = []
        for m, xx, yy in ((ref, x, y), (gpu, cp.asarray(x), cp.asarray(y))):
            loss = SoftmaxCrossEntropy()
            value = float(loss(m.forward(xx), yy))
            m.backward(loss.backward())
            SGD(m).step()
            out.append(value)
    assert {"maxpool_fwd", "maxpool_bwd", "lrn_fwd", "lrn_bwd"} <= set(calls)
    assert abs(out[0] - out[1]) < 1e-12
    for (k, a), (_, b) in zip(ref.named_params(), gpu.named_params()):
        assert b.device.id == 1
        assert rel_error(a, b.get()) < 1e-12, k


@pytest.mark.parametrize("name,options", [
    ("conv-local", dict(lrn=True, local=True, cover_pools=True, conv2_bias=1.0)),
    ("conv-local", dict(lrn=False, local=True)),
    ("fig1", dict(activation="tanh")),
])
def test_cuda_convnet_net_moves_to_the_device_and_trains_as_on_the_cpu(cp, name, options):
    """CudaConvnetNet.to(cupy) puts every parameter on the device and gives conv, pool and LRN their
    CUDA twins (LocallyConnected2D stays the readable, array-agnostic layer); one SGD step there
    matches the NumPy net's (float64, relative error < 1e-10 in the loss and every parameter)."""
    from minialex import cuda_convnet
    from minialex.kernels.conv import CudaConv2D
    from minialex.kernels.pool import CudaMaxPool2D
    from minialex.layers import LocallyConnected2D
    from minialex.optim import SGD

    ref = cuda_convnet.build(name, seed=3, dtype="float64", **options)
    gpu = cuda_convnet.build(name, seed=3, dtype="float64", **options)
    assert gpu.to(cp) is gpu and gpu.xp is cp
    kinds = {type(layer) for layer in gpu.layers}
    assert CudaConv2D in kinds and CudaMaxPool2D in kinds
    assert (LocallyConnected2D in kinds) == options.get("local", False)
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 3, gpu.input_size, gpu.input_size))
    y = rng.integers(0, 10, 3)
    losses = []
    for m, xx, yy in ((ref, x, y), (gpu, cp.asarray(x), cp.asarray(y))):
        loss = SoftmaxCrossEntropy()
        losses.append(float(loss(m.forward(xx), yy)))
        m.backward(loss.backward())
        SGD(m, lr=0.1, momentum=0.9, weight_decay=5e-4).step()
    assert abs(losses[0] - losses[1]) < 1e-10 * abs(losses[0])
    for (k, a), (_, b) in zip(ref.named_params(), gpu.named_params()):
        assert isinstance(b, cp.array_class), k
        assert rel_error(a, b.get()) < 1e-10, k
    assert gpu.to(np).xp is np and type(gpu.layers[0]) is type(ref.layers[0])   # and back


def test_reproduce_trains_a_run_on_the_device_as_on_the_cpu(cp, tmp_path, monkeypatch):
    """runner.train_run(xp=cupy): the batches, the net and the test live on the device; the
    metrics.csv of a two-epoch lrn-cifar-style run (float32) agree with the CPU run's to 1e-4, the
    test error with its ten patches is the CPU's, and run.json names the cupy backend."""
    from minialex.metrics import read_metrics
    from minialex.reproduce.runner import RunSpec, Splits, train_run

    rng = np.random.default_rng(0)
    imgs = lambda n: rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)   # noqa: E731
    labels = lambda n: np.arange(n) % 10                                   # noqa: E731
    data = Splits(imgs(64), labels(64), imgs(20), labels(20), imgs(30), labels(30),
                  tuple(f"class{i}" for i in range(10)), "random images")
    spec = RunSpec("lrn-seed0", net="conv-local", epochs=2, batch_size=16, lr=0.01, pad=0, seed=0,
                   net_options={"lrn": True, "local": True, "conv2_bias": 1.0, "cover_pools": True},
                   tricks={"warmup_epochs": 1.0}, ten_crop=True)
    calls = []
    kernel = minialex.kernels._cuda._kernel
    monkeypatch.setattr(minialex.kernels._cuda, "_kernel", lambda name: calls.append(name) or kernel(name))
    cpu = train_run(spec, data, tmp_path / "cpu", log=lambda m: None)
    assert calls == []
    gpu = train_run(spec, data, tmp_path / "gpu", log=lambda m: None, xp=cp)
    assert {"maxpool_fwd", "maxpool_bwd", "lrn_fwd", "lrn_bwd"} <= set(calls)   # the CUDA twins ran
    a, b = read_metrics(tmp_path / "cpu" / "metrics.csv"), read_metrics(tmp_path / "gpu" / "metrics.csv")
    assert len(a["epoch"]) == len(b["epoch"]) == 2
    for col in ("train_loss", "val_loss"):
        np.testing.assert_allclose(b[col], a[col], rtol=1e-4, err_msg=col)
    for key in ("test_top1", "test_top1_ten_crop", "val_top1"):
        assert gpu[key] == cpu[key], key
    assert "cupy backend" in gpu["machine"] and "numpy backend" in cpu["machine"]


def test_evaluate_runs_a_cuda_convnet_checkpoint_on_the_device(cp, tmp_path):
    """evaluation.evaluate(xp=cupy) moves a cuda-convnet checkpoint's net to the device (it used to
    refuse: the net had no .to) and gives the CPU's probabilities, centre and ten patches."""
    from minialex import cuda_convnet
    from minialex.checkpoint import save_checkpoint
    from minialex.evaluation import evaluate, load_model, predict_proba

    net = cuda_convnet.build("conv-local", seed=5, cover_pools=True, conv2_bias=1.0)
    rng = np.random.default_rng(1)
    mean = rng.uniform(100, 150, size=(3, 32, 32)).astype(np.float32)
    extra = {"preprocess": {"crop": 24, "pad": 0, "image_size": 32, "mean": mean.tolist(), "scale": 1 / 64}}
    save_checkpoint(tmp_path / "c.npz", net, extra=extra)
    x = rng.integers(0, 256, size=(12, 3, 32, 32), dtype=np.uint8)
    y = np.arange(12) % 10
    rows = {"numpy": evaluate([tmp_path / "c.npz"], x, y, ten_crop=True),
            "cupy": evaluate([tmp_path / "c.npz"], x, y, ten_crop=True, xp=cp)}
    assert [r[:2] for r in rows["cupy"]] == [r[:2] for r in rows["numpy"]]
    for a, b in zip(rows["numpy"], rows["cupy"]):
        assert a[2:] == b[2:], a[:2]
    model, meta = load_model(tmp_path / "c.npz")
    want = predict_proba(model, x, meta["preprocess"], ten_crop=True)
    model.to(cp)
    assert isinstance(dict(model.named_params())["fc10.w"], cp.array_class)
    np.testing.assert_allclose(predict_proba(model, x, meta["preprocess"], ten_crop=True, xp=cp), want,
                               rtol=1e-5, atol=1e-7)
