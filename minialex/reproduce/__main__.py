"""Command line of minialex.reproduce (see the package docstring)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _seeds(s):
    try:
        seeds = [int(v) for v in s.split(",") if v.strip()]
    except ValueError:
        seeds = []
    if not seeds or any(v < 0 for v in seeds):
        raise argparse.ArgumentTypeError(f"--seeds takes non-negative integers like 0,1, got {s!r}")
    return seeds


def build_parser(names):
    p = argparse.ArgumentParser(prog="python -m minialex.reproduce",
                                description="Re-run a claim of the paper on CIFAR-10 and write result.md "
                                            "and a figure (docs/results.md collects them).")
    p.add_argument("name", nargs="?", choices=names, metavar="NAME", help=f"experiment: {', '.join(names)}")
    p.add_argument("--list", action="store_true", help="list the experiments and the claims they test")
    p.add_argument("--quick", action="store_true",
                   help="a miniature of the same experiment on the bundled subset (seconds, not hours)")
    p.add_argument("--seeds", type=_seeds, default=None, help="seeds of the main runs, e.g. 0,1 "
                   "(default: the experiment's)")
    p.add_argument("--out", default=None, help="output folder (default runs/reproduce/NAME[-quick])")
    p.add_argument("--resume", action="store_true",
                   help="continue the runs in --out (finished runs are reused, an interrupted one resumes)")
    p.add_argument("--report", action="store_true",
                   help="train nothing: write result.md and the figure from what --out holds now")
    p.add_argument("--only", default=None, metavar="PATTERNS",
                   help="train only the runs whose names match these comma-separated patterns (e.g. "
                        "'nolrn-*'); the others are read as they stand, as with --report. Two processes with "
                        "different --only share one --out, one core each (run the sweep first)")
    p.add_argument("--data", default=None,
                   help="CIFAR-10: the official cifar-10-batches-py folder's parent or a JPEG copy "
                        "(default ../shared/data/cifar10-jpg)")
    p.add_argument("--progress", action="store_true", help="show a progress bar per epoch")
    p.add_argument("--backend", choices=("numpy", "cupy"), default="numpy",
                   help="numpy: the CPU (default; runs repeat bit for bit with the same seed and threads); "
                        "cupy: one CUDA GPU, the same recipe with the CUDA kernels (sums may be reordered, "
                        "so a GPU run is close to, not identical with, a CPU run)")
    p.add_argument("--rerun", default=None, metavar="RUN_DIR",
                   help="train one finished run (a folder with run.json) again into --out (default "
                        "RUN_DIR-rerun) and compare its metrics.csv and test errors with the original: "
                        "exit 0 when identical, 1 when not")
    p.add_argument("--publish", default=None, metavar="DIR",
                   help="afterwards copy result.md, the figure, metrics/ and each finished run's record "
                        "(records/RUN.json) to DIR, e.g. docs/results/NAME: small files, no checkpoints")
    p.add_argument("--restore", default=None, metavar="DIR",
                   help="first put the finished runs that a --publish folder records (DIR/records/*.json, "
                        "DIR/metrics/*.csv) back into --out, where --out lacks them: for a new machine "
                        "that lost the run folders. They count as finished (result.md: 'done (restored)'); "
                        "the other runs train or resume as usual")
    return p


def main(argv=None):
    from . import available
    from .context import Context, Stopped

    argv = sys.argv[1:] if argv is None else list(argv)
    exps = available()
    p = build_parser(list(exps))
    args = p.parse_args(argv)
    if args.list:
        for name, mod in exps.items():
            print(f"{name:12s} {mod.SECTION}: {mod.CLAIM}")
        return 0
    if args.rerun and args.backend != "numpy":
        p.error(f"--rerun checks that a run repeats bit for bit, which holds on the numpy backend only; "
                f"drop --backend {args.backend}")
    if args.rerun:
        from .rerun import default_out, rerun
        try:
            same, lines = rerun(args.rerun, args.out or default_out(args.rerun), data=args.data,
                                log=lambda msg: print(msg, flush=True))
        except ValueError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        print("\n".join(lines))
        return 0 if same else 1
    if args.name is None:
        p.error("name an experiment (--list shows them, --rerun RUN_DIR re-runs one run)")
    out = Path(args.out or f"runs/reproduce/{args.name}{'-quick' if args.quick else ''}")
    xp = None
    if args.backend != "numpy" and not args.report:
        from ..backend import get_backend
        try:
            xp = get_backend(args.backend)
        except RuntimeError as e:
            p.error(f"--backend {args.backend}: {e}")
    if args.restore:
        from .restore import restore
        try:
            restore(Path(args.restore), out, log=lambda msg: print(msg, flush=True))
        except ValueError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    ctx = Context(args.name, out, quick=args.quick, seeds=args.seeds, resume=args.resume,
                  report_only=args.report, data=args.data, argv=argv, progress=args.progress,
                  only=args.only, xp=xp)
    try:
        exps[args.name].run(ctx)
    except Stopped as e:
        print(f"stopped in run {e}; its checkpoint is written. Continue with:\n  {ctx.command()} --resume",
              file=sys.stderr)
        return 130
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"result: {out / 'result.md'}")
    if args.publish:
        print(f"published to {publish(out, Path(args.publish))}")
    return 0


def publish(out, dest):
    """Copy the small files of an experiment folder to ``dest``: result.md, *.png, metrics/*.csv, and
    the finished runs' records as records/RUN.json (``restore.write_records``; ``--restore`` reads them)."""
    import shutil

    from .restore import write_records

    (dest / "metrics").mkdir(parents=True, exist_ok=True)
    for f in [out / "result.md", *out.glob("*.png")]:
        shutil.copyfile(f, dest / f.name)
    for f in (out / "metrics").glob("*.csv"):
        shutil.copyfile(f, dest / "metrics" / f.name)
    write_records(out, dest)
    return dest


if __name__ == "__main__":
    sys.exit(main())
