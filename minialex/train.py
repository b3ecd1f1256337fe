"""python -m minialex.train: train AlexNet (Sec. 5) and write a run directory.

With no arguments it trains the CIFAR-sized net on the CIFAR-10 subset that
ships inside the package, on the CPU, in a few minutes (figures in README).

    python -m minialex.train                                  # the default run
    python -m minialex.train --config paper --data DIR --epochs 90 --schedule plateau
    python -m minialex.train --out runs/x --resume            # continue an interrupted run
    mpiexec -n 2 python -m minialex.train --batch-size 32     # data parallel: 2 ranks x 32 = batch 64

A run directory (``--out``) holds ``checkpoint.npz`` (written every epoch,
on Ctrl-C/SIGTERM and at --max-steps), ``metrics.csv`` (one row per epoch)
and ``curves.png``. A command line over ``minialex.experiment`` (``run``: data,
model, optimizer) and ``minialex.trainer`` (the loop and exact resume).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .data.datasets import check_data_folder
from .distributed.comm import EXIT_COMM, CommError, format_bytes
from .errors import OneLineParser, UserError, describe, int_at_least, positive_int, run_cli
from .precision import working_dtype
from .experiment import (CONFIG_DEFAULTS, SCHEDULES, check_out, check_shapes, make_comm, merge_resume_args,
                         model_config, resume_path, run)
from .trainer import Diverged

DESCRIPTION = __doc__.split("\n\n")[0] + """

