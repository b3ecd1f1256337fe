"""Communicators for data-parallel training: one interface, two of its implementations here.

    comm = world()                                  # SingleProcess alone; MPICommunicator under mpiexec
    lo, hi = comm.shard(n)                          # this rank's part of n items
    s = comm.allreduce_sum([loss_sum, n])           # small host figures, summed over the ranks
    comm.average_grads(model.named_grads(), weight=n_local / n_global)   # in place: g <- sum_r w_r g_r
    comm.any(stop_requested)                        # the same answer on every rank

Data parallelism (docs/distributed.md): every rank holds the whole model and
takes its own slice of each global batch; the ranks add up their gradients
(each weighted by its share of the batch, so the sum is the gradient of the
global batch's mean loss) and then every rank takes the same Sec. 5 SGD step,
so the weights stay identical without ever being sent.

=================  ==========================================================
SingleProcess      one process: every call returns its input; nothing is sent
MPICommunicator    mpi4py over ``MPI.COMM_WORLD``, for NumPy arrays (CPU ranks)
                   and for the host-side figures of every backend
NCCLCommunicator   ``nccl.py``: CuPy gradients all-reduced by NCCL on the GPUs,
                   bootstrapped (and host figures sent) through MPI
=================  ==========================================================

**Never hang.** A rank that dies or stops answering would leave the others
waiting in a collective forever. Every collective of ``MPICommunicator`` runs
under a ``Watchdog``: a thread that, when a collective has waited longer than
``timeout`` seconds, prints one line naming the rank, the collective and the
step, aborts the MPI job (every rank) and exits with status 4. mpiexec
(MPICH's Hydra) also ends the job by itself when a rank *dies*; the watchdog
is what catches a rank that hangs, and launchers that do not clean up.
"""
from __future__ import annotations

import os
import sys
import threading
import time
from contextlib import contextmanager

import numpy as np

EXIT_COMM = 4                 # exit status after a communication failure
DEFAULT_TIMEOUT = 300.0       # seconds a collective may wait (--comm-timeout)

# Environment variables through which launchers announce the number of ranks:
# PMI_SIZE (MPICH's Hydra, Intel MPI, Slurm's srun --mpi=pmi2), Open MPI, MVAPICH2.
_SIZE_VARS = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")


class CommError(RuntimeError):
    """A communicator cannot be set up (e.g. launched by mpiexec without mpi4py)."""


def shard_range(n, rank, size):
    """This rank's contiguous part [lo, hi) of n items: sizes differ by at most one, lower ranks first.

    The parts, in rank order, are 0..n-1 again: concatenating the ranks'
    slices of a batch gives the batch a single process would see.
    """
    base, extra = divmod(n, size)
    lo = rank * base + min(rank, extra)
    return lo, lo + base + (rank < extra)


def format_bytes(n):
    """'233.0 MiB', '3.3 KiB', '12 B': for the log lines that report traffic."""
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


def launched_ranks():
    """The number of ranks a launcher (mpiexec, srun) announced in the environment; 1 if none."""
    for var in _SIZE_VARS:
        v = os.environ.get(var)
        if v and v.isdigit():
            return int(v)
    return 1


class Communicator:
    """The interface. Every method is a collective: all ranks call it, in the same order.

    Attributes
    ----------
    rank, size : this process's index and the number of processes
    local_rank : index among the processes on this machine (picks the GPU)
    grad_bytes : bytes of gradients this rank all-reduced in the last ``average_grads``
    step : the training step in progress (the trainer sets it; error messages name it)
    """

    rank, size, local_rank = 0, 1, 0
    grad_bytes = 0
    step = None
    name = "interface"

    def shard(self, n):
        """[lo, hi) of this rank's part of n items (``shard_range``)."""
        return shard_range(n, self.rank, self.size)

    def allreduce_sum(self, values, what="an all-reduce of the step's figures"):
        """Sum small host figures over the ranks: a sequence of k numbers -> a list of k Python floats.

        ``what`` names the call in the error message if it never completes.
        """
        raise NotImplementedError

    def average_grads(self, named_grads, weight):
        """In place, every gradient g becomes sum over ranks of ``weight_r * g_r``.

        ``weight`` is this rank's share of the global batch (n_local / n_global),
        so the result is the gradient of the global batch's mean loss, as one
        process with the whole batch would compute it (to float rounding).
        """
        raise NotImplementedError

    def any(self, flag):
        """True on every rank if ``flag`` is true on at least one."""
        return bool(self.allreduce_sum([1.0 if flag else 0.0], what="the all-reduce of a stop or skip flag")[0] > 0)

    def barrier(self, what="barrier"):
        """Return when every rank has called it."""
        raise NotImplementedError

    def describe(self):
        """One line for the log, e.g. 'MPI, 2 ranks (this is rank 0, local rank 0)'."""
        return f"{self.name}, {self.size} rank{'s' if self.size > 1 else ''}"

    def close(self):
        """Release what the communicator holds (threads, NCCL communicators)."""


