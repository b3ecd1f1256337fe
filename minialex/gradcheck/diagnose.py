"""Diagnostics that teach: where a failing gradient's errors sit, and what that means.

A failing check says *that* a backward pass is wrong; a student needs *where*.
``diagnose(report, ctx)`` tests a handful of hypotheses on each failing tensor
and returns ``Diagnosis`` objects (a stable ``code`` and a plain-English
message). The bad entries are those whose scaled error
``|a_i - n_i| / max_j (|a_j| + |n_j|)`` exceeds the check's threshold.

Reliability (``unreliable=True``: the verdict itself cannot be trusted)
    float32      the forward pass computed in float32 (or float16): centred
                 differences with eps=1e-6 then carry round-off of ~1e-1.
    kink         an input sits at a point where the function is not
                 differentiable: ReLU at 0, near-tied maxima in a max-pool
                 window; also found directly, for any layer, when the left
                 and right derivatives differ at a failing entry.

Where the errors sit (4-D tensors, channel axis 1)
    pool_overlap      only at pixels covered by 2+ windows (Sec. 3.4, z=3, s=2):
                      gradients must accumulate there.
    lrn_window_edges  only in the first/last n//2 channels (Sec. 3.3): the
                      window's clipping at 0 and C-1.
    group             only in one group of a grouped layer (Sec. 3.2).
    where             none of the above: a summary of the channels, rows and
                      columns that hold the errors.

What the errors look like
    scale_factor      analytic = c * numeric everywhere; c is named when it is
                      recognisable (N: a missing 1/N; -1: a sign); never for a
                      scalar, and with N = 2 both readings of a 2 are given.
    zero_grad         backward returned zeros.
    nonfinite         NaN or inf in the output or the gradient (an overflow).
    shape             a gradient or output of the wrong shape.
    lrn_*, conv_*     the result equals a mistaken variant of minialex's own
                      LRN or Conv2D (a window off by one, alpha/n, a cross term
                      missing or of the wrong sign, a flipped or transposed
                      kernel, groups ignored): ``minialex.labs.variants`` runs
                      the readable layer with that one thing changed, so no
                      layer formula is written again here.
    softmax_label     errors only at the correct-class entries (the -1 of
                      softmax - onehot).

Failing checks of float32 arithmetic are reported as float32, never as kinks.
``locate()`` is shared with the lab autograder (``labcase.py``).
"""
from __future__ import annotations

import numpy as np

from .numeric import rel_error, scaled_error_map
from .report import Diagnosis

_MATCH = 1e-6          # two gradients "agree" when rel_error is below this


def diagnose(report, ctx):
    """All findings for ``report`` (a ``GradReport``), given its ``CheckContext``."""
    found = _reliability(ctx)
    # the forward first: a wrong forward explains most failing gradients, and the
    # LRN backward hypotheses start from the forward window found here
    if report.forward is not None and not report.forward.passed and ctx.ref_out is not None:
        if ctx.out.shape != ctx.ref_out.shape:
            found.append(Diagnosis("shape", "out", f"your forward returns shape {ctx.out.shape}, "
                                   f"the reference {ctx.ref_out.shape}"))
        else:
            found += _forward_findings(ctx)
    for t in report.tensors:
        if t.passed or t.name not in ctx.analytic:
            continue
        a, n = ctx.analytic[t.name], ctx.numeric[t.name]
        if a.shape != n.shape:
            found.append(Diagnosis("shape", t.name, f"your gradient has shape {a.shape}; it must have "
                                   f"the shape of what it differentiates, {n.shape}"))
            continue
        if not _low_precision(ctx.out_dtype):   # float32 round-off is not a kink (issue 16)
            found += _kink_at_worst(ctx, t.name)
        found += _gradient_findings(ctx, t.name, a, n)
    return _dedupe(found)


def _dedupe(found):
    seen, out = set(), []
    for d in found:
        if (d.code, d.tensor, d.message) not in seen:
            seen.add((d.code, d.tensor, d.message))
            out.append(d)
    return out


# ---------------------------------------------------------------------------
# Reliability: float32 arithmetic, kinks
# ---------------------------------------------------------------------------

def _low_precision(dt):
    try:
        return dt is not None and np.issubdtype(np.dtype(dt), np.floating) and np.dtype(dt).itemsize < 8
    except TypeError:
        return False


