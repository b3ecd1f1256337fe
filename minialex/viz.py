"""python -m minialex.viz: the figures of Sec. 6.1 and training curves, as PNG files.

    python -m minialex.viz filters CKPT -o filters.png
    python -m minialex.viz top5 CKPT --data default -o top5.png
    python -m minialex.viz neighbours CKPT --data default -o neighbours.png
    python -m minialex.viz curves RUN_DIR/metrics.csv -o curves.png

Every figure comes from a checkpoint written by ``python -m minialex.train``.
A command line over ``minialex.figures`` (the plots), ``minialex.evaluation``
(test-mode outputs) and ``minialex.data.load_dataset`` (what --data names).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from .data import load_dataset
from .evaluation import extract_features, load_model, predict_proba
from .figures import nearest_neighbours, plot_curves, plot_filters, plot_neighbours, plot_top5


def build_parser():
    p = argparse.ArgumentParser(
        prog="python -m minialex.viz",
        description="Figures of Sec. 6.1 (Figures 3 and 4) and training curves, as PNG files.")
    sub = p.add_subparsers(dest="figure", required=True)
    f = sub.add_parser("filters", help="Figure 3: conv1 kernels split by tower (Sec. 3.2, 6.1)")
    f.add_argument("ckpt", help="checkpoint written by minialex.train")
    f.add_argument("-o", "--out", default="filters.png", help="output PNG (default filters.png)")
    t = sub.add_parser("top5", help="Figure 4 left: test images with top-5 labels and probability bars")
    n = sub.add_parser("neighbours", help="Figure 4 right: nearest training images in fc7 space")
    for s, default in ((t, "top5.png"), (n, "neighbours.png")):
        s.add_argument("ckpt", help="checkpoint written by minialex.train")
        s.add_argument("--data", default="default",
                       help="dataset: default (bundled CIFAR-10 subset), cifar10, or a PATH "
                            "(see python -m minialex.train --help)")
        s.add_argument("--count", type=int, default=8 if s is t else 5,
                       help="number of test images (query rows)")
        s.add_argument("--seed", type=int, default=0, help="which test images are picked")
        s.add_argument("-o", "--out", default=default, help=f"output PNG (default {default})")
    n.add_argument("--neighbours", type=int, default=6, help="neighbours per query (default 6)")
    n.add_argument("--database", type=int, default=5000,
                   help="training images searched (default 5000; 0 = all)")
    c = sub.add_parser("curves", help="training curves from a run's metrics.csv")
    c.add_argument("metrics", help="metrics.csv, or the run directory holding it")
    c.add_argument("-o", "--out", default="curves.png", help="output PNG (default curves.png)")
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    for name in ("count", "neighbours"):
        if getattr(args, name, 1) < 1:
            print(f"error: --{name} must be >= 1, got {getattr(args, name)}", file=sys.stderr)
            return 2
    if args.figure == "curves":
        path = Path(args.metrics)
        path = path / "metrics.csv" if path.is_dir() else path
        if not path.is_file():
            print(f"error: {path} not found; expected a metrics.csv written by minialex.train", file=sys.stderr)
            return 2
        print(plot_curves(path, args.out))
        return 0
    model, meta = load_model(args.ckpt)
    if args.figure == "filters":
        print(plot_filters(model, args.out))
        return 0
    data = load_dataset(args.data, seed=args.seed)
    prep = meta["preprocess"]
    rng = np.random.default_rng(args.seed)
    pick = rng.choice(len(data.y_test), size=min(args.count, len(data.y_test)), replace=False)
    if args.figure == "top5":
        probs = predict_proba(model, data.x_test[pick], prep)
        print(plot_top5(data.x_test[pick], probs, data.y_test[pick], data.class_names, args.out))
        return 0
    db = np.arange(len(data.y_train))
    if args.database and args.database < len(db):
        db = np.sort(rng.choice(len(db), size=args.database, replace=False))
    q = extract_features(model, data.x_test[pick], prep)
    d = extract_features(model, data.x_train[db], prep)
    idx = nearest_neighbours(q, d, args.neighbours)
    print(plot_neighbours(data.x_test[pick], data.x_train[db], idx, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
