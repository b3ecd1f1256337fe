"""Data-parallel training (minialex.distributed, docs/distributed.md).

In-process tests: the shard arithmetic, the sliced augmentation generator,
the per-rank dropout streams, the watchdog, and the NCCL communicator on the
CuPy stand-in (tests/fake_cupy.py + tests/fake_nccl.py, ranks as threads).

MPI tests run ``mpiexec -n 2`` (the pip ``mpich`` wheel in CI; any MPI that
mpi4py was built with) on the tiny config, 64 bundled images, a global batch
of 16 (4 steps per epoch), dropout 0 where weights are compared with one
process (dropout masks are drawn per rank, docs/deviations.md). They skip,
saying why, when mpi4py or mpiexec is missing.
"""
import importlib.util
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import minialex.checkpoint  # noqa: F401  (imported before the CuPy stand-in patches, see fake_cupy)
import minialex.kernels._cuda  # noqa: F401
import minialex.optim  # noqa: F401
import minialex.towers  # noqa: F401
from minialex.checkpoint import read_checkpoint
from minialex.distributed import (EXIT_COMM, RankRNG, SingleProcess, SliceRNG, Watchdog, rank_devices,
                                  shard_range, use_rank_dropout)
from minialex.distributed.comm import pack, unpack

ROOT = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent


# ------------------------------------------------------------------ in process
@pytest.mark.parametrize("size", [1, 2, 3, 5])
def test_shard_range_splits_every_batch_into_contiguous_parts(size):
    for n in range(0, 23):
        parts = [shard_range(n, r, size) for r in range(size)]
        assert parts[0][0] == 0 and parts[-1][1] == n
        assert all(parts[r][1] == parts[r + 1][0] for r in range(size - 1))     # contiguous, in rank order
        lens = [hi - lo for lo, hi in parts]
        assert max(lens) - min(lens) <= 1 and lens == sorted(lens, reverse=True)


@pytest.mark.parametrize("size", [2, 3])
def test_slice_rng_gives_each_rank_the_single_process_draws(size):
    """A transform drawing per-image values sees, on each rank, its rows of the single process's draws."""
    from minialex.data import TrainTransform

    x = np.random.default_rng(0).integers(0, 256, size=(11, 3, 10, 10), dtype=np.uint8)
    tt = TrainTransform(mean=np.full((3, 10, 10), 120, np.float32), crop=8, pad=2, flip=True,
                        pca=(np.array([0.4, 0.2, 0.1]), np.eye(3)))
    alone_rng = np.random.default_rng([7, 1, 3])
    alone = tt(x, alone_rng)
    parts = []
    for r in range(size):
        lo, hi = shard_range(len(x), r, size)
        rng = np.random.default_rng([7, 1, 3])
        parts.append(tt(x[lo:hi], SliceRNG(rng, lo, hi, len(x))))
        assert rng.bit_generator.state == alone_rng.bit_generator.state    # the ranks' generators stay in step
    assert np.array_equal(np.concatenate(parts), alone)


def test_slice_rng_refuses_draws_it_cannot_split():
    rng = SliceRNG(np.random.default_rng(0), 2, 5, 8)
    assert rng.random(3).shape == (3,) and rng.normal(0, 1, size=(3, 2)).shape == (3, 2)
    assert np.ndim(rng.integers(0, 10)) == 0                       # one number: passed through
    with pytest.raises(ValueError, match="does not start with this rank's batch"):
        rng.random(4)
    with pytest.raises(AttributeError, match="not split across ranks"):
        rng.permutation(8)


def test_rank_dropout_masks_are_independent_and_the_shared_state_stays_in_step():
    from minialex.model import AlexNet, AlexNetConfig

    models = [AlexNet(AlexNetConfig.tiny(dropout=0.5, seed=3)) for _ in range(2)]
    for r, m in enumerate(models):
        assert use_rank_dropout(m, r) == 2 and use_rank_dropout(m, r) == 2      # idempotent
        assert all(isinstance(layer.rng, RankRNG) for _, layer in m.dropout_layers())
    x = np.random.default_rng(1).standard_normal((16, 3, 15, 15)).astype(np.float32)
    (_, d0), (_, d1) = models[0].dropout_layers()[0], models[1].dropout_layers()[0]
    h = np.ones((16, 64), np.float32)
    m0, m1 = d0.forward(h) != 0, d1.forward(h) != 0
    assert 0.3 < m0.mean() < 0.7 and (m0 != m1).mean() > 0.3      # not the same units on both ranks
    assert models[0].rng_state() == models[1].rng_state()          # a checkpoint's state is every rank's
    models[0].forward(x)
    models[1].forward(x)
    assert models[0].rng_state() == models[1].rng_state()


