"""Sec. 2 preprocessing: short side to S, central crop; mean image and RGB covariance."""
import numpy as np
import pytest
from PIL import Image

from data_helpers import coord_image
from minialex.data import (center_crop_hwc, image_statistics, preprocess_image, short_side_size)
from minialex.data.preprocess import RunningStats


@pytest.mark.parametrize("w,h,s,expected", [
    (300, 200, 256, (384, 256)),
    (200, 300, 256, (256, 384)),
    (500, 375, 256, (341, 256)),   # 500 * 256 / 375 = 341.33
    (256, 256, 256, (256, 256)),
    (20, 10, 256, (512, 256)),     # smaller than the crop: scaled up by the same rule
    (10, 10, 32, (32, 32)),
])
def test_short_side_size(w, h, s, expected):
    assert short_side_size(w, h, s) == expected


def test_short_side_rejects_bad_values():
    with pytest.raises(ValueError, match="short_side"):
        short_side_size(10, 10, 0)


def test_central_crop_positions_without_rescale():
    # W=300, H=200, crop 100: top = 50, left = 100
    a = coord_image(300, 200)
    c = preprocess_image(Image.fromarray(a), short_side=None, crop=100)
    assert c.shape == (100, 100, 3)
    assert c[0, 0, 0] == 100 and c[0, 0, 1] == 50
    assert c[-1, -1, 0] == 199 and c[-1, -1, 1] == 149


def test_odd_margin_goes_bottom_right():
    a = coord_image(11, 11)
    c = center_crop_hwc(a, 8)  # margin 3: top/left 1
    assert c[0, 0, 0] == 1 and c[0, 0, 1] == 1


def test_short_side_then_central_crop_geometry():
    # 60x40 (W x H): left half red, right half blue. Short side 256 -> 384x256;
    # the central 256 columns are 64..319, so the colour edge (x=192) lands at column 128.
    a = np.zeros((40, 60, 3), np.uint8)
    a[:, :30, 0] = 255
    a[:, 30:, 2] = 255
    c = preprocess_image(Image.fromarray(a), short_side=256, crop=256)
    assert c.shape == (256, 256, 3)
    assert (c[:, :120, 0] == 255).all() and (c[:, :120, 2] == 0).all()
    assert (c[:, 137:, 2] == 255).all() and (c[:, 137:, 0] == 0).all()


def test_tall_image_crops_vertically():
    # 40x60 (W x H) image: top half green, bottom half white; edge lands on row 128.
    a = np.zeros((60, 40, 3), np.uint8)
    a[:30, :, 1] = 255
    a[30:] = 255
    c = preprocess_image(Image.fromarray(a), short_side=64, crop=64)
    assert c.shape == (64, 64, 3)  # 40x60 -> 64x96, rows 16..79 kept, edge (48) at row 32
    assert (c[:30, :, 0] == 0).all() and (c[35:, :, 0] == 255).all()


def test_small_image_gets_a_full_crop(tmp_path):
    p = tmp_path / "tiny.png"
    Image.fromarray(coord_image(7, 5)).save(p)
    c = preprocess_image(p, short_side=256, crop=256)
    assert c.shape == (256, 256, 3) and c.dtype == np.uint8


def test_crop_larger_than_image_is_an_error():
    with pytest.raises(ValueError, match="larger than the image"):
        center_crop_hwc(np.zeros((10, 20, 3)), 16)


def test_mean_image_and_covariance_match_naive():
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (37, 3, 6, 5), dtype=np.uint8)
    mean, cov = image_statistics(x, batch=8)
    np.testing.assert_allclose(mean, x.astype(np.float64).mean(axis=0), rtol=1e-6)
    pixels = x.transpose(1, 0, 2, 3).reshape(3, -1).astype(np.float64)  # (3, N*H*W)
    np.testing.assert_allclose(cov, np.cov(pixels, bias=True), rtol=1e-10, atol=1e-8)
    # a per-pixel loop for one entry, the definition itself
    m = [pixels[c].mean() for c in range(3)]
    c01 = sum((pixels[0, i] - m[0]) * (pixels[1, i] - m[1]) for i in range(pixels.shape[1])) / pixels.shape[1]
    assert abs(cov[0, 1] - c01) < 1e-8 * max(1.0, abs(c01))


def test_running_stats_rejects_non_rgb():
    with pytest.raises(ValueError, match="RGB"):
        RunningStats().add(np.zeros((2, 1, 4, 4), np.uint8))
