# %% [markdown]
# # Sec. 4.1 Data augmentation
#
# **The claim.** Two label-preserving transformations enlarge the training set at almost no cost:
#
# 1. **Random 224 x 224 patches and their horizontal reflections** from the 256 x 256 images, a factor
#    of 2048 more training data. At test time the net averages its softmax over **ten patches**: the
#    four corners and the centre, and their reflections.
# 2. **PCA colour augmentation**: add to every pixel of an image the multiple
#    $[p_1, p_2, p_3][\alpha_1\lambda_1, \alpha_2\lambda_2, \alpha_3\lambda_3]^T$ of the principal
#    components of the RGB values over the training set, with $\alpha_i \sim N(0, 0.1)$ drawn once per
#    image per presentation. It lowers top-1 error by over 1%.
#
# This notebook runs `minialex.data.augment` on real ImageNet photos (Imagenette): crops and flips,
# the ten test crops, and the colour PCA (eigenvalues, eigenvectors, examples).
#
# Data: the 8 bundled Imagenette photos (`notebooks/images/`), preprocessed to 256 x 256 (Sec. 2);
# the RGB covariance comes from 400 Imagenette training photos when `../shared/data` is present,
# else from the 8 bundled ones.

# %%
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from minialex.data import (RunningStats, list_image_folder, pca_color, pca_color_shift, pca_eigen,
                           preprocess_image, random_crop, random_flip, ten_crop)

t_start = time.perf_counter()
IMAGES = sorted(Path("images").glob("*.jpg"))
SHARED = Path("..").resolve().parent / "shared" / "data" / "imagenette2-224"
photos = np.stack([preprocess_image(p, 256, 256) for p in IMAGES]).transpose(0, 3, 1, 2)  # (8, 3, 256, 256)
print("photos:", photos.shape, photos.dtype)


def rgb(a):
    """(3, H, W) uint8 or float in 0..255 -> (H, W, 3) in [0, 1] for imshow."""
    return np.clip(np.asarray(a, dtype=np.float32).transpose(1, 2, 0) / 255, 0, 1)

# %% [markdown]
# ## 1. Random crops and reflections
#
# Each training presentation takes a 224 x 224 patch at a uniformly random position and mirrors it
# left-right with probability 1/2 (`random_crop`, `random_flip`; a seeded generator makes it
# reproducible). Eight presentations of the same photo:

# %%
rng = np.random.default_rng(0)
same = np.repeat(photos[1:2], 8, axis=0)                                   # (8, 3, 256, 256)
crops, top, left = random_crop(same, 224, rng, return_offsets=True)       # (8, 3, 224, 224)
crops, flipped = random_flip(crops, rng, return_mask=True)
fig, axes = plt.subplots(1, 8, figsize=(15, 2.3))
for ax, c, t, l, f in zip(axes, crops, top, left, flipped):
    ax.imshow(rgb(c)); ax.set_title(f"({t},{l}){' flip' if f else ''}", fontsize=8); ax.axis("off")
fig.suptitle("random 224x224 patches of one 256x256 photo (top, left offsets)")
plt.show()
positions = 256 - 224 + 1
print(f"offsets 0..{256 - 224}: {positions} x {positions} positions x 2 reflections = {positions ** 2 * 2:,} "
      f"distinct patches (the paper counts 32 x 32 x 2 = {32 * 32 * 2:,})")

# %% [markdown]
# ## 2. The ten test patches
#
# At test time the four corner patches and the centre patch, and the reflections of all five
# (`ten_crop`), go through the net and their softmax outputs are averaged.

# %%
ten = ten_crop(photos[:1], 224)                                            # (1, 10, 3, 224, 224)
labels = ["top-left", "top-right", "bottom-left", "bottom-right", "centre"]
fig, axes = plt.subplots(2, 5, figsize=(12, 5))
for i, ax in enumerate(axes.flat):
    ax.imshow(rgb(ten[0, i])); ax.axis("off")
    ax.set_title(labels[i % 5] + (" (flipped)" if i >= 5 else ""), fontsize=9)
plt.show()
print("ten_crop:", ten.shape, "| patch 5 is patch 0 mirrored:", np.array_equal(ten[0, 5], ten[0, 0][..., ::-1]))

# %% [markdown]
# ## 3. PCA colour augmentation
#
# First the 3 x 3 covariance of the RGB values of all pixels of the training set, and its
# eigen-decomposition (`pca_eigen`): eigenvectors $p_i$ (columns) and eigenvalues $\lambda_i$.

