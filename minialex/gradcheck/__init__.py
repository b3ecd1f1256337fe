"""Numerical gradient checks, diagnostics that teach, and a lab autograder.

    python -m minialex.gradcheck                      # check every built-in layer
    python -m minialex.gradcheck --layer lrn          # check one family
    python -m minialex.gradcheck --lab student.py     # grade a student's module

Files (imports point one way: numeric, report <- diagnose <- core <- the rest):
    numeric.py    centred differences, relative error, the default threshold
    report.py     ``TensorCheck``, ``Diagnosis``, ``GradReport``, ``CheckContext``
    diagnose.py   where a failing gradient's errors sit and what that means
    core.py       ``check_layer``, ``check_functions``, ``check_loss``
    builtin.py    the suite of built-in layers (inputs away from kinks)
    lab.py        the autograder: load a module, grade it case by case
    labcase.py    one case: run the student's code, compare, name the mistake
    labrun.py     ``--lab``: a child process with a time limit, progress
    labreport.py  text, JSON and Gradescope reports, weights
    cli.py        the command line

See core.py for the error definition (relative to the tensor's scale) and
the 1e-6 threshold.
"""
from .builtin import builtin_cases
from .cli import main
from .core import (DEFAULT_EPS, DEFAULT_THRESHOLD, Diagnosis, GradReport, TensorCheck,
                   check_functions, check_layer, check_loss, numerical_gradient, rel_error,
                   rel_error_map, scaled_error_map)
from .lab import grade

__all__ = [
    "numerical_gradient", "rel_error", "rel_error_map", "scaled_error_map", "check_layer",
    "check_functions", "check_loss", "GradReport", "TensorCheck", "Diagnosis", "builtin_cases",
    "main", "grade", "DEFAULT_EPS", "DEFAULT_THRESHOLD",
]
