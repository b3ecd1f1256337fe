"""The Bag of Tricks (He et al. 2019) as training switches, beyond the 2012 paper.

    tricks = Tricks(warmup_epochs=1, label_smoothing=0.1, mixup=0.2)
    trainer = Trainer(model, opt, sched, loader, val, out, epochs, tricks=tricks)

``Tricks`` holds the settings (saved in every checkpoint, checked on resume);
``Objective`` turns them into what one training step does with a batch: mix
it, build its targets, ask the teacher, pick the loss. The switches, with the
section of Bag of Tricks (BoT) that describes each:

=====================  ==================================================  ==========
switch                 what it does                                        BoT
=====================  ==================================================  ==========
``lr_scaling``         "linear": lr = base lr * batch / 256                Sec. 3.1
``warmup_epochs``      lr rises linearly from lr/W to lr over W steps      Sec. 3.1
``no_bias_decay``      weight decay on weights only (``SGD(decay_bias)``)  Sec. 3.1
``precision``          "fp16", "bf16", "tf32": ``minialex.precision``      Sec. 3.2
(schedule)             cosine decay: ``--schedule cosine``                 Sec. 5.1
``label_smoothing``    eps: ``layers/label_smoothing.py``                  Sec. 5.2
``distill``            teacher checkpoint, ``distill_t`` = T               Sec. 5.3
``mixup``              alpha: ``data/mixup.py``                            Sec. 5.4
=====================  ==================================================  ==========

With every switch off the step is the paper's (Sec. 5) exactly, bit for bit:
plain ``SoftmaxCrossEntropy`` on integer labels. None of the tricks keeps
state of its own between steps except the loss scale (saved by the trainer):
warm-up depends on the step count, mixup's draws on (seed, epoch, batch),
so a resumed run is exact. docs/tricks.md has the details and the choices.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from .layers import SoftmaxCrossEntropy
from .layers.distillation import DistillationLoss, check_temperature
from .layers.label_smoothing import check_smoothing, smooth_labels
from .layers.soft_target import SoftTargetCrossEntropy, one_hot

LR_SCALINGS = ("none", "linear")
from .precision import PRECISIONS
REFERENCE_BATCH = 256          # BoT Sec. 3.1: lr 0.1 for batch 256, scaled linearly with the batch


@dataclass(frozen=True)
class Tricks:
    """The Bag of Tricks settings of a run; the defaults switch every trick off."""

    lr_scaling: str = "none"       # "linear": lr = base * batch / 256 (BoT Sec. 3.1, Goyal et al. 2017)
    warmup_epochs: float = 0.0     # linear lr warm-up over this many epochs; 0 = none (BoT Sec. 3.1; 5 there)
    no_bias_decay: bool = False    # weight decay on conv/FC weights only, not biases (BoT Sec. 3.1)
    precision: str = "fp32"        # fp16/bf16: half passes, float32 master weights, loss scaling (BoT Sec. 3.2); tf32: cupy
    label_smoothing: float = 0.0   # eps; targets 1-eps and eps/(K-1) (BoT Sec. 5.2; 0.1 there)
    mixup: float = 0.0             # alpha of lam ~ Beta(alpha, alpha); 0 = no mixup (BoT Sec. 5.4; 0.2 there)
    distill: str = ""              # teacher checkpoint (a trained minialex run); "" = none (BoT Sec. 5.3)
    distill_t: float = 20.0        # distillation temperature T (BoT Sec. 5.3: 20)

    def __post_init__(self):
        if self.lr_scaling not in LR_SCALINGS:
            raise ValueError(f"lr scaling must be one of {LR_SCALINGS}, got {self.lr_scaling!r}")
        if not (self.warmup_epochs >= 0 and self.warmup_epochs < float("inf")):
            raise ValueError(f"warm-up must be >= 0 epochs, got {self.warmup_epochs}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        check_smoothing(self.label_smoothing)
        if not (self.mixup >= 0 and self.mixup < float("inf")):
            raise ValueError(f"mixup alpha must be > 0 (or 0 for no mixup), got {self.mixup}")
        check_temperature(self.distill_t)

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d):
        return cls(**{f.name: d[f.name] for f in dataclasses.fields(cls) if f.name in d})

    def active(self):
        """Names of the switches that differ from the paper's recipe."""
        base = Tricks()
        return [f.name for f in dataclasses.fields(self)
                if f.name != "distill_t" and getattr(self, f.name) != getattr(base, f.name)]


def scaled_lr(lr, batch_size, tricks):
    """The learning rate SGD starts with: ``lr`` itself, or lr * batch / 256 under linear scaling."""
    if tricks.lr_scaling == "linear":
        return lr * batch_size / REFERENCE_BATCH
    return lr


