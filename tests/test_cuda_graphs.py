"""minialex.kernels.graphs.CapturedStep on the CuPy stand-in (issue 20: CUDA graphs).

The stand-in (tests/fake_cupy.py) cannot record kernels. Here a capture is
made to behave as CUDA's does from the outside: the parameters and momenta
are put back after the captured step ran (a capture executes nothing), and
a launch runs the step again on the graph's own buffers. What is checked is
the plumbing: static buffers per shape and lr, re-capture when either
changes, results equal to the eager loop's bit for bit, the private memory
pool, and that a host sync inside a capture fails (as on a GPU). Whether
CUDA replays the step correctly and faster: tests/test_gpu_precision.py's
neighbour on a GPU, benchmarks/gpu.py --suite --cuda-graphs.
"""
import numpy as np
import pytest
from cuda_cpu_harness import CXX, build_library
from fake_cupy import FakeCupy, StreamCaptureError, _Stream, patch_minialex

import minialex.checkpoint  # noqa: F401  (imported before patching, see fake_cupy.patch_minialex)
import minialex.kernels._cuda  # noqa: F401
import minialex.optim  # noqa: F401
from minialex.kernels.graphs import CapturedStep
from minialex.layers import SoftmaxCrossEntropy
from minialex.model import AlexNet, AlexNetConfig
from minialex.optim import SGD
from minialex.precision import MixedPrecisionNet

pytestmark = pytest.mark.skipif(CXX is None, reason="no C++ compiler to build minialex/kernels/_cuda.py's kernels")


@pytest.fixture(scope="module")
def kernel_lib(tmp_path_factory):
    return build_library(tmp_path_factory.mktemp("graphs"))


@pytest.fixture
def cp(kernel_lib, monkeypatch):
    fake = FakeCupy(n_devices=1, kernel_lib=kernel_lib)
    patch_minialex(monkeypatch, fake)
    return fake


def capture_executes_nothing(monkeypatch, step, model, opt):
    """Put the parameters, momenta and the loss buffer back at end_capture: CUDA records a step,
    it does not run it."""
    saved = []
    begin, end = _Stream.begin_capture, _Stream.end_capture

    def begin_capture(self, mode=None):
        arrays = [v for _, v in model.named_params()] + list(opt.velocity.values()) + list(step.pending[2:])
        saved.extend((a, a.copy()) for a in arrays)
        return begin(self, mode)

    def end_capture(self):
        graph = end(self)
        for a, v in saved:
            a[...] = v
        saved.clear()
        return graph

    monkeypatch.setattr(_Stream, "begin_capture", begin_capture)
    monkeypatch.setattr(_Stream, "end_capture", end_capture)


def batches(cfg, sizes):
    rng = np.random.default_rng(3)
    shape = AlexNet(cfg).input_shape
    return [(rng.standard_normal((n, *shape)).astype(np.float32), rng.integers(0, cfg.num_classes, n))
            for n in sizes]


def test_captured_steps_equal_the_eager_loop_and_recapture_per_shape_and_lr(cp, monkeypatch):
    cfg = AlexNetConfig.tiny(dtype="float32", dropout=0.0, seed=2)
    data = batches(cfg, [8, 8, 8, 5, 8])             # a short last batch: a new shape
    ref = AlexNet(cfg).to(cp)
    ref_opt, ref_loss = SGD(ref, lr=0.05), SoftmaxCrossEntropy()
    model = AlexNet(cfg).to(cp)
    opt = SGD(model, lr=0.05)
    step = CapturedStep(model, SoftmaxCrossEntropy(check_finite=False, check_labels=False), opt)
    capture_executes_nothing(monkeypatch, step, model, opt)
    cp.replay = lambda graph: next(step._eager(*b) for g, *b in step.graphs.values() if g is graph)
    losses = []
    for i, (x, y) in enumerate(data):
        if i == 4:
            ref_opt.lr = opt.lr = 0.02                # a schedule's step: a new graph
        value = ref_loss.forward(ref.forward(cp.asarray(x)), cp.asarray(y))
        ref.backward(ref_loss.backward())
        ref_opt.step()
        out = step(cp.asarray(x), cp.asarray(y))
        losses.append((float(value), float(out)))       # read now: the next replay overwrites the buffer
    assert step.captures == cp.captures == 3 and cp.launches == 2     # (8, lr .05), (5, .05), (8, .02)
    for (a, b) in losses:
        assert b == a                                   # the loss buffer held the step's loss
    for (k, a), (_, b) in zip(ref.named_params(), model.named_params()):
        assert np.array_equal(a.get(), b.get()), k
    assert step.pool.allocations > 0                    # warm-up and capture allocated from the private pool


