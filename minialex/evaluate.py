"""python -m minialex.evaluate: top-1/top-5 error of checkpoints, ten-crop and ensembles (Sec. 6).

    python -m minialex.evaluate runs/default/checkpoint.npz --data default --ten-crop
    python -m minialex.evaluate a.npz b.npz c.npz --data default     # an ensemble of three nets

A command line over ``minialex.evaluation`` (the test-mode loop, ten crops,
ensembles) and ``minialex.data.load_dataset`` (what --data names).
"""
from __future__ import annotations

import sys
from pathlib import Path

from .backend import get_backend
from .data import load_dataset, subset
from .data.datasets import check_data_folder
from .errors import OneLineParser, UserError, int_at_least, run_cli
from .evaluation import check_images, evaluate, load_model, model_num_classes


def format_table(rows, n, data_name, num_classes=None):
    """The results table; top-5 reads n/a where the net has five classes or fewer (always 0 there)."""
    width = max(len("checkpoint"), *(len(r[0]) for r in rows))
    lines = [f"{n:,} images of {data_name}; error = 1 - accuracy (Sec. 2)",
             f"{'checkpoint'.ljust(width)}  {'crops':8}  {'top-1':>7}  {'top-5':>7}",
             "-" * (width + 30)]
    na = num_classes is not None and num_classes <= 5
    for name, mode, e1, e5 in rows:
        top5 = f"{'n/a':>7}" if na else f"{100 * e5:6.2f}%"
        lines.append(f"{name.ljust(width)}  {mode:8}  {100 * e1:6.2f}%  {top5}")
    if na:
        lines.append(f"(top-5 is n/a: the net has {num_classes} classes, so every label is among its top 5)")
    return "\n".join(lines)


def build_parser():
    p = OneLineParser(
        prog="python -m minialex.evaluate",
        description="Top-1 and top-5 error (Sec. 2, 6) of checkpoints on a held-out split: the centre crop, "
                    "with --ten-crop the average softmax of the ten patches (Sec. 4.1), and with several "
                    "checkpoints the average of their softmax outputs (Sec. 6, '5 CNNs').")
    p.add_argument("ckpt", nargs="+", help="checkpoint(s) written by python -m minialex.train")
    p.add_argument("--data", default="default",
                   help="default (bundled CIFAR-10 subset, its 2,000 test images), cifar10, or a PATH with "
                        "train/ and val/ (or test/); the val/test split is evaluated")
    p.add_argument("--data-root", default="data", help="with --data cifar10: folder of the official archive")
    p.add_argument("--ten-crop", action="store_true",
                   help="also report ten-crop testing: corners + centre and their reflections (Sec. 4.1)")
    p.add_argument("--limit", type=int_at_least("--limit", 1), default=None, help="evaluate a random subset of N images")
    p.add_argument("--seed", type=int_at_least("--seed", 0), default=0, help="picks the --limit subset")
    p.add_argument("--batch-size", type=int_at_least("--batch-size", 1), default=200,
                   help="images per forward pass (default 200; lower it if memory runs out)")
    p.add_argument("--backend", choices=("numpy", "cupy"), default="numpy",
                   help="array library: numpy on the CPU (default) or cupy on a CUDA GPU")
    p.add_argument("--debug", action="store_true",
                   help="on an error, show the full Python traceback (also: MINIALEX_DEBUG=1)")
    return p


def main(argv=None):
    """The command line; every error is one line on stderr and an exit code (minialex.errors)."""
    return run_cli(_main, argv)


def _main(argv=None):
    p = build_parser()
    args = p.parse_args(argv)
    for c in args.ckpt:
        if not Path(c).is_file():
            p.error(f"checkpoint {c} not found" if not Path(c).exists() else
                    f"checkpoint {c} is a directory; expected a .npz file (e.g. {Path(c) / 'checkpoint.npz'})")
    if args.data not in ("default", "cifar10"):
        try:
            check_data_folder(args.data)
        except UserError as e:
            p.error(str(e))
    try:
        xp = get_backend(args.backend)
    except RuntimeError as e:                        # no CuPy, or no CUDA device: say which
        p.error(f"--backend {args.backend}: {e}")

    loaded = {c: load_model(c) for c in args.ckpt}  # every checkpoint checked before the data loads
    meta = loaded[args.ckpt[0]][1]
    size = meta["preprocess"].get("image_size", 32)
    data = load_dataset(args.data, image_size=size, data_root=args.data_root)
    what = f"--data {args.data}"
    check_images(data.x_test, meta["preprocess"], what)
    x, y = subset(data.x_test, data.y_test, args.limit, args.seed)
    rows = evaluate(args.ckpt, x, y, ten_crop=args.ten_crop, batch_size=args.batch_size, xp=xp,
                    loaded=loaded, what=what)
    print(format_table(rows, len(y), data.name, model_num_classes(loaded[args.ckpt[0]][0])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
