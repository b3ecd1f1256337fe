"""Sec. 4.1 augmentation: crops, flips, ten-crop, PCA colour; and mean subtraction (Sec. 2)."""
import numpy as np
import pytest

from minialex.data import (EvalTransform, TrainTransform, center_crop, channel_mean, crop_at,
                           pca_color, pca_color_shift, pca_eigen, random_crop, random_flip, ten_crop)


def batch(N=5, C=3, H=9, W=11, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (N, C, H, W)).astype(np.uint8)


def test_crop_at_matches_loop():
    x = batch()
    top, left = np.array([0, 1, 2, 3, 0]), np.array([5, 0, 2, 1, 3])
    out = crop_at(x, top, left, 6)
    for i in range(len(x)):
        np.testing.assert_array_equal(out[i], x[i, :, top[i]:top[i] + 6, left[i]:left[i] + 6])


def test_random_crop_offsets_and_content():
    x = batch(N=400)
    out, top, left = random_crop(x, 7, np.random.default_rng(3), return_offsets=True)
    assert out.shape == (400, 3, 7, 7)
    assert top.min() == 0 and top.max() == 9 - 7 and left.min() == 0 and left.max() == 11 - 7
    for i in range(0, 400, 37):
        np.testing.assert_array_equal(out[i], x[i, :, top[i]:top[i] + 7, left[i]:left[i] + 7])


def test_random_crop_with_padding():
    x = np.ones((300, 3, 4, 4), np.float32)
    out, top, left = random_crop(x, 4, np.random.default_rng(0), pad=2, return_offsets=True)
    assert top.max() == 4 and left.max() == 4
    for i in range(300):
        padded = np.zeros((3, 8, 8), np.float32)
        padded[:, 2:6, 2:6] = 1
        np.testing.assert_array_equal(out[i], padded[:, top[i]:top[i] + 4, left[i]:left[i] + 4])


def test_random_crop_too_large():
    with pytest.raises(ValueError, match="larger"):
        random_crop(batch(), 10, np.random.default_rng(0))


def test_random_flip_matches_loop_and_keeps_input():
    x = batch(N=64)
    x0 = x.copy()
    out, mask = random_flip(x, np.random.default_rng(5), return_mask=True)
    np.testing.assert_array_equal(x, x0)
    assert 10 < mask.sum() < 54
    for i in range(64):
        expected = x[i, :, :, ::-1] if mask[i] else x[i]
        np.testing.assert_array_equal(out[i], expected)


def test_center_crop():
    x = batch(H=9, W=12)
    np.testing.assert_array_equal(center_crop(x, 5), x[:, :, 2:7, 3:8])


def test_ten_crop_positions():
    x = batch(N=2, H=8, W=10)
    c = 5
    out = ten_crop(x, c)
    assert out.shape == (2, 10, 3, 5, 5)
    positions = [(0, 0), (0, 5), (3, 0), (3, 5), (1, 2)]  # tl, tr, bl, br, centre
    for n in range(2):
        for k, (t, l) in enumerate(positions):
            patch = x[n, :, t:t + c, l:l + c]
            np.testing.assert_array_equal(out[n, k], patch)
            np.testing.assert_array_equal(out[n, k + 5], patch[:, :, ::-1])


def test_pca_eigen_orthonormal_and_reconstructs():
    rng = np.random.default_rng(0)
    A = rng.normal(size=(3, 3))
    cov = A @ A.T
    vals, vecs = pca_eigen(cov)
    np.testing.assert_allclose(vecs.T @ vecs, np.eye(3), atol=1e-12)
    assert vals[0] >= vals[1] >= vals[2] >= 0
    np.testing.assert_allclose(vecs @ np.diag(vals) @ vecs.T, cov, atol=1e-10)
    for i in range(3):
        np.testing.assert_allclose(cov @ vecs[:, i], vals[i] * vecs[:, i], atol=1e-10)


@pytest.mark.parametrize("scale", ["sqrt", "paper"])
def test_pca_shift_covariance(scale):
    cov = np.array([[3000., 2700., 2400.], [2700., 2900., 2600.], [2400., 2600., 3100.]])
    vals, vecs = pca_eigen(cov)
    shift = pca_color_shift(200_000, vals, vecs, np.random.default_rng(0), std=0.1, scale=scale)
    s = np.sqrt(vals) if scale == "sqrt" else vals / 255.0
    expected = vecs @ np.diag((0.1 * s) ** 2) @ vecs.T   # Cov of P (a * s), a_i ~ N(0, 0.1)
    got = np.cov(shift.T)
    np.testing.assert_allclose(got, expected, rtol=0.02, atol=0.02 * expected[0, 0])
    np.testing.assert_allclose(shift.mean(0), 0, atol=0.02 * np.sqrt(expected[0, 0]))
    if scale == "sqrt":  # the sqrt reading gives std^2 times the data covariance
        np.testing.assert_allclose(got, 0.01 * cov, rtol=0.03)
    # the coefficients along each eigenvector are independent N(0, 0.1 * s_i)
    coef = shift @ vecs  # (n, 3)
    np.testing.assert_allclose(coef.std(0), 0.1 * s, rtol=0.01)