def _reliability(ctx):
    found = []
    if _low_precision(ctx.out_dtype):
        found.append(Diagnosis(
            "float32", "out",
            f"the forward pass returned {np.dtype(ctx.out_dtype).name} although it was given float64: "
            "centred differences with eps=1e-6 need float64 (float32 round-off / eps is about 0.1), so "
            "this verdict is meaningless. Keep the input's dtype inside the layer.", unreliable=True))
    low = [k for k, dt in ctx.input_dtypes.items() if _low_precision(dt)]
    if low:
        found.append(Diagnosis(
            "float32", ", ".join(low),
            f"given as float32; the check ran on float64 copies. A check in float32 itself is "
            "unreliable (round-off / eps ~ 0.1): always gradient-check in float64.",
            unreliable=_low_precision(ctx.out_dtype)))
    x = ctx.arrays.get("dx")
    if x is None:
        return found
    if ctx.kind == "relu":
        near = int(np.sum(np.abs(x) < 10 * ctx.eps))
        if near:
            found.append(Diagnosis(
                "kink", "dx", f"{near} input value(s) lie within {10 * ctx.eps:.0e} of 0, ReLU's kink, "
                "where the numerical gradient is meaningless: keep inputs away from 0.", unreliable=True))
    if ctx.kind == "pool" and x.ndim == 4 and "kernel_size" in ctx.info:
        z, s = int(ctx.info["kernel_size"]), int(ctx.info.get("stride", ctx.info["kernel_size"]))
        gap = _window_top2_gap(x, z, s)
        ties = int(np.sum(gap < 10 * ctx.eps))
        if ties:
            found.append(Diagnosis(
                "kink", "dx", f"{ties} pooling window(s) hold near-tied maxima (top two within "
                f"{10 * ctx.eps:.0e}): moving one entry by eps changes the arg-max, so the numerical "
                "gradient is meaningless there. Use inputs with distinct values.", unreliable=True))
    return found


def _window_top2_gap(x, z, s):
    """Gap between the largest and second-largest value of every z x z window."""
    from ..im2col import im2col_reference
    N, C, H, W = x.shape
    cols = im2col_reference(x.reshape(N * C, 1, H, W), z, z, s, 0)   # (z*z, N*C*OH*OW)
    top2 = np.sort(cols, axis=0)[-2:]                                  # (2, N*C*OH*OW)
    return top2[1] - top2[0]


def _kink_at_worst(ctx, name, count=3):
    """Left and right one-sided derivatives at the worst entries; a jump is a kink."""
    arr, a, n = ctx.arrays.get(name), ctx.analytic[name], ctx.numeric[name]
    if arr is None:
        return []
    err = scaled_error_map(a, n)
    scale = max(1e-8, float(np.max(np.abs(a) + np.abs(n))))
    h = ctx.eps
    for flat in np.argsort(err, axis=None)[::-1][:count]:
        idx = tuple(int(i) for i in np.unravel_index(flat, err.shape))
        if err[idx] <= ctx.threshold:
            break
        old = arr[idx].copy()
        f0 = float(ctx.f())
        arr[idx] = old + h
        fp = float(ctx.f())
        arr[idx] = old - h
        fm = float(ctx.f())
        arr[idx] = old
        right, left = (fp - f0) / h, (f0 - fm) / h
        if abs(right - left) > 1e-3 * scale + 1e-6:
            return [Diagnosis(
                "kink", name, f"the function has a kink at entry {idx}: left derivative {left:.4g}, "
                f"right derivative {right:.4g}. A numerical gradient is meaningless there, so this "
                "failure may be the check's, not yours: move inputs away from kinks (ReLU at 0, "
                "near-tied maxima in max-pooling).", unreliable=True)]
    return []


# ---------------------------------------------------------------------------
# A failing gradient
# ---------------------------------------------------------------------------

