"""The lab autograder: grade a student's module against minialex's reference layers.

    python -m minialex.gradcheck --lab path/to/student_module.py
    python -m minialex.gradcheck --lab student.py --names lrn          # one lab
    python -m minialex.gradcheck --lab student.py --names Conv2D,col2im

The module is imported from its path; every agreed name (``minialex.labs``)
is looked up and checked by the cases in ``minialex/labs/spec.py``. The
output is a table (name, check, gradient error, forward error, verdict,
reason) followed by the hints of every failing row.

Exit codes, for a course's CI:
    0  every check passes
    1  some check fails, raises, is not implemented, or a name is missing
    2  the module cannot be used at all (file missing, syntax error, import
       raises); a one-paragraph message names the file and the line

In a notebook, ``grade(globals(), names=["lrn"])`` returns the same result
(``print(result)``, ``result.passed``).
"""
from __future__ import annotations

import importlib.util
import os
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

EXIT_PASS, EXIT_FAIL, EXIT_UNUSABLE = 0, 1, 2

_PKG_DIR = str(Path(__file__).resolve().parents[1])     # .../minialex


class StudentModuleError(Exception):
    """The student's module cannot be imported; ``str()`` is the message to show."""


def load_student_module(path):
    """Import a Python file by path; raise ``StudentModuleError`` with a readable message."""
    path = Path(path)
    if not path.is_file():
        raise StudentModuleError(f"cannot grade {path}: no such file. Pass the path of the .py file "
                                 "that defines your classes and functions.")
    name = f"_minialex_student_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise StudentModuleError(f"cannot grade {path}: it is not an importable Python file "
                                 "(expected a .py file).")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path.resolve().parent))    # let it import its helper files
    try:
        spec.loader.exec_module(module)
    except SyntaxError as e:
        where = f"line {e.lineno}" + (f", column {e.offset}" if e.offset else "")
        code = f": `{e.text.strip()}`" if e.text else ""
        raise StudentModuleError(
            f"cannot grade {path}: Python could not read it, a {type(e).__name__} at {where}{code} "
            f"({e.msg}). Fix that line (run `python {path}` to see the same error) and grade again; "
            "nothing was checked.") from None
    except BaseException as e:        # noqa: BLE001 - anything a student file may raise, even exit()
        if isinstance(e, KeyboardInterrupt):
            raise
        raise StudentModuleError(
            f"cannot grade {path}: importing it raised {type(e).__name__}: {e} "
            f"({_student_line(e, str(path.resolve())) or 'at import'}). Code at the top level of the file runs on "
            "import: keep only definitions there (put experiments under "
            "`if __name__ == \"__main__\":`). Nothing was checked.") from None
    finally:
        sys.path.remove(str(path.resolve().parent))
    return module


def _student_line(exc, filename=None):
    """'file.py line 12: `code`' for the deepest frame in student code, or None.

    Student code is ``filename`` when given; otherwise any frame outside the
    minialex package and the import machinery (a notebook cell, a helper file).
    """
    frames = traceback.extract_tb(exc.__traceback__)
    mine = [fr for fr in frames if filename and os.path.abspath(fr.filename) == os.path.abspath(filename)]
    others = [fr for fr in frames if not _is_library(os.path.abspath(fr.filename))]
    pick = (mine or others or [None])[-1]
    if pick is None:
        return None
    code = f": `{pick.line.strip()}`" if pick.line else ""
    where = "your notebook cell," if "ipykernel" in pick.filename else os.path.basename(pick.filename)
    return f"{where} line {pick.lineno}{code}"


def _is_library(path):
    """minialex itself, the standard library, installed packages: not the student's code."""
    return (path.startswith(_PKG_DIR) or "site-packages" in path or "importlib" in path
            or path.startswith(sys.base_prefix) or path.startswith(sys.prefix))


@dataclass
class LabRow:
    """One line of the table."""

    name: str
    check: str
    verdict: str                     # PASS, FAIL, MISSING, ERROR, TODO
    reason: str = ""
    grad_error: float | None = None
    forward_error: float | None = None
    hints: list = field(default_factory=list)
    report: object = None

    @property
    def passed(self):
        return self.verdict == "PASS"


@dataclass
class LabResult:
    """All rows; ``passed``, ``exit_code`` and a printable table."""

    rows: list
    source: str = ""

    @property
    def passed(self):
        return bool(self.rows) and all(r.passed for r in self.rows)

    @property
    def exit_code(self):
        return EXIT_PASS if self.passed else EXIT_FAIL

    def __str__(self):
        return format_table(self)

    def _repr_pretty_(self, p, cycle):     # IPython display
        p.text(str(self))


def _fmt(v):
    return "-" if v is None else f"{v:.1e}"


