"""Checks of minialex.distributed under a real MPI job; tests/test_distributed.py runs it as

    mpiexec -n 2 python tests/mpi_checks.py

Every rank runs every check; an assertion error ends the rank with a traceback
and a non-zero status (and mpiexec ends the job). Each rank prints
"rank R: ok" at the end. No training: the collectives, the gradient average
and the sharded loader, on small arrays.
"""
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from minialex.data import BatchLoader, TrainTransform  # noqa: E402
from minialex.distributed import MPICommunicator, world  # noqa: E402


def check_collectives(comm):
    r, size = comm.rank, comm.size
    assert comm.allreduce_sum([r + 1, 10]) == [size * (size + 1) / 2, 10.0 * size]
    assert comm.any(r == size - 1) is True          # one rank says yes: every rank hears it
    assert comm.any(False) is False
    comm.barrier()


def check_gradient_average(comm):
    """Ranks hold different gradients and batch shares; each ends with sum_r w_r g_r."""
    r, size = comm.rank, comm.size
    shares = np.arange(1, size + 1, dtype=np.float64)
    weight = shares[r] / shares.sum()                # e.g. 1/3 and 2/3: unequal parts of a batch
    grads = [("w", np.full((3, 4), r + 1, dtype=np.float32)),
             ("b", np.arange(5, dtype=np.float64) * (r + 1)),
             ("v", np.full((2, 2), -(r + 1), dtype=np.float32))]
    comm.average_grads(grads, weight)
    expect = float(sum(shares[q] / shares.sum() * (q + 1) for q in range(size)))
    assert np.allclose(grads[0][1], expect, rtol=1e-6), grads[0][1]
    assert np.allclose(grads[1][1], np.arange(5) * expect, rtol=1e-12), grads[1][1]
    assert np.allclose(grads[2][1], -expect, rtol=1e-6), grads[2][1]
    assert grads[0][1].dtype == np.float32 and grads[1][1].dtype == np.float64
    assert comm.grad_bytes == 12 * 4 + 5 * 8 + 4 * 4, comm.grad_bytes


def check_loader(comm):
    """The ranks' parts of every batch are the single process's batch: the same images, the same crops."""
    rng = np.random.default_rng(5)
    n, batch = 50, 12                               # 5 batches: 4 of 12 and one of 2
    images = rng.integers(0, 256, size=(n, 3, 8, 8), dtype=np.uint8)
    labels = np.arange(n)                           # the label names the image
    tt = TrainTransform(mean=np.full((3, 8, 8), 100, np.float32), crop=6, pad=1, flip=True,
                        pca=(np.array([0.5, 0.2, 0.1]), np.eye(3)))
    mine = BatchLoader(images, labels, batch, transform=tt, seed=3, shard=(comm.rank, comm.size), background=False)
    alone = BatchLoader(images, labels, batch, transform=tt, seed=3, background=False)
    for epoch in range(2):
        mine.set_epoch(epoch)
        alone.set_epoch(epoch)
        seen = []
        for (x, y), (xa, ya) in zip(mine, alone):
            lo, hi = comm.shard(len(ya))
            assert np.array_equal(y, ya[lo:hi])
            assert np.array_equal(x, xa[lo:hi])     # bit for bit: crops, flips, colour shifts
            seen.append(y)
        everyone = comm.comm.allgather(np.concatenate(seen))
        used = np.concatenate(everyone)
        assert len(used) == n and np.array_equal(np.sort(used), labels), "an image used twice or never"


if __name__ == "__main__":
    comm = world()
    assert isinstance(comm, MPICommunicator) and comm.size >= 2, comm
    check_collectives(comm)
    check_gradient_average(comm)
    check_loader(comm)
    comm.barrier()
    print(f"rank {comm.rank}: ok", flush=True)
    comm.close()
