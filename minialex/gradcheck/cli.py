"""``python -m minialex.gradcheck``: the built-in suite, or a student's lab module."""
from __future__ import annotations

import argparse

from .builtin import builtin_cases
from .core import DEFAULT_THRESHOLD
from .labrun import DEFAULT_TIMEOUT, run_lab


def _list_agreed_names():
    from .. import labs
    print(labs.__doc__)


def main(argv=None):
    names = sorted({c[0] for c in builtin_cases()})
    ap = argparse.ArgumentParser(
        prog="python -m minialex.gradcheck",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Check backward passes against centred finite differences in float64\n"
            "(relative error max|a-b| / max(|a|+|b|), threshold 1e-6).\n\n"
            "Without --lab: every built-in minialex layer (conv Sec. 3.2/3.5, ReLU Sec. 3.1,\n"
            "LRN Sec. 3.3, overlapping max-pool Sec. 3.4, dropout Sec. 4.2, softmax Sec. 3.5);\n"
            "prints a table, exits 1 if any fails.\n\n"
            "With --lab FILE: the autograder for the teaching labs. Imports FILE in a child\n"
            "process (with --timeout), grades each agreed name (--list) case by case against\n"
            "minialex's own layer (forward, dx and every parameter gradient), names the most\n"
            "likely mistake and the lab notebook step where it is derived."),
        epilog="exit codes: 0 all pass; 1 a check failed (or a name is missing, or the time limit "
               "was reached); 2 the --lab module cannot be imported",
    )
    ap.add_argument("--layer", choices=names, help="check only this built-in layer family")
    ap.add_argument("--lab", metavar="FILE", help="grade a student's module (a .py file)")
    ap.add_argument("--names", metavar="A,B",
                    help="with --lab: only these labs (lrn, maxpool, conv, softmax) or agreed names "
                         "(LocalResponseNorm, MaxPool2D, col2im, Conv2D, softmax_cross_entropy)")
    ap.add_argument("--list", action="store_true", help="print the agreed names and their signatures")
    ap.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                    help=f"max relative error that passes (default {DEFAULT_THRESHOLD:g})")
    ap.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="SECONDS",
                    help=f"with --lab: time limit per module (default {DEFAULT_TIMEOUT:g} s; 0: none)")
    ap.add_argument("--format", choices=("text", "json", "gradescope", "junit"), default="text",
                    help="with --lab: a table (default), JSON, Gradescope's results.json, or JUnit XML "
                         "(as pytest --junitxml writes it)")
    ap.add_argument("--output", metavar="FILE", help="with --lab: write the report to FILE "
                    "(e.g. /autograder/results/results.json) instead of stdout")
    ap.add_argument("--weights", metavar="FILE|K=V,...",
                    help="with --lab: points per case, by lab, agreed name or 'name:case' "
                         "(a .json file or lrn=2,Conv2D=1; default 1 per case)")
    ap.add_argument("--visibility", default="visible",
                    choices=("visible", "hidden", "after_due_date", "after_published"),
                    help="with --format gradescope: the tests' visibility (default visible)")
    ap.add_argument("-v", "--verbose", action="store_true",
                    help="print each full report (with --lab: all that the module printed)")
    args = ap.parse_args(argv)

    if args.list:
        _list_agreed_names()
        return 0
    if args.lab:
        return run_lab(args.lab, args.names, args.threshold, verbose=args.verbose, fmt=args.format,
                       timeout=args.timeout, weights=args.weights, output=args.output,
                       visibility=args.visibility)
    if args.names:
        ap.error("--names needs --lab FILE")

    failed = 0
    print(f"{'layer':<46} {'max rel err':>11}  result")
    for fam, desc, run in builtin_cases():
        if args.layer and fam != args.layer:
            continue
        rep = run()
        rep.threshold = args.threshold
        for t in rep.tensors:
            t.passed = t.max_rel_error <= args.threshold
        failed += not rep.passed
        print(f"{rep.layer:<46} {rep.max_error:11.2e}  {'PASS' if rep.passed else 'FAIL'}")
        if args.verbose or not rep.passed:
            print(rep)
    print(f"{'all layers pass' if not failed else f'{failed} check(s) FAILED'} "
          f"(threshold {args.threshold:g})")
    return 1 if failed else 0
