"""Grade one case of one agreed name: run the student's code, compare, diagnose.

The student's results are compared tensor by tensor with minialex's
readable layer on the same float64 inputs, parameters and upstream gradient
(``minialex.labs.variants``): the forward output (or the loss), then ``dx``
and every parameter gradient. The reference's gradients are themselves
checked against centred differences by the built-in suite
(``python -m minialex.gradcheck``), so comparing with them is a float64
gradient check that cannot be fooled by a wrong forward: a correct ``dx``
passes even when the forward (or the loss) is wrong, and a tied max-pool
window has one right answer (the spec's first maximum) where a numerical
gradient has none.

A wrong tensor is then compared with every variant (a plausible mistake) of
the reference, and the one it matches names the cause. When none matches,
the failure says where the errors sit and which notebook step to re-derive,
and names no cause. Modifying an input, a loss that is not a scalar, a
result of the wrong shape or dtype are failures with their own message.
"""
from __future__ import annotations

import inspect
import time
from dataclasses import dataclass, field

import numpy as np

from ..labs import variants as V
from ..labs.spec import DEFAULT_STEP, SIGNATURES
from .diagnose import locate
from .numeric import DEFAULT_THRESHOLD, rel_error, scaled_error_map

MATCH = 1e-6              # a student's tensor "is" a variant when rel_error is below this


@dataclass
class Failure:
    """One thing wrong in one case: a tensor, what is wrong, and (when known) why."""

    tensor: str               # "out", "loss", "dx", "w", "b", or the input that was modified
    what: str                 # what is wrong, with numbers
    code: str = ""            # diagnosis class ("" when no known mistake matches)
    cause: str = ""           # the most likely cause, in words ("" when unknown)
    step: tuple | None = None  # (lab, step) where the quantity is derived
    details: list = field(default_factory=list)   # worst entries, where the errors sit


@dataclass
class CaseOutcome:
    """The verdict of one case: PASS, FAIL, ERROR (the student's code raised) or TODO."""

    name: str
    case: object
    verdict: str
    failures: list = field(default_factory=list)
    errors: dict = field(default_factory=dict)     # tensor -> relative error against the reference
    message: str = ""                              # for ERROR / TODO
    seconds: float = 0.0

    @property
    def passed(self):
        return self.verdict == "PASS"

    @property
    def codes(self):
        return [f.code for f in self.failures if f.code]


class StudentError(Exception):
    """A wrong result the grader can state in one line (bad constructor, wrong return type ...)."""

    def __init__(self, tensor, what, code="interface", cause=""):
        super().__init__(what)
        self.failure = Failure(tensor, what, code, cause)


class ConstructorError(TypeError):
    """The student's class does not accept the agreed constructor arguments."""


def _construct(cls, name, kwargs):
    """cls with the agreed arguments (by keyword; Conv2D's three sizes by position), checked for
    forward and backward."""
    args = ()
    if name == "Conv2D":          # the three sizes positionally, as the agreed signature's order gives them
        kwargs = dict(kwargs)
        args = tuple(kwargs.pop(k) for k in ("in_channels", "out_channels", "kernel_size"))
    try:
        layer = cls(*args, **kwargs)
    except TypeError as e:
        raise ConstructorError(f"{e}; the agreed constructor is {SIGNATURES[name]}") from e
    for meth in ("forward", "backward"):
        if not callable(getattr(layer, meth, None)):
            raise StudentError("out" if meth == "forward" else "dx",
                               f"your {name} has no {meth}() method; a layer needs forward(x) -> out and "
                               "backward(dout) -> dx")
    return layer


def _accepts_train(fn):
    try:
        ps = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return True
    return "train" in ps or any(p.kind == p.VAR_KEYWORD for p in ps.values())


def _array(v, what):
    """The student's result as a float64 array, or a StudentError saying what it was."""
    if v is None:
        raise StudentError(what, f"your code returned None for {what}; it must return an array")
    try:
        a = np.asarray(v)
    except Exception:  # noqa: BLE001 - any odd object
        raise StudentError(what, f"{what} is a {type(v).__name__}, not an array") from None
    if a.dtype == object or not np.issubdtype(a.dtype, np.number):
        raise StudentError(what, f"{what} is not a numeric array (dtype {a.dtype})")
    return a