def warmup_factor(step, warmup_steps):
    """Multiplier of the scheduled lr for the (0-based) ``step``: (step + 1) / W during warm-up, else 1.

    BoT Sec. 3.1: "linearly increase the learning rate from 0 to the initial
    learning rate" over the first W batches; step 0 uses lr / W, step W-1 the
    full lr. The factor multiplies whatever the schedule sets (cosine decays
    from the start of the run).
    """
    if warmup_steps <= 0 or step >= warmup_steps:
        return 1.0
    return (step + 1) / warmup_steps


class Objective:
    """What a training step does with a batch under ``Tricks``: inputs, targets and loss.

        x, targets = objective.inputs(x, y, seed, epoch, batch)
        loss = objective.loss.forward(logits, *targets)
        dlogits = objective.loss.backward()

    ``targets`` is ``(y,)`` for the paper's loss, ``(q,)`` for soft targets
    (smoothing, mixup), ``(q, teacher_logits)`` for distillation.

    Shapes:  x: (N, C, S, S) float, y: (N,) int  ->  x: (N, C, S, S), q: (N, K), teacher logits (N, K)
    """

    def __init__(self, tricks, num_classes, teacher=None):
        self.tricks, self.num_classes, self.teacher = tricks, int(num_classes), teacher
        if tricks.distill and teacher is None:
            raise ValueError(f"distillation from {tricks.distill}: no teacher model given")
        self.soft = bool(tricks.label_smoothing or tricks.mixup or tricks.distill)
        if tricks.distill:
            self.loss = DistillationLoss(tricks.distill_t)
        elif self.soft:
            self.loss = SoftTargetCrossEntropy()
        else:
            self.loss = SoftmaxCrossEntropy()

    def inputs(self, x, y, seed, epoch, batch):
        """The (possibly mixed) batch and the loss's targets; see the class docstring."""
        if not self.soft:
            return x, (y,)
        t = self.tricks
        if t.label_smoothing:
            q = smooth_labels(y, self.num_classes, t.label_smoothing, dtype=np.float32)   # (N, K)
        else:
            q = one_hot(y, self.num_classes, dtype=np.float32)                            # (N, K)
        if t.mixup:
            from .data.mixup import draw_mixup, mix

            lam, perm = draw_mixup(t.mixup, len(q), seed, epoch, batch)
            x, q = mix(x, q, lam, perm)
        if t.distill:
            return x, (q, self.teacher.predict(x))                                        # (N, K) logits
        return x, (q,)


def load_teacher(path, class_names, preprocess, xp=np):
    """A trained minialex model to distil from (BoT Sec. 5.3), checked against the student's run.

    The teacher must have the student's classes (same names, same order) and
    its input: the same crop size, input scale and (to within one grey level)
    the same mean image, so the student's batches are inputs it knows.
    Raises ValueError with one line naming what differs.
    """
    from .checkpoint import load_checkpoint, read_checkpoint

    try:
        raw = read_checkpoint(path)
    except (OSError, ValueError, KeyError):
        raise ValueError(f"teacher {path}: not a minialex checkpoint (a checkpoint.npz written by "
                         "python -m minialex.train)") from None
    if raw["config"] is None:
        raise ValueError(f"teacher {path}: the checkpoint stores no model config")
    extra = raw["extra"] or {}
    k = raw["config"].get("num_classes")
    names = extra.get("class_names")
    if k != len(class_names) or (names is not None and list(names) != list(class_names)):
        theirs = names if names is not None else f"{k} classes"
        raise ValueError(f"teacher {path} has other classes ({theirs}) than the student "
                         f"({list(class_names)})")
    tp = extra.get("preprocess")
    if preprocess is not None and tp is not None:
        for key in ("crop", "scale"):
            if key in tp and key in preprocess and tp[key] != preprocess[key]:
                raise ValueError(f"teacher {path} was trained on inputs with {key} {tp[key]}, "
                                 f"the student uses {preprocess[key]}")
        if "mean" in tp and "mean" in preprocess:
            theirs, ours = np.asarray(tp["mean"], np.float32), np.asarray(preprocess["mean"], np.float32)
            diff = float(np.max(np.abs(theirs - ours))) if theirs.shape == ours.shape else float("inf")
            if diff > 1.0:
                raise ValueError(f"teacher {path} was trained on other data: its mean image differs from "
                                 f"the student's by up to {diff:.1f} grey levels (expected <= 1)")
    teacher = load_checkpoint(path)["model"]
    if xp is not np:
        teacher.to(xp)
    return teacher
