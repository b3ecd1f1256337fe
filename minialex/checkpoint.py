"""Save and load a training run in one portable .npz file (no pickle).

    save_checkpoint("run/last.npz", model, optimizer, schedule, extra={"epoch": 3})
    ckpt = load_checkpoint("run/last.npz", model, optimizer, schedule)
    ckpt["extra"]["epoch"]    # -> 3

File layout (every entry is a plain array; ``np.load(path, allow_pickle=False)`` reads it):

    param/<name>       each parameter, e.g. param/conv1.w (F, C/G, K, K)
    optim/v/<name>     SGD velocity of each parameter (if an optimizer was saved)
    meta/format        JSON {"format": "minialex-checkpoint", "version": 1}
    meta/config        JSON of the AlexNetConfig (``config.to_dict()``)
    meta/optim         JSON of SGD's hyper-parameters (lr, momentum, weight decay, steps)
    meta/schedule      JSON of the schedule's state
    meta/model_rng     JSON of the dropout layers' bit-generator states
    meta/extra         JSON of whatever the caller passes (epoch, RNG states, ...)

JSON is stored as UTF-8 bytes in a uint8 array. Arrays on a GPU are copied
to the host first.

Writes are atomic: the file is written to a temporary file in the same
directory, flushed to disk (fsync) and renamed over the target with
``os.replace``, so a crash leaves either the old checkpoint or the new one,
never half of one.
"""
from __future__ import annotations

import json
import os
import tempfile

import numpy as np

from .backend import get_array_module, to_device, to_numpy

FORMAT = {"format": "minialex-checkpoint", "version": 1}


def _json_array(obj):
    """Any JSON-serialisable object -> uint8 array of its UTF-8 JSON text."""
    return np.frombuffer(json.dumps(obj, sort_keys=True).encode("utf-8"), dtype=np.uint8)


def _from_json_array(a):
    return json.loads(bytes(np.asarray(a, dtype=np.uint8)).decode("utf-8"))


def save_checkpoint(path, model, optimizer=None, schedule=None, extra=None):
    """Write model weights (+ optimizer, schedule, config, ``extra``) atomically to ``path``.

    Parameters
    ----------
    path : str or Path; written exactly there (no ".npz" is appended).
    model : AlexNet (anything with ``named_params()``; ``config`` and
        ``rng_state()`` are stored when present).
    optimizer : SGD or None
    schedule : ReduceOnPlateau, StepDecay or None
    extra : JSON-serialisable dict or None, e.g. epoch, step, data RNG states.

    Returns the path written.
    """
    path = os.fspath(path)
    arrays = {"meta/format": _json_array(FORMAT)}
    for name, p in model.named_params():
        arrays[f"param/{name}"] = np.asarray(to_numpy(p))
    if getattr(model, "config", None) is not None:
        arrays["meta/config"] = _json_array(model.config.to_dict())
    if hasattr(model, "rng_state"):
        arrays["meta/model_rng"] = _json_array(model.rng_state())
    if optimizer is not None:
        state = optimizer.state_dict()
        arrays["meta/optim"] = _json_array(state["hyper"])
        for name, v in state["velocity"].items():
            arrays[f"optim/v/{name}"] = np.asarray(to_numpy(v))
    if schedule is not None:
        arrays["meta/schedule"] = _json_array(schedule.state_dict())
    if extra is not None:
        try:
            arrays["meta/extra"] = _json_array(extra)
        except TypeError as e:
            raise ValueError(f"save_checkpoint: extra must be JSON-serialisable ({e})") from None

    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    try:  # make the rename itself durable (POSIX); not possible on every platform
        dfd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass
    return path


