"""Test-mode evaluation: top-1/top-5 error, ten-crop testing and ensembles (Sec. 4.1, 6).

    model, meta = load_model("runs/default/checkpoint.npz")
    probs = predict_proba(model, x_test, meta["preprocess"], ten_crop=True)   # (N, K)
    rows = evaluate(["a.npz", "b.npz"], x_test, y_test, ten_crop=True)       # per net and ensemble
    loss, top1, top5 = evaluate_batches(model, x_val, y_val, transform)     # the per-epoch check

Sec. 4.1: at test time the network "extracts five 224x224 patches (the four
corner patches and the center patch) as well as their horizontal
reflections ... and averages the predictions made by the network's softmax
layer on the ten patches". Sec. 6: "averaging the predictions of five
similar CNNs" gives the ensemble figures. Both average softmax outputs,
never logits, and so does this module.

Every function here runs the net through one loop, ``run_in_batches``.
For CIFAR-sized nets the crop is as large as the image (32 of 32); their
ten patches are cut from the image padded by the training ``pad`` (4), the
same padding the random training crops saw (see ``ten_crop_batch``).
The command line over this module is ``python -m minialex.evaluate``.
"""
from __future__ import annotations

import time

import numpy as np

from .backend import to_numpy
from .errors import CheckpointError, DataError
from .layers import SoftmaxCrossEntropy, softmax
from .metrics import correct_topk, topk_error


def load_model(path):
    """(model, run meta) from a checkpoint written by minialex.train.

    ``meta["preprocess"]`` holds crop, pad and the training mean image
    (as an array under "mean"), everything needed to feed new images.
    Raises CheckpointError naming the file when it is corrupt, foreign, or
    lacks a usable preprocessing record.
    """
    from .checkpoint import load_checkpoint

    ckpt = load_checkpoint(path)
    meta = dict(ckpt["extra"] or {})
    prep = meta.get("preprocess")
    if not isinstance(prep, dict):
        raise CheckpointError(f"{path}: no preprocessing record; expected a checkpoint written by "
                              "python -m minialex.train")
    prep = dict(prep)
    try:
        S, crop = int(prep.get("image_size", 32)), int(prep["crop"])
        prep["mean"] = np.asarray(prep["mean"], dtype=np.float32)      # (3, S, S)
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: its preprocessing record is malformed ({type(e).__name__}: {e})") from None
    if prep["mean"].shape != (3, S, S) or crop != model_input_size(ckpt["model"]):
        raise CheckpointError(f"{path}: its preprocessing record (mean {prep['mean'].shape}, crop {crop}) does "
                              f"not fit its net ({model_input_size(ckpt['model'])}x"
                              f"{model_input_size(ckpt['model'])} input, {S}x{S} images)")
    meta["preprocess"] = prep
    return ckpt["model"], meta


def model_input_size(model):
    """An AlexNet's ``config.input_size``, or another net's ``input_size`` (the cuda-convnet nets)."""
    size = getattr(getattr(model, "config", None), "input_size", None) or getattr(model, "input_size", None)
    return int(size) if size else None


def model_num_classes(model):
    """An AlexNet's ``config.num_classes``, or another net's ``num_classes``."""
    cfg = getattr(model, "config", None)
    return int(cfg.num_classes if cfg is not None else model.num_classes)


def check_labels(y, num_classes, path, what="the data"):
    """Raise DataError when ``y`` has a label the net of ``path`` (``num_classes`` outputs) cannot give."""
    if len(y) and int(np.max(y)) >= num_classes:
        raise DataError(f"{path}: {what} has label {int(np.max(y))}, the net only {num_classes} classes "
                        "(a checkpoint trained on other data?)")


def check_images(x, prep, what="the data"):
    """Raise DataError unless ``x`` holds the images a checkpoint was trained on (size, RGB).

    Shapes:  x: (N, 3, S, S) uint8, S = prep["image_size"] (32 for CIFAR nets, 256 for the paper's)
    """
    S = int(prep.get("image_size", prep["mean"].shape[-1]))
    shape = tuple(x.shape[1:])
    if shape != (3, S, S):
        got = f"{shape[1]}x{shape[2]}" if len(shape) == 3 else f"shape {shape}"
        chans = f" with {shape[0]} channels" if len(shape) == 3 and shape[0] != 3 else ""
        raise DataError(f"this checkpoint expects {S}x{S} RGB images, but {what} has {got} images{chans}; "
                        f"use the data it was trained on, or a folder that minialex prepares to {S}x{S}")


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