def format_table(result):
    rows = result.rows
    wn = max([len(r.name) for r in rows] + [4])
    wc = max([len(r.check) for r in rows] + [5])
    head = f"{'name':<{wn}}  {'check':<{wc}}  {'grad err':>8}  {'fwd err':>8}  {'verdict':<7}  reason"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r.name:<{wn}}  {r.check:<{wc}}  {_fmt(r.grad_error):>8}  "
                     f"{_fmt(r.forward_error):>8}  {r.verdict:<7}  {r.reason}")
    failing = [r for r in rows if not r.passed and r.hints]
    for r in failing:
        lines.append("")
        lines.append(f"{r.name}, {r.check}:")
        lines += [f"  - {h}" for h in r.hints]
    n_fail = sum(not r.passed for r in rows)
    lines.append("")
    lines.append("all checks pass" if not n_fail else f"{n_fail} of {len(rows)} check(s) FAILED")
    return "\n".join(lines)


def _reason(report):
    """Short reason for the table: the most specific diagnosis code, or what failed."""
    specific = [d for d in report.diagnoses if d.code not in ("where", "float32")]
    if not report.passed:
        bad = [t.name for t in report.tensors if not t.passed]
        fwd = report.forward is not None and not report.forward.passed
        what = ", ".join(bad) + (" wrong" if bad else "")
        if fwd:
            what = "forward differs" + (f"; {what}" if what else "")
        codes = ", ".join(dict.fromkeys(d.code for d in specific))
        return what + (f" [{codes}]" if codes else "")
    if not report.reliable:
        return "passes, but UNRELIABLE: " + ", ".join(d.code for d in report.diagnoses if d.unreliable)
    return ""


def _run_case(case, obj, filename):
    try:
        with np.errstate(all="ignore"):    # overflow shows up as a "nonfinite" diagnosis instead
            report = case.run(obj)
    except NotImplementedError as e:
        where = _student_line(e, filename)
        return LabRow(case.name, case.check, "TODO", "not implemented yet" + (f" ({where})" if where else ""))
    except Exception as e:                              # noqa: BLE001 - student code may raise anything
        msg = f"{type(e).__name__}: {e}"
        where = _student_line(e, filename)
        return LabRow(case.name, case.check, "ERROR", f"raised {msg[:120]}",
                      hints=[f"your code raised {msg}" + (f" at {where}" if where else "")])
    fwd = None if report.forward is None else report.forward.max_rel_error
    hints = report.hints() + [f"note: {n}" for n in report.notes]
    return LabRow(case.name, case.check, "PASS" if report.passed else "FAIL", _reason(report),
                  report.max_error, fwd, hints if not report.passed or not report.reliable else [],
                  report)


def grade(source, names=None, threshold=None):
    """Grade a module, a path, or a namespace dict (a notebook's ``globals()``).

    ``names``: lab names ("lrn", "maxpool", "conv", "softmax") or agreed names;
    default all agreed names. A missing name is a MISSING row (a failure).
    Returns a ``LabResult``; raises ``StudentModuleError`` for an unusable path.
    """
    from ..labs.spec import cases_for, expand_names

    filename = None
    if isinstance(source, (str, os.PathLike)):
        filename = str(Path(source).resolve())
        source = load_student_module(source)
    if isinstance(source, dict):
        ns, label = source, "namespace"
    else:
        ns, label = vars(source), getattr(source, "__file__", None) or getattr(source, "__name__", "")
        filename = filename or getattr(source, "__file__", None)
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    rows = []
    for name in expand_names(names):
        obj = ns.get(name)
        if obj is None:
            rows.append(LabRow(name, "defined?", "MISSING",
                               f"no `{name}` in your module (the agreed name, spelled exactly)",
                               hints=[f"define `{name}` at the top level of your module; see "
                                      "`python -m minialex.gradcheck --list` for its signature"]))
            continue
        for case in cases_for(name, threshold):
            rows.append(_run_case(case, obj, filename))
    return LabResult(rows, str(label))


def main_lab(path, names=None, threshold=None, out=None, err=None, verbose=False):
    """The CLI's ``--lab``: print the table and return the exit code (0, 1, 2).

    ``verbose``: also print every check's full gradient report.
    """
    out, err = out or sys.stdout, err or sys.stderr
    try:
        result = grade(path, names, threshold)
    except StudentModuleError as e:
        print(str(e), file=err)
        return EXIT_UNUSABLE
    print(f"grading {path}", file=out)
    print(result, file=out)
    if verbose:
        for r in result.rows:
            if r.report is not None:
                print(f"\n{r.name}, {r.check}:\n{r.report}", file=out)
    return result.exit_code
