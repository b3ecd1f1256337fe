# %% [markdown]
# # Sec. 2 The dataset
#
# **The claim.** ImageNet images have variable resolution, but the net needs a constant input size,
# so every image is down-sampled to **256 x 256**: rescale it so that the **shorter side is 256**,
# then crop out the **central 256 x 256 patch**. The only other preprocessing is to **subtract the
# mean activity over the training set from each pixel**; the net trains on the centred raw RGB
# values. Errors are reported as **top-1** and **top-5**.
#
# This notebook runs those steps (`minialex.data.preprocess`) on real ImageNet photos from
# Imagenette: the short-side rescale and the centre crop, the mean image, and top-1/top-5.
#
# Data: 8 Imagenette validation photos bundled in `notebooks/images/` (see `images/_make.py`), and,
# when `../shared/data/imagenette2-224` is present, 40 training photos per class (400) for the mean
# image. Imagenette is stored at a short side of 224, so here the Sec. 2 step scales *up*.

# %%
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from PIL import Image

from minialex.data import (RunningStats, center_crop_hwc, list_image_folder, preprocess_image,
                           resize_short_side, short_side_size)

t_start = time.perf_counter()
IMAGES = sorted(Path("images").glob("*.jpg"))
SHARED = Path("..").resolve().parent / "shared" / "data" / "imagenette2-224"
print(len(IMAGES), "bundled photos:", [p.stem.split("_", 1)[1] for p in IMAGES])

# %% [markdown]
# ## 1. Shorter side to 256, then the central 256 x 256 patch
#
# The stored Imagenette photos are already square, so to see the rectangular case we first cut a
# landscape strip (224 x 150) out of one of them: this stands for a typical 4:3 or 3:2 photo. The
# rescale sends 150 -> 256 and the long side to round(224 * 256 / 150) = 382; the crop keeps the
# middle 256 columns.

# %%
photo = Image.open(IMAGES[4]).convert("RGB")                         # a real photo, 224 x 224
strip = photo.crop((0, 40, 224, 190))                                # (left, top, right, bottom): 224 x 150
print("strip (W, H):", strip.size, "-> rescaled (W, H):", short_side_size(*strip.size, 256))
rescaled = resize_short_side(strip, 256)
crop = center_crop_hwc(np.asarray(rescaled), 256)                    # (256, 256, 3) uint8
same = preprocess_image(strip, short_side=256, crop=256)             # the two steps in one call
print("crop:", crop.shape, crop.dtype, "| preprocess_image gives the same pixels:", np.array_equal(crop, same))

fig, axes = plt.subplots(1, 3, figsize=(12, 3.6), gridspec_kw={"width_ratios": [224, 382, 256]})
axes[0].imshow(strip); axes[0].set_title(f"input {strip.size[0]}x{strip.size[1]}")
axes[1].imshow(rescaled); axes[1].set_title(f"short side 256: {rescaled.size[0]}x{rescaled.size[1]}")
left = (rescaled.size[0] - 256) // 2
axes[1].add_patch(plt.Rectangle((left, 0), 256, 255, fill=False, ec="yellow", lw=2))
axes[2].imshow(crop); axes[2].set_title("central 256x256 patch")
for ax in axes:
    ax.set_xticks([]); ax.set_yticks([])
plt.show()

# %% [markdown]
# Every bundled photo through the same function: square 224 x 224 photos become 256 x 256 (scaled up
# by 256/224; the crop then removes nothing).

# %%
prepped = np.stack([preprocess_image(p, 256, 256) for p in IMAGES])   # (8, 256, 256, 3) uint8
print("batch:", prepped.shape, prepped.dtype)
fig, axes = plt.subplots(1, len(IMAGES), figsize=(14, 2.2))
for ax, im, p in zip(axes, prepped, IMAGES):
    ax.imshow(im); ax.set_title(p.stem.split("_", 1)[1], fontsize=8); ax.axis("off")
plt.show()

