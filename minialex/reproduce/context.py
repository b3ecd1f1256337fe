"""What every reproduction shares: where its runs live, how they train, how result.md is written.

An experiment module (``fig1.py``, ``cifar_best.py``, ...) defines

    NAME = "cifar-best"; SECTION = "Sec. 3.5"; CLAIM = "one line"
    def run(ctx): ...        # trains through ctx.train(spec), then ctx.write_result(...)

and ``Context`` gives it the data, the seeds, the output folder and
``train``. With ``report_only`` (``--report``) ``train`` trains nothing and
returns what the run directory holds so far (finished, partial metrics, or
nothing), so the same code writes an honest result.md while runs are going.

Layout of ``--out`` (default runs/reproduce/NAME, NAME-quick with --quick):

    OUT/result.md               the table: paper, ours, seeds, epochs, wall time, machine, command
    OUT/NAME.png                the figure, in the style of the paper's
    OUT/metrics/RUN.csv         a copy of every reported run's metrics.csv (small; commit these)
    OUT/runs/RUN/               checkpoint.npz, metrics.csv, run.json (large; never commit)
"""
from __future__ import annotations

import dataclasses
import shlex
import shutil
import sys
import time
from fnmatch import fnmatch
from pathlib import Path

from .runner import machine, read_run, train_run


class Stopped(Exception):
    """A run was stopped (Ctrl-C, SIGTERM): its checkpoint is written; --resume continues it."""


