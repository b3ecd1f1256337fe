"""The lab autograder's command line: exit codes and messages a course's CI relies on.

    0  every check passes
    1  a check fails, raises, is not implemented, or an agreed name is missing
    2  the module cannot be used (missing file, syntax error, import raises)
"""
import subprocess
import sys
from pathlib import Path

import pytest

from minialex.gradcheck.lab import EXIT_FAIL, EXIT_PASS, EXIT_UNUSABLE, grade, main_lab

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
    assert out.count("PASS") == 6                     # two cases per name


def test_failing_module_exits_1_with_reason_and_hint():
    code, out, err = autograde("--lab", WRONG / "softmax_no_mean.py", "--names", "softmax")
    assert code == EXIT_FAIL, out + err
    assert "FAIL" in out and "[scale_factor]" in out
    assert "5 = N, the batch size" in out
    assert "2 of 2 check(s) FAILED" in out


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
    assert "unknown lab or name 'lrm'" in out


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
    assert [r.verdict for r in res.rows] == ["ERROR", "ERROR"]
    assert "IndexError" in res.rows[0].reason
    assert "student.py line 3" in res.rows[0].hints[0]
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
