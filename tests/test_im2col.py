"""im2col/col2im: numba kernels equal the readable reference; col2im is im2col's adjoint."""
import itertools

import numpy as np
import pytest

from minialex.backend import kernels_choice
from minialex.im2col import col2im_reference, conv_output_size, im2col_reference
from minialex.kernels import _numba, accelerate

IM2COL = {"numba": _numba.im2col, "reference": im2col_reference}      # twins, same arguments
COL2IM = {"numba": _numba.col2im, "reference": col2im_reference}


def path(layer, impl):
    """``layer`` on the path ``impl``: "reference" (the readable layer) or "numba" (its fast twin)."""
    return accelerate(layer, np, "fast" if impl == "numba" else "reference")

CASES = [(k, s, p) for k, s, p in itertools.product((1, 3, 5, 11), (1, 2, 4), (0, 1, 2))]


def naive_im2col(x, K, s, p):
    """Loop version written from the definition, for the reference itself."""
    N, C, H, W = x.shape
    OH, OW = conv_output_size(H, K, s, p), conv_output_size(W, K, s, p)
    xpad = np.zeros((N, C, H + 2 * p, W + 2 * p), x.dtype)
    xpad[:, :, p:p + H, p:p + W] = x
    cols = np.zeros((C * K * K, N * OH * OW), x.dtype)
    for c in range(C):
        for i in range(K):
            for j in range(K):
                for n in range(N):
                    for oh in range(OH):
                        for ow in range(OW):
                            cols[(c * K + i) * K + j, (n * OH + oh) * OW + ow] = \
                                xpad[n, c, oh * s + i, ow * s + j]
    return cols


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("K,s,p", CASES)
def test_numba_matches_reference(K, s, p, dtype):
    rng = np.random.default_rng(K * 100 + s * 10 + p)
    H = W = max(K, 13)
    x = rng.standard_normal((2, 3, H, W + 1)).astype(dtype)
    ref = im2col_reference(x, K, K, s, p)
    fast = _numba.im2col(x, K, K, s, p)
    assert fast.dtype == dtype and ref.dtype == dtype
    np.testing.assert_array_equal(fast, ref)
    cols = rng.standard_normal(ref.shape).astype(dtype)
    dref = col2im_reference(cols, x.shape, K, K, s, p)
    dfast = _numba.col2im(cols, x.shape, K, K, s, p)
    assert dfast.dtype == dtype and dref.dtype == dtype
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(dfast, dref, rtol=tol, atol=tol)


@pytest.mark.parametrize("K,s,p", [(3, 1, 1), (3, 2, 0), (5, 2, 2), (11, 4, 0)])
def test_reference_matches_naive_loops(K, s, p):
    x = np.random.default_rng(0).standard_normal((2, 2, 15, 14))
    np.testing.assert_array_equal(im2col_reference(x, K, K, s, p), naive_im2col(x, K, s, p))


@pytest.mark.parametrize("impl", ["numba", "reference"])
@pytest.mark.parametrize("K,s,p", [(3, 2, 0), (3, 1, 1), (5, 1, 2), (11, 4, 2)])
def test_col2im_is_adjoint_of_im2col(impl, K, s, p):
    """<im2col(x), c> == <x, col2im(c)>: the defining property, overlaps included."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 17, 17))
    cols = IM2COL[impl](x, K, K, s, p)
    c = rng.standard_normal(cols.shape)
    lhs = np.sum(cols * c)
    rhs = np.sum(x * COL2IM[impl](c, x.shape, K, K, s, p))
    assert abs(lhs - rhs) <= 1e-10 * max(1.0, abs(lhs))


def test_col2im_accumulates_overlaps():
    """With z=3, s=2 the centre pixel of a 5x5 image lies in all four windows."""
    x_shape = (1, 1, 5, 5)
    cols = np.ones((9, 4))
    for impl in ("numba", "reference"):
        dx = COL2IM[impl](cols, x_shape, 3, 3, 2, 0)
        assert dx[0, 0, 2, 2] == 4.0
        assert dx[0, 0, 0, 0] == 1.0
        assert dx[0, 0, 0, 2] == 2.0


def test_switch_env_and_arg(monkeypatch):
    monkeypatch.setenv("MINIALEX_KERNELS", "reference")
    assert kernels_choice() == "reference"
    monkeypatch.setenv("MINIALEX_KERNELS", "fast")
    assert kernels_choice() == "fast"
    assert kernels_choice("reference") == "reference"
    monkeypatch.setenv("MINIALEX_KERNELS", "fortran")
    with pytest.raises(ValueError, match="fortran"):
        kernels_choice()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_layers_agree_on_both_paths(dtype):
    """Conv and max-pool give the same forward and backward on numba and reference paths."""
    from minialex.layers import Conv2D, MaxPool2D

    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 4, 11, 11)).astype(dtype)
    results = []
    for impl in ("numba", "reference"):
        conv = path(Conv2D(4, 6, 3, stride=2, padding=1, groups=2, rng=np.random.default_rng(0), dtype=dtype), impl)
        pool = path(MaxPool2D(3, 2), impl)
        y = pool.forward(conv.forward(x))
        dy = np.ones_like(y)
        dx = conv.backward(pool.backward(dy))
        results.append((y, dx, conv.grads["w"]))
    tol = 1e-5 if dtype == np.float32 else 1e-12
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)
