"""A correct LRN under a misspelt name, and nothing else."""
from minialex.labs.solutions.lrn import LocalResponseNorm as LocalResponseNormalization  # noqa: F401
