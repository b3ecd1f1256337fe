"""The autograder's diagnosis rate on realistic student modules (issue 16).

tests/labs_wrong2/ holds wrong modules written the way students write them,
each stating the diagnosis it must get on its first docstring line
(``expect: CODE [NAME]``); tests/labs_right/ holds correct modules in other
styles. Targets (the issue's, measured here on our own set):

- every wrong module fails, every correct one passes;
- at least 80% of the failing modules name the bug's class (we assert each);
- no failure names a cause other than the expected one.
"""
import re
from pathlib import Path

import pytest

from minialex.gradcheck.lab import grade

HERE = Path(__file__).resolve().parent
WRONG = sorted(p for p in (HERE / "labs_wrong2").glob("*.py") if not p.name.startswith("_"))
RIGHT = sorted((HERE / "labs_right").glob("*.py"))
EXPECT = re.compile(r'^"""expect: (\w+) \[(\w+)\]')
LAB = {"lrn": "lrn", "pool": "maxpool", "col2im": "col2im", "conv": "conv", "softmax": "softmax"}


def expected(path):
    m = EXPECT.match(path.read_text())
    assert m, f"{path.name}: the first line must say 'expect: CODE [NAME]'"
    return m.group(1), m.group(2)


def names_for(path):
    return [LAB[path.name.split("_")[0]]]


def test_the_sets_are_large_enough():
    assert len(WRONG) >= 30 and len(RIGHT) >= 6
    assert not set(p.name for p in WRONG) & set(p.name for p in (HERE / "labs_wrong").glob("*.py"))


@pytest.mark.parametrize("path", WRONG, ids=lambda p: p.stem)
def test_wrong_module_fails_with_its_diagnosis(path):
    code, name = expected(path)
    res = grade(path, names=[name])
    assert not res.passed, str(res)
    codes = {c for r in res.rows for c in r.codes}
    assert code in codes, f"{path.name}: expected [{code}], got {sorted(codes)}\n{res}"
    assert codes <= {code}, f"{path.name}: names another cause {sorted(codes - {code})}\n{res}"
    text = str(res)
    assert "Traceback" not in text and "kink" not in text
    for r in res.rows:
        for h in r.hints:          # every failure line: lab, name, tensor, case, what, cause, step
            if r.failures:
                assert h.startswith(f"{r.lab} / {name} / "), h
                assert f"[{r.check}]" in h and "notebooks/labs/lab-" in h, h


@pytest.mark.parametrize("path", RIGHT, ids=lambda p: p.stem)
def test_correct_module_in_another_style_passes(path):
    res = grade(path, names=names_for(path))
    assert res.passed, str(res)


def test_diagnosis_rate_on_our_set(capsys):
    named, wrong_cause, failed = 0, 0, 0
    for path in WRONG:
        code, name = expected(path)
        res = grade(path, names=[name])
        failed += not res.passed
        codes = {c for r in res.rows for c in r.codes}
        named += code in codes
        wrong_cause += bool(codes - {code})
    rate = named / len(WRONG)
    with capsys.disabled():
        print(f"\nlabs_wrong2: {failed}/{len(WRONG)} fail, {named}/{len(WRONG)} name the class "
              f"({rate:.0%}), {wrong_cause} name a wrong cause")
    assert failed == len(WRONG)
    assert rate >= 0.8 and wrong_cause == 0


def test_which_cases_fail_is_said_in_words():
    res = grade(HERE / "labs_wrong2" / "conv_groups_first_weights.py", names=["Conv2D"])
    assert "Conv2D: fails only in cases with groups > 1" in str(res), str(res)
    res = grade(HERE / "labs_wrong2" / "col2im_no_crop.py", names=["col2im"])
    assert "fails only in cases with padding > 0" in str(res), str(res)
    assert "the padding (p = 1) is not cropped" in str(res)
    res = grade(HERE / "labs_wrong2" / "pool_ties_every.py", names=["maxpool"])
    assert "MaxPool2D: fails only in cases with tied maxima" in str(res), str(res)
    res = grade(HERE / "labs_wrong2" / "lrn_hardcoded_size.py", names=["lrn"])
    assert "fails only in cases with n = 3" in str(res), str(res)