def _student_layer(case, obj, inp):
    """Run a layer-type student class; returns (tensors, dtypes, problems, dout)."""
    st, name = case.setting, case.name
    args = {k: v for k, v in st.items() if k != "x"}
    layer = _construct(obj, name, args)
    ref = _reference(case, inp, None)
    dout = np.random.default_rng(2000 + case.seed).standard_normal(ref["out"].shape)
    if name == "Conv2D":
        have = getattr(layer, "params", None)
        if not isinstance(have, dict):
            raise StudentError("w", "Conv2D: `params` must be a dict holding 'w' and 'b'")
        for key in ("w", "b"):
            if key not in have:
                raise StudentError(key, f"Conv2D: params has no {key!r}; expected keys 'w' and 'b'")
            if tuple(np.shape(have[key])) != inp[key].shape:
                raise StudentError(key, f"Conv2D: params[{key!r}] has shape {tuple(np.shape(have[key]))}, "
                                   f"expected {inp[key].shape} (w: (F, C/G, K, K), b: (F,))")
            have[key] = inp[key].copy()
            now = (getattr(layer, "params", None) or {}).get(key)
            if now is None or np.shape(now) != inp[key].shape or not np.array_equal(now, inp[key]):
                if hasattr(layer, key):                # params built on each access from attributes
                    setattr(layer, key, inp[key].copy())
                now = (getattr(layer, "params", None) or {}).get(key)
                if now is None or not np.array_equal(now, inp[key]):
                    raise StudentError(key, f"Conv2D: setting params[{key!r}] does not change the layer "
                                       "(is `params` rebuilt on every access?); keep the arrays in the "
                                       "`params` dict itself")
    x = inp["x"].copy()
    problems = []
    out = layer.forward(x, train=True) if _accepts_train(layer.forward) else layer.forward(x)
    if not np.array_equal(x, inp["x"]):
        problems.append(Failure("x", "your forward modified its input x in place; it must leave it "
                                "untouched (the layer below and the optimizer still need it): work on a "
                                "copy, `x = x - ...` instead of `x -= ...`", "mutates_input",
                                "an in-place operation on the input"))
    out = _array(out, "out")
    out = out.copy()                       # the layer may reuse its buffer in backward
    d = dout.copy()
    dx = layer.backward(d)
    if not np.array_equal(d, dout):
        problems.append(Failure("dout", "your backward modified dout in place; it must leave it "
                                "untouched (another layer may still need it): work on a copy",
                                "mutates_input", "an in-place operation on dout"))
    tensors = {"out": out, "dx": _array(dx, "dx")}
    fwd = (lambda a: layer.forward(a, train=True)) if _accepts_train(layer.forward) else layer.forward

    def probe(a):                          # <your forward(a), dout>: its gradient is your forward's dx
        return float(np.sum(np.asarray(fwd(a.copy()), dtype=np.float64) * dout))
    if name == "Conv2D":
        grads = getattr(layer, "grads", None) or {}
        for key in ("w", "b"):
            if key not in grads or grads[key] is None:
                raise StudentError(key, f"your backward did not fill grads[{key!r}]")
            tensors[key] = _array(grads[key], f"grads[{key!r}]")
    return tensors, problems, dout, probe


def _student_col2im(case, fn, inp):
    st = case.setting
    cols = inp["cols"].copy()
    dx = fn(cols, st["x"], st["KH"], st["KW"], st["stride"], st["padding"])
    problems = []
    if not np.array_equal(cols, inp["cols"]):
        problems.append(Failure("cols", "your col2im modified its input cols in place; it must leave "
                                "it untouched: work on a copy", "mutates_input", "an in-place operation"))
    return {"dx": _array(dx, "dx")}, problems, None, None