def test_pack_unpack_and_single_process():
    grads = [np.arange(6, dtype=np.float32).reshape(2, 3), np.arange(4, dtype=np.float32)[::2]]   # one a view
    buf = np.empty(8, np.float32)
    pack(grads, buf, 0.5)
    assert np.array_equal(buf, np.array([0, .5, 1, 1.5, 2, 2.5, 0, 1], np.float32))
    buf *= 4
    unpack(buf, grads)
    assert np.array_equal(grads[0], np.arange(6).reshape(2, 3) * 2) and np.array_equal(grads[1], [0, 4])
    one = SingleProcess()
    assert one.allreduce_sum([1.5, 2]) == [1.5, 2.0] and one.any(True) and not one.any(False)
    before = [g.copy() for g in grads]
    one.average_grads([("a", grads[0]), ("b", grads[1])], weight=1.0)
    assert all(np.array_equal(a, b) for a, b in zip(before, grads))
    with pytest.raises(ValueError, match="weight must be 1"):
        one.average_grads([("a", grads[0])], weight=0.5)
    assert rank_devices(0, (0, 1)) == (0, 1) and rank_devices(1, (0, 1)) == (2, 3)
    assert rank_devices(3) == (3,) and rank_devices(1, (0, 0)) == (1, 1)


def test_launched_without_mpi4py_is_a_clear_error(monkeypatch, capsys, tmp_path):
    """mpiexec started 2 ranks but mpi4py is missing: one line saying what to install, status 4."""
    from minialex import train
    from minialex.distributed import CommError, launched_ranks, world

    monkeypatch.delenv("OMPI_COMM_WORLD_SIZE", raising=False)
    monkeypatch.setenv("PMI_SIZE", "2")
    monkeypatch.setitem(sys.modules, "mpi4py", None)             # import mpi4py now fails
    assert launched_ranks() == 2
    with pytest.raises(CommError, match=r"launched with 2 ranks, but mpi4py is not installed: pip install"):
        world()
    assert train.main(["--config", "tiny", "--out", str(tmp_path)]) == EXIT_COMM
    err = capsys.readouterr().err
    assert err.startswith("error: launched with 2 ranks") and "Traceback" not in err
    assert not (tmp_path / "checkpoint.npz").exists()


