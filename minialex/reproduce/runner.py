"""One training run of a reproduction: a recipe (``RunSpec``), the data splits, the trainer.

    data = load_splits(quick=False)                   # CIFAR-10: 45,000 train / 5,000 val / 10,000 test
    spec = RunSpec("relu-seed0", net="cifar", epochs=30, lr=0.02, seed=0)
    result = train_run(spec, data, out / "runs" / spec.name, resume=True)
    result["test_top1"], result["wall_s"], result["metrics"]    # None while the run is unfinished

Every run goes through ``minialex.trainer.Trainer``, as ``python -m
minialex.train`` does: checkpoint.npz after every epoch and on Ctrl-C or
SIGTERM, metrics.csv with one row per epoch, and exact resume (the loader
derives batch order and augmentation from the seed, the checkpoint holds the
rest). The validation column of metrics.csv is the held-out part of the
training images (``minialex.data.split``); the test split is read once, when
the run has finished, and its errors go to ``run.json`` beside the checkpoint.

A run directory that exists is only continued with ``resume=True`` (so a
finished or interrupted run is never overwritten by accident), and only with
the same recipe: a changed recipe raises ``ValueError`` naming the field.
"""
from __future__ import annotations

import dataclasses
import json
import os
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..backend import gpu_name
from .lock import run_lock

VAL_IMAGES = 5000          # held out from the 50,000 CIFAR-10 training images (500 per class)
QUICK_VAL_IMAGES = 300     # held out from the bundled subset's 10,000 (30 per class)
QUICK_TEST_IMAGES = 1000   # of the bundled 2,000 test images (a seeded, class-mixed sample)
RUN_FILE = "run.json"      # written when a run has finished and been tested


@dataclass(frozen=True)
class RunSpec:
    """Everything one run depends on; stored in its checkpoint and run.json.

    net: "cifar" or "cifar-wide" (``AlexNetConfig``; ``net_options`` are
    config fields such as activation, lrn, pool_kernel, dropout, drop_conv)
    or a cuda-convnet net of ``minialex.cuda_convnet`` (its options).
    """

    name: str                        # the run directory's name, e.g. "relu-lr0.02-seed0"
    net: str = "cifar"
    net_options: dict = field(default_factory=dict)
    epochs: int = 10
    batch_size: int = 128            # Sec. 5
    lr: float = 0.01                 # Sec. 5 starts at 0.01; experiments choose theirs on validation
    momentum: float = 0.9            # Sec. 5
    weight_decay: float = 5e-4       # Sec. 5
    layer_decay: dict = field(default_factory=dict)   # layer -> weight decay (SGD(layer_decay)); {} = one for all
    schedule: str = "cosine"         # cosine (to 0 over ``epochs``), constant, or step (/10 every epochs/3)
    crop: int = None                 # random crop size; None = the net's input size
    pad: int = 4                     # zero padding before the random crop (Sec. 4.1 for 32x32)
    flip: bool = True                # horizontal reflections (Sec. 4.1)
    input_scale: float = 1 / 64      # centred pixels times this (about 1 / pixel std)
    seed: int = 0                    # weights, dropout masks, batch order, augmentation
    train_limit: int = None          # use only this many training images (sweeps, --quick)
    tricks: dict = field(default_factory=dict)   # minialex.tricks.Tricks fields (Bag of Tricks); {} = none
    ten_crop: bool = False           # also test on Sec. 4.1's ten patches (cuda-convnet's --multiview-test)
    test: bool = True                # read the test split once when finished; a learning-rate sweep's runs
                                     # (context.choose_lr) do not: they are chosen on validation alone

    def to_dict(self):
        return dataclasses.asdict(self)