def _gradient_findings(ctx, name, a, n):
    found = []
    if not (np.isfinite(a).all() and np.isfinite(n).all()):
        which = ("your gradient" if not np.isfinite(a).all()
                 else "the forward pass (so the numerical gradient)")
        found.append(Diagnosis("nonfinite", name, f"{which} contains NaN or inf: an overflow? "
                               "(exp of a large number: subtract the row maximum first; a division by 0?)"))
        return found
    if not np.any(a) and np.any(n):
        found.append(Diagnosis("zero_grad", name, "your gradient is all zeros: is it computed, "
                               "assigned (grads[...] = ...) and returned?"))
        return found
    found += _scale_factor(ctx, name, a, n, "your gradient")
    if not found:
        found += _specific(ctx, name, a, n)
    bad = scaled_error_map(a, n) > ctx.threshold
    found += _location(ctx, name, bad, "errors", any_specific=bool(found))
    return found


def _batch_size(ctx):
    x = ctx.arrays.get("dx")
    if x is None:
        x = next(iter(ctx.arrays.values()), None)
    return None if x is None or x.ndim == 0 else x.shape[0]


def _scale_factor(ctx, name, a, n, what):
    """a = c * n at every entry: say so, and name c when it is a recognisable constant.

    Never for a scalar (a loss): any wrong number is some c times the right one.
    Candidates are tried in order and never overwrite each other; with N = 2
    a factor 2 could be the batch size or a missing derivative, and both are said.
    """
    if np.size(a) <= 1 or not (np.isfinite(a).all() and np.isfinite(n).all()):
        return []
    nn = float(np.sum(n * n))
    if nn == 0:
        return []
    c = float(np.sum(a * n)) / nn
    if abs(c - 1) < 1e-3 or rel_error(a, c * n) > 1e-5:
        return []
    N = _batch_size(ctx)
    named = []
    if N and N > 1:
        named.append((N, f"{N} = N, the batch size: the loss is a mean over the batch, so its gradient "
                         "carries a 1/N. Divide by N"))
        named.append((1 / N, f"1/{N} = 1/N: the gradient is divided by the batch size once too often"))
    named += [(-1.0, "-1: a sign is flipped"),
              (2.0, "2: twice the right value (a term counted twice?)"),
              (0.5, "1/2: a factor 2 is missing (the derivative of x^2 is 2x)")]
    size = ctx.info.get("size")
    if size and size > 1:
        named.append((float(size), f"{size} = n, the LRN size: alpha/n versus alpha (Sec. 3.3)"))
        named.append((1 / size, f"1/{size} = 1/n, the LRN size: alpha/n versus alpha (Sec. 3.3)"))
    hits = list(dict.fromkeys(text for v, text in named if abs(c - v) <= 1e-3 * abs(v)))
    if len(hits) > 1:
        hint = "either " + "; or ".join(hits) + " (these cannot be told apart here)"
    else:
        hint = hits[0] if hits else "check every constant factor"
    return [Diagnosis("scale_factor", name, f"{what} is {c:.4g} x the right value at every entry; "
                      f"{hint}.")]


def _location(ctx, name, bad, what, any_specific=False):
    """Hypotheses about where the bad entries sit; a summary when none holds."""
    labels = None
    if ctx.kind == "softmax":
        ys = [y for y in ctx.extra.get("other_inputs", []) if isinstance(y, np.ndarray)
              and np.issubdtype(y.dtype, np.integer) and y.shape == (bad.shape[0],)]
        labels = ys[0] if ys and bad.ndim == 2 else None
    found = locate(ctx.kind, ctx.info, name, bad, what, labels=labels)
    if any_specific:
        found = [d for d in found if d.code != "where"]
    return found


def locate(kind, info, name, bad, what, labels=None):
    """Where the bad entries of tensor ``name`` sit, as ``Diagnosis`` objects.

    ``kind``: "pool", "conv", "col2im", "lrn", "softmax" or "generic";
    ``info``: kernel_size, stride, padding, groups, size; ``bad``: boolean
    map of the wrong entries; ``labels``: a loss's integer labels. Returns
    the specific findings (pool_overlap, lrn_window_edges, group,
    softmax_label), or one "where" summary when none holds.
    """
    if not bad.any():
        return []
    found = []
    if bad.ndim == 4 and name in ("dx", "out"):
        found += _overlap_or_edges(kind, info, name, bad, what)
    found += _group_location(info, name, bad, what)
    if kind == "softmax" and labels is not None and bad.ndim == 2:
        label = np.zeros_like(bad)
        label[np.arange(bad.shape[0]), labels] = True
        if not (bad & ~label).any():
            found.append(Diagnosis("softmax_label", name, "errors only at the correct-class entries: the "
                                   "gradient of -log softmax(x)[y] is softmax(x) - onehot(y), divided by N; "
                                   "check the -1 at the label."))
    if not found:
        found.append(Diagnosis("where", name, _summary(bad, name, what)))
    return found


