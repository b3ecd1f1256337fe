"""The training loop: SGD over epochs, per-epoch metrics, checkpoints, exact resume.

    trainer = Trainer(model, optimizer, schedule, loader, val, out="runs/x", epochs=10)
    summary = trainer.fit()                  # or fit() after trainer.restore(checkpoint)

One step (Sec. 5): forward a batch of augmented crops with dropout on,
the mean cross-entropy of the softmax (Sec. 3.5), backward, one SGD update.
After every epoch: a test-mode pass over the validation set (centre crop,
no dropout), one row of metrics.csv, the curves PNG, the learning-rate
schedule's step (Sec. 5: divide by 10 when validation error stops
improving) and a checkpoint.

**Exact resume.** A checkpoint holds everything the next step depends on:
the weights, the optimizer's velocities, the schedule's state, the dropout
layers' bit-generator states, the epoch, the number of batches done in it,
and the epoch's running sums. Batch order and augmentation are not state:
the loader derives them from (seed, epoch) and (seed, epoch, batch), so a
resumed run replays the interrupted epoch's order and skips the batches
already done. On the NumPy backend a run that is stopped and resumed ends
with the same weights, bit for bit, as one that never stopped
(tests/test_train.py checks it).

**Stopping.** Ctrl-C (SIGINT) or SIGTERM sets a flag; the loop finishes the
current step, writes a checkpoint and returns; a second signal aborts at
once (``Interrupted``, naming the checkpoint that is kept), or, during a
checkpoint write, as soon as the write is done. ``max_steps``
stops the same way after that many steps in total. A NaN or inf loss raises
``Diverged`` naming the step; nothing is written then, so the last
checkpoint on disk is the last good one.

**Nothing lost.** A fresh run refuses a run directory that already holds a
run (``RunExistsError``) unless ``overwrite=True``; ``restore`` continues
one instead. Temporary files that a killed checkpoint write left behind are
removed when the next run starts (``checkpoint.remove_stale_temp_files``).

**Tricks.** ``tricks`` (``minialex.tricks.Tricks``, Bag of Tricks 2019)
changes the step: warm-up scales the lr of the first steps, label smoothing,
mixup and distillation change the batch and the loss (``Objective``), and
with ``precision="fp16"`` the model is a ``minialex.precision.MixedPrecisionNet``
whose overflowed steps are skipped and counted (``skipped_steps`` in
metrics.csv). The settings and the loss scale are saved in the checkpoint.

**Data parallelism** (``comm``, minialex.distributed; docs/distributed.md).
Under ``mpiexec -n N`` each rank's loader delivers its part of every global
batch, and the loop makes four collective calls, which cost nothing alone
(``SingleProcess``): the step's loss and hit counts are summed over the
ranks (so every rank logs, checks and stops on the global batch's figures),
the gradients are averaged before the SGD step, the stop flag is agreed
(a signal may reach the ranks at different steps), and the validation set
is split over the ranks and its sums reduced. Rank 0 alone writes the
checkpoint, metrics.csv and the curves; every rank reads a checkpoint.
"""
from __future__ import annotations

import contextlib
import math
import signal
import sys
import threading
import time
from pathlib import Path

import numpy as np

from .backend import device_of, to_numpy
from .checkpoint import load_checkpoint, remove_stale_temp_files, save_checkpoint
from .distributed.comm import SingleProcess, format_bytes
from .errors import CheckpointError, RunExistsError
from .evaluation import errors_from_sums, evaluate_sums
from .metrics import MetricsLog, correct_topk
from .progress import Progress
from .precision import MIXED
from .tricks import Objective, Tricks, warmup_factor

CHECKPOINT = "checkpoint.npz"


class Diverged(RuntimeError):
    """The loss (or a weight) became NaN or inf; the message names the step."""


class Interrupted(KeyboardInterrupt):
    """A second Ctrl-C/SIGTERM: the run stops at once, without writing a checkpoint."""


def existing_run(out):
    """The files of an earlier run in ``out`` (checkpoint.npz, metrics.csv), as a list of names."""
    out = Path(out)
    return [n for n in (CHECKPOINT, "metrics.csv") if (out / n).is_file()]


def position_text(step, epochs_done, batch, steps_per_epoch):
    """'step 10 (epoch 2, batch 2/8)', or 'step 16 (end of epoch 2)': epochs counted from 1, as in the log."""
    if batch:
        return f"step {step} (epoch {epochs_done + 1}, batch {batch}/{steps_per_epoch})"
    return f"step {step} (end of epoch {epochs_done})" if epochs_done else f"step {step} (start of epoch 1)"


