"""python -m minialex.train: train AlexNet (Sec. 5) and write a run directory.

With no arguments it trains the CIFAR-sized net on the CIFAR-10 subset that
ships inside the package, on the CPU, in a few minutes (figures in README).

    python -m minialex.train                                  # the default run
    python -m minialex.train --config paper --data DIR --epochs 90 --schedule plateau
    python -m minialex.train --out runs/x --resume            # continue an interrupted run

A run directory (``--out``) holds ``checkpoint.npz`` (written every epoch,
on Ctrl-C/SIGTERM and at --max-steps), ``metrics.csv`` (one row per epoch)
and ``curves.png``. See ``minialex.trainer`` for the loop and exact resume.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import DataError, OneLineParser, RunExistsError, UserError, run_cli

# Per-config defaults for options whose best value depends on the net. The
# "paper" column is Sec. 5; the "cifar" column is the embedded default run,
# tuned to finish in a few minutes on two CPU cores (README states its figures).
CONFIG_DEFAULTS = {
    "paper": dict(epochs=90, batch_size=128, lr=0.01, schedule="plateau", dropout=0.5, pad=0,
                  pca_color=True, dropout_mode="paper", input_scale=1.0),
    "cifar": dict(epochs=8, batch_size=64, lr=0.01, schedule="cosine", dropout=0.0, pad=4,
                  pca_color=False, dropout_mode="paper", input_scale=1 / 64),
    "tiny": dict(epochs=2, batch_size=128, lr=0.01, schedule="constant", dropout=0.5, pad=1,
                 pca_color=False, dropout_mode="paper", input_scale=1 / 64),
}
SCHEDULES = ("plateau", "step", "cosine", "constant")

# Options a resumed run may change; every other option comes from the checkpoint.
RESUMABLE = ("epochs", "max_steps", "quiet", "no_plot", "resume", "out", "debug")

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
"""


