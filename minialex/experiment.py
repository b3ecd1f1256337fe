"""One training run assembled from its options: data, model, optimizer, trainer (Sec. 5).

    args = minialex.train.parse_args(["--epochs", "2"])     # or any namespace with the same fields
    summary = run(args)                                     # trains, writes args.out, returns the summary

``python -m minialex.train`` is the command line over this module: it parses
and checks the options, calls ``run`` and prints the summary. The pieces
(``model_config``, ``preprocessing``, ``build_optimizer``) are the choices a
run makes; ``minialex.trainer.Trainer`` is the loop.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import RunExistsError, UserError

# Per-config defaults for options whose best value depends on the net. The
# "paper" column is Sec. 5; the "cifar" column is the embedded default run,
# tuned to finish in a few minutes on two CPU cores (README states its figures).
CONFIG_DEFAULTS = {
    "paper": dict(epochs=90, batch_size=128, lr=0.01, schedule="plateau", dropout=0.5, pad=0,
                  pca_color=True, dropout_mode="paper", input_scale=1.0),
    "cifar": dict(epochs=8, batch_size=64, lr=0.01, schedule="cosine", dropout=0.0, pad=4,
                  pca_color=False, dropout_mode="paper", input_scale=1 / 64),
    # cifar-wide: the recipe of python -m minialex.reproduce cifar-best (lr chosen there on the
    # validation split held out from the training images; docs/results.md)
    "cifar-wide": dict(epochs=30, batch_size=128, lr=0.04, schedule="cosine", dropout=0.5, pad=4,
                       pca_color=False, dropout_mode="paper", input_scale=1 / 64),
    "tiny": dict(epochs=2, batch_size=128, lr=0.01, schedule="constant", dropout=0.5, pad=1,
                 pca_color=False, dropout_mode="paper", input_scale=1 / 64),
}
SCHEDULES = ("plateau", "step", "cosine", "constant")

# Options a resumed run may change; every other option comes from the checkpoint.
RESUMABLE = ("epochs", "max_steps", "quiet", "no_plot", "resume", "out", "loader_workers", "comm_timeout",
             "debug")
# Attributes of the parsed options that are this call's, never saved in a checkpoint.
NOT_SAVED = ("explicit", "merged", "overwrite", "debug", "asked_batch_size", "saved_ranks")


def model_config(args):
    """AlexNetConfig from the options (config + ablation switches)."""
    from .model import AlexNetConfig

    over = dict(seed=args.seed, lrn=not args.no_lrn, lrn_per_tower=args.lrn_per_tower, activation=args.activation, dropout=args.dropout,
                dropout_mode=args.dropout_mode, towers=args.towers, drop_conv=tuple(args.drop_conv))
    if args.pool is not None:
        over["pool_kernel"], over["pool_stride"] = args.pool
    if args.init is not None:
        over["init"] = args.init
    if args.config == "tiny":
        over["dtype"] = "float32"
    return getattr(AlexNetConfig, args.config.replace("-", "_"))(**over)


def check_shapes(cfg):
    """Raise ValueError if the net of ``cfg`` cannot be built (a pool or conv larger than its input).

    Builds a copy with 4 kernels per layer, so even the paper net is checked
    in milliseconds: the spatial sizes do not depend on the widths.
    """
    from .model import AlexNet

    narrow = dataclasses.replace(cfg, conv_channels=(4,) * len(cfg.conv_channels),
                                 fc_sizes=(4,) * len(cfg.fc_sizes))
    try:
        AlexNet(narrow)
    except ValueError as e:
        pool = f"--pool {cfg.pool_kernel}/{cfg.pool_stride}: " if "pool" in str(e) else ""
        raise ValueError(f"{pool}{e}") from None


def check_out(out, resume=False, overwrite=False):
    """Refuse an --out that cannot be written, or that holds a run, before any work starts.

    Raises UserError (RunExistsError for a run without --resume/--overwrite)
    naming the path and what was expected.
    """
    from .trainer import existing_run

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; expected a run directory (a folder, created if missing)")
    parent = out
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise UserError(f"--out {out}: {parent} is a file, so the run directory cannot be created there")
    if not os.access(parent, os.W_OK | os.X_OK):
        what = "the run directory" if parent == out else f"{parent}, where the run directory would be created,"
        raise UserError(f"--out {out}: {what} is not writable; choose another --out")
    if out.is_dir() and not resume and not overwrite:
        found = existing_run(out)
        if found:
            raise RunExistsError(f"--out {out} already holds a run ({', '.join(found)}); pass --resume to "
                                 "continue it, or --overwrite to start again and replace it "
                                 "(or choose another --out)")


def resume_path(args):
    """The checkpoint --resume continues: OUT/checkpoint.npz, or the file given."""
    from .trainer import CHECKPOINT

    return Path(args.out) / CHECKPOINT if args.resume == "auto" else Path(args.resume)


def preprocessing(args, cfg, data):
    """The preprocessing a checkpoint records, so evaluate/viz can repeat it.

    Returns (meta dict, mean image array): crop = the net's input size; pad
    for CIFAR-sized images (crop == image size), Sec. 4.1 otherwise.
    """
    from .data import image_statistics, pca_eigen

    if data.mean is None or (args.pca_color and data.pca is None):
        mean, cov = image_statistics(data.x_train)
        data.mean = data.mean if data.mean is not None else mean
        data.pca = data.pca if data.pca is not None else pca_eigen(cov)
    S = data.x_train.shape[2]
    if cfg.input_size > S + 2 * args.pad:
        raise ValueError(f"the {args.config} net takes {cfg.input_size}x{cfg.input_size} crops, but the "
                         f"images are {S}x{S} (pad {args.pad})")
    meta = {"crop": cfg.input_size, "pad": args.pad, "image_size": S, "scale": args.input_scale}
    return meta, np.asarray(data.mean, dtype=np.float32)


@dataclass
class Scaled:
    """A transform followed by a multiplication with ``scale`` (--input-scale)."""

    transform: object
    scale: float

    def augments_on_device(self, x):
        """Whether the wrapped transform can take a uint8 batch on the GPU (the loader asks)."""
        return getattr(self.transform, "augments_on_device", lambda x: False)(x)

    def __call__(self, x, rng=None):
        out = self.transform(x, rng)
        if self.scale != 1:
            out *= np.float32(self.scale)
        return out


# ---------------------------------------------------------------- schedule
def tricks_of(args):
    """minialex.tricks.Tricks from the options (defaults for a checkpoint written before they existed)."""
    from .tricks import Tricks

    def get(k, default):
        v = getattr(args, k, None)
        return default if v is None else v

    return Tricks(lr_scaling=get("lr_scaling", "none"), warmup_epochs=get("warmup", 0.0),
                  no_bias_decay=get("no_bias_decay", False), precision=get("precision", "fp32"),
                  label_smoothing=get("label_smoothing", 0.0), mixup=get("mixup", 0.0),
                  distill=get("distill", ""), distill_t=get("distill_t", 20.0))


def build_optimizer(model, args):
    """SGD (Sec. 5) and the learning-rate schedule chosen by --schedule.

    --lr-scaling linear multiplies --lr by batch / 256, --no-bias-decay
    exempts biases from weight decay (Bag of Tricks Sec. 3.1).
    """
    from . import optim, schedules
    from .tricks import scaled_lr

    tricks = tricks_of(args)
    batch = args.batch_size * getattr(args, "ranks", 1)       # the global batch under mpiexec
    opt = optim.SGD(model, lr=scaled_lr(args.lr, batch, tricks), momentum=args.momentum,
                    weight_decay=args.weight_decay, decay_bias=not tricks.no_bias_decay)
    if args.schedule == "plateau":
        sched = optim.ReduceOnPlateau(opt, factor=0.1, patience=args.patience, max_reductions=3)
    elif args.schedule == "step":
        sched = optim.StepDecay(opt, step_size=args.step_epochs, gamma=0.1, max_reductions=3)
    elif args.schedule == "cosine":
        sched = schedules.CosineDecay(opt, epochs=args.epochs)
    else:
        sched = schedules.Constant(opt)
    return opt, sched


# ---------------------------------------------------------------- main
def make_comm(args):
    """The run's communicator: one process, or the ranks mpiexec started (minialex.distributed)."""
    from .distributed import world

    gpus = (0,)
    if getattr(args, "gpus", None) is not None:
        from .towers import parse_gpus
        gpus = parse_gpus(args.gpus, args.backend)
    return world(args.backend, gpus=gpus, timeout=getattr(args, "comm_timeout", 300.0))


