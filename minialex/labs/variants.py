"""The reference for every agreed name, and its plausible mistakes ("variants").

Diagnosis by experiment: when a student's result differs from the reference,
the autograder (``minialex.gradcheck.lab``) compares it with each variant
below and names the one it matches. A variant is the reference with one
thing changed, computed by minialex's own readable layer wherever it can be:

- a constant changed (alpha/n, k = 0, beta, the window size): the layer
  with other arguments or attributes;
- one sum changed (an LRN window off by one, wrapping around, a cross-channel
  term missing, of the wrong sign or scaled): the layer with its
  ``window_sum`` replaced for the forward or the backward only;
- the kernel flipped or transposed, one group's weights used for all: the
  layer with other weights;
- max-pool ties routed to the last or every maximum, columns read in another
  order, overlaps overwritten: the reference's im2col/col2im with the routing
  or the layout changed.

No layer formula is written again here (each is in ``minialex/layers/``).
Every variant carries a diagnosis ``code``, the ``part`` it concerns
(forward or backward), the ``cause`` in words and the ``step`` of the lab
notebook where that quantity is derived (``minialex.labs.spec.STEPS``).

Shapes: as in each layer's docstring; ``dout`` has the output's shape.
"""
from __future__ import annotations

import inspect
import itertools
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from ..im2col import col2im_reference, im2col_reference
from ..layers import Conv2D, LocalResponseNorm, MaxPool2D, SoftmaxCrossEntropy


@dataclass
class Variant:
    """One plausible mistake and the tensors it produces.

    ``tensors``: "out"/"loss" for a forward variant (plus the gradients a
    backward consistent with that forward gives), gradients ("dx", "w", "b")
    for a backward variant.
    """

    code: str
    part: str                 # "forward" or "backward"
    cause: str
    step: tuple               # (lab, step number), see spec.STEPS
    tensors: dict = field(default_factory=dict)
    then: object = None       # forward variants: () -> backward variants written on top of this forward


def readable(cls, *args, **kwargs):
    """A minialex layer on its readable NumPy path (no fast kernel), whatever the switch is called."""
    ps = inspect.signature(cls).parameters
    for key in ("impl", "im2col_impl"):
        if key in ps:
            kwargs[key] = "reference"
    return cls(*args, **kwargs)


def _window_text(lo, hi, var="i"):
    f = lambda d: var if d == 0 else f"{var}{d:+d}"            # noqa: E731
    return f"{f(lo)}..{f(hi)} ({hi - lo + 1} maps)"


def _scaled(code, lab, step, tensors, factors):
    """Gradient variants c * reference for each named factor c."""
    out = []
    for c, why in factors:
        out.append(Variant(code, "backward", why, (lab, step), {k: c * v for k, v in tensors.items()}))
    return out


def batch_factors(N, what="a layer's gradient is a sum over the batch; only the loss divides by N"):
    """The constant factors a student plausibly gets wrong, each with its cause (N = 3 keeps them apart)."""
    return [(1.0 / N, f"it is 1/{N} x the right value, 1/N with N = {N}, the batch size: divided by N "
                      f"({what})"),
            (float(N), f"it is {N} x the right value, {N} = N, the batch size: multiplied by N"),
            (-1.0, "it is -1 x the right value: a sign is flipped"),
            (2.0, "it is 2 x the right value: a term counted twice?"),
            (0.5, "it is 1/2 x the right value: a factor 2 missing (the derivative of a^2 is 2a)?")]


# ---------------------------------------------------------------------------
# Local response normalisation (Sec. 3.3)
# ---------------------------------------------------------------------------

def window_between(a, lo, hi, wrap=False):
    """sum_{j=i+lo}^{i+hi} a_j over channels: clipped at 0 and C-1, or wrapping around.

    Shapes:  a, out: (N, C, H, W)
    """
    C = a.shape[1]
    s = np.zeros_like(a)
    for d in range(lo, hi + 1):
        if wrap:
            s += np.roll(a, -d, axis=1)              # channel i gets a_{(i+d) mod C}
        elif d >= 0 and d < C:
            s[:, :C - d] += a[:, d:]
        elif d < 0 and -d < C:
            s[:, -d:] += a[:, :C + d]
    return s