def top5_text(value, num_classes):
    """'top-5 12.3%', or 'top-5 n/a (3 classes)' where top-5 is trivially 0 (five or fewer classes)."""
    if num_classes is not None and num_classes <= 5:
        return f"top-5 n/a ({num_classes} classes)"
    return f"top-5 {100 * value:.1f}%"


class StopRequest:
    """SIGINT/SIGTERM handler that asks the loop to stop at the next step boundary.

    A second signal aborts at once (``Interrupted``), except during a
    checkpoint write (``holding()``): that finishes first (about a second),
    so an abort never throws away a checkpoint that was nearly on disk, and
    the message names the checkpoint that is.
    """

    def __init__(self, kept="the last checkpoint written is kept"):
        self.signum = None
        self.kept = kept                          # what the abort message says is kept (text or callable)
        self._old = {}
        self._hold, self._pending = False, None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)
        self._old = {}
        return False

    @contextlib.contextmanager
    def holding(self):
        """Defer a second signal's abort to the end of this block (a checkpoint write)."""
        self._hold = True
        try:
            yield
        finally:
            self._hold = False
        if self._pending is not None:
            self._abort(self._pending)

    def _abort(self, signum):
        kept = self.kept() if callable(self.kept) else self.kept
        raise Interrupted(f"{signal.Signals(signum).name} received a second time: stopped at once, "
                          f"without a checkpoint of this step; {kept}")

    def _handle(self, signum, frame):
        if self.signum is not None:               # second signal: do not wait
            if self._hold:
                self._pending = signum
                return
            self._abort(signum)
        self.signum = signum
        print(f"\n{signal.Signals(signum).name} received: finishing this step, then writing a "
              "checkpoint (signal again to abort without one)", file=sys.stderr, flush=True)

    def __bool__(self):
        return self.signum is not None


class TrainBar(Progress):
    """Progress with the running loss: 'epoch 3/10: 512/10000 (5%) 480.1 img/s ETA 0:18 loss 1.234'.

    The rate and ETA count from the end of the first step of this segment: the
    first step includes one-off work (numba compiling its kernels, CUDA
    loading them) that would make the first ETA hours long. Until a second
    step is done the bar says "ETA after the first step".
    """

    loss = float("nan")
    _first = None                                 # (time, n) at the end of the first step

    def update(self, k=1):
        if self._first is None:
            self._first = (time.perf_counter(), self.n + k)
        super().update(k)

    @property
    def rate(self):
        if self._first is None or self.n <= self._first[1]:   # not measured yet
            return Progress.rate.fget(self) if self._closed else float("nan")
        return (self.n - self._first[1]) / max(time.perf_counter() - self._first[0], 1e-9)

    def line(self):
        if not math.isnan(self.rate):
            return f"{super().line()} loss {self.loss:.4f}"
        head = f"{self.desc}: " if self.desc else ""
        return (f"{head}{self.n}/{self.total} ({100.0 * self.n / max(self.total, 1):3.0f}%) "
                f"ETA after the first step (it compiles the kernels) loss {self.loss:.4f}")


