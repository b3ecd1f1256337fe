"""Reference solutions to the labs, one file per lab (for instructors).

Absolute imports, so this file can also be graded by path:
``python -m minialex.gradcheck --lab minialex/labs/solutions/__init__.py``.
"""
from minialex.labs.solutions.conv import Conv2D, col2im
from minialex.labs.solutions.lrn import LocalResponseNorm
from minialex.labs.solutions.maxpool import MaxPool2D
from minialex.labs.solutions.softmax import softmax_cross_entropy

__all__ = ["LocalResponseNorm", "MaxPool2D", "col2im", "Conv2D", "softmax_cross_entropy"]