@contextmanager
def _lrn_sum(fn):
    """Replace the LRN layer's window sum by ``fn(a, half)`` inside the block (None: keep it)."""
    mod = sys.modules[LocalResponseNorm.__module__]
    if not hasattr(mod, "window_sum"):
        raise RuntimeError(f"{mod.__name__} has no window_sum(a, half): the LRN variants need it")
    old = mod.window_sum
    if fn is not None:
        mod.window_sum = fn
    try:
        yield
    finally:
        mod.window_sum = old


def lrn_run(x, dout, size, alpha, beta, k, fwd_sum=None, bwd_sum=None, fwd_attrs=None,
            bwd_attrs=None):
    """minialex's LRN forward and backward, optionally with a sum or an attribute changed.

    Returns {"out": (N, C, H, W), "dx": (N, C, H, W)}.
    """
    layer = readable(LocalResponseNorm, size, alpha=alpha, beta=beta, k=k)
    for key, v in (fwd_attrs or {}).items():
        setattr(layer, key, v)
    with _lrn_sum(fwd_sum):
        out = layer.forward(x.copy())
    for key, v in (bwd_attrs or {}).items():
        setattr(layer, key, v)
    with _lrn_sum(bwd_sum):
        dx = layer.backward(dout.copy())
    return {"out": out, "dx": dx}


def _windows(h, n):
    """Plausible wrong windows (lo, hi) for the correct i-h..i+h."""
    cand = [(-h, h - 1), (-h + 1, h), (-h, h + 1), (-h - 1, h), (-h + 1, h - 1), (-h - 1, h + 1),
            (-n, n), (0, n - 1), (-(n - 1), 0), (0, h), (-h, 0)]
    return [w for w in dict.fromkeys(cand) if w != (-h, h)]


def _lrn_backward_windows(run, h, size, lo, hi, fix):
    """Backward windows written on top of a forward whose window is i+lo..i+hi."""
    for blo, bhi in _windows(h, size) + [(-h, h)]:
        if (blo, bhi) == (-hi, -lo):
            continue
        yield Variant("lrn_window", "backward",
                      f"your backward sums over channels {_window_text(blo, bhi, 'j')}, but with a forward "
                      f"window of {_window_text(lo, hi)} the channels whose window contains j are "
                      f"{_window_text(-hi, -lo, 'j')}: {fix}", ("lrn", 4),
                      {"dx": run(fwd_sum=lambda a, _h: window_between(a, lo, hi),
                                 bwd_sum=lambda a, _h: window_between(a, blo, bhi))["dx"]})