class Trainer:
    """Runs epochs, logs metrics, writes checkpoints; see the module docstring.

    Parameters
    ----------
    model : AlexNet (``forward``, ``backward``, ``predict``, ``named_params``,
        ``rng_state``/``set_rng_state``)
    optimizer : minialex.optim.SGD over the model's parameters
    schedule : learning-rate schedule with ``step(val_error)``, ``state_dict``
    loader : minialex.data.BatchLoader of training batches (seeded)
    val : (x uint8 (N, C, H, W), y (N,), eval transform) for the per-epoch validation pass
    out : run directory (checkpoint.npz, metrics.csv, curves.png)
    epochs : total epochs of the run; max_steps : stop after this many steps in total
    meta : JSON-able dict stored in every checkpoint (args, preprocessing, classes)
    tricks : minialex.tricks.Tricks or None (the paper's recipe); warm-up, label
        smoothing, mixup, distillation, fp16 (the model must then be a
        MixedPrecisionNet). lr scaling and no bias decay act on the optimizer,
        which the caller builds (``minialex.tricks.scaled_lr``, ``SGD(decay_bias=)``).
    teacher : the distillation teacher (``minialex.tricks.load_teacher``) when
        ``tricks.distill`` is set
    comm : minialex.distributed communicator (default: one process); the loader
        must then deliver this rank's part of each batch (``shard=(rank, size)``)
    val_name : the held-out split's name in the log ("val", or "test" where it is the test split)
    overwrite : a fresh run may replace a run already in ``out`` (else RunExistsError)
    """

    def __init__(self, model, optimizer, schedule, loader, val, out, epochs, max_steps=None,
                 meta=None, progress=True, plot=True, xp=np, log=print, tricks=None, teacher=None, comm=None,
                 val_name="val", overwrite=False, graph_step=None):
        self.model, self.optimizer, self.schedule, self.loader = model, optimizer, schedule, loader
        self.val_x, self.val_y, self.val_transform = val
        self.val_name = val_name                    # what the held-out split is called: "val" or "test"
        self.overwrite = overwrite                  # a fresh run may replace a run already in ``out``
        self.num_classes = _num_classes(model)        # "top-5 n/a" where there are five or fewer
        self.out = Path(out)
        self.epochs, self.max_steps = epochs, max_steps
        self.meta = dict(meta or {})
        self.progress, self.plot, self.xp, self.log = progress, plot, xp, log
        self.tricks = tricks if tricks is not None else Tricks()
        if (self.tricks.precision in MIXED) != hasattr(model, "scaler"):
            raise ValueError(f"Trainer: precision {self.tricks.precision} needs "
                             f"{'a' if self.tricks.precision in MIXED else 'no'} MixedPrecisionNet as the model")
        self.graph_step = graph_step                # a kernels.graphs.CapturedStep: the step as a CUDA graph
        tricks_on = [t for t in self.tricks.active() if t != "precision" or self.tricks.precision in MIXED]
        if graph_step is not None and (tricks_on or (comm is not None and comm.size > 1)):
            raise ValueError("Trainer: a CUDA graph step runs the paper's plain step (fp32 or tf32) on one "
                             f"process; got tricks {tricks_on or 'none'} and "
                             f"{comm.size if comm is not None else 1} process(es)")
        self.objective = Objective(self.tricks, _num_classes(model), teacher)
        self.loss_fn = self.objective.loss
        self.warmup_steps = int(round(self.tricks.warmup_epochs * len(loader)))
        self.comm = comm if comm is not None else SingleProcess()
        self.writer = self.comm.rank == 0           # the one rank that writes files
        self.metrics = MetricsLog(self.out / "metrics.csv")
        # position: epochs completed, batches done in the current epoch, steps in total
        self.epoch, self.batch, self.step = 0, 0, 0
        self.restored = False                       # True after restore(): fit() continues, never starts anew
        self.saved_step = None                      # the step of the checkpoint on disk, once one is written
        self.acc = _new_acc()                       # running sums of the current epoch
        self.wall = 0.0                             # seconds spent in earlier segments of the run
        self.last = {}                              # the last metrics row

    # ------------------------------------------------------------ checkpoints
    @property
    def checkpoint_path(self):
        return self.out / CHECKPOINT

    def state(self):
        """JSON-able position of the run at the current step boundary (checkpoint "extra")."""
        extra = dict(self.meta)
        extra.update(epoch=self.epoch, batch=self.batch, step=self.step, acc=dict(self.acc),
                     wall_s=self.wall + self._elapsed(), loader_seed=int(self.loader.seed),
                     last_metrics=self.last, tricks=self.tricks.to_dict())
        if hasattr(self.model, "scaler"):
            extra["loss_scaler"] = self.model.scaler.state_dict()
        return extra

    def save(self, path=None):
        """Write a checkpoint atomically (a crash leaves the previous one intact).

        Holds the weights, SGD velocities, the schedule's state, the dropout
        bit-generator states (``minialex.checkpoint``) and ``state()``.
        Refuses to overwrite the last good checkpoint with non-finite weights.
        """
        for name, w in self.model.named_params():
            with device_of(w):                      # the towers' params may live on two GPUs
                finite = bool(self.xp.isfinite(w).all())
            if not finite:
                raise Diverged(f"weights {name} are not finite at step {self.step}; "
                               f"the last good checkpoint {self.checkpoint_path} is kept")
        path = Path(path) if path is not None else self.checkpoint_path
        stop = getattr(self, "_stop", None)
        with stop.holding() if stop is not None else contextlib.nullcontext():
            if self.writer:                         # data parallel: the weights are the same on every rank
                save_checkpoint(path, self.model, self.optimizer, self.schedule, extra=self.state())
            if path == self.checkpoint_path:
                self.saved_step = self.step         # what a second Ctrl-C leaves on disk
        return path

    def restore(self, path):
        """Load a checkpoint written by ``save`` and continue from its step."""
        extra = load_checkpoint(path, self.model, self.optimizer, self.schedule)["extra"]
        missing = [k for k in ("epoch", "batch", "step", "acc", "wall_s", "loader_seed")
                   if k not in (extra or {})]
        if missing:
            raise CheckpointError(f"{path} is not a training checkpoint (no run position in it: "
                                  f"{', '.join(missing)} missing)")
        if extra["loader_seed"] != self.loader.seed:
            raise CheckpointError(f"{path}: data seed {extra['loader_seed']} differs from the loader's "
                                  f"{self.loader.seed}")
        saved = Tricks.from_dict(extra.get("tricks", {}))
        if saved != self.tricks:
            raise CheckpointError(f"{path} was trained with tricks {saved.active() or 'none'} ({saved}); "
                                  f"this trainer has {self.tricks}")
        if hasattr(self.model, "scaler"):
            self.model.scaler.load_state_dict(extra["loss_scaler"])
        self.epoch, self.batch, self.step = int(extra["epoch"]), int(extra["batch"]), int(extra["step"])
        self.restored = True                        # fit() continues this run, even from step 0
        self.saved_step = self.step
        self.acc, self.wall, self.last = {**_new_acc(), **extra["acc"]}, extra["wall_s"], extra.get("last_metrics", {})
        if self.writer:
            self.metrics.truncate(self.epoch)       # rows the interrupted run wrote later are redone
        return extra

    # ------------------------------------------------------------ the loop
    def _elapsed(self):
        return time.perf_counter() - self._t0 if getattr(self, "_t0", None) else 0.0

    def _train_step(self, x, y):
        """One SGD step (Sec. 5) on a batch, with the tricks; returns (loss, images) of the global batch.

        Data parallel: x, y are this rank's part; the loss and hits are summed
        over the ranks and the gradients averaged before the update.
        """
        self.comm.step = self.step + 1                               # named if a collective hangs
        if self.graph_step is not None:
            return self._graph_train_step(x, y)
        xb, targets = self.objective.inputs(x, y, self.loader.seed, self.epoch, self.batch)   # mixup etc.
        logits = self.model.forward(xb, train=True)                  # (B, K); B: this rank's images
        yh = to_numpy(y)
        why = ""
        try:
            loss = float(self.loss_fn.forward(logits, *targets))     # one sync per step
        except ValueError as e:                                      # non-finite logits
            loss, why = math.nan, f": {e}"                           # every rank must still reduce
        c1, c5 = int(correct_topk(logits, yh, 1).sum()), int(correct_topk(logits, yh, 5).sum())
        loss_sum, c1, c5, n = self.comm.allreduce_sum([loss * len(yh), c1, c5, len(yh)])
        loss = loss_sum / n if self.comm.size > 1 else loss           # the global batch's mean loss
        if not math.isfinite(loss):
            raise Diverged(f"loss is {loss} at step {self.step + 1} (epoch {self.epoch + 1}, "
                           f"batch {self.batch + 1}){why}")
        self.model.backward(self.loss_fn.backward())
        overflow = self.comm.any(not getattr(self.model, "grads_finite", True))   # fp16: an overflow on
        if hasattr(self.model, "scaler"):                            # any rank skips the step on all, and
            self.model.scaler.update(not overflow)                   # every rank's loss scale moves alike
        if not overflow:
            t = time.perf_counter()
            self.comm.average_grads(self.model.named_grads(), weight=len(yh) / n)   # sum_r (n_r/n) g_r
            self.acc["comm_s"] += time.perf_counter() - t
            lr = self.optimizer.lr
            self.optimizer.lr = lr * warmup_factor(self.step, self.warmup_steps)   # BoT Sec. 3.1
            try:
                self.optimizer.step()
            finally:
                self.optimizer.lr = lr                               # the schedule's lr stays as it was
        else:
            self.acc["skipped"] += 1
        self.acc["loss"] += loss_sum
        self.acc["c1"] += int(c1)
        self.acc["c5"] += int(c5)
        self.acc["n"] += int(n)
        return loss, int(n)

    def _graph_train_step(self, x, y):
        """``_train_step`` as one CUDA graph replay (kernels/graphs.py): the paper's step, no tricks.

        The loss and the hits are read after the replay, so a non-finite loss
        is seen after its update (the checkpoint on disk stays the last good one).
        """
        yh = to_numpy(y)
        if yh.min() < 0 or yh.max() >= self.num_classes:             # the graph's loss does not check
            raise ValueError(f"label {yh.min() if yh.min() < 0 else yh.max()} out of range, expected "
                             f"0 <= label < {self.num_classes}")
        loss = float(self.graph_step(x, y))                          # one sync per step
        logits = self.graph_step.logits
        if not math.isfinite(loss):
            raise Diverged(f"loss is {loss} at step {self.step + 1} (epoch {self.epoch + 1}, "
                           f"batch {self.batch + 1})")
        self.acc["loss"] += loss * len(yh)
        self.acc["c1"] += int(correct_topk(logits, yh, 1).sum())
        self.acc["c5"] += int(correct_topk(logits, yh, 5).sum())
        self.acc["n"] += len(yh)
        return loss, len(yh)

    def fit(self):
        """Train until ``epochs`` are done, ``max_steps`` is reached or a signal arrives.

        Returns a dict: stopped ("done", "max_steps", "signal"), epoch, step,
        wall_s, and the last metrics row.
        """
        fresh = self.step == 0 and self.epoch == 0 and not self.restored
        # rank 0 looks (data parallel: the other ranks would see the checkpoint it writes next)
        if fresh and not self.overwrite and self.comm.any(self.writer and bool(existing_run(self.out))):
            raise RunExistsError(f"{self.out} already holds a run ({', '.join(existing_run(self.out))}); "
                                 "pass --resume to continue it or --overwrite to replace it")
        self.out.mkdir(parents=True, exist_ok=True)
        for f, size in remove_stale_temp_files(self.checkpoint_path) if self.writer else ():
            self.log(f"removed {f.name} ({size / 2**20:.1f} MiB), left by a checkpoint write that was killed")
        self._t0 = time.perf_counter()
        if fresh:                                  # a fresh run: replaces what an earlier one left in out
            if self.writer:
                self.metrics.truncate(0)
            self.save()                            # a good checkpoint exists before the first step
        stopped = "done"
        with StopRequest(kept=lambda: f"the last checkpoint {self.checkpoint_path} (step {self.saved_step}) "
                                      "is kept; --resume continues from it") as stop:
            self._stop = stop                      # save() holds a second signal while it writes
            try:
                while self.epoch < self.epochs and stopped == "done":
                    stopped = self._run_epoch(stop)
            finally:
                self._stop = None
        wall = self.wall + self._elapsed()
        # the last metrics row first: its "epoch"/"step" are those of the last completed epoch,
        # the run's own position (where it stopped) must win
        return {**self.last, "stopped": stopped, "epoch": self.epoch, "step": self.step, "wall_s": wall,
                "batch": self.batch, "steps_per_epoch": len(self.loader), "val_name": self.val_name,
                "num_classes": self.num_classes, "last_epoch": self.last.get("epoch"),
                "last_epoch_step": self.last.get("step"),
                "ranks": self.comm.size, "allreduce_bytes_per_step": self.comm.grad_bytes}

    def _stop_reason(self, stop):
        if self.comm.any(bool(stop)):               # data parallel: stop if any rank got the signal
            return "signal"
        if self.max_steps and self.step >= self.max_steps:
            return "max_steps"
        return None

    def _run_epoch(self, stop):
        e, nb = self.epoch, len(self.loader)
        if self.batch == 0 and self._stop_reason(stop):       # e.g. resumed at an epoch boundary
            return self._stopped(self._stop_reason(stop), write=False)
        self.loader.set_epoch(e)
        bar = TrainBar(total=len(self.loader.labels), desc=f"epoch {e + 1}/{self.epochs}", unit="img",
                       enabled=self.progress)
        bar.n = self.acc["n"]
        bar.start -= self.acc["seconds"]            # a resumed epoch keeps its rate and ETA
        t_start = time.perf_counter() - self.acc["seconds"]
        t_asked = time.perf_counter()               # when the loop asked the loader for the next batch
        for b, (x, y) in enumerate(self.loader):
            if b < self.batch:                      # resumed mid-epoch: these are done
                t_asked = time.perf_counter()
                continue
            # Time spent waiting for the loader (the model idle). With the loader's
            # background thread this stays near 0: decoding overlaps with the step.
            self.acc["wait"] += time.perf_counter() - t_asked
            reason = self._stop_reason(stop)
            if reason:                              # checked before a step: never one step too many
                bar.close()
                self.loader.close()
                return self._stopped(reason)
            bar.loss, n = self._train_step(x, y)
            self.batch, self.step = b + 1, self.step + 1
            self.acc["seconds"] = time.perf_counter() - t_start
            bar.update(n)
            t_asked = time.perf_counter()
        bar.close()
        self._end_epoch()                           # writes the checkpoint
        reason = self._stop_reason(stop)
        if reason and self.epoch < self.epochs:
            return self._stopped(reason, write=False)
        return "done"

    def position(self):
        """Where the run stands, as the log and the summary say it: 'step 10 (epoch 2, batch 2/8)'."""
        return position_text(self.step, self.epoch, self.batch, len(self.loader))

    def _stopped(self, reason, write=True):
        path = self.save() if write else self.checkpoint_path
        self.comm.barrier("the barrier after the checkpoint")   # every rank returns once it is on disk
        self.log(f"stopped ({'Ctrl-C/SIGTERM' if reason == 'signal' else '--max-steps'}) at {self.position()}; "
                 f"checkpoint {path}; continue with --resume")
        return reason

    def _end_epoch(self):
        a = self.acc
        n = max(a["n"], 1)
        lo, hi = self.comm.shard(len(self.val_y))   # data parallel: each rank its part of the val set
        try:
            sums = evaluate_sums(self.model, self.val_x[lo:hi], self.val_y[lo:hi], self.val_transform,
                                 xp=self.xp)
        except ValueError:                          # non-finite logits on the validation set
            sums = (math.nan, 0, 0, max(hi - lo, 1))  # reduced with the others, so every rank stops
        val_loss, val1, val5 = errors_from_sums(self.comm.allreduce_sum(sums, "the validation all-reduce"))
        if not math.isfinite(val_loss):
            raise Diverged(f"validation loss is {val_loss} after step {self.step}")
        lr = self.optimizer.lr
        self.epoch, self.batch = self.epoch + 1, 0
        row = {"epoch": self.epoch, "step": self.step, "lr": float(lr), "train_loss": a["loss"] / n,
               "train_top1": (n - a["c1"]) / n, "train_top5": (n - a["c5"]) / n, "val_loss": val_loss,
               "val_top1": val1, "val_top5": val5, "images_per_s": a["n"] / max(a["seconds"], 1e-9),
               "epoch_s": a["seconds"], "data_wait_s": a["wait"], "wall_s": self.wall + self._elapsed(),
               "skipped_steps": a["skipped"]}
        if self.writer:
            self.metrics.append(row)
        self.last = row
        self.log(f"epoch {self.epoch}: train loss {row['train_loss']:.4f} top-1 {100 * row['train_top1']:.1f}% | "
                 f"{self.val_name} loss {val_loss:.4f} top-1 {100 * val1:.1f}% {top5_text(val5, self.num_classes)} | "
                 f"lr {lr:g} | "
                 f"{row['images_per_s']:.0f} img/s, data wait {100 * a['wait'] / max(a['seconds'], 1e-9):.0f}%"
                 + (f" | {self.tricks.precision}: {a['skipped']} steps skipped (overflow), loss scale {self.model.scaler.scale:g}"
                    if hasattr(self.model, "scaler") else "") + self._comm_note(a))
        if self.plot and self.writer:
            from .figures import plot_curves       # matplotlib: only when drawing
            plot_curves(self.metrics.path, self.out / "curves.png")
        self.schedule.step(val1)                    # Sec. 5: the schedule watches validation error
        self.acc = _new_acc()
        self.save()

    def _comm_note(self, a):
        """', all-reduce 233.0 MiB/step, 12% of the time' under data parallelism; '' alone."""
        if self.comm.size == 1:
            return ""
        return (f" | all-reduce {format_bytes(self.comm.grad_bytes)}/step over {self.comm.size} ranks, "
                f"{100 * a['comm_s'] / max(a['seconds'], 1e-9):.0f}% of the time")


def _new_acc():
    return {"loss": 0.0, "c1": 0, "c5": 0, "n": 0, "seconds": 0.0, "wait": 0.0, "skipped": 0, "comm_s": 0.0}


def _num_classes(model):
    cfg = getattr(model, "config", None)       # AlexNet, TwoTowerAlexNet, MixedPrecisionNet
    return cfg.num_classes if cfg is not None else model.num_classes   # e.g. cuda_convnet nets
