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

``--suite`` (issue 20) instead runs, for the paper and the cifar net, three
pairs in one process on one GPU, and prints one table (``--json FILE`` also
writes it): minialex fp32 against PyTorch fp32 (TF32 off), minialex tf32
against PyTorch TF32, minialex fp16 (float16 working copy, float32 masters,
loss scaling) against PyTorch AMP fp16 with channels-last and
``cudnn.benchmark``. Each row has images/s, peak memory, the ratios, and the
physical limit: images/s if every multiply-add of a training step (3x the
forward's) ran at the GPU's peak FLOP/s for that precision (``PEAK_TFLOPS``,
dense, or ``--peak-tflops``).

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
    p.add_argument("--suite", action="store_true",
                   help="paper and cifar nets x (fp32, tf32, fp16), each against its PyTorch peer (issue 20)")
    p.add_argument("--configs", default="paper,cifar", help="--suite: the nets, comma-separated")
    p.add_argument("--precisions", default="fp32,tf32,fp16", help="--suite: the modes, comma-separated")
    p.add_argument("--json", default=None, metavar="FILE", help="--suite: also write the rows as JSON")
    p.add_argument("--cuda-graphs", action="store_true",
                   help="--suite: also time minialex fp32/tf32 with the step captured as a CUDA graph "
                        "(minialex.kernels.graphs; rows named fp32+graph, tf32+graph)")
    p.add_argument("--peak-tflops", default=None, metavar="FP32,TF32,FP16",
                   help="--suite: the GPU's dense peaks, if it is not in PEAK_TFLOPS")
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
# --suite: precision modes, two nets, physical limits (issue 20)
# ----------------------------------------------------------------------------
# Dense (no sparsity) peak TFLOP/s by GPU name, from NVIDIA's data sheets (SXM parts):
# fp32 on CUDA cores, TF32 and fp16 on tensor cores with float32 accumulation.
PEAK_TFLOPS = {
    "H200": {"fp32": 67.0, "tf32": 494.7, "fp16": 989.4},
    "H100": {"fp32": 67.0, "tf32": 494.7, "fp16": 989.4},    # the PCIe H100 is lower: pass --peak-tflops
    "A100": {"fp32": 19.5, "tf32": 156.0, "fp16": 312.0},
}


def peak_tflops(gpu_name, override=None):
    """{precision: dense peak TFLOP/s} for ``gpu_name``; None where unknown and not given."""
    if override:
        fp32, tf32, fp16 = (float(v) for v in override.split(","))
        return {"fp32": fp32, "tf32": tf32, "fp16": fp16}
    for key, peaks in PEAK_TFLOPS.items():
        if key in gpu_name:
            return peaks
    return None


def train_flops_per_image(model):
    """FLOPs of one training step per image: 3 x the forward's 2*MACs of every conv and fc.

    Backward costs two products per layer (dx and dw) of the forward's size;
    conv1's dx is skipped in training but counted here (as PyTorch's FLOP
    counters do), so the limit errs on the generous side by conv1's share.
    """
    from minialex.layers import Conv2D, Linear

    macs = 0
    for _, layer, out in model.layer_shapes():
        if isinstance(layer, Conv2D):
            F, OH, OW = out
            K, Cg = layer.kernel_size, layer.in_channels // layer.groups
            macs += F * OH * OW * Cg * K * K
        elif isinstance(layer, Linear):
            macs += layer.params["w"].shape[0] * layer.params["w"].shape[1]
    return 3 * 2 * macs


def torch_peer(torch, model):
    """The PyTorch twin of a minialex AlexNet, layer by layer (LRN alpha * n: PyTorch divides by n)."""
    from minialex import layers as L

    nn, mods = torch.nn, []
    for layer in model.layers:
        if isinstance(layer, L.Conv2D):
            mods.append(nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size,
                                  stride=layer.stride, padding=layer.padding, groups=layer.groups))
        elif isinstance(layer, L.Linear):
            mods.append(nn.Linear(*layer.params["w"].shape))
        elif isinstance(layer, L.LocalResponseNorm):
            mods.append(nn.LocalResponseNorm(layer.size, alpha=layer.coeff * layer.size, beta=layer.beta, k=layer.k))
        elif isinstance(layer, L.MaxPool2D):
            mods.append(nn.MaxPool2d(layer.kernel_size, layer.stride))
        elif isinstance(layer, L.ReLU):
            mods.append(nn.ReLU())
        elif isinstance(layer, L.Dropout):
            mods.append(nn.Dropout(layer.p))
        elif isinstance(layer, L.Flatten):
            mods.append(nn.Flatten())
        else:
            raise ValueError(f"torch_peer: no PyTorch twin for {type(layer).__name__}")
    return nn.Sequential(*mods)