def lrn_variants(x, dout, size, alpha, beta, k):
    """The LRN's plausible mistakes, forward ones first."""
    h = size // 2
    run = lambda **kw: lrn_run(x, dout, size, alpha, beta, k, **kw)    # noqa: E731
    fix = ("check the window's bounds (off by one? a Python slice's end is exclusive; the window "
           "runs over n = size maps, half = n // 2 on each side)")
    if size != 5:
        yield Variant("lrn_hardcoded", "forward", "your forward uses n = 5 whatever the `size` argument "
                      "is: read self.size", ("lrn", 1), lrn_run(x, dout, 5, alpha, beta, k))
    if (alpha, k) != (1e-4, 2.0):
        yield Variant("lrn_hardcoded", "forward", "your forward uses the paper's alpha = 1e-4, k = 2 "
                      "whatever the arguments are: read self.alpha and self.k", ("lrn", 1),
                      lrn_run(x, dout, size, 1e-4, beta, 2.0))
    for lo, hi in _windows(h, size):
        yield Variant("lrn_window", "forward",
                      f"your forward normalises over channels {_window_text(lo, hi)}; the paper's window "
                      f"is {_window_text(-h, h)}, i - n//2 .. i + n//2 inclusive (Sec. 3.3): {fix}",
                      ("lrn", 1), run(fwd_sum=lambda a, _h, lo=lo, hi=hi: window_between(a, lo, hi),
                                      bwd_sum=lambda a, _h, lo=lo, hi=hi: window_between(a, -hi, -lo)),
                      then=lambda lo=lo, hi=hi: _lrn_backward_windows(run, h, size, lo, hi, fix))
    C = x.shape[1]
    yield Variant("lrn_window", "forward", "your forward sums a_j^2 over ALL channels; the paper's sum runs "
                  f"over a window of n adjacent maps, {_window_text(-h, h)} (Sec. 3.3)", ("lrn", 1),
                  run(fwd_sum=lambda a, _h: window_between(a, -C, C),
                      bwd_sum=lambda a, _h: window_between(a, -C, C)))
    yield Variant("lrn_window_edges", "forward",
                  "your forward's window wraps around at the first and last channels (np.roll?); the "
                  "paper clips it: check the clipping of the LRN window, max(0, i - n//2) .. "
                  "min(C - 1, i + n//2) (Sec. 3.3)", ("lrn", 1),
                  run(fwd_sum=lambda a, hh: window_between(a, -hh, hh, wrap=True),
                      bwd_sum=lambda a, hh: window_between(a, -hh, hh, wrap=True)))
    yield Variant("lrn_alpha_convention", "forward",
                  "your forward uses alpha / n (the PyTorch and Caffe convention) where the paper uses "
                  "alpha: the paper does not divide alpha by n (Sec. 3.3)", ("lrn", 1),
                  run(fwd_attrs={"alpha_convention": "pytorch"}, bwd_attrs={}))
    yield Variant("lrn_alpha_convention", "forward",
                  "your forward uses alpha * n where the paper uses alpha (Sec. 3.3)", ("lrn", 1),
                  run(fwd_attrs={"alpha": alpha * size}))
    yield Variant("lrn_k", "forward", "your forward leaves out k: s_i = k + alpha * sum a_j^2 "
                  "(k = 2 in the paper; the grader also uses k = 1)", ("lrn", 1),
                  run(fwd_attrs={"k": 0.0}))
    for b, text in ((1.0, "the power beta is missing (s^-1 instead of s^-beta)"),
                    (-beta, "the sign of the power is flipped (a_i * s^beta instead of a_i / s^beta)")):
        yield Variant("lrn_beta", "forward", f"in your forward {text}", ("lrn", 1), run(fwd_attrs={"beta": b}))
    # backward only: the forward is minialex's
    ws = sys.modules[LocalResponseNorm.__module__].window_sum
    yield Variant("lrn_cross_channel", "backward",
                  "your dx keeps only the i = j term: each a_j also sits in the denominators of its "
                  f"neighbours i = j-{h}..j+{h}, so dL/da_j needs the cross-channel sum "
                  "-2 alpha beta a_j sum_i dout_i b_i / s_i over every i whose window contains j "
                  "(Sec. 3.3; docs/derivations.md)", ("lrn", 3),
                  {"dx": run(bwd_sum=lambda a, hh: a)["dx"]})
    for c, text, code in ((-1.0, "has the wrong sign: a_j in the denominator makes it negative, "
                           "-2 alpha beta a_j sum_i dout_i b_i / s_i", "lrn_cross_sign"),
                          (2.0, "is twice the right value: the i = j term counted twice?", "lrn_cross_factor"),
                          (0.5, "misses the factor 2 from d(a_j^2)/da_j = 2 a_j", "lrn_cross_factor"),
                          (1 / beta, "misses the factor beta from d(s^-beta)/ds = -beta s^(-beta-1)",
                           "lrn_cross_factor"),
                          (1 / (2 * beta), "misses both the 2 and the beta: -2 alpha beta a_j ...",
                           "lrn_cross_factor")):
        yield Variant(code, "backward", f"the cross-channel term of your dx {text}", ("lrn", 3),
                      {"dx": run(bwd_sum=lambda a, hh, c=c: c * ws(a, hh))["dx"]})
    for lo, hi in _windows(h, size):
        yield Variant("lrn_window", "backward",
                      f"your backward sums over channels {_window_text(lo, hi, 'j')}, but with a forward "
                      f"window of {_window_text(-h, h)} the channels whose window contains j are "
                      f"{_window_text(-h, h, 'j')}: {fix}", ("lrn", 4),
                      {"dx": run(bwd_sum=lambda a, _h, lo=lo, hi=hi: window_between(a, lo, hi))["dx"]})
    yield Variant("lrn_window_edges", "backward",
                  "your backward's window wraps around at the first and last channels (np.roll?): check "
                  "the clipping of the LRN window, it stops at channels 0 and C - 1 (Sec. 3.3)",
                  ("lrn", 4), {"dx": run(bwd_sum=lambda a, hh: window_between(a, -hh, hh, wrap=True))["dx"]})
    yield Variant("lrn_alpha_convention", "backward", "the cross-channel term of your dx uses alpha / n "
                  "where the forward (and the paper) uses alpha", ("lrn", 3),
                  {"dx": run(bwd_attrs={"alpha_convention": "pytorch"})["dx"]})
    N = x.shape[0]
    yield from _scaled("scale_factor", "lrn", 2, {"dx": run()["dx"]}, batch_factors(N))


