"""minialex on CuPy against PyTorch on the same GPU: one training step of the paper's net.

    python benchmarks/gpu.py                       # paper config, batch 128, float32, GPU 0
    python benchmarks/gpu.py --steps 50 --device 1
    python benchmarks/gpu.py --gpus 0,1            # minialex's two towers on two GPUs (Sec. 3.2)
    python benchmarks/gpu.py --kernels reference   # the readable layers on the GPU (MINIALEX_KERNELS)

Measures, in one run on one GPU:
  * training images/s of a full step (forward, softmax loss, backward, SGD
    with momentum 0.9 and weight decay 5e-4, Sec. 5) for the paper config
    (Sec. 3.5: 96-256-384-384-256-4096-4096-1000, groups=2 in conv2/4/5,
    LRN after conv1/2, overlapping 3/2 max-pools, dropout 0.5 in fc6/fc7),
    batch 128, float32, for minialex and for PyTorch running the same net;
  * peak GPU memory of each: CuPy's memory pool (``total_bytes()``, which
    only grows during the run, i.e. the peak held) and PyTorch's
    ``max_memory_reserved`` (its peak held), plus ``max_memory_allocated``;
  * the ratio minialex / PyTorch. The project's target is >= 0.5.

TF32 is off for PyTorch unless ``--torch-tf32``: both frameworks then compute
in true float32 (CuPy's GEMMs are float32 unless CUPY_TF32=1 is set).

Both run on the same synthetic batch resident on the GPU, so the figures are
compute only (the data loader is not timed). PyTorch uses cuDNN (it is the
peer: ``torch.backends.cudnn.enabled`` is left on, ``benchmark=True`` picks
its fastest algorithms); minialex uses no cuDNN, only cuBLAS through CuPy
and its own kernels. PyTorch's LocalResponseNorm divides alpha by n, so the
paper's alpha = 1e-4 is alpha = 5e-4 there. Before timing, both nets are
given the same weights and their test-mode logits are compared (``--no-check``
skips it), so the two really are the same network.

Without CuPy or a CUDA device the script prints why and exits with status 0
(nothing to measure is not a failure of the code); without PyTorch it
measures minialex alone and says so. Paste the printed block into
benchmarks/RESULTS.md.
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # run from a checkout

from minialex import backend  # noqa: E402
from minialex.layers import SoftmaxCrossEntropy  # noqa: E402
from minialex.model import AlexNet, AlexNetConfig  # noqa: E402
from minialex.optim import SGD  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--batch", type=int, default=128, help="images per step (Sec. 5: 128)")
    p.add_argument("--steps", type=int, default=20, help="timed steps per framework")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first (kernel compilation, cuDNN autotune)")
    p.add_argument("--device", type=int, default=0, help="CUDA device id for both frameworks")
    p.add_argument("--gpus", default=None,
                   help="minialex only: place the two towers on these devices, e.g. 0,1 (Sec. 3.2)")
    p.add_argument("--kernels", choices=("fast", "reference"), default="fast",
                   help="minialex's layers: fast = their CUDA twins (minialex/kernels/, default); "
                        "reference = the readable layers (sets MINIALEX_KERNELS)")
    p.add_argument("--torch-tf32", action="store_true",
                   help="let PyTorch use TF32 tensor cores (off by default: both run true float32)")
    p.add_argument("--no-torch", action="store_true", help="measure minialex only")
    p.add_argument("--no-check", action="store_true", help="skip the same-weights logits comparison")
    p.add_argument("--profile", action="store_true",
                   help="also time every layer's forward and backward (and the SGD update) on its own, "
                        "minialex beside PyTorch, with CUDA events")
    return p.parse_args(argv)


# ----------------------------------------------------------------------------
# minialex
# ----------------------------------------------------------------------------
def bench_minialex(cp, args, x_host, y_host, weights_out=None):
    """Time minialex's training step; returns a dict of figures."""
    pool = cp.get_default_memory_pool()                 # one pool per device inside
    devices = sorted({args.device, *(int(d) for d in (args.gpus or "").split(",") if d.strip())})
    for d in devices:
        with cp.cuda.Device(d):
            pool.free_all_blocks()
    with cp.cuda.Device(args.device):
        model = AlexNet(AlexNetConfig.paper())
        if weights_out is not None:
            weights_out.update({k: v.copy() for k, v in model.named_params()})
        net = model
        towers = None
        if args.gpus:
            from minialex.towers import TwoTowerAlexNet, parse_gpus

            towers = parse_gpus(args.gpus, "cupy")
            net = TwoTowerAlexNet(model, devices=towers, xp=cp)
        else:
            model.to(cp)
        opt = SGD(net)                          # Sec. 5, the training loop's optimizer
        x, y = cp.asarray(x_host), cp.asarray(y_host)
        loss = SoftmaxCrossEntropy(check_finite=False)

        def step():
            value = loss(net.forward(x, train=True), y)
            net.backward(loss.backward())
            opt.step()
            return value

        for _ in range(args.warmup):
            step()
        sync_all(cp)
        t = time.perf_counter()
        for _ in range(args.steps):
            value = step()
        sync_all(cp)
        dt = time.perf_counter() - t
        held = 0
        for d in devices:            # the pool never returns memory during the run: total = peak held
            with cp.cuda.Device(d):
                held += pool.total_bytes()
        out = {"images_per_s": args.steps * args.batch / dt, "step_ms": 1e3 * dt / args.steps,
               "peak_pool_bytes": held, "loss": float(value)}
        if towers is not None:
            out["tower_bytes"] = dict(net.bytes_per_step())
            out["devices"] = towers
    del net, model, opt, x, y, step
    for d in devices:
        with cp.cuda.Device(d):
            pool.free_all_blocks()
    return out


