"""Data: the paper's preprocessing (Sec. 2), augmentation (Sec. 4.1), image
folders, CIFAR-10, the bundled default set and a background batch loader.

Images are uint8 ``(N, 3, H, W)`` (NCHW, the layers' layout) until a transform
turns a batch into float32 for the model. Labels are int64 ``(N,)``.

API summary
-----------
Bundled data (no network, no ../shared)::

    d = load_default()              # DefaultData: x_train (10000, 3, 32, 32) uint8, y_train (10000,) int64,
                                    # x_test (2000, 3, 32, 32), y_test (2000,), class_names (10 str)
    mean, cov = image_statistics(d.x_train)   # (3, 32, 32) float32 mean image, (3, 3) RGB covariance

Batches (background thread, reshuffled every epoch, deterministic from seed)::

    tf = TrainTransform(mean=mean, crop=32, pad=4, flip=True, pca=pca_eigen(cov))
    train = BatchLoader(d.x_train, d.y_train, 128, transform=tf, seed=0, xp="numpy")
    test = BatchLoader(d.x_test, d.y_test, 256, transform=EvalTransform(mean=mean),
                       shuffle=False)
    for x, y in train: ...          # x (128, 3, 32, 32) float32, mean-subtracted; y (128,) int64

  Suggested for CIFAR (32x32): crop 32 with pad 4 plus flips (the paper's
  "224 of 256" would be 28 of 32: ``TrainTransform(crop=28)`` with
  ``EvalTransform(crop=28)`` or ``mode="ten"``). ImageNet-size: prepared 256x256,
  ``TrainTransform(crop=224)``, ``EvalTransform(crop=224, mode="ten")``.
  Per-channel instead of per-pixel mean: ``mean=channel_mean(mean)``.
  ``TrainTransform`` runs as one fused numba pass (``data/_numba.py``) for uint8
  input and float32 output, bit-identical to its readable NumPy steps
  (``kernels="reference"`` forces those). PCA shift: ``pca_scale="sqrt"`` (default) or
  ``"paper"``; see ``pca_color_shift`` for why.
  ``EvalTransform(mode="ten")`` yields (N*10, C, c, c); average the softmax with
  ``probs.reshape(N, 10, K).mean(1)``.

ImageNet-style folders (``root/<class or wnid>/*.JPEG``)::

    python -m minialex.data prepare SRC DST       # SRC/train, SRC/val -> DST/train, DST/val (processes, resumable)
    prepare_splits(SRC, DST); prepare(SRC / "train", DST / "train", workers=16)
    ps = open_prepared(DST / "train")         # images (N, 3, 256, 256) uint8 memmap, labels, mean, rgb_cov, pca
    BatchLoader(ps.images, ps.labels, 128, transform=TrainTransform(mean=ps.mean, crop=224, pca=ps.pca))
    x, y, folder = load_image_folder(root)    # decode into memory (equal-size images, e.g. CIFAR jpg)
    imgs = FolderImages(root, 256, 256); x, y = imgs.load(idx)   # list now, decode only the files idx
  Official ILSVRC-2012 layouts (per-class tars, flat val + devkit or LOC_val_solution.csv):
  ``ilsvrc.list_source``; ``matfile.read_mat`` reads the devkit's meta.mat without SciPy.

A run's data by name (``--data`` of the command lines)::

    data = load_dataset("default" | "cifar10" | PATH)   # Dataset: x_train, y_train, x_test, y_test, ...
    x, y = subset(data.x_test, data.y_test, n, seed)    # a seeded random subset

CIFAR-10: ``load_cifar10(root, download=False)`` (official pickle batches,
md5-verified), ``load_cifar10_jpg(root)`` (the JPEG copy); both return
``(x_train, y_train, x_test, y_test, classes)``.

Augmentation pieces (each takes/returns (N, C, H, W) and an explicit rng):
``random_crop``, ``random_flip``, ``center_crop``, ``ten_crop`` -> (N, 10, C, c, c),
``pca_eigen(cov)`` -> (eigvals, eigvecs), ``pca_color_shift``, ``pca_color``.
"""
from .augment import (EvalTransform, TrainTransform, center_crop, channel_mean, crop_at,  # noqa: F401
                      pca_color, pca_color_shift, pca_eigen, random_crop, random_flip, ten_crop,
                      ten_crop_offsets)
from .cifar10 import download_cifar10, extract_cifar10, load_cifar10, load_cifar10_jpg  # noqa: F401
from .datasets import Dataset, load_dataset, subset  # noqa: F401
from .default import DefaultData, default_subset, load_default  # noqa: F401
from .folder import ImageFolder, list_image_folder, load_rgb, read_synsets  # noqa: F401
from .loader import BatchLoader  # noqa: F401
from .folder_images import FolderImages  # noqa: F401
from .prepared import PreparedSet, load_image_folder, open_prepared  # noqa: F401
from .preparer import prepare, prepare_splits  # noqa: F401
from .preprocess import (RunningStats, center_crop_hwc, image_statistics,  # noqa: F401
                         preprocess_image, resize_short_side, short_side_size)
