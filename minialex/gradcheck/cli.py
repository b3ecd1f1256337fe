"""``python -m minialex.gradcheck``: the built-in suite, or a student's lab module."""
from __future__ import annotations

import argparse

from .builtin import builtin_cases
from .core import DEFAULT_THRESHOLD
from .lab import EXIT_UNUSABLE, main_lab


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
            "With --lab FILE: the autograder for the teaching labs. Imports FILE, checks each\n"
            "agreed name (--list) against minialex's own layer (gradients and forward pass),\n"
            "prints a pass/fail table with hints on where the errors sit."),
        epilog="exit codes: 0 all pass; 1 a check failed (or a name is missing); "
               "2 the --lab module cannot be imported",
    )
    ap.add_argument("--layer", choices=names, help="check only this built-in layer family")
    ap.add_argument("--lab", metavar="FILE", help="grade a student's module (a .py file)")
    ap.add_argument("--names", metavar="A,B",
                    help="with --lab: only these labs (lrn, maxpool, conv, softmax) or agreed names "
                         "(LocalResponseNorm, MaxPool2D, col2im, Conv2D, softmax_cross_entropy)")
    ap.add_argument("--list", action="store_true", help="print the agreed names and their signatures")
    ap.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                    help=f"max relative error that passes (default {DEFAULT_THRESHOLD:g})")
    ap.add_argument("-v", "--verbose", action="store_true", help="print each full report")
    args = ap.parse_args(argv)

    if args.list:
        _list_agreed_names()
        return 0
    if args.lab:
        try:
            return main_lab(args.lab, args.names, args.threshold, verbose=args.verbose)
        except ValueError as e:          # an unknown --names entry
            print(f"python -m minialex.gradcheck: {e}")
            return EXIT_UNUSABLE
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
