"""The reference lab solutions (minialex/labs/solutions) against naive loops written here."""
import numpy as np

from minialex.im2col import im2col_reference
from minialex.labs import AGREED_NAMES, LABS, expand_names
from minialex.labs.solutions import Conv2D, LocalResponseNorm, MaxPool2D, col2im, softmax_cross_entropy


def test_agreed_names_and_labs():
    assert AGREED_NAMES == ["LocalResponseNorm", "MaxPool2D", "col2im", "Conv2D", "softmax_cross_entropy"]
    assert expand_names(["conv", "lrn", "Conv2D"]) == ["col2im", "Conv2D", "LocalResponseNorm"]
    assert set(LABS) == {"lrn", "maxpool", "conv", "softmax"}


def test_lrn_forward_matches_loops():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 7, 2, 3))
    n, alpha, beta, k = 5, 1.0, 0.75, 1.0
    out = LocalResponseNorm(n, alpha, beta, k).forward(x)
    N, C, H, W = x.shape
    want = np.empty_like(x)
    for b in range(N):
        for i in range(C):
            for h in range(H):
                for w in range(W):
                    window = range(max(0, i - n // 2), min(C - 1, i + n // 2) + 1)
                    s = sum(x[b, j, h, w] ** 2 for j in window)
                    want[b, i, h, w] = x[b, i, h, w] / (k + alpha * s) ** beta
    np.testing.assert_allclose(out, want, rtol=1e-12)


def test_maxpool_forward_matches_loops():
    x = np.random.default_rng(1).standard_normal((2, 2, 7, 7))
    out = MaxPool2D(3, 2).forward(x)
    assert out.shape == (2, 2, 3, 3)
    for i in range(3):
        for j in range(3):
            np.testing.assert_array_equal(out[:, :, i, j], x[:, :, 2 * i:2 * i + 3, 2 * j:2 * j + 3].max(axis=(2, 3)))


def test_conv_forward_matches_loops_with_groups():
    rng = np.random.default_rng(2)
    C, F, K, G, s, p = 4, 6, 3, 2, 2, 1
    layer = Conv2D(C, F, K, stride=s, padding=p, groups=G)
    layer.params["w"] = rng.standard_normal((F, C // G, K, K))
    layer.params["b"] = rng.standard_normal(F)
    x = rng.standard_normal((2, C, 5, 5))
    out = layer.forward(x)
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    OH = (5 + 2 * p - K) // s + 1
    want = np.zeros((2, F, OH, OH))
    for n in range(2):
        for f in range(F):
            g = f // (F // G)
            for i in range(OH):
                for j in range(OH):
                    patch = xp[n, g * (C // G):(g + 1) * (C // G), i * s:i * s + K, j * s:j * s + K]
                    want[n, f, i, j] = np.sum(patch * layer.params["w"][f]) + layer.params["b"][f]
    np.testing.assert_allclose(out, want, rtol=1e-10, atol=1e-12)


def test_col2im_is_the_adjoint_of_im2col():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 6, 5))
    cols = im2col_reference(x, 3, 3, 2, 1)
    c = rng.standard_normal(cols.shape)
    # <im2col(x), c> = <x, col2im(c)> for every x and c
    assert np.isclose(np.sum(cols * c), np.sum(x * col2im(c, x.shape, 3, 3, 2, 1)), rtol=1e-12)


def test_softmax_cross_entropy_matches_loops():
    rng = np.random.default_rng(4)
    x, y = rng.standard_normal((4, 5)) * 3, rng.integers(0, 5, 4)
    loss, dx = softmax_cross_entropy(x, y)
    want = np.mean([np.log(np.sum(np.exp(x[n]))) - x[n, y[n]] for n in range(4)])
    assert np.isclose(loss, want, rtol=1e-12)
    assert dx.shape == x.shape
    np.testing.assert_allclose(dx.sum(axis=1), 0, atol=1e-15)   # softmax - onehot sums to 0 per row