Paper sections: architecture Sec. 3 (ablation switches below), data Sec. 2 and
4.1, optimisation Sec. 5 (batch 128, momentum 0.9, weight decay 0.0005, lr 0.01
divided by 10 when validation error stops improving), evaluation Sec. 6
(top-1/top-5 error; python -m minialex.evaluate for ten-crop and ensembles).
"""

EPILOG = """\
data (--data):
  default    the bundled CIFAR-10 subset: 10,000 training images (1,000 per class)
             and 2,000 test images (200 per class), JPEG quality 75; no download.
  cifar10    the official CIFAR-10 (python pickle batches) in --data-root, md5-verified,
             fetched with --download; falls back to ../shared/data/cifar10-jpg.
  PATH       a folder with train/ and val/ (or test/) subfolders, each either a prepared
             set (python -m minialex.data prepare, Sec. 2) or an image folder
             (PATH/train/<class>/*.jpg); image folders are decoded into memory, rescaled
             to a short side of 256 and centre-cropped to 256 for --config paper (Sec. 2).

The validation column of metrics.csv is computed on the val/ (or test/) split. For
--data default and cifar10 that is the test split, so do not pick hyper-parameters on it;
the default run's schedule (cosine) does not look at it.

files in --out: checkpoint.npz (atomic; every epoch, at --max-steps, on Ctrl-C/SIGTERM),
metrics.csv (per epoch: lr, train loss, train/val top-1/top-5 error, images/s), curves.png.
A folder that already holds a run is never replaced silently: --resume continues it,
--overwrite starts again in it.

errors: one line on stderr and exit code 2 for bad input (1 out of memory, 3 diverged,
130 interrupted); --debug (or MINIALEX_DEBUG=1) shows the full traceback instead.

data parallel (docs/distributed.md): mpiexec -n N python -m minialex.train ... runs N ranks
(pip install -e ".[mpi]"). --batch-size is per rank: each rank takes its part of every global
batch of N x --batch-size images, the same images and crops one process would see with that
batch; gradients are averaged over the ranks before each SGD step (--lr is the global batch's).
Rank 0 writes --out. With --backend cupy each rank uses the GPU its local rank names (NCCL), and
--gpus 0,1 gives each rank two GPUs for the two towers (local rank l: GPUs 2l and 2l+1).
"""


# ---------------------------------------------------------------- arguments
def _float_in(name, lo, hi, lo_open=False, hi_open=False):
    """A finite float in the interval (inf and nan are refused even where hi is inf)."""
    def parse(s):
        try:
            v = float(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a number, got {s!r}") from None
        ok = (v > lo if lo_open else v >= lo) and (v < hi if hi_open else v <= hi)
        if not ok or v != v or v in (float("inf"), float("-inf")):
            lb, hb = "(" if lo_open else "[", ")" if hi_open or hi == float("inf") else "]"
            raise argparse.ArgumentTypeError(f"{name} must be in {lb}{lo}, {hi}{hb}, got {s}")
        return v
    return parse


def _pool(s):
    try:
        z, st = (int(v) for v in s.split("/"))
        if z < 1 or st < 1:
            raise ValueError
    except ValueError:
        raise argparse.ArgumentTypeError(f"--pool must be WINDOW/STRIDE like 3/2 or 2/2, got {s!r}") from None
    return z, st


def _drop_conv(s):
    try:
        layers = tuple(int(v) for v in s.split(",") if v)
    except ValueError:
        layers = None
    if not layers or any(v not in (2, 3, 4) for v in layers):
        raise argparse.ArgumentTypeError(f"--drop-conv takes conv layers from 2, 3, 4 (e.g. 3 or 2,4), "
                                         f"got {s!r}")
    return layers


def build_parser():
    inf = float("inf")
    p = OneLineParser(prog="python -m minialex.train", description=DESCRIPTION, epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    g = p.add_argument_group("run")
    g.add_argument("--backend", choices=("numpy", "cupy"), default="numpy",
                   help="array library: numpy on the CPU (default) or cupy on a CUDA GPU (Sec. 3.2 used GPUs)")
    g.add_argument("--gpus", default=None,
                   help="with --backend cupy: place the two towers (Sec. 3.2) on these CUDA devices: "
                        "0,1 puts tower 0 on GPU 0 and tower 1 on GPU 1; 0 runs both towers on GPU 0. "
                        "The log reports the bytes that cross between the towers per step")
    g.add_argument("--cuda-graphs", action="store_true",
                   help="with --backend cupy: capture the training step (forward, backward, SGD) as a CUDA "
                        "graph once per batch shape and learning rate and replay it (fewer kernel launches "
                        "from Python; fp32/tf32, no tricks, one GPU; docs/gpu.md)")
    g.add_argument("--config", choices=tuple(CONFIG_DEFAULTS), default="cifar",
                   help="network: paper = Sec. 3.5 exactly (224x224 input, 60,965,224 parameters); "
                        "cifar = the same structure for 32x32 CIFAR-10 (default); cifar-wide = cifar with twice "
                        "the kernels and FC units (python -m minialex.reproduce cifar-best); tiny = a toy net for tests")
    g.add_argument("--data", default="default",
                   help="default | cifar10 | PATH (see 'data' below; default: the bundled CIFAR-10 subset)")
    g.add_argument("--data-root", default="data",
                   help="with --data cifar10: folder for the official archive (default ./data)")
    g.add_argument("--download", action="store_true", help="with --data cifar10: download it if missing")
    g.add_argument("--limit", type=positive_int("--limit"), default=None,
                   help="use a random subset of N training and N validation images (quick tests)")
    g.add_argument("--seed", type=int_at_least("--seed", 0), default=0,
                   help="seeds the initial weights, dropout masks, batch order and augmentation (default 0)")
    g.add_argument("--out", default="runs/default",
                   help="run directory for checkpoint.npz, metrics.csv, curves.png (default runs/default)")
    g.add_argument("--resume", nargs="?", const="auto", default=None, metavar="CKPT",
                   help="continue from CKPT (default: OUT/checkpoint.npz) exactly where it stopped; the "
                        "run's other options come from the checkpoint, except --epochs and --max-steps")
    g.add_argument("--overwrite", action="store_true",
                   help="start a new run in an --out that already holds one, replacing its checkpoint and "
                        "metrics (without it, such an --out is refused; --resume continues it)")
    g.add_argument("--debug", action="store_true",
                   help="on an error, show the full Python traceback (also: MINIALEX_DEBUG=1)")
    g.add_argument("--max-steps", type=positive_int("--max-steps"), default=None,
                   help="stop after this many SGD steps in total (a checkpoint is written)")
    g.add_argument("--loader-workers", type=positive_int("--loader-workers"), default=1,
                   help="threads that prepare batches while the net trains (Sec. 4.1; same batches for any "
                        "number); more keep a GPU fed, see benchmarks/RESULTS.md (default 1)")
    g.add_argument("--quiet", action="store_true", help="no progress bar (epoch lines and summary stay)")
    g.add_argument("--no-plot", action="store_true", help="do not draw curves.png")
    g.add_argument("--comm-timeout", type=_float_in("--comm-timeout", 0, inf, lo_open=True), default=300.0,
                   metavar="SECONDS",
                   help="under mpiexec: end the job with an error when a rank waits longer than this for "
                        "the others in one collective (a rank died or hangs; default 300)")

    o = p.add_argument_group("optimisation (Sec. 5)")
    o.add_argument("--epochs", type=positive_int("--epochs"), default=None,
                   help="passes over the training set (paper: about 90; cifar default: "
                        f"{CONFIG_DEFAULTS['cifar']['epochs']})")
    o.add_argument("--batch-size", type=positive_int("--batch-size"), default=None,
                   help="images per SGD step (Sec. 5: 128; cifar default: "
                        f"{CONFIG_DEFAULTS['cifar']['batch_size']}, more steps in a short run); under "
                        "mpiexec -n N, per rank: a step's batch is N times this")
    o.add_argument("--lr", type=_float_in("--lr", 0, inf, lo_open=True), default=None,
                   help="initial learning rate eps (Sec. 5: 0.01; cifar default: "
                        f"{CONFIG_DEFAULTS['cifar']['lr']})")
    o.add_argument("--momentum", type=_float_in("--momentum", 0, 1, hi_open=True), default=0.9,
                   help="momentum (Sec. 5: 0.9)")
    o.add_argument("--weight-decay", type=_float_in("--weight-decay", 0, inf), default=0.0005,
                   help="weight decay (Sec. 5: 0.0005)")
    o.add_argument("--schedule", choices=SCHEDULES, default=None,
                   help="plateau = Sec. 5: divide lr by 10 when validation top-1 error stops improving "
                        "(--patience epochs); step = divide by 10 every --step-epochs; cosine = decay to 0 "
                        "over the run (not in the paper; the cifar default); constant")
    o.add_argument("--patience", type=positive_int("--patience"), default=2,
                   help="plateau: epochs without improvement before dividing lr by 10 (default 2)")
    o.add_argument("--step-epochs", type=positive_int("--step-epochs"), default=30,
                   help="step: epochs between divisions by 10 (default 30, i.e. three in 90 epochs)")

    a = p.add_argument_group("data augmentation (Sec. 4.1)")
    a.add_argument("--pad", type=int, default=None,
                   help="zero padding before the random crop (cifar: 4, so crops move by up to 4 pixels; "
                        "paper: 0, 224 crops of 256 images)")
    a.add_argument("--input-scale", type=_float_in("--input-scale", 0, inf, lo_open=True), default=None,
                   help="multiply the mean-subtracted pixels by this. paper: 1, the raw centred RGB values "
                        "of Sec. 2 (its N(0, 0.01^2) init expects them); cifar: 1/64, about 1/(pixel std), "
                        "so that the He-style init sees unit-variance inputs (with raw values it first "
                        "overshoots, then stalls at chance)")
    a.add_argument("--no-flip", action="store_true", help="no horizontal reflections")
    a.add_argument("--pca-color", choices=("on", "off"), default=None,
                   help="PCA colour augmentation (Sec. 4.1; default on for paper, off for cifar)")

    m = p.add_argument_group("architecture ablations (Sec. 3, 4.2, 7)")
    m.add_argument("--no-lrn", action="store_true", help="no local response normalisation (Sec. 3.3)")
    m.add_argument("--lrn-per-tower", action="store_true",
                   help="each tower normalises only its own maps, as the paper's two-GPU code did "
                        "(Sec. 3.2, 3.3; default: the Sec. 3.3 formula over all maps, docs/deviations.md 18)")
    m.add_argument("--pool", type=_pool, default=None, metavar="Z/S",
                   help="max-pool window/stride: 3/2 overlapping (default, Sec. 3.4) or 2/2")
    m.add_argument("--activation", choices=("relu", "tanh"), default="relu",
                   help="nonlinearity (Sec. 3.1: relu; tanh for Figure 1's comparison)")
    m.add_argument("--dropout", type=_float_in("--dropout", 0, 1, hi_open=True), default=None,
                   help="dropout probability in fc6/fc7 (Sec. 4.2: 0.5; 0 disables; cifar default: "
                        f"{CONFIG_DEFAULTS['cifar']['dropout']}: dropout roughly doubles the iterations "
                        "needed (Sec. 4.2), which a run of minutes does not have)")
    m.add_argument("--dropout-mode", choices=("paper", "inverted"), default=None,
                   help="paper: scale outputs by 1-p at test time (Sec. 4.2); inverted: by 1/(1-p) in training")
    m.add_argument("--towers", type=int, choices=(1, 2), default=2,
                   help="2 = the two-GPU net with grouped conv2/4/5 (Sec. 3.2); 1 = one tower, half the kernels")
    m.add_argument("--init", choices=("paper", "scaled"), default=None,
                   help="paper: N(0, 0.01^2) weights, biases 1 in conv2/4/5, fc6/7 (Sec. 5); scaled: "
                        "He-style (the cifar config's default, see minialex.model)")
    m.add_argument("--drop-conv", type=_drop_conv, default=(), metavar="L[,L]",
                   help="remove middle conv layer(s) 2, 3 or 4 (Sec. 7: depth matters)")

    t = p.add_argument_group("Bag of Tricks (He et al. 2019, beyond the paper; docs/tricks.md)")
    t.add_argument("--lr-scaling", choices=("none", "linear"), default="none",
                   help="linear: the initial lr is --lr * batch / 256, so --lr is the lr of a 256-image "
                        "batch (BoT Sec. 3.1)")
    t.add_argument("--warmup", type=_float_in("--warmup", 0, inf), default=0.0, metavar="EPOCHS",
                   help="linear learning-rate warm-up over this many epochs, step by step from lr/W to lr "
                        "(BoT Sec. 3.1: 5 of 120 epochs); default 0, none")
    t.add_argument("--no-bias-decay", action="store_true",
                   help="weight decay on weights only, not on biases (BoT Sec. 3.1; Sec. 5 decays all)")
    t.add_argument("--precision", choices=("fp32", "tf32", "fp16", "bf16"), default="fp32",
                   help="fp16: float16 activations and gradients, float32 master weights, dynamic loss "
                        "scaling, overflowed steps skipped and counted (BoT Sec. 3.2); bf16: the same in "
                        "bfloat16 (needs ml_dtypes); tf32: float32 arrays, matrix products on TF32 tensor cores "
                        "(--backend cupy only). On numpy fp16/bf16 run the readable layers, about 100x slower: "
                        "a correctness check, not a speed-up (docs/gpu.md)")
    t.add_argument("--label-smoothing", type=_float_in("--label-smoothing", 0, 1, hi_open=True), default=0.0,
                   metavar="EPS", help="targets 1-EPS for the true class, EPS/(K-1) for the others "
                                       "(BoT Sec. 5.2: 0.1); default 0")
    t.add_argument("--mixup", type=_float_in("--mixup", 0, inf, lo_open=True), default=None, metavar="ALPHA",
                   help="mixup: train on lam*x_i + (1-lam)*x_j with targets mixed alike, "
                        "lam ~ Beta(ALPHA, ALPHA) (BoT Sec. 5.4: 0.2)")
    t.add_argument("--distill", default=None, metavar="TEACHER.npz",
                   help="knowledge distillation from a trained minialex checkpoint with the same classes and "
                        "inputs (BoT Sec. 5.3)")
    t.add_argument("--distill-t", type=_float_in("--distill-t", 0, inf, lo_open=True), default=None, metavar="T",
                   help="distillation temperature (BoT Sec. 5.3: 20, the default)")
    return p


def parse_args(argv=None):
    """Parse and validate; every error is reported before any work starts (data loading included).

    With --resume the checkpoint is read (and checked) here, and its options
    replace the defaults, so the checks below see the run as it will continue.
    """
    p = build_parser()
    args = p.parse_args(argv)
    explicit = _explicit(p, argv)
    args.explicit = sorted(explicit)
    if args.resume is not None and args.overwrite:
        p.error("--resume continues the run in --out, --overwrite replaces it: pass only one")
    if args.resume not in (None, "auto") and not Path(args.resume).is_file():
        p.error(f"--resume {args.resume}: no such checkpoint file")
    if args.resume == "auto" and not (Path(args.out) / "checkpoint.npz").is_file():
        p.error(f"--resume: no checkpoint at {Path(args.out) / 'checkpoint.npz'}; pass --out of the run to "
                "continue or --resume CKPT")
    if args.resume is not None:
        try:
            args = merge_resume_args(args, resume_path(args))
        except UserError as e:                    # CheckpointError too: a corrupt or foreign file
            p.error(str(e))
        for k, v in vars(p.parse_args([])).items():   # options added since the checkpoint was written
            if not hasattr(args, k):
                setattr(args, k, v)
    defaults = CONFIG_DEFAULTS[args.config]
    for k, v in defaults.items():
        if getattr(args, k, None) is None:
            setattr(args, k, v)
    args.pca_color = args.pca_color in (True, "on")
    if args.pad < 0:
        p.error(f"--pad must be >= 0, got {args.pad}")
    if args.gpus is not None and args.backend != "cupy":
        p.error(f"--gpus {args.gpus} needs --backend cupy (the numpy backend runs on the CPU)")
    if args.data not in ("default", "cifar10"):
        try:
            check_data_folder(args.data, need_train=True)
        except UserError as e:
            p.error(str(e))
    if args.distill_t is not None and args.distill is None:
        p.error(f"--distill-t {args.distill_t} needs --distill TEACHER.npz")
    if args.distill is not None and not Path(args.distill).is_file():
        p.error(f"--distill {args.distill}: no such checkpoint file")
    if args.warmup and args.warmup >= args.epochs and args.resume is None:
        p.error(f"--warmup {args.warmup:g} epochs must be shorter than the run (--epochs {args.epochs})")
    if args.precision in ("fp16", "bf16") and args.gpus is not None:
        p.error(f"--precision {args.precision} with --gpus (two towers on two devices) is not supported yet")
    if getattr(args, "cuda_graphs", False):
        on = [o for o, v in (("--precision " + args.precision, args.precision in ("fp16", "bf16")),
                             ("--gpus", args.gpus is not None), ("--warmup", bool(args.warmup)),
                             ("--label-smoothing", bool(args.label_smoothing)), ("--mixup", bool(args.mixup)),
                             ("--distill", args.distill is not None), ("--lr-scaling linear", args.lr_scaling != "none"),
                             ("--no-bias-decay", args.no_bias_decay)) if v]
        if args.backend != "cupy":
            p.error("--cuda-graphs needs --backend cupy (CUDA graphs replay GPU kernels)")
        if on:
            p.error(f"--cuda-graphs captures the paper's plain step (fp32 or tf32, one GPU); not with {', '.join(on)}")
    if args.precision == "tf32" and args.backend != "cupy":
        p.error("--precision tf32 needs --backend cupy: TF32 is a tensor-core mode of NVIDIA GPUs; on the CPU "
                "use fp32")
    if args.precision == "bf16":
        try:
            working_dtype("bfloat16")
        except ValueError as e:
            p.error(str(e))
    if args.config == "paper" and args.data in ("default", "cifar10"):
        p.error(f"--config paper takes 224x224 crops of 256x256 images (Sec. 2, 4.1), but --data {args.data} "
                "is 32x32 CIFAR-10; use --config cifar, or --data PATH with ImageNet-style images")
    try:
        check_shapes(model_config(args))          # the config's own checks (sizes, towers, pools, ...)
    except ValueError as e:
        p.error(str(e))
    try:
        check_out(args.out, resume=args.resume is not None, overwrite=args.overwrite)
    except UserError as e:
        p.error(str(e))
    if args.backend == "cupy":
        from .backend import get_backend
        try:
            get_backend("cupy")
        except RuntimeError as e:
            p.error(str(e))
        if args.gpus is not None:
            from .towers import parse_gpus
            try:
                parse_gpus(args.gpus, args.backend)   # ids exist: else names the id and the device count
            except (ValueError, RuntimeError) as e:
                p.error(str(e))
            if model_config(args).towers != 2:
                p.error(f"--gpus {args.gpus} places the two towers of Sec. 3.2; the model has towers=1")
    return args


def _explicit(parser, argv):
    """Destinations of the options given on the command line (not defaults)."""
    sub = argparse.ArgumentParser(add_help=False)
    for action in parser._actions:
        if action.option_strings and action.dest != "help":
            kw = dict(dest=action.dest, default=argparse.SUPPRESS)
            if action.nargs == 0:
                kw["action"] = "store_true"
            else:
                kw["nargs"] = action.nargs
            sub.add_argument(*action.option_strings, **kw)
    ns, _ = sub.parse_known_args(argv)
    return set(vars(ns))


def main(argv=None):
    """The command line; every error is one line on stderr and an exit code (minialex.errors)."""
    return run_cli(_main, argv)


def _main(argv=None):
    args = parse_args(argv)
    try:
        comm = make_comm(args)                  # one process, or the ranks of mpiexec -n N
    except CommError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_COMM
    try:
        s = run(args, comm=comm)
    except Diverged as e:
        if comm.rank == 0:                      # every rank stops at the same step; one reports
            print(f"error: training diverged: {e}", file=sys.stderr)
            print(f"the last good checkpoint is kept in {args.out}; lower --lr and start again", file=sys.stderr)
        return 3
    except SystemExit as e:                     # an option error found by every rank: rank 0 reports it
        if comm.rank == 0:
            raise
        return e.code if isinstance(e.code, int) else 2
    except BaseException as e:                  # an error every rank meets: rank 0 reports it (run_cli)
        if comm.rank == 0:
            raise
        return describe(e)[1]
    finally:
        comm.close()
    if comm.rank == 0:
        print_summary(s)
    return 0 if s["stopped"] in ("done", "max_steps") else 130


def print_summary(s):
    from .trainer import position_text

    print("-" * 60)
    where = position_text(s["step"], s["epoch"], s.get("batch", 0), s.get("steps_per_epoch", 0))
    name = s.get("val_name", "val")
    if s["stopped"] != "done" and "val_top1" in s:
        print(f"stopped at {where} ({s['stopped']}); the figures below are from the last completed epoch")
    if "val_top1" in s:
        k = s.get("num_classes")
        top5 = (f"top-5 n/a ({k} classes)" if k is not None and k <= 5 else f"top-5 {100 * s['val_top5']:.2f}%")
        print(f"summary after epoch {s['last_epoch']} (step {s['last_epoch_step']}):")
        print(f"  train top-1 error  {100 * s['train_top1']:.2f}%  (running average over the last "
              "epoch's augmented training batches, training mode)")
        print(f"  {name:5} top-1 error  {100 * s['val_top1']:.2f}%  {top5}  "
              f"(centre crop; {name} accuracy {100 * (1 - s['val_top1']):.2f}%)")
    else:
        print(f"stopped at {where} before the first epoch ended: no metrics yet")
    print(f"  wall time          {s['wall_s']:.1f} s training + evaluation, {s['setup_s']:.1f} s set-up")
    if s.get("ranks", 1) > 1:
        print(f"  data parallel      {s['ranks']} ranks; {format_bytes(s['allreduce_bytes_per_step'])} of "
              "gradients all-reduced per step")


if __name__ == "__main__":
    sys.exit(main())