def _overlap_or_edges(kind, info, name, bad, what):
    found = []
    N, C, H, W = bad.shape
    chans = np.flatnonzero(bad.any(axis=(0, 2, 3)))
    pix = bad.any(axis=(0, 1))                                     # (H, W)
    k, s = info.get("kernel_size"), info.get("stride")
    if name == "dx" and k and s and s < k and kind in ("pool", "conv", "col2im"):
        p = int(info.get("padding", 0) or 0) if kind != "pool" else 0
        count = _overlap_count(H, W, int(k), int(s), p)
        # informative only if some pixels are covered once (or not at all) and are right
        if (count <= 1).any() and np.all(count[pix] > 1):
            why = {"pool": "a pixel can be the maximum of up to four windows",
                   "conv": "col2im must add every window's contribution",
                   "col2im": "col2im must add every window's contribution"}[kind]
            found.append(Diagnosis(
                "pool_overlap", name,
                f"{what} only where windows overlap ({int(k)}x{int(k)} windows, stride {int(s)}; "
                f"{int(pix.sum())} of {int((count > 1).sum())} shared pixels): gradients must "
                f"accumulate there ({why}). Use +=, np.add.at or col2im, never `dx[idx] = ...` "
                "or a fancy-indexed `dx[idx] += ...` (it keeps only one of the repeated indices)."))
    half = int(info.get("size", 0) or 0) // 2
    if kind == "lrn" and half and C > 2 * half and len(chans):
        edges = set(range(half)) | set(range(C - half, C))
        if set(chans.tolist()) <= edges:
            found.append(Diagnosis(
                "lrn_window_edges", name,
                f"{what} only at the first/last {half} channels (channels {chans.tolist()} of {C}): "
                f"check the clipping of the LRN window: it runs from max(0, i - n//2) to "
                f"min(C - 1, i + n//2) inclusive (Sec. 3.3), with no wrap-around and no padding "
                "that changes the sum."))
    return found


