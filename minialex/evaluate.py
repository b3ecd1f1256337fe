"""python -m minialex.evaluate: top-1/top-5 error of checkpoints, ten-crop and ensembles (Sec. 6).

    python -m minialex.evaluate runs/default/checkpoint.npz --data default --ten-crop
    python -m minialex.evaluate a.npz b.npz c.npz --data default     # an ensemble of three nets

Sec. 4.1: at test time the network "extracts five 224x224 patches (the four
corner patches and the center patch) as well as their horizontal
reflections ... and averages the predictions made by the network's softmax
layer on the ten patches". Sec. 6: "averaging the predictions of five
similar CNNs" gives the ensemble figures. Both average softmax outputs,
never logits, and so does this module.

For CIFAR-sized nets the crop is as large as the image (32 of 32); their
ten patches are cut from the image padded by the training ``pad`` (4), the
same padding the random training crops saw (see ``ten_crop_batch``).
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from .backend import to_numpy
from .layers import softmax
from .metrics import topk_error


def load_model(path):
    """(model, run meta) from a checkpoint written by minialex.train.

    ``meta["preprocess"]`` holds crop, pad and the training mean image
    (as an array under "mean"), everything needed to feed new images.
    """
    from .checkpoint import load_checkpoint

    ckpt = load_checkpoint(path)
    meta = dict(ckpt["extra"] or {})
    if "preprocess" not in meta:
        raise ValueError(f"{path}: no preprocessing record; expected a checkpoint written by minialex.train")
    prep = dict(meta["preprocess"])
    prep["mean"] = np.asarray(prep["mean"], dtype=np.float32)          # (3, S, S)
    meta["preprocess"] = prep
    return ckpt["model"], meta


def _centred(x, prep):
    """uint8 (N, 3, S, S) -> float32 minus the training mean image (Sec. 2), times prep["scale"]."""
    out = np.asarray(x, dtype=np.float32) - prep["mean"][None]         # (N, 3, S, S)
    scale = prep.get("scale", 1.0)
    return out * np.float32(scale) if scale != 1 else out


def centre_batch(x, prep):
    """The centre crop of each image. Shapes: (N, 3, S, S) uint8 -> (N, 3, c, c) float32."""
    from .data import center_crop

    return np.ascontiguousarray(center_crop(_centred(x, prep), prep["crop"]))


def ten_crop_batch(x, prep):
    """The ten test patches of Sec. 4.1 per image (padded by prep["pad"] first).

    Shapes:  (N, 3, S, S) uint8 -> (N*10, 3, c, c) float32; rows 10i..10i+9 are image i's
    """
    from .data import ten_crop

    xc, p = _centred(x, prep), prep.get("pad", 0)
    if p:
        xc = np.pad(xc, ((0, 0), (0, 0), (p, p), (p, p)))               # (N, 3, S+2p, S+2p), mean colour
    N, C = xc.shape[:2]
    c = prep["crop"]
    return np.ascontiguousarray(ten_crop(xc, c).reshape(N * 10, C, c, c))  # (N, 10, C, c, c) -> (N*10, C, c, c)


def predict_proba(model, x, prep, ten_crop=False, batch_size=200, xp=np):
    """Softmax outputs in test mode, averaged over the ten patches when ``ten_crop``.

    Shapes:  x: (N, 3, S, S) uint8  ->  (N, K) float64
    Paper:   Sec. 4.1 (ten patches, average of the softmax), Sec. 4.2 (dropout off at test).
    """
    out = []
    for i in range(0, len(x), batch_size):
        xb = np.asarray(x[i:i + batch_size])
        inp = ten_crop_batch(xb, prep) if ten_crop else centre_batch(xb, prep)
        logits = to_numpy(model.predict(xp.asarray(inp))).astype(np.float64)   # (B or 10B, K)
        p = softmax(logits)
        if ten_crop:
            p = p.reshape(len(xb), 10, -1).mean(axis=1)                # (B, 10, K) -> (B, K)
        out.append(p)
    return np.concatenate(out)


def extract_features(model, x, prep, batch_size=200, xp=np):
    """fc7 activations of the centre crops (Sec. 6.1, Figure 4 right). (N, 3, S, S) -> (N, D)."""
    out = []
    for i in range(0, len(x), batch_size):
        out.append(to_numpy(model.features(xp.asarray(centre_batch(np.asarray(x[i:i + batch_size]), prep)))))
    return np.concatenate(out).astype(np.float64)


def ensemble(probs):
    """Average the members' softmax outputs (Sec. 6: "averaging the predictions of five CNNs").

    Shapes:  probs: list of M arrays (N, K)  ->  (N, K)
    """
    if not probs:
        raise ValueError("ensemble: no members")
    shapes = {p.shape for p in probs}
    if len(shapes) != 1:
        raise ValueError(f"ensemble: members' outputs differ in shape: {sorted(shapes)}")
    return np.mean(np.stack(probs), axis=0)                            # (M, N, K) -> (N, K)


def evaluate(paths, x, y, ten_crop=False, batch_size=200, log=None, xp=np):
    """Rows (name, crops, top-1 error, top-5 error) for each checkpoint and, with
    several, for their ensemble; ten-crop rows when ``ten_crop``. ``xp``: the
    array module the nets run on (numpy, or cupy for the GPU)."""
    members = {"centre": [], "ten-crop": []}
    rows = []
    modes = ["centre"] + (["ten-crop"] if ten_crop else [])
    classes = None
    for path in paths:
        model, meta = load_model(path)
        if xp is not np:
            model.to(xp)
        k = model.config.num_classes
        if classes is None:
            classes = k
        elif k != classes:
            raise ValueError(f"{path} has {k} classes, the first checkpoint {classes}; an ensemble needs the same")
        if int(np.max(y)) >= k:
            raise ValueError(f"{path}: the data has label {int(np.max(y))}, the net only {k} classes")
        for mode in modes:
            t = time.perf_counter()
            p = predict_proba(model, x, meta["preprocess"], ten_crop=(mode == "ten-crop"), batch_size=batch_size,
                              xp=xp)
            members[mode].append(p)
            rows.append((str(path), mode, topk_error(p, y, 1), topk_error(p, y, 5)))
            if log:
                log(f"{path} {mode}: {time.perf_counter() - t:.1f} s")
    if len(paths) > 1:
        for mode in modes:
            p = ensemble(members[mode])
            rows.append((f"ensemble of {len(paths)}", mode, topk_error(p, y, 1), topk_error(p, y, 5)))
    return rows


def format_table(rows, n, data_name):
    width = max(len("checkpoint"), *(len(r[0]) for r in rows))
    lines = [f"{n:,} images of {data_name}; error = 1 - accuracy (Sec. 2)",
             f"{'checkpoint'.ljust(width)}  {'crops':8}  {'top-1':>7}  {'top-5':>7}",
             "-" * (width + 30)]
    for name, mode, e1, e5 in rows:
        lines.append(f"{name.ljust(width)}  {mode:8}  {100 * e1:6.2f}%  {100 * e5:6.2f}%")
    return "\n".join(lines)


def build_parser():
    p = argparse.ArgumentParser(
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
    p.add_argument("--limit", type=int, default=None, help="evaluate a random subset of N images")
    p.add_argument("--seed", type=int, default=0, help="picks the --limit subset")
    p.add_argument("--batch-size", type=int, default=200, help="images per forward pass (default 200)")
    p.add_argument("--backend", choices=("numpy", "cupy"), default="numpy",
                   help="array library: numpy on the CPU (default) or cupy on a CUDA GPU")
    return p


def main(argv=None):
    p = build_parser()
    args = p.parse_args(argv)
    from pathlib import Path

    for c in args.ckpt:
        if not Path(c).is_file():
            p.error(f"checkpoint {c} not found")
    if args.limit is not None and args.limit < 1:
        p.error(f"--limit must be >= 1, got {args.limit}")
    if args.batch_size < 1:
        p.error(f"--batch-size must be >= 1, got {args.batch_size}")
    if args.data not in ("default", "cifar10") and not Path(args.data).exists():
        p.error(f"--data {args.data!r}: no such folder")
    from .backend import get_backend
    from .train import load_dataset, subset

    try:
        xp = get_backend(args.backend)
    except RuntimeError as e:                        # no CuPy, or no CUDA device: say which
        p.error(f"--backend {args.backend}: {e}")

    _, meta = load_model(args.ckpt[0])
    size = meta["preprocess"].get("image_size", 32)
    data = load_dataset(args.data, image_size=size, data_root=args.data_root)
    x, y = subset(data.x_test, data.y_test, args.limit, args.seed)
    rows = evaluate(args.ckpt, x, y, ten_crop=args.ten_crop, batch_size=args.batch_size, xp=xp)
    print(format_table(rows, len(y), data.name))
    return 0


if __name__ == "__main__":
    sys.exit(main())
