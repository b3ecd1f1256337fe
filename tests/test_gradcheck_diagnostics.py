"""Known-wrong student implementations fail with the diagnosis that names their mistake.

Each module in tests/labs_wrong/ reproduces one classic mistake; the
autograder's cases (minialex/labs/spec.py, float64, threshold 1e-6) must fail
it, and the report must carry the diagnosis code and a hint that names what
to check. The reference solutions must pass the same cases.
"""
from pathlib import Path

import numpy as np
import pytest

from minialex.gradcheck.lab import grade, grade_case, load_student_module
from minialex.gradcheck.labcase import run_case
from minialex.labs import AGREED_NAMES, cases_for
from minialex.labs import solutions

WRONG = Path(__file__).resolve().parent / "labs_wrong"


class _Report:
    """One case's outcome, read the way these tests read a gradient report."""

    def __init__(self, row):
        self.row = row
        self.passed = row.passed
        self.codes = row.codes
        bad = {f.tensor for f in row.failures}
        self.forward = type("F", (), {"passed": not bad & {"out", "loss"}})()
        self._bad = bad

    def __getitem__(self, tensor):
        return type("T", (), {"passed": tensor not in self._bad})()

    def __str__(self):
        return "\n".join(self.row.hints) or self.row.verdict


def _reports(module_name, name, only=None):
    mod = load_student_module(WRONG / f"{module_name}.py")
    cases = cases_for(name)
    if only is not None:
        cases = [cases[only]]
    return [_Report(grade_case(c, getattr(mod, name))) for c in cases]


@pytest.mark.parametrize("name", AGREED_NAMES)
def test_reference_solutions_pass_every_case(name):
    for case in cases_for(name):
        out = run_case(case, getattr(solutions, name))
        assert out.passed, [f.what for f in out.failures]
        grads = [v for k, v in out.errors.items() if k not in ("out", "loss")]
        assert max(grads) < 1e-7, out.errors
        fwd = out.errors.get("out", out.errors.get("loss"))
        if fwd is not None:
            assert fwd < 1e-12, out.errors


def test_lrn_missing_cross_channel_term():
    for rep in _reports("lrn_no_cross_channel", "LocalResponseNorm"):
        assert not rep.passed
        assert rep.forward.passed                    # the forward is right, only backward is wrong
        assert not rep["dx"].passed
        assert "lrn_cross_channel" in rep.codes, str(rep)
        assert "cross-channel" in str(rep)


def test_lrn_off_by_one_window_is_named():
    *n5, n3 = _reports("lrn_off_by_one", "LocalResponseNorm")
    assert "i-1..i (2 maps)" in str(n3) and "j..j+1 (2 maps)" in str(n3)   # n = 3: the same slice bug
    for rep in n5:
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
    overlapping, classic = _reports("maxpool_overwrite", "MaxPool2D")[:2]   # 3/2 overlapping, 2/2 classic
    assert not overlapping.passed
    assert "pool_overlap" in overlapping.codes, str(overlapping)
    assert "accumulate" in str(overlapping)
    assert overlapping.forward.passed
    assert classic.passed, str(classic)              # z = s: no overlaps, overwriting is harmless


def test_col2im_overwrite_fails_at_overlaps():
    no_overlap, *overlapping = _reports("col2im_overwrite", "col2im")      # case 0: 2x2, stride 2
    assert no_overlap.passed, str(no_overlap)
    for rep in overlapping:
        assert not rep.passed
        assert "pool_overlap" in rep.codes, str(rep)


def test_conv_unflipped_kernel():
    rep = _reports("conv_unflipped", "Conv2D", only=3)[0]  # stride 1, padding 0, groups 2
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
    for rep, N in zip(_reports("softmax_no_mean", "softmax_cross_entropy"), (5, 4, 3)):
        assert not rep.passed
        assert rep.forward.passed
        assert "scale_factor" in rep.codes, str(rep)
        assert f"{N} = N, the batch size" in str(rep)


def test_grade_table_carries_the_reason():
    res = grade(WRONG / "maxpool_overwrite.py", names=["maxpool"])
    assert not res.passed and res.exit_code == 1
    verdicts = [r.verdict for r in res.rows]
    assert verdicts == ["FAIL", "PASS", "FAIL", "FAIL"]      # 3/2, 2/2 (no overlap), 3/1, 3/2 with ties
    assert "pool_overlap" in res.rows[0].reason
    assert "gradients must accumulate" in str(res)


def test_softmax_without_max_subtraction_overflows_on_large_logits():
    with np.errstate(over="ignore", invalid="ignore"):    # the overflow is the point
        small, large, _ = _reports("softmax_unstable", "softmax_cross_entropy")
    assert small.passed, str(small)                  # fine while exp() does not overflow
    assert not large.passed
    assert "nonfinite" in large.codes, str(large)
    assert "subtract the row maximum" in str(large)