# %% [markdown]
# ## 2. The mean image
#
# "Subtract the mean activity over the training set from each pixel": minialex computes a **mean
# image** (3 x 256 x 256), pixel by pixel, over the preprocessed training set (`RunningStats`
# streams it in float64), and the RGB covariance that Sec. 4.1's colour augmentation needs.

# %%
stats = RunningStats()
if SHARED.is_dir():
    folder = list_image_folder(SHARED / "train", max_per_class=40)
    source = f"{len(folder)} Imagenette training photos ({len(folder.classes)} classes)"
    paths = folder.paths
else:
    source = f"the {len(IMAGES)} bundled photos (../shared/data is absent)"
    paths = IMAGES
for i in range(0, len(paths), 50):
    batch = np.stack([preprocess_image(p, 256, 256) for p in paths[i:i + 50]])   # (B, 256, 256, 3)
    stats.add(batch.transpose(0, 3, 1, 2))                                      # (B, 3, 256, 256)
mean_image = stats.mean_image                                                   # (3, 256, 256) float32
print(f"mean image over {source}: shape {mean_image.shape}")
print("mean RGB over all pixels:", np.round(stats.rgb_mean, 1))
print("RGB covariance:\n", np.round(stats.rgb_cov, 1))

# %%
x = prepped[0].transpose(2, 0, 1).astype(np.float32)                            # (3, 256, 256)
centred = x - mean_image                                                        # what the net sees
print(f"centred image: mean {centred.mean():+.1f}, range [{centred.min():.0f}, {centred.max():.0f}]")

def show(a):
    """(3, H, W) float -> (H, W, 3) in [0, 1] for display, stretched to its own range."""
    a = a.transpose(1, 2, 0)
    return (a - a.min()) / (a.max() - a.min() + 1e-8)

fig, axes = plt.subplots(1, 3, figsize=(10, 3.4))
axes[0].imshow(prepped[0]); axes[0].set_title("preprocessed photo")
axes[1].imshow(mean_image.transpose(1, 2, 0) / 255); axes[1].set_title("mean image (true colours)")
axes[2].imshow(show(centred)); axes[2].set_title("photo - mean (stretched)")
for ax in axes:
    ax.axis("off")
plt.show()
q = mean_image.shape[1] // 4
print(f"mean brightness: top quarter {mean_image[:, :q].mean():.1f}, middle {mean_image[:, q:-q].mean():.1f}, "
      f"bottom quarter {mean_image[:, -q:].mean():.1f}; spread over pixels (std) {mean_image.mean(0).std():.1f}")

# %% [markdown]
# The mean image is smooth: individual objects average out, and what remains is the typical
# brightness and colour at each position (photos are taken the right way up, so the top and bottom
# can differ; the numbers below say by how much in this set). It is subtracted from every image, in
# training and at test time.
#
# ## 3. Top-1 and top-5 error
#
# The top-5 error is the fraction of test images whose correct label is **not among the five labels
# the model considers most probable**. A small worked example with made-up scores for 4 images and 10
# classes (the paper's tables use 1000):

# %%
scores = np.random.default_rng(0).standard_normal((4, 10))
labels = np.array([int(scores[0].argmax()), int(np.argsort(scores[1])[-3]), int(np.argsort(scores[2])[-7]),
                   int(np.argsort(scores[3])[-5])])
rank = (scores > scores[np.arange(4), labels][:, None]).sum(axis=1) + 1           # 1 = the top guess
try:
    from minialex.metrics import topk_error
    top1, top5 = topk_error(scores, labels, 1), topk_error(scores, labels, 5)
except ImportError:                                                              # before minialex.metrics
    top1, top5 = float((rank > 1).mean()), float((rank > 5).mean())
print("rank of the true label per image:", rank)
print(f"top-1 error {top1:.2f}, top-5 error {top5:.2f}")
print(f"notebook ran in {time.perf_counter() - t_start:.1f} s wall, {time.process_time():.1f} s CPU")