def test_a_wrong_loss_does_not_blame_a_correct_dx():
    res = grade(HERE / "labs_wrong2" / "softmax_sum_loss.py", names=["softmax"])
    tensors = {f.tensor for r in res.rows for f in r.failures}
    assert tensors == {"loss"}, str(res)                  # dx is right and is not blamed
    assert "x the right value" not in str(res)            # no constant-factor hint on a scalar
    assert "SUM of -log p[y]" in str(res)


def test_per_sample_losses_are_the_students_error_not_the_graders():
    res = grade(HERE / "labs_wrong2" / "softmax_per_sample_loss.py", names=["softmax"])
    assert {r.verdict for r in res.rows} == {"FAIL"}       # not ERROR: nothing raised
    text = str(res)
    assert "your loss has shape (5,); it must be a scalar" in text, text
    assert "raised" not in text


def test_mutated_inputs_fail_with_their_own_message():
    res = grade(HERE / "labs_wrong2" / "softmax_inplace_shift.py", names=["softmax"])
    text = str(res)
    assert "modified its input x in place" in text
    assert all(r.forward_error is not None and r.forward_error < 1e-12 for r in res.rows), text  # ref saw x
    res = grade(HERE / "labs_wrong2" / "lrn_inplace_dout.py", names=["lrn"])
    assert "your backward modified dout in place" in str(res)


def test_float32_is_named_and_never_called_a_kink():
    res = grade(HERE / "labs_wrong2" / "softmax_float32.py", names=["softmax"])
    text = str(res)
    assert "float32" in text and "kink" not in text


def test_max_pool_ties_follow_the_spec_and_the_readable_layer():
    """The spec's tie rule (first maximum, row-major) is what minialex's MaxPool2D does."""
    import numpy as np

    from minialex.labs.variants import pool_run
    x = np.zeros((1, 1, 3, 3))
    x[0, 0, 1, 2] = x[0, 0, 2, 0] = 1.0                     # two tied maxima in one 3x3 window
    dx = pool_run(x, np.ones((1, 1, 1, 1)), 3, 2)["dx"]
    assert dx[0, 0, 1, 2] == 1.0 and dx.sum() == 1.0       # the first in row-major order


def test_every_variant_builds_on_every_case():
    """The grader swallows a variant that raises (it proves nothing); this test does not."""
    import numpy as np

    from minialex.gradcheck.labcase import _reference, _variants
    from minialex.labs.spec import CASES
    for name, cases in CASES.items():
        for case in cases:
            inp = case.inputs()
            ref = _reference(case, inp, None)
            dout = None if name in ("col2im", "softmax_cross_entropy") else \
                np.random.default_rng(0).standard_normal(ref["out"].shape)
            got = list(_variants(case, inp, dout))
            assert len(got) >= 5, (name, case.label)
            for v in got:
                assert v.part in ("forward", "backward") and v.step[0] == case.lab and v.cause, v.code
                assert set(v.tensors) <= {"out", "loss", "dx", "w", "b"}, v.code


def test_a_gradient_consistent_with_an_unknown_wrong_forward_is_said_to_follow_from_it():
    import numpy as np

    def softmax_cross_entropy(x, y):          # softmax at temperature 2: loss and dx agree with each other
        N = x.shape[0]
        z = x / 2 - (x / 2).max(axis=1, keepdims=True)
        log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        dx = np.exp(log_p)
        dx[np.arange(N), y] -= 1
        return -log_p[np.arange(N), y].mean(), dx / N / 2

    res = grade({"softmax_cross_entropy": softmax_cross_entropy}, names="softmax")
    loss_line, dx_line = res.rows[0].hints
    assert "no known mistake matches this" in loss_line
    assert "x the right value" not in loss_line
    assert "right gradient of your own forward" in dx_line and "fix the forward first" in dx_line
    assert not res.rows[0].codes                   # no cause is named that is not known
