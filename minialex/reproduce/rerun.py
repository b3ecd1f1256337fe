"""Re-run one finished run from its run.json and compare: is a reported result reproducible?

    python -m minialex.reproduce --rerun docs/.../runs/RUN --out /tmp/again

issue 14 asks that "rerunning a reported run with the same seed and thread
count gives the same metrics.csv". A finished run's ``run.json`` holds its
whole ``RunSpec`` (net, seed, learning rate, epochs, augmentation, tricks) and
the data it saw; ``rerun`` trains the same spec again into a new folder,
through the same ``train_run``, and compares every column of metrics.csv that
does not measure time (epoch, step, lr, losses, top-1/top-5 errors, skipped
steps) and the test errors. Exact equality is the criterion: float32
arithmetic in the same order gives the same bits, so any difference means
another order (another thread count, another kernel path, another library
version) or a real change in the code.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

from ..metrics import TIMING_FIELDS as TIMING, read_metrics
from .runner import RUN_FILE, RunSpec, load_splits, machine, train_run


def _threads(machine_line):
    """'AMD EPYC, 2 cores, 1 thread(s), ...' -> '1'."""
    for part in machine_line.split(","):
        if part.strip().endswith("thread(s)"):
            return part.strip().split()[0]
    return None


def compare(a, b):
    """Differences between two metrics dicts (``read_metrics``), timing columns left out.

    Returns a list of ``(column, row, a value, b value)``; empty when equal.
    """
    diffs = []
    for col in sorted(set(a) | set(b)):
        if col in TIMING:
            continue
        va, vb = a.get(col, []), b.get(col, [])
        for i in range(max(len(va), len(vb))):
            x = va[i] if i < len(va) else None
            y = vb[i] if i < len(vb) else None
            same = x == y or (x is not None and y is not None and math.isnan(x) and math.isnan(y))
            if not same:
                diffs.append((col, i + 1, x, y))
    return diffs


def rerun(run_dir, out, data=None, log=print):
    """Train ``run_dir``'s spec again into ``out``; returns (same: bool, verdict lines).

    What it does as it goes (the spec, the thread counts, a change of data, the
    training itself) goes to ``log``; the verdict lines are returned.
    """
    run_dir, out = Path(run_dir), Path(out)
    done = run_dir / RUN_FILE
    if not done.is_file():
        raise ValueError(f"{run_dir} holds no finished run ({RUN_FILE} is missing): only a finished, tested "
                         "run can be re-run and compared")
    old = json.loads(done.read_text())
    spec = RunSpec(**old["spec"])
    quick = str(old.get("data", "")).startswith("bundled")
    then, now = _threads(old.get("machine", "")), _threads(machine())
    log(f"re-running {spec.name} (seed {spec.seed}, {spec.epochs} epochs, {spec.net} net) from {done}")
    log(f"threads: then {then}, now {now}" + ("" if then == now else
                                              " - a different thread count may sum in another order"))
    splits = load_splits(quick=quick, data=data)
    if splits.name != old.get("data"):
        log(f"note: the data differs: then {old.get('data')!r}, now {splits.name!r}")
    new = train_run(spec, splits, out, log=log)
    diffs = compare(read_metrics(run_dir / "metrics.csv"), new["metrics"])
    for key in ("test_top1", "test_top5"):
        if old.get(key) != new.get(key):
            diffs.append((key, "-", old.get(key), new.get(key)))
    if diffs:
        return False, ([f"DIFFERENT: {len(diffs)} value(s) differ (timing columns ignored); the first ones:"]
                       + [f"  {col} row {row}: then {x!r}, now {y!r}" for col, row, x, y in diffs[:10]])
    n = len(new["metrics"].get("epoch", []))
    tested = (f"the test errors ({100 * new['test_top1']:.2f}% top-1) are identical"
              if new.get("test_top1") is not None else "the run is a sweep's, not tested")
    return True, [f"SAME: all {n} rows of metrics.csv (every column but {', '.join(TIMING)}) are identical; "
                  + tested]


def default_out(run_dir):
    return Path(f"{os.fspath(run_dir).rstrip('/')}-rerun")
