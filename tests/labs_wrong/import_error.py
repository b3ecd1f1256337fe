"""A student module that raises when imported."""
import numpy as np

SCALE = np.float64(1.0) / 0 if False else None
data = np.load("my_local_file_that_does_not_exist.npy")
