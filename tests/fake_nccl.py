"""A stand-in for ``cupy.cuda.nccl`` on top of tests/fake_cupy.py: ranks are threads of one process.

Not NCCL: it checks the calls that minialex.distributed.nccl makes and does
what NCCL would do with them. Each "rank" is a thread with its own current
device (FakeCupy keeps the device per thread, as CUDA does).

* ``get_unique_id()`` returns a fresh id (a tuple of 128 ints, like CuPy's);
  ``NcclCommunicator(nranks, uid, rank)`` joins the group of that id and
  records the device that was current: NCCL binds a communicator to it.
* ``allReduce(sendptr, recvptr, count, datatype, op, stream)`` checks that the
  current device is the communicator's, that the pointers are the start of a
  FakeArray living on that device with ``count`` elements of ``datatype``,
  that op is ``NCCL_SUM`` and the stream is the current one; then it waits
  for every rank of the group and writes the sum into each receive buffer.
* FakeArrays get ``.data.ptr`` (their address) so the code can pass pointers.

Every call is appended to ``FakeNccl.calls`` as a tuple for the tests to read.
"""
from __future__ import annotations

import itertools
import threading
from types import SimpleNamespace

import numpy as np

NCCL_FLOAT16, NCCL_FLOAT32, NCCL_FLOAT64 = 6, 7, 8
NCCL_SUM = 0
_DTYPES = {NCCL_FLOAT16: np.float16, NCCL_FLOAT32: np.float32, NCCL_FLOAT64: np.float64}


class FakeStream:
    def __init__(self, fake, device):
        self.fake, self.device, self.ptr = fake, device, 1000 + device
        self.synchronized = 0

    def synchronize(self):
        self.synchronized += 1


class FakeNccl:
    """The ``cupy.cuda.nccl`` module object; ``install(monkeypatch, fake)`` wires it into a FakeCupy."""

    NCCL_FLOAT16, NCCL_FLOAT32, NCCL_FLOAT64, NCCL_SUM = NCCL_FLOAT16, NCCL_FLOAT32, NCCL_FLOAT64, NCCL_SUM

    def __init__(self, fake):
        self.fake = fake
        self.calls = []
        self._ids = itertools.count()
        self._groups = {}                       # uid -> {"barrier", "bufs": {rank: array}}
        self._lock = threading.Lock()
        self.streams = {}                       # device -> FakeStream
        nccl = self

        class NcclCommunicator:
            def __init__(self, nranks, uid, rank):
                self.nranks, self.uid, self.rank = nranks, tuple(uid), rank
                self.device = nccl.fake.current
                with nccl._lock:
                    g = nccl._groups.setdefault(self.uid, {"barrier": threading.Barrier(nranks), "bufs": {},
                                                           "devices": {}})
                    if g["devices"].get(rank) is not None:
                        raise RuntimeError(f"fake nccl: rank {rank} joined group {self.uid[0]} twice")
                    g["devices"][rank] = self.device
                nccl.calls.append(("init", rank, self.device, self.uid[0]))
                self.group = g
                self.aborted = False

            def allReduce(self, sendbuf, recvbuf, count, datatype, op, stream):
                fake = nccl.fake
                if fake.current != self.device:
                    raise RuntimeError(f"fake nccl: allReduce on device {fake.current}, communicator on "
                                       f"{self.device}")
                if op != NCCL_SUM:
                    raise ValueError(f"fake nccl: op {op}, expected NCCL_SUM")
                if stream != nccl.streams[self.device].ptr:
                    raise ValueError("fake nccl: not the current stream")
                send, recv = nccl.resolve(sendbuf), nccl.resolve(recvbuf)
                for a in (send, recv):
                    if a._dev != self.device:
                        raise ValueError(f"fake nccl: buffer on device {a._dev}, communicator on {self.device}")
                    if a.size != count or a.dtype != _DTYPES[datatype]:
                        raise ValueError(f"fake nccl: buffer of {a.size} {a.dtype}, call says {count} of "
                                         f"{np.dtype(_DTYPES[datatype])}")
                nccl.calls.append(("allReduce", self.rank, self.device, count, np.dtype(_DTYPES[datatype]).name))
                g = self.group
                g["bufs"][self.rank] = np.array(send.view(np.ndarray))      # what this rank sends
                g["barrier"].wait(timeout=10)
                total = sum(g["bufs"][r] for r in range(self.nranks))        # (count,), the sum over ranks
                g["barrier"].wait(timeout=10)
                recv.view(np.ndarray)[...] = total

            def abort(self):
                self.aborted = True

            def destroy(self):
                nccl.calls.append(("destroy", self.rank, self.device))

        self.NcclCommunicator = NcclCommunicator
        self._arrays = {}                           # address -> the FakeArray handed out with .data.ptr

    def get_unique_id(self):
        i = next(self._ids)
        self.calls.append(("get_unique_id", i))
        return (i,) + (0,) * 127

    def resolve(self, ptr):
        with self._lock:
            return self._arrays[ptr]

    def install(self, monkeypatch):
        """Make ``from cupy.cuda import nccl``, ``cupy.cuda.get_current_stream`` and ``a.data.ptr`` work."""
        import sys

        fake, nccl = self.fake, self

        def data(a):
            ptr = a.__array_interface__["data"][0]
            with nccl._lock:
                nccl._arrays[ptr] = a
            return SimpleNamespace(ptr=ptr)

        def get_current_stream():
            d = fake.current
            with nccl._lock:
                return nccl.streams.setdefault(d, FakeStream(fake, d))

        monkeypatch.setattr(fake.array_class, "data", property(data), raising=False)
        monkeypatch.setattr(fake.cuda, "get_current_stream", staticmethod(get_current_stream), raising=False)
        monkeypatch.setattr(fake.cuda, "nccl", self, raising=False)
        monkeypatch.setitem(sys.modules, "cupy.cuda", fake.cuda)
        monkeypatch.setitem(sys.modules, "cupy.cuda.nccl", self)