def sync_all(cp):
    for d in range(cp.cuda.runtime.getDeviceCount()):
        with cp.cuda.Device(d):
            cp.cuda.Device(d).synchronize()


# ----------------------------------------------------------------------------
# PyTorch: the same network
# ----------------------------------------------------------------------------
def torch_alexnet(torch):
    """Sec. 3.5 in torch.nn: grouped convs, LRN (alpha 5e-4 = paper's 1e-4 * n), 3/2 max-pools, dropout."""
    nn = torch.nn

    def lrn():
        return nn.LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=2.0)

    return nn.Sequential(
        nn.Conv2d(3, 96, 11, stride=4, padding=2), nn.ReLU(), lrn(), nn.MaxPool2d(3, 2),
        nn.Conv2d(96, 256, 5, padding=2, groups=2), nn.ReLU(), lrn(), nn.MaxPool2d(3, 2),
        nn.Conv2d(256, 384, 3, padding=1), nn.ReLU(),
        nn.Conv2d(384, 384, 3, padding=1, groups=2), nn.ReLU(),
        nn.Conv2d(384, 256, 3, padding=1, groups=2), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.Flatten(),
        nn.Linear(9216, 4096), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(4096, 1000),
    )


def load_minialex_weights(torch, net, weights):
    """Copy minialex's parameters into the torch net (Linear w is (in, out) in minialex)."""
    names = ["conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8"]
    layers = [m for m in net if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    with torch.no_grad():
        for name, m in zip(names, layers):
            w = weights[f"{name}.w"]
            m.weight.copy_(torch.from_numpy(w.T.copy() if name.startswith("fc") else w))
            m.bias.copy_(torch.from_numpy(weights[f"{name}.b"]))


def bench_torch(torch, args, x_host, y_host):
    dev = torch.device(f"cuda:{args.device}")
    torch.backends.cudnn.enabled = True
    torch.backends.cudnn.benchmark = True
    # float32 means float32: TF32 tensor cores (cuDNN's default for convs) round the
    # inputs to 10-bit mantissas, which CuPy's float32 GEMMs do not; --torch-tf32 allows it.
    torch.backends.cudnn.allow_tf32 = args.torch_tf32
    torch.backends.cuda.matmul.allow_tf32 = args.torch_tf32
    torch.cuda.set_device(dev)
    torch.empty(1, device=dev)          # initialise the caching allocator before resetting its statistics
    torch.cuda.reset_peak_memory_stats(dev)
    net = torch_alexnet(torch).to(dev)
    n_params = sum(p.numel() for p in net.parameters())
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    x = torch.from_numpy(x_host).to(dev)
    y = torch.from_numpy(y_host).to(dev)
    lossf = torch.nn.CrossEntropyLoss()

    def step():
        opt.zero_grad(set_to_none=True)
        value = lossf(net(x), y)
        value.backward()
        opt.step()
        return value

    net.train()
    for _ in range(args.warmup):
        step()
    torch.cuda.synchronize(dev)
    t = time.perf_counter()
    for _ in range(args.steps):
        value = step()
    torch.cuda.synchronize(dev)
    dt = time.perf_counter() - t
    out = {"images_per_s": args.steps * args.batch / dt, "step_ms": 1e3 * dt / args.steps,
           "peak_reserved_bytes": torch.cuda.max_memory_reserved(dev),
           "peak_allocated_bytes": torch.cuda.max_memory_allocated(dev),
           "loss": float(value), "params": n_params}
    del net, opt, x, y
    torch.cuda.empty_cache()
    return out


def check_same_network(cp, torch, args, weights):
    """Max relative difference of test-mode logits (dropout off: the paper scales by 0.5 at
    test time, torch's inverted dropout does not), minialex vs torch, same weights and batch."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((8, 3, 224, 224)).astype(np.float32)
    with cp.cuda.Device(args.device):
        model = AlexNet(AlexNetConfig.paper(dropout=0.0)).to(cp)
        for k, w in model.named_params():
            w[...] = cp.asarray(weights[k])
        a = cp.asnumpy(model.predict(cp.asarray(x)))
    dev = torch.device(f"cuda:{args.device}")
    net = torch_alexnet(torch).to(dev).eval()
    load_minialex_weights(torch, net, weights)
    with torch.no_grad():
        b = net(torch.from_numpy(x).to(dev)).cpu().numpy()
    del model, net
    return float(np.max(np.abs(a - b)) / max(1e-8, float(np.max(np.abs(a) + np.abs(b)))))


# ----------------------------------------------------------------------------
# --profile: every layer on its own
# ----------------------------------------------------------------------------
def _mean_fwd_bwd(times):
    """[(ms to the end of forward, ms to the end of backward)] per repeat -> mean (forward, backward) ms."""
    return (sum(f for f, _ in times) / len(times), sum(t - f for f, t in times) / len(times))


def profile_minialex(cp, args, x_host, reps=10):
    """[(name, input shape, forward ms, backward ms)] for minialex's paper net, plus the SGD update."""
    rows = []
    with cp.cuda.Device(args.device):
        model = AlexNet(AlexNetConfig.paper()).to(cp)
        x = cp.asarray(x_host)
        for name, layer in zip(model.names, model.layers):
            out = layer.forward(x, train=True)
            dout = cp.random.standard_normal(out.shape, dtype=cp.float32)
            layer.backward(dout)                                     # warm-up (kernel compilation)
            times = []
            for _ in range(reps):
                e0, e1, e2 = cp.cuda.Event(), cp.cuda.Event(), cp.cuda.Event()
                e0.record()
                layer.forward(x, train=True)
                e1.record()
                layer.backward(dout)
                e2.record()
                e2.synchronize()
                times.append((cp.cuda.get_elapsed_time(e0, e1), cp.cuda.get_elapsed_time(e0, e2)))
            rows.append((name, tuple(x.shape), *_mean_fwd_bwd(times)))
            x = out
        opt = SGD(model)                                            # the loop above left gradients
        opt.step()
        e0, e1 = cp.cuda.Event(), cp.cuda.Event()
        e0.record()
        for _ in range(reps):
            opt.step()
        e1.record()
        e1.synchronize()
        rows.append(("sgd", (model.num_params(),), cp.cuda.get_elapsed_time(e0, e1) / reps, 0.0))
    del model, opt
    cp.get_default_memory_pool().free_all_blocks()
    return rows


def profile_torch(torch, args, x_host, reps=10):
    """The same table for the PyTorch net, module by module (autograd backward of each module alone)."""
    dev = torch.device(f"cuda:{args.device}")
    net = torch_alexnet(torch).to(dev).train()
    x = torch.from_numpy(x_host).to(dev)
    rows = []
    for m in net:
        xin = x.detach().requires_grad_(True)
        out = m(xin)
        g = torch.randn_like(out)
        out.backward(g)
        times = []
        for _ in range(reps):
            e0, e1, e2 = (torch.cuda.Event(enable_timing=True) for _ in range(3))
            e0.record()
            out = m(xin)
            e1.record()
            out.backward(g)
            e2.record()
            e2.synchronize()
            times.append((e0.elapsed_time(e1), e0.elapsed_time(e2)))
        rows.append((type(m).__name__, tuple(x.shape), *_mean_fwd_bwd(times)))
        x = out.detach()
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    opt.step()
    e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    e0.record()
    for _ in range(reps):
        opt.step()
    e1.record()
    e1.synchronize()
    rows.append(("SGD", (), e0.elapsed_time(e1) / reps, 0.0))
    del net, opt
    torch.cuda.empty_cache()
    return rows


def print_profile(mini_rows, torch_rows):
    print("\nper layer, ms (mean of repeats, CUDA events; each layer timed alone, so the sum exceeds a step)")
    print(f"  {'layer':8s} {'input':>20s} | {'minialex fwd':>12s} {'bwd':>8s} | {'PyTorch fwd':>12s} {'bwd':>8s} | f+b ratio")
    tot = [0.0, 0.0, 0.0, 0.0]
    for i, (name, shape, f, b) in enumerate(mini_rows):
        tr = torch_rows[i] if torch_rows and len(torch_rows) == len(mini_rows) else None
        tf, tb = (tr[2], tr[3]) if tr else (float("nan"), float("nan"))
        tot = [tot[0] + f, tot[1] + b, tot[2] + (tf if tr else 0), tot[3] + (tb if tr else 0)]
        ratio = f"{(f + b) / (tf + tb):8.2f}x" if tr and tf + tb > 0 else "        -"
        print(f"  {name:8s} {str(shape):>20s} | {f:12.3f} {b:8.3f} | {tf:12.3f} {tb:8.3f} | {ratio}")
    print(f"  {'sum':8s} {'':>20s} | {tot[0]:12.3f} {tot[1]:8.3f} | {tot[2]:12.3f} {tot[3]:8.3f} |")


# ----------------------------------------------------------------------------
def main(argv=None):
    args = parse_args(argv)
    try:
        cp = backend.get_backend("cupy")
    except RuntimeError as e:
        print(f"benchmarks/gpu.py: nothing measured: {e}")
        return 0
    n_dev = cp.cuda.runtime.getDeviceCount()
    if args.device >= n_dev:
        print(f"benchmarks/gpu.py: --device {args.device} does not exist; {n_dev} CUDA device(s) visible")
        return 2
    os.environ["MINIALEX_KERNELS"] = args.kernels            # read when the models are built
    torch = None
    if not args.no_torch:
        try:
            import torch
            if not torch.cuda.is_available():
                print("PyTorch is installed without CUDA support: measuring minialex alone")
                torch = None
        except ImportError:
            print("PyTorch is not installed: measuring minialex alone (pip install torch for the ratio)")

    props = cp.cuda.runtime.getDeviceProperties(args.device)
    gpu_name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.batch, 3, 224, 224)).astype(np.float32)
    y = rng.integers(0, 1000, args.batch).astype(np.int64)

    print(f"GPU {args.device}: {gpu_name}; batch {args.batch}, float32, {args.steps} timed steps "
          f"after {args.warmup} warm-up; kernels: {args.kernels}; "
          f"PyTorch TF32 {'on' if args.torch_tf32 else 'off'}")
    weights = {}
    mini = bench_minialex(cp, args, x, y, weights_out=weights)
    print(f"minialex: {mini['images_per_s']:8.1f} images/s ({mini['step_ms']:.1f} ms/step), "
          f"peak pool {mini['peak_pool_bytes'] / 2**30:.2f} GiB, loss {mini['loss']:.4f}")
    if "tower_bytes" in mini:
        tb = mini["tower_bytes"]
        print(f"  towers on {mini['devices']}: {tb['between_towers'] / 2**20:.1f} MiB between the towers "
              f"per step ({', '.join(f'{k} {v / 2**20:.1f} MiB' for k, v in tb.items() if k != 'between_towers')})")
    ref = None
    if torch is not None:
        ref = bench_torch(torch, args, x, y)
        print(f"PyTorch:  {ref['images_per_s']:8.1f} images/s ({ref['step_ms']:.1f} ms/step), "
              f"peak reserved {ref['peak_reserved_bytes'] / 2**30:.2f} GiB "
              f"(allocated {ref['peak_allocated_bytes'] / 2**30:.2f} GiB), {ref['params']:,} params")
        ratio = mini["images_per_s"] / ref["images_per_s"]
        verdict = "meets" if ratio >= 0.5 else "MISSES"
        print(f"ratio minialex / PyTorch: {ratio:.3f} ({verdict} the 0.5 target); "
              f"memory ratio {mini['peak_pool_bytes'] / ref['peak_reserved_bytes']:.2f}")
        if not args.no_check:
            err = check_same_network(cp, torch, args, weights)
            print(f"same network: test-mode logits, dropout off, same weights: rel. difference {err:.2e} "
                  "(float32, different summation orders; expect < 1e-4)")

    if args.profile:
        mini_rows = profile_minialex(cp, args, x)
        torch_rows = profile_torch(torch, args, x) if torch is not None else None
        print_profile(mini_rows, torch_rows)

    cuda_rt = cp.cuda.runtime.runtimeGetVersion()
    versions = (f"python {platform.python_version()}, numpy {np.__version__}, cupy {cp.__version__}, "
                f"CUDA runtime {cuda_rt // 1000}.{cuda_rt % 1000 // 10}")
    if torch is not None:
        versions += f", torch {torch.__version__} (CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()})"
    print("\n--- paste into benchmarks/RESULTS.md ---")
    print(f"| {datetime.date.today()} | {gpu_name} | {args.batch} | {args.kernels} "
          f"| {mini['images_per_s']:.0f} | {ref['images_per_s']:.0f} | {mini['images_per_s'] / ref['images_per_s']:.2f} "
          f"| {mini['peak_pool_bytes'] / 2**30:.2f} | {ref['peak_reserved_bytes'] / 2**30:.2f} | {versions} |"
          if ref else
          f"| {datetime.date.today()} | {gpu_name} | {args.batch} | {args.kernels} "
          f"| {mini['images_per_s']:.0f} | - | - | {mini['peak_pool_bytes'] / 2**30:.2f} | - | {versions} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
