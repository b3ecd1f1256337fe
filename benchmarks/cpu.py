"""CPU speed of minialex against naive NumPy and PyTorch, measured in one run.

    python benchmarks/cpu.py --quick        # a couple of minutes
    python benchmarks/cpu.py                # the full run recorded in benchmarks/RESULTS.md

What it prints (issue 8):
  1. col2im: the numba kernel against the readable ``np.add.at`` reference at
     the conv1 and conv2 shapes of the paper net, batch 16.
  2. Per layer, forward and backward, at the paper net's shapes (batch 16;
     ``--layers-config cifar --layers-batch 128`` for the cifar net's):
     minialex fast path (numba kernels, ``MINIALEX_KERNELS=fast``), minialex
     readable path (``MINIALEX_KERNELS=reference``) and PyTorch CPU on the same
     layer, and the ratios fast/PyTorch.
  3. The whole training step (forward, softmax loss, backward, SGD with
     momentum 0.9 and weight decay 5e-4, Sec. 5) of the paper config (Sec. 3.5,
     224x224 input, two towers) at batch 16 and 128 (64 with --quick), and of
     the cifar config at batch 128, for the same three implementations; the
     ratio fast/PyTorch, and the peak memory of each step.

Fairness: every configuration runs in its own child process (so peaks and
caches do not mix), with the same thread count for numba, OpenBLAS and
PyTorch (``--threads``, default: all cores, os.cpu_count()), float32
everywhere, the same layer sizes, and the PyTorch net built from the minialex
model layer by layer with the same weights: grouped convolutions (groups=2 in
conv2/4/5), ``nn.LocalResponseNorm(5, alpha=5*1e-4, beta=0.75, k=2)`` (PyTorch
divides alpha by n; the paper does not, Sec. 3.3), ``MaxPool2D(3, 2)``,
dropout 0.5, in-place ReLU as torchvision does. Times are the minimum and the
median over the timed steps after warm-up steps (numba compiles on the first
call; its cache makes later runs start fast).

minialex's conv1 runs with ``input_grad=False``: the image needs no gradient,
and PyTorch does not compute it either (the input does not require grad).
Each step also reports its process CPU time (all threads): on a machine
shared with other jobs it is the steadier figure.

Peak memory: the child's peak resident set size (``VmHWM``) minus its resident
size just before the model is built, so interpreter and library imports (torch
is large) are not counted, but weights, gradients, momentum and everything the
step allocates are.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IMPLS = ("fast", "reference", "torch")


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] + " See the module docstring for the method.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="fewer repeats, paper-config step at batch 16 and 64 (not 128); about 3 minutes on an idle 2-core machine")
    p.add_argument("--threads", type=int, default=os.cpu_count(),
                   help="threads for numba, OpenBLAS and PyTorch alike (default: os.cpu_count())")
    p.add_argument("--steps", type=int, default=None,
                   help="timed training steps per configuration (default 3, 2 with --quick)")
    p.add_argument("--sections", default="col2im,layers,net",
                   help="comma-separated subset of col2im,layers,net")
    p.add_argument("--layers-config", choices=("paper", "cifar"), default="paper",
                   help="network whose layer shapes section [2] times (default: paper)")
    p.add_argument("--layers-batch", type=int, default=16, help="batch size of section [2] (default 16)")
    p.add_argument("--no-torch", action="store_true", help="skip PyTorch even when it is installed")
    p.add_argument("--net-plan", default=None, metavar="CONFIG:BATCH,...",
                   help="the training steps of section [3], e.g. cifar:128,paper:128 (default paper:16, "
                        "paper:128 (64 with --quick), cifar:128)")
    p.add_argument("--no-reference", action="store_true",
                   help="section [3] without the readable path (on a busy machine its paper step takes long)")
    p.add_argument("--json", type=Path, default=None, help="also write every measurement to this file")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)   # internal: one configuration
    return p.parse_args(argv)


def set_thread_env(n):
    """Pin every thread pool to n threads; must run before numpy/numba/torch import.

    Also OPENBLAS_THREAD_TIMEOUT=4 (unless set): by default OpenBLAS's worker
    threads busy-wait about 2^28 cycles after every GEMM, and on two cores
    that spinning thread takes a core from the numba kernel that runs next
    (measured: a paper-net step at batch 16 used 4.1 s of CPU with the
    default, 3.0 s with 4). PyTorch does not use OpenBLAS, so this changes
    nothing on its side.
    """
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ[var] = str(n)
    os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")


# ---------------------------------------------------------------------------
# Child side: everything below runs inside one configuration's process.
# ---------------------------------------------------------------------------

def rss_mb(field):
    """VmRSS or VmHWM of this process in MiB, from /proc/self/status."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def timed(fn, steps, warmup, cpu=None):
    """Run fn warmup + steps times; return the timed wall durations in seconds.

    ``cpu``, a list, receives the process CPU time of each timed run (all
    threads together): with other jobs on the machine it is less noisy than
    wall time, and far above the wall time x threads when threads spin.
    """
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(steps):
        c = time.process_time()
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
        if cpu is not None:
            cpu.append(time.process_time() - c)
    return out


