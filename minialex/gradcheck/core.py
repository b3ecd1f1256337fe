"""Numerical gradient checks: centred differences in float64.

A check compares the analytic gradients of ``backward`` with

    df/dx_i ~ (f(x + eps e_i) - f(x - eps e_i)) / (2 eps)

for the scalar f = sum(forward(x) * dout), with a fixed random upstream
gradient ``dout``. Errors are relative to the tensor's own scale:

    rel_error(a, b) = max_i |a_i - b_i| / max(1e-8, max_i (|a_i| + |b_i|))

The per-entry form of CS231n (dividing each |a_i - b_i| by its own
|a_i| + |b_i|) flags correct layers whenever one gradient entry is tiny
(a softmax probability of 1e-6, a cancellation in x @ w.T): round-off in the
difference quotient is about 1e-16 |f| / eps, whatever the entry's size.
Scaling by the largest entry keeps that noise near 1e-9 while a genuine
mistake (a wrong LRN window with alpha=1, a missing 1/N) still scores 1e-3
or worse. ``rel_error_map`` gives the per-entry form for diagnostics.

In float64 with eps=1e-6 a correct layer scores about 1e-10 to 1e-7.
The default threshold is 1e-6.

Three entry points, all returning a ``GradReport``:

- ``check_layer(layer, x)``: any object with ``forward(x, train)``,
  ``backward(dout)`` and optional ``params``/``grads`` dicts (duck typing:
  a student's class works as well as a minialex one);
- ``check_functions(forward_fn, backward_fn, *inputs)``: a CS231n-style pair,
  ``forward_fn(*inputs) -> (out, cache)``, ``backward_fn(dout, cache) -> grads``;
- ``check_loss(loss, x, y)``: ``forward(x, y) -> scalar``, ``backward() -> dx``.

``reference=`` (a minialex layer, or a forward function) also compares the
forward pass on the same inputs and parameters. Failing tensors are handed to
``diagnose.py``, which says where the errors sit and what that usually means.
"""
from __future__ import annotations

import inspect

import numpy as np

from ..backend import to_numpy
from .diagnose import diagnose as run_diagnosis
from .numeric import (DEFAULT_EPS, DEFAULT_THRESHOLD, numerical_gradient, rel_error,  # noqa: F401
                      rel_error_map, scaled_error_map)
from .report import CheckContext, Diagnosis, GradReport, TensorCheck  # noqa: F401

def _tensor_check(name, analytic, numeric, threshold):
    analytic = np.asarray(to_numpy(analytic), dtype=np.float64)
    numeric = np.asarray(to_numpy(numeric), dtype=np.float64)
    if analytic.shape != numeric.shape:
        return TensorCheck(name, numeric.shape, float("inf"), (), False)
    err = scaled_error_map(analytic, numeric)
    if err.size == 0:
        return TensorCheck(name, tuple(numeric.shape), 0.0, (), True)
    flat = int(np.argmax(err))
    idx = tuple(int(i) for i in np.unravel_index(flat, err.shape))
    m = float(err.max())
    if not np.isfinite(analytic).all():
        m = float("inf")
    worst = []
    for f in np.argsort(err, axis=None)[::-1][:3]:
        i = tuple(int(j) for j in np.unravel_index(f, err.shape))
        if not err[i] > threshold:
            break
        worst.append((i, float(analytic[i]), float(numeric[i])))
    return TensorCheck(name, tuple(numeric.shape), m, idx, m <= threshold,
                       float(analytic[idx]), float(numeric[idx]), worst)


def _as_float64(a):
    return np.array(to_numpy(a), dtype=np.float64)


def _is_float_array(a):
    """A NumPy/CuPy array of floats with at least one dimension (what gets differentiated)."""
    dt = getattr(a, "dtype", None)
    return dt is not None and getattr(a, "ndim", 0) > 0 and np.issubdtype(np.dtype(dt), np.floating)


_HYPER = ("size", "alpha", "beta", "k", "coeff", "kernel_size", "stride", "padding", "groups",
          "in_channels", "out_channels", "alpha_convention")


def _kind_of(*objs, info=None):
    if info and info.get("kind"):
        return info["kind"]
    for o in objs:
        if o is None:
            continue
        n = (o.__name__ if inspect.isfunction(o) or inspect.isclass(o) else type(o).__name__).lower()
        for key, kind in (("localresponse", "lrn"), ("lrn", "lrn"), ("pool", "pool"),
                          ("col2im", "col2im"), ("conv", "conv"), ("relu", "relu"),
                          ("softmax", "softmax"), ("crossentropy", "softmax")):
            if key in n:
                return kind
    return "generic"


