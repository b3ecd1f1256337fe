"""Image folders in the ILSVRC layout: ``root/<class or wnid>/*.JPEG|jpg|png``.

Classes are the sub-folder names in sorted order, so the class index of a
wnid is its position in the sorted list (the usual ILSVRC-2012 convention,
Sec. 2). A synset file (``wnid<TAB>name`` per line, e.g.
``../shared/data/imagenet-synsets.tsv``) optionally maps wnids to readable
names. Files whose extension is not an image extension are ignored; every
decoded image is converted to 8-bit RGB (``to_rgb``): 16-bit greyscale is
scaled to 8 bits (v / 257, not clipped at 255), and an alpha channel is
composited over white (transparent pixels become white, not whatever colour
the file stores under them); greyscale, CMYK and palettes by Pillow's formulas.
A symbolic link loop in a folder is an error naming it.
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

IMAGE_EXTENSIONS = (".jpeg", ".jpg", ".png", ".bmp", ".ppm", ".gif", ".tif", ".tiff", ".webp")


@dataclass
class ImageFolder:
    """The listing of an image folder (nothing decoded yet).

    Attributes
    ----------
    root : Path
    paths : list of Path, (N,)      every image, class by class, files sorted by name
    labels : np.ndarray int64, (N,) class index of each path
    classes : list of str, (K,)     sub-folder names, sorted (wnids for ImageNet)
    names : list of str, (K,)       readable names from a synset file, else ``classes``
    """

    root: Path
    paths: list
    labels: np.ndarray
    classes: list
    names: list = field(default_factory=list)

    def __len__(self):
        return len(self.paths)


def read_synsets(path) -> dict:
    """Read ``wnid<TAB>name`` lines into a dict ``{wnid: name}``."""
    out = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip():
                continue
            if "\t" not in line:
                raise ValueError(f"{path}:{lineno}: expected 'wnid<TAB>name', got {line!r}")
            wnid, name = line.split("\t", 1)
            out[wnid.strip()] = name.strip()
    return out


def _is_file(entry) -> bool:
    """``entry.is_file()``, but a symbolic link loop is a ValueError naming the link."""
    try:
        return entry.is_file()
    except OSError as e:
        raise ValueError(f"cannot read {entry.path}: {e.strerror or e} (a symbolic link loop or a broken "
                         "file system entry); remove or fix it") from None


def _image_files(folder: Path) -> list:
    """Image files directly in ``folder``, sorted by name (hidden and non-image files skipped)."""
    with os.scandir(folder) as it:  # scandir knows file types without a stat per file
        names = [e.name for e in it
                 if not e.name.startswith(".") and os.path.splitext(e.name)[1].lower() in IMAGE_EXTENSIONS
                 and _is_file(e)]
    return [folder / n for n in sorted(names)]


def list_image_folder(root, synsets=None, max_per_class=None) -> ImageFolder:
    """List ``root/<class>/<image>`` files without decoding them.

    Parameters
    ----------
    root : str or Path
        Folder whose sub-folders are the classes.
    synsets : str, Path or dict, optional
        Synset file (or an already-read dict) mapping folder names to names.
    max_per_class : int, optional
        Keep only the first ``max_per_class`` files (in name order) of each
        class, e.g. for a quick, class-balanced slice.

    Raises
    ------
    ValueError
        ``root`` does not exist or has no class sub-folders, or a class folder
        has no image files (the message names the folder).
    """
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"image folder {str(root)!r} does not exist or is not a directory")
    classes = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not classes:
        raise ValueError(f"no class sub-folders in {str(root)!r}; expected root/<class>/<image files>")
    paths, labels = [], []
    for k, c in enumerate(classes):
        files = _image_files(root / c)
        if not files:
            raise ValueError(
                f"class folder {str(root / c)!r} has no image files "
                f"(looked for extensions {', '.join(IMAGE_EXTENSIONS)})")
        if max_per_class is not None:
            files = files[:max_per_class]
        paths += files
        labels += [k] * len(files)
    if isinstance(synsets, (str, os.PathLike)):
        synsets = read_synsets(synsets)
    names = [synsets.get(c, c) for c in classes] if synsets else list(classes)
    return ImageFolder(root, paths, np.asarray(labels, dtype=np.int64), classes, names)


def load_rgb(path) -> Image.Image:
    """Open an image file and return it as a decoded 8-bit RGB ``PIL.Image`` (see ``to_rgb``)."""
    with Image.open(path) as im:
        im.load()
        return to_rgb(im)


def to_rgb(im: Image.Image) -> Image.Image:
    """Any Pillow image as 8-bit RGB, pixel values preserved.

    - 16-bit greyscale ("I;16*", and "I" holding values above 255): v / 257,
      rounded, so 65535 -> 255 (Pillow's own convert clips at 255: a 16-bit
      image would come out almost white);
    - alpha ("RGBA", "LA", "PA", palettes with a transparent colour):
      composited over a white background, out = a*rgb + (1-a)*255;
    - CMYK, greyscale, palettes: Pillow's standard conversion.
    """
    if im.mode.startswith("I;16") or im.mode == "I":
        a = np.asarray(im).astype(np.float64)                   # (H, W) uint16 or int32
        if im.mode.startswith("I;16") or a.max() > 255:
            a = a / 257.0
        im = Image.fromarray(np.clip(np.rint(a), 0, 255).astype(np.uint8), mode="L")
    if im.mode == "P" and "transparency" in im.info or im.mode in ("LA", "La", "PA", "RGBa"):
        im = im.convert("RGBA")
    if im.mode == "RGBA":
        white = Image.new("RGBA", im.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, im).convert("RGB")
    return im.convert("RGB") if im.mode != "RGB" else im.copy()


def warn_skipped(skipped, where=""):
    """Issue ONE warning that counts and lists unreadable files (if any)."""
    if not skipped:
        return
    shown = "\n  ".join(f"{p}: {err}" for p, err in skipped[:50])
    more = f"\n  ... and {len(skipped) - 50} more" if len(skipped) > 50 else ""
    warnings.warn(
        f"skipped {len(skipped)} unreadable image file(s){' in ' + str(where) if where else ''}:\n  "
        f"{shown}{more}", RuntimeWarning, stacklevel=3)
