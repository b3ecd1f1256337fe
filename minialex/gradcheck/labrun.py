"""``--lab FILE``: grade a student's module in a child process, with a time limit.

The parent prints a header at once, starts

    python -c "...labrun import worker..." FILE NAMES THRESHOLD      (the worker)

and reads one JSON line per graded case from the worker's stdout, printing
progress as each arrives. The worker imports the module and grades it with
``lab.grade``; whatever the student's code prints is captured there and sent
along with its case (the report shows it truncated). When the time limit
passes, the worker's process group is killed: the cases graded so far keep
their verdicts, the rest are TIMEOUT rows with a message saying so.
"""
from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from .lab import EXIT_FAIL, EXIT_UNUSABLE, LabResult, LabRow, StudentModuleError, grade, planned_rows
from .labreport import format_gradescope, format_json, format_junit, format_text, parse_weights

DEFAULT_TIMEOUT = 60.0
_WORKER = "import sys; from minialex.gradcheck.labrun import worker; sys.exit(worker(sys.argv[1:]))"
ROOT = Path(__file__).resolve().parents[2]          # the directory holding the minialex package


def _emit(stream, obj):
    stream.write(json.dumps(obj) + "\n")
    stream.flush()


def worker(argv):
    """The child process: grade, one JSON line per row on the real stdout."""
    path, names, threshold = argv[0], argv[1] or None, float(argv[2]) if argv[2] else None
    real = sys.stdout
    try:
        result = grade(path, names, threshold,
                       on_row=lambda row, i, n: _emit(real, {"event": "row", "row": row.to_dict()}))
    except StudentModuleError as e:
        _emit(real, {"event": "unusable", "message": str(e)})
        return 0
    _emit(real, {"event": "done", "printed": result.printed, "source": result.source})
    return 0


def _reader(stream, q):
    for line in stream:
        q.put(line)
    q.put(None)


def _child_env():
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    for var in ("OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env.setdefault(var, "1")          # tiny arrays: threads only cost start-up time
    return env


def grade_in_child(path, names=None, threshold=None, timeout=DEFAULT_TIMEOUT, on_row=None):
    """Grade ``path`` in a child process; returns a ``LabResult``.

    Raises ``StudentModuleError`` when the module cannot be imported.
    ``on_row(row, index, total)`` is called as each case arrives.
    """
    plan = planned_rows(names)            # also validates the names, before anything starts
    cmd = [sys.executable, "-c", _WORKER, str(path),
           ",".join(names) if isinstance(names, (list, tuple)) else (names or ""),
           "" if threshold is None else repr(float(threshold))]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=_child_env(), start_new_session=True)
    q = queue.Queue()
    threading.Thread(target=_reader, args=(proc.stdout, q), daemon=True).start()
    err_lines = []
    threading.Thread(target=lambda: err_lines.extend(proc.stderr), daemon=True).start()
    deadline = time.monotonic() + (timeout if timeout and timeout > 0 else float("inf"))
    rows, done, printed, source = [], False, "", str(path)
    while True:
        try:
            line = q.get(timeout=max(0.0, min(deadline - time.monotonic(), 3600.0)))
        except queue.Empty:
            break                                          # the time limit
        if line is None:
            done = True
            break
        try:
            ev = json.loads(line)
        except ValueError:
            continue                                       # not ours (a C extension writing to fd 1)
        if ev.get("event") == "row":
            row = LabRow.from_dict(ev["row"])
            rows.append(row)
            if on_row is not None:
                on_row(row, sum(r.n_cases for r in rows), len(plan))
        elif ev.get("event") == "unusable":
            proc.wait()
            raise StudentModuleError(ev["message"])
        elif ev.get("event") == "done":
            printed, source = ev.get("printed", ""), ev.get("source", source)
            done = True
            break
    if not done:
        _kill(proc)
        return _timed_out(rows, plan, timeout, path)
    proc.wait()
    result = LabResult(rows, source, printed)
    if len(rows) < len(plan) and sum(r.n_cases for r in rows) < len(plan):
        tail = "".join(err_lines[-5:]).strip()
        result.notes.append(f"grading stopped early: the process ended with exit code {proc.returncode} "
                            "(does your module call os._exit, or crash the interpreter?)"
                            + (f"; its last words: {tail[-300:]}" if tail else ""))
        result.rows += _missing_rows(rows, plan, "ERROR", "grading stopped before this case (see the note)")
    return result


def _kill(proc):
    try:
        os.killpg(proc.pid, signal.SIGKILL)        # the worker and anything it started
    except (ProcessLookupError, PermissionError):
        proc.kill()
    proc.wait()


def _missing_rows(rows, plan, verdict, reason):
    seen = {(r.name, r.check) for r in rows} | {(r.name, "*") for r in rows if r.verdict == "MISSING"}
    return [LabRow(n, c.label, verdict, reason, tags=sorted(c.tags))
            for n, c in plan if (n, c.label) not in seen and (n, "*") not in seen]


def _timed_out(rows, plan, timeout, path):
    msg = (f"stopped: the time limit of {timeout:g} s per module was reached before this case ran "
           "(an accidental quadratic loop, a Python loop over every pixel, input() waiting?)")
    result = LabResult(list(rows), str(path))
    result.rows += _missing_rows(rows, plan, "TIMEOUT", msg)
    done = len(rows)
    result.notes.append(f"TIMEOUT: grading {path} took longer than {timeout:g} s; {done} case(s) were "
                        f"graded, {len(result.rows) - done} were not. Make the code faster (a correct "
                        "solution takes well under a second per case), or ask for a longer --timeout.")
    return result


def run_lab(path, names=None, threshold=None, out=None, err=None, verbose=False, fmt="text",
            timeout=DEFAULT_TIMEOUT, weights=None, output=None, visibility="visible"):
    """The CLI's ``--lab``: header, progress, the report in ``fmt``; returns the exit code (0, 1, 2)."""
    out, err = out or sys.stdout, err or sys.stderr
    timeout = DEFAULT_TIMEOUT if timeout is None else timeout
    try:
        weights = parse_weights(weights)
        plan = planned_rows(names)
    except ValueError as e:
        print(f"python -m minialex.gradcheck: {e}", file=err)
        return EXIT_UNUSABLE
    progress = out if fmt == "text" else err
    labs = ", ".join(dict.fromkeys(n for n, _ in plan))
    limit = f"time limit {timeout:g} s" if timeout and timeout > 0 else "no time limit"
    print(f"grading {path}: {labs} ({len(plan)} cases; {limit})", file=progress, flush=True)

    def on_row(row, i, n):
        print(f"  [{i:>2}/{n}] {row.name:<22} {row.verdict:<7} {row.check}", file=progress, flush=True)

    try:
        result = grade_in_child(path, names, threshold, timeout, on_row)
    except StudentModuleError as e:
        print(str(e), file=err)
        if fmt == "gradescope":
            _write(output, out, {"score": 0.0, "output": str(e), "tests": []})
        return EXIT_UNUSABLE
    if fmt == "json":
        _write(output, out, format_json(result, weights))
    elif fmt == "gradescope":
        _write(output, out, format_gradescope(result, weights, visibility))
    elif fmt == "junit":
        _write(output, out, format_junit(result, weights))
    else:
        text = format_text(result, verbose=verbose, weights=weights)
        if output:
            Path(output).write_text(text + "\n")
        print("", file=out)
        print(text, file=out)
    return result.exit_code if result.rows else EXIT_FAIL


def _write(output, out, data):
    text = data if isinstance(data, str) else json.dumps(data, indent=2)
    if output:
        Path(output).write_text(text + "\n")
    else:
        print(text, file=out)