def suite_minialex(cp, cfg, mode, batch, steps, warmup, graphs=False):
    """images/s and peak pool bytes of minialex's training step in ``mode`` (fp32, tf32, fp16);
    ``graphs``: the step captured once as a CUDA graph and replayed (fp32/tf32 only)."""
    from minialex.precision import MIXED, MixedPrecisionNet, configure_matmul

    pool = cp.get_default_memory_pool()
    pool.free_all_blocks()
    configure_matmul(cp, mode)
    model = AlexNet(cfg).to(cp)
    model.layers[0].input_grad = False                  # as the trainer: no dL/d(image)
    net = MixedPrecisionNet(model, dtype=MIXED[mode]) if mode in MIXED else model
    opt = SGD(net)
    rng = np.random.default_rng(0)
    x = cp.asarray(rng.standard_normal((batch, *model.input_shape)).astype(np.float32))
    y = cp.asarray(rng.integers(0, cfg.num_classes, batch))
    loss = SoftmaxCrossEntropy(check_finite=False)
    captured = None
    if graphs:
        from minialex.kernels.graphs import CapturedStep

        captured = CapturedStep(net, SoftmaxCrossEntropy(check_finite=False, check_labels=False), opt)

    def step():
        if captured is not None:
            return captured(x, y)
        value = loss(net.forward(x, train=True), y)
        net.backward(loss.backward())
        if getattr(net, "grads_finite", True):          # fp16: one host sync, as the trainer
            opt.step()
        if hasattr(net, "scaler"):
            net.scaler.update(net.grads_finite)
        return value

    for _ in range(warmup):
        step()
    cp.cuda.Device().synchronize()
    t = time.perf_counter()
    for _ in range(steps):
        value = step()
    cp.cuda.Device().synchronize()
    dt = time.perf_counter() - t
    held = pool.total_bytes() + (captured.pool.total_bytes() if captured is not None else 0)
    out = {"images_per_s": steps * batch / dt, "peak_bytes": held, "loss": float(value),
           "flops_per_image": train_flops_per_image(model)}
    del net, model, opt, x, y, step, captured
    pool.free_all_blocks()
    return out


def suite_torch(torch, model, mode, batch, steps, warmup, device=0):
    """The PyTorch peer: fp32 (TF32 off), TF32, or AMP fp16 with channels-last and GradScaler."""
    dev = torch.device(f"cuda:{device}")
    torch.backends.cudnn.benchmark = True
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = mode == "tf32"
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats(dev)
    net = torch_peer(torch, model).to(dev)
    fmt = torch.channels_last if mode == "fp16" else torch.contiguous_format
    net = net.to(memory_format=fmt)
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.standard_normal((batch, *model.input_shape)).astype(np.float32)).to(dev)
    x = x.to(memory_format=fmt)
    y = torch.from_numpy(rng.integers(0, model.config.num_classes, batch)).to(dev)
    lossf = torch.nn.CrossEntropyLoss()
    scaler = torch.amp.GradScaler("cuda", enabled=mode == "fp16")

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.float16, enabled=mode == "fp16"):
            value = lossf(net(x), y)
        scaler.scale(value).backward()
        scaler.step(opt)
        scaler.update()
        return value

    for _ in range(warmup):
        step()
    torch.cuda.synchronize(dev)
    t = time.perf_counter()
    for _ in range(steps):
        value = step()
    torch.cuda.synchronize(dev)
    dt = time.perf_counter() - t
    out = {"images_per_s": steps * batch / dt, "peak_bytes": torch.cuda.max_memory_reserved(dev),
           "loss": float(value)}
    del net, opt, x, y
    torch.cuda.empty_cache()
    return out


