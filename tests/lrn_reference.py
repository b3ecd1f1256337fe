"""LRN (Sec. 3.3) in float64 loops over channels, and the error a 16-bit result may have.

Shared by tests/test_lrn_precision.py (the readable layer on float16 arrays) and
tests/test_cuda_kernels_on_cpu.py (the CUDA kernels built for _Float16).

The bounds are what "sums in float32, one rounding to float16 per stored
result" allows: a result rounded once is off by at most U16 of itself; in
backward, the float16 ``out`` and ``scale`` read back from forward add their
own rounding, weighted by the size of the terms they enter. A kernel that
sums, squares or takes the power in float16 rounds several times per term
and exceeds them (the numbers are in the tests' comments).
"""
import numpy as np

U16 = 2.0 ** -11        # float16's unit roundoff: one rounding is off by at most U16, relative
UBF16 = 2.0 ** -8       # bfloat16's (8 significant bits)
TINY16 = 2.0 ** -25     # half the spacing of float16's subnormals: the absolute error of one rounding there
U32 = 2.0 ** -20        # a generous allowance for float32's roundings (its unit roundoff is 2^-24)


# (size, alpha, beta, k, x): the cases both float16 tests run (alpha is the coefficient itself,
# the paper's convention); x is drawn by ``half_inputs``.
HALF_CASES = {
    "paper, relu(N(0, 40^2))": (5, 1e-4, 0.75, 2.0, "relu40"),      # conv1-sized activations, Sec. 3.3's constants
    "alpha 1, N(0, 1)": (5, 1.0, 0.75, 1.0, "normal1"),              # the sum dominates the bracket
    "n 3, alpha 0.2, beta 0.6, N(0, 2^2)": (3, 0.2, 0.6, 2.0, "normal2"),
    "paper, U(0, 400)": (5, 1e-4, 0.75, 2.0, "uniform400"),          # x^2 above float16's 65504
}


def half_inputs(kind, seed=8):
    """float16 x and dout for a HALF_CASES entry: (4, 16, 6, 6), or (2, 8, 4, 4) for "uniform400"."""
    rng = np.random.default_rng(seed)
    x = {"relu40": lambda: np.maximum(rng.normal(0.0, 40.0, (4, 16, 6, 6)), 0.0),
         "normal1": lambda: rng.normal(0.0, 1.0, (4, 16, 6, 6)),
         "normal2": lambda: rng.normal(0.0, 2.0, (4, 16, 6, 6)),
         "uniform400": lambda: rng.uniform(0.0, 400.0, (2, 8, 4, 4))}[kind]().astype(np.float16)
    dout = rng.standard_normal(x.shape).astype(np.float16)
    return x, dout


def lrn_loops(x, dout, size, coeff, beta, k):
    """float64 LRN by explicit loops over channels, from the formula.

        scale_i = k + coeff * sum_{j = max(0, i-size//2)}^{min(C-1, i+size//2)} x_j^2
        out_i   = x_i * scale_i^-beta
        dx_j    = dout_j scale_j^-beta - 2 coeff beta x_j sum_{i in window(j)} dout_i out_i / scale_i

    Shapes:  x, dout: (N, C, H, W) of any float type, read as float64.
    Returns float64 (out, scale, dx, t1, t2abs): t1 = dout_j scale_j^-beta is dx's first term,
    t2abs = 2 coeff beta |x_j| sum |dout_i out_i / scale_i| the size of its second one.
    """
    x, dout = x.astype(np.float64), dout.astype(np.float64)
    N, C, H, W = x.shape
    half = size // 2
    scale = np.empty_like(x)
    for c in range(C):
        s = np.zeros((N, H, W))
        for j in range(max(0, c - half), min(C - 1, c + half) + 1):
            s += x[:, j] ** 2
        scale[:, c] = k + coeff * s
    out = x * scale ** -beta
    t = dout * out / scale                                   # (N, C, H, W): each channel's share
    t1 = dout * scale ** -beta
    dx, t2abs = np.empty_like(x), np.empty_like(x)
    for c in range(C):
        acc, acc_abs = np.zeros((N, H, W)), np.zeros((N, H, W))
        for j in range(max(0, c - half), min(C - 1, c + half) + 1):
            acc += t[:, j]
            acc_abs += np.abs(t[:, j])
        dx[:, c] = t1[:, c] - 2 * coeff * beta * x[:, c] * acc
        t2abs[:, c] = 2 * coeff * beta * np.abs(x[:, c]) * acc_abs
    return out, scale, dx, t1, t2abs


def forward_bound(ref, u=U16):
    """Allowed |error| of a float16 (``u=UBF16``: bfloat16) out or scale computed in float32, rounded once."""
    return (u + U32) * np.abs(ref) + TINY16


def backward_bound(dx, t1, t2abs, beta, u=U16):
    """Allowed |error| of a float16 (bfloat16) dx summed in float32, rounded once, from 16-bit out and scale.

    u |dx| for dx's own rounding; scale_j^-beta from a 16-bit scale is off by
    beta u, dout_i out_i / scale_i by 2 u (out and scale rounded once each);
    float32's roundings stay below U32 of the terms.
    """
    t1 = np.abs(t1)
    return u * (np.abs(dx) + beta * t1 + 2 * t2abs) + U32 * (t1 + t2abs) + TINY16


def worst(got, ref, bound):
    """max |got - ref| / bound: at most 1 where the bound holds."""
    return float(np.max(np.abs(got.astype(np.float64) - ref) / bound))