def _student_softmax(case, fn, inp):
    x, y = inp["x"].copy(), inp["y"].copy()
    res = fn(x, y)
    problems = []
    if not np.array_equal(x, inp["x"]) or not np.array_equal(y, inp["y"]):
        which = "x" if not np.array_equal(x, inp["x"]) else "y"
        problems.append(Failure(which, f"your softmax_cross_entropy modified its input {which} in place "
                                "(e.g. `x -= x.max(...)`); it must leave it untouched: work on a copy, "
                                "`z = x - x.max(axis=1, keepdims=True)`", "mutates_input",
                                "an in-place operation on the logits"))
    if not (isinstance(res, (tuple, list)) and len(res) == 2):
        raise StudentError("loss", "softmax_cross_entropy must return a pair (loss, dx), got "
                           f"{type(res).__name__}" + (f" of length {len(res)}" if isinstance(res, tuple) else ""))
    loss, dx = res
    loss = _array(loss, "loss")
    if loss.ndim != 0:
        raise StudentError("loss", f"your loss has shape {loss.shape}; it must be a scalar, the mean "
                           f"over the batch of the {x.shape[0]} per-sample losses (np.mean, or .mean())",
                           "loss_not_scalar", "per-sample losses returned instead of their mean")

    def probe(a):                          # your loss at a: its gradient is your loss's dx
        return float(np.asarray(fn(a.copy(), inp["y"].copy())[0], dtype=np.float64))
    return {"loss": loss, "dx": _array(dx, "dx")}, problems, None, probe


def _reference(case, inp, dout):
    st = case.setting
    if case.name == "LocalResponseNorm":
        x = inp["x"]
        d = np.zeros_like(x) if dout is None else dout
        return V.lrn_run(x, d, st["size"], st["alpha"], st["beta"], st["k"])
    if case.name == "MaxPool2D":
        x, z, s = inp["x"], st["kernel_size"], st["stride"]
        if dout is None:
            return {"out": V.readable(V.MaxPool2D, z, s).forward(x.copy())}
        return V.pool_run(x, dout, z, s)
    if case.name == "Conv2D":
        x, w, b = inp["x"], inp["w"], inp["b"]
        if dout is None:
            layer = V.readable(V.Conv2D, x.shape[1], w.shape[0], w.shape[2], stride=st["stride"],
                               padding=st["padding"], groups=st["groups"], dtype=np.float64)
            layer.params["w"], layer.params["b"] = w.copy(), b.copy()
            return {"out": layer.forward(x.copy())}
        return V.conv_run(x, w, b, dout, st["stride"], st["padding"], st["groups"])
    if case.name == "col2im":
        return {"dx": V.col2im_reference(inp["cols"], st["x"], st["KH"], st["KW"], st["stride"],
                                         st["padding"])}
    return V.softmax_run(inp["x"], inp["y"])


def _variants(case, inp, dout):
    st = case.setting
    if case.name == "LocalResponseNorm":
        return V.lrn_variants(inp["x"], dout, st["size"], st["alpha"], st["beta"], st["k"])
    if case.name == "MaxPool2D":
        return V.pool_variants(inp["x"], dout, st["kernel_size"], st["stride"])
    if case.name == "Conv2D":
        return V.conv_variants(inp["x"], inp["w"], inp["b"], dout, st["stride"], st["padding"],
                               st["groups"])
    if case.name == "col2im":
        return V.col2im_variants(inp["cols"], st["x"], st["KH"], st["KW"], st["stride"], st["padding"])
    return V.softmax_variants(inp["x"], inp["y"])


def run_case(case, obj, threshold=None):
    """Grade ``obj`` (the student's class or function) on one ``Case``; returns a ``CaseOutcome``.

    Exceptions raised by the student's code propagate (the caller turns them
    into ERROR/TODO rows with the student's line); wrong results do not.
    """
    threshold = DEFAULT_THRESHOLD if threshold is None else threshold
    t0 = time.perf_counter()
    inp = case.inputs()
    runner = {"col2im": _student_col2im, "softmax_cross_entropy": _student_softmax}.get(case.name,
                                                                                        _student_layer)
    try:
        if not callable(obj):
            raise StudentError("out", f"`{case.name}` is a {type(obj).__name__}, not a function or class")
        with np.errstate(all="ignore"):       # an overflow shows up as a non-finite result instead
            mine, problems, dout, probe = runner(case, obj, inp)
    except StudentError as e:
        e.failure.step = default_step(case, e.failure.tensor)
        if e.failure.code == "interface" and not e.failure.cause:
            e.failure.cause = f"the agreed interface is {SIGNATURES[case.name]} (--list)"
        return CaseOutcome(case.name, case, "FAIL", [e.failure], seconds=time.perf_counter() - t0)
    ref = _reference(case, inp, dout)
    failures, errors = _compare(case, mine, ref, threshold)
    if failures:
        failures = _diagnose(case, inp, dout, mine, ref, failures, threshold, probe)
    for f in problems:
        f.step = default_step(case, f.tensor)
    failures = problems + failures
    return CaseOutcome(case.name, case, "FAIL" if failures else "PASS", failures, errors,
                       seconds=time.perf_counter() - t0)


