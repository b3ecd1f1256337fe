"""A batch loader that prepares the next batch in a background thread while
the current one trains (Sec. 4.1: "generated on the CPU while the GPU is
training on the previous batch of images").

    loader = BatchLoader(x_uint8, y, batch_size=128, transform=TrainTransform(...), seed=0)
    for epoch in range(E):
        for x, y in loader:          # one pass = one epoch, freshly shuffled
            ...                      # x: (B, C, h, w) float32 on loader.xp; y: (B,) int64

Determinism: the epoch's order comes from ``default_rng([seed, epoch])`` and
batch b's augmentation from ``default_rng([seed, epoch, b])``, so the batches
do not depend on thread timing, only on (seed, epoch). ``epoch`` counts the
passes started (or is set with ``set_epoch``).

The worker thread gathers the batch (from an array or a memory-mapped
prepared set), runs the transform (NumPy releases the GIL in its heavy
loops, so this overlaps with training) and moves it to the requested array
module. An exception in the worker is re-raised in the main thread (same
type, with the worker's traceback) at the batch where it happened; leaving
the loop early (``break``) or ``close()`` stops the thread.

``workers=W`` runs W such threads: thread w prepares batches w, w + W,
w + 2W, ... into its own queue, and the loop takes batch b from queue
b mod W, so the batches arrive in order and are the same as with one worker.
The gather from the memmap and the fused numba transform (``nogil``) run
without the GIL, so the threads use W cores; figures in benchmarks/RESULTS.md
("the loader at ImageNet scale").

Data parallelism (``shard=(rank, size)``, minialex.distributed): ``batch_size``
is the *global* batch; each rank gathers and augments only its contiguous
part of every batch (``shard_range``), with the crops, flips and colour
shifts the single process would give those images (``SliceRNG``). So the
ranks together see each image once per epoch, in the single process's order.

On a GPU (``xp=cupy``) a transform that says so (``augments_on_device``,
e.g. ``TrainTransform``) gets the uint8 batch already on the device and
augments it there in one kernel: the copy is a quarter of the float32 bytes
and no float work is left on the host. Measured on an H100 machine, paper
config, batch 128: the host transform took 49 ms and the float32 copy 21 ms
a batch, against a 38 ms training step, so the GPU waited half the time.
"""
from __future__ import annotations

import queue
import threading

import numpy as np

from ..backend import get_backend, to_device
from ..distributed.comm import shard_range
from ..distributed.shard import SliceRNG