def summary(ts):
    ts = sorted(ts)
    return {"min": ts[0], "median": ts[len(ts) // 2], "n": len(ts)}


def setup_threads(n, impl):
    import numba
    numba.set_num_threads(n)
    if impl == "torch":
        import torch
        torch.set_num_threads(n)
        torch.set_num_interop_threads(1)


def torch_layer(layer, torch):
    """The PyTorch module equal to one minialex layer, with the same weights."""
    from minialex.layers import (Conv2D, Dropout, Flatten, Linear, LocalResponseNorm, MaxPool2D,
                                 ReLU)
    nn = torch.nn
    if isinstance(layer, Conv2D):
        m = nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size, layer.stride,
                      layer.padding, groups=layer.groups)
        with torch.no_grad():
            m.weight.copy_(torch.from_numpy(layer.params["w"]))
            m.bias.copy_(torch.from_numpy(layer.params["b"]))
        return m
    if isinstance(layer, Linear):
        m = nn.Linear(layer.in_features, layer.out_features)
        with torch.no_grad():
            m.weight.copy_(torch.from_numpy(layer.params["w"].T))    # minialex w is (in, out)
            m.bias.copy_(torch.from_numpy(layer.params["b"]))
        return m
    if isinstance(layer, ReLU):
        return nn.ReLU(inplace=True)
    if isinstance(layer, LocalResponseNorm):
        # PyTorch divides alpha by size: alpha' = size * coeff gives the same layer.
        return nn.LocalResponseNorm(layer.size, alpha=layer.size * layer.coeff, beta=layer.beta,
                                    k=layer.k)
    if isinstance(layer, MaxPool2D):
        return nn.MaxPool2d(layer.kernel_size, layer.stride)
    if isinstance(layer, Dropout):
        return nn.Dropout(layer.p)
    if isinstance(layer, Flatten):
        return nn.Flatten()
    raise ValueError(f"no PyTorch peer for {type(layer).__name__}")


def make_config(name):
    from minialex.model import AlexNetConfig
    return {"paper": AlexNetConfig.paper, "cifar": AlexNetConfig.cifar}[name]()


def step_gflop(model, N):
    """GEMM work of one training step in GFLOP: forward, dx and dw, each 2 x the multiply-adds
    (the first layer's dx is not needed and not counted)."""
    from minialex.layers import Conv2D, Linear
    total = 0
    for i, (_, layer, shape) in enumerate(model.layer_shapes()):
        if isinstance(layer, Conv2D):
            F, OH, OW = shape
            fwd = 2 * N * F * OH * OW * layer.in_channels // layer.groups * layer.kernel_size ** 2
        elif isinstance(layer, Linear):
            fwd = 2 * N * layer.in_features * layer.out_features
        else:
            continue
        total += fwd * (2 if i == 0 else 3)
    return total / 1e9


def child_net(spec):
    """One training-step configuration: {"config", "batch", "impl", "steps", "warmup", "threads"}."""
    impl = spec["impl"]
    os.environ["MINIALEX_KERNELS"] = "fast" if impl == "fast" else "reference"   # read when the model is built
    import numpy as np
    setup_threads(spec["threads"], impl)
    if impl == "torch":
        import torch
    from minialex.layers import SoftmaxCrossEntropy
    from minialex.model import AlexNet
    from minialex.optim import SGD
    import minialex.backend

    cfg = make_config(spec["config"])
    N = spec["batch"]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, 3, cfg.input_size, cfg.input_size), dtype=np.float32)
    y = rng.integers(0, cfg.num_classes, N)
    rss0 = rss_mb("VmRSS")
    model = AlexNet(cfg)
    model.layers[0].input_grad = False          # conv1: the image needs no gradient (PyTorch skips it too)
    gflop = step_gflop(model, N)
    if impl == "torch":
        net = torch.nn.Sequential(*[torch_layer(l, torch) for l in model.layers])
        del model
        net.train()
        opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
        loss_fn = torch.nn.CrossEntropyLoss()
        xt, yt = torch.from_numpy(x), torch.from_numpy(y)

        def step():
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(net(xt), yt)
            loss.backward()
            opt.step()
    else:
        loss_fn = SoftmaxCrossEntropy()
        opt = SGD(model, lr=0.01, momentum=0.9, weight_decay=5e-4)

        def step():
            loss_fn.forward(model.forward(x, train=True), y)
            model.backward(loss_fn.backward())
            opt.step()
    cpu = []
    ts = timed(step, spec["steps"], spec["warmup"], cpu)
    out = summary(ts)
    out.update(cpu_min=min(cpu), peak_mb=rss_mb("VmHWM") - rss0, gflop=gflop,
               info={k: v for k, v in minialex.backend.info().items()
                     if k in ("kernels", "numba_threads")})
    if impl == "torch":
        out["torch_threads"] = torch.get_num_threads()
    return out