# ---------------------------------------------------------------- arguments
def _positive_int(name):
    def parse(s):
        try:
            v = int(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a positive integer, got {s!r}") from None
        if v < 1:
            raise argparse.ArgumentTypeError(f"{name} must be a positive integer, got {v}")
        return v
    return parse


def _nonnegative_int(name):
    def parse(s):
        try:
            v = int(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be an integer >= 0, got {s!r}") from None
        if v < 0:
            raise argparse.ArgumentTypeError(f"{name} must be an integer >= 0, got {v}")
        return v
    return parse


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
    g.add_argument("--config", choices=tuple(CONFIG_DEFAULTS), default="cifar",
                   help="network: paper = Sec. 3.5 exactly (224x224 input, 60,965,224 parameters); "
                        "cifar = the same structure for 32x32 CIFAR-10 (default); tiny = a toy net for tests")
    g.add_argument("--data", default="default",
                   help="default | cifar10 | PATH (see 'data' below; default: the bundled CIFAR-10 subset)")
    g.add_argument("--data-root", default="data",
                   help="with --data cifar10: folder for the official archive (default ./data)")
    g.add_argument("--download", action="store_true", help="with --data cifar10: download it if missing")
    g.add_argument("--limit", type=_positive_int("--limit"), default=None,
                   help="use a random subset of N training and N validation images (quick tests)")
    g.add_argument("--seed", type=_nonnegative_int("--seed"), default=0,
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
    g.add_argument("--max-steps", type=_positive_int("--max-steps"), default=None,
                   help="stop after this many SGD steps in total (a checkpoint is written)")
    g.add_argument("--quiet", action="store_true", help="no progress bar (epoch lines and summary stay)")
    g.add_argument("--no-plot", action="store_true", help="do not draw curves.png")

    o = p.add_argument_group("optimisation (Sec. 5)")
    o.add_argument("--epochs", type=_positive_int("--epochs"), default=None,
                   help="passes over the training set (paper: about 90; cifar default: "
                        f"{CONFIG_DEFAULTS['cifar']['epochs']})")
    o.add_argument("--batch-size", type=_positive_int("--batch-size"), default=None,
                   help="images per SGD step (Sec. 5: 128; cifar default: "
                        f"{CONFIG_DEFAULTS['cifar']['batch_size']}, more steps in a short run)")
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
    o.add_argument("--patience", type=_positive_int("--patience"), default=2,
                   help="plateau: epochs without improvement before dividing lr by 10 (default 2)")
    o.add_argument("--step-epochs", type=_positive_int("--step-epochs"), default=30,
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
        args = _merge_resume_args(args, _resume_path(args), p)
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
        except DataError as e:
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


def _resume_path(args):
    from .trainer import CHECKPOINT

    return Path(args.out) / CHECKPOINT if args.resume == "auto" else Path(args.resume)


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


def check_data_folder(spec, need_train=True):
    """Raise DataError unless ``spec`` is a folder with train/ (if needed) and val/ or test/."""
    root = Path(spec)
    if not root.exists():
        raise DataError(f"--data {spec!r}: no such folder; expected default, cifar10 or a folder with train/ "
                        "and val/ (or test/)")
    if not root.is_dir():
        raise DataError(f"--data {spec!r} is a file; expected default, cifar10 or a folder with train/ and "
                        "val/ (or test/)")
    missing = ([] if (root / "train").is_dir() or not need_train else ["train/"]) + \
        ([] if (root / "val").is_dir() or (root / "test").is_dir() else ["val/ (or test/)"])
    if missing:
        raise DataError(f"--data {spec}: no {' and no '.join(missing)} in it; expected {root}/train/ and "
                        f"{root}/val/ (or {root}/test/), each an image folder or a prepared set")


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
    return getattr(AlexNetConfig, args.config)(**over)


# ---------------------------------------------------------------- data
@dataclass
class Dataset:
    """Training and held-out images for a run (uint8 NCHW, arrays or memmaps)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple
    name: str
    mean: np.ndarray = None        # (3, S, S) training mean image (Sec. 2); computed when None
    pca: tuple = None              # (eigvals, eigvecs) of the training RGB covariance (Sec. 4.1)
    held_name: str = "test"        # what the held-out split is: "val" or "test" (the log says so)


def load_dataset(spec, image_size=32, data_root="data", download=False, seed=0):
    """Resolve --data into a Dataset.

    image_size: the stored size for image folders (256 for the paper net,
    Sec. 2; 32 for CIFAR-sized nets, where no rescale happens).
    """
    from . import data as D

    if spec == "default":
        d = D.load_default()
        return Dataset(d.x_train, d.y_train, d.x_test, d.y_test, tuple(d.class_names), "bundled CIFAR-10 subset")
    if spec == "cifar10":
        from .data.cifar10 import CIFAR10NotFound

        root = Path(data_root)
        try:
            xtr, ytr, xte, yte, classes = D.load_cifar10(root, download=download)
            return Dataset(xtr, ytr, xte, yte, tuple(classes), f"CIFAR-10 ({root})")
        except CIFAR10NotFound:                     # absent: the JPEG copy; corrupt or forged: an error
            jpg = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "cifar10-jpg"
            if not jpg.is_dir():
                raise
            print(f"no official CIFAR-10 in {root}; using the JPEG copy {jpg}", file=sys.stderr)
            xtr, ytr, xte, yte, classes = D.load_cifar10_jpg(jpg, progress=True)
            return Dataset(xtr, ytr, xte, yte, tuple(classes), f"CIFAR-10 JPEG copy ({jpg})")
    root = Path(spec)
    check_data_folder(spec)
    held = next(root / s for s in ("val", "test") if (root / s).is_dir())
    if (root / "train" / "meta.json").is_file():
        tr, te = D.open_prepared(root / "train"), D.open_prepared(held)
        names = tuple(tr.names)
        return Dataset(tr.images, tr.labels, te.images, te.labels, names, f"prepared {root}", tr.mean, tr.pca,
                       held_name=held.name)
    big = image_size > 64
    kw = dict(short_side=image_size, crop=image_size) if big else {}
    xtr, ytr, folder = D.load_image_folder(root / "train", progress=True, **kw)
    xte, yte, folder_te = D.load_image_folder(held, progress=True, **kw)
    if folder.classes != folder_te.classes:
        raise DataError(f"--data {spec}: classes of train/ and {held.name}/ differ "
                        f"({len(folder.classes)} and {len(folder_te.classes)} class folders)")
    return Dataset(xtr, ytr, xte, yte, tuple(folder.names), f"image folder {root}", held_name=held.name)


def subset(x, y, n, seed):
    """A seeded random subset of n items (all when n >= len), in sorted index order."""
    if n is None or n >= len(y):
        return x, y
    idx = np.sort(np.random.default_rng([seed, 12345]).choice(len(y), size=n, replace=False))
    return x[idx], y[idx]


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
def build_optimizer(model, args):
    """SGD (Sec. 5) and the learning-rate schedule chosen by --schedule."""
    from . import optim, schedules

    opt = optim.SGD(model, lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay)
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
def run(args, log=print):
    """Train as ``args`` say; returns the summary dict."""
    from .backend import get_backend
    from .data import BatchLoader, EvalTransform, TrainTransform
    from .model import AlexNet
    from .trainer import Trainer, position_text

    resume_path = _resume_path(args) if args.resume is not None else None
    if resume_path is not None and not getattr(args, "merged", False):
        args = _merge_resume_args(args, resume_path)
    check_out(args.out, resume=resume_path is not None, overwrite=getattr(args, "overwrite", False))
    xp = get_backend(args.backend)
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
    prep, mean = preprocessing(args, cfg, data)
    model = AlexNet(cfg)
    net = model                                     # what trains: the model, or its two towers
    if args.gpus is not None:                       # Sec. 3.2: tower 0 on one GPU, tower 1 on another
        from .towers import TwoTowerAlexNet, parse_gpus, transfer_plan
        net = TwoTowerAlexNet(model, devices=parse_gpus(args.gpus, args.backend), xp=xp)
        plan = transfer_plan(model, args.batch_size)
        log(f"two towers on CUDA devices {net.devices}: {plan['between_towers'] / 2**20:.1f} MiB cross "
            f"between the towers per step (conv3 {plan['conv'] / 2**20:.1f}, fc6/fc7 {plan['fc'] / 2**20:.1f}, "
            f"fc8 {plan['head'] / 2**20:.1f}, LRN halo {plan['lrn'] / 2**20:.1f} MiB; forward + backward)")
    elif xp is not np:
        model.to(xp)
    if net is model and hasattr(model.layers[0], "input_grad"):
        # Training never uses dL/d(image): conv1 skips its input gradient (on
        # the CPU the rotated-kernel convolution, on the GPU the col2im). The
        # towers keep it, as they count its bytes.
        model.layers[0].input_grad = False
    tt = Scaled(TrainTransform(mean=mean, crop=cfg.input_size, pad=args.pad, flip=not args.no_flip,
                               pca=data.pca if args.pca_color else None), args.input_scale)
    et = Scaled(EvalTransform(mean=mean, crop=cfg.input_size), args.input_scale)
    loader = BatchLoader(xtr, ytr, args.batch_size, transform=tt, seed=args.seed, xp=xp)
    args.steps_per_epoch = len(loader)
    opt, sched = build_optimizer(net, args)
    run_args = {k: v for k, v in vars(args).items() if k not in ("explicit", "merged", "overwrite", "debug")}
    prep["mean"] = mean.tolist()                    # (3, S, S) nested lists: JSON, exact for float32
    meta = {"format": "minialex-run-1", "args": _jsonable(run_args), "preprocess": prep,
            "class_names": list(data.class_names), "data": data.name}
    trainer = Trainer(net, opt, sched, loader, (xval, yval, et), args.out, args.epochs,
                      max_steps=args.max_steps, meta=meta,
                      progress=not args.quiet, plot=not args.no_plot, xp=xp, log=log,
                      val_name=data.held_name, overwrite=getattr(args, "overwrite", False))
    if resume_path is not None:
        m = trainer.restore(resume_path)
        log(f"resumed {resume_path} at {position_text(m['step'], m['epoch'], m['batch'], len(loader))}")
    else:
        if trainer.checkpoint_path.exists():
            log(f"--overwrite: starting a new run in {args.out}; its old checkpoint and metrics are replaced")
        log(f"{args.config} net, {model.num_params():,} parameters; data: {data.name}, "
            f"{len(ytr):,} train / {len(yval):,} {data.held_name} images; {args.epochs} epochs of {len(loader)} steps "
            f"(batch {args.batch_size}), lr {args.lr} ({args.schedule}), backend {args.backend}; out {args.out}")
    summary = trainer.fit()
    if net is not model:
        summary["tower_bytes_per_step"] = dict(net.bytes_per_step())   # measured on the last step
    summary["setup_s"] = time.perf_counter() - t0 - (summary["wall_s"] - trainer.wall)
    return summary


def _merge_resume_args(args, path, parser=None):
    """The checkpoint's options, with the few that a resumed run may change taken from the command line."""
    from .checkpoint import read_checkpoint

    def fail(msg):
        if parser is not None:
            parser.error(msg)
        raise UserError(msg)

    extra = read_checkpoint(path)["extra"] or {}       # CheckpointError names the file and the fault
    if not isinstance(extra.get("args"), dict):
        fail(f"--resume {path}: not a checkpoint written by minialex.train (no run options in it)")
    saved = dict(extra["args"])
    conflicts = [k for k in args.explicit if k not in RESUMABLE and k in saved
                 and _jsonable(getattr(args, k)) != saved[k]]
    if conflicts:
        fail(f"--resume continues the run in {path} with its own options; "
             f"{', '.join('--' + k.replace('_', '-') for k in conflicts)} differ from it "
             f"({', '.join(f'{saved[k]!r} in the run' for k in conflicts)}; only --epochs and --max-steps may "
             "change; --overwrite with --out starts a new run instead)")
    for k in RESUMABLE:
        if k in args.explicit or k in ("resume", "max_steps"):   # --max-steps applies to this call only
            saved[k] = getattr(args, k)
    saved.setdefault("out", args.out)
    ns = argparse.Namespace(**{**vars(build_parser().parse_args([])), **saved})  # options added since
    ns.explicit, ns.merged, ns.overwrite = args.explicit, True, False
    ns.pool = tuple(ns.pool) if ns.pool else None
    ns.drop_conv = tuple(ns.drop_conv)
    return ns


def _jsonable(v):
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    return v


def main(argv=None):
    """The command line; every error is one line on stderr and an exit code (minialex.errors)."""
    return run_cli(_main, argv)


def _main(argv=None):
    args = parse_args(argv)
    from .trainer import Diverged

    try:
        s = run(args)
    except Diverged as e:
        print(f"error: training diverged: {e}", file=sys.stderr)
        print(f"the last good checkpoint is kept in {args.out}; lower --lr and start again", file=sys.stderr)
        return 3
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


if __name__ == "__main__":
    sys.exit(main())