def default_step(case, tensor):
    """The notebook step where ``tensor`` (an output, a gradient, or an input) is computed."""
    key = {"x": "out", "y": "loss", "cols": "dx", "dout": "dx"}.get(tensor, tensor)
    if case.name == "softmax_cross_entropy" and key == "out":
        key = "loss"
    if case.name == "softmax_cross_entropy" and tensor == "x":
        return (case.lab, 1)
    step = DEFAULT_STEP.get((case.name, key), DEFAULT_STEP.get((case.name, "dx")))
    return (case.lab, step)


def _compare(case, mine, ref, threshold):
    failures, errors = [], {}
    for key, r in ref.items():
        if key not in mine:
            continue
        m = mine[key]
        if m.shape != r.shape:
            failures.append(Failure(key, f"your {key} has shape {m.shape}, the reference {r.shape}", "shape",
                                    _shape_cause(case, key, m.shape, r.shape)))
            errors[key] = float("inf")
            continue
        if not np.isfinite(m).all():
            n_bad = int((~np.isfinite(m)).sum())
            what = (f"your {key} is {float(m)}" if m.ndim == 0 else
                    f"{n_bad} of {m.size} entries of your {key} are NaN or inf")
            failures.append(Failure(key, what + " where the reference is finite", "nonfinite",
                                    "an overflow: exp() of a large number (subtract the row maximum first)"
                                    " or a division by 0", default_step(case, key)))
            errors[key] = float("inf")
            continue
        err = rel_error(m, r)
        errors[key] = err
        if err > threshold:
            low = m.dtype.kind == "f" and m.dtype.itemsize < 8
            f = Failure(key, _value_text(key, m, r, err))
            if low and err < 1e-3:
                f.code, f.cause = "float32", (f"your {key} is {m.dtype.name}: the grader gives float64 and "
                                              "compares at 1e-6, below float32's precision. Keep the input's "
                                              "dtype (np.zeros_like(x), np.empty(shape, dtype=x.dtype))")
            failures.append(f)
    return failures, errors


def _shape_cause(case, key, got, want):
    p = case.setting.get("padding", 0)
    if key == "dx" and len(got) == 4 and len(want) == 4 and got[:2] == want[:2]:
        if p and got[2:] == (want[2] + 2 * p, want[3] + 2 * p):
            return f"the padding (p = {p}) is not cropped: return dx_pad[:, :, p:p + H, p:p + W]"
        if p == 0 and 0 in got[2:]:
            return "with padding 0, a crop like dx_pad[:, :, p:-p] is empty: use p:p + H"
    return ""


def _value_text(key, m, r, err):
    if m.ndim == 0:
        return f"your {key} is {float(m):.6g}, the reference {float(r):.6g}"
    idx = np.unravel_index(int(np.argmax(scaled_error_map(m, r))), m.shape)
    at = ", ".join(str(int(i)) for i in idx)
    return (f"your {key} differs from the reference: max relative error {err:.1e} (at [{at}]: yours "
            f"{float(m[idx]):.6g}, reference {float(r[idx]):.6g})")


