"""The lab autograder's command line: exit codes and messages a course's CI relies on.

    0  every check passes
    1  a check fails, raises, is not implemented, times out, or an agreed name is missing
    2  the module cannot be used (missing file, syntax error, import raises)

Also: the header and per-case progress, the time limit, the student's
printing captured, and the JSON / Gradescope reports with weights (issue 16).
"""
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from minialex.gradcheck.lab import EXIT_FAIL, EXIT_PASS, EXIT_UNUSABLE, grade
from minialex.gradcheck.labrun import run_lab as main_lab

ROOT = Path(__file__).resolve().parents[1]
WRONG = ROOT / "tests" / "labs_wrong"
SOLUTIONS = ROOT / "minialex" / "labs" / "solutions" / "__init__.py"


def autograde(*args):
    """Run ``python -m minialex.gradcheck`` from the repository root (this checkout's minialex)."""
    proc = subprocess.run([sys.executable, "-m", "minialex.gradcheck", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    return proc.returncode, proc.stdout, proc.stderr


def test_passing_module_exits_0_with_a_table():
    code, out, err = autograde("--lab", SOLUTIONS, "--names", "lrn,softmax,col2im")
    assert code == EXIT_PASS, out + err
    assert "all checks pass" in out
    for name in ("LocalResponseNorm", "softmax_cross_entropy", "col2im"):
        assert name in out
    assert "FAIL" not in out and "Traceback" not in out + err
    table = out[out.index("\nname "):]
    assert table.count("PASS") == 11                  # 3 LRN + 3 softmax + 5 col2im cases


def test_failing_module_exits_1_with_reason_and_hint():
    code, out, err = autograde("--lab", WRONG / "softmax_no_mean.py", "--names", "softmax")
    assert code == EXIT_FAIL, out + err
    assert "FAIL" in out and "[scale_factor]" in out
    assert "5 = N, the batch size" in out
    assert "3 of 3 check(s) FAILED" in out


def test_syntax_error_exits_2_naming_file_and_line():
    code, out, err = autograde("--lab", WRONG / "syntax_error.py")
    assert code == EXIT_UNUSABLE
    assert "syntax_error.py" in err and "line 5" in err
    assert "def forward(self, x)" in err              # the offending line is quoted
    assert "Traceback" not in out + err
    assert "Nothing was checked" in err or "nothing was checked" in err


def test_module_raising_on_import_exits_2_naming_the_line():
    code, out, err = autograde("--lab", WRONG / "import_error.py")
    assert code == EXIT_UNUSABLE
    assert "FileNotFoundError" in err and "import_error.py line 5" in err
    assert "Traceback" not in out + err


def test_missing_file_exits_2():
    code, out, err = autograde("--lab", WRONG / "no_such_module.py")
    assert code == EXIT_UNUSABLE
    assert "no such file" in err and "Traceback" not in err


def test_missing_name_is_a_failure_row():
    code, out, err = autograde("--lab", WRONG / "missing_name.py", "--names", "lrn")
    assert code == EXIT_FAIL, out + err
    assert "MISSING" in out and "no `LocalResponseNorm` in your module" in out
    assert "Traceback" not in out + err


def test_unknown_names_option_is_explained():
    code, out, err = autograde("--lab", SOLUTIONS, "--names", "lrm")
    assert code == EXIT_UNUSABLE
    assert "unknown lab or name 'lrm'" in err and "Traceback" not in out + err


def test_builtin_suite_still_passes():
    code, out, err = autograde("--layer", "lrn")
    assert code == 0, out + err
    assert "all layers pass" in out


def test_list_prints_agreed_names():
    code, out, _ = autograde("--list")
    assert code == 0
    for name in ("LocalResponseNorm", "MaxPool2D", "col2im", "Conv2D", "softmax_cross_entropy"):
        assert name in out


def test_student_exceptions_become_error_rows(tmp_path):
    student = tmp_path / "student.py"
    student.write_text(
        "import numpy as np\n"
        "def softmax_cross_entropy(x, y):\n"
        "    return x.sum(), x[:, 10]\n")          # IndexError on line 3
    res = grade(student, names=["softmax"])
    assert [r.verdict for r in res.rows] == ["ERROR", "ERROR", "ERROR"]
    assert "IndexError" in res.rows[0].reason
    assert "student.py line 3" in res.rows[0].hints[0]
    assert res.rows[0].hints[0].startswith("softmax / softmax_cross_entropy [N=5, K=7; x (5, 7)]")
    assert res.exit_code == EXIT_FAIL


def test_not_implemented_stub_is_todo(tmp_path):
    student = tmp_path / "stub.py"
    student.write_text(
        "class MaxPool2D:\n"
        "    def __init__(self, kernel_size=3, stride=2):\n"
        "        self.params, self.grads = {}, {}\n"
        "    def forward(self, x, train=True):\n"
        "        raise NotImplementedError\n"
        "    def backward(self, dout):\n"
        "        raise NotImplementedError\n")
    res = grade(student, names=["MaxPool2D"])
    assert {r.verdict for r in res.rows} == {"TODO"}
    assert "not implemented yet (stub.py line 5" in res.rows[0].reason


def test_grade_accepts_a_namespace_dict():
    from minialex.labs.solutions import LocalResponseNorm
    res = grade({"LocalResponseNorm": LocalResponseNorm}, names="lrn")
    assert res.passed and res.exit_code == EXIT_PASS
    assert "all checks pass" in str(res)


def test_main_lab_in_process(capsys):
    assert main_lab(str(WRONG / "syntax_error.py")) == EXIT_UNUSABLE
    assert "line 5" in capsys.readouterr().err


@pytest.mark.parametrize("names", [["nope"], ["LocalResponseNorm", "bogus"]])
def test_grade_rejects_unknown_names(names):
    with pytest.raises(ValueError, match="unknown lab or name"):
        grade({}, names=names)


def test_wrong_constructor_names_the_agreed_signature():
    res = grade(WRONG / "bad_constructor.py", names=["lrn"])
    assert {r.verdict for r in res.rows} == {"ERROR"}
    assert "the agreed constructor is LocalResponseNorm(size=5, alpha=1e-4, beta=0.75, k=2.0)" \
        in res.rows[0].hints[0]


def test_module_calling_exit_on_import_is_unusable(tmp_path):
    student = tmp_path / "exits.py"
    student.write_text("import sys\nsys.exit(3)\n")
    code, out, err = autograde("--lab", student)
    assert code == EXIT_UNUSABLE
    assert "SystemExit" in err and "exits.py line 2" in err


SLOW = """import time
import numpy as np


def softmax_cross_entropy(x, y):
    print("starting a very slow loop")
    time.sleep(30)
    return 0.0, np.zeros_like(x)
"""


def test_slow_module_stops_at_the_time_limit_with_a_clear_message(tmp_path):
    student = tmp_path / "slow.py"
    student.write_text(SLOW)
    t0 = time.monotonic()
    code, out, err = autograde("--lab", student, "--names", "softmax", "--timeout", "3")
    assert time.monotonic() - t0 < 20
    assert code == EXIT_FAIL, out + err
    assert out.startswith(f"grading {student}: softmax_cross_entropy (3 cases; time limit 3 s)")
    assert "TIMEOUT" in out and "the time limit of 3 s per module was reached" in out
    assert "Traceback" not in out + err


def test_header_comes_first_then_progress_per_case():
    code, out, _ = autograde("--lab", SOLUTIONS, "--names", "softmax")
    lines = out.splitlines()
    assert code == EXIT_PASS
    assert lines[0].startswith("grading ") and "(3 cases; time limit 60 s)" in lines[0]
    assert all(ln.lstrip().startswith("[") for ln in lines[1:4]), out
    assert "[ 3/3] softmax_cross_entropy" in out


def test_students_printing_is_captured_and_truncated(tmp_path):
    student = tmp_path / "chatty.py"
    student.write_text("import numpy as np\n"
                       "print('hello from import')\n"
                       "def softmax_cross_entropy(x, y):\n"
                       "    for i in range(50):\n"
                       "        print('debug line', i)\n"
                       "    z = x - x.max(axis=1, keepdims=True)\n"
                       "    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)\n"
                       "    n = len(y)\n"
                       "    d = p.copy(); d[np.arange(n), y] -= 1\n"
                       "    return -np.log(p[np.arange(n), y]).mean(), d / n\n")
    code, out, _ = autograde("--lab", student, "--names", "softmax")
    assert code == EXIT_PASS, out
    assert "hello from import" in out and "debug line 0" in out
    assert "debug line 49" not in out and "truncated; 151 lines in all" in out
    head = out[:out.index("\nname ")]
    assert "debug line" not in head                 # nothing leaks between the progress lines


def test_json_report(tmp_path):
    code, out, _ = autograde("--lab", ROOT / "tests" / "labs_wrong2" / "lrn_cross_sign.py", "--names", "lrn",
                             "--format", "json")
    assert code == EXIT_FAIL
    data = json.loads(out)
    assert data["score"] == 0 and data["max_score"] == 3 and not data["passed"]
    f = data["rows"][0]["failures"][0]
    assert f["tensor"] == "dx" and f["code"] == "lrn_cross_sign"
    assert f["step"].startswith("notebooks/labs/lab-3.3-lrn-backward.ipynb, step 3")


def test_gradescope_results_with_weights(tmp_path):
    weights = tmp_path / "weights.json"
    weights.write_text(json.dumps({"lrn": 2, "MaxPool2D": 0.5}))
    results = tmp_path / "results.json"
    code, out, err = autograde("--lab", ROOT / "tests" / "labs_wrong2" / "pool_ties_every.py",
                               "--names", "lrn,maxpool", "--format", "gradescope", "--weights", weights,
                               "--output", results, "--visibility", "after_due_date")
    assert code == EXIT_FAIL
    data = json.loads(results.read_text())
    assert data["max_score"] == 3 * 2 + 4 * 0.5           # LRN missing: 0 of its 3 cases x 2
    assert data["score"] == 3 * 0.5                       # three max-pool cases pass, the tie case fails
    assert len(data["tests"]) == 1 + 4
    for t in data["tests"]:
        assert set(t) >= {"name", "score", "max_score", "output", "visibility"}
        assert t["visibility"] == "after_due_date"
    tie = [t for t in data["tests"] if "tied" in t["name"]][0]
    assert tie["score"] == 0 and "pool_ties_every" in tie["output"]
    assert "grading" in err                               # progress goes to stderr in this format


def test_inline_weights_and_a_bad_weight_is_explained():
    code, out, err = autograde("--lab", SOLUTIONS, "--names", "softmax", "--weights",
                               "softmax_cross_entropy=2.5", "--format", "json")
    assert code == EXIT_PASS and json.loads(out)["max_score"] == 7.5
    code, out, err = autograde("--lab", SOLUTIONS, "--weights", "lrn:two")
    assert code == EXIT_UNUSABLE and "--weights: cannot read 'lrn:two'" in err


def test_grading_the_solutions_takes_well_under_10_s():
    t0 = time.monotonic()
    code, out, _ = autograde("--lab", SOLUTIONS)
    assert code == EXIT_PASS, out
    assert time.monotonic() - t0 < 10


def test_junit_report_for_ci_systems():
    import xml.etree.ElementTree as ET
    code, out, _ = autograde("--lab", ROOT / "tests" / "labs_wrong2" / "col2im_no_crop.py", "--names", "col2im",
                             "--format", "junit")
    assert code == EXIT_FAIL
    suite = ET.fromstring(out)
    cases = suite.findall("testcase")
    assert len(cases) == 5 and suite.get("failures") == "2"        # the two cases with padding > 0
    failed = [c for c in cases if c.find("failure") is not None]
    assert all("padding 1" in c.get("name") for c in failed)
    assert "not cropped" in failed[0].find("failure").text


def test_exit_and_input_in_student_code_do_not_stop_the_grading(tmp_path):
    student = tmp_path / "rude.py"
    student.write_text("import sys\n"
                       "def softmax_cross_entropy(x, y):\n"
                       "    if x.shape[0] == 5:\n"
                       "        sys.exit(1)\n"
                       "    return input('loss? '), x\n")
    code, out, err = autograde("--lab", student, "--names", "softmax", "--timeout", "20")
    assert code == EXIT_FAIL, out + err
    assert "your code called exit(1) at rude.py line 4" in out
    assert "EOFError" in out                                       # input() gets no terminal
    assert "TIMEOUT" not in out and "Traceback" not in out + err
