"""Save and load a training run in one portable .npz file (no pickle).

    save_checkpoint("run/last.npz", model, optimizer, schedule, extra={"epoch": 3})
    ckpt = load_checkpoint("run/last.npz", model, optimizer, schedule)
    ckpt["extra"]["epoch"]    # -> 3

File layout (every entry is a plain array; ``np.load(path, allow_pickle=False)`` reads it):

    param/<name>       each parameter, e.g. param/conv1.w (F, C/G, K, K)
    optim/v/<name>     SGD velocity of each parameter (if an optimizer was saved)
    meta/format        JSON {"format": "minialex-checkpoint", "version": 1}
    meta/config        JSON of the AlexNetConfig (``config.to_dict()``)
    meta/net           JSON of another net's ``build_record()`` (the cuda-convnet nets)
    meta/optim         JSON of SGD's hyper-parameters (lr, momentum, weight decay, steps)
    meta/schedule      JSON of the schedule's state
    meta/model_rng     JSON of the dropout layers' bit-generator states
    meta/extra         JSON of whatever the caller passes (epoch, RNG states, ...)
    meta/checksums     JSON {entry: CRC-32 of its array bytes} for every other entry

JSON is stored as UTF-8 bytes in a uint8 array. Arrays on a GPU are copied
to the host first.

Writes are atomic: the file is written to a temporary file in the same
directory (``.checkpoint.npz.<pid>.<random>.tmp``), flushed to disk (fsync)
and renamed over the target with ``os.replace``, so a crash leaves either the
old checkpoint or the new one, never half of one. A process killed during the
write (kill -9, power cut) cannot remove its temporary file; the next run
removes it (``remove_stale_temp_files``): its pid names the process, and a
file whose process is gone is stale.

Reading checks the structure before anything is used: a zip archive, the
format entry, every entry's zip CRC and our own checksum, JSON that decodes,
parameters that are finite floating-point arrays. Every failure raises
``CheckpointError`` (a ValueError) naming the file and what is wrong.
Files written before checksums were added (no meta/checksums) still load.
"""
from __future__ import annotations

import json
import os
import tempfile
import zipfile
import zlib
from pathlib import Path

import numpy as np

from .backend import device_of, get_array_module, to_device, to_numpy
from .errors import CheckpointError
from .tempfiles import default_mode, remove_stale, temp_prefix

FORMAT = {"format": "minialex-checkpoint", "version": 1}
CHECKSUMS = "meta/checksums"


def _json_array(obj):
    """Any JSON-serialisable object -> uint8 array of its UTF-8 JSON text."""
    return np.frombuffer(json.dumps(obj, sort_keys=True).encode("utf-8"), dtype=np.uint8)


def _from_json_array(a):
    return json.loads(bytes(np.asarray(a, dtype=np.uint8)).decode("utf-8"))


def _crc(a):
    """CRC-32 of an array's bytes in C order (cheap: about 1 GB/s)."""
    return zlib.crc32(np.ascontiguousarray(a).view(np.uint8).reshape(-1)) if a.size else 0


def remove_stale_temp_files(path):
    """Delete the temporary files that killed writes of checkpoint ``path`` left beside it.

    Returns ``[(Path, bytes)]`` of what was removed (see ``minialex.tempfiles``).
    """
    path = Path(path)
    return remove_stale(path.parent, f".{path.name}.", ".tmp")


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
    elif hasattr(model, "build_record"):
        arrays["meta/net"] = _json_array(model.build_record())
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
        except (TypeError, ValueError) as e:
            raise ValueError(f"save_checkpoint: extra must be JSON-serialisable ({e})") from None
    arrays[CHECKSUMS] = _json_array({k: _crc(a) for k, a in arrays.items()})

    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path), suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        default_mode(tmp)
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


def _open_npz(path):
    """np.load of a checkpoint with every way it can fail turned into CheckpointError."""
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except IsADirectoryError:
        raise CheckpointError(f"checkpoint {path} is a directory; expected a .npz file written by "
                              "minialex (e.g. RUN/checkpoint.npz)") from None
    except OSError as e:
        raise CheckpointError(f"cannot read checkpoint {path}: {e.strerror or e}") from None
    if not head:
        raise CheckpointError(f"checkpoint {path} is empty (0 bytes); it was never written completely")
    if head != b"PK\x03\x04":
        kind = ("a pickle (minialex never writes pickles)" if head[:1] == b"\x80" else
                "a single .npy array" if head == b"\x93NUM" else f"a file starting with {head!r}")
        raise CheckpointError(f"{path} is not a minialex checkpoint: it is {kind}, expected an .npz "
                              "(zip) archive written by minialex.train")
    try:
        return np.load(path, allow_pickle=False)
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as e:
        raise CheckpointError(f"checkpoint {path} is truncated or corrupt: its zip directory cannot be "
                              f"read ({_reason(e)}); use an earlier copy or start the run again") from None