def child_col2im(spec):
    """col2im numba vs np.add.at at the paper's conv1 and conv2 shapes, batch 16."""
    import numpy as np
    setup_threads(spec["threads"], "fast")
    from minialex.kernels import _numba
    from minialex.im2col import col2im_reference, im2col_reference
    N = spec["batch"]
    rows = []
    for name, x_shape, K, s, p in [("conv1", (N, 3, 224, 224), 11, 4, 2),
                                   ("conv2", (N, 96, 27, 27), 5, 1, 2)]:
        rng = np.random.default_rng(0)
        n_rows = im2col_reference(np.zeros((1,) + x_shape[1:], np.float32), K, K, s, p).shape
        cols = rng.standard_normal((n_rows[0], n_rows[1] * N), dtype=np.float32)
        ref = summary(timed(lambda: col2im_reference(cols, x_shape, K, K, s, p), spec["reps"], 1))
        fast = summary(timed(lambda: _numba.col2im(cols, x_shape, K, K, s, p), spec["reps"] * 3, 1))
        rows.append({"layer": name, "shape": list(x_shape), "reference": ref, "fast": fast})
    return rows


def net_layers(N, config="paper"):
    """(name, layer, input shape) of the paper (or cifar) net, for per-layer timing at batch N."""
    from minialex.model import AlexNet
    model = AlexNet(make_config(config))
    shape = (N,) + model.input_shape
    rows = []
    for (name, layer, out_shape) in model.layer_shapes():
        rows.append((name, layer, shape))
        shape = (N,) + tuple(out_shape)
    return rows


