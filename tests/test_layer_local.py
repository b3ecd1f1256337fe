"""LocallyConnected2D (cuda-convnet's "local" layer, Sec. 3.3's CIFAR-10 net): forward
against naive loops, gradients in float64 (centred differences, threshold 1e-6, dx, w
and b), and the convolution it becomes when every position shares its kernels."""
import numpy as np
import pytest

from minialex.gradcheck import check_layer
from minialex.layers import Conv2D, LocallyConnected2D

THRESHOLD = 1e-6


def naive_local(x, w, b, K, stride, pad):
    """Loops over n, f, oh, ow, c, kh, kw: the definition in the layer's docstring."""
    N, C, H, W = x.shape
    P, _, F = w.shape
    OH = (H + 2 * pad - K) // stride + 1
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    out = np.zeros((N, F, OH, OH))
    for n in range(N):
        for f in range(F):
            for oh in range(OH):
                for ow in range(OH):
                    s = b[f, oh, ow]
                    for c in range(C):
                        for kh in range(K):
                            for kw in range(K):
                                s += w[oh * OH + ow, (c * K + kh) * K + kw, f] * \
                                    xp[n, c, oh * stride + kh, ow * stride + kw]
                    out[n, f, oh, ow] = s
    return out


@pytest.mark.parametrize("K,stride,pad,S", [(3, 1, 1, 5), (3, 2, 0, 7), (2, 1, 0, 4)])
def test_forward_matches_naive_loops(K, stride, pad, S):
    rng = np.random.default_rng(K + stride + pad)
    layer = LocallyConnected2D(3, 4, K, S, stride=stride, padding=pad, rng=rng, weight_std=0.5,
                               dtype=np.float64)
    layer.params["b"][...] = rng.standard_normal(layer.params["b"].shape)
    x = rng.standard_normal((2, 3, S, S))
    want = naive_local(x, layer.params["w"], layer.params["b"], K, stride, pad)
    np.testing.assert_allclose(layer.forward(x), want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("K,stride,pad,S", [(3, 1, 1, 5), (3, 2, 0, 7)])
def test_gradients_float64(K, stride, pad, S):
    rng = np.random.default_rng(7)
    layer = LocallyConnected2D(3, 4, K, S, stride=stride, padding=pad, rng=rng, weight_std=0.5,
                               bias_init=0.1, dtype=np.float64)
    rep = check_layer(layer, rng.standard_normal((2, 3, S, S)), threshold=THRESHOLD)
    assert rep.passed, str(rep)
    assert {t.name for t in rep.tensors} == {"dx", "w", "b"}


def test_shared_kernels_make_it_a_convolution():
    rng = np.random.default_rng(3)
    conv = Conv2D(3, 4, 3, stride=1, padding=1, rng=rng, weight_std=0.5, dtype=np.float64)
    local = LocallyConnected2D(3, 4, 3, 6, stride=1, padding=1, dtype=np.float64)
    k = conv.params["w"].reshape(4, -1).T                          # (C*K*K, F)
    local.params["w"][...] = k[None]                               # the same kernels at all 36 positions
    local.params["b"][...] = conv.params["b"][:, None, None]
    x = rng.standard_normal((2, 3, 6, 6))
    np.testing.assert_allclose(local.forward(x), conv.forward(x), rtol=1e-10, atol=1e-12)


def test_wrong_input_size_is_one_clear_error():
    layer = LocallyConnected2D(3, 4, 3, 5, padding=1)
    with pytest.raises(ValueError, match=r"input \(3, 6, 6\), expected \(3, 5, 5\)"):
        layer.forward(np.zeros((1, 3, 6, 6), np.float32))