def run(args, log=print, comm=None):
    """Train as ``args`` say; returns the summary dict.

    ``comm``: the communicator (``make_comm``); None makes one. Under data
    parallelism (mpiexec) only rank 0 logs, shows progress and writes files.
    """
    from .backend import get_backend, kernel_paths
    from .data import BatchLoader, EvalTransform, TrainTransform, load_dataset, subset
    from .distributed import rank_devices, use_rank_dropout
    from .model import AlexNet
    from .trainer import Trainer, position_text

    comm = comm if comm is not None else make_comm(args)
    if comm.rank != 0:
        log = _silent
        args.quiet = True
    ckpt = resume_path(args) if args.resume is not None else None
    if ckpt is not None and not getattr(args, "merged", False):
        args = merge_resume_args(args, ckpt, comm.size)
    elif ckpt is not None:
        split_resumed_batch(args, comm.size, ckpt)   # parse_args merged before the ranks were known
    args.ranks = comm.size
    overwrite = getattr(args, "overwrite", False)
    comm.barrier("the start of the run")           # every rank has checked --out before rank 0 writes there
    check_out(args.out, resume=ckpt is not None, overwrite=overwrite)
    xp = get_backend(args.backend)
    if xp is not np and args.gpus is None:          # one GPU per rank: the one its local rank names
        xp.cuda.Device(rank_devices(comm.local_rank)[0]).use()
    cfg = model_config(args)
    t0 = time.perf_counter()
    image_size = 256 if cfg.input_size > 64 else cfg.input_size
    data = load_dataset(args.data, image_size=image_size, data_root=args.data_root, download=args.download)
    xtr, ytr = subset(data.x_train, data.y_train, args.limit, args.seed)
    xval, yval = subset(data.x_test, data.y_test, args.limit, args.seed + 1)
    data.x_train, data.y_train = xtr, ytr
    num_classes = len(data.class_names)
    if cfg.num_classes != num_classes:
        cfg = type(cfg).from_dict({**cfg.to_dict(), "num_classes": num_classes})
    check_labels(ytr, cfg.num_classes, "training")   # once here: the loss does not check on a GPU
    check_labels(yval, cfg.num_classes, "validation")
    prep, mean = preprocessing(args, cfg, data)
    model = AlexNet(cfg)
    net = model                                     # what trains: the model, or its two towers
    if comm.size > 1:
        use_rank_dropout(model, comm.rank)          # independent masks per rank (distributed/shard.py)
    if args.gpus is not None:                       # Sec. 3.2: tower 0 on one GPU, tower 1 on another
        from .towers import TwoTowerAlexNet, parse_gpus, transfer_plan
        devices = rank_devices(comm.local_rank, parse_gpus(args.gpus, args.backend))   # this rank's pair
        if xp is not np:                            # the logits, the loss and fc8 live on tower 0's GPU
            xp.cuda.Device(devices[0]).use()
        net = TwoTowerAlexNet(model, devices=devices, xp=xp)
        plan = transfer_plan(model, args.batch_size)
        log(f"two towers on CUDA devices {net.devices}: {plan['between_towers'] / 2**20:.1f} MiB cross "
            f"between the towers per step (conv3 {plan['conv'] / 2**20:.1f}, fc6/fc7 {plan['fc'] / 2**20:.1f}, "
            f"fc8 {plan['head'] / 2**20:.1f}, LRN halo {plan['lrn'] / 2**20:.1f} MiB; forward + backward)")
    elif xp is not np:
        model.to(xp)
    log(describe_kernels(net.kernel_paths() if net is not model else kernel_paths(model)))
    if net is model and hasattr(model.layers[0], "input_grad"):
        # Training never uses dL/d(image): conv1 skips its input gradient (on
        # the CPU the rotated-kernel convolution, on the GPU the col2im). The
        # towers keep it, as they count its bytes.
        model.layers[0].input_grad = False
    tricks = tricks_of(args)
    from .precision import MIXED, MixedPrecisionNet, configure_matmul
    log(configure_matmul(xp, tricks.precision))     # cuBLAS compute type: fp32, TF32 (docs/gpu.md)
    if tricks.precision in MIXED:                   # Bag of Tricks Sec. 3.2: half copy, float32 master
        net = MixedPrecisionNet(model, dtype=MIXED[tricks.precision])
    tt = Scaled(TrainTransform(mean=mean, crop=cfg.input_size, pad=args.pad, flip=not args.no_flip,
                               pca=data.pca if args.pca_color else None), args.input_scale)
    et = Scaled(EvalTransform(mean=mean, crop=cfg.input_size), args.input_scale)
    batch = args.batch_size * comm.size             # the global batch: every rank takes its part
    last = len(ytr) % batch
    if 0 < last < comm.size:
        raise SystemExit(f"error: the last batch of each epoch has {last} image{'s' if last > 1 else ''}, "
                         f"fewer than the {comm.size} ranks; choose another --batch-size or --limit")
    loader = BatchLoader(xtr, ytr, batch, transform=tt, seed=args.seed, xp=xp,
                         workers=getattr(args, "loader_workers", 1),   # older checkpoints lack it
                         shard=(comm.rank, comm.size))
    args.steps_per_epoch = len(loader)
    opt, sched = build_optimizer(net, args)
    run_args = {k: v for k, v in vars(args).items() if k not in NOT_SAVED}
    prep["mean"] = mean.tolist()                    # (3, S, S) nested lists: JSON, exact for float32
    meta = {"format": "minialex-run-1", "args": _jsonable(run_args), "preprocess": prep,
            "class_names": list(data.class_names), "data": data.name}
    teacher = None
    if tricks.distill:                              # Bag of Tricks Sec. 5.3
        from .tricks import load_teacher
        try:
            teacher = load_teacher(tricks.distill, data.class_names, prep, xp=xp)
        except ValueError as e:
            raise SystemExit(f"error: --distill: {e}") from None
    graph_step = None
    if getattr(args, "cuda_graphs", False):         # one CUDA graph per batch shape and lr (docs/gpu.md)
        from .kernels.graphs import CapturedStep
        from .layers import SoftmaxCrossEntropy
        graph_step = CapturedStep(net, SoftmaxCrossEntropy(check_finite=False, check_labels=False), opt)
        log("CUDA graphs: the training step is captured once per batch shape and learning rate")
    trainer = Trainer(net, opt, sched, loader, (xval, yval, et), args.out, args.epochs,
                      max_steps=args.max_steps, meta=meta,
                      progress=not args.quiet, plot=not args.no_plot, xp=xp, log=log,
                      tricks=tricks, teacher=teacher, comm=comm, val_name=data.held_name, overwrite=overwrite,
                      graph_step=graph_step)
    if ckpt is not None:
        m = trainer.restore(ckpt)
        log(f"resumed {ckpt} at {position_text(m['step'], m['epoch'], m['batch'], len(loader))}")
    else:
        if trainer.checkpoint_path.exists():
            log(f"--overwrite: starting a new run in {args.out}; its old checkpoint and metrics are replaced")
        log(f"{args.config} net, {model.num_params():,} parameters; data: {data.name}, "
            f"{len(ytr):,} train / {len(yval):,} {data.held_name} images; {args.epochs} epochs of {len(loader)} steps "
            f"(batch {batch}), lr {opt.lr:g} ({args.schedule}), backend {args.backend}; out {args.out}")
        if tricks.active():
            log(f"Bag of Tricks: {', '.join(f'{k}={getattr(tricks, k)}' for k in tricks.active())}")
    if comm.size > 1:
        log(f"data parallel: {comm.describe()}; {comm.size} ranks x batch {args.batch_size} = {batch} "
            f"images per step; rank 0 writes {args.out}")
    summary = trainer.fit()
    if hasattr(net, "bytes_per_step"):
        summary["tower_bytes_per_step"] = dict(net.bytes_per_step())   # measured on the last step
    summary["setup_s"] = time.perf_counter() - t0 - (summary["wall_s"] - trainer.wall)
    return summary