class _SyncingLoss(SoftmaxCrossEntropy):
    """A loss that reads a device value on the host, as SoftmaxCrossEntropy's label check did on a GPU
    before issue 13 (it now checks host arrays only)."""

    def forward(self, x, y):
        int(y.max())                                                                 # a host sync
        return super().forward(x, y)


def test_a_host_sync_inside_the_capture_fails_as_on_a_gpu(cp):
    cfg = AlexNetConfig.tiny(dtype="float32", dropout=0.0, seed=2)
    model = AlexNet(cfg).to(cp)
    (x, y), = batches(cfg, [4])
    step = CapturedStep(model, _SyncingLoss(check_finite=False), SGD(model))         # int() on the device
    with pytest.raises(StreamCaptureError, match=r"int\(\) during a CUDA graph capture"):
        step(cp.asarray(x), cp.asarray(y))
    assert not cp.capturing                                                          # the capture was closed


def test_refuses_what_a_graph_cannot_replay(cp):
    model = AlexNet(AlexNetConfig.tiny(dtype="float32", seed=2)).to(cp)
    with pytest.raises(ValueError, match="finite check reads the loss on the host"):
        CapturedStep(model, SoftmaxCrossEntropy(), SGD(model))
    net = MixedPrecisionNet(model)
    with pytest.raises(ValueError, match="fp16 .* host decision"):
        CapturedStep(net, SoftmaxCrossEntropy(check_finite=False), SGD(net))


class _Loader:
    seed = 0

    def __len__(self):
        return 1


def test_the_trainer_with_a_graph_step_trains_as_without(cp, monkeypatch, tmp_path):
    """Trainer(graph_step=...) (train --cuda-graphs): the same losses, hits and weights as its eager step."""
    from minialex.trainer import Trainer
    from minialex.tricks import Tricks

    cfg = AlexNetConfig.tiny(dtype="float32", dropout=0.0, seed=5)
    data = batches(cfg, [8, 8, 8])
    runs = []
    for graphs in (False, True):
        model = AlexNet(cfg).to(cp)
        opt = SGD(model, lr=0.05)
        step = None
        if graphs:
            step = CapturedStep(model, SoftmaxCrossEntropy(check_finite=False, check_labels=False), opt)
            capture_executes_nothing(monkeypatch, step, model, opt)
            cp.replay = lambda graph, s=step: next(s._eager(*b) for g, *b in s.graphs.values() if g is graph)
        t = Trainer(model, opt, None, _Loader(), (None, None, None), tmp_path / str(graphs), epochs=1,
                    log=lambda *a: None, graph_step=step)
        losses = [t._train_step(cp.asarray(x), cp.asarray(y)) for x, y in data]
        runs.append((losses, dict(t.acc), [p.get() for _, p in model.named_params()]))
    (l0, a0, p0), (l1, a1, p1) = runs
    assert l0 == l1 and all(a0[k] == a1[k] for k in ("loss", "c1", "c5", "n"))
    assert all(np.array_equal(a, b) for a, b in zip(p0, p1))
    with pytest.raises(ValueError, match="paper's plain step .* got tricks \\['mixup'\\]"):
        Trainer(model, opt, None, _Loader(), (None, None, None), tmp_path / "m", epochs=1, log=lambda *a: None,
                tricks=Tricks(mixup=0.2), graph_step=step)


@pytest.mark.parametrize("argv, needle", [
    (["--cuda-graphs"], "--cuda-graphs needs --backend cupy"),
    (["--cuda-graphs", "--backend", "cupy", "--precision", "fp16"], "not with --precision fp16"),
    (["--cuda-graphs", "--backend", "cupy", "--mixup", "0.2", "--warmup", "1"], "not with --warmup, --mixup"),
])
def test_train_refuses_cuda_graphs_where_a_graph_cannot_replay_the_step(tmp_path, capsys, argv, needle):
    from minialex.train import parse_args

    with pytest.raises(SystemExit) as e:
        parse_args([*argv, "--out", str(tmp_path / "run"), "--epochs", "2"])
    assert e.value.code == 2 and needle in capsys.readouterr().err