class Context:
    """The state of one ``python -m minialex.reproduce NAME`` call; see the module docstring."""

    def __init__(self, name, out, quick=False, seeds=None, resume=False, report_only=False, data=None,
                 argv=None, log=print, progress=False, only=None, xp=None):
        self.name, self.out, self.quick = name, Path(out), quick
        self.only = [pat.strip() for pat in only.split(",") if pat.strip()] if only else None
        self.seeds = seeds
        self.resume, self.report_only, self.data_path = resume, report_only, data
        self.argv = list(argv) if argv is not None else sys.argv[1:]
        self.log, self.progress = log, progress
        self.xp = xp                         # None: numpy (the CPU); cupy: one GPU (--backend cupy)
        self._data = None
        self.t0 = time.perf_counter()

    # ------------------------------------------------------------ data and runs
    @property
    def data(self):
        """The splits (loaded on first use: training in report-only mode never needs them)."""
        if self._data is None:
            from .runner import load_splits
            self._data = load_splits(quick=self.quick, data=self.data_path)
            self.log(f"data: {self._data.name}")
        return self._data

    def seeds_or(self, default):
        """The --seeds given, or the experiment's default."""
        return list(self.seeds) if self.seeds else list(default)

    def run_dir(self, spec, shared=None):
        root = self.out if shared is None else self.out.parent / shared
        return root / "runs" / spec.name

    def train(self, spec, until=None, shared=None):
        """Train ``spec`` (or continue it with --resume); in report-only mode read what is there.

        shared: a folder name beside OUT (e.g. "cifar-baseline") whose runs
        several experiments use (the ablations' common baseline); a finished
        shared run is reused without --resume.
        Returns the run's result dict (``runner.train_run``); raises
        ``Stopped`` when the run was interrupted. With ``only`` (--only), runs whose
        names match none of its patterns are read, not trained, as in report-only mode.
        """
        d = self.run_dir(spec, shared)
        if self.report_only or (self.only and not any(fnmatch(spec.name, pat) for pat in self.only)):
            r = read_run(d)
            r.setdefault("spec", spec.to_dict())
            r["dir"] = str(d)
            return r
        resume = self.resume or (shared is not None and (d / "run.json").is_file())
        r = train_run(spec, self.data, d, resume=resume, extra_epochs_until=until, log=self.log,
                      progress=self.progress, xp=self.xp)
        r["dir"] = str(d)
        if r["status"] != "done":
            raise Stopped(spec.name)
        return r

    # ------------------------------------------------------------ report
    def command(self):
        """The command that makes (or continues) this experiment."""
        args, skip = [], False
        for a in self.argv:                  # drop the options that do not change what is trained
            if skip:
                skip = False
            elif a in ("--publish", "--only", "--restore"):
                skip = True
            elif a not in ("--resume", "--report", "--progress") and not a.startswith(
                    ("--publish=", "--only=", "--restore=")):
                args.append(a)
        return "python -m minialex.reproduce " + " ".join(shlex.quote(a) for a in args)

    def write_result(self, title, claims, runs, notes, figure=None):
        """Write OUT/result.md and copy each reported run's metrics.csv to OUT/metrics/.

        claims: rows (claim, paper's number, ours) for the headline table.
        runs: result dicts from ``train``; each gets a row (its name, seed,
            epochs, errors, wall time, status).
        notes: markdown paragraphs (recipe, choices, deviations, caveats).
        figure: file name of the figure already written in OUT, or None.
        """
        self.out.mkdir(parents=True, exist_ok=True)
        mdir = self.out / "metrics"
        mdir.mkdir(exist_ok=True)
        for r in runs:
            src = self.run_dir_of(r) / "metrics.csv"
            if src.is_file():
                shutil.copyfile(src, mdir / f"{r['spec']['name']}.csv")
        done = [r for r in runs if r.get("status") == "done"]
        wall = sum(r["wall_s"] for r in done)
        mach = machines(done) or machine(self.xp)
        scale = "miniature (--quick): bundled 10,000-image subset, a few hundred steps" if self.quick \
            else "full CIFAR-10"
        lines = [f"# {title}", "",
                 f"Scale: {scale}. Data: {done[0]['data'] if done else self._data_name()}.", "",
                 "| claim | paper | ours |", "|---|---|---|"]
        lines += [f"| {c} | {p} | {o} |" for c, p, o in claims]
        lines += ["",
                  f"- **Seeds**: {', '.join(sorted({str(r['spec']['seed']) for r in runs}))}",
                  f"- **Runs finished**: {len(done)} of {len(runs)}; "
                  f"training + test time of the finished runs {wall / 60:.1f} min",
                  f"- **Machine**: {mach}",
                  f"- **Command**: `{self.command()}` (add `--resume` to continue an interrupted run)",
                  f"- **Written**: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}{last_finished(done)}", ""]
        if figure:
            lines += [f"![{self.name}]({Path(figure).name})", ""]
        lines += ["## Runs", "",
                  "| run | seed | epochs | lr | train top-1 | val top-1 | test top-1 | wall | status |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for r in runs:
            lines.append(run_row(r))
        restored = sorted({r["restored_from"] for r in done if r.get("restored_from")})
        if restored:
            names = ", ".join(r["spec"]["name"] for r in done if r.get("restored_from"))
            lines += ["", f"Restored runs ({names}): their folders were lost with the machine that trained them; "
                      f"their numbers are as published in {', '.join(restored)} (`--restore`)."]
        lines += ["", "Train top-1 is the running error over the last epoch's (augmented, dropout-on) "
                  "batches; val is the held-out part of the training images; test is the "
                  f"{'1,000-image sample of the bundled' if self.quick else '10,000-image'} test split, read once per "
                  "finished run (not by a learning-rate sweep's runs, chosen on validation alone: –).", ""]
        lines += [n + "\n" for n in notes]
        path = self.out / "result.md"
        path.write_text("\n".join(lines))
        self.log(f"wrote {path}")
        return path

    def run_dir_of(self, r):
        return Path(r["dir"]) if "dir" in r else self.out / "runs" / r["spec"]["name"]

    def _data_name(self):
        return self._data.name if self._data is not None else (
            "bundled CIFAR-10 subset" if self.quick else "CIFAR-10 (45,000 / 5,000 / 10,000)")


def pct(v):
    return "–" if v is None else f"{100 * v:.2f}%"


def run_row(r):
    s, m = r["spec"], r.get("metrics") or {}
    ep = int(r.get("epochs") or (m["epoch"][-1] if m.get("epoch") else 0))
    last = (lambda k: m[k][-1] if m.get(k) else None)
    wall = r.get("wall_s") or last("wall_s")
    status = r.get("status", "?") + (" (restored)" if r.get("restored_from") else "")
    return (f"| {s['name']} | {s['seed']} | {ep}/{s['epochs']} | {s['lr']:g} | {pct(last('train_top1'))} | "
            f"{pct(last('val_top1'))} | {pct(r.get('test_top1'))} | "
            f"{'–' if wall is None else f'{wall / 60:.1f} min'} | {status} |")


def mean_spread(values):
    """'m ± s' in percent (s: half the range for 2 values, the std for more), or '–'."""
    import numpy as np

    v = [x for x in values if x is not None]
    if not v:
        return "–"
    if len(v) == 1:
        return f"{100 * v[0]:.2f}% (1 seed)"
    a = np.asarray(v) * 100
    spread = (a.max() - a.min()) / 2 if len(a) == 2 else a.std(ddof=1)
    kind = "half-range" if len(a) == 2 else "std"
    return f"{a.mean():.2f} ± {spread:.2f}% ({len(a)} seeds, {kind})"


EXTENDED = ("a grid whose best learning rate lies at one of its ends is extended past that end by the grid's "
            "own ratio, at most twice, so that the choice is not at an edge of what was tried")


def machines(done):
    """The machine(s) that trained the finished runs, as result.md's Machine line says it.

    One machine: its description. Several (runs restored from a lost machine beside runs trained
    on a new one): each with the runs it trained, "X (runs a, b); Y (run c)". "" when none is recorded.
    """
    by = {}
    for r in done:
        if r.get("machine"):
            by.setdefault(r["machine"], []).append(r["spec"]["name"])
    if len(by) <= 1:
        return next(iter(by), "")
    return "; ".join(f"{m} ({'runs' if len(names) > 1 else 'run'} {', '.join(names)})" for m, names in by.items())


def last_finished(done):
    """"; the last run finished <time>" from the finished runs' run.json, or "" (none recorded)."""
    times = [r["finished"] for r in done if r.get("finished")]
    return f"; the last run finished {max(times)}" if times else ""


def tried(sweep):
    """The learning rates a sweep tried, as written in result.md: "[0.005, 0.01, 0.02, 0.04]"."""
    return "[" + ", ".join(f"{lr:g}" for lr in sorted(r["spec"]["lr"] for r in sweep)) + "]"


EXTEND = 2          # past-the-edge tries of a full experiment's sweep; --quick keeps its grid (2-minute budget)


def choose_lr(ctx, make_spec, lrs, score="val_top1", shared=None, extend=None):
    """Train ``make_spec(lr)`` for each lr and return (best lr, the sweep's results).

    The sweep's runs are trained with ``test=False``: they never read the test
    split (result.md shows their test error as "–").

    The score is the last epoch's ``score`` column of metrics.csv (validation
    top-1 error by default: never the test set). Ties go to the smaller lr.
    extend: while the best lr is at an end of the grid, try one more lr past
    that end (the grid's own ratio, e.g. x2 past 0.04 in 0.01/0.02/0.04), at
    most ``extend`` times, so that the choice is not left at an edge of what
    was tried. Default: ``EXTEND`` for a full run, 0 for --quick. The results
    come back sorted by lr.
    In report-only mode an unfinished sweep returns (None, results).
    """
    if extend is None:
        extend = 0 if ctx.quick else EXTEND
    lrs = sorted(lrs)
    untested = lambda lr: dataclasses.replace(make_spec(lr), test=False)   # a sweep never reads the test set
    results = {lr: ctx.train(untested(lr), shared=shared) for lr in lrs}
    while True:
        scored = [(r["metrics"][score][-1], lr) for lr, r in results.items()
                  if r.get("status") == "done" and r["metrics"].get(score)]
        if len(scored) < len(results):
            return None, [results[lr] for lr in sorted(results)]
        best = min(scored)[1]
        grid = sorted(results)
        if extend <= 0 or len(grid) < 2 or best not in (grid[0], grid[-1]):
            return best, [results[lr] for lr in grid]
        nxt = best * grid[-1] / grid[-2] if best == grid[-1] else best * grid[0] / grid[1]
        nxt = float(f"{nxt:.6g}")                    # 0.01 / 2 -> 0.005, not 0.0049999...
        results[nxt] = ctx.train(untested(nxt), shared=shared)
        extend -= 1
