"""The autograder's reports: text for a terminal, JSON, and Gradescope's results.json.

    --format text         a table, one line per failure, which cases fail, what the code printed
    --format json         the same as data: rows, failures (code, cause, step), score
    --format gradescope   Gradescope's results.json: score, max_score, and per test
                          its name, score, max_score, output and visibility
    --format junit        JUnit XML, as ``pytest --junitxml`` writes it, for CI systems
                          (GitLab, Jenkins, GitHub test reporters): one testcase per case

Weights: each case is worth 1 point unless ``--weights`` says otherwise, as a
JSON file or inline, ``lrn=2,Conv2D=3,"Conv2D:3x3, stride 2, ...=0.5"``. A
key is a lab ("lrn"), an agreed name ("Conv2D") or "name:case label"; the
most specific key wins. The weight is per case: a name worth 2 with five
cases is worth 10. A MISSING name scores 0 of all its cases' weights.
"""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from ..labs.spec import LAB_OF, TAG_TEXT, step_text

PRINT_LINES, PRINT_CHARS = 12, 1500


def failure_line(row, f):
    """One line: lab, name, tensor, case, what is wrong, the likely cause and the notebook step."""
    head = f"{row.lab} / {row.name} / {f.tensor} [{row.check}]: {f.what}"
    if f.cause and f.code:
        cause = f"most likely cause [{f.code}]: {f.cause}"
    elif f.cause:
        cause = f.cause
    elif f.code:
        cause = f"[{f.code}]"
    else:
        cause = "no known mistake matches this"
    step = f"; see {step_text(*f.step)}" if f.step else ""
    return f"{head}. {cause}{step}."


def case_summary(rows, name):
    """'Conv2D fails only in cases with groups > 1' when the failing cases share a property."""
    mine = [r for r in rows if r.name == name and r.verdict != "MISSING"]
    bad = [r for r in mine if r.verdict in ("FAIL", "ERROR")]
    good = [r for r in mine if r.passed]
    if not bad or not good:
        return ""
    tags = set().union(*(set(r.tags) for r in mine))
    only = [t for t in sorted(tags) if all(t in r.tags for r in bad) and not any(t in r.tags for r in good)]
    without = [t for t in sorted(tags) if not any(t in r.tags for r in bad) and all(t in r.tags for r in good)]
    parts = [f"with {TAG_TEXT.get(t, t)}" for t in only] + [f"without {TAG_TEXT.get(t, t)}" for t in without]
    if not parts:
        return f"{name}: {len(bad)} of {len(mine)} cases fail; they share no property the passing ones lack."
    return (f"{name}: fails only in cases {' or '.join(parts)} ({len(bad)} of {len(mine)} cases); "
            "the others pass.")



def parse_weights(spec):
    """``--weights``: a JSON file path or "key=value,key=value" -> {key: float}. ValueError if malformed."""
    if not spec:
        return {}
    if isinstance(spec, dict):
        return {str(k): float(v) for k, v in spec.items()}
    p = Path(spec)
    if p.suffix == ".json" or p.is_file():
        try:
            data = json.loads(p.read_text())
        except (OSError, ValueError) as e:
            raise ValueError(f"--weights {spec}: cannot read it as JSON ({e}); expected "
                             '{"lrn": 2, "Conv2D": 1}') from None
        if not isinstance(data, dict):
            raise ValueError(f"--weights {spec}: expected a JSON object like {{\"lrn\": 2}}")
        return parse_weights(data)
    out = {}
    for item in spec.split(","):
        key, sep, val = item.rpartition("=")
        try:
            if not sep or not key.strip():
                raise ValueError
            out[key.strip()] = float(val)
        except ValueError:
            raise ValueError(f"--weights: cannot read {item!r}; expected KEY=NUMBER, e.g. lrn=2,Conv2D=1 "
                             "(KEY: a lab, an agreed name or 'name:case'), or a .json file") from None
    return out


def weight_of(row, weights):
    """The weight of one case row: "name:case" > name > lab > 1."""
    for key in (f"{row.name}:{row.check}", row.name, LAB_OF.get(row.name, "")):
        if key in weights:
            return weights[key]
    return 1.0


def scores(result, weights=None):
    """[(row, score, max_score)] and the totals."""
    weights = weights or {}
    per = []
    for r in result.rows:
        w = weight_of(r, weights) * r.n_cases
        per.append((r, w if r.passed else 0.0, w))
    return per, sum(s for _, s, _ in per), sum(m for _, _, m in per)


def _fmt(v):
    return "-" if v is None else f"{v:.1e}"


def printed_text(result, lines=PRINT_LINES, chars=PRINT_CHARS):
    """What the student's code printed, truncated: '' when nothing."""
    parts = ([("while importing", result.printed)] if result.printed else []) + \
        [(f"{r.name} [{r.check}]", r.printed) for r in result.rows if r.printed]
    if not parts:
        return ""
    text = "".join(f"--- {where}:\n{p if p.endswith(chr(10)) else p + chr(10)}" for where, p in parts)
    all_lines = text.splitlines()
    shown = "\n".join(all_lines[:lines])[:chars]
    n_out = sum(len(p.splitlines()) for _, p in parts)
    more = "" if shown == text.rstrip("\n") else f"\n  ... (truncated; {n_out} lines in all)"
    return (f"your code printed {n_out} line(s) while being graded (shown here, not in the table):\n"
            + "\n".join("  | " + ln for ln in shown.splitlines()) + more)