@dataclass
class Splits:
    """Training, validation (held out from training) and test images, uint8 NCHW."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple
    name: str                        # says where the images came from and how they were split


def find_cifar10_jpg():
    """The JPEG copy ../shared/data/cifar10-jpg beside the repository, or None."""
    root = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "cifar10-jpg"
    return root if (root / "train").is_dir() else None


def load_splits(quick=False, data=None, val_images=None, seed=0):
    """The images of an experiment, with a validation split held out from training.

    quick=False: the full CIFAR-10 (50,000 train, 10,000 test), from ``data``
    (a ``cifar-10-batches-py`` folder's parent, or a JPEG copy with
    train/<class>/ and test/<class>/), by default the JPEG copy in
    ../shared/data/cifar10-jpg. quick=True: the bundled subset (10,000 training
    images, 1,000 of its 2,000 test images).
    ``val_images`` (default 5,000, or 300 for quick) are held out, class-balanced.
    """
    from ..data import load_cifar10, load_cifar10_jpg, load_default
    from ..data.split import holdout_split

    if quick:
        d = load_default()
        xtr, ytr, xte, yte, names = d.x_train, d.y_train, d.x_test, d.y_test, d.class_names
        xte, yte = _subset(xte, yte, QUICK_TEST_IMAGES, 0)
        source = f"bundled CIFAR-10 subset (10,000 train; {QUICK_TEST_IMAGES:,} of its 2,000 test; JPEG q75)"
        n_val = val_images or QUICK_VAL_IMAGES
    else:
        root = Path(data) if data is not None else find_cifar10_jpg()
        if root is None:
            raise ValueError("no CIFAR-10 found: pass --data with the official cifar-10-batches-py "
                             "folder's parent or a JPEG copy (train/<class>/*.jpg, test/<class>/*.jpg)")
        if (root / "cifar-10-batches-py").is_dir():
            xtr, ytr, xte, yte, names = load_cifar10(root)
            source = f"CIFAR-10 ({root}, official batches)"
        elif (root / "train").is_dir() and (root / "test").is_dir():
            xtr, ytr, xte, yte, names = load_cifar10_jpg(root)
            source = f"CIFAR-10 JPEG q75 copy ({root})"
        else:
            raise ValueError(f"--data {root}: expected cifar-10-batches-py/ or train/ and test/ in it")
        n_val = val_images or VAL_IMAGES
    tr, va = holdout_split(ytr, n_val, seed=seed)
    name = (f"{source}: {len(tr):,} train / {len(va):,} validation (held out from the training "
            f"images, split seed {seed}) / {len(yte):,} test")
    return Splits(xtr[tr], ytr[tr], xtr[va], ytr[va], xte, yte, tuple(names), name)


# ---------------------------------------------------------------- nets
def build_net(spec):
    """The model a spec names: an AlexNet config or a cuda-convnet net."""
    from ..model import AlexNet, AlexNetConfig

    opts = dict(spec.net_options)
    if spec.net in ("cifar", "cifar-wide"):
        make = AlexNetConfig.cifar if spec.net == "cifar" else AlexNetConfig.cifar_wide
        return AlexNet(make(seed=spec.seed, **opts))
    from .. import cuda_convnet
    return cuda_convnet.build(spec.net, seed=spec.seed, **opts)


def transforms(spec, model, mean):
    """(train, eval) transforms: Sec. 4.1 crops and flips, then the input scale."""
    from ..data import EvalTransform, TrainTransform
    from ..evaluation import model_input_size
    from ..experiment import Scaled

    size = model_input_size(model)
    crop = spec.crop or size
    train = TrainTransform(mean=mean, crop=crop, pad=spec.pad, flip=spec.flip)
    return Scaled(train, spec.input_scale), Scaled(EvalTransform(mean=mean, crop=size), spec.input_scale)


def _subset(x, y, n, seed):
    if n is None or n >= len(y):
        return x, y
    idx = np.sort(np.random.default_rng([seed, 777]).choice(len(y), size=n, replace=False))
    return x[idx], y[idx]


def machine(xp=None):
    """One line naming the CPU (with its family and model), its cores, the thread settings of this
    process and the versions that decide the order of float sums (and the GPU on cupy).

    A numpy-backend run repeats bit for bit with the same seed and threads on the same CPU model and
    library versions; another CPU may pick other BLAS kernels (an lrn-cifar sweep re-run on a newer
    AMD EPYC differed from its first epoch on), hence the detail.
    """
    cpu, ident = platform.processor() or platform.machine(), {}
    try:
        with open("/proc/cpuinfo") as f:
            for ln in f:
                key, _, val = ln.partition(":")
                key = key.strip()
                if key in ("model name", "cpu family", "model") and key not in ident:
                    ident[key] = val.strip()
                if not ln.strip() and ident:          # the first processor's block is enough
                    break
    except OSError:
        pass
    cpu = ident.get("model name", cpu)
    if "cpu family" in ident and "model" in ident:
        cpu += f" (family {ident['cpu family']}, model {ident['model']})"
    threads = os.environ.get("NUMBA_NUM_THREADS") or os.environ.get("OPENBLAS_NUM_THREADS") or "all"
    if xp is None or xp is np:
        return (f"{cpu}, {os.cpu_count()} cores, {threads} thread(s), no GPU (numpy backend; "
                f"{_versions()})")
    return f"{gpu_name(xp)} (cupy backend), host {cpu}, {os.cpu_count()} cores"


def _versions():
    """'numpy 2.4.6, numba 0.68.1' (numba where installed)."""
    out = [f"numpy {np.__version__}"]
    try:
        import numba
        out.append(f"numba {numba.__version__}")
    except ImportError:
        pass
    return ", ".join(out)


def load_average():
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "n/a"


# ---------------------------------------------------------------- one run
def train_run(spec, data, run_dir, resume=False, extra_epochs_until=None, log=print, progress=False, xp=None):
    """Train (or continue, or read back) one run; returns its result dict.

    The dict has "spec", "status" ("done", "stopped"), "metrics" (dict of
    columns from metrics.csv, possibly partial), and for a finished run
    "test_top1", "test_top5", "wall_s", "epochs", "machine", "load_avg".

    extra_epochs_until: None, or a function of the metrics columns that
    returns True when the run may stop (Figure 1: training error <= 25%);
    the run then trains one epoch at a time up to ``spec.epochs`` (with a
    constant schedule, stopping early changes nothing that was trained).
    xp: numpy (the CPU; None means numpy) or cupy (one GPU: the net's CUDA twins,
    batches on the device). A run is reproducible bit for bit on the numpy
    backend; on a GPU, cuBLAS sums in another order than the CPU. The backend is
    not part of the spec: a run may resume on the other one (its run.json
    names the machine that finished it).
    """
    from ..metrics import read_metrics

    run_dir = Path(run_dir)
    done_file = run_dir / RUN_FILE
    if run_dir.exists() and any(run_dir.iterdir()) and not resume:
        raise ValueError(f"{run_dir} already holds a run; add --resume to continue (or reuse) it, "
                         "or choose another --out")
    if done_file.is_file():
        result = json.loads(done_file.read_text())
        _check_spec(result["spec"], spec, done_file)
        result["metrics"] = read_metrics(run_dir / "metrics.csv")
        return result
    with run_lock(run_dir, log=log):                 # one process per run (lock.py)
        return _train(spec, data, run_dir, extra_epochs_until, log, progress, xp)


def _train(spec, data, run_dir, until, log, progress, xp):
    """train_run's training part: build, restore a checkpoint if there is one, fit, test, record."""
    from ..data import BatchLoader, image_statistics
    from ..evaluation import model_input_size
    from ..metrics import read_metrics
    from ..tricks import Tricks, load_teacher
    from ..trainer import CHECKPOINT, Trainer

    xp = np if xp is None else xp
    model = build_net(spec)
    if xp is not np:
        model.to(xp)                                # the CUDA twins; the optimizer is made after the move
    if hasattr(model.layers[0], "input_grad"):
        model.layers[0].input_grad = False          # dL/d(image) is never used in training
    xtr, ytr = _subset(data.x_train, data.y_train, spec.train_limit, spec.seed)
    mean, _ = image_statistics(xtr)
    mean = np.asarray(mean, dtype=np.float32)
    tt, et = transforms(spec, model, mean)
    loader = BatchLoader(xtr, ytr, spec.batch_size, transform=tt, seed=spec.seed, xp=xp)
    tricks = Tricks(**spec.tricks)
    net = model
    if tricks.precision == "fp16":                  # Bag of Tricks Sec. 3.2
        from ..precision import MixedPrecisionNet
        net = MixedPrecisionNet(model)
    opt, sched = _optimizer(spec, net, tricks)
    meta = {"format": "minialex-reproduce-1", "spec": spec.to_dict(), "data": data.name,
            "class_names": list(data.class_names),
            "preprocess": {"crop": model_input_size(model), "pad": spec.pad, "scale": spec.input_scale,
                           "mean": mean.tolist()}}
    teacher = load_teacher(tricks.distill, data.class_names, meta["preprocess"], xp=xp) if tricks.distill else None
    trainer = Trainer(net, opt, sched, loader, (data.x_val, data.y_val, et), run_dir,
                      spec.epochs if until is None else 1, meta=meta, progress=progress, plot=False,
                      log=log, tricks=tricks, teacher=teacher, xp=xp)
    if (run_dir / CHECKPOINT).is_file():
        extra = trainer.restore(run_dir / CHECKPOINT)
        _check_spec(extra.get("spec", {}), spec, run_dir / CHECKPOINT)
        log(f"{spec.name}: resumed at epoch {trainer.epoch}, batch {trainer.batch}, step {trainer.step}")
    else:
        log(f"{spec.name}: {spec.net} net {model.num_params():,} parameters, {len(ytr):,} training images, "
            f"{spec.epochs} epochs, batch {spec.batch_size}, lr {spec.lr} ({spec.schedule}); {run_dir}")
    load0 = load_average()
    while True:
        if until is not None:                       # one epoch at a time, until the target is reached
            at_boundary = trainer.batch == 0 and trainer.epoch > 0
            if trainer.epoch >= spec.epochs or (at_boundary and until(read_metrics(run_dir / "metrics.csv"))):
                break                               # (also when a resumed run had reached it already)
            trainer.epochs = trainer.epoch + 1
        summary = trainer.fit()
        trainer.wall = summary["wall_s"]            # fit() again continues the run's clock
        trainer._t0 = None
        if summary["stopped"] != "done":
            return {"spec": spec.to_dict(), "status": "stopped",
                    "metrics": read_metrics(run_dir / "metrics.csv")}
        if until is None:
            break
    prep = dict(meta["preprocess"], mean=mean)          # the record, with the mean as the array it came from
    return _test_and_record(spec, model, trainer, data, (xtr, ytr), et, prep, run_dir, load0, log, xp)


