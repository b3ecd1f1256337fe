"""How far do 2 data-parallel ranks drift from 1 process, and is it rounding? (docs/distributed.md)

    python scripts/dp_rounding.py            # cifar net, 4,000 bundled images, batch 64, 60 SGD steps
    python scripts/dp_rounding.py --save B.npz   # also keep run B's weights (to compare with an MPI run)

Three runs of the same 60 steps on the same batches and crops, in one process:
  A  the whole batch of 64, as ``python -m minialex.train --batch-size 64`` does;
  B  each step as two halves of 32, each gradient halved, packed and added:
     the arithmetic of ``mpiexec -n 2 ... --batch-size 32`` (MPI's sum of two
     buffers is one addition per element);
  C  A with every initial weight moved by one float32 ulp.
It prints max |w - w_A| / max |w_A - w_init| (the worst tensor) at a few steps.
"""
import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import minialex  # noqa: E402,F401  (before NumPy's pools start: thread settings)
from minialex.data import BatchLoader, TrainTransform, image_statistics, load_default  # noqa: E402
from minialex.data.datasets import subset  # noqa: E402
from minialex.distributed.comm import pack, unpack  # noqa: E402
from minialex.experiment import Scaled  # noqa: E402
from minialex.layers import SoftmaxCrossEntropy  # noqa: E402
from minialex.model import AlexNet, AlexNetConfig  # noqa: E402
from minialex.optim import SGD  # noqa: E402

p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
p.add_argument("--steps", type=int, default=60)
p.add_argument("--save", default=None, help="write run B's weights to this .npz")
args = p.parse_args()
d = load_default()
x, y = subset(d.x_train, d.y_train, 4000, 0)
mean, _ = image_statistics(x)
tt = Scaled(TrainTransform(mean=np.asarray(mean, np.float32), crop=32, pad=4, flip=True, pca=None), 1 / 64)
cfg = AlexNetConfig.cifar(dropout=0.0, seed=0)


def make(nudge=False):
    m = AlexNet(cfg)
    m.layers[0].input_grad = False
    if nudge:
        for _, w in m.named_params():
            w[...] = np.nextafter(w, np.float32(np.inf))
    return m, SGD(m, lr=0.01, momentum=0.9, weight_decay=5e-4)


A, oA = make()
B, oB = make()
C, oC = make(True)
init = {k: w.copy() for k, w in A.named_params()}
full = BatchLoader(x, y, 64, transform=tt, seed=0, background=False)
halves = [BatchLoader(x, y, 64, transform=tt, seed=0, background=False, shard=(r, 2)) for r in range(2)]


def step(m, o, xb, yb):
    f = SoftmaxCrossEntropy()
    f.forward(m.forward(xb), yb)
    m.backward(f.backward())
    o.step()


def diffAB(P):
    a, p = dict(A.named_params()), dict(P.named_params())
    return max(np.abs(p[k] - a[k]).max() / np.abs(a[k] - init[k]).max() for k in init)


it = zip(full, *halves)
for s, ((xa, ya), (x0, y0), (x1, y1)) in enumerate(it, 1):
    step(A, oA, xa, ya); step(C, oC, xa, ya)
    gs = []
    for xb, yb in ((x0, y0), (x1, y1)):
        f = SoftmaxCrossEntropy()
        f.forward(B.forward(xb), yb)
        B.backward(f.backward())
        g = [gg for _, gg in B.named_grads()]
        buf = np.empty(sum(q.size for q in g), np.float32)       # (all parameters,), as MPICommunicator packs
        pack(g, buf, 0.5)
        gs.append(buf)
    total = gs[0] + gs[1]
    unpack(total, [gg for _, gg in B.named_grads()]); oB.step()
    if s in (1, 5, 10, 20, 30, 45, 60, args.steps):
        print(f"step {s:3d}  B (two halves) vs A {diffAB(B):.3g}   C (one ulp) vs A {diffAB(C):.3g}", flush=True)
    if s == args.steps:
        break
if args.save:
    np.savez(args.save, **dict(B.named_params()))
