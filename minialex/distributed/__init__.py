"""Data-parallel training over MPI (CPU ranks) and NCCL (GPUs); docs/distributed.md.

    mpiexec -n 2 python -m minialex.train ...      # two ranks, each half of every global batch

comm.py    the Communicator interface, SingleProcess, MPICommunicator, the Watchdog
__init__   world(): the communicator mpiexec set up for this process
nccl.py    NCCLCommunicator: CuPy gradients all-reduced by NCCL, bootstrapped through MPI
shard.py   augmentation identical to one process (SliceRNG), per-rank dropout streams (RankRNG)

The trainer calls four collectives (``minialex.trainer``); everything else
about ranks lives here and in ``python -m minialex.train`` (which rank writes,
which GPU a rank uses).
"""
from .comm import (DEFAULT_TIMEOUT, EXIT_COMM, CommError, Communicator, MPICommunicator, SingleProcess,
                   Watchdog, launched_ranks, rank_devices, shard_range)
from .shard import RankRNG, SliceRNG, use_rank_dropout

__all__ = ["Communicator", "SingleProcess", "MPICommunicator", "Watchdog", "CommError", "world",
           "launched_ranks", "rank_devices", "shard_range", "SliceRNG", "RankRNG", "use_rank_dropout",
           "DEFAULT_TIMEOUT", "EXIT_COMM"]


def world(backend="numpy", gpus=(0,), timeout=DEFAULT_TIMEOUT):
    """The communicator for this process, as the launcher set it up.

    Alone (no launcher, or one rank): ``SingleProcess()``, and mpi4py is not
    imported. Under ``mpiexec -n N`` (N > 1): ``MPICommunicator`` for NumPy;
    for CuPy an ``NCCLCommunicator`` over ``rank_devices(local rank, gpus)``.
    """
    if launched_ranks() <= 1:
        return SingleProcess()
    host = MPICommunicator(timeout=timeout)
    if backend == "cupy":
        from .nccl import NCCLCommunicator

        return NCCLCommunicator(host, devices=rank_devices(host.local_rank, gpus))
    return host
