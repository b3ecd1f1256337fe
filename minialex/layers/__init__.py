"""minialex layers, one file per family (see STYLE.md)."""
from .activation import ReLU, Tanh
from .base import Layer
from .container import Sequential
from .conv import Conv2D
from .dropout import Dropout
from .linear import Flatten, Linear
from .local import LocallyConnected2D
from .loss import SoftmaxCrossEntropy, softmax
from .lrn import LocalResponseNorm
from .pool import MaxPool2D

__all__ = [
    "Layer", "Conv2D", "ReLU", "Tanh", "LocalResponseNorm", "MaxPool2D", "Dropout",
    "LocallyConnected2D", "Linear", "Flatten", "Sequential", "SoftmaxCrossEntropy", "softmax",
]
