"""Data-parallel training over MPI (CPU ranks) and NCCL (GPUs); docs/distributed.md.

    mpiexec -n 2 python -m minialex.train ...      # two ranks, each half of every global batch

comm.py    the Communicator interface, SingleProcess, MPICommunicator, the Watchdog, world()
nccl.py    NCCLCommunicator: CuPy gradients all-reduced by NCCL, bootstrapped through MPI
shard.py   augmentation identical to one process (SliceRNG), per-rank dropout streams (RankRNG)

The trainer calls four collectives (``minialex.trainer``); everything else
about ranks lives here and in ``python -m minialex.train`` (which rank writes,
which GPU a rank uses).
"""
from .comm import (DEFAULT_TIMEOUT, EXIT_COMM, CommError, Communicator, MPICommunicator, SingleProcess,
                   Watchdog, launched_ranks, rank_devices, shard_range, world)
from .shard import RankRNG, SliceRNG, use_rank_dropout

__all__ = ["Communicator", "SingleProcess", "MPICommunicator", "Watchdog", "CommError", "world",
           "launched_ranks", "rank_devices", "shard_range", "SliceRNG", "RankRNG", "use_rank_dropout",
           "DEFAULT_TIMEOUT", "EXIT_COMM"]
