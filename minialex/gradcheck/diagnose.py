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
                      recognisable (N: a missing 1/N; -1: a sign).
    zero_grad         backward returned zeros.
    nonfinite         NaN or inf in the output or the gradient (an overflow).
    shape             a gradient or output of the wrong shape.
    lrn_cross_channel LRN backward keeps only the i = j term of the sum.
    lrn_window        LRN forward or backward sums over the wrong channels
                      (off by one); the window found is named.
    lrn_alpha_convention  alpha divided by n (PyTorch/Caffe) or not (paper).
    conv_kernel_flip / conv_kernel_transpose
                      conv dx (or dw) equals the gradient of a convolution
                      whose kernel is rotated 180 degrees / has h and w swapped.
    softmax_label     errors only at the correct-class entries (the -1 of
                      softmax - onehot).
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
    if not (np.isfinite(a).all() and np.isfinite(n).all()):
        return []
    nn = float(np.sum(n * n))
    if nn == 0:
        return []
    c = float(np.sum(a * n)) / nn
    if abs(c - 1) < 1e-3 or rel_error(a, c * n) > 1e-5:
        return []
    N = _batch_size(ctx)
    named = {}
    if N and N > 1:
        named[N] = f"{N} = N, the batch size: the loss is a mean over the batch, so its gradient " \
                   "carries a 1/N. Divide by N"
        named[1 / N] = f"1/{N} = 1/N: the gradient is divided by the batch size once too often"
    named[-1.0] = "-1: a sign is flipped"
    named[2.0] = "2: twice the right value (a term counted twice?)"
    named[0.5] = "1/2: a factor 2 is missing (the derivative of x^2 is 2x)"
    size = ctx.info.get("size")
    if size and size > 1:
        named[float(size)] = f"{size} = n, the LRN size: alpha/n versus alpha (Sec. 3.3)"
        named[1 / size] = f"1/{size} = 1/n, the LRN size: alpha/n versus alpha (Sec. 3.3)"
    hint = "check every constant factor"
    for v, text in named.items():
        if abs(c - v) <= 1e-3 * abs(v):
            hint = text
            break
    return [Diagnosis("scale_factor", name, f"{what} is {c:.4g} x the right value at every entry; "
                      f"{hint}.")]