def child_layers(spec):
    """Forward and backward of each layer of the paper (or cifar) net, for the three implementations."""
    import numpy as np
    impls = spec["impls"]
    setup_threads(spec["threads"], "torch" if "torch" in impls else "fast")
    if "torch" in impls:
        import torch
    from minialex.kernels import accelerate
    from minialex.layers import Dropout, Flatten, ReLU
    N = spec["batch"]
    rows = []
    for name, layer, in_shape in net_layers(N, spec.get("config", "paper")):
        if isinstance(layer, Flatten) or (isinstance(layer, (ReLU, Dropout)) and name not in ("relu1", "drop6")):
            continue
        rng = np.random.default_rng(0)
        x = rng.standard_normal(in_shape, dtype=np.float32)
        if name.startswith("relu"):
            x = np.abs(x)          # LRN and ReLU see non-negative inputs in the net
        row = {"layer": name, "in_shape": list(in_shape)}
        for impl in impls:
            if impl == "torch":
                m = torch_layer(layer, torch)
                if isinstance(m, torch.nn.ReLU):
                    m = torch.nn.ReLU()                 # not in place: x is reused across repeats
                xt = torch.from_numpy(x).requires_grad_(True)
                d = None

                def fwd_bwd():
                    nonlocal d
                    t0 = time.perf_counter()
                    out = m(xt)
                    t1 = time.perf_counter()
                    if d is None:
                        d = torch.from_numpy(rng.standard_normal(tuple(out.shape), dtype=np.float32))
                    out.backward(d)
                    t2 = time.perf_counter()
                    xt.grad = None
                    return t1 - t0, t2 - t1
            else:
                accelerate(layer, np, "fast" if impl == "fast" else "reference")
                d = None

                def fwd_bwd():
                    nonlocal d
                    t0 = time.perf_counter()
                    out = layer.forward(x, train=True)
                    t1 = time.perf_counter()
                    if d is None:
                        d = rng.standard_normal(out.shape, dtype=np.float32)
                    layer.backward(d)
                    t2 = time.perf_counter()
                    return t1 - t0, t2 - t1
            fwd_bwd()                                   # warm-up (numba compile, first touch)
            reps = spec["reps"] if impl != "reference" else max(1, spec["reps"] // 2)
            pairs = [fwd_bwd() for _ in range(reps)]
            row[impl] = {"fwd": min(p[0] for p in pairs), "bwd": min(p[1] for p in pairs)}
        rows.append(row)
    return rows


def run_child(kind, spec, threads):
    """Run one configuration in a fresh interpreter; return its JSON result."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS",
                "OPENBLAS_THREAD_TIMEOUT"):
        env[var] = os.environ[var]
    proc = subprocess.run([sys.executable, __file__, "--child", json.dumps({"kind": kind, **spec})],
                          env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark child {kind} {spec} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------
# Parent side: plan the configurations, run the children, print the tables.
# ---------------------------------------------------------------------------

def environment(threads):
    import numpy
    import numba
    env = {"date_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
           "machine": platform.machine(), "cpu": platform.processor() or "?",
           "cores": os.cpu_count(), "threads": threads, "python": platform.python_version(),
           "numpy": numpy.__version__, "numba": numba.__version__, "torch": None,
           "loadavg_start": os.getloadavg(),
           "OPENBLAS_THREAD_TIMEOUT": os.environ.get("OPENBLAS_THREAD_TIMEOUT")}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    env["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        import importlib.metadata as md
        env["torch"] = md.version("torch")
    except Exception:
        pass
    return env


def fmt_ms(s):
    return f"{s * 1e3:9.1f}"


def ratio(a, b):
    return f"{a / b:6.2f}x" if b else "   n/a"


def main(argv=None):
    args = parse_args(argv)
    set_thread_env(args.threads)
    if args.child:
        spec = json.loads(args.child)
        sys.path.insert(0, str(ROOT))
        fn = {"net": child_net, "col2im": child_col2im, "layers": child_layers}[spec.pop("kind")]
        print(json.dumps(fn(spec)))
        return 0

    env = environment(args.threads)
    have_torch = env["torch"] is not None and not args.no_torch
    impls = ("fast", "reference", "torch") if have_torch else ("fast", "reference")
    sections = set(args.sections.split(","))
    steps = args.steps or (2 if args.quick else 3)
    results = {"env": env, "command": " ".join(["python", "benchmarks/cpu.py"] + (argv or sys.argv[1:]))}
    print(f"minialex CPU benchmark  {env['date_utc']} UTC")
    print(f"  {env['cpu']}, {env['cores']} cores, {args.threads} threads for numba/OpenBLAS/PyTorch; "
          f"python {env['python']}, numpy {env['numpy']}, numba {env['numba']}, torch {env['torch']}")
    print(f"  OPENBLAS_THREAD_TIMEOUT={env['OPENBLAS_THREAD_TIMEOUT']} (see set_thread_env)")
    print(f"  load average at start: {' '.join(f'{v:.2f}' for v in env['loadavg_start'])}"
          "  (other processes on the machine slow every column alike; compare ratios)")
    if not have_torch:
        print("  PyTorch not installed (or --no-torch): no PyTorch column")

    if "col2im" in sections:
        print("\n[1] col2im, batch 16: numba kernel vs readable np.add.at reference (min of repeats)")
        rows = run_child("col2im", {"batch": 16, "reps": 2 if args.quick else 3, "threads": args.threads},
                         args.threads)
        results["col2im"] = rows
        for r in rows:
            print(f"  {r['layer']:6s} x {tuple(r['shape'])}: reference {fmt_ms(r['reference']['min'])} ms"
                  f"  numba {fmt_ms(r['fast']['min'])} ms  speed-up {r['reference']['min'] / r['fast']['min']:6.1f}x")

    if "layers" in sections:
        lcfg, lN = args.layers_config, args.layers_batch
        S = {"paper": 224, "cifar": 32}[lcfg]          # input size (not importing minialex in the parent)
        print(f"\n[2] per layer, {lcfg} net ({S}x{S} input), batch {lN}, ms (min of repeats); "
              "ratio = fast / PyTorch")
        rows = run_child("layers", {"batch": lN, "config": lcfg, "reps": 3 if args.quick else 5,
                                    "threads": args.threads,
                                    "impls": list(impls)}, args.threads)
        results["layers"] = rows
        head = f"  {'layer':7s} {'input':>20s} |" + "".join(
            f" {i + ' fwd':>13s} {i + ' bwd':>13s} |" for i in impls)
        if have_torch:
            head += "  fwd ratio  bwd ratio  f+b ratio"
        print(head)
        for r in rows:
            line = f"  {r['layer']:7s} {str(tuple(r['in_shape'])):>20s} |"
            for i in impls:
                line += f" {fmt_ms(r[i]['fwd']):>13s} {fmt_ms(r[i]['bwd']):>13s} |"
            if have_torch:
                f, t = r["fast"], r["torch"]
                line += (f"  {ratio(f['fwd'], t['fwd'])}    {ratio(f['bwd'], t['bwd'])}"
                         f"    {ratio(f['fwd'] + f['bwd'], t['fwd'] + t['bwd'])}")
            print(line)

    if "net" in sections:
        plan = [("paper", 16), ("paper", 64 if args.quick else 128), ("cifar", 128)]
        if args.net_plan:
            plan = [(c, int(n)) for c, n in (item.split(":") for item in args.net_plan.split(","))]
        net_impls = tuple(i for i in impls if not (args.no_reference and i == "reference"))
        print(f"\n[3] training step (forward, loss, backward, SGD), float32; seconds, min / median of "
              f"{steps} steps after warm-up; peak = extra resident memory of the step's process")
        results["net"] = []
        for cfg, N in plan:
            row = {"config": cfg, "batch": N}
            for impl in net_impls:
                n_steps, warm = steps, 1
                if impl == "reference" and cfg == "paper" and N > 16:
                    n_steps = 1 if args.quick else 2               # the slow path: fewer steps
                row[impl] = run_child("net", {"config": cfg, "batch": N, "impl": impl, "steps": n_steps,
                                              "warmup": warm, "threads": args.threads}, args.threads)
                r = row[impl]
                print(f"  {cfg:5s} batch {N:3d}  {impl:9s}  {r['min']:8.3f} / {r['median']:8.3f} s"
                      f"  cpu {r['cpu_min']:7.2f} s  {r['gflop'] / r['min']:6.1f} GFLOP/s"
                      f"  peak {r['peak_mb']:7.0f} MiB", flush=True)
            if have_torch:
                f, t = row["fast"], row["torch"]
                print(f"  {'':5s} {'':9s}  fast / PyTorch: time {f['min'] / t['min']:.2f}x (min), "
                      f"{f['median'] / t['median']:.2f}x (median), cpu {f['cpu_min'] / t['cpu_min']:.2f}x;"
                      f" peak memory {f['peak_mb'] / t['peak_mb']:.2f}x;"
                      + (f"  reference / fast: {row['reference']['min'] / f['min']:.1f}x" if "reference" in row else ""))
            results["net"].append(row)

    env["loadavg_end"] = os.getloadavg()
    print(f"\n  load average at end: {' '.join(f'{v:.2f}' for v in env['loadavg_end'])}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
