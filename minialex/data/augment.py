"""Data augmentation (Sec. 4.1): random crops, reflections, ten-crop testing,
and PCA colour augmentation ("fancy PCA").

Every function works on a whole batch at once (vectorised NumPy, no Python
loop over images) and takes its randomness from an explicit
``numpy.random.Generator``, so a run is reproducible from a seed.

Shapes:  x: (N, C, H, W), any dtype; crops: (N, C, crop, crop)

``TrainTransform`` and ``EvalTransform`` chain the steps for the batch loader:
uint8 batch -> float32 -> minus the mean (Sec. 2) -> crop / flip -> PCA shift.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..backend import get_array_module, kernels_choice


# ---------------------------------------------------------------- crops, flips
def crop_at(x: np.ndarray, top: np.ndarray, left: np.ndarray, crop: int) -> np.ndarray:
    """Crop image i at ``(top[i], left[i])``; one gather for the whole batch.

    Shapes:  x: (N, C, H, W); top, left: (N,) int -> (N, C, crop, crop)
    """
    N, C, H, W = x.shape
    win = sliding_window_view(x, (crop, crop), axis=(2, 3))  # (N, C, H-crop+1, W-crop+1, crop, crop), a view
    n = np.arange(N)[:, None]
    c = np.arange(C)[None, :]
    return win[n, c, top[:, None], left[:, None]]  # (N, C, crop, crop)


def random_crop(x, crop, rng, pad=0, return_offsets=False):
    """A random ``crop x crop`` patch of each image (Sec. 4.1).

    ``pad`` > 0 first pads every side with ``pad`` zeros (for CIFAR-sized
    inputs: a 32x32 image, pad 4, crop 32; applied after mean subtraction,
    the zeros are the mean colour). Offsets are uniform over all positions.

    Shapes:  x: (N, C, H, W) -> (N, C, crop, crop); offsets (top, left): (N,)
    """
    N, C, H, W = x.shape
    if pad:
        x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))  # (N, C, H+2p, W+2p)
        H, W = H + 2 * pad, W + 2 * pad
    if crop > H or crop > W:
        raise ValueError(f"crop {crop} is larger than the (padded) image {H}x{W}")
    top = rng.integers(0, H - crop + 1, size=N)
    left = rng.integers(0, W - crop + 1, size=N)
    out = crop_at(x, top, left, crop)
    return (out, top, left) if return_offsets else out


def random_flip(x, rng, p=0.5, return_mask=False):
    """Reflect each image horizontally with probability ``p`` (Sec. 4.1).

    Returns a new array (the input is not modified).
    Shapes:  x: (N, C, H, W) -> (N, C, H, W); mask: (N,) bool
    """
    flip = rng.random(len(x)) < p
    out = np.array(x, copy=True)
    out[flip] = out[flip][..., ::-1]  # reverse the W axis
    return (out, flip) if return_mask else out


def center_crop(x, crop):
    """Central ``crop x crop`` patch of every image.

    Shapes:  x: (N, C, H, W) -> (N, C, crop, crop)
    """
    N, C, H, W = x.shape
    if crop > H or crop > W:
        raise ValueError(f"crop {crop} is larger than the image {H}x{W}")
    top, left = (H - crop) // 2, (W - crop) // 2
    return x[:, :, top:top + crop, left:left + crop]


def ten_crop_offsets(H, W, crop):
    """The five (top, left) positions of Sec. 4.1's test-time patches:
    top-left, top-right, bottom-left, bottom-right, centre."""
    b, r = H - crop, W - crop
    return [(0, 0), (0, r), (b, 0), (b, r), (b // 2, r // 2)]


def ten_crop(x, crop):
    """The ten test patches of Sec. 4.1: four corners and the centre, then
    the same five reflected horizontally.

    Order along axis 1: tl, tr, bl, br, centre, tl-flip, tr-flip, bl-flip,
    br-flip, centre-flip. Average the softmax over axis 1 ("averaging the
    predictions made by the network's softmax layer on the ten patches").

    Shapes:  x: (N, C, H, W) -> (N, 10, C, crop, crop)
    """
    N, C, H, W = x.shape
    if crop > H or crop > W:
        raise ValueError(f"crop {crop} is larger than the image {H}x{W}")
    five = [x[:, :, t:t + crop, l:l + crop] for t, l in ten_crop_offsets(H, W, crop)]
    five = np.stack(five, axis=1)  # (N, 5, C, crop, crop)
    return np.concatenate([five, five[..., ::-1]], axis=1)  # (N, 10, C, crop, crop)


# ---------------------------------------------------------------- PCA colour
def pca_eigen(rgb_cov):
    """Eigen-decomposition of the 3x3 RGB covariance, largest first.

    Returns
    -------
    eigvals : (3,) float64, l_1 >= l_2 >= l_3 >= 0
    eigvecs : (3, 3) float64, orthonormal columns p_1, p_2, p_3
    """
    cov = np.asarray(rgb_cov, dtype=np.float64)
    if cov.shape != (3, 3):
        raise ValueError(f"rgb_cov must be 3x3, got shape {cov.shape}")
    vals, vecs = np.linalg.eigh((cov + cov.T) / 2)  # ascending
    order = np.argsort(vals)[::-1]
    return np.clip(vals[order], 0, None), vecs[:, order]


PCA_SCALES = ("sqrt", "paper")


def pca_color_shift(n, eigvals, eigvecs, rng, std=0.1, scale="sqrt"):
    """Draw the per-image RGB shift ``[p1 p2 p3][a1 s1, a2 s2, a3 s3]^T``.

    ``a_i ~ N(0, std)`` is drawn once per image (Sec. 4.1: std 0.1).

    The paper writes the eigenvalue ``l_i`` where we write ``s_i``; read
    literally that mixes units (l_i is a variance, the shift a pixel value)
    and depends on the pixel scale. Two choices (see docs/deviations.md):

    - ``scale="sqrt"`` (default): ``s_i = sqrt(l_i)``, the standard deviation
      along p_i. The shift then has covariance ``std**2 * C``: a colour
      change of about a tenth of the natural colour spread, whatever the
      pixel scale. This is what common re-implementations effectively use.
    - ``scale="paper"``: ``s_i = l_i`` with the covariance measured on pixel
      values in [0, 1] and the shift converted back to 0..255, i.e.
      ``s_i = l_i / 255`` for ``eigvals`` measured in 0..255 units.

    Shapes:  eigvals: (3,); eigvecs: (3, 3) columns -> shift: (n, 3)
    Covariance of the shift over draws: ``P diag((std*s)^2) P^T``.
    """
    if scale not in PCA_SCALES:
        raise ValueError(f"scale must be one of {PCA_SCALES}, got {scale!r}")
    eigvals = np.asarray(eigvals, dtype=np.float64)
    s = np.sqrt(eigvals) if scale == "sqrt" else eigvals / 255.0
    alpha = rng.normal(0.0, std, size=(n, 3))  # (n, 3): a_i per image
    return (alpha * s) @ np.asarray(eigvecs).T  # (n, 3): sum_i p_i a_i s_i


def pca_color(x, eigvals, eigvecs, rng, std=0.1, scale="sqrt"):
    """Add one PCA colour shift per image to every pixel (Sec. 4.1).

    Shapes:  x: (N, 3, H, W) float -> same shape and dtype (a new array)
    """
    shift = pca_color_shift(len(x), eigvals, eigvecs, rng, std, scale).astype(x.dtype)
    return x + shift[:, :, None, None]  # (N, 3, 1, 1) broadcast over pixels


# ---------------------------------------------------------------- transforms
def channel_mean(mean_image):
    """Per-channel mean from a mean image: (3, H, W) -> (3, 1, 1)."""
    m = np.asarray(mean_image, dtype=np.float32)
    return m.reshape(m.shape[0], -1).mean(axis=1)[:, None, None]  # (3, 1, 1)


def _subtract_mean(x, mean, dtype):
    out = x.astype(dtype)  # (N, C, H, W) new array
    if mean is not None:
        m = np.asarray(mean, dtype=dtype)
        if m.ndim == 1:
            m = m[:, None, None]  # (C,) -> (C, 1, 1)
        if m.ndim != 3 or (m.shape[1:] != (1, 1) and m.shape[1:] != out.shape[2:]):
            raise ValueError(f"mean must be (C,), (C, 1, 1) or (C, H, W) with H, W = {out.shape[2:]}, "
                             f"got shape {np.shape(mean)}")
        out -= m
    return out


@dataclass
class TrainTransform:
    """Training-time pipeline for one batch (Sec. 2 + Sec. 4.1).

    ``x (N, C, H, W) uint8 -> float - mean -> [pad] -> random crop -> random
    flip -> PCA colour shift -> (N, C, crop, crop) dtype``

    Fields
    ------
    mean : (C, H, W) per-pixel mean image (the paper, Sec. 2), or (C,)/(C,1,1)
        a per-channel mean (see ``channel_mean``); None subtracts nothing.
    crop : patch size; None keeps the full image (no crop). ImageNet: 224
        from 256 (Sec. 4.1). Suggested for CIFAR (32x32): crop 32, pad 4.
    pad : zero padding on each side before cropping (after mean subtraction).
    flip : horizontal reflections with probability 0.5.
    pca : (eigvals, eigvecs) from ``pca_eigen``, or None for no colour shift.
    pca_std, pca_scale : see ``pca_color_shift``.
    dtype : output dtype (float32 for the model).
    kernels : the fast/readable switch of ``minialex.backend.kernels_choice``.
        None (default) follows ``MINIALEX_KERNELS``: "fast" uses the fused
        kernel (``data/_numba.py`` on the CPU, ``_cuda.crop_flip_shift`` on
        the GPU; one pass, identical result) for uint8 input and float32
        output, else the readable NumPy steps. Passed explicitly, "fast"
        requires the fused kernel (an error if it cannot run) and
        "reference" forces the readable steps.
    """

    mean: np.ndarray = None
    crop: int = None
    pad: int = 0
    flip: bool = True
    pca: tuple = None
    pca_std: float = 0.1
    pca_scale: str = "sqrt"
    dtype: object = np.float32
    kernels: str = None

    def __call__(self, x, rng):
        if get_array_module(x) is not np and self.augments_on_device(x):        # a CuPy uint8 batch
            return self._fused(x, rng, device=True)
        if self._use_kernel(x):
            return self._fused(x, rng)
        out = _subtract_mean(x, self.mean, self.dtype)  # (N, C, H, W)
        if self.crop is not None or self.pad:
            crop = self.crop if self.crop is not None else out.shape[2]
            out = random_crop(out, crop, rng, pad=self.pad)  # (N, C, crop, crop)
        out = np.ascontiguousarray(out)  # the crop gather already copied; a no-op then
        if self.flip:  # in place: same draws as random_flip
            flip = rng.random(len(out)) < 0.5
            out[flip] = out[flip][..., ::-1]
        if self.pca is not None:  # in place: same draws as pca_color
            shift = pca_color_shift(len(out), *self.pca, rng, std=self.pca_std, scale=self.pca_scale)
            out += shift.astype(out.dtype)[:, :, None, None]  # (N, 3, 1, 1)
        return out

    def augments_on_device(self, x):
        """True when uint8 ``x`` may be sent to the GPU as it is and augmented
        there (``_cuda.crop_flip_shift``: the same draws and the same float32
        result as the CPU kernel, with a quarter of the bytes to copy). The
        loader asks this before it copies a batch to a CuPy device."""
        return (kernels_choice(self.kernels) == "fast" and np.dtype(self.dtype) == np.float32
                and getattr(x, "dtype", None) == np.uint8)

    def _use_kernel(self, x):
        choice = kernels_choice(self.kernels)
        ok = isinstance(x, np.ndarray) and x.dtype == np.uint8 and np.dtype(self.dtype) == np.float32
        if self.kernels == "fast" and not ok:
            raise ValueError(f"kernels='fast' needs uint8 NumPy input and float32 output, got "
                             f"{type(x).__name__} {getattr(x, 'dtype', None)} -> {np.dtype(self.dtype)}")
        return ok and choice == "fast"

    def _fused(self, x, rng, device=False):
        """One numba pass (``data/_numba.py``), same draws and same float32 rounding as the NumPy
        path; with ``device=True`` one CUDA kernel (``_cuda.crop_flip_shift``) on ``x``'s GPU."""
        N, C, H, W = x.shape
        mean = np.zeros((C, H, W), np.float32) if self.mean is None else np.asarray(self.mean, np.float32)
        if mean.ndim == 1:
            mean = mean[:, None, None]  # (C,) -> (C, 1, 1)
        if mean.ndim != 3 or mean.shape[0] != C or mean.shape[1:] not in ((1, 1), (H, W)):
            raise ValueError(f"mean must be (C,), (C, 1, 1) or (C, H, W) with H, W = {(H, W)}, "
                             f"got shape {np.shape(self.mean)}")
        mean = np.ascontiguousarray(np.broadcast_to(mean, (C, H, W)))  # (C, H, W)
        P = self.pad
        if self.crop is not None or P:  # the same draws, in the same order, as random_crop
            crop = self.crop if self.crop is not None else H
            if crop > H + 2 * P or crop > W + 2 * P:
                raise ValueError(f"crop {crop} is larger than the (padded) image {H + 2 * P}x{W + 2 * P}")
            top = rng.integers(0, H + 2 * P - crop + 1, size=N)
            left = rng.integers(0, W + 2 * P - crop + 1, size=N)
            out_hw = (crop, crop)
        else:  # no crop: the whole image
            top = left = np.zeros(N, dtype=np.int64)
            out_hw = (H, W)
        flip = rng.random(N) < 0.5 if self.flip else np.zeros(N, dtype=bool)
        if self.pca is not None:
            shift = pca_color_shift(N, *self.pca, rng, std=self.pca_std, scale=self.pca_scale)
        else:
            shift = np.zeros((N, C))
        if device:
            from ..kernels import _cuda

            return _cuda.crop_flip_shift(x, mean, top, left, flip, shift, P, out_hw)   # copies mean over
        from ._numba import crop_flip_shift_f32

        out = np.empty((N, C) + out_hw, np.float32)
        crop_flip_shift_f32(np.ascontiguousarray(x), mean, top, left, flip,
                            shift.astype(np.float32), P, out)
        return out


@dataclass
class EvalTransform:
    """Test-time pipeline: minus the mean, then the centre crop or ten crops.

    ``mode="center"``: (N, C, H, W) uint8 -> (N, C, crop, crop).
    ``mode="ten"``:    -> (N*10, C, crop, crop); rows ``10*i .. 10*i+9`` are
    image i's patches in ``ten_crop`` order; average the softmax with
    ``probs.reshape(N, 10, K).mean(axis=1)`` (Sec. 4.1).
    ``crop=None`` keeps the full image (with "ten": the largest square, so the
    five positions collapse to the centre on square images).
    """

    mean: np.ndarray = None
    crop: int = None
    mode: str = "center"
    dtype: object = np.float32

    def __post_init__(self):
        if self.mode not in ("center", "ten"):
            raise ValueError(f"EvalTransform mode must be 'center' or 'ten', got {self.mode!r}")

    def __call__(self, x, rng=None):
        out = _subtract_mean(x, self.mean, self.dtype)  # (N, C, H, W)
        if self.mode == "ten":
            N, C, H, W = out.shape
            crop = self.crop if self.crop is not None else min(H, W)
            out = ten_crop(out, crop).reshape(N * 10, C, crop, crop)  # (N, 10, C, c, c) -> (N*10, C, c, c)
        elif self.crop is not None:
            out = center_crop(out, self.crop)
        return np.ascontiguousarray(out)