def _location(ctx, name, bad, what, any_specific=False):
    """Hypotheses about where the bad entries sit; a summary when none holds."""
    if not bad.any():
        return []
    found = []
    info, kind = ctx.info, ctx.kind
    if bad.ndim == 4 and name in ("dx", "out"):
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
    G = int(info.get("groups", 1) or 1)
    axis = 1 if (bad.ndim == 4 and name in ("dx", "out")) else 0
    if G > 1 and bad.ndim >= 1 and bad.shape[axis] % G == 0 and name in ("dx", "out", "w", "b"):
        per = bad.shape[axis] // G
        other = tuple(i for i in range(bad.ndim) if i != axis)
        hit = np.flatnonzero(bad.any(axis=other) if other else bad)
        groups = sorted({int(c) // per for c in hit})
        label = "input channels" if name == "dx" else "kernels"
        if len(groups) == 1:
            g = groups[0]
            found.append(Diagnosis(
                "group", name, f"{what} only in group {g} of {G} ({label} {g * per}..{g * per + per - 1}): "
                f"check how group {g} is wired: its slice of the columns, of the weights, and where its "
                "gradient lands (Sec. 3.2: each group sees only its own half of the channels)."))
        elif groups == list(range(1, G)):
            found.append(Diagnosis(
                "group", name, f"{what} in every group except group 0: does backward use group 0's "
                "weights or columns for all groups? (Sec. 3.2)"))
    if not found and not any_specific:
        found.append(Diagnosis("where", name, _summary(bad, name, what)))
    return found


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
    if bad.ndim == 4:
        labels = ("samples", "channels", "rows", "columns")
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
    spread = "spread everywhere: the formula itself is off" if nb > 0.5 * total else \
        "concentrated: look at what is special about these entries"
    return "; ".join(parts) + f" ({spread})."


# ---------------------------------------------------------------------------
# Layer-specific hypotheses: re-derive the gradient with one plausible mistake
# ---------------------------------------------------------------------------

def _specific(ctx, name, a, n):
    try:
        if ctx.kind == "lrn" and name == "dx" and a.ndim == 4:
            return _lrn_gradient(ctx, a)
        if ctx.kind == "conv" and name in ("dx", "w") and a.ndim == 4:
            return _conv_kernel(ctx, name, a, n)
        if ctx.kind == "softmax" and a.ndim == 2:
            return _softmax_label(ctx, name, a, n)
    except Exception:      # a hypothesis that cannot be evaluated proves nothing
        return []
    return []


def _winsum(a, lo, hi):
    """sum_{j = i+lo}^{i+hi} a_j over channels, clipped at 0 and C-1. a: (N, C, H, W)."""
    C = a.shape[1]
    s = np.zeros_like(a)
    for d in range(lo, hi + 1):
        if abs(d) >= C:
            continue
        if d >= 0:
            s[:, :C - d] += a[:, d:]
        else:
            s[:, -d:] += a[:, :C + d]
    return s


def _lrn_constants(ctx):
    info = ctx.info
    size = int(info.get("size", 5))
    coeff = info.get("coeff")
    if coeff is None:
        coeff = info.get("alpha", 1e-4)
        if info.get("alpha_convention") == "pytorch":
            coeff = coeff / size
    return size, float(coeff), float(info.get("beta", 0.75)), float(info.get("k", 2.0))


def _lrn_forward(x, lo, hi, coeff, beta, k):
    s = k + coeff * _winsum(x * x, lo, hi)
    return x * s ** (-beta), s


def _lrn_backward(x, dout, flo, fhi, blo, bhi, coeff, beta, k, cross=True):
    """dx of an LRN whose forward sums channels i+flo..i+fhi, back-propagated with a
    backward that sums over j+blo..j+bhi (correct: blo=-fhi, bhi=-flo)."""
    out, s = _lrn_forward(x, flo, fhi, coeff, beta, k)
    t = dout * out / s
    tsum = _winsum(t, blo, bhi) if cross else t
    return dout * s ** (-beta) - 2 * coeff * beta * x * tsum


_OFFSETS = ((-1, 0), (0, -1), (1, 0), (0, 1), (-1, -1), (1, 1), (-1, 1), (1, -1))


def _window_text(lo, hi, var="i"):
    f = lambda d: var if d == 0 else f"{var}{d:+d}"            # noqa: E731
    return f"{f(lo)}..{f(hi)} ({hi - lo + 1} maps)"


def _lrn_gradient(ctx, a):
    x, dout = ctx.arrays["dx"], ctx.dout
    size, coeff, beta, k = _lrn_constants(ctx)
    h = size // 2
    if rel_error(a, _lrn_backward(x, dout, -h, h, -h, h, coeff, beta, k, cross=False)) < _MATCH:
        return [Diagnosis(
            "lrn_cross_channel", "dx",
            "your dx keeps only the j = i term: each a_j also sits in the denominators of its "
            f"neighbours i = j-{h}..j+{h}, so dL/da_j needs the cross-channel sum "
            "-2 alpha beta a_j sum_i dout_i b_i / s_i over every i whose window contains j "
            "(Sec. 3.3; docs/derivations.md).")]
    # the student's forward window (from the forward hypothesis, else the paper's)
    flo, fhi = ctx.extra.get("lrn_forward_window", (-h, h))
    for dlo, dhi in ((0, 0),) + _OFFSETS:
        blo, bhi = -h + dlo, h + dhi
        if (blo, bhi) == (-fhi, -flo):
            continue
        if rel_error(a, _lrn_backward(x, dout, flo, fhi, blo, bhi, coeff, beta, k)) < _MATCH:
            return [Diagnosis(
                "lrn_window", "dx",
                f"your backward sums over channels {_window_text(blo, bhi, 'j')}, but with a forward "
                f"window of {_window_text(flo, fhi)} the channels whose window contains j are "
                f"{_window_text(-fhi, -flo, 'j')}: check the window's bounds (off by one? a Python "
                "slice's end is exclusive).")]
    return []


def _conv_kernel(ctx, name, a, n):
    from ..layers.conv import Conv2D
    x, w = ctx.arrays.get("dx"), ctx.arrays.get("w")
    if x is None or w is None:
        return []
    info = ctx.info
    F, Cg, KH, KW = w.shape
    G = int(info.get("groups", 1) or 1)
    variants = (("conv_kernel_flip", "is rotated by 180 degrees (flipped in h and w)",
                 "rotated by 180 degrees", lambda v: v[:, :, ::-1, ::-1]),   # (F, Cg, KH, KW)
                ("conv_kernel_transpose", "has its h and w axes swapped",
                 "with its h and w axes swapped", lambda v: v.transpose(0, 1, 3, 2)))  # (F, Cg, KW, KH)
    for code, how, how_dw, op in variants:
        if name == "w":
            if rel_error(a, op(n)) < _MATCH:
                return [Diagnosis(code, "w", f"your dw is the right dw {how_dw}: check the order in "
                                  "which you pair dout with the input windows.")]
            continue
        wv = op(w)
        if wv.shape != w.shape:
            continue
        ref = Conv2D(x.shape[1], F, KH, stride=int(info.get("stride", 1)),
                     padding=int(info.get("padding", 0)), groups=G, dtype=np.float64)
        ref.params["w"], ref.params["b"] = np.ascontiguousarray(wv), np.zeros(F)
        ref.forward(x.copy())
        if rel_error(a, ref.backward(ctx.dout.copy())) < _MATCH:
            extra = ("Back-propagating a correlation is a 'full' convolution of dout with the "
                     "kernel flipped in h and w: check the flip (w[:, :, ::-1, ::-1]), or use "
                     "col2im(w.T @ dout), which needs none." if code == "conv_kernel_flip" else
                     "Check the order of the kernel's axes (F, C/G, KH, KW) in backward.")
            return [Diagnosis(code, "dx", f"your dx is the gradient of a convolution whose kernel "
                              f"{how}. {extra}")]
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
    if ctx.kind == "lrn" and out.ndim == 4:
        found += _lrn_forward_hypotheses(ctx)
    if not found:
        found += _scale_factor(ctx, "out", out, ref, "your forward output")
    bad = scaled_error_map(out, ref) > ctx.threshold
    found += _location(ctx, "out", bad, "forward differs from the reference", any_specific=bool(found))
    return found


def _lrn_forward_hypotheses(ctx):
    x, out = ctx.arrays["dx"], ctx.out
    size, coeff, beta, k = _lrn_constants(ctx)
    h = size // 2
    for dlo, dhi in _OFFSETS:
        lo, hi = -h + dlo, h + dhi
        if rel_error(out, _lrn_forward(x, lo, hi, coeff, beta, k)[0]) < _MATCH:
            ctx.extra["lrn_forward_window"] = (lo, hi)
            return [Diagnosis(
                "lrn_window", "out",
                f"your forward normalises over channels {_window_text(lo, hi)}; the paper's window is "
                f"{_window_text(-h, h)}, i - n//2 .. i + n//2 inclusive (Sec. 3.3): check the window's "
                "bounds (off by one? a Python slice's end is exclusive).")]
    for c, text in ((coeff / size, "alpha / n (the PyTorch and Caffe convention)"),
                    (coeff * size, "alpha * n")):
        if rel_error(out, _lrn_forward(x, -h, h, c, beta, k)[0]) < _MATCH:
            return [Diagnosis(
                "lrn_alpha_convention", "out",
                f"your forward uses {text} where the reference uses alpha: the paper does not divide "
                "alpha by n (Sec. 3.3); PyTorch and Caffe do.")]
    return []