class SingleProcess(Communicator):
    """One process: nothing to exchange. The trainer's calls cost nothing."""

    name = "single process"

    def allreduce_sum(self, values, what=""):
        return [float(v) for v in values]

    def average_grads(self, named_grads, weight):
        if weight != 1:                             # one process holds the whole batch: weight is 1
            raise ValueError(f"SingleProcess.average_grads: weight must be 1, got {weight}")
        self.grad_bytes = 0

    def barrier(self, what="barrier"):
        pass


class Watchdog:
    """Exits the process with a clear error when a guarded call runs past ``timeout`` seconds.

        dog = Watchdog(timeout=300, rank=1, abort=comm.Abort, step=lambda: trainer_step)
        with dog.guard("the gradient all-reduce"):
            comm.Allreduce(...)

    A daemon thread wakes every ``period`` seconds and looks at what the main
    thread is waiting for. Past the limit it prints one line, waits ``grace``
    seconds, calls ``abort`` (which should end every rank, e.g. ``MPI_Abort``)
    and, should that return, ``os._exit(EXIT_COMM)``. ``step()``, when given,
    names the step in the line. The grace is for the launcher: MPICH's
    mpiexec forwards a rank's stderr through a pipe, and an abort that comes
    at once can end the job before the line is read (seen on a loaded 2-core
    machine: exit code right, message lost, 2 runs in 5).
    """

    def __init__(self, timeout, rank, abort=None, period=None, step=None, grace=1.0):
        self.timeout, self.rank, self.abort, self.grace = float(timeout), rank, abort, float(grace)
        self.period = period if period is not None else min(1.0, self.timeout / 10)
        self.step = step
        self._since, self._what = 0.0, None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="minialex-watchdog", daemon=True)
        self._thread.start()

    @contextmanager
    def guard(self, what):
        self._since = time.monotonic()              # written before _what: the thread reads _what first
        self._what = what
        try:
            yield
        finally:
            self._what = None

    def _watch(self):
        while not self._stop.wait(self.period):
            what, since = self._what, self._since
            if what is not None and time.monotonic() - since > self.timeout:
                self._fire(what)

    def _fire(self, what):
        step = self.step() if self.step is not None else None
        at = f" at step {step}" if step is not None else ""
        sys.stderr.write(f"\nerror: rank {self.rank} waited more than {self.timeout:g} s in {what}{at}: "
                         "another rank has died or stopped answering; ending the job "
                         "(--comm-timeout sets the limit)\n")
        sys.stderr.flush()
        time.sleep(self.grace)                      # let the launcher forward the line before the abort
        try:
            if self.abort is not None:
                self.abort()
        finally:
            os._exit(EXIT_COMM)

    def close(self):
        self._stop.set()


