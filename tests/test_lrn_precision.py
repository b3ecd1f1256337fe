"""The readable LocalResponseNorm (Sec. 3.3) on 16-bit arrays: --precision fp16|bf16 on NumPy.

numba has no float16, so the NumPy fp16 working copy runs the readable layer
(precision.use_readable_kernels). It squares, sums the window, forms the
bracket and its power in float32 and rounds out and dx once to the 16-bit
type. Checked here against float64 loops (tests/lrn_reference.py) within the
bounds that one rounding allows; the loops themselves are checked against the
float64 layer, whose gradient tests/test_layers_gradcheck.py checks.

Worst error / bound measured on the four HALF_CASES, in order: out 0.975,
0.986, 0.983, 0.893; dx 0.542, 0.669, 0.593, 0.547. The layer before this
change (everything in float16) on the same inputs: out 2.36, 2.52, 2.58 times
the bound, dx 1.53, 1.49, 1.54; in the last case x^2 overflowed to inf, so out
and dx were 0 (2044 and 1163 times the bound).
"""
import numpy as np
import pytest
from lrn_reference import (HALF_CASES, U32, UBF16, backward_bound, forward_bound, half_inputs, lrn_loops,
                           worst)

from minialex.layers import LocalResponseNorm


@pytest.mark.parametrize("size,alpha,beta,k", [(5, 1e-4, 0.75, 2.0), (3, 0.2, 0.6, 2.0), (4, 1.0, 0.75, 1.0),
                                               (1, 1.0, 0.75, 1.0)])
def test_the_float64_loops_agree_with_the_float64_layer(size, alpha, beta, k):
    rng = np.random.default_rng(9)
    x, dout = 3 * rng.standard_normal((2, 7, 3, 4)), rng.standard_normal((2, 7, 3, 4))
    out, scale, dx, _, _ = lrn_loops(x, dout, size, alpha, beta, k)
    layer = LocalResponseNorm(size, alpha, beta, k)
    np.testing.assert_allclose(layer.forward(x), out, rtol=1e-13)
    np.testing.assert_allclose(layer.backward(dout), dx, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("case", list(HALF_CASES))
def test_float16_lrn_is_float32_arithmetic_rounded_once(case):
    size, alpha, beta, k, kind = HALF_CASES[case]
    x, dout = half_inputs(kind)
    out, scale, dx, t1, t2abs = lrn_loops(x, dout, size, alpha, beta, k)
    layer = LocalResponseNorm(size, alpha, beta, k)
    got = layer.forward(x)
    _, got_scale, _ = layer.cache
    assert got.dtype == np.float16 and got_scale.dtype == np.float32     # the bracket is kept in float32
    assert worst(got, out, forward_bound(out)) <= 1
    np.testing.assert_allclose(got_scale, scale, rtol=U32)
    got_dx = layer.backward(dout)
    assert got_dx.dtype == np.float16
    assert worst(got_dx, dx, backward_bound(dx, t1, t2abs, beta)) <= 1


def test_float16_lrn_with_groups_normalises_each_group_alone():
    x, dout = half_inputs("normal1")                                  # (4, 16, 6, 6)
    layer = LocalResponseNorm(5, 1.0, 0.75, 1.0, groups=2)
    got = layer.forward(x)
    got_dx = layer.backward(dout)
    for g in (slice(0, 8), slice(8, 16)):
        out, _, dx, t1, t2abs = lrn_loops(x[:, g], dout[:, g], 5, 1.0, 0.75, 1.0)
        assert worst(got[:, g], out, forward_bound(out)) <= 1
        assert worst(got_dx[:, g], dx, backward_bound(dx, t1, t2abs, 0.75)) <= 1


def test_bfloat16_lrn_is_float32_arithmetic_rounded_once():
    # measured with ml_dtypes 0.7 (worst error / bound): out 0.970, dx 0.594; the layer before
    # this change (every operation rounded to bfloat16): out 2.23, dx 1.48
    ml_dtypes = pytest.importorskip("ml_dtypes", reason="bfloat16 needs ml_dtypes (precision.working_dtype)")
    x, dout = half_inputs("relu40")
    x, dout = x.astype(ml_dtypes.bfloat16), dout.astype(ml_dtypes.bfloat16)
    out, _, dx, t1, t2abs = lrn_loops(x, dout, 5, 1e-4, 0.75, 2.0)
    layer = LocalResponseNorm()
    got = layer.forward(x)
    got_dx = layer.backward(dout)
    assert got.dtype == got_dx.dtype == x.dtype
    assert worst(got, out, forward_bound(out, UBF16)) <= 1
    assert worst(got_dx, dx, backward_bound(dx, t1, t2abs, 0.75, UBF16)) <= 1