# ---------------------------------------------------------------------------
# Overlapping max-pooling (Sec. 3.4)
# ---------------------------------------------------------------------------

def pool_run(x, dout, z, s):
    """minialex's max-pool forward and backward: {"out": (N, C, OH, OW), "dx": (N, C, H, W)}."""
    layer = readable(MaxPool2D, z, s)
    out = layer.forward(x.copy())
    return {"out": out, "dx": layer.backward(dout.copy())}


def _pool_route(x, dout, z, s, weights):
    """dx when each window hands dout to its entries with ``weights(cols) -> (z*z, M)``.

    cols: (z*z, N*C*OH*OW), one column per window, rows (kh, kw) in row-major order.
    """
    N, C, H, W = x.shape
    cols = im2col_reference(x.reshape(N * C, 1, H, W), z, z, s, 0)     # (z*z, M)
    dcols = weights(cols) * dout.reshape(1, -1)                          # (z*z, M)
    return col2im_reference(dcols, (N * C, 1, H, W), z, z, s, 0).reshape(N, C, H, W)


def _onehot_rows(arg, n):
    return (np.arange(n)[:, None] == arg[None, :]).astype(np.float64)   # (n, M)


def _pool_overwrite(x, dout, z, s, whole_window):
    """Backward that ASSIGNS window by window (row-major), so later windows overwrite earlier ones."""
    N, C, H, W = x.shape
    OH, OW = dout.shape[2:]
    dx = np.zeros_like(x)
    n, c = np.meshgrid(np.arange(N), np.arange(C), indexing="ij")
    for i in range(OH):
        for j in range(OW):
            win = x[:, :, i * s:i * s + z, j * s:j * s + z].reshape(N, C, z * z)   # (N, C, z*z)
            arg = win.argmax(axis=2)                                               # (N, C)
            if whole_window:
                mask = (np.arange(z * z) == arg[..., None]) * dout[:, :, i, j][..., None]
                dx[:, :, i * s:i * s + z, j * s:j * s + z] = mask.reshape(N, C, z, z)
            else:
                dx[n, c, i * s + arg // z, j * s + arg % z] = dout[:, :, i, j]
    return dx


def pool_variants(x, dout, z, s):
    """Max-pool's plausible mistakes. The spec: a tie goes to the FIRST maximum in row-major order."""
    zz = z * z
    first = lambda cols: _onehot_rows(cols.argmax(axis=0), zz)                      # noqa: E731
    last = lambda cols: _onehot_rows(zz - 1 - cols[::-1].argmax(axis=0), zz)        # noqa: E731
    every = lambda cols: (cols == cols.max(axis=0)).astype(np.float64)              # noqa: E731
    split = lambda cols: every(cols) / every(cols).sum(axis=0)                      # noqa: E731

    def swapped(cols):
        arg = cols.argmax(axis=0)
        return _onehot_rows((arg % z) * z + arg // z, zz)                         # (kh, kw) -> (kw, kh)

    N, C, H, W = x.shape
    cols = im2col_reference(x.reshape(N * C, 1, H, W), z, z, s, 0)
    yield Variant("pool_average", "forward", "your forward averages each window; max-pooling keeps its "
                  "maximum", ("maxpool", 1), {"out": cols.mean(axis=0).reshape(dout.shape)})
    tie = ("the spec gives a tied maximum's gradient to the FIRST maximum in row-major window order "
           "(what np.argmax returns), as minialex's MaxPool2D does")
    for code, how, w in (("pool_ties_every", "to EVERY tied maximum (a mask `window == max`?)", every),
                         ("pool_ties_split", "split equally among the tied maxima", split),
                         ("pool_ties_last", "to the LAST tied maximum", last)):
        yield Variant(code, "backward", f"your backward sends a window's gradient {how}; {tie}. Inputs "
                      "after a ReLU are full of ties (zeros)", ("maxpool", 2),
                      {"dx": _pool_route(x, dout, z, s, w)})
    yield Variant("pool_argmax_transposed", "backward", "your backward puts the gradient at (column, row) "
                  "of the arg-max instead of (row, column): a flat window index r unravels to "
                  "(r // z, r % z)", ("maxpool", 2), {"dx": _pool_route(x, dout, z, s, swapped)})
    overlap = ("gradients must accumulate where windows overlap (with z = 3, s = 2 a pixel can "
               "be the maximum of up to four windows); use +=, np.add.at or col2im, never `dx[idx] = ...` or "
               "a fancy-indexed `dx[idx] += ...`, which keeps only one of the repeated indices")
    yield Variant("pool_overlap", "backward", "your backward assigns each window's gradient, so a later "
                  f"window overwrites an earlier one: {overlap}", ("maxpool", 3),
                  {"dx": _pool_overwrite(x, dout, z, s, whole_window=False)})
    yield Variant("pool_overlap", "backward", "your backward assigns whole windows (`dx[window] = ...`), "
                  f"so each window wipes what its neighbours wrote: {overlap}", ("maxpool", 3),
                  {"dx": _pool_overwrite(x, dout, z, s, whole_window=True)})
    yield from _scaled("scale_factor", "maxpool", 2, {"dx": _pool_route(x, dout, z, s, first)},
                       batch_factors(x.shape[0]))


# ---------------------------------------------------------------------------
# im2col's adjoint and grouped convolution (Sec. 3.2, 3.5)
# ---------------------------------------------------------------------------

def col2im_variants(cols, x_shape, KH, KW, s, p):
    """col2im's plausible mistakes. cols: (C*KH*KW, N*OH*OW), rows (c, kh, kw), columns (n, oh, ow)."""
    N, C, H, W = x_shape
    OH, OW = (H + 2 * p - KH) // s + 1, (W + 2 * p - KW) // s + 1
    R = C * KH * KW
    ref = lambda c: col2im_reference(np.ascontiguousarray(c), x_shape, KH, KW, s, p)  # noqa: E731
    layout = "the column layout is rows (c, kh, kw), columns (n, oh, ow), as im2col writes it"
    sizes = {"n": N, "oh": OH, "ow": OW, "c": C, "kh": KH, "kw": KW}
    reads = []
    for order in itertools.permutations(("n", "oh", "ow")):
        if order != ("n", "oh", "ow"):               # columns read in this order -> back to (n, oh, ow)
            perm = [order.index(a) for a in ("n", "oh", "ow")]
            c = cols.reshape(R, *[sizes[a] for a in order]).transpose(0, *[1 + i for i in perm])
            reads.append((f"reads the columns as ({', '.join(order)})", c.reshape(R, -1)))
    for order in itertools.permutations(("c", "kh", "kw")):
        if order != ("c", "kh", "kw"):               # rows read in this order -> back to (c, kh, kw)
            perm = [order.index(a) for a in ("c", "kh", "kw")]
            c = cols.reshape(*[sizes[a] for a in order], -1).transpose(*perm, 3)
            reads.append((f"reads the rows as ({', '.join(order)})", c.reshape(R, -1)))
    for text, c in reads:
        yield Variant("col2im_layout", "backward", f"your col2im {text}; {layout}", ("conv", 1), {"dx": ref(c)})
    c6 = cols.reshape(C, KH, KW, N, OH, OW)                                     # (C, KH, KW, N, OH, OW)
    dx_pad = np.zeros((N, C, H + 2 * p, W + 2 * p))
    for kh in range(KH):
        for kw in range(KW):
            dx_pad[:, :, kh:kh + s * OH:s, kw:kw + s * OW:s] = c6[:, kh, kw].transpose(1, 0, 2, 3)
    yield Variant("pool_overlap", "backward", "your col2im assigns instead of adding where windows "
                  "overlap (`dx[idx] = ...` or a fancy-indexed `+=`, which keeps one of the repeated "
                  "indices): col2im must add every window's contribution", ("conv", 1),
                  {"dx": dx_pad[:, :, p:p + H, p:p + W]})
    c_win = cols.reshape(C, KH, KW, N, OH, OW)
    dx_win = np.zeros((N, C, H + 2 * p, W + 2 * p))
    for n in range(N):                            # window by window, row-major: the last one wins
        for i in range(OH):
            for j in range(OW):
                dx_win[n, :, i * s:i * s + KH, j * s:j * s + KW] = c_win[:, :, :, n, i, j]
    yield Variant("pool_overlap", "backward", "your col2im assigns each window (`dx[window] = col`), so a "
                  "later window overwrites an earlier one where they overlap: col2im must add every "
                  "window's contribution (+=)", ("conv", 1), {"dx": dx_win[:, :, p:p + H, p:p + W]})
    yield from _scaled("scale_factor", "conv", 1, {"dx": ref(cols)}, batch_factors(N))


def conv_run(x, w, b, dout, stride, padding, groups):
    """minialex's Conv2D forward and backward: {"out", "dx", "w" (dw), "b" (db)}."""
    F, Cg, K, _ = w.shape
    layer = readable(Conv2D, x.shape[1], F, K, stride=stride, padding=padding, groups=groups,
                     dtype=np.float64)
    layer.params["w"], layer.params["b"] = np.ascontiguousarray(w), b.copy()
    out = layer.forward(x.copy())
    dx = layer.backward(dout.copy())
    return {"out": out, "dx": dx, "w": layer.grads["w"], "b": layer.grads["b"]}


def conv_variants(x, w, b, dout, stride, padding, groups):
    """Grouped convolution's plausible mistakes."""
    run = lambda xx, ww, bb=b: conv_run(xx, ww, bb, dout, stride, padding, groups)   # noqa: E731
    ref = run(x, w)
    flip = ("back-propagating a correlation is a 'full' convolution of dout with the kernel flipped in "
            "h and w: check the flip (w[:, :, ::-1, ::-1]), or use col2im(w.T @ dout), which needs none")
    yield Variant("conv_kernel_flip", "forward", "your forward flips the kernel (a true convolution); "
                  "minialex, like the paper's cuda-convnet, computes a correlation", ("conv", 4),
                  run(x, w[:, :, ::-1, ::-1]))
    yield Variant("conv_bias", "forward", "your forward leaves out the bias b", ("conv", 4),
                  {"out": ref["out"] - b[None, :, None, None]})
    yield Variant("conv_kernel_flip", "backward", f"your dx is the gradient of a convolution whose kernel "
                  f"is rotated by 180 degrees (flipped in h and w): {flip}", ("conv", 4),
                  {"dx": run(x, w[:, :, ::-1, ::-1])["dx"]})
    yield Variant("conv_kernel_transpose", "backward", "your dx is the gradient of a convolution whose "
                  "kernel has its h and w axes swapped: check the order of the kernel's axes "
                  "(F, C/G, KH, KW) in backward", ("conv", 4), {"dx": run(x, w.transpose(0, 1, 3, 2))["dx"]})
    yield Variant("conv_kernel_flip", "backward", "your dw is the right dw rotated by 180 degrees: check "
                  "the order in which you pair dout with the input windows", ("conv", 3),
                  {"w": ref["w"][:, :, ::-1, ::-1]})
    yield Variant("conv_kernel_transpose", "backward", "your dw is the right dw with its h and w axes "
                  "swapped: check the order of the kernel's axes (F, C/G, KH, KW)", ("conv", 3),
                  {"w": ref["w"].transpose(0, 1, 3, 2)})
    N, F, OH, OW = dout.shape
    mixed = dout.reshape(F, N, OH, OW).transpose(1, 0, 2, 3)   # the reference then reads dout.reshape(F, -1)
    layout = ("dout is (N, F, OH, OW): bring F first with dout.transpose(1, 0, 2, 3) before the reshape "
              "to (F, N*OH*OW); a bare reshape mixes samples and kernels")
    bad = conv_run(x, w, b, mixed, stride, padding, groups)
    yield Variant("conv_layout", "backward", f"your dw reads dout in the wrong order: {layout}", ("conv", 3),
                  {"w": bad["w"]})
    yield Variant("conv_layout", "backward", f"your dx reads dout in the wrong order: {layout}", ("conv", 4),
                  {"dx": bad["dx"]})
    yield Variant("conv_layout", "forward", "your forward output mixes samples and kernels: w @ cols is "
                  "(F, N*OH*OW); reshape it to (F, N, OH, OW) and transpose(1, 0, 2, 3), not reshape it to "
                  "(N, F, OH, OW) directly", ("conv", 4),
                  {"out": (ref["out"] - b[None, :, None, None]).transpose(1, 0, 2, 3).reshape(N, F, OH, OW)
                   + b[None, :, None, None]})
    G = groups
    if G > 1:
        F, C = w.shape[0], x.shape[1]
        Fg, Cg = F // G, C // G
        w0 = np.concatenate([w[:Fg]] * G)                                   # group 0's kernels everywhere
        x0 = np.concatenate([x[:, :Cg]] * G, axis=1)                         # group 0's channels everywhere
        contrib = []
        for g in range(G):                                                   # dx from group g's kernels alone
            wg = np.zeros_like(w)
            wg[g * Fg:(g + 1) * Fg] = w[g * Fg:(g + 1) * Fg]
            contrib.append(run(x, wg)["dx"][:, g * Cg:(g + 1) * Cg])        # (N, Cg, H, W)
        total = sum(contrib)
        sec = "Sec. 3.2: kernel f of group g sees only input channels g*C/G .. (g+1)*C/G - 1"
        yield Variant("conv_groups", "backward", f"your dx uses group 0's kernels for every group: {sec}",
                      ("conv", 4), {"dx": run(x, w0)["dx"]})
        yield Variant("conv_groups", "backward", "your dx adds every group's contribution into every "
                      f"group's channels (groups ignored): {sec}", ("conv", 4),
                      {"dx": np.concatenate([total] * G, axis=1)})
        yield Variant("conv_groups", "backward", "your dx puts every group's contribution into group 0's "
                      f"channels: {sec}", ("conv", 4),
                      {"dx": np.concatenate([total] + [np.zeros_like(total)] * (G - 1), axis=1)})
        yield Variant("conv_groups", "backward", f"your dw uses group 0's input channels for every group: "
                      f"{sec}", ("conv", 3), {"w": run(x0, w)["w"]})
    why = "a layer's gradient is a sum over the batch; only the loss divides by N"
    for key, step in (("dx", 4), ("w", 3), ("b", 3)):
        yield from _scaled("scale_factor", "conv", step, {key: ref[key]}, batch_factors(N, why))
    yield Variant("scale_factor", "backward", f"your db is the mean of dout, 1/(N OH OW) = "
                  f"1/{N * OH * OW} x the right value: db sums dout over n, oh and ow", ("conv", 3),
                  {"b": ref["b"] / (N * OH * OW)})


# ---------------------------------------------------------------------------
# Softmax cross-entropy (Sec. 3.5)
# ---------------------------------------------------------------------------

def softmax_run(x, y):
    """minialex's loss and its gradient: {"loss": scalar, "dx": (N, K)}."""
    layer = SoftmaxCrossEntropy()
    loss = layer.forward(x.copy(), y.copy())
    return {"loss": np.float64(loss), "dx": layer.backward()}


def softmax_variants(x, y):
    """Softmax cross-entropy's plausible mistakes. Loss variants are named values, never a bare factor."""
    ref = softmax_run(x, y)
    N = x.shape[0]
    loss, dx = ref["loss"], ref["dx"]
    onehot = np.zeros_like(dx)
    onehot[np.arange(N), y] = 1
    log_p = np.log(np.maximum(dx * N + onehot, 1e-300))              # log softmax(x), from the reference
    yield Variant("softmax_mean", "forward", "your loss is the SUM of -log p[y] over the batch; the "
                  "paper's objective is the mean (divide by N)", ("softmax", 2),
                  {"loss": loss * N, "dx": dx * N})
    yield Variant("softmax_mean", "forward", f"your loss is divided by N = {N} twice (a mean of a mean?)",
                  ("softmax", 2), {"loss": loss / N, "dx": dx / N})
    every = np.zeros_like(dx)
    every[:, y] = 1                                                   # what dx[:, y] -= 1 touches
    fancy = ("`dx[:, y]` (or `log_p[:, y]`) picks the label columns of ALL rows in every row; "
             "index one entry per row with [np.arange(N), y]")
    yield Variant("softmax_label", "forward", f"your loss averages -log p over every row's label in every row: "
                  f"{fancy}", ("softmax", 2),
                  {"loss": -log_p[:, y].mean()})
    yield Variant("softmax_label", "backward", f"your dx subtracts 1 at the labels of all rows: {fancy}",
                  ("softmax", 3), {"dx": dx + (onehot - every) / N})
    yield Variant("softmax_label", "forward", "your loss averages -log p over ALL classes; the loss is "
                  "-log p of the correct class only, -log softmax(x)[y], averaged over the batch",
                  ("softmax", 2), {"loss": -log_p.mean()})
    yield Variant("softmax_sign", "forward", "your loss is +mean log p[y]: the loss is its NEGATIVE "
                  "(a log-probability is <= 0, the loss >= 0)", ("softmax", 2), {"loss": -loss, "dx": -dx})
    yield Variant("scale_factor", "backward", f"your dx is {N} x the right value, {N} = N, the batch size: "
                  "the loss is a mean over the batch, so its gradient carries a 1/N. Divide by N",
                  ("softmax", 3), {"dx": dx * N})
    yield Variant("scale_factor", "backward", f"your dx is 1/{N} x the right value, 1/N: the gradient is "
                  "divided by the batch size once too often", ("softmax", 3), {"dx": dx / N})
    yield Variant("scale_factor", "backward", f"your dx is {N * N} x the right value, N^2: multiplied by "
                  f"N = {N} where it should be divided by N", ("softmax", 3), {"dx": dx * N * N})
    yield Variant("softmax_sign", "backward", "your dx has the wrong sign: it is (softmax(x) - onehot(y)) "
                  "/ N", ("softmax", 3), {"dx": -dx})
    yield Variant("softmax_label", "backward", "your dx misses the -1 at the correct class: the gradient "
                  "of -log softmax(x)[y] is softmax(x) - onehot(y), divided by N; check the -1 at the "
                  "label", ("softmax", 3), {"dx": dx + onehot / N})
    yield Variant("softmax_label", "backward", "your dx subtracts 1/N at the correct class but does not "
                  "divide the softmax by N: (softmax(x) - onehot(y)) / N, both terms", ("softmax", 3),
                  {"dx": dx * N + onehot * (1 - 1 / N)})
