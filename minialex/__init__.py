"""minialex: AlexNet (Krizhevsky, Sutskever, Hinton, NIPS 2012) from scratch.

NumPy first, numba-accelerated on the CPU, optional CuPy on the GPU.
Read ``docs/index.md`` for a map from paper section to module.
"""
import os as _os

# Two thread pools share the CPU: numba's (OpenMP layer) for our kernels and
# OpenBLAS's for NumPy's matrix products. By default both busy-wait ("spin")
# after each parallel region, so on a 2-core machine each pool burns the cores
# the other one needs next: measured here, a cifar-config training step took
# 1.6 CPU-s that way against 0.8 with both pools sleeping when idle. Ask both to
# sleep, unless the user has chosen. OPENBLAS_THREAD_TIMEOUT only takes effect
# if NumPy is not imported yet; OMP_WAIT_POLICY until numba's first parallel run.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
_os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

# Under mpiexec the ranks on one machine share its cores (docs/distributed.md):
# unless the user has chosen, each rank's pools get its share of the cores,
# not all of them each (2 ranks x 2 threads on 2 cores oversubscribe them).
# Like the settings above, this only holds if NumPy is imported after minialex.
_local = next((int(v) for v in map(_os.environ.get, ("MPI_LOCALNRANKS", "OMPI_COMM_WORLD_LOCAL_SIZE",
                                                     "MV2_COMM_WORLD_LOCAL_SIZE")) if v and v.isdigit()), 1)
if _local > 1:
    for _var in ("NUMBA_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        _os.environ.setdefault(_var, str(max(1, (_os.cpu_count() or 1) // _local)))

__version__ = "0.1.0"

from .backend import get_array_module, get_backend  # noqa: E402,F401
