"""CUDA graphs: capture one training step (forward, loss, backward, SGD) and replay it.

A small net is launch-bound on a GPU: the cifar config's step is some
hundred kernel launches of a few microseconds each, and Python spends more
time issuing them than the GPU running them. A CUDA graph records the
launches of one step once (stream capture) and replays them with one call.

    step = CapturedStep(model, loss, optimizer)     # model, optimizer on CuPy
    for x, y in loader:                             # device arrays
        loss_value = step(x, y)                     # a 0-d device array; no host sync. The graph's
                                                    # own buffer: the next call overwrites it

What a replay can and cannot do, and how this module keeps the step right:

* **Static shapes.** A graph replays the same kernels on the same
  addresses. One graph per (x shape, y shape, lr, momentum, weight decay):
  a new batch size (the last batch of an epoch) or a new learning rate (a
  schedule's step) captures a new graph; warm-up, which changes lr every
  step, would capture every step (``CapturedStep`` refuses nothing, but the
  count of captures is in ``captures``: keep it small).
* **Static inputs.** Each graph reads x and y from its own buffers; a call
  copies the batch into them (device to device) before the replay, and the
  loss comes back in a buffer the graph writes.
* **No host syncs inside.** ``float()``, ``.get()`` or ``bool()`` of a device
  array cannot be captured: the loss stays on the device (the caller syncs
  when it logs), and fp16's overflow check (a host decision to skip a step)
  is not capturable: ``CapturedStep`` refuses a ``MixedPrecisionNet``.
* **Memory.** Warm-up and capture allocate from a private CuPy memory pool
  that nothing else uses, so the blocks a graph reads and writes are never
  handed to other code between replays (PyTorch's graphs keep a private pool
  for the same reason).
* **Dropout.** A captured kernel's arguments are frozen, so a seed passed by
  value would replay one mask forever. Each ``Dropout`` layer instead reads
  its seed from a one-element device buffer (``Dropout.seed_buffer``); before
  each replay the host draws the seed from the layer's own generator, in the
  order the eager step draws it, and copies it in (8 bytes, on the graph's
  stream). The mask is then made on the device by the counter-based
  splitmix64 kernel (``_cuda.dropout_mask``), so the replayed step computes
  exactly the masks the eager step would.

Checked without a GPU on the CuPy stand-in (tests/test_cuda_graphs.py: a
graph there records the step and replays it by running it again into the
same buffers; host syncs during capture fail as on a GPU). Not measured
here: the speed-up on a GPU (benchmarks/gpu.py --suite --cuda-graphs).
"""
from __future__ import annotations

import numpy as np

from ..layers import Dropout


class CapturedStep:
    """One training step of ``model`` captured as a CUDA graph per static key (module docstring).

    Parameters
    ----------
    model : AlexNet on CuPy (not a MixedPrecisionNet: its overflow check syncs).
    loss : a loss layer, e.g. ``SoftmaxCrossEntropy(check_finite=False)`` (the
        finite check is a host sync).
    optimizer : ``minialex.optim.SGD`` over ``model``'s parameters.
    warmup : eager steps run before a capture (kernel compilation, pool blocks).
        They are real training steps, as in PyTorch's graph recipe.

    Shapes:  x: (N, C, S, S) float, y: (N,) int, on the current device -> 0-d loss on the device
    """

    def __init__(self, model, loss, optimizer, warmup=1):
        if hasattr(model, "scaler"):
            raise ValueError("CapturedStep: fp16 (MixedPrecisionNet) skips overflowed steps by a host "
                             "decision, which a CUDA graph cannot capture; use fp32 or tf32")
        if getattr(loss, "check_finite", False):
            raise ValueError("CapturedStep: the loss's finite check reads the loss on the host; "
                             "build it with check_finite=False")
        self.model, self.loss, self.optimizer, self.warmup = model, loss, optimizer, int(warmup)
        self.xp = model.xp
        cp = self.xp
        self.stream = cp.cuda.Stream(non_blocking=True)
        self.pool = cp.cuda.MemoryPool()                     # private: only the captured steps allocate here
        self.graphs = {}                                     # key -> (graph, x_buf, y_buf, loss_buf, logits_buf)
        self.logits = None                                   # the last call's (N, K) logits buffer
        self.captures = 0
        self.dropouts = [layer for layer in model.layers if isinstance(layer, Dropout) and layer.p > 0]

    def key(self, x, y):
        o = self.optimizer
        return (tuple(x.shape), str(x.dtype), tuple(y.shape), float(o.lr), float(o.momentum), float(o.weight_decay))

    def _eager(self, x, y, out, logits_out):
        """The step as the trainer runs it, its loss and logits written into ``out``, ``logits_out``."""
        logits = self.model.forward(x, train=True)            # (N, K)
        logits_out[...] = logits
        value = self.loss.forward(logits, y)
        self.model.backward(self.loss.backward())
        self.optimizer.step()
        out[...] = value

    def _draw_seeds(self):
        """Each dropout layer's next seed from its own rng (the eager step's draw), into its buffer."""
        for layer in self.dropouts:
            seed = np.array([layer.rng.integers(0, 2 ** 63)], dtype=np.uint64)
            layer.seed_buffer.set(seed, stream=self.stream)

    def _capture(self, key, x, y):
        cp = self.xp
        with cp.cuda.using_allocator(self.pool.malloc), self.stream:
            x_buf, y_buf = cp.empty_like(x), cp.empty_like(y)
            loss_buf = cp.zeros((), dtype=np.float32)
            logits_buf = cp.zeros((x.shape[0], self.model.config.num_classes), dtype=np.float32)
            for layer in self.dropouts:
                if getattr(layer, "seed_buffer", None) is None:
                    layer.seed_buffer = cp.zeros((1,), dtype=np.uint64)
            x_buf[...] = x
            y_buf[...] = y
            for _ in range(self.warmup):                     # eager steps on the buffers: allocations cached
                self._draw_seeds()
                self._eager(x_buf, y_buf, loss_buf, logits_buf)
            self.stream.synchronize()
            self.pending = (x_buf, y_buf, loss_buf, logits_buf)   # the buffers being captured (tests look)
            self.stream.begin_capture()
            try:
                self._eager(x_buf, y_buf, loss_buf, logits_buf)
            finally:
                graph = self.stream.end_capture()
        self.captures += 1
        self.graphs[key] = (graph, x_buf, y_buf, loss_buf, logits_buf)
        self.logits = logits_buf
        return loss_buf

    def __call__(self, x, y):
        """Train on (x, y) with the captured graph (captured first for a new key); returns the loss buffer."""
        key = self.key(x, y)
        entry = self.graphs.get(key)
        if entry is None:
            return self._capture(key, x, y)                  # its warm-up steps trained on this batch
        graph, x_buf, y_buf, loss_buf, self.logits = entry
        with self.stream:
            x_buf[...] = x                                    # device-to-device, ordered on the stream
            y_buf[...] = y
            self._draw_seeds()
            graph.launch(stream=self.stream)
        return loss_buf