def _optimizer(spec, net, tricks):
    """SGD (Sec. 5) with the spec's learning-rate schedule; returns (optimizer, schedule)."""
    from ..optim import SGD, StepDecay
    from ..schedules import Constant, CosineDecay
    from ..tricks import scaled_lr

    opt = SGD(net, lr=scaled_lr(spec.lr, spec.batch_size, tricks), momentum=spec.momentum,
              weight_decay=spec.weight_decay, decay_bias=not tricks.no_bias_decay, layer_decay=spec.layer_decay)
    if spec.schedule == "cosine":
        return opt, CosineDecay(opt, epochs=spec.epochs)
    if spec.schedule == "constant":
        return opt, Constant(opt)
    if spec.schedule == "step":                     # Sec. 5's divisions by 10, on a fixed timetable
        return opt, StepDecay(opt, step_size=max(1, spec.epochs // 3), gamma=0.1, max_reductions=3)
    raise ValueError(f"RunSpec.schedule must be cosine, constant or step, got {spec.schedule!r}")


def _test_and_record(spec, model, trainer, data, train, et, prep, run_dir, load0, log, xp=np):
    """Test a finished run once, write its run.json (atomically) and return the result dict.

    The test error is that of the centre crop; with ``spec.ten_crop`` also that of the ten
    patches of Sec. 4.1 (softmax averaged; ``prep`` is the run's preprocessing record, its
    mean image an array). A run with ``spec.test`` False (a sweep's) never reads the test
    split: its test errors are None.
    """
    from ..evaluation import evaluate_batches, predict_proba
    from ..metrics import read_metrics, topk_error

    xtr, ytr = train
    test1 = test5 = None
    views = {}
    if spec.test:
        _, test1, test5 = evaluate_batches(model, data.x_test, data.y_test, et, xp=xp)
        if spec.ten_crop:
            probs = predict_proba(model, data.x_test, prep, ten_crop=True, xp=xp)   # (N, K)
            views = {"test_top1_ten_crop": topk_error(probs, data.y_test, 1),
                     "test_top5_ten_crop": topk_error(probs, data.y_test, 5)}
    # the training error in test mode (centre crop, no dropout) on a fixed sample of the training
    # images: with the test error, the train/test gap of Sec. 4.1 and 4.2
    xs, ys = _subset(xtr, ytr, len(data.y_val), 4242)
    _, clean1, _ = evaluate_batches(model, xs, ys, et, xp=xp)
    m = read_metrics(run_dir / "metrics.csv")
    result = {"spec": spec.to_dict(), "status": "done", "epochs": trainer.epoch, "steps": trainer.step,
              "test_top1": test1, "test_top5": test5, **views, "val_top1": m["val_top1"][-1],
              "train_eval_top1": clean1, "train_eval_images": len(ys),
              "train_top1": m["train_top1"][-1], "wall_s": trainer.wall, "machine": machine(xp),
              "load_avg": f"{load0} at the start, {load_average()} at the end", "data": data.name,
              "finished": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    write_run_file(run_dir, result)
    ten = f", ten patches {100 * views['test_top1_ten_crop']:.2f}%" if views else ""
    tested = f"test top-1 error {100 * test1:.2f}%{ten}" if spec.test else "not tested (a sweep's run)"
    log(f"{spec.name}: done, {trainer.epoch} epochs, {tested} "
        f"(val {100 * result['val_top1']:.2f}%), {trainer.wall / 60:.1f} min")
    result["metrics"] = m
    return result


def write_run_file(run_dir, result):
    """Write ``run_dir/run.json`` atomically (temporary file, then ``os.replace``): it marks a run finished."""
    done_file = Path(run_dir) / RUN_FILE
    tmp = done_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=1))
    os.replace(tmp, done_file)


def read_run(run_dir):
    """What a run directory holds now without training: the finished result, or the partial metrics."""
    from ..metrics import read_metrics

    run_dir = Path(run_dir)
    if (run_dir / RUN_FILE).is_file():
        result = json.loads((run_dir / RUN_FILE).read_text())
        result["metrics"] = read_metrics(run_dir / "metrics.csv")
        return result
    if (run_dir / "metrics.csv").is_file() or (run_dir / "checkpoint.npz").is_file():
        m = read_metrics(run_dir / "metrics.csv") if (run_dir / "metrics.csv").is_file() else {}
        return {"status": "started, not finished", "metrics": m}
    return {"status": "not yet run", "metrics": {}}


def _check_spec(stored, spec, where):
    want = json.loads(json.dumps(spec.to_dict()))            # tuples -> lists, as stored
    for k, v in want.items():
        if k in stored and stored[k] != v:
            raise ValueError(f"{where} was trained with {k}={stored[k]!r}, but this experiment now asks "
                             f"for {k}={v!r}; use another --out for the new recipe")