def _hyper_of(*objs):
    """Hyper-parameters read from the layers' attributes (the reference wins)."""
    info = {}
    for o in [o for o in objs if o is not None]:          # later objects win
        for k in _HYPER:
            if hasattr(o, k) and not callable(getattr(o, k)):
                info[k] = getattr(o, k)
    return info


def _finish(report, ctx, diagnose):
    if diagnose:
        report.diagnoses.extend(run_diagnosis(report, ctx))
    return report


def _params_to_float64(layer):
    """Replace ``layer``'s parameters by float64 copies, in the object that owns
    them: for a container with ``.layers`` (Sequential, AlexNet), in each
    sub-layer, since the container's ``params`` is a fresh dict each time."""
    subs = getattr(layer, "layers", None)
    if isinstance(subs, (list, tuple)):
        for sub in subs:
            _params_to_float64(sub)
        return
    params = getattr(layer, "params", None)
    if params:
        for k in list(params):
            params[k] = _as_float64(params[k])


def check_layer(layer, x, threshold=DEFAULT_THRESHOLD, eps=DEFAULT_EPS, seed=0, train=True,
                name=None, reference=None, diagnose=True, info=None):
    """Check ``dx`` and every gradient in ``layer.grads`` against centred differences.

    ``layer`` is anything with ``forward(x, train)``, ``backward(dout)``,
    ``params`` and ``grads`` (duck typing; ``params``/``grads`` may be absent
    for layers without parameters, and ``forward(x)`` without ``train`` is
    accepted). ``x`` and every parameter are cast to float64 first (the
    layer's params are replaced by float64 copies). Layers with randomness
    must be made deterministic first (e.g. ``Dropout.freeze(mask)``).

    ``reference``: a layer computing the same function (e.g. minialex's own).
    It receives float64 copies of ``layer``'s params, runs forward on an
    untouched copy of ``x``, and ``report.forward`` says how far the outputs
    are apart.

    A forward that modifies ``x`` or a backward that modifies ``dout`` fails
    the check (``report.problems``), whatever the numbers.

    ``info``: hyper-parameters for the diagnostics (``kind``, ``kernel_size``,
    ``stride``, ``groups``, ``size`` ...) when they cannot be read from the
    layers' attributes.

    Returns a ``GradReport``; ``report.passed``, ``report.diagnoses``, ``str(report)``.
    """
    for meth in ("forward", "backward"):
        if not callable(getattr(layer, meth, None)):
            raise TypeError(f"check_layer: {type(layer).__name__} has no {meth}() method; "
                            "expected an object with forward(x), backward(dout), params, grads")
    rng = np.random.default_rng(seed)
    x_dtype = getattr(x, "dtype", None)
    x0 = _as_float64(x)                      # untouched: the reference and the restore read it
    x = x0.copy()
    p_dtypes = {k: getattr(v, "dtype", None) for k, v in (getattr(layer, "params", None) or {}).items()}
    _params_to_float64(layer)
    # Read params again: a container (Sequential, AlexNet) builds its dict from
    # its sub-layers on each access, so the float64 arrays live in those.
    params = getattr(layer, "params", None) or {}
    fwd = _forward_caller(layer, reference, train)
    report = GradReport(name or type(layer).__name__, threshold)
    if reference is not None:
        _share_params(params, reference, report)

    out = fwd(layer, x)
    if not np.array_equal(x, x0):
        report.problems.append("forward modified its input x in place; it must leave it untouched "
                               "(work on a copy: `x = x - ...`, not `x -= ...`)")
        x[...] = x0
    out_dtype = getattr(out, "dtype", None)
    out = _as_float64(out)                   # a copy: the layer may reuse its output buffer
    dout = rng.standard_normal(out.shape)

    def f():                                 # a copy: a forward that modifies x cannot corrupt the check
        return np.sum(to_numpy(fwd(layer, x.copy())) * dout)

    fwd(layer, x)
    dout_given = dout.copy()
    dx = layer.backward(dout_given)
    if not np.array_equal(dout_given, dout):
        report.problems.append("backward modified dout in place; it must leave it untouched "
                               "(the layer below may still need it)")
    grads = {k: _as_float64(v) for k, v in (getattr(layer, "grads", None) or {}).items()
             if v is not None}
    grads["dx"] = None if dx is None else _as_float64(dx)
    arrays = {"dx": x, **params}
    dtypes = {"dx": x_dtype, **p_dtypes}
    analytic, numeric = _compare_gradients(report, f, arrays, grads, threshold, eps)

    ref_out = None
    if reference is not None:
        ref_out = _as_float64(fwd(reference, x0.copy()))
        report.forward = _tensor_check("out", _as_float64(fwd(layer, x)), ref_out, threshold)
    hyper = _hyper_of(layer, reference)
    hyper.update(info or {})
    ctx = CheckContext(_kind_of(reference, layer, info=info), hyper, f,
                       {k: v for k, v in arrays.items() if k in analytic}, analytic, numeric, dout,
                       threshold, eps, {k: v for k, v in dtypes.items() if k in analytic}, out_dtype, out,
                       ref_out, layer, reference)
    return _finish(report, ctx, diagnose)


