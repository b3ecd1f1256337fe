"""Data parallelism on one CPU machine: 1 rank x 2 threads against 2 ranks x 1 thread, and the all-reduce.

    python benchmarks/distributed.py                    # cifar batch 128 and paper batch 32
    python benchmarks/distributed.py --configs cifar --batch cifar=256 --steps 10

For each config, two layouts train the same global batch on synthetic
images (no data loading: the step alone):

  1x2  one process, numba and OpenBLAS with 2 threads each, the whole batch;
  2x1  ``mpiexec -n 2``, 1 thread each, half of the batch per rank.

A step is what ``minialex.trainer`` does: forward, softmax loss, the
all-reduce of the step's figures, backward, the gradient average
(``comm.average_grads``), the Sec. 5 SGD update. Times are min and median
over the timed steps after warm-up steps (numba compiles on the first call).
For 2x1 the script also reports, per step, the time in the gradient
average, split into the wait for the slower rank (a barrier first) and the
all-reduce itself (pack, ``MPI_Allreduce`` of one flat float32 buffer,
unpack), and the bytes all-reduced. The barrier exists only here, to
separate the two; training has none. After the steps, ``MPI_Allreduce``
alone on a float32 buffer of the model's size (min of 3) shows what the
transfer costs without packing. The load average is printed before and
after: the machine may be shared.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_BATCH = {"cifar": 128, "paper": 32}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--configs", default="cifar,paper", help="comma-separated: cifar, paper (default both)")
    p.add_argument("--batch", action="append", default=[], metavar="CONFIG=N",
                   help=f"global batch per config (default {DEFAULT_BATCH})")
    p.add_argument("--steps", type=int, default=6, help="timed steps (default 6)")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps first (default 2)")
    p.add_argument("--json", type=Path, default=None, help="also write the measurements to this file")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--config", default="cifar", help=argparse.SUPPRESS)
    p.add_argument("--global-batch", type=int, default=128, help=argparse.SUPPRESS)
    return p.parse_args(argv)


# ------------------------------------------------------------------ one layout (a child process)
def child(args):
    import numpy as np

    from minialex.distributed import world
    from minialex.layers import SoftmaxCrossEntropy
    from minialex.model import AlexNet, AlexNetConfig
    from minialex.optim import SGD

    comm = world()
    cfg = getattr(AlexNetConfig, args.config)(dropout=0.5 if args.config == "paper" else 0.0)
    model = AlexNet(cfg)
    model.layers[0].input_grad = False                  # as training does: no gradient for the image
    opt = SGD(model, lr=0.001, momentum=0.9, weight_decay=5e-4)
    loss_fn = SoftmaxCrossEntropy()
    lo, hi = comm.shard(args.global_batch)
    rng = np.random.default_rng(comm.rank)
    S = cfg.input_size
    x = rng.standard_normal((hi - lo, 3, S, S)).astype(np.float32)     # this rank's part of the batch
    y = rng.integers(0, cfg.num_classes, size=hi - lo)
    steps, waits, reduces = [], [], []
    for i in range(args.warmup + args.steps):
        t0 = time.perf_counter()
        logits = model.forward(x, train=True)
        loss = float(loss_fn.forward(logits, y))
        comm.allreduce_sum([loss * len(y), len(y)])
        model.backward(loss_fn.backward())
        t1 = time.perf_counter()
        comm.barrier()                                  # measurement only: wait for the slower rank
        t2 = time.perf_counter()
        comm.average_grads(model.named_grads(), weight=(hi - lo) / args.global_batch)
        t3 = time.perf_counter()
        opt.step()
        t4 = time.perf_counter()
        if i >= args.warmup:
            steps.append(t4 - t0)
            waits.append(t2 - t1)
            reduces.append(t3 - t2)
    raw = []                                            # MPI_Allreduce alone on a buffer of the same size
    if comm.size > 1:
        buf = np.ones(model.num_params(), dtype=np.float32)
        for _ in range(3):
            comm.barrier()
            t = time.perf_counter()
            comm.comm.Allreduce(comm.MPI.IN_PLACE, buf, op=comm.MPI.SUM)
            raw.append(time.perf_counter() - t)
    mine = {"rank": comm.rank, "step_s": steps, "wait_s": waits, "allreduce_s": reduces, "mpi_s": raw,
            "bytes": comm.grad_bytes, "threads": os.environ.get("NUMBA_NUM_THREADS"),
            "params": model.num_params()}
    everyone = comm.comm.allgather(mine) if comm.size > 1 else [mine]
    if comm.rank == 0:
        print("RESULT " + json.dumps({"ranks": comm.size, "per_rank": everyone}), flush=True)
    comm.close()


# ------------------------------------------------------------------ the driver
def _env(threads):
    return dict(os.environ, PYTHONPATH=str(ROOT), NUMBA_NUM_THREADS=str(threads),
                OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads), HYDRA_LAUNCHER="fork")


def _mpiexec():
    here = Path(sys.executable).parent / "mpiexec"
    return str(here) if here.exists() else shutil.which("mpiexec")


def measure(config, batch, ranks, steps, warmup):
    me = [sys.executable, str(Path(__file__).resolve()), "--child", "--config", config,
          "--global-batch", str(batch), "--steps", str(steps), "--warmup", str(warmup)]
    cmd = me if ranks == 1 else [_mpiexec(), "-n", str(ranks), *me]
    threads = 2 // ranks
    p = subprocess.run(cmd, env=_env(threads), capture_output=True, text=True, cwd=ROOT)
    line = next((ln for ln in p.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if p.returncode != 0 or line is None:
        raise SystemExit(f"error: {' '.join(cmd)} failed (status {p.returncode}):\n{p.stderr[-2000:]}")
    return json.loads(line[len("RESULT "):])


def _median(v):
    v = sorted(v)
    n = len(v)
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2


def main(argv=None):
    args = parse_args(argv)
    if args.child:
        return child(args)
    batches = dict(DEFAULT_BATCH)
    for b in args.batch:
        k, v = b.split("=")
        batches[k] = int(v)
    if _mpiexec() is None:
        raise SystemExit("error: no mpiexec; pip install -e \".[mpi]\"")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; cores: {os.cpu_count()}")
    rows = []
    for config in args.configs.split(","):
        batch = batches[config]
        for ranks in (1, 2):
            r = measure(config, batch, ranks, args.steps, args.warmup)
            steps = [max(s) for s in zip(*(p["step_s"] for p in r["per_rank"]))]   # a step ends on the slowest
            row = {"config": config, "global_batch": batch, "layout": f"{ranks}x{2 // ranks}",
                   "step_min_s": min(steps), "step_median_s": _median(steps),
                   "images_per_s": batch / _median(steps), "params": r["per_rank"][0]["params"]}
            if ranks > 1:
                p0 = r["per_rank"][0]
                row.update(bytes=p0["bytes"], allreduce_median_s=_median(p0["allreduce_s"]),
                           wait_median_s=max(_median(p["wait_s"]) for p in r["per_rank"]),
                           mpi_only_min_s=min(p0["mpi_s"]))
            rows.append(row)
            extra = ""
            if ranks > 1:
                extra = (f"  all-reduce {row['bytes'] / 2**20:7.2f} MiB: {1e3 * row['allreduce_median_s']:7.1f} ms "
                         f"({100 * row['allreduce_median_s'] / row['step_median_s']:.0f}% of the step, "
                         f"{row['bytes'] / row['allreduce_median_s'] / 1e9:.2f} GB/s); "
                         f"wait for the slower rank {1e3 * row['wait_median_s']:.1f} ms; "
                         f"MPI_Allreduce alone {1e3 * row['mpi_only_min_s']:.1f} ms")
            print(f"{config:6s} batch {batch:4d}  {row['layout']}  step min {row['step_min_s']:7.3f} s  "
                  f"median {row['step_median_s']:7.3f} s  {row['images_per_s']:7.1f} img/s{extra}", flush=True)
    print(f"load average after:  {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    sys.exit(main())