def check_labels(y, num_classes, split):
    """Raise ValueError naming the first label outside [0, num_classes) (host labels, checked once)."""
    y = np.asarray(y)
    bad = y[(y < 0) | (y >= num_classes)]
    if bad.size:
        raise ValueError(f"{split} label {int(bad[0])} out of range, expected 0 <= label < {num_classes}")


def describe_kernels(paths):
    """One log line: which layers run which path, e.g. "kernels: numba: relu1, lrn1, ...; reference: fc6"."""
    groups = {}
    for name, path in paths.items():
        groups.setdefault(path, []).append(name)
    return "kernels (MINIALEX_KERNELS): " + "; ".join(f"{p}: {', '.join(n)}" for p, n in groups.items())


def _silent(*args, **kwargs):
    """The log of ranks other than 0 (rank 0 speaks for the job)."""


def merge_resume_args(args, path, ranks=None):
    """The checkpoint's options, with the few that a resumed run may change taken from ``args``.

    ``ranks``: the number of ranks of this run; the global batch stays the
    checkpoint's and the per-rank ``batch_size`` is the global batch / ranks
    (``split_resumed_batch``). None where the ranks are not known yet (the
    command line checks the options before it starts them); ``run`` splits then.

    Raises CheckpointError for a file that is corrupt or not a checkpoint, and
    UserError when ``args.explicit`` names an option whose value differs from the run's.
    """
    from .checkpoint import read_checkpoint

    extra = read_checkpoint(path)["extra"] or {}       # CheckpointError names the file and the fault
    if not isinstance(extra.get("args"), dict):
        raise UserError(f"--resume {path}: not a checkpoint written by minialex.train (no run options in it)")
    saved = dict(extra["args"])
    conflicts = [k for k in args.explicit if k not in RESUMABLE + ("batch_size",) and k in saved
                 and _jsonable(getattr(args, k)) != saved[k]]
    if conflicts:
        raise UserError(f"--resume continues the run in {path} with its own options; "
                        f"{', '.join('--' + k.replace('_', '-') for k in conflicts)} differ from it "
                        f"({', '.join(f'{saved[k]!r} in the run' for k in conflicts)}; only --epochs and "
                        "--max-steps may change; --overwrite starts a new run instead)")
    for k in RESUMABLE:
        if k in args.explicit or k in ("resume", "max_steps"):   # --max-steps applies to this call only
            saved[k] = getattr(args, k)
    saved.setdefault("out", args.out)
    saved.setdefault("comm_timeout", getattr(args, "comm_timeout", 300.0))
    ns = argparse.Namespace(**saved)
    ns.explicit, ns.merged, ns.overwrite = args.explicit, True, False
    ns.asked_batch_size = args.batch_size if "batch_size" in args.explicit else None
    ns.saved_ranks = saved.get("ranks", 1)
    ns.pool = tuple(ns.pool) if ns.pool else None
    ns.drop_conv = tuple(ns.drop_conv)
    if ranks is not None:
        split_resumed_batch(ns, ranks, path)
    return ns


def split_resumed_batch(args, ranks, path):
    """The per-rank batch of a resumed run: the checkpoint's global batch over this run's ``ranks``.

    --batch-size is per rank, so one given with --resume is compared as a
    global batch. Raises UserError when it differs or the batch does not split.
    """
    batch = args.batch_size * args.saved_ranks          # the global batch of the saved run
    if args.asked_batch_size is not None and args.asked_batch_size * ranks != batch:
        raise UserError(f"--resume continues the run in {path} with its own options; --batch-size differ from it "
                        f"(a global batch of {batch} in the run, {args.asked_batch_size} x {ranks} rank(s) asked; "
                        "only --epochs and --max-steps may change)")
    if batch % ranks:
        raise UserError(f"--resume {path}: the run's batch of {batch} images does not split over {ranks} ranks; "
                        "resume with a number of ranks that divides it")
    args.batch_size, args.ranks, args.saved_ranks = batch // ranks, ranks, ranks


def _jsonable(v):
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    return v