def test_pca_color_one_shift_per_image():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 3, 5, 6)).astype(np.float32)
    vals, vecs = np.array([100., 10., 1.]), np.eye(3)
    out = pca_color(x, vals, vecs, np.random.default_rng(9))
    d = out - x
    assert np.allclose(d, d[:, :, :1, :1], atol=1e-5)                    # same shift on every pixel
    expected = pca_color_shift(4, vals, vecs, np.random.default_rng(9))
    np.testing.assert_allclose(d[:, :, 0, 0], expected, rtol=1e-5, atol=1e-5)
    assert len({tuple(np.round(r, 4)) for r in d[:, :, 0, 0]}) == 4       # a fresh draw per image
    with pytest.raises(ValueError, match="scale"):
        pca_color_shift(1, vals, vecs, rng, scale="bogus")


def test_mean_subtraction_per_pixel_and_channel():
    x = batch(N=6)
    mean = x.astype(np.float32).mean(0)  # (3, H, W)
    out = TrainTransform(mean=mean, flip=False)(x, np.random.default_rng(0))
    np.testing.assert_allclose(out, x.astype(np.float32) - mean, atol=1e-5)
    np.testing.assert_allclose(out.mean(0), 0, atol=1e-4)  # the training set is centred
    cm = channel_mean(mean)
    assert cm.shape == (3, 1, 1)
    out = EvalTransform(mean=cm)(x)
    np.testing.assert_allclose(out, x.astype(np.float32) - x.astype(np.float32).mean((0, 2, 3))[:, None, None],
                               atol=1e-4)
    with pytest.raises(ValueError, match="mean"):
        TrainTransform(mean=np.zeros((3, 4, 4)))(x, np.random.default_rng(0))


def test_train_transform_is_the_composition():
    x = batch(N=8, H=10, W=10)
    mean = x.astype(np.float32).mean(0)
    vals, vecs = pca_eigen(np.diag([50., 20., 5.]))
    tf = TrainTransform(mean=mean, crop=8, flip=True, pca=(vals, vecs))
    out = tf(x, np.random.default_rng(4))
    assert out.shape == (8, 3, 8, 8) and out.dtype == np.float32
    rng = np.random.default_rng(4)  # replay the same draws step by step
    ref = random_crop(x.astype(np.float32) - mean, 8, rng)
    ref = random_flip(ref, rng)
    ref = pca_color(ref, vals, vecs, rng)
    np.testing.assert_allclose(out, ref, atol=1e-4)


def test_eval_transform_ten_rows():
    x = batch(N=3, H=10, W=10)
    mean = x.astype(np.float32).mean(0)
    out = EvalTransform(mean=mean, crop=8, mode="ten")(x)
    assert out.shape == (30, 3, 8, 8)
    ref = ten_crop(x.astype(np.float32) - mean, 8)  # (3, 10, 3, 8, 8)
    np.testing.assert_allclose(out.reshape(3, 10, 3, 8, 8), ref, atol=1e-5)
    with pytest.raises(ValueError, match="mode"):
        EvalTransform(mode="five")


@pytest.mark.parametrize("crop,pad,flip,pca,mean_kind,hw", [
    (8, 0, True, True, "pixel", (10, 12)),
    (32, 4, True, True, "pixel", (32, 32)),
    (None, 0, True, False, "channel", (9, 7)),
    (None, 2, False, True, None, (8, 8)),
    (5, 1, True, False, "pixel", (6, 6)),
])
def test_fused_numba_path_equals_readable_path(crop, pad, flip, pca, mean_kind, hw):
    x = batch(N=17, H=hw[0], W=hw[1], seed=2)
    mean = {"pixel": x.astype(np.float32).mean(0), "channel": np.array([120., 100., 90.], np.float32),
            None: None}[mean_kind]
    kw = dict(mean=mean, crop=crop, pad=pad, flip=flip,
              pca=pca_eigen(np.array([[90., 60, 40], [60, 80, 50], [40, 50, 70]])) if pca else None)
    fast = TrainTransform(**kw, kernels="fast")(x, np.random.default_rng(11))
    slow = TrainTransform(**kw, kernels="reference")(x, np.random.default_rng(11))
    assert fast.dtype == slow.dtype == np.float32
    np.testing.assert_array_equal(fast, slow)  # bit for bit: same draws, same float32 rounding


def test_fused_path_refuses_what_it_cannot_do():
    with pytest.raises(ValueError, match="kernels='fast' needs"):
        TrainTransform(kernels="fast", dtype=np.float64)(batch(), np.random.default_rng(0))
    with pytest.raises(ValueError, match="kernels must be"):
        TrainTransform(kernels="cuda")(batch(), np.random.default_rng(0))
