"""Finished runs kept with the published result, and putting them back into an experiment's --out.

    python -m minialex.reproduce lrn-cifar --out runs/lrn --publish docs/results/lrn-cifar
    # ... the machine, and runs/lrn with it, is gone; on the next one:
    python -m minialex.reproduce lrn-cifar --out runs/lrn --restore docs/results/lrn-cifar --resume

A run folder (``OUT/runs/RUN/``: checkpoint, metrics.csv, run.json) lives on
the machine that trained it and is never committed (its checkpoint is large).
When that machine is lost, the finished runs would have to be trained again
(hours each) before the experiment's result.md could count them. So
``--publish DIR`` also writes each finished run's record, its run.json
without the metrics (a few hundred bytes), as ``DIR/records/RUN.json``, beside
the ``DIR/metrics/RUN.csv`` it already copies; and ``--restore DIR`` puts
them back:

    DIR/records/RUN.json   ->  OUT/runs/RUN/run.json     (with "restored_from": DIR)
    DIR/metrics/RUN.csv    ->  OUT/runs/RUN/metrics.csv

A restored run counts as finished, with the numbers it was published with;
result.md marks it "done (restored)". It has no checkpoint, so it cannot be
continued, only reported or trained again (``--rerun OUT/runs/RUN``). A run
that OUT already holds, finished or not, is left as it is.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from .runner import RUN_FILE, write_run_file

RECORDS = "records"       # DIR/records/RUN.json in a published folder


def write_records(out, dest):
    """Write ``dest/records/RUN.json`` for every finished run in ``out/runs``; returns their names."""
    out, dest = Path(out), Path(dest)
    names = []
    for done in sorted((out / "runs").glob(f"*/{RUN_FILE}")):
        record = json.loads(done.read_text())
        record.pop("metrics", None)                  # metrics/RUN.csv holds them
        record.pop("restored_from", None)            # where this machine got it from: not part of the record
        (dest / RECORDS).mkdir(parents=True, exist_ok=True)
        (dest / RECORDS / f"{done.parent.name}.json").write_text(json.dumps(record, indent=1) + "\n")
        names.append(done.parent.name)
    return names


def restore(published, out, log=print):
    """Put the finished runs recorded in ``published`` back into ``out/runs``; returns the names restored.

    Raises ValueError when ``published`` holds no records, or a record lacks its metrics.csv.
    """
    published, out = Path(published), Path(out)
    records = sorted((published / RECORDS).glob("*.json"))
    if not records:
        raise ValueError(f"--restore {published}: no finished-run records ({RECORDS}/RUN.json) in it; "
                         "expected a folder written by --publish")
    restored = []
    for rec in records:
        name = rec.stem
        csv = published / "metrics" / f"{name}.csv"
        if not csv.is_file():
            raise ValueError(f"--restore {published}: {rec.name} has no metrics/{name}.csv beside it")
        run_dir = out / "runs" / name
        if run_dir.exists() and any(run_dir.iterdir()):
            what = "finished" if (run_dir / RUN_FILE).is_file() else "started"
            log(f"restore: {name} left as it is ({run_dir} already holds a {what} run)")
            continue
        record = json.loads(rec.read_text())
        record["restored_from"] = str(published)
        run_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(csv, run_dir / "metrics.csv")
        write_run_file(run_dir, record)                 # run.json last: a half-restored run is not "done"
        restored.append(name)
        log(f"restore: {name} from {rec} (finished {record.get('finished', 'at an unrecorded time')})")
    return restored
