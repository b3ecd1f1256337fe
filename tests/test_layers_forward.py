"""Forward passes against naive loop implementations written here, from the paper."""
import numpy as np
import pytest

from minialex.layers import Conv2D, Dropout, LocalResponseNorm, MaxPool2D, SoftmaxCrossEntropy

TORCH_SKIP = ("PyTorch is not installed: these tests compare with torch as an oracle; "
              "run them with `pip install torch==2.13.0` (CPU build, README: Run the whole test suite)")


def naive_conv(x, w, b, stride, pad, groups):
    N, C, H, W = x.shape
    F, Cg, K, _ = w.shape
    OH, OW = (H + 2 * pad - K) // stride + 1, (W + 2 * pad - K) // stride + 1
    xp = np.zeros((N, C, H + 2 * pad, W + 2 * pad))
    xp[:, :, pad:pad + H, pad:pad + W] = x
    Fg = F // groups
    out = np.zeros((N, F, OH, OW))
    for n in range(N):
        for f in range(F):
            g = f // Fg                      # the tower this kernel lives in
            for i in range(OH):
                for j in range(OW):
                    patch = xp[n, g * Cg:(g + 1) * Cg, i * stride:i * stride + K, j * stride:j * stride + K]
                    out[n, f, i, j] = np.sum(patch * w[f]) + b[f]
    return out