def test_ranks_on_one_machine_share_its_cores_unless_told():
    code = "import os, minialex; print(os.environ['NUMBA_NUM_THREADS'], os.environ['OPENBLAS_NUM_THREADS'])"
    env = {k: v for k, v in os.environ.items() if not k.endswith("NUM_THREADS")}
    env.update(PYTHONPATH=str(ROOT), MPI_LOCALNRANKS="2")
    share = str(max(1, os.cpu_count() // 2))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.split() == [share, share]
    env["NUMBA_NUM_THREADS"] = "7"                                 # the user's choice stands
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.split() == ["7", share]


def test_watchdog_ends_a_process_stuck_in_a_collective():
    """A guarded call past the limit: one line naming the rank and the call, exit status 4, quickly."""
    code = ("import time, sys; sys.path.insert(0, %r)\n"
            "from minialex.distributed import Watchdog\n"
            "dog = Watchdog(timeout=0.5, rank=3, period=0.1, step=lambda: 12)\n"
            "with dog.guard('the gradient all-reduce'):\n"
            "    time.sleep(30)\n" % str(ROOT))
    t = time.monotonic()
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert p.returncode == EXIT_COMM and time.monotonic() - t < 10
    assert "error: rank 3 waited more than 0.5 s in the gradient all-reduce at step 12" in p.stderr
    assert "Traceback" not in p.stderr
    dog = Watchdog(timeout=0.2, rank=0, period=0.05)           # a call that returns in time: nothing happens
    with dog.guard("a barrier"):
        time.sleep(0.05)
    time.sleep(0.4)
    dog.close()


# ------------------------------------------------------------------ NCCL on the stand-in
@pytest.fixture
def fake_gpus(monkeypatch):
    from fake_cupy import FakeCupy, patch_minialex
    from fake_nccl import FakeNccl

    fake = FakeCupy(n_devices=4)
    patch_minialex(monkeypatch, fake)
    nccl = FakeNccl(fake)
    nccl.install(monkeypatch)
    return fake, nccl


class ThreadHost:
    """The MPI side of an NCCLCommunicator for ranks that are threads (bcast and barrier only)."""

    def __init__(self, rank, size, shared):
        self.rank, self.size, self.local_rank, self.shared = rank, size, rank, shared
        self.watchdog = Watchdog(timeout=30, rank=rank)

    def bcast(self, obj, what=""):
        if self.rank == 0:
            self.shared["bcast"] = obj
        self.shared["barrier"].wait(timeout=10)
        out = self.shared["bcast"]
        self.shared["barrier"].wait(timeout=10)
        return out

    def describe(self):
        return "threads"

    def close(self):
        self.watchdog.close()


def _run_ranks(size, fn):
    shared = {"barrier": threading.Barrier(size)}
    out, errors = [None] * size, []

    def body(r):
        try:
            out[r] = fn(ThreadHost(r, size, shared))
        except BaseException as e:     # noqa: BLE001 (reported below)
            errors.append(e)
            shared["barrier"].abort()

    threads = [threading.Thread(target=body, args=(r,)) for r in range(size)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    if errors:
        raise errors[0]
    return out


def test_nccl_communicator_calls_on_the_stand_in(fake_gpus):
    """One GPU per rank: one id made by rank 0, one in-place float32 all-reduce of the packed gradients."""
    fake, nccl = fake_gpus
    from minialex.distributed.nccl import NCCLCommunicator

    def rank(host):
        comm = NCCLCommunicator(host, devices=rank_devices(host.local_rank))
        d = comm.devices[0]
        with fake.cuda.Device(d):
            grads = [("conv1.w", fake.asarray(np.full((2, 3), host.rank + 1, np.float32))),
                     ("conv1.b", fake.asarray(np.full((3,), 10 * (host.rank + 1), np.float32)))]
        comm.average_grads(grads, weight=[0.25, 0.75][host.rank])
        comm.close()
        return comm, [(g._dev, g.get()) for _, g in grads]

    (c0, g0), (c1, g1) = _run_ranks(2, rank)
    assert c0.devices == (0,) and c1.devices == (1,)
    for got in (g0, g1):
        assert got[0][1].dtype == np.float32 and np.allclose(got[0][1], 0.25 * 1 + 0.75 * 2)
        assert np.allclose(got[1][1], 0.25 * 10 + 0.75 * 20)
    assert [dev for dev, _ in g0] == [0, 0] and [dev for dev, _ in g1] == [1, 1]
    assert sum(1 for c in nccl.calls if c[0] == "get_unique_id") == 1       # rank 0, one communicator
    assert sorted(c[1:3] for c in nccl.calls if c[0] == "init") == [(0, 0), (1, 1)]
    reduces = sorted(c for c in nccl.calls if c[0] == "allReduce")
    assert reduces == [("allReduce", 0, 0, 9, "float32"), ("allReduce", 1, 1, 9, "float32")]
    assert c0.grad_bytes == 9 * 4 and all(s.synchronized == 1 for s in nccl.streams.values())
    assert sum(1 for c in nccl.calls if c[0] == "destroy") == 2


def test_nccl_two_towers_per_rank_reduce_each_tower_on_its_own_gpus(fake_gpus):
    """--gpus 0,1 under two ranks: rank 0 has GPUs 0,1, rank 1 GPUs 2,3; tower t's NCCL group is (t, 2+t)."""
    fake, nccl = fake_gpus
    from minialex.distributed.nccl import NCCLCommunicator

    def rank(host):
        comm = NCCLCommunicator(host, devices=rank_devices(host.local_rank, (0, 1)))
        grads = []
        for t, d in enumerate(comm.devices):
            with fake.cuda.Device(d):
                grads.append((f"conv1.w@t{t}", fake.asarray(np.full((4,), (t + 1) * (host.rank + 1), np.float32))))
                grads.append((f"conv1.b@t{t}", fake.asarray(np.full((2,), 1.0 + host.rank, np.float64))))
        comm.average_grads(grads, weight=0.5)
        return comm, [(g._dev, g.get()) for _, g in grads]

    (c0, g0), (c1, g1) = _run_ranks(2, rank)
    assert c0.devices == (0, 1) and c1.devices == (2, 3)
    for got, devs in ((g0, [0, 0, 1, 1]), (g1, [2, 2, 3, 3])):
        assert [d for d, _ in got] == devs                               # gradients stay on their GPUs
        assert np.allclose(got[0][1], 1.5) and np.allclose(got[2][1], 3.0)      # tower 0: (1+2)/2; tower 1: (2+4)/2
        assert np.allclose(got[1][1], 1.5) and got[1][1].dtype == np.float64
    reduces = sorted(c[1:] for c in nccl.calls if c[0] == "allReduce")
    assert reduces == sorted((r, d, n, dt) for r, devs in ((0, (0, 1)), (1, (2, 3))) for d in devs
                             for n, dt in ((4, "float32"), (2, "float64")))     # per rank, GPU and dtype
    assert sum(1 for c in nccl.calls if c[0] == "get_unique_id") == 2       # one group per tower


@pytest.fixture
def fake_gpus_with_kernels(tmp_path_factory, monkeypatch):
    from cuda_cpu_harness import CXX, build_library
    from fake_cupy import FakeCupy, patch_minialex
    from fake_nccl import FakeNccl

    if CXX is None:
        pytest.skip("no C++ compiler to build minialex/kernels/_cuda.py's kernels for the stand-in")
    fake = FakeCupy(n_devices=4, kernel_lib=build_library(tmp_path_factory.mktemp("dist_fake_gpu")))
    patch_minialex(monkeypatch, fake)
    FakeNccl(fake).install(monkeypatch)
    return fake


def test_two_tower_pairs_data_parallel_match_one_process(fake_gpus_with_kernels):
    """--gpus 0,1 under 2 ranks: towers on GPUs (0, 1) and (2, 3), NCCL per tower; one SGD step on
    4 + 4 images equals one step of the one-device net on the 8 (float64, to 1e-10)."""
    from minialex.layers import SoftmaxCrossEntropy
    from minialex.model import AlexNet, AlexNetConfig
    from minialex.optim import SGD
    from minialex.towers import TwoTowerAlexNet

    fake = fake_gpus_with_kernels
    from minialex.distributed.nccl import NCCLCommunicator

    cfg = AlexNetConfig.tiny(dtype="float64", dropout=0.0)
    rng = np.random.default_rng(4)
    x = rng.standard_normal((8,) + AlexNet(cfg).input_shape)
    y = rng.integers(0, cfg.num_classes, 8)
    ref = AlexNet(cfg)
    loss = SoftmaxCrossEntropy()
    loss.forward(ref.forward(x), y)
    ref.backward(loss.backward())
    SGD(ref, lr=0.1).step()

    def rank(host):
        comm = NCCLCommunicator(host, devices=rank_devices(host.local_rank, (0, 1)))
        net = TwoTowerAlexNet(AlexNet(cfg), devices=comm.devices, xp=fake)
        lo, hi = comm.shard(len(y))
        with fake.cuda.Device(comm.devices[0]):          # as train.py makes tower 0's GPU current
            xb, yb = fake.asarray(x[lo:hi]), fake.asarray(y[lo:hi])
            fn = SoftmaxCrossEntropy()
            fn.forward(net.forward(xb), yb)
            net.backward(fn.backward())
        comm.average_grads(net.named_grads(), weight=(hi - lo) / len(y))
        SGD(net, lr=0.1).step()
        params = {k: np.array(getattr(v, "get", lambda: v)()) for k, v in net.unsplit_params().items()}
        return params, {p.device.id for _, p in net.named_params()}

    (p0, devs0), (p1, devs1) = _run_ranks(2, rank)
    assert devs0 == {0, 1} and devs1 == {2, 3}
    for k, w in ref.named_params():
        assert np.abs(p0[k] - w).max() <= 1e-10 * max(np.abs(w).max(), 1), k
        np.testing.assert_array_equal(p0[k], p1[k])      # the ranks hold the same weights


def test_nccl_refuses_a_device_the_machine_lacks(fake_gpus):
    from minialex.distributed.nccl import NCCLCommunicator

    host = ThreadHost(0, 1, {"barrier": threading.Barrier(1)})
    host.local_rank = 2
    with pytest.raises(ValueError, match="would use CUDA device 4, but this machine has 4"):
        NCCLCommunicator(host, devices=rank_devices(host.local_rank, (0, 1)))
    host.close()


# ------------------------------------------------------------------ mpiexec -n 2
def _mpiexec():
    """The mpiexec of the MPI that mpi4py uses: the pip mpich wheel's sits beside the interpreter."""
    here = Path(sys.executable).parent / "mpiexec"
    return str(here) if here.exists() else shutil.which("mpiexec")


_MISSING = ("mpi4py is not installed (pip install -e \".[mpi]\")" if importlib.util.find_spec("mpi4py") is None
            else "no mpiexec on PATH or beside the Python interpreter" if _mpiexec() is None else None)
mpi = pytest.mark.skipif(_MISSING is not None, reason=f"MPI tests need mpi4py and mpiexec: {_MISSING}")

TINY = ["--config", "tiny", "--limit", "64", "--quiet", "--no-plot", "--dropout", "0", "--epochs", "3"]


def _env():
    env = dict(os.environ, PYTHONPATH=str(ROOT), OPENBLAS_NUM_THREADS="1", NUMBA_NUM_THREADS="1")
    # MPICH's Hydra on one machine: start the ranks as local processes (no ssh), even as root
    # and with no network; both are MPICH's defaults on localhost, set here so that they hold.
    env.setdefault("HYDRA_LAUNCHER", "fork")
    return env


def _launch(n, args, **kw):
    cmd = [_mpiexec(), "-n", str(n), sys.executable, "-m", "minialex.train", *args]
    return subprocess.Popen(cmd, cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True, **kw)


def _train(n, out, *extra, timeout=180):
    p = _launch(n, [*TINY, "--batch-size", str(16 // n), "--out", str(out), *extra])
    stdout, stderr = p.communicate(timeout=timeout)
    assert p.returncode == 0, stderr[-2000:]
    return stdout


def _weights(out):
    ck = read_checkpoint(Path(out) / "checkpoint.npz")
    return ck, {**{"param/" + k: v for k, v in ck["params"].items()},
                **{"velocity/" + k: v for k, v in ck["velocity"].items()}}


@mpi
def test_mpi_collectives_gradient_average_and_loader_shards():
    """Under mpiexec -n 2: sums, agreement, weighted gradient average, and every image once per epoch."""
    p = subprocess.run([_mpiexec(), "-n", "2", sys.executable, str(TESTS / "mpi_checks.py")], cwd=ROOT, env=_env(),
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-3000:]
    assert sorted(re.findall(r"rank (\d+): ok", p.stdout)) == ["0", "1"]      # the ranks' lines may interleave


@mpi
def test_two_ranks_match_one_process_rerun_is_bit_identical_and_checkpoints_cross(tmp_path):
    """2 ranks x batch 8 against 1 process x batch 16, 6 steps; reruns; resumes across 1 <-> 2 ranks.

    Tolerance. The two runs see the same images with the same crops; only the
    order of float32 sums differs (the mean over 16 images is computed as two
    means over 8, halved and added; the conv and FC gradient sums run over 8
    images instead of 16). Each step's gradient differs by a few float32 ulps
    (2^-24 relative), and 6 steps of SGD keep the weights within a few ulps of
    their updates. We require max |w_2 - w_1| <= 1e-4 of the largest change
    training made to that tensor, max |w_1 - w_0|: measured here about 1e-6.
    A sharding or averaging mistake (an image twice, a sum instead of a mean)
    changes the update itself, i.e. by order 1 in these units.
    """
    from minialex.model import AlexNet, AlexNetConfig

    one, two = tmp_path / "one", tmp_path / "two"
    _train(1, one, "--max-steps", "3")
    shutil.copytree(one, tmp_path / "cross")                           # to resume with 2 ranks below
    _train(1, one, "--resume", "--max-steps", "6")                     # = 6 steps (test_train: resume is exact)
    _train(2, two, "--max-steps", "3")
    shutil.copytree(two, tmp_path / "back")                            # to resume in 1 process below
    log = _train(2, two, "--resume", "--max-steps", "6")
    assert "data parallel: MPI" in log and "2 ranks x batch 8 = 16 images per step" in log
    assert "3.3 KiB of gradients all-reduced per step" in log          # 850 float32 parameters
    ck1, w1 = _weights(one)
    ck2, w2 = _weights(two)
    assert ck1["extra"]["step"] == ck2["extra"]["step"] == 6
    init = dict(AlexNet(AlexNetConfig.from_dict(ck1["config"])).named_params())

    def worst(w):
        """max over tensors of max |w - w_1| / max |w_1 - w_init|."""
        out = 0.0
        for k in w1:
            if k.startswith("param/"):
                moved = np.abs(w1[k] - init[k[6:]]).max()
                assert moved > 0
                out = max(out, np.abs(w[k] - w1[k]).max() / moved)
        return out

    assert worst(w2) <= 1e-4, f"2 ranks differ from 1 process by {worst(w2):.2e} of the training change"
    # the running figures are the global batch's: the same loss sum to float rounding, the same count
    assert abs(ck1["extra"]["acc"]["loss"] - ck2["extra"]["acc"]["loss"]) < 1e-4
    assert ck1["extra"]["acc"]["n"] == ck2["extra"]["acc"]["n"] == 32

    again = tmp_path / "again"                                         # a rerun, in one go
    _train(2, again, "--max-steps", "6")
    _, w3 = _weights(again)
    assert all(np.array_equal(w3[k], w2[k]) for k in w2), "2 ranks: a rerun (or the resume) is not bit-identical"

    _train(2, tmp_path / "cross", "--resume", "--max-steps", "6")      # 1 process -> 2 ranks
    _train(1, tmp_path / "back", "--resume", "--max-steps", "6")       # 2 ranks -> 1 process
    for d in ("cross", "back"):
        ck, w = _weights(tmp_path / d)
        assert ck["extra"]["step"] == 6 and ck["extra"]["args"]["batch_size"] * ck["extra"]["args"]["ranks"] == 16
        assert worst(w) <= 1e-4, f"{d}: {worst(w):.2e}"


def _rank_pids(root_pid):
    """{rank: pid} of the python processes below root_pid (Linux /proc), from their PMI_RANK."""
    kids = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                kids.setdefault(int((d / "stat").read_text().rsplit(")", 1)[1].split()[1]), []).append(int(d.name))
            except (OSError, IndexError, ValueError):
                pass
    out, todo = {}, [root_pid]
    while todo:
        pid = todo.pop()
        for c in kids.get(pid, []):
            todo.append(c)
            try:
                env = dict(v.split("=", 1) for v in (Path("/proc") / str(c) / "environ").read_text().split("\0") if "=" in v)
                if "PMI_RANK" in env and "python" in (Path("/proc") / str(c) / "cmdline").read_text():
                    out[int(env["PMI_RANK"])] = c
            except OSError:
                pass
    return out


def _start_long_run(out, *extra):
    p = _launch(2, [*TINY, "--batch-size", "8", "--epochs", "1000", "--out", str(out), *extra])
    t = time.monotonic()
    metrics = out / "metrics.csv"
    while not (metrics.exists() and len(metrics.read_text().splitlines()) >= 2):   # an epoch is done
        assert p.poll() is None, p.communicate()[1][-2000:]
        assert time.monotonic() - t < 120, "the run did not finish its first epoch"
        time.sleep(0.2)
    pids = _rank_pids(p.pid)
    if sorted(pids) != [0, 1]:
        os.killpg(p.pid, signal.SIGKILL)
        pytest.skip(f"could not find the two ranks' processes below mpiexec (found {pids}); needs Linux /proc "
                    "and an MPI that sets PMI_RANK")
    return p, pids


@mpi
def test_sigterm_to_the_job_stops_every_rank_with_a_checkpoint(tmp_path):
    p, _ = _start_long_run(tmp_path)
    p.send_signal(signal.SIGTERM)                       # to mpiexec, which passes it to the ranks
    stdout, stderr = p.communicate(timeout=60)
    assert p.returncode == 130, stderr[-2000:]
    assert "stopped (Ctrl-C/SIGTERM)" in stdout and "continue with --resume" in stdout
    assert "Traceback" not in stderr
    ck = read_checkpoint(tmp_path / "checkpoint.npz")
    assert ck["extra"]["step"] >= 4 and ck["extra"]["args"]["ranks"] == 2    # at least the first epoch


@mpi
def test_a_killed_rank_ends_the_job_with_a_clear_error_in_time(tmp_path):
    """SIGKILL rank 1: the job ends within the limit, naming the failure; the last checkpoint stays good."""
    p, pids = _start_long_run(tmp_path, "--comm-timeout", "10")
    t = time.monotonic()
    os.kill(pids[1], signal.SIGKILL)
    stdout, stderr = p.communicate(timeout=60)
    assert time.monotonic() - t < 20
    assert p.returncode != 0
    # Hydra (MPICH's mpiexec) notices the death and ends the job with its own report (on stdout);
    # rank 0's watchdog is the backstop where a launcher does not.
    said = stdout + stderr
    assert "BAD TERMINATION" in said and "signal 9" in said or "waited more than 10 s" in said, said[-2000:]
    ck = read_checkpoint(tmp_path / "checkpoint.npz")
    assert ck["extra"]["step"] > 0


@mpi
def test_a_hung_rank_ends_the_job_through_the_watchdog(tmp_path):
    """SIGSTOP rank 1 (alive, silent: the launcher sees nothing): rank 0 gives up after --comm-timeout."""
    p, pids = _start_long_run(tmp_path, "--comm-timeout", "3")
    t = time.monotonic()
    os.kill(pids[1], signal.SIGSTOP)
    try:
        _, stderr = p.communicate(timeout=60)
    finally:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert time.monotonic() - t < 30
    assert p.returncode != 0
    assert "error: rank 0 waited more than 3 s in" in stderr and "another rank has died or stopped" in stderr
    assert re.search(r"waited more than 3 s in [a-z '-]+ at step \d+", stderr), stderr


# ------------------------------------------------------------------ on real GPUs (marker gpu)
def _cuda_devices():
    from minialex.backend import cupy_available

    if not cupy_available():
        return 0
    import cupy

    return cupy.cuda.runtime.getDeviceCount()


def _need_gpus(n):
    if _MISSING is not None:
        pytest.skip(f"needs mpi4py and mpiexec: {_MISSING}")
    if _cuda_devices() < n:
        pytest.skip(f"needs CuPy and {n} CUDA device{'s' if n > 1 else ''} (found {_cuda_devices()})")
    try:
        from cupy.cuda import nccl  # noqa: F401
    except ImportError:
        pytest.skip("this CuPy has no NCCL (cupy.cuda.nccl)")


@pytest.mark.gpu
def test_nccl_communicator_with_one_rank_on_a_real_gpu():
    """Real NCCL, one member (one GPU is one rank): the calls work and the sum is the rank's own share."""
    _need_gpus(1)
    import cupy as cp

    from minialex.distributed import MPICommunicator
    from minialex.distributed.nccl import NCCLCommunicator

    comm = NCCLCommunicator(MPICommunicator(timeout=60), devices=(0,))
    with cp.cuda.Device(0):
        grads = [("w", cp.arange(6, dtype=cp.float32).reshape(2, 3)), ("b", cp.full(3, 4.0, dtype=cp.float64))]
    comm.average_grads(grads, weight=0.5)
    assert np.array_equal(grads[0][1].get(), np.arange(6, dtype=np.float32).reshape(2, 3) * 0.5)
    assert np.array_equal(grads[1][1].get(), np.full(3, 2.0))
    assert comm.grad_bytes == 6 * 4 + 3 * 8
    comm.close()


@pytest.mark.gpu
def test_two_gpu_ranks_match_one_gpu_process(tmp_path):
    """mpiexec -n 2 --backend cupy (NCCL, one GPU per rank) against one process on one GPU, 6 steps."""
    _need_gpus(2)
    _train(1, tmp_path / "one", "--backend", "cupy", "--max-steps", "6")
    log = _train(2, tmp_path / "two", "--backend", "cupy", "--max-steps", "6")
    assert "data parallel: NCCL on CUDA devices (0,)" in log
    _, w1 = _weights(tmp_path / "one")
    _, w2 = _weights(tmp_path / "two")
    assert max(np.abs(w2[k] - w1[k]).max() / max(np.abs(w1[k]).max(), 1e-12) for k in w1) < 1e-4