def _compare_gradients(report, f, arrays, grads, threshold, eps):
    """One ``TensorCheck`` per array (dx first, then each parameter) against centred differences.

    ``grads`` maps "dx" and each parameter name to the analytic gradient (None
    when backward did not return or fill it). Returns (analytic, numeric) for
    the tensors that have both.
    """
    analytic, numeric = {}, {}
    for k, arr in arrays.items():
        num = numerical_gradient(f, arr, eps)
        if grads.get(k) is None:
            report.tensors.append(TensorCheck(k, tuple(arr.shape), float("inf"), (), False))
            report.notes.append("backward returned None; it must return dx" if k == "dx"
                                else f"backward did not fill grads[{k!r}]")
            continue
        report.tensors.append(_tensor_check(k, grads[k], num, threshold))
        analytic[k], numeric[k] = grads[k], num
    return analytic, numeric


def _forward_caller(layer, reference, train):
    """fwd(obj, x): ``obj.forward(x, train=train)``, or ``obj.forward(x)`` where it takes no train."""
    takes = {id(o): _accepts_train(o.forward) for o in (layer, reference) if o is not None}

    def fwd(obj, arr):
        return obj.forward(arr, train=train) if takes[id(obj)] else obj.forward(arr)
    return fwd


def _share_params(params, reference, report):
    """Give ``reference`` float64 copies of the checked layer's params (a note where one is missing)."""
    ref_params = getattr(reference, "params", {}) or {}
    for k in list(ref_params):
        if k not in params:
            report.notes.append(f"your layer has no params[{k!r}] (the reference has one, "
                                f"shape {tuple(ref_params[k].shape)})")
        elif tuple(np.shape(params[k])) != tuple(np.shape(ref_params[k])):
            report.notes.append(f"params[{k!r}] has shape {tuple(np.shape(params[k]))}, the reference "
                                f"expects {tuple(np.shape(ref_params[k]))}")
        else:
            ref_params[k] = params[k].copy()


def _accepts_train(fn):
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return True
    ps = sig.parameters
    return "train" in ps or any(p.kind == p.VAR_KEYWORD for p in ps.values())


def _split_forward(res):
    """forward_fn may return ``out`` or ``(out, cache)``."""
    if isinstance(res, tuple) and len(res) == 2:
        return res
    return res, None


