"""What the autograder checks for each agreed name: its cases and the lab steps.

A case is one setting (shapes, stride, padding, groups, constants) on which
a student's forward and backward are compared with minialex's readable
layer, tensor by tensor (``minialex.gradcheck.lab``). The cases are chosen
so that each classic mistake shows in some of them and not in others, and
the grader can say in words which cases fail ("stride 2 only", "groups
only", "tied maxima only"):

- batch size N = 3 (and 4, 5 for the loss), never 2, and channel counts
  other than N, so that a missing 1/N, a factor 2 and a channel count
  cannot be confused;
- LRN with alpha = 1, k = 1 (the paper's alpha = 1e-4 hides a wrong
  window, STYLE.md "Tests"), the paper's constants, and n = 3;
- max-pool with distinct values (no ties) and with ties: ReLU zeros and
  repeated values. **Ties**: the gradient of a window goes to its FIRST
  maximum in row-major order (what ``np.argmax`` returns), exactly as
  ``minialex.layers.MaxPool2D`` does (docs/deviations.md);
- col2im and Conv2D with and without overlap, stride 2, padding, groups,
  and a non-square kernel for col2im;
- softmax with logits near 1000 (needs the max-subtraction).

``STEPS`` names the steps of each lab notebook; a diagnosis points at the
step where the faulty quantity is derived, and ``notebooks/labs/build_labs.py``
writes the same step titles into the notebooks.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

LABS = {
    "lrn": ["LocalResponseNorm"],
    "maxpool": ["MaxPool2D"],
    "conv": ["col2im", "Conv2D"],
    "softmax": ["softmax_cross_entropy"],
}
AGREED_NAMES = [n for names in LABS.values() for n in names]
LAB_OF = {n: lab for lab, names in LABS.items() for n in names}

NOTEBOOKS = {
    "lrn": "lab-3.3-lrn-backward",
    "maxpool": "lab-3.4-maxpool-backward",
    "conv": "lab-3.2-conv-backward-col2im",
    "softmax": "lab-3.5-softmax-cross-entropy",
}

STEPS = {
    "lrn": ["the forward pass: the window i-n//2..i+n//2 and the constants k, alpha, beta (given)",
            "the direct term dout_j * s_j^-beta",
            "the cross-channel term -2 alpha beta a_j sum_i dout_i b_i / s_i",
            "which i see a_j: the window of the cross-channel sum"],
    "maxpool": ["the forward pass: the max of each z x z window every s pixels (given)",
                "route each window's gradient to its arg-max (a tie: the first maximum)",
                "add where windows overlap"],
    "conv": ["col2im: add every column back onto its window (rows (c, kh, kw), columns (n, oh, ow))",
             "col2im: drop the padding",
             "db and dw, one group at a time",
             "dx = col2im(w_g.T @ dout_g), one group at a time"],
    "softmax": ["a stable log-softmax: subtract each row's maximum",
                "the loss: the mean of -log softmax(x)[y] over the batch",
                "the gradient: (softmax(x) - onehot(y)) / N"],
}

# the step to re-derive when a tensor is wrong and no known mistake matches
DEFAULT_STEP = {
    ("LocalResponseNorm", "out"): 1, ("LocalResponseNorm", "dx"): 3,
    ("MaxPool2D", "out"): 1, ("MaxPool2D", "dx"): 2,
    ("col2im", "dx"): 1,
    ("Conv2D", "out"): 4, ("Conv2D", "dx"): 4, ("Conv2D", "w"): 3, ("Conv2D", "b"): 3,
    ("softmax_cross_entropy", "loss"): 2, ("softmax_cross_entropy", "dx"): 3,
}

SIGNATURES = {
    "LocalResponseNorm": "LocalResponseNorm(size=5, alpha=1e-4, beta=0.75, k=2.0)",
    "MaxPool2D": "MaxPool2D(kernel_size=3, stride=2)",
    "col2im": "col2im(cols, x_shape, KH, KW, stride, padding)",
    "Conv2D": "Conv2D(in_channels, out_channels, kernel_size, stride=1, padding=0, groups=1)",
    "softmax_cross_entropy": "softmax_cross_entropy(x, y) -> (loss, dx)",
}

TAG_TEXT = {
    "stride2": "stride 2", "overlap": "overlapping windows", "padding": "padding > 0",
    "groups": "groups > 1", "ties": "tied maxima", "large": "logits near 1000",
    "paper": "the paper's constants (alpha = 1e-4, k = 2)", "n3": "n = 3", "rect": "a non-square kernel",
}


def step_text(lab, k):
    """'notebooks/labs/lab-3.3-lrn-backward.ipynb, step 3 (the cross-channel term ...)'."""
    return f"notebooks/labs/{NOTEBOOKS[lab]}.ipynb, step {k} ({STEPS[lab][k - 1]})"


@dataclass
class Case:
    """One setting for one agreed name; ``inputs()`` builds its arrays (float64, seeded)."""

    name: str
    label: str                 # what the case is, with every shape: "3x3, stride 2, padding 1; x (3, 2, 7, 8)"
    setting: dict              # constructor / call arguments and the input's shape
    tags: frozenset = field(default_factory=frozenset)
    seed: int = 0

    @property
    def lab(self):
        return LAB_OF[self.name]

    def inputs(self):
        """dict of arrays: x (and w, b for Conv2D; cols for col2im; y for the loss)."""
        rng = np.random.default_rng(1000 + self.seed)
        st = self.setting
        if self.name == "MaxPool2D":
            if "ties" in self.tags:        # a ReLU's output: zeros and small repeated integers
                return {"x": np.maximum(rng.integers(-2, 3, st["x"]), 0).astype(np.float64)}
            return {"x": _distinct(rng, st["x"])}
        if self.name == "col2im":
            N, C, H, W = st["x"]
            KH, KW, s, p = st["KH"], st["KW"], st["stride"], st["padding"]
            OH, OW = (H + 2 * p - KH) // s + 1, (W + 2 * p - KW) // s + 1
            return {"cols": rng.standard_normal((C * KH * KW, N * OH * OW))}    # (C*KH*KW, N*OH*OW)
        if self.name == "Conv2D":
            C, F, K, G = st["in_channels"], st["out_channels"], st["kernel_size"], st["groups"]
            return {"x": rng.standard_normal(st["x"]),
                    "w": rng.standard_normal((F, C // G, K, K)) * 0.5,            # (F, C/G, K, K)
                    "b": rng.standard_normal(F) * 0.1}                             # (F,)
        if self.name == "softmax_cross_entropy":
            N, K = st["x"]
            return {"x": rng.standard_normal((N, K)) * 3 + st.get("offset", 0.0),
                    "y": rng.integers(0, K, N)}
        return {"x": rng.standard_normal(st["x"])}


def _distinct(rng, shape):
    """Pairwise distinct values in (-1.1, 1.1), none near 0: no max-pool ties."""
    n = int(np.prod(shape))
    vals = (np.arange(n) + 0.5) / n * 2 - 1
    vals = np.sign(vals) * (0.1 + np.abs(vals))
    return rng.permutation(vals).reshape(shape)


def _lrn(i, size, alpha, beta, k, x, tags=()):
    return Case("LocalResponseNorm", f"n={size}, alpha={alpha:g}, beta={beta:g}, k={k:g}; x {x}",
                dict(size=size, alpha=alpha, beta=beta, k=k, x=x), frozenset(tags), i)


def _pool(i, z, s, x, tags, extra=""):
    return Case("MaxPool2D", f"{z}x{z}, stride {s}{extra}; x {x}", dict(kernel_size=z, stride=s, x=x),
                frozenset(tags), i)


def _col2im(i, KH, KW, s, p, x, tags):
    return Case("col2im", f"{KH}x{KW}, stride {s}, padding {p}; x {x}",
                dict(KH=KH, KW=KW, stride=s, padding=p, x=x), frozenset(tags), i)


def _conv(i, C, F, K, s, p, G, x, tags):
    return Case("Conv2D", f"{K}x{K}, stride {s}, padding {p}, groups {G}; x {x}, w ({F}, {C // G}, {K}, {K})",
                dict(in_channels=C, out_channels=F, kernel_size=K, stride=s, padding=p, groups=G, x=x),
                frozenset(tags), i)


def _softmax(i, N, K, offset=0.0, tags=()):
    near = f", logits near {offset:g} (needs the max-subtraction)" if offset else ""
    return Case("softmax_cross_entropy", f"N={N}, K={K}{near}; x ({N}, {K})",
                dict(x=(N, K), offset=offset), frozenset(tags), i)


CASES = {
    "LocalResponseNorm": [
        _lrn(0, 5, 1.0, 0.75, 1.0, (3, 7, 3, 3)),
        _lrn(1, 5, 1e-4, 0.75, 2.0, (3, 6, 2, 3), ["paper"]),
        _lrn(2, 3, 0.5, 0.75, 1.5, (3, 5, 2, 2), ["n3"]),
    ],
    "MaxPool2D": [
        _pool(10, 3, 2, (3, 2, 9, 9), ["overlap", "stride2"], " (Sec. 3.4), distinct values"),
        _pool(11, 2, 2, (3, 2, 8, 6), ["stride2"], ", no overlap"),
        _pool(12, 3, 1, (3, 2, 6, 7), ["overlap"]),
        _pool(13, 3, 2, (3, 2, 7, 9), ["overlap", "stride2", "ties"], ", tied maxima (ReLU zeros)"),
    ],
    "col2im": [
        _col2im(20, 2, 2, 2, 0, (3, 2, 6, 8), ["stride2"]),
        _col2im(21, 3, 3, 1, 0, (3, 2, 6, 7), ["overlap"]),
        _col2im(22, 3, 3, 1, 1, (3, 2, 5, 6), ["overlap", "padding"]),
        _col2im(23, 3, 3, 2, 1, (3, 2, 7, 8), ["overlap", "stride2", "padding"]),
        _col2im(24, 2, 3, 1, 0, (3, 2, 5, 6), ["overlap", "rect"]),
    ],
    "Conv2D": [
        _conv(30, 4, 6, 3, 1, 0, 1, (3, 4, 6, 7), []),
        _conv(31, 4, 6, 3, 2, 0, 1, (3, 4, 7, 8), ["stride2"]),
        _conv(32, 4, 6, 3, 1, 1, 1, (3, 4, 5, 6), ["padding"]),
        _conv(33, 4, 6, 3, 1, 0, 2, (3, 4, 6, 6), ["groups"]),
        _conv(34, 4, 6, 5, 2, 2, 2, (3, 4, 7, 7), ["stride2", "padding", "groups"]),
    ],
    "softmax_cross_entropy": [
        _softmax(40, 5, 7),
        _softmax(41, 4, 6, 1000.0, ["large"]),
        _softmax(42, 3, 5),
    ],
}


def expand_names(names):
    """Lab names ("lrn") and agreed names ("Conv2D") -> agreed names, in order.

    Raises ValueError for anything else, naming the choices.
    """
    if not names:
        return list(AGREED_NAMES)
    out = []
    for n in names:
        if n in LABS:
            out += [m for m in LABS[n] if m not in out]
        elif n in AGREED_NAMES:
            out += [n] if n not in out else []
        else:
            raise ValueError(f"unknown lab or name {n!r}; expected one of the labs {sorted(LABS)} "
                             f"or the agreed names {AGREED_NAMES}")
    return out


def cases_for(name):
    """The autograder's cases for one agreed name."""
    if name not in CASES:
        raise ValueError(f"no lab checks for {name!r}; agreed names are {AGREED_NAMES}")
    return list(CASES[name])
