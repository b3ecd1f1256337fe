"""NCCL all-reduce of CuPy gradients, bootstrapped through MPI (the llm.c and ChainerMN ``pure_nccl`` way).

    host = MPICommunicator()                         # mpiexec started the ranks
    comm = NCCLCommunicator(host, devices=(0,))      # this rank's GPU(s)
    comm.average_grads(net.named_grads(), weight)    # NCCL on the GPUs, no copy to the host

MPI starts the ranks and carries everything small (NCCL's unique id, the
step's loss and hit counts, the stop flag); NCCL sums the gradients where
they are, on the GPUs, over NVLink inside a machine and InfiniBand or
Ethernet between machines.

**Two towers per rank** (``--gpus 0,1``, Sec. 3.2). A rank then owns two
GPUs and each tower's gradients live on its own GPU. The communicator opens
one NCCL communicator per tower: tower 0's GPUs of all ranks form one,
tower 1's GPUs another, and each all-reduces its tower's gradients on its
own devices (fc8, shared, lives with tower 0). This is model parallelism
inside a pair of GPUs and data parallelism across the pairs.

NCCL cannot put two ranks on one device, so with one GPU there is one rank.
A collective that never completes (a dead peer) shows up as a stream that
never finishes: the synchronisation after each all-reduce runs under the
host communicator's watchdog, which aborts the NCCL communicators and the
MPI job (comm.py).
"""
from __future__ import annotations

import numpy as np

from .comm import Communicator, pack, unpack


def _nccl():
    from cupy.cuda import nccl

    return nccl


class NCCLCommunicator(Communicator):
    """Data parallelism for CuPy arrays: NCCL for gradients, ``host`` (MPI) for the rest.

    Parameters
    ----------
    host : MPICommunicator of the same ranks (bootstrap, host figures, watchdog)
    devices : this rank's CUDA device ids, one per tower, e.g. (0,) or (2, 3)
    """

    name = "NCCL"

    def __init__(self, host, devices=(0,)):
        import cupy as cp

        self.cp, self.nccl, self.host = cp, _nccl(), host
        self.rank, self.size, self.local_rank = host.rank, host.size, host.local_rank
        self.devices = tuple(dict.fromkeys(int(d) for d in devices))       # distinct, in order
        count = cp.cuda.runtime.getDeviceCount()
        for d in self.devices:
            if not 0 <= d < count:
                raise ValueError(f"rank {self.rank} (local rank {self.local_rank}) would use CUDA device {d}, "
                                 f"but this machine has {count}; NCCL needs one GPU per rank (and per "
                                 "tower with --gpus 0,1): start fewer ranks per machine")
        # One NCCL communicator per tower position: rank 0 makes each unique id, MPI hands it round.
        ids = [self.nccl.get_unique_id() for _ in self.devices] if self.rank == 0 else None
        ids = host.bcast(ids, what="the broadcast of NCCL's unique ids")
        self.comms = {}
        with host.watchdog.guard("setting up the NCCL communicators"):
            for d, uid in zip(self.devices, ids):
                with cp.cuda.Device(d):
                    self.comms[d] = self.nccl.NcclCommunicator(self.size, uid, self.rank)
        host.watchdog.abort = self._abort
        self._buffers = {}                          # (device, dtype) -> flat buffer on that device

    def describe(self):
        return f"NCCL on CUDA devices {self.devices} + {self.host.describe()}"

    @property
    def watchdog(self):
        return self.host.watchdog

    @property
    def step(self):
        return self.host.step

    @step.setter
    def step(self, value):
        self.host.step = value                      # the host's watchdog names it

    def allreduce_sum(self, values, what="an all-reduce of the step's figures"):
        return self.host.allreduce_sum(values, what)

    def barrier(self, what="a barrier"):
        self.host.barrier(what)

    def average_grads(self, named_grads, weight):
        cp, nccl = self.cp, self.nccl
        groups = {}                                 # (device, dtype) -> grads, in the model's order
        for _, g in named_grads:
            groups.setdefault((g.device.id, np.dtype(g.dtype)), []).append(g)
        total, streams = 0, []
        for (d, dtype), grads in groups.items():
            if d not in self.comms:
                raise ValueError(f"a gradient lives on CUDA device {d}, but this rank's NCCL communicators "
                                 f"are on {self.devices}")
            with cp.cuda.Device(d):
                n = sum(g.size for g in grads)
                buf = self._buffers.get((d, dtype))
                if buf is None or buf.size != n:
                    buf = self._buffers[(d, dtype)] = cp.empty(n, dtype=dtype)
                pack(grads, buf, weight)
                stream = cp.cuda.get_current_stream()
                # in place (send = receive buffer), queued on the stream after the packing
                self.comms[d].allReduce(buf.data.ptr, buf.data.ptr, n, _NCCL_DTYPES[dtype.name](nccl),
                                        nccl.NCCL_SUM, stream.ptr)
                unpack(buf, grads)                  # queued behind the all-reduce
                streams.append(stream)
            total += buf.nbytes
        with self.host.watchdog.guard("the NCCL gradient all-reduce"):
            for s in streams:                       # a dead peer never lets this return
                s.synchronize()
        self.grad_bytes = total

    def _abort(self):
        for c in self.comms.values():
            try:
                c.abort()                           # frees the GPUs stuck in the collective
            except Exception:
                pass
        self.host.comm.Abort(4)

    def close(self):
        for c in self.comms.values():
            c.destroy()
        self.comms = {}
        self.host.close()


_NCCL_DTYPES = {
    "float16": lambda nccl: nccl.NCCL_FLOAT16,
    "float32": lambda nccl: nccl.NCCL_FLOAT32,
    "float64": lambda nccl: nccl.NCCL_FLOAT64,
}