def suite_row(config, mode, batch, mini, ref, peaks):
    """One table row: rates, memory, the ratios and the physical limit (images/s at peak FLOP/s)."""
    limit = None
    if peaks is not None:
        limit = peaks[mode.split("+")[0]] * 1e12 / mini["flops_per_image"]
    return {"config": config, "precision": mode, "batch": batch,
            "minialex_img_s": mini["images_per_s"], "torch_img_s": ref["images_per_s"] if ref else None,
            "speed_ratio": mini["images_per_s"] / ref["images_per_s"] if ref else None,
            "minialex_peak_gib": mini["peak_bytes"] / 2**30, "torch_peak_gib": ref["peak_bytes"] / 2**30 if ref else None,
            "memory_ratio": mini["peak_bytes"] / ref["peak_bytes"] if ref else None,
            "limit_img_s": limit, "minialex_of_limit": mini["images_per_s"] / limit if limit else None}


def format_suite(rows):
    """The table, as Markdown: one line per (net, precision)."""
    def f(v, spec):
        return "-" if v is None else format(v, spec)

    head = ("| net | precision | batch | minialex img/s | PyTorch img/s | speed ratio | minialex GiB | "
            "PyTorch GiB | memory ratio | limit img/s | minialex / limit |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        lines.append(f"| {r['config']} | {r['precision']} | {r['batch']} | {f(r['minialex_img_s'], '.0f')} | "
                     f"{f(r['torch_img_s'], '.0f')} | {f(r['speed_ratio'], '.2f')} | {f(r['minialex_peak_gib'], '.2f')} | "
                     f"{f(r['torch_peak_gib'], '.2f')} | {f(r['memory_ratio'], '.2f')} | {f(r['limit_img_s'], '.0f')} | "
                     f"{f(r['minialex_of_limit'], '.1%')} |")
    return "\n".join(lines)


def run_suite(cp, torch, args, gpu_name):
    import json

    peaks = peak_tflops(gpu_name, args.peak_tflops)
    rows = []
    for name in args.configs.split(","):
        cfg = {"paper": AlexNetConfig.paper, "cifar": AlexNetConfig.cifar}[name]()
        for mode in args.precisions.split(","):
            mini = suite_minialex(cp, cfg, mode, args.batch, args.steps, args.warmup)
            ref = suite_torch(torch, AlexNet(cfg), mode, args.batch, args.steps, args.warmup, args.device) \
                if torch is not None else None
            rows.append(suite_row(name, mode, args.batch, mini, ref, peaks))
            print(format_suite(rows[-1:]).splitlines()[-1], flush=True)
            if args.cuda_graphs and mode in ("fp32", "tf32"):
                mini = suite_minialex(cp, cfg, mode, args.batch, args.steps, args.warmup, graphs=True)
                rows.append(suite_row(name, mode + "+graph", args.batch, mini, ref, peaks))
                print(format_suite(rows[-1:]).splitlines()[-1], flush=True)
    print("\n" + format_suite(rows))
    if peaks is None:
        print(f"(no peak FLOP/s known for {gpu_name}: pass --peak-tflops FP32,TF32,FP16 for the limits)")
    if args.json:
        Path(args.json).write_text(json.dumps({"gpu": gpu_name, "date": str(datetime.date.today()),
                                               "rows": rows}, indent=1))
    return 0


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

    gpu_name = backend.gpu_name(cp, args.device)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.batch, 3, 224, 224)).astype(np.float32)
    y = rng.integers(0, 1000, args.batch).astype(np.int64)

    if args.suite:
        with cp.cuda.Device(args.device):
            return run_suite(cp, torch, args, gpu_name)
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