def _reason(e):
    return " ".join(str(e).split()) or type(e).__name__


def _entry(z, path, key):
    """One entry of the open archive, its zip CRC checked (zipfile checks it on a full read)."""
    try:
        return z[key]
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError, zlib.error) as e:
        raise CheckpointError(f"checkpoint {path} is corrupt: entry {key!r} cannot be read "
                              f"({_reason(e)})") from None


def _json_entry(z, path, key):
    a = _entry(z, path, key)
    if a.dtype != np.uint8 or a.ndim != 1:
        raise CheckpointError(f"checkpoint {path} is corrupt: {key!r} is {a.dtype} {a.shape}, "
                              "expected uint8 JSON text")
    try:
        return _from_json_array(a)
    except (UnicodeDecodeError, ValueError) as e:
        raise CheckpointError(f"checkpoint {path} is corrupt: {key!r} is not valid JSON ({_reason(e)})") from None


def read_checkpoint(path):
    """The raw contents: {"params": {name: array}, "velocity": {...}, "config": dict or None,
    "net": dict or None, "optim": dict or None, "schedule": dict or None, "model_rng": dict or None,
    "extra": dict or None}.

    Raises CheckpointError (a ValueError) naming the file and what is wrong
    with it: not an .npz, truncated, an entry that fails its CRC or checksum,
    JSON that does not decode, non-finite or non-float parameters.
    """
    with _open_npz(path) as z:
        files = list(z.files)
        if "meta/format" not in files:
            raise CheckpointError(f"{path} is not a minialex checkpoint (an .npz archive without a "
                                  "meta/format entry, e.g. from another program)")
        fmt = _json_entry(z, path, "meta/format")
        if not isinstance(fmt, dict) or fmt.get("format") != FORMAT["format"] or \
                fmt.get("version") != FORMAT["version"]:
            raise CheckpointError(f"{path} has format {fmt}, expected {FORMAT}")
        arrays = {key: _entry(z, path, key) for key in files}
    if CHECKSUMS in arrays:
        sums = _json_entry({CHECKSUMS: arrays[CHECKSUMS]}, path, CHECKSUMS)
        if not isinstance(sums, dict):
            raise CheckpointError(f"checkpoint {path} is corrupt: {CHECKSUMS!r} is not a JSON object")
        listed, present = set(sums), set(arrays) - {CHECKSUMS}
        if listed != present:
            gone, new = sorted(listed - present), sorted(present - listed)
            raise CheckpointError(f"checkpoint {path} is corrupt or was edited: entries "
                                  f"{'missing ' + str(gone) if gone else ''}"
                                  f"{' and ' if gone and new else ''}{'not written by minialex ' + str(new) if new else ''}")
        for key in sorted(present):
            if _crc(arrays[key]) != sums[key]:
                raise CheckpointError(f"checkpoint {path} is corrupt: entry {key!r} fails its checksum "
                                      f"(CRC-32 {_crc(arrays[key]):08x}, recorded {sums[key]:08x})")
    out = {"params": {}, "velocity": {}}
    for key, a in arrays.items():
        if key.startswith("param/") or key.startswith("optim/v/"):
            if a.dtype.kind != "f":
                raise CheckpointError(f"checkpoint {path} is corrupt: {key!r} has dtype {a.dtype}, "
                                      "expected float32 or float64")
            if not np.isfinite(a).all():
                raise CheckpointError(f"checkpoint {path} is unusable: {key!r} holds NaN or inf values")
            if key.startswith("param/"):
                out["params"][key[len("param/"):]] = a
            else:
                out["velocity"][key[len("optim/v/"):]] = a
    for key in ("config", "net", "optim", "schedule", "model_rng", "extra"):
        out[key] = _json_entry(arrays, path, f"meta/{key}") if f"meta/{key}" in arrays else None
        if out[key] is not None and not isinstance(out[key], dict):
            raise CheckpointError(f"checkpoint {path} is corrupt: 'meta/{key}' is "
                                  f"{type(out[key]).__name__}, expected a JSON object")
    if not out["params"]:
        raise CheckpointError(f"{path} holds no parameters (no param/ entries)")
    return out