def format_text(result, verbose=False, weights=None):
    rows = result.rows
    wn = max([len(r.name) for r in rows] + [4])
    wc = max([len(r.check) for r in rows] + [4])
    head = (f"{'name':<{wn}}  {'case':<{wc}}  {'grad err':>8}  {'fwd err':>8}  {'verdict':<7}  "
            f"{'time':>6}  reason")
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r.name:<{wn}}  {r.check:<{wc}}  {_fmt(r.grad_error):>8}  {_fmt(r.forward_error):>8}  "
                     f"{r.verdict:<7}  {r.seconds:5.2f}s  {r.reason}")
    hints = [h for r in rows if not r.passed for h in r.hints]
    if hints:
        lines += ["", "what is wrong, and the most likely cause:"]
        lines += [f"  - {h}" for h in hints]
    if result.summaries:
        lines += ["", "which cases fail:"] + [f"  - {s}" for s in result.summaries]
    lines += [f"note: {n}" for n in result.notes]
    shown = printed_text(result, *((10 ** 9, 10 ** 9) if verbose else ()))   # -v: all of it
    if shown:
        lines += ["", shown]
    _, got, best = scores(result, weights)
    n_fail = sum(r.n_cases for r in rows if not r.passed)
    n_all = sum(r.n_cases for r in rows)
    lines.append("")
    lines.append(f"score {got:g} / {best:g}")
    lines.append("all checks pass" if not n_fail else f"{n_fail} of {n_all} check(s) FAILED")
    return "\n".join(lines)


def _failure_dict(row, f):
    return {"tensor": f.tensor, "what": f.what, "code": f.code, "cause": f.cause,
            "step": step_text(*f.step) if f.step else "", "details": list(f.details),
            "line": failure_line(row, f)}


def format_json(result, weights=None):
    per, got, best = scores(result, weights)
    return {
        "source": result.source, "passed": result.passed, "score": got, "max_score": best,
        "rows": [{"lab": r.lab, "name": r.name, "case": r.check, "tags": list(r.tags), "verdict": r.verdict,
                  "reason": r.reason, "score": s, "max_score": m, "grad_error": r.grad_error,
                  "forward_error": r.forward_error, "seconds": round(r.seconds, 4),
                  "failures": [_failure_dict(r, f) for f in r.failures],
                  "messages": [h for h in r.hints if not r.failures] if not r.passed else [],
                  "printed": r.printed}
                 for r, s, m in per],
        "which_cases_fail": result.summaries,
        "printed_on_import": result.printed,
        "notes": list(result.notes),
    }


def format_gradescope(result, weights=None, visibility="visible"):
    """Gradescope's results.json (https://gradescope-autograders.readthedocs.io, "Output format")."""
    per, got, best = scores(result, weights)
    tests = []
    for r, s, m in per:
        out = r.verdict if r.passed else "\n".join([r.verdict + (f": {r.reason}" if r.reason else "")] + r.hints)
        if r.printed:
            out += "\n\nyour code printed:\n" + r.printed[:PRINT_CHARS]
        tests.append({"name": f"{r.lab} / {r.name}: {r.check}", "score": s, "max_score": m,
                      "output": out, "visibility": visibility, "status": "passed" if r.passed else "failed"})
    summary = "\n".join(result.summaries + list(result.notes))
    return {"score": got, "max_score": best, "output": summary or ("all checks pass" if result.passed
                                                                    else "see the failing tests"),
            "visibility": visibility, "stdout_visibility": "hidden", "tests": tests}


def format_junit(result, weights=None):
    """JUnit XML: one <testcase> per case; FAIL, MISSING, TODO, TIMEOUT are failures, ERROR errors."""
    per, got, best = scores(result, weights)
    bad = [r for r in result.rows if not r.passed]
    suite = ET.Element("testsuite", name="minialex.gradcheck", tests=str(len(result.rows)),
                       failures=str(sum(r.verdict != "ERROR" for r in bad)),
                       errors=str(sum(r.verdict == "ERROR" for r in bad)),
                       time=f"{sum(r.seconds for r in result.rows):.3f}")
    props = ET.SubElement(suite, "properties")
    ET.SubElement(props, "property", name="score", value=f"{got:g}")
    ET.SubElement(props, "property", name="max_score", value=f"{best:g}")
    for r, s, m in per:
        tc = ET.SubElement(suite, "testcase", classname=f"{r.lab}.{r.name}", name=r.check,
                           time=f"{r.seconds:.3f}")
        if not r.passed:
            tag = "error" if r.verdict == "ERROR" else "failure"
            el = ET.SubElement(tc, tag, message=f"{r.verdict}: {r.reason}"[:500], type=r.verdict)
            el.text = "\n".join(r.hints)
        if r.printed:
            ET.SubElement(tc, "system-out").text = r.printed[:PRINT_CHARS]
    return ET.tostring(suite, encoding="unicode")