def read_checkpoint(path):
    """The raw contents: {"params": {name: array}, "velocity": {...}, "config": dict or None,
    "optim": dict or None, "schedule": dict or None, "model_rng": dict or None, "extra": dict or None}."""
    with np.load(os.fspath(path), allow_pickle=False) as z:
        files = list(z.files)
        if "meta/format" not in files:
            raise ValueError(f"load_checkpoint: {path} is not a minialex checkpoint (no meta/format entry)")
        fmt = _from_json_array(z["meta/format"])
        if fmt.get("format") != FORMAT["format"] or fmt.get("version") != FORMAT["version"]:
            raise ValueError(f"load_checkpoint: {path} has format {fmt}, expected {FORMAT}")
        out = {"params": {}, "velocity": {}}
        for key in files:
            if key.startswith("param/"):
                out["params"][key[len("param/"):]] = z[key]
            elif key.startswith("optim/v/"):
                out["velocity"][key[len("optim/v/"):]] = z[key]
        for key in ("config", "optim", "schedule", "model_rng", "extra"):
            out[key] = _from_json_array(z[f"meta/{key}"]) if f"meta/{key}" in files else None
    return out


def _check_tensors(what, expected, found):
    """Raise ValueError naming the first tensor (in ``expected``'s order) that is missing or misshapen."""
    for name, arr in expected.items():
        if name not in found:
            raise ValueError(f"load_checkpoint: {what} {name!r} of shape {tuple(arr.shape)} is missing "
                             "from the file")
        if tuple(found[name].shape) != tuple(arr.shape):
            raise ValueError(f"load_checkpoint: {what} {name!r} has shape {tuple(found[name].shape)} in "
                             f"the file, but {tuple(arr.shape)} in the model")
    extra = [n for n in found if n not in expected]
    if extra:
        raise ValueError(f"load_checkpoint: the file has {what} {extra[0]!r} that the model does not have")


def _copy_into(dst, src):
    """Copy host array ``src`` into ``dst`` in place, on dst's device and in dst's dtype."""
    xp = get_array_module(dst)
    dst[...] = to_device(np.asarray(src, dtype=dst.dtype), xp)


def load_checkpoint(path, model=None, optimizer=None, schedule=None, check_config=True):
    """Restore a checkpoint written by ``save_checkpoint``.

    Parameters
    ----------
    path : the .npz file.
    model : AlexNet or None. None builds ``AlexNet`` from the stored config.
        Otherwise its parameters are overwritten **in place** (an optimizer
        built on them stays valid).
    optimizer, schedule : restored when given; the file must contain them.
    check_config : if True (default), every config field must equal the
        model's; the first differing field raises ValueError.

    Returns
    -------
    dict with "model", "config" (AlexNetConfig or None), "extra" (dict or None)
    and "optim", "schedule" (the stored states, dicts or None).

    Raises
    ------
    ValueError naming the first config field or tensor that does not match
    (with both values or shapes). Nothing is modified when it raises.
    """
    from .model import AlexNet, AlexNetConfig

    data = read_checkpoint(path)
    config = AlexNetConfig.from_dict(data["config"]) if data["config"] is not None else None
    if model is None:
        if config is None:
            raise ValueError(f"load_checkpoint: {path} stores no config; pass the model to load into")
        model = AlexNet(config)
    elif check_config and config is not None and getattr(model, "config", None) is not None:
        for name in config.diff(model.config):
            raise ValueError(f"load_checkpoint: config field {name!r} differs: the file has "
                             f"{getattr(config, name)!r}, the model has {getattr(model.config, name)!r}")

    params = dict(model.named_params())
    _check_tensors("parameter", params, data["params"])
    if optimizer is not None:
        if data["optim"] is None:
            raise ValueError(f"load_checkpoint: {path} holds no optimizer state")
        _check_tensors("velocity", optimizer.velocity, data["velocity"])
    if schedule is not None:
        if data["schedule"] is None:
            raise ValueError(f"load_checkpoint: {path} holds no schedule state")
        kind = data["schedule"].get("kind")
        if kind != type(schedule).__name__:
            raise ValueError(f"load_checkpoint: the file holds a {kind} schedule, "
                             f"expected {type(schedule).__name__}")

    for name, p in params.items():
        _copy_into(p, data["params"][name])
    if optimizer is not None:
        optimizer.load_state_dict({"hyper": data["optim"], "velocity": data["velocity"]})
    if schedule is not None:
        schedule.load_state_dict(data["schedule"])
    if data["model_rng"] is not None and hasattr(model, "set_rng_state"):
        model.set_rng_state(data["model_rng"])
    return {"model": model, "config": config, "extra": data["extra"],
            "optim": data["optim"], "schedule": data["schedule"]}