class BatchLoader:
    """Shuffled mini-batches with background preparation.

    Parameters
    ----------
    images : array-like (N, C, H, W), usually uint8 (np.ndarray or np.memmap)
    labels : (N,) int
    batch_size : int
    transform : callable ``(x_batch, rng) -> array``, e.g. ``TrainTransform``;
        None converts to ``dtype`` only (no mean subtraction).
    shuffle : reshuffle every epoch (False keeps the stored order)
    drop_last : drop the final batch when it is smaller than batch_size
    seed : int, makes order and augmentation reproducible
    xp : "numpy", "cupy" or the module; batches are delivered there
    dtype : dtype of the images handed to the model (float32 by default)
    prefetch : how many prepared batches may wait in each worker's queue
    workers : background threads preparing batches (default 1)
    background : False runs everything in the calling thread (for debugging)
    shard : (rank, size) for data parallelism: deliver only this rank's part of each batch

    Yields
    ------
    x : (B, ...) ``dtype`` on ``xp``; y : (B,) int64 on ``xp``
    """

    def __init__(self, images, labels, batch_size=128, *, transform=None, shuffle=True,
                 drop_last=False, seed=0, xp="numpy", dtype=np.float32, prefetch=2, background=True,
                 workers=1, shard=(0, 1)):
        if len(images) != len(labels):
            raise ValueError(f"images ({len(images)}) and labels ({len(labels)}) differ in length")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if prefetch < 1:
            raise ValueError(f"prefetch must be >= 1, got {prefetch}")
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.images, self.labels = images, np.asarray(labels, dtype=np.int64)
        self.batch_size, self.transform = batch_size, transform
        self.shuffle, self.drop_last, self.seed = shuffle, drop_last, seed
        self.xp = get_backend(xp) if isinstance(xp, str) else xp
        self.dtype, self.prefetch, self.background = dtype, prefetch, background
        self.workers = workers
        self.rank, self.size = shard
        if not 0 <= self.rank < self.size:
            raise ValueError(f"shard must be (rank, size) with 0 <= rank < size, got {shard}")
        self.epoch = 0
        self._threads = []
        self._stop = None

    def __len__(self):
        """Batches per epoch."""
        n, b = len(self.labels), self.batch_size
        return n // b if self.drop_last else -(-n // b)

    def set_epoch(self, epoch: int):
        """Make the next pass use ``epoch``'s order and augmentation."""
        self.epoch = epoch

    def order(self, epoch: int) -> np.ndarray:
        """The sample order of ``epoch``, (N,) int64."""
        n = len(self.labels)
        if not self.shuffle:
            return np.arange(n)
        return np.random.default_rng([self.seed, epoch]).permutation(n)

    def _batch(self, epoch, b, idx):
        """Gather, transform and place this rank's part of batch ``b`` (indices ``idx``)."""
        rng = np.random.default_rng([self.seed, epoch, b])
        if self.size > 1:                           # data parallel: rows lo..hi-1 of the global batch
            lo, hi = shard_range(len(idx), self.rank, self.size)
            idx, rng = idx[lo:hi], SliceRNG(rng, lo, hi, len(idx))
        # a sorted gather reads a memmap front to back; then restore the shuffled order
        srt = np.argsort(idx, kind="stable")
        x = np.empty((len(idx),) + tuple(self.images.shape[1:]), dtype=self.images.dtype)
        x[srt] = self.images[idx[srt]]  # (B, C, H, W)
        y = self.labels[idx]
        if self.transform is not None:
            if self.xp is not np and getattr(self.transform, "augments_on_device", lambda x: False)(x):
                x = to_device(x, self.xp)           # uint8 to the GPU; the transform runs there
            x = self.transform(x, rng)
        if isinstance(x, np.ndarray):
            x = x.astype(self.dtype, copy=False)    # cast before the copy: fewer bytes if it narrows
        return to_device(x, self.xp).astype(self.dtype, copy=False), to_device(y, self.xp)

    def _batches(self, epoch):
        order = self.order(epoch)
        for b in range(len(self)):
            yield b, order[b * self.batch_size:(b + 1) * self.batch_size]

    def __iter__(self):
        epoch = self.epoch
        self.epoch += 1
        if not self.background:
            for b, idx in self._batches(epoch):
                yield self._batch(epoch, b, idx)
            return
        self.close()  # a previous pass left early: stop its threads first
        W = self.workers
        queues = [queue.Queue(maxsize=self.prefetch) for _ in range(W)]
        stop = threading.Event()
        batches = list(self._batches(epoch))

        def put(q, item):
            while not stop.is_set():
                try:
                    q.put(item, timeout=0.05)
                    return True
                except queue.Full:
                    continue
            return False

        def work(w):
            try:
                for b, idx in batches[w::W]:   # this worker's share, in order
                    if stop.is_set() or not put(queues[w], self._batch(epoch, b, idx)):
                        return
            except BaseException as e:  # hand every failure to the main thread, at its batch
                put(queues[w], e)

        self._stop = stop
        self._threads = [threading.Thread(target=work, args=(w,), name=f"BatchLoader-epoch{epoch}-{w}",
                                          daemon=True) for w in range(W)]
        for t in self._threads:
            t.start()
        try:
            for b in range(len(batches)):
                item = queues[b % W].get()
                if isinstance(item, BaseException):
                    # the original exception, with the worker's traceback attached
                    raise item
                yield item
        finally:
            self.close()

    def close(self):
        """Stop the worker threads (if any) and wait for them to end."""
        threads, stop = self._threads, self._stop
        if not threads:
            return
        stop.set()
        for t in threads:
            t.join(timeout=30)
        self._threads, self._stop = [], None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass
