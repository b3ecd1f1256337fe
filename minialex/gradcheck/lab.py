"""The lab autograder: grade a student's module against minialex's reference layers.

    python -m minialex.gradcheck --lab path/to/student_module.py
    python -m minialex.gradcheck --lab student.py --names lrn          # one lab
    python -m minialex.gradcheck --lab student.py --format gradescope --output results.json

The module is imported from its path; every agreed name (``minialex.labs``)
is looked up and graded on the cases of ``minialex/labs/spec.py``
(``labcase.py`` runs one case and names the mistake). Each case is a row:
PASS, FAIL (with one line per failure: lab, name, tensor, case, what is
wrong, the most likely cause and the notebook step), ERROR (the student's
code raised; its line is quoted), TODO (``NotImplementedError``), MISSING
(the name is not defined) or TIMEOUT. Per name, a line says which cases
fail when they share something ("fails only with stride 2").

From the command line the module runs in a child process (``labrun.py``)
with a time limit, its printing captured; ``grade()`` below runs in-process
(a notebook's ``grade(globals(), names=["lrn"])``); ``labreport.py`` writes
the text, JSON and Gradescope reports.

Exit codes, for a course's CI:
    0  every check passes
    1  some check fails, raises, is not implemented, times out, or a name is missing
    2  the module cannot be used at all (file missing, syntax error, import
       raises); a one-paragraph message names the file and the line
"""
from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import sys
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..labs.spec import LAB_OF, cases_for, expand_names
from .labcase import ConstructorError, Failure, run_case
from .labreport import case_summary, failure_line, format_text

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
    """One case of one agreed name (or one MISSING name)."""

    name: str
    check: str                       # the case: shapes, stride, padding, groups, constants
    verdict: str                     # PASS, FAIL, MISSING, ERROR, TODO, TIMEOUT
    reason: str = ""
    grad_error: float | None = None
    forward_error: float | None = None
    hints: list = field(default_factory=list)       # one line per failure, complete
    failures: list = field(default_factory=list)    # Failure objects (or their dicts)
    tags: list = field(default_factory=list)
    seconds: float = 0.0
    printed: str = ""                # what the student's code printed during this case
    n_cases: int = 1                 # a MISSING row stands for all of its name's cases

    @property
    def passed(self):
        return self.verdict == "PASS"

    @property
    def lab(self):
        return LAB_OF.get(self.name, "")

    @property
    def codes(self):
        return [f.code if isinstance(f, Failure) else f.get("code", "") for f in self.failures
                if (f.code if isinstance(f, Failure) else f.get("code"))]

    def to_dict(self):
        d = asdict(self)
        d["failures"] = [asdict(f) if isinstance(f, Failure) else f for f in self.failures]
        return d

    @classmethod
    def from_dict(cls, d):
        d = dict(d)
        d["failures"] = [Failure(**f) for f in d.get("failures", [])]
        for f in d["failures"]:
            f.step = tuple(f.step) if f.step else None
        return cls(**d)


@dataclass
class LabResult:
    """All rows; ``passed``, ``exit_code``, per-name summaries and a printable report."""

    rows: list
    source: str = ""
    printed: str = ""                # printed while importing the module
    notes: list = field(default_factory=list)

    @property
    def passed(self):
        return bool(self.rows) and all(r.passed for r in self.rows)

    @property
    def exit_code(self):
        return EXIT_PASS if self.passed else EXIT_FAIL

    @property
    def summaries(self):
        return [s for s in (case_summary(self.rows, n) for n in dict.fromkeys(r.name for r in self.rows)) if s]

    def __str__(self):
        return format_text(self)

    def _repr_pretty_(self, p, cycle):     # IPython display
        p.text(str(self))


def _reason(outcome):
    bad = list(dict.fromkeys(f.tensor for f in outcome.failures))
    codes = ", ".join(dict.fromkeys(f.code for f in outcome.failures if f.code))
    return ", ".join(bad) + " wrong" + (f" [{codes}]" if codes else "")


MAX_PRINTED = 20000      # characters kept of what one case printed (the report shows fewer)


def _cap(text):
    if len(text) <= MAX_PRINTED:
        return text
    n = text.count("\n")
    return text[:MAX_PRINTED] + f"\n... ({len(text) - MAX_PRINTED} more characters, {n} lines in all)\n"


@contextlib.contextmanager
def captured():
    """Collect what the student's code prints (stdout and stderr) instead of showing it."""
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
        yield buf


def grade_case(case, obj, filename=None, threshold=None):
    """One ``LabRow`` for one case; the student's exceptions become ERROR/TODO rows."""
    with captured() as buf:
        try:
            out = run_case(case, obj, threshold)
        except SystemExit as e:                             # exit() in a forward would end the grading
            where = _student_line(e, filename)
            return LabRow(case.name, case.label, "ERROR", "called exit()",
                          hints=[f"{LAB_OF[case.name]} / {case.name} [{case.label}]: your code called "
                                 f"exit({e.code if e.code is not None else ''})" + (f" at {where}" if where else "")
                                 + "; a layer must return its result, never end the program"],
                          tags=sorted(case.tags), printed=_cap(buf.getvalue()))
        except NotImplementedError as e:
            where = _student_line(e, filename)
            return LabRow(case.name, case.label, "TODO", "not implemented yet" + (f" ({where})" if where else ""),
                          tags=sorted(case.tags), printed=_cap(buf.getvalue()))
        except Exception as e:                              # noqa: BLE001 - student code may raise anything
            msg = f"{'TypeError' if isinstance(e, ConstructorError) else type(e).__name__}: {e}"
            where = _student_line(e, filename)
            if where is None and not isinstance(e, ConstructorError):
                # no frame of the student's code: the grader itself failed, say so
                return LabRow(case.name, case.label, "ERROR", "the autograder failed (not your code)",
                              hints=[f"{LAB_OF[case.name]} / {case.name} [{case.label}]: the autograder "
                                     f"itself raised {msg} outside your code; this is not your mistake, "
                                     "please report it to your instructor"],
                              tags=sorted(case.tags), printed=_cap(buf.getvalue()))
            return LabRow(case.name, case.label, "ERROR", f"raised {msg[:120]}",
                          hints=[f"{LAB_OF[case.name]} / {case.name} [{case.label}]: your code raised {msg}"
                                 + (f" at {where}" if where else "")],
                          tags=sorted(case.tags), printed=_cap(buf.getvalue()))
    fwd = out.errors.get("out", out.errors.get("loss"))
    grads = [v for k, v in out.errors.items() if k not in ("out", "loss")]
    row = LabRow(case.name, case.label, out.verdict, "" if out.passed else _reason(out),
                 max(grads) if grads else None, fwd, failures=out.failures, tags=sorted(case.tags),
                 seconds=out.seconds, printed=_cap(buf.getvalue()))
    row.hints = [failure_line(row, f) + "".join(f"\n      {d}" for d in f.details) for f in out.failures]
    return row


def planned_rows(names):
    """(name, case) pairs that ``grade`` will run, in order."""
    return [(n, c) for n in expand_names(_split_names(names)) for c in cases_for(n)]


def _split_names(names):
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    return names


def grade(source, names=None, threshold=None, on_row=None):
    """Grade a module, a path, or a namespace dict (a notebook's ``globals()``), in this process.

    ``names``: lab names ("lrn", "maxpool", "conv", "softmax") or agreed names;
    default all agreed names. A missing name is a MISSING row (a failure).
    ``on_row(row, index, total)`` is called after each row (progress).
    Returns a ``LabResult``; raises ``StudentModuleError`` for an unusable path.
    """
    names = expand_names(_split_names(names))
    filename, printed = None, ""
    if isinstance(source, (str, os.PathLike)):
        filename = str(Path(source).resolve())
        with captured() as buf:
            source = load_student_module(source)
        printed = _cap(buf.getvalue())
    if isinstance(source, dict):
        ns, label = source, "namespace"
    else:
        ns, label = vars(source), getattr(source, "__file__", None) or getattr(source, "__name__", "")
        filename = filename or getattr(source, "__file__", None)
    rows, total = [], len(planned_rows(names))
    for name in names:
        obj = ns.get(name)
        cases = cases_for(name)
        if obj is None:
            new = [LabRow(name, "defined?", "MISSING",
                          f"no `{name}` in your module (the agreed name, spelled exactly)",
                          hints=[f"{LAB_OF[name]} / {name}: not defined; define `{name}` at the top level of "
                                 "your module; see `python -m minialex.gradcheck --list` for its signature"],
                          n_cases=len(cases))]
        else:
            new = [grade_case(case, obj, filename, threshold) for case in cases]
        for row in new:
            rows.append(row)
            if on_row is not None:
                on_row(row, sum(r.n_cases for r in rows), total)
    return LabResult(rows, str(label), printed)
