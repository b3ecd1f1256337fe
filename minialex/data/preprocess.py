"""The paper's preprocessing (Sec. 2): short side to 256, central 256x256 crop,
and the training-set statistics used later (mean image, RGB covariance).

    "we down-sampled the images to a fixed resolution of 256 x 256. Given a
    rectangular image, we first rescaled the image such that the shorter side
    was of length 256, and then cropped out the central 256x256 patch"
    "subtract the mean activity over the training set from each pixel"

Choices where the paper is silent (documented in docs/deviations.md):
- resampling filter: Pillow's bilinear filter, which is antialiased when it
  shrinks (its support widens with the scale factor);
- the long side is ``round(long * short_side / short)``; the central crop
  starts at ``((H - crop) // 2, (W - crop) // 2)`` (the extra pixel of an odd
  margin goes to the bottom/right);
- images smaller than the crop are scaled *up* by the same short-side rule,
  so every image yields a full crop.
"""
from __future__ import annotations

import numpy as np
from PIL import Image

from .folder import load_rgb, to_rgb


def short_side_size(width: int, height: int, short_side: int) -> tuple:
    """Return ``(new_width, new_height)`` with the shorter side == ``short_side``."""
    if short_side <= 0:
        raise ValueError(f"short_side must be positive, got {short_side}")
    if width <= 0 or height <= 0:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    if width <= height:
        return short_side, max(short_side, int(round(height * short_side / width)))
    return max(short_side, int(round(width * short_side / height))), short_side


def resize_short_side(im: Image.Image, short_side: int) -> Image.Image:
    """Rescale ``im`` so that its shorter side is ``short_side`` (Sec. 2)."""
    size = short_side_size(im.width, im.height, short_side)
    if size == im.size:
        return im
    return im.resize(size, Image.BILINEAR)


def center_crop_hwc(a: np.ndarray, crop: int) -> np.ndarray:
    """Central ``crop x crop`` patch of one image.

    Shapes:  a: (H, W, C) -> (crop, crop, C)
    """
    H, W = a.shape[:2]
    if crop > H or crop > W:
        raise ValueError(f"crop {crop} is larger than the image ({H}x{W}); rescale first")
    top, left = (H - crop) // 2, (W - crop) // 2
    return a[top:top + crop, left:left + crop]


def preprocess_image(src, short_side=256, crop=256) -> np.ndarray:
    """Decode (path or PIL image), convert to RGB, rescale, centre-crop.

    ``short_side=None`` skips the rescale; ``crop=None`` skips the crop (then
    the images of a set need not share a size, and callers must check).

    Returns
    -------
    np.ndarray, uint8, (crop, crop, 3) HWC
    """
    im = load_rgb(src) if not isinstance(src, Image.Image) else to_rgb(src)
    if short_side is not None:
        im = resize_short_side(im, short_side)
    a = np.asarray(im, dtype=np.uint8)  # (H, W, 3)
    if crop is not None:
        a = center_crop_hwc(a, crop)
    return a


def pixel_moments(a: np.ndarray):
    """Sum and sum of outer products of the RGB values of one image.

    Shapes:  a: (H, W, 3) uint8 -> (3,) float64, (3, 3) float64
    Cheap enough to run in the decoding threads (the matmul releases the GIL).
    """
    px = a.reshape(-1, 3).astype(np.float64)  # (H*W, 3)
    return px.sum(axis=0), px.T @ px


class RunningStats:
    """Streaming mean image and 3x3 RGB covariance over a set of images.

    ``add`` takes a batch (N, 3, H, W) uint8; ``add_image`` one (H, W, 3)
    image with its ``pixel_moments``. Sums are exact (integers) or float64,
    so the result does not depend on the batching beyond rounding.

    mean_image: (3, H, W) float32, mean over images of each pixel (Sec. 2)
    rgb_mean:   (3,) float64, mean RGB value over all pixels
    rgb_cov:    (3, 3) float64, covariance of the RGB values of all pixels of
                all images, the matrix whose PCA drives Sec. 4.1's colour
                augmentation
    """

    def __init__(self):
        self.n_images = 0
        self.n_pixels = 0
        self._sum_img = None   # (H, W, 3) int64
        self._sum_rgb = np.zeros(3)
        self._sum_outer = np.zeros((3, 3))

    def add_image(self, a: np.ndarray, moments=None):
        """Add one (H, W, 3) uint8 image; ``moments`` = ``pixel_moments(a)`` if already computed."""
        H, W, C = a.shape
        if C != 3:
            raise ValueError(f"expected an RGB image (H, W, 3), got shape {a.shape}")
        if self._sum_img is None:
            self._sum_img = np.zeros((H, W, 3), dtype=np.int64)
        self._sum_img += a
        s, outer = moments if moments is not None else pixel_moments(a)
        self._sum_rgb += s
        self._sum_outer += outer
        self.n_images += 1
        self.n_pixels += H * W

    def add(self, x: np.ndarray):
        """Add a batch (N, 3, H, W) uint8."""
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected RGB images (N, 3, H, W), got shape {x.shape}")
        N, C, H, W = x.shape
        if self._sum_img is None:
            self._sum_img = np.zeros((H, W, 3), dtype=np.int64)
        self._sum_img += x.sum(axis=0, dtype=np.int64).transpose(1, 2, 0)  # (3, H, W) -> (H, W, 3)
        px = x.transpose(1, 0, 2, 3).reshape(3, -1).astype(np.float64)  # (3, N*H*W)
        self._sum_rgb += px.sum(axis=1)
        self._sum_outer += px @ px.T
        self.n_images += N
        self.n_pixels += N * H * W

    @property
    def mean_image(self) -> np.ndarray:
        return (self._sum_img / self.n_images).astype(np.float32).transpose(2, 0, 1)  # -> (3, H, W)

    @property
    def rgb_mean(self) -> np.ndarray:
        return self._sum_rgb / self.n_pixels

    @property
    def rgb_cov(self) -> np.ndarray:
        m = self.rgb_mean
        # population covariance E[xx^T] - mm^T over all pixels
        return self._sum_outer / self.n_pixels - np.outer(m, m)


def image_statistics(x: np.ndarray, batch=256):
    """Mean image and RGB covariance of an in-memory uint8 set.

    Shapes:  x: (N, 3, H, W) uint8 -> mean (3, H, W) float32, cov (3, 3) float64
    """
    st = RunningStats()
    for i in range(0, len(x), batch):
        st.add(np.asarray(x[i:i + batch]))
    return st.mean_image, st.rgb_cov