def _diagnose(case, inp, dout, mine, ref, failures, threshold, probe=None):
    """Name the variant each failing tensor matches; say where the errors sit otherwise."""
    variants = []
    try:
        for v in _variants(case, inp, dout):
            variants.append(v)
    except Exception:      # noqa: BLE001 - a variant that cannot be built proves nothing; keep the others
        pass
    fwd_key = "loss" if "loss" in ref else "out"
    fwd_fail = any(f.tensor == fwd_key and f.code != "shape" for f in failures)
    fwd_variant = None
    if fwd_fail:
        fwd_variant = next((v for v in variants if v.part == "forward" and fwd_key in v.tensors
                            and _matches(mine[fwd_key], v.tensors[fwd_key])), None)
    out = []
    for f in failures:
        if f.code:                                     # shape, nonfinite, float32: already said
            f.step = f.step or default_step(case, f.tensor)
            out.append(f)
            continue
        m = mine[f.tensor]
        if f.tensor == fwd_key:
            if fwd_variant is not None:
                f.code, f.cause, f.step = fwd_variant.code, fwd_variant.cause, fwd_variant.step
        elif fwd_variant is not None and f.tensor in fwd_variant.tensors \
                and _matches(m, fwd_variant.tensors[f.tensor]):
            f.code, f.step = fwd_variant.code, fwd_variant.step
            f.cause = ("it is the right gradient of your forward, so it follows from the forward's "
                       f"mistake: {fwd_variant.cause}")
        elif fwd_variant is not None and fwd_variant.then is not None and \
                (v := next((v for v in fwd_variant.then() if f.tensor in v.tensors
                            and _matches(m, v.tensors[f.tensor])), None)) is not None:
            f.code, f.cause, f.step = v.code, v.cause, v.step
        else:
            v = next((v for v in variants if v.part == "backward" and f.tensor in v.tensors
                      and _matches(m, v.tensors[f.tensor])), None)
            if v is None and not fwd_fail:             # a backward written for a wrong forward
                v = next((v for v in variants if v.part == "forward" and f.tensor in v.tensors
                          and _matches(m, v.tensors[f.tensor])), None)
                if v is not None:
                    v = V.Variant(v.code, v.part, "your backward is the gradient of a forward where "
                                  + v.cause.replace("your forward ", "one "), v.step)
            if v is not None:
                f.code, f.cause, f.step = v.code, v.cause, v.step
        if not f.code and fwd_fail and f.tensor == "dx" and _follows(probe, inp["x"], m):
            f.cause = ("it is the right gradient of your own forward, so it follows from the forward's "
                       "mistake (above): fix the forward first")
        found = _where(case, f.tensor, m, ref[f.tensor], threshold, inp)
        specific = [d for d in found if d.code != "where"]
        promoted = None
        if not f.code and specific:        # where the errors sit names the cause (overlaps, edges, a group)
            promoted = specific[0]
            f.code = {"group": "conv_groups"}.get(promoted.code, promoted.code)
            f.cause = promoted.message.rstrip(".")
        f.details += [d.message for d in found if d is not promoted]
        if f.step is None:
            f.step = default_step(case, f.tensor)
        out.append(f)
    return out


def _follows(probe, x, dx, eps=1e-6):
    """Is ``dx`` the gradient of the student's own forward? One directional derivative, 2 calls."""
    if probe is None or dx.shape != x.shape:
        return False
    v = np.random.default_rng(7).standard_normal(x.shape)
    v /= np.linalg.norm(v)
    try:
        with np.errstate(all="ignore"):
            num = (probe(x + eps * v) - probe(x - eps * v)) / (2 * eps)
    except Exception:      # noqa: BLE001 - the forward raising here proves nothing
        return False
    ana = float(np.sum(dx * v))
    return bool(np.isfinite(num)) and abs(num - ana) <= 1e-5 * (abs(num) + abs(ana)) + 1e-9


def _matches(m, v):
    return m.shape == np.shape(v) and np.isfinite(m).all() and rel_error(m, v) < MATCH


def _where(case, key, m, r, threshold, inp):
    """Facts about where a wrong tensor's errors sit (no cause is claimed)."""
    if m.ndim == 0:
        return []
    bad = scaled_error_map(m, r) > threshold
    st = case.setting
    kind = {"LocalResponseNorm": "lrn", "MaxPool2D": "pool", "col2im": "col2im", "Conv2D": "conv",
            "softmax_cross_entropy": "softmax"}[case.name]
    info = dict(st)
    if case.name == "col2im":
        info["kernel_size"] = max(st["KH"], st["KW"]) if st["KH"] == st["KW"] else None
    labels = inp.get("y") if case.name == "softmax_cross_entropy" else None
    return locate(kind, info, key, bad, "errors", labels=labels)