def _check_tensors(what, expected, found, path):
    """Raise CheckpointError naming the first tensor (in ``expected``'s order) that is missing or misshapen."""
    for name, arr in expected.items():
        if name not in found:
            raise CheckpointError(f"load_checkpoint: {what} {name!r} of shape {tuple(arr.shape)} is missing "
                                  f"from {path}")
        if tuple(found[name].shape) != tuple(arr.shape):
            raise CheckpointError(f"load_checkpoint: {what} {name!r} has shape {tuple(found[name].shape)} in "
                                  f"the file, but {tuple(arr.shape)} in the model ({path})")
    extra = [n for n in found if n not in expected]
    if extra:
        raise CheckpointError(f"load_checkpoint: {path} has {what} {extra[0]!r} that the model does not have")


def _copy_into(dst, src):
    """Copy host array ``src`` into ``dst`` in place, on dst's device and in dst's dtype."""
    xp = get_array_module(dst)
    with device_of(dst):
        dst[...] = to_device(np.asarray(src, dtype=dst.dtype), xp)


def _record_from_spec(extra, params):
    """A cuda-convnet build record from a reproduce run's ``extra["spec"]``, or None."""
    from .cuda_convnet import NETS

    spec = (extra or {}).get("spec")
    if not isinstance(spec, dict) or spec.get("net") not in NETS:
        return None
    first = next(iter(params.values()))
    return {"builder": "cuda_convnet", "name": spec["net"], **dict(spec.get("net_options") or {}),
            "num_classes": int(params["fc10.b"].shape[0]) if "fc10.b" in params else 10,
            "dtype": str(first.dtype)}


def load_checkpoint(path, model=None, optimizer=None, schedule=None, check_config=True):
    """Restore a checkpoint written by ``save_checkpoint``.

    Parameters
    ----------
    path : the .npz file.
    model : AlexNet or None. None builds ``AlexNet`` from the stored config,
        or a cuda-convnet net from its stored record (meta/net; for files
        written before that entry, the ``net``/``net_options`` of the
        ``extra["spec"]`` that ``minialex.reproduce`` stores).
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
    try:
        config = AlexNetConfig.from_dict(data["config"]) if data["config"] is not None else None
    except (TypeError, ValueError, KeyError) as e:
        raise CheckpointError(f"checkpoint {path}: its stored config is not a valid AlexNetConfig "
                              f"({' '.join(str(e).split())})") from None
    if model is None:
        record = data["net"] or _record_from_spec(data["extra"], data["params"])
        if config is None and record is None:
            raise CheckpointError(f"load_checkpoint: {path} stores no config; pass the model to load into")
        try:
            if config is not None:
                model = AlexNet(config)
            else:
                from .cuda_convnet import rebuild

                model = rebuild(record)
        except ValueError as e:
            what = "config" if config is not None else "net record"
            raise CheckpointError(f"checkpoint {path}: its stored {what} builds no net ({e})") from None
    elif check_config and config is not None and getattr(model, "config", None) is not None:
        for name in config.diff(model.config):
            raise CheckpointError(f"load_checkpoint: config field {name!r} differs: the file has "
                                  f"{getattr(config, name)!r}, the model has {getattr(model.config, name)!r} "
                                  f"({path})")

    params = dict(model.named_params())
    _check_tensors("parameter", params, data["params"], path)
    if optimizer is not None:
        if data["optim"] is None:
            raise CheckpointError(f"load_checkpoint: {path} holds no optimizer state")
        _check_tensors("velocity", optimizer.velocity, data["velocity"], path)
    if schedule is not None:
        if data["schedule"] is None:
            raise CheckpointError(f"load_checkpoint: {path} holds no schedule state")
        kind = data["schedule"].get("kind")
        if kind != type(schedule).__name__:
            raise CheckpointError(f"load_checkpoint: {path} holds a {kind} schedule, "
                                  f"expected {type(schedule).__name__}")

    for name, p in params.items():
        _copy_into(p, data["params"][name])
    try:
        if optimizer is not None:
            optimizer.load_state_dict({"hyper": data["optim"], "velocity": data["velocity"]})
        if schedule is not None:
            schedule.load_state_dict(data["schedule"])
        if data["model_rng"] is not None and hasattr(model, "set_rng_state"):
            model.set_rng_state(data["model_rng"])
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"checkpoint {path}: its optimizer, schedule or dropout state is malformed "
                              f"({type(e).__name__}: {' '.join(str(e).split())})") from None
    return {"model": model, "config": config, "extra": data["extra"],
            "optim": data["optim"], "schedule": data["schedule"]}