def check_functions(forward_fn, backward_fn, *inputs, threshold=DEFAULT_THRESHOLD, eps=DEFAULT_EPS,
                    seed=0, name=None, reference=None, diagnose=True, info=None):
    """Check a CS231n-style pair of plain functions.

    ``forward_fn(*inputs)`` returns ``(out, cache)`` (or just ``out``, then
    ``cache`` is None); ``backward_fn(dout, cache)`` returns one gradient per
    floating-point input, in order (a tuple, or one array when there is one).
    Integer inputs (labels), tuples and scalars are passed through and not
    differentiated. Gradients are named after ``forward_fn``'s parameters:
    ``affine_forward(x, w, b)`` gives ``dx``, ``dw``, ``db``.

    A scalar output (a loss) uses ``dout = 1.0``, so the gradients are the
    loss's own; other outputs use a fixed random ``dout``.

    ``reference``: a forward function with the same signature (returning
    ``out`` or ``(out, cache)``); ``report.forward`` compares the outputs.

    Returns a ``GradReport``.
    """
    rng = np.random.default_rng(seed)
    args = list(inputs)
    diff = [i for i, a in enumerate(args) if _is_float_array(a)]
    dtypes = {}
    for i in diff:
        dtypes[i] = getattr(args[i], "dtype", None)
        args[i] = _as_float64(args[i])
    names = _grad_names(forward_fn, len(args))
    pristine = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
    report = GradReport(name or getattr(forward_fn, "__name__", "function"), threshold)

    out, cache = _split_forward(forward_fn(*args))
    for i, (a, a0) in enumerate(zip(args, pristine)):
        if isinstance(a, np.ndarray) and not np.array_equal(a, a0, equal_nan=a.dtype.kind == "f"):
            report.problems.append(f"forward modified its input {names[i][1:]} in place; it must "
                                   "leave it untouched (work on a copy)")
            a[...] = a0
    out_dtype = getattr(out, "dtype", None)
    scalar = np.ndim(out) == 0
    dout = 1.0 if scalar else rng.standard_normal(np.shape(out))

    def f():                                 # copies: a forward that modifies its inputs cannot corrupt the check
        o, _ = _split_forward(forward_fn(*[a.copy() if isinstance(a, np.ndarray) else a for a in args]))
        return np.sum(to_numpy(o) * dout)

    out, cache = _split_forward(forward_fn(*args))
    dout_given = dout if scalar else dout.copy()
    grads = backward_fn(dout_given, cache)
    if not isinstance(grads, (tuple, list)):
        grads = (grads,)
    if not scalar and not np.array_equal(dout_given, dout):
        report.problems.append("backward modified dout in place; it must leave it untouched")
    if len(grads) != len(diff):
        report.notes.append(f"backward returned {len(grads)} gradient(s) for {len(diff)} "
                            f"floating-point input(s) ({', '.join(names[i] for i in diff)})")
    analytic, numeric, arrays, dt = {}, {}, {}, {}
    for j, i in enumerate(diff):
        nm = names[i]
        num = numerical_gradient(f, args[i], eps)
        if j >= len(grads) or grads[j] is None:
            report.tensors.append(TensorCheck(nm, tuple(args[i].shape), float("inf"), (), False))
            continue
        report.tensors.append(_tensor_check(nm, grads[j], num, threshold))
        analytic[nm], numeric[nm], arrays[nm], dt[nm] = _as_float64(grads[j]), num, args[i], dtypes[i]

    ref_out = None
    if reference is not None:
        ref_args = [a.copy() if isinstance(a, np.ndarray) else a for a in pristine]
        ref_out = _as_float64(_split_forward(reference(*ref_args))[0])
        mine = _as_float64(_split_forward(forward_fn(*args))[0])
        report.forward = _tensor_check("out", mine, ref_out, threshold)
    ints = [a for i, a in enumerate(args) if i not in diff]
    ctx = CheckContext(_kind_of(forward_fn, reference, info=info), dict(info or {}), f, arrays,
                       analytic, numeric, dout, threshold, eps, dt, out_dtype, _as_float64(out),
                       ref_out, extra={"other_inputs": ints, "inputs": args})
    return _finish(report, ctx, diagnose)


def _grad_names(fn, n):
    try:
        ps = [p for p in inspect.signature(fn).parameters.values()
              if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        names = ["d" + p.name for p in ps[:n]]
    except (TypeError, ValueError):
        names = []
    names += [f"d_input{i}" for i in range(len(names), n)]
    return names


def check_loss(loss, x, y, threshold=DEFAULT_THRESHOLD, eps=DEFAULT_EPS, name=None, diagnose=True):
    """Check ``dx`` of a loss with ``forward(x, y) -> scalar`` and ``backward() -> dx``."""
    x_dtype = getattr(x, "dtype", None)
    x = _as_float64(x)

    def f():
        return float(to_numpy(loss.forward(x, y)))

    out = loss.forward(x, y)
    report = GradReport(name or type(loss).__name__, threshold)
    if np.ndim(out) != 0:
        report.problems.append(f"forward returned shape {np.shape(out)}; a loss must be a scalar "
                               "(the mean over the batch)")
        report.tensors.append(TensorCheck("dx", tuple(x.shape), float("inf"), (), False))
        return report
    dx = loss.backward()
    num = numerical_gradient(f, x, eps)
    report.tensors.append(_tensor_check("dx", dx, num, threshold))
    ctx = CheckContext(_kind_of(loss), {}, f, {"dx": x}, {"dx": _as_float64(dx)}, {"dx": num}, 1.0,
                       threshold, eps, {"dx": x_dtype}, getattr(out, "dtype", None),
                       extra={"other_inputs": [np.asarray(y)], "inputs": [x, np.asarray(y)]})
    return _finish(report, ctx, diagnose)
