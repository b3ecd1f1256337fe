"""python -m minialex.viz: the figures of Sec. 6.1 and training curves, as PNG files.

    python -m minialex.viz filters CKPT                    # writes filters.png beside CKPT
    python -m minialex.viz top5 CKPT --data default        # top5.png beside CKPT
    python -m minialex.viz neighbours CKPT --data default  # neighbours.png beside CKPT
    python -m minialex.viz curves RUN_DIR -o curves.png

Every figure comes from a checkpoint written by ``python -m minialex.train``
and, without ``-o``, is written into the checkpoint's run directory (not the
current folder, which in README's examples is the repository).
A command line over ``minialex.figures`` (the plots), ``minialex.evaluation``
(test-mode outputs) and ``minialex.data.load_dataset`` (what --data names).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

from .data import load_dataset
from .data.datasets import check_data_folder
from .errors import OneLineParser, UserError, int_at_least, run_cli
from .evaluation import check_images, check_labels, extract_features, load_model, predict_proba
from .figures import moved_from_init, nearest_neighbours, plot_curves, plot_filters, plot_neighbours, plot_top5


def build_parser():
    p = OneLineParser(
        prog="python -m minialex.viz",
        description="Figures of Sec. 6.1 (Figures 3 and 4) and training curves, as PNG files.")
    sub = p.add_subparsers(dest="figure", required=True)
    f = sub.add_parser("filters", help="Figure 3: conv1 kernels split by tower (Sec. 3.2, 6.1)")
    f.add_argument("ckpt", help="checkpoint written by minialex.train")
    f.add_argument("-o", "--out", default=None, help="output PNG (default: filters.png beside CKPT)")
    t = sub.add_parser("top5", help="Figure 4 left: test images with top-5 labels and probability bars")
    n = sub.add_parser("neighbours", help="Figure 4 right: nearest training images in fc7 space")
    for s, default in ((t, "top5.png"), (n, "neighbours.png")):
        s.add_argument("ckpt", help="checkpoint written by minialex.train")
        s.add_argument("--data", default="default",
                       help="dataset: default (bundled CIFAR-10 subset), cifar10, or a PATH "
                            "(see python -m minialex.train --help)")
        s.add_argument("--count", type=int_at_least("--count", 1), default=8 if s is t else 5,
                       help="number of test images (query rows)")
        s.add_argument("--seed", type=int_at_least("--seed", 0), default=0, help="which test images are picked")
        s.add_argument("-o", "--out", default=None, help=f"output PNG (default: {default} beside CKPT)")
    n.add_argument("--neighbours", type=int_at_least("--neighbours", 1), default=6, help="neighbours per query (default 6)")
    n.add_argument("--database", type=int_at_least("--database", 0), default=5000,
                   help="training images searched (default 5000; 0 = all)")
    c = sub.add_parser("curves", help="training curves from a run's metrics.csv")
    c.add_argument("metrics", help="metrics.csv, or the run directory holding it")
    c.add_argument("-o", "--out", default=None, help="output PNG (default: curves.png beside metrics.csv)")
    for s in (f, t, n, c):
        s.add_argument("--debug", action="store_true",
                       help="on an error, show the full Python traceback (also: MINIALEX_DEBUG=1)")
    return p


def output_path(out, source, default):
    """Where a figure goes: ``out``, else ``default`` in the folder of ``source`` (checkpoint or metrics).

    Raises UserError when the PNG cannot be written there (a folder, or a parent that is not writable).
    """
    path = Path(out) if out is not None else Path(source).parent / default
    if path.is_dir():
        raise UserError(f"-o {path} is a folder; expected a .png file name (e.g. {path / default})")
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise UserError(f"-o {path}: {parent} is not a writable folder")
    return path


def main(argv=None):
    """The command line; every error is one line on stderr and an exit code (minialex.errors)."""
    return run_cli(_main, argv)


def _main(argv=None):
    args = build_parser().parse_args(argv)
    if args.figure == "curves":
        path = Path(args.metrics)
        path = path / "metrics.csv" if path.is_dir() else path
        if not path.is_file():
            raise UserError(f"{path} not found; expected a metrics.csv written by minialex.train (or its run folder)")
        print(plot_curves(path, output_path(args.out, path, "curves.png")))
        return 0
    if not Path(args.ckpt).is_file():
        raise UserError(f"checkpoint {args.ckpt} not found" if not Path(args.ckpt).exists() else
                        f"checkpoint {args.ckpt} is a directory; expected a .npz file "
                        f"(e.g. {Path(args.ckpt) / 'checkpoint.npz'})")
    out = output_path(args.out, args.ckpt, f"{args.figure}.png")
    if args.figure != "filters" and args.data not in ("default", "cifar10"):
        check_data_folder(args.data)
    model, meta = load_model(args.ckpt)
    if args.figure == "filters":
        moved = moved_from_init(model)
        print(plot_filters(model, out, note=f"weights moved {100 * moved:.0f}% from their random initialisation"))
        print(f"conv1 weights moved {100 * moved:.1f}% from their initialisation (||w - w0|| / ||w0||)"
              + ("; kernels that moved this little still look like their random start (colour noise): "
                 "Figure 3's structure needs a longer run (docs/results.md)" if moved < 0.5 else ""))
        return 0
    prep = meta["preprocess"]
    data = load_dataset(args.data, image_size=prep.get("image_size", 32), seed=args.seed)
    check_images(data.x_test, prep, f"--data {args.data}")
    check_labels(data.y_test, model.config.num_classes, args.ckpt, f"--data {args.data}")
    rng = np.random.default_rng(args.seed)
    pick = rng.choice(len(data.y_test), size=min(args.count, len(data.y_test)), replace=False)
    if args.figure == "top5":
        probs = predict_proba(model, data.x_test[pick], prep)
        print(plot_top5(data.x_test[pick], probs, data.y_test[pick], data.class_names, out))
        return 0
    db = np.arange(len(data.y_train))
    if args.database and args.database < len(db):
        db = np.sort(rng.choice(len(db), size=args.database, replace=False))
    q = extract_features(model, data.x_test[pick], prep)
    d = extract_features(model, data.x_train[db], prep)
    idx = nearest_neighbours(q, d, args.neighbours)
    print(plot_neighbours(data.x_test[pick], data.x_train[db], idx, out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