# %%
stats = RunningStats()
if SHARED.is_dir():
    paths = list_image_folder(SHARED / "train", max_per_class=40).paths
else:
    paths = IMAGES
for i in range(0, len(paths), 50):
    stats.add(np.stack([preprocess_image(p, 256, 256) for p in paths[i:i + 50]]).transpose(0, 3, 1, 2))
eigvals, eigvecs = pca_eigen(stats.rgb_cov)
print(f"RGB covariance over {stats.n_images} photos (0..255 units):\n{np.round(stats.rgb_cov, 1)}")
print("eigenvalues  :", np.round(eigvals, 1), f"-> {eigvals[0] / eigvals.sum():.1%} of the variance in p1")
print("eigenvectors (columns p1, p2, p3):\n", np.round(eigvecs, 3))
print("std along each p_i (sqrt of eigenvalue):", np.round(np.sqrt(eigvals), 1))

# %% [markdown]
# The first component is close to (1, 1, 1)/sqrt(3) (up to sign): **brightness**. The other two are
# colour contrasts. Shifting an image along them changes the intensity and colour of the illumination
# but not the object, which is the invariance the paper wants.
#
# For each image, $\alpha \sim N(0, 0.1)$ is drawn once and the same RGB shift is added to every
# pixel. minialex scales by $\sqrt{\lambda_i}$, the standard deviation along $p_i$ (the paper writes
# $\lambda_i$, which mixes units; docs/deviations.md, item 8), so the shifts have covariance
# $0.1^2 \times$ the pixel covariance. Checked over 100,000 draws:

# %%
shifts = pca_color_shift(100_000, eigvals, eigvecs, np.random.default_rng(1))      # (100000, 3)
print("covariance of the shifts / covariance of the pixels (should be 0.01 everywhere):")
print(np.round(np.cov(shifts.T) / stats.rgb_cov, 4))
print("typical shift size (std per channel, 0..255 units):", np.round(shifts.std(axis=0), 1))

# %% [markdown]
# Examples: one photo with eight colour draws. To make the effect visible the second row uses a
# standard deviation of 0.5 instead of 0.1.

# %%
fig, axes = plt.subplots(2, 8, figsize=(15, 4.2))
base = np.repeat(photos[6:7].astype(np.float32), 8, axis=0)                # (8, 3, 256, 256)
for row, std in enumerate([0.1, 0.5]):
    shifted = pca_color(base, eigvals, eigvecs, np.random.default_rng(2), std=std)
    for ax, im in zip(axes[row], shifted):
        ax.imshow(rgb(im)); ax.axis("off")
        d = im[:, 0, 0] - base[0, :, 0, 0]
        ax.set_title(f"shift {np.round(d).astype(int)}", fontsize=7)
    axes[row, 0].text(-30, 128, f"std {std}", rotation=90, va="center", fontsize=10)
fig.suptitle("PCA colour augmentation: the same photo under eight random illuminations (RGB shift in titles)")
plt.show()

# %% [markdown]
# The eigenvectors drawn in RGB space, each scaled by its standard deviation, over a sample of the
# pixels of the photos:

# %%
px = photos.transpose(1, 0, 2, 3).reshape(3, -1)[:, ::997].astype(np.float64)      # (3, ~4000) sample
fig = plt.figure(figsize=(5, 4.5))
ax = fig.add_subplot(projection="3d")
ax.scatter(*px, c=(px.T / 255).clip(0, 1), s=2)
m = stats.rgb_mean
for i in range(3):
    v = eigvecs[:, i] * np.sqrt(eigvals[i]) * 2
    ax.plot(*np.stack([m - v, m + v]).T, lw=3, label=f"p{i + 1}, 2 sqrt(l{i + 1})")
ax.set_xlabel("R"); ax.set_ylabel("G"); ax.set_zlabel("B"); ax.legend(fontsize=8)
plt.show()
print(f"notebook ran in {time.perf_counter() - t_start:.1f} s wall, {time.process_time():.1f} s CPU")


# %% [markdown]
# ## Full scale, beside this miniature
#
# Everything above is this notebook's **miniature**, run live in about a minute. Below is the
# **full-scale** result, read from `docs/results/augment/` (not computed here): Sec. 4.1 at full scale: the cifar AlexNet with and without crops and flips, two seeds each, on the full CIFAR-10, with the train/test gap.
# `docs/results.md` has every claim; `python -m minialex.reproduce augment --quick` runs the same
# experiment's own miniature, and without `--quick` the full run (hours on a CPU).

# %%
from minialex.reproduce.published import show

show("augment")