class MPICommunicator(Communicator):
    """Data parallelism over MPI (mpi4py) for NumPy arrays.

    Gradients are packed, in the model's order, into one flat float buffer per
    dtype (each multiplied by ``weight`` on the way in) and summed with one
    in-place ``Allreduce``; one large message is faster than many small ones.
    Every collective is guarded by a ``Watchdog`` (see the module docstring).

    Parameters
    ----------
    comm : an mpi4py communicator (default ``MPI.COMM_WORLD``)
    timeout : seconds any collective may wait before the job is ended
    """

    name = "MPI"

    def __init__(self, comm=None, timeout=DEFAULT_TIMEOUT):
        try:
            from mpi4py import MPI
        except ImportError:
            raise CommError(f"launched with {launched_ranks()} ranks, but mpi4py is not installed: "
                            "pip install -e \".[mpi]\" (mpi4py and the mpich wheel)") from None
        self.MPI = MPI
        self.comm = comm if comm is not None else MPI.COMM_WORLD
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        node = self.comm.Split_type(MPI.COMM_TYPE_SHARED)       # the ranks on this machine
        self.local_rank, self.local_size = node.Get_rank(), node.Get_size()
        node.Free()
        # MPI_Abort from the watchdog thread needs MPI_THREAD_MULTIPLE (mpi4py asks for it);
        # without it the watchdog only ends this process and the launcher ends the rest.
        can_abort = MPI.Query_thread() == MPI.THREAD_MULTIPLE
        self.watchdog = Watchdog(timeout, self.rank, abort=(lambda: self.comm.Abort(EXIT_COMM))
                                 if can_abort else None, step=lambda: self.step)
        self._buffers = {}                          # dtype -> flat host buffer, reused every step

    def describe(self):
        return (f"MPI ({self.MPI.Get_library_version().splitlines()[0].strip()}), {self.size} ranks, "
                f"{self.local_size} on this machine")

    def allreduce_sum(self, values, what="an all-reduce of the step's figures"):
        v = np.array(values, dtype=np.float64)      # a copy: the caller's values stay as they were
        with self.watchdog.guard(what):
            self.comm.Allreduce(self.MPI.IN_PLACE, v, op=self.MPI.SUM)
        return v.tolist()

    def average_grads(self, named_grads, weight):
        total = 0
        for dtype, grads in _by_dtype(named_grads).items():
            n = sum(g.size for g in grads)
            buf = self._buffers.get(dtype)
            if buf is None or buf.size != n:
                buf = self._buffers[dtype] = np.empty(n, dtype=dtype)
            pack(grads, buf, weight)
            with self.watchdog.guard("the gradient all-reduce"):
                self.comm.Allreduce(self.MPI.IN_PLACE, buf, op=self.MPI.SUM)
            unpack(buf, grads)
            total += buf.nbytes
        self.grad_bytes = total

    def barrier(self, what="a barrier"):
        with self.watchdog.guard(what):
            self.comm.Barrier()

    def bcast(self, obj, what="a broadcast"):
        """Rank 0's (picklable, small) ``obj`` on every rank."""
        with self.watchdog.guard(what):
            return self.comm.bcast(obj, root=0)

    def close(self):
        self.watchdog.close()


def _by_dtype(named_grads):
    """{dtype: [gradient arrays in the model's order]}; a mixed-precision model gets one buffer per dtype."""
    out = {}
    for _, g in named_grads:
        out.setdefault(np.dtype(g.dtype), []).append(g)
    return out


def pack(grads, buf, weight):
    """buf[o:o+g.size] = weight * g.ravel() for each g in turn; buf: (sum of sizes,)."""
    o = 0
    for g in grads:
        buf[o:o + g.size] = g.reshape(-1)           # (g.size,): any shape, flattened in C order
        o += g.size
    if weight != 1:
        buf *= buf.dtype.type(weight)               # one pass; 1/2 for two equal shards is exact


def unpack(buf, grads):
    """The inverse of ``pack`` without the weight: each g[...] = its slice of buf, in place."""
    o = 0
    for g in grads:
        g[...] = buf[o:o + g.size].reshape(g.shape)  # (g.size,) -> g's shape
        o += g.size


def rank_devices(local_rank, gpus=(0,)):
    """The CUDA devices of the rank with this local rank: ``gpus`` shifted to the rank's own block.

    ``gpus`` are the ids one rank would use alone (``--gpus 0,1``: the two
    towers of Sec. 3.2 on GPUs 0 and 1). Ranks on one machine take
    consecutive blocks of ``max(gpus) + 1`` devices: with ``--gpus 0,1``
    local rank 1 uses GPUs 2 and 3; with one GPU per rank, local rank l uses GPU l.
    """
    block = max(gpus) + 1
    return tuple(local_rank * block + g for g in gpus)