def _group_location(info, name, bad, what):
    G = int(info.get("groups", 1) or 1)
    axis = 1 if (bad.ndim == 4 and name in ("dx", "out")) else 0
    if not (G > 1 and bad.ndim >= 1 and bad.shape[axis] % G == 0 and name in ("dx", "out", "w", "b")):
        return []
    per = bad.shape[axis] // G
    other = tuple(i for i in range(bad.ndim) if i != axis)
    hit = np.flatnonzero(bad.any(axis=other) if other else bad)
    groups = sorted({int(c) // per for c in hit})
    label = "input channels" if name == "dx" else "kernels"
    if len(groups) == 1:
        g = groups[0]
        return [Diagnosis(
            "group", name, f"{what} only in group {g} of {G} ({label} {g * per}..{g * per + per - 1}): "
            f"check how group {g} is wired: its slice of the columns, of the weights, and where its "
            "gradient lands (Sec. 3.2: each group sees only its own half of the channels).")]
    if groups == list(range(1, G)):
        return [Diagnosis(
            "group", name, f"{what} in every group except group 0: does backward use group 0's "
            "weights or columns for all groups? (Sec. 3.2)")]
    return []


def _overlap_count(H, W, k, s, p):
    """How many k x k windows (stride s, padding p) cover each pixel of an H x W image."""
    cnt = np.zeros((H + 2 * p, W + 2 * p), dtype=np.int64)
    for i in range((H + 2 * p - k) // s + 1):
        for j in range((W + 2 * p - k) // s + 1):
            cnt[i * s:i * s + k, j * s:j * s + k] += 1
    return cnt[p:p + H, p:p + W]


def _summary(bad, name, what):
    nb, total = int(bad.sum()), bad.size
    parts = [f"{what} in {nb} of {total} entries"]
    if bad.ndim == 4 and name in ("w", "dw"):
        labels = ("kernels", "input channels", "kernel rows", "kernel columns")     # (F, C/G, KH, KW)
    elif bad.ndim == 4:
        labels = ("samples", "channels", "rows", "columns")
    elif bad.ndim == 1:
        labels = ("entries",)
    elif bad.ndim == 2:
        labels = ("rows", "columns")
    else:
        labels = tuple(f"axis {i}" for i in range(bad.ndim))
    for ax, lab in enumerate(labels):
        other = tuple(i for i in range(bad.ndim) if i != ax)
        hit = np.flatnonzero(bad.any(axis=other) if other else bad)
        if len(hit) < bad.shape[ax]:
            shown = hit.tolist() if len(hit) <= 8 else hit[:8].tolist() + ["..."]
            parts.append(f"{lab} {shown} of {bad.shape[ax]}")
        else:
            parts.append(f"all {lab}")
    return "; ".join(parts) + "."


# ---------------------------------------------------------------------------
# Layer-specific hypotheses: re-derive the gradient with one plausible mistake
# ---------------------------------------------------------------------------

def _specific(ctx, name, a, n):
    """The mistaken variant of minialex's own layer that ``a`` matches (``minialex.labs.variants``)."""
    try:
        for v in _variants(ctx):
            if v.part == "backward" and name in v.tensors and np.shape(v.tensors[name]) == a.shape \
                    and rel_error(a, v.tensors[name]) < _MATCH and v.code != "scale_factor":
                return [Diagnosis(v.code, name, v.cause + ".")]
        if ctx.kind == "softmax" and a.ndim == 2:
            return _softmax_label(ctx, name, a, n)
    except Exception:      # a hypothesis that cannot be evaluated proves nothing
        return []
    return []


def _variants(ctx):
    """Variants for the layers minialex has (LRN, conv), on the checked inputs; [] otherwise."""
    from ..labs import variants as V
    x, dout, info = ctx.arrays.get("dx"), ctx.dout, ctx.info
    if x is None or x.ndim != 4 or np.ndim(dout) != 4:
        return []
    if ctx.kind == "lrn":
        size = int(info.get("size", 5))
        alpha = float(info.get("alpha", 1e-4))
        if info.get("alpha_convention") == "pytorch":
            alpha = alpha / size                      # the variants use the paper's convention
        return V.lrn_variants(x, dout, size, alpha, float(info.get("beta", 0.75)), float(info.get("k", 2.0)))
    if ctx.kind == "conv" and "w" in ctx.arrays and "b" in ctx.arrays:
        return V.conv_variants(x, ctx.arrays["w"], ctx.arrays["b"], dout, int(info.get("stride", 1)),
                               int(info.get("padding", 0)), int(info.get("groups", 1) or 1))
    return []


def _softmax_label(ctx, name, a, n):
    ys = [y for y in ctx.extra.get("other_inputs", [])
          if isinstance(y, np.ndarray) and np.issubdtype(y.dtype, np.integer) and y.shape == (a.shape[0],)]
    if not ys:
        return []
    y = ys[0]
    bad = scaled_error_map(a, n) > ctx.threshold
    label = np.zeros_like(bad)
    label[np.arange(a.shape[0]), y] = True
    if bad.any() and not (bad & ~label).any():
        return [Diagnosis("softmax_label", name,
                          "errors only at the correct-class entries: the gradient of "
                          "-log softmax(x)[y] is softmax(x) - onehot(y), divided by N; check the -1 at "
                          "the label.")]
    return []


# ---------------------------------------------------------------------------
# A forward pass that disagrees with the reference
# ---------------------------------------------------------------------------

def _forward_findings(ctx):
    found = []
    out, ref = ctx.out, ctx.ref_out
    if not np.isfinite(out).all():
        return [Diagnosis("nonfinite", "out", "your forward output contains NaN or inf where the "
                          "reference's is finite: an overflow? (exp of a large number: subtract the "
                          "row maximum first; a division by 0?)")]
    try:
        for v in _variants(ctx):
            if v.part == "forward" and "out" in v.tensors and np.shape(v.tensors["out"]) == out.shape \
                    and rel_error(out, v.tensors["out"]) < _MATCH:
                found.append(Diagnosis(v.code, "out", v.cause + "."))
                break
    except Exception:      # noqa: BLE001 - a hypothesis that cannot be evaluated proves nothing
        pass
    if not found:
        found += _scale_factor(ctx, "out", out, ref, "your forward output")
    bad = scaled_error_map(out, ref) > ctx.threshold
    found += _location(ctx, "out", bad, "forward differs from the reference", any_specific=bool(found))
    return found
