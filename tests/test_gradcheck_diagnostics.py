"""Known-wrong student implementations fail with the diagnosis that names their mistake.

Each module in tests/labs_wrong/ reproduces one classic mistake; the
autograder's cases (minialex/labs/spec.py, float64, threshold 1e-6) must fail
it, and the report must carry the diagnosis code and a hint that names what
to check. The reference solutions must pass the same cases.
"""
from pathlib import Path

import numpy as np
import pytest

from minialex.gradcheck.lab import grade, load_student_module
from minialex.labs import AGREED_NAMES, cases_for
from minialex.labs import solutions

WRONG = Path(__file__).resolve().parent / "labs_wrong"


def _reports(module_name, name, only=None):
    mod = load_student_module(WRONG / f"{module_name}.py")
    cases = cases_for(name)
    if only is not None:
        cases = [cases[only]]
    return [c.run(getattr(mod, name)) for c in cases]


@pytest.mark.parametrize("name", AGREED_NAMES)
def test_reference_solutions_pass_every_case(name):
    for case in cases_for(name):
        rep = case.run(getattr(solutions, name))
        assert rep.passed, str(rep)
        assert rep.reliable, str(rep)
        assert rep.max_error < 1e-7, str(rep)
        if rep.forward is not None:
            assert rep.forward.max_rel_error < 1e-12, str(rep)


def test_lrn_missing_cross_channel_term():
    for rep in _reports("lrn_no_cross_channel", "LocalResponseNorm"):
        assert not rep.passed
        assert rep.forward.passed                    # the forward is right, only backward is wrong
        assert not rep["dx"].passed
        assert "lrn_cross_channel" in rep.codes, str(rep)
        assert "cross-channel" in str(rep)


def test_lrn_off_by_one_window_is_named():
    for rep in _reports("lrn_off_by_one", "LocalResponseNorm"):
        assert not rep.passed
        assert not rep.forward.passed                # the forward differs from minialex's
        assert "lrn_window" in rep.codes, str(rep)
        text = str(rep)
        assert "i-2..i+1 (4 maps)" in text           # the window the student actually used
        assert "j-1..j+2" in text                    # what backward should sum over for that forward


def test_lrn_wraparound_at_edges_points_at_clipping():
    rep = _reports("lrn_wraparound", "LocalResponseNorm", only=0)[0]
    assert not rep.passed and rep.forward.passed
    assert "lrn_window_edges" in rep.codes, str(rep)
    assert "errors only at the first/last 2 channels" in str(rep)
    assert "clipping of the LRN window" in str(rep)


def test_maxpool_overwrite_fails_only_where_windows_overlap():
    overlapping, classic = _reports("maxpool_overwrite", "MaxPool2D")
    assert not overlapping.passed
    assert "pool_overlap" in overlapping.codes, str(overlapping)
    assert "accumulate" in str(overlapping)
    assert overlapping.forward.passed
    assert classic.passed, str(classic)              # z = s: no overlaps, overwriting is harmless


def test_col2im_overwrite_fails_at_overlaps():
    for rep in _reports("col2im_overwrite", "col2im"):
        assert not rep.passed
        assert "pool_overlap" in rep.codes, str(rep)


def test_conv_unflipped_kernel():
    rep = _reports("conv_unflipped", "Conv2D", only=0)[0]  # stride 1, padding 1, groups 2
    assert not rep.passed
    assert rep["w"].passed and rep["b"].passed and rep.forward.passed
    assert "conv_kernel_flip" in rep.codes, str(rep)
    assert "rotated by 180 degrees" in str(rep)


def test_conv_transposed_kernel():
    for rep in _reports("conv_transposed", "Conv2D"):
        assert not rep.passed
        assert "conv_kernel_transpose" in rep.codes, str(rep)
        assert "conv_kernel_flip" not in rep.codes


def test_softmax_without_mean_reports_factor_n():
    for rep, N in zip(_reports("softmax_no_mean", "softmax_cross_entropy"), (5, 4)):
        assert not rep.passed
        assert rep.forward.passed
        assert "scale_factor" in rep.codes, str(rep)
        assert f"{N} = N, the batch size" in str(rep)


def test_grade_table_carries_the_reason():
    res = grade(WRONG / "maxpool_overwrite.py", names=["maxpool"])
    assert not res.passed and res.exit_code == 1
    verdicts = [r.verdict for r in res.rows]
    assert verdicts == ["FAIL", "PASS"]
    assert "pool_overlap" in res.rows[0].reason
    assert "gradients must accumulate" in str(res)


def test_softmax_without_max_subtraction_overflows_on_large_logits():
    with np.errstate(over="ignore", invalid="ignore"):    # the overflow is the point
        small, large = _reports("softmax_unstable", "softmax_cross_entropy")
    assert small.passed, str(small)                  # fine while exp() does not overflow
    assert not large.passed
    assert "nonfinite" in large.codes, str(large)
    assert "subtract the row maximum" in str(large)