def run_in_batches(run, x, prepare, batch_size=200, xp=np):
    """The one test-mode loop: yields (uint8 batch, run(prepared batch on ``xp``)) over ``x``.

    ``run`` is ``model.predict`` (logits, dropout off, Sec. 4.2) or ``model.features``;
    ``prepare`` turns a uint8 batch into the net's float32 input (crops, mean, scale).

    Shapes:  x: (N, C, S, S) uint8; each yielded batch (B, C, S, S), B <= batch_size
    """
    for i in range(0, len(x), batch_size):
        xb = np.asarray(x[i:i + batch_size])
        yield xb, run(xp.asarray(prepare(xb)))


def predict_proba(model, x, prep, ten_crop=False, batch_size=200, xp=np):
    """Softmax outputs in test mode, averaged over the ten patches when ``ten_crop``.

    Shapes:  x: (N, 3, S, S) uint8  ->  (N, K) float64
    Paper:   Sec. 4.1 (ten patches, average of the softmax), Sec. 4.2 (dropout off at test).
    """
    out = []
    prepare = (lambda xb: ten_crop_batch(xb, prep)) if ten_crop else (lambda xb: centre_batch(xb, prep))
    for xb, logits in run_in_batches(model.predict, x, prepare, batch_size, xp):
        p = softmax(to_numpy(logits).astype(np.float64))              # (B or 10B, K)
        if ten_crop:
            p = p.reshape(len(xb), 10, -1).mean(axis=1)                # (B, 10, K) -> (B, K)
        out.append(p)
    return np.concatenate(out)


def extract_features(model, x, prep, batch_size=200, xp=np):
    """fc7 activations of the centre crops (Sec. 6.1, Figure 4 right). (N, 3, S, S) -> (N, D)."""
    batches = run_in_batches(model.features, x, lambda xb: centre_batch(xb, prep), batch_size, xp)
    return np.concatenate([to_numpy(f) for _, f in batches]).astype(np.float64)


def evaluate_batches(model, x, y, transform, batch_size=256, xp=np):
    """Test-mode pass: mean loss, top-1 and top-5 error over (x, y) (the trainer's per-epoch check).

    Shapes:  x: (N, C, H, W) uint8, y: (N,)  ->  (loss, top1, top5) floats
    """
    return errors_from_sums(evaluate_sums(model, x, y, transform, batch_size, xp))


def evaluate_sums(model, x, y, transform, batch_size=256, xp=np):
    """(loss sum, top-1 hits, top-5 hits, n) over (x, y): sums, so that data-parallel ranks' parts add up."""
    loss_fn = SoftmaxCrossEntropy()
    n, loss_sum, c1, c5 = 0, 0.0, 0, 0
    for i, (xb, logits) in enumerate(run_in_batches(model.predict, x, transform, batch_size, xp)):
        yb = np.asarray(y[i * batch_size:i * batch_size + len(xb)])
        loss_sum += float(loss_fn.forward(logits, xp.asarray(yb))) * len(yb)
        c1 += int(correct_topk(logits, yb, 1).sum())
        c5 += int(correct_topk(logits, yb, 5).sum())
        n += len(yb)
    return loss_sum, c1, c5, n


def errors_from_sums(sums):
    """(loss sum, top-1 hits, top-5 hits, n) -> (mean loss, top-1 error, top-5 error)."""
    loss_sum, c1, c5, n = sums
    return loss_sum / n, (n - c1) / n, (n - c5) / n


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


def evaluate(paths, x, y, ten_crop=False, batch_size=200, log=None, xp=np, loaded=None, what="the data"):
    """Rows (name, crops, top-1 error, top-5 error) for each checkpoint and, with
    several, for their ensemble; ten-crop rows when ``ten_crop``. ``xp``: the
    array module the nets run on (numpy, or cupy for the GPU). ``loaded``:
    {path: (model, meta)} already loaded (the command line checks every
    checkpoint before it loads the data); ``what`` names the data in errors."""
    members = {"centre": [], "ten-crop": []}
    rows = []
    modes = ["centre"] + (["ten-crop"] if ten_crop else [])
    classes = None
    for path in paths:
        model, meta = (loaded or {}).get(path) or load_model(path)
        check_images(x, meta["preprocess"], what)
        if xp is not np:
            if not hasattr(model, "to"):
                raise DataError(f"{path}: its net ({type(model).__name__}) runs on numpy only; "
                                "use --backend numpy")
            model.to(xp)
        k = model_num_classes(model)
        if classes is None:
            classes = k
        elif k != classes:
            raise DataError(f"{path} has {k} classes, the first checkpoint {classes}; an ensemble needs the same")
        check_labels(y, k, path, what)
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