def naive_lrn(a, n, alpha, beta, k):
    """b^i = a^i / (k + alpha * sum_{j=max(0,i-n/2)}^{min(N-1,i+n/2)} (a^j)^2)^beta, Sec. 3.3."""
    N = a.shape[1]
    out = np.zeros_like(a)
    for i in range(N):
        lo, hi = max(0, i - n // 2), min(N - 1, i + n // 2)
        s = sum(a[:, j] ** 2 for j in range(lo, hi + 1))
        out[:, i] = a[:, i] / (k + alpha * s) ** beta
    return out


def naive_maxpool(x, z, s):
    N, C, H, W = x.shape
    OH, OW = (H - z) // s + 1, (W - z) // s + 1
    out = np.zeros((N, C, OH, OW))
    for n in range(N):
        for c in range(C):
            for i in range(OH):
                for j in range(OW):
                    out[n, c, i, j] = x[n, c, i * s:i * s + z, j * s:j * s + z].max()
    return out


@pytest.mark.parametrize("stride,pad,groups", [(1, 0, 1), (1, 1, 2), (2, 2, 2), (4, 0, 1), (3, 1, 4)])
def test_conv_forward_matches_loops(stride, pad, groups):
    rng = np.random.default_rng(0)
    layer = Conv2D(8, 12, 3, stride=stride, padding=pad, groups=groups, rng=rng, dtype=np.float64,
                   bias_init=0.5)
    x = rng.standard_normal((2, 8, 11, 10))
    ref = naive_conv(x, layer.params["w"], layer.params["b"], stride, pad, groups)
    np.testing.assert_allclose(layer.forward(x), ref, rtol=1e-12, atol=1e-12)


def test_grouped_conv_is_two_convs_concatenated():
    """Sec. 3.2: groups=2 == each tower convolving its own half of the channels."""
    rng = np.random.default_rng(1)
    g2 = Conv2D(6, 4, 3, padding=1, groups=2, rng=rng, dtype=np.float64)
    x = rng.standard_normal((2, 6, 7, 7))
    halves = []
    for t in range(2):
        c = Conv2D(3, 2, 3, padding=1, dtype=np.float64)
        c.params["w"] = g2.params["w"][2 * t:2 * t + 2]
        c.params["b"] = g2.params["b"][2 * t:2 * t + 2]
        halves.append(c.forward(x[:, 3 * t:3 * t + 3]))
    np.testing.assert_allclose(g2.forward(x), np.concatenate(halves, axis=1), rtol=1e-13)
    assert list(g2.tower_of_kernel()) == [0, 0, 1, 1]


@pytest.mark.parametrize("alpha,k,C", [(1e-4, 2.0, 16), (1.0, 1.0, 7), (0.5, 1.0, 3), (1.0, 1.0, 1)])
def test_lrn_forward_matches_paper_formula(alpha, k, C):
    x = np.random.default_rng(2).standard_normal((2, C, 3, 4)) * 3
    out = LocalResponseNorm(5, alpha, 0.75, k).forward(x)
    np.testing.assert_allclose(out, naive_lrn(x, 5, alpha, 0.75, k), rtol=1e-12)


def test_lrn_pytorch_convention_divides_alpha_by_n():
    x = np.random.default_rng(3).standard_normal((2, 9, 3, 3))
    ours = LocalResponseNorm(5, 1.0, 0.75, 1.0, alpha_convention="pytorch").forward(x)
    np.testing.assert_allclose(ours, naive_lrn(x, 5, 1.0 / 5, 0.75, 1.0), rtol=1e-12)


def test_lrn_matches_torch_with_scaled_alpha():
    torch = pytest.importorskip("torch", reason=TORCH_SKIP)
    x = np.random.default_rng(4).standard_normal((2, 10, 4, 4)) * 2
    ref = torch.nn.LocalResponseNorm(5, alpha=5 * 1e-4, beta=0.75, k=2.0)(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(LocalResponseNorm().forward(x), ref, rtol=1e-10)


@pytest.mark.parametrize("z,s,H,W", [(3, 2, 55, 55), (3, 2, 13, 13), (2, 2, 8, 9), (3, 2, 8, 7), (3, 1, 5, 6)])
def test_maxpool_forward_matches_loops(z, s, H, W):
    x = np.random.default_rng(5).standard_normal((2, 3, H, W))
    np.testing.assert_array_equal(MaxPool2D(z, s).forward(x), naive_maxpool(x, z, s))


def naive_covering_maxpool(x, z, s):
    """cuda-convnet's pooling: windows start every s pixels until the last pixel is covered."""
    N, C, H, W = x.shape
    starts_h = list(range(0, max(H - z, 0) + s, s))           # last start: the first at or past H - z
    starts_w = list(range(0, max(W - z, 0) + s, s))
    out = np.zeros((N, C, len(starts_h), len(starts_w)))
    for n in range(N):
        for c in range(C):
            for i, h in enumerate(starts_h):
                for j, w in enumerate(starts_w):
                    out[n, c, i, j] = x[n, c, h:min(h + z, H), w:min(w + z, W)].max()   # partial at the edge
    return out


@pytest.mark.parametrize("z,s,H,W", [(3, 2, 24, 24), (3, 2, 12, 12), (3, 2, 13, 13), (2, 2, 7, 9), (3, 1, 5, 6),
                                     (5, 3, 12, 10)])
def test_covering_maxpool_forward_matches_loops(z, s, H, W):
    x = np.random.default_rng(6).standard_normal((2, 3, H, W))
    np.testing.assert_array_equal(MaxPool2D(z, s, cover=True).forward(x), naive_covering_maxpool(x, z, s))


def test_covering_pool_sizes_and_errors():
    """cuda-convnet's 24 -> 12 -> 6 (layers-conv-local-11pct), where whole windows give 24 -> 11 -> 5."""
    p = MaxPool2D(3, 2, cover=True)
    assert p.output_shape((64, 24, 24)) == (64, 12, 12) and p.output_shape((64, 12, 12)) == (64, 6, 6)
    assert MaxPool2D(3, 2).output_shape((64, 24, 24)) == (64, 11, 11)
    assert p.output_shape((96, 55, 55)) == (96, 27, 27)        # nothing left over: the same as whole windows
    with pytest.raises(ValueError, match="stride=3, kernel_size=2"):
        MaxPool2D(2, 3, cover=True)


def test_covering_pool_routes_the_gradient_to_real_pixels_only():
    x = -np.arange(16.0).reshape(1, 1, 4, 4)                   # every window's max is its top-left pixel
    pool = MaxPool2D(3, 2, cover=True)
    out = pool.forward(x)
    assert out.shape == (1, 1, 2, 2) and out[0, 0, 1, 1] == x[0, 0, 2, 2]   # a 2x2 partial window
    dx = pool.backward(np.ones((1, 1, 2, 2)))
    expected = np.zeros((4, 4))
    expected[0, 0] = expected[0, 2] = expected[2, 0] = expected[2, 2] = 1
    assert dx.shape == x.shape
    np.testing.assert_array_equal(dx[0, 0], expected)


def test_paper_pool_sizes():
    """Sec. 3.4/3.5: 55 -> 27 -> 13 -> 6 with z=3, s=2."""
    p = MaxPool2D(3, 2)
    assert p.output_shape((96, 55, 55)) == (96, 27, 27)
    assert p.output_shape((256, 27, 27)) == (256, 13, 13)
    assert p.output_shape((256, 13, 13)) == (256, 6, 6)


def test_maxpool_ties_go_to_first_and_overlaps_accumulate():
    x = np.zeros((1, 1, 5, 5))                 # every window is a tie
    pool = MaxPool2D(3, 2)
    pool.forward(x)
    dx = pool.backward(np.ones((1, 1, 2, 2)))
    # First max in row-major window order = each window's top-left corner.
    expected = np.zeros((5, 5))
    expected[0, 0] = expected[0, 2] = expected[2, 0] = expected[2, 2] = 1
    np.testing.assert_array_equal(dx[0, 0], expected)
    x = np.zeros((1, 1, 5, 5))
    x[0, 0, 2, 2] = 1.0                        # the max of all four overlapping windows
    pool.forward(x)
    dx = pool.backward(np.full((1, 1, 2, 2), 1.5))
    assert dx[0, 0, 2, 2] == 6.0 and dx.sum() == 6.0


def test_dropout_paper_and_inverted_forms():
    x = np.ones((1000, 50))
    paper = Dropout(0.5, "paper", rng=0)
    out = paper.forward(x, train=True)
    assert set(np.unique(out)) <= {0.0, 1.0}
    assert abs(out.mean() - 0.5) < 0.01
    np.testing.assert_array_equal(paper.forward(x, train=False), 0.5 * x)
    inv = Dropout(0.5, "inverted", rng=0)
    out = inv.forward(x, train=True)
    assert set(np.unique(out)) <= {0.0, 2.0}
    np.testing.assert_array_equal(inv.forward(x, train=False), x)
    # Same seed, same masks: reproducible.
    a = Dropout(0.5, rng=7).forward(x)
    b = Dropout(0.5, rng=7).forward(x)
    np.testing.assert_array_equal(a, b)


def test_dropout_frozen_mask_and_backward():
    mask = (np.arange(12).reshape(3, 4) % 3 == 0).astype(np.float64)
    d = Dropout(0.5, rng=0)
    d.freeze(mask)
    x = np.arange(12.0).reshape(3, 4) + 1
    np.testing.assert_array_equal(d.forward(x), x * mask)
    np.testing.assert_array_equal(d.backward(np.ones_like(x)), mask)


def test_softmax_xent_values_and_stability():
    loss = SoftmaxCrossEntropy()
    x = np.array([[1000.0, 0.0, -1000.0], [0.0, 0.0, 0.0]])
    y = np.array([0, 2])
    val = loss.forward(x, y)
    expected = (0.0 + np.log(3)) / 2          # row 0 is certain and right; row 1 uniform
    assert np.isfinite(val) and abs(val - expected) < 1e-12
    # Naive definition on moderate logits.
    x = np.random.default_rng(6).standard_normal((4, 5))
    y = np.array([0, 1, 4, 2])
    p = np.exp(x) / np.exp(x).sum(1, keepdims=True)
    assert abs(loss.forward(x, y) - np.mean(-np.log(p[np.arange(4), y]))) < 1e-12


def test_lrn_groups_normalise_each_tower_alone():
    """groups=2: the window is clipped at the tower boundary too (the paper's
    two-GPU code), i.e. two independent LRNs over the two halves."""
    x = np.random.default_rng(11).standard_normal((2, 8, 3, 3)) * 2
    out = LocalResponseNorm(5, 1.0, 0.75, 1.0, groups=2).forward(x)
    halves = [naive_lrn(x[:, :4], 5, 1.0, 0.75, 1.0), naive_lrn(x[:, 4:], 5, 1.0, 0.75, 1.0)]
    np.testing.assert_allclose(out, np.concatenate(halves, axis=1), rtol=1e-12)
    assert not np.allclose(out, naive_lrn(x, 5, 1.0, 0.75, 1.0))
    with pytest.raises(ValueError, match="groups=3 must divide the 8 input channels"):
        LocalResponseNorm(groups=3).forward(x)
