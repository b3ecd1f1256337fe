"""The ILSVRC-2012 layouts as distributed (Sec. 2), listed without decoding.

A split folder may be any of:

- class folders, ``train/<wnid>/*.JPEG`` (also Imagenette, CIFAR-10 JPEG copies);
- the per-class tar files that ``ILSVRC2012_img_train.tar`` unpacks to,
  ``train/<wnid>.tar`` (each holding ``<wnid>_<n>.JPEG``); they are read in
  place, member by member, never extracted;
- a flat folder of images, ``val/ILSVRC2012_val_00000001.JPEG`` ..., labelled
  by a ground-truth file:

  * ``LOC_val_solution.csv`` (Kaggle's form): ``ImageId,PredictionString``
    rows such as ``ILSVRC2012_val_00008726,n02119789 255 142 454 329 ...``;
    the first word of PredictionString is the wnid;
  * the devkit's ``ILSVRC2012_validation_ground_truth.txt``: line i holds the
    ILSVRC2012_ID of ``ILSVRC2012_val_{i:08d}.JPEG``, and the devkit's
    ``data/meta.mat`` maps ILSVRC2012_ID to wnid (read by ``matfile.py``,
    without SciPy). The same map is accepted as text: one wnid per line, line
    k for ILSVRC2012_ID k (``ID<TAB>wnid`` lines are accepted too).

Labels are indices into the class list: the training split's wnids in sorted
order, which is the order of ``imagenet-synsets.tsv`` (that file is sorted by
wnid), so a full ILSVRC-2012 set gets the usual 0..999 labels. A synset file
given with ``synsets=`` fixes the order instead (classes absent from it sort
last). Validation images whose wnid is not a training class are listed as
skipped, with the reason.

    src = list_source("ILSVRC2012/train")                       # folders or tars
    val = list_source("ILSVRC2012/val", classes=src.classes,
                      val_labels=read_val_labels("LOC_val_solution.csv"))
"""
from __future__ import annotations

import csv
import hashlib
import os
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .folder import IMAGE_EXTENSIONS, _image_files, read_synsets

GROUND_TRUTH = "ILSVRC2012_validation_ground_truth.txt"
LOC_SOLUTION = "LOC_val_solution.csv"
META = "meta.mat"
SPLITS = ("train", "val", "test")


@dataclass
class SourceList:
    """Every image of one split, in a fixed order (nothing decoded).

    Kept compact, since a full ILSVRC-2012 train split lists 1.28M files:
    about 60 bytes a file in NumPy arrays, not Python objects per file.

    Attributes
    ----------
    root : Path                     the split folder
    sources : (N,) bytes array      name relative to root, for the manifest: b"n01/x.JPEG", b"n01.tar:x.JPEG"
    offsets, sizes : (N,) int64     byte range of a tar member's data; -1 for a plain file
    labels : (N,) int64             class index; -1 when the image cannot be labelled
    reasons : dict {i: str}         why an image with label -1 is skipped
    classes, names : list of str    wnids and readable names, (K,)
    """

    root: Path
    sources: np.ndarray
    offsets: np.ndarray
    sizes: np.ndarray
    labels: np.ndarray
    classes: list
    names: list
    reasons: dict = field(default_factory=dict)

    def __len__(self):
        return len(self.sources)

    def source(self, i) -> str:
        return self.sources[i].decode("utf-8", "surrogateescape")

    def path(self, i, root=None) -> str:
        """The file to read for image i (the tar file for a tar member).

        ``root``: ``str(self.root)``, passed by callers that ask for many paths
        (string joins, not a Path object per file).
        """
        s = self.source(i)
        return os.path.join(str(self.root) if root is None else root, s.split(":", 1)[0] if self.offsets[i] >= 0 else s)

    def digest(self) -> str:
        """sha256 of the listing (names, byte ranges, labels): a resumed prepare checks it."""
        h = hashlib.sha256()
        for a in (self.sources, self.offsets, self.sizes, self.labels):
            h.update(np.ascontiguousarray(a).tobytes())
        h.update("\t".join(self.classes).encode())
        return h.hexdigest()


def _is_image(name: str) -> bool:
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def list_tar(path, max_files=None):
    """Image members of one per-class tar file, sorted by name.

    Returns a list of ``(member name, data offset, size)``.
    """
    try:
        with tarfile.open(path) as tf:
            members = [(m.name, m.offset_data, m.size) for m in tf if m.isfile() and _is_image(Path(m.name).name)]
    except (tarfile.TarError, OSError) as e:
        raise ValueError(f"{path} is not a readable tar file ({type(e).__name__}: {e})") from e
    members.sort()
    return members[:max_files] if max_files is not None else members


def order_classes(wnids, synsets=None) -> list:
    """Class order: sorted, or the order of a synset file (its absentees last, sorted)."""
    wnids = sorted(set(wnids))
    if synsets is None:
        return wnids
    pos = {w: i for i, w in enumerate(synsets)}
    return sorted(wnids, key=lambda w: (pos.get(w, len(pos)), w))


def _encode(names) -> np.ndarray:
    """str names -> (n,) bytes array (compact: one buffer, not one object per name)."""
    return np.array([n.encode("utf-8", "surrogateescape") for n in names], dtype=bytes)


def _class_groups(root: Path, dirs, tars, flat, val_labels, max_per_class):
    """Yield ``(wnid or None per file, source names, offsets, sizes)`` one class (or the flat folder) at a time."""
    for c in dirs:
        files = _image_files(root / c)[:max_per_class]
        if not files:
            raise ValueError(f"class folder {str(root / c)!r} has no image files "
                             f"(looked for extensions {', '.join(IMAGE_EXTENSIONS)})")
        yield [c] * len(files), [f"{c}/{p.name}" for p in files], [-1] * len(files), [-1] * len(files)
    for t in tars:
        members = list_tar(root / t, max_per_class)
        yield ([t[:-len(".tar")]] * len(members), [f"{t}:{m}" for m, _, _ in members],
               [o for _, o, _ in members], [n for _, _, n in members])
    if flat:
        wnids = [val_labels.get(os.path.splitext(n)[0]) for n in flat]
        if max_per_class is not None:
            seen, keep = {}, []
            for w in wnids:
                seen[w] = seen.get(w, 0) + 1
                keep.append(seen[w] <= max_per_class)
            flat = [n for n, k in zip(flat, keep) if k]
            wnids = [w for w, k in zip(wnids, keep) if k]
        yield wnids, flat, [-1] * len(flat), [-1] * len(flat)


def list_source(root, classes=None, synsets=None, val_labels=None, max_per_class=None) -> SourceList:
    """List one split folder in any of the layouts above.

    Parameters
    ----------
    root : the split folder
    classes : class list to label against (the training split's); default:
        this folder's own classes
    synsets : synset file or dict (readable names; its order fixes the class order)
    val_labels : dict {file name without extension: wnid} for a flat folder
        (``read_val_labels``); found in the folder's parent when None
    max_per_class : keep the first n files of each class
    """
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"image folder {str(root)!r} does not exist or is not a directory")
    if isinstance(synsets, (str, os.PathLike)):
        synsets = read_synsets(synsets)
    with os.scandir(root) as it:
        entries = sorted((e.name, e.is_dir(), e.is_file()) for e in it if not e.name.startswith("."))
    dirs = [n for n, d, _ in entries if d]
    tars = [n for n, d, f in entries if f and n.endswith(".tar")]
    flat = [n for n, d, f in entries if f and _is_image(n)]
    if flat and val_labels is None:
        val_labels = find_val_labels(root.parent)
        if val_labels is None:
            raise ValueError(
                f"{root} holds images directly (the flat ILSVRC-2012 val layout) but no ground truth was found; "
                f"give --val-labels {LOC_SOLUTION} or --val-labels {GROUND_TRUTH} with --devkit-meta {META}")
    if classes is None:
        found = dirs + [t[:-len(".tar")] for t in tars]
        if flat:   # the classes that occur in this folder
            found += [w for w in (val_labels.get(os.path.splitext(n)[0]) for n in flat) if w is not None]
        classes = order_classes(found, list(synsets) if synsets else None)
    index = {c: k for k, c in enumerate(classes)}
    sources, labels, offsets, sizes, reasons, n = [], [], [], [], {}, 0
    for wnids, names, offs, lens in _class_groups(root, dirs, tars, flat, val_labels, max_per_class):
        lab = np.array([index.get(w, -1) for w in wnids], dtype=np.int64)
        for j in np.flatnonzero(lab < 0):
            w = wnids[j]
            reasons[n + int(j)] = ("no ground-truth label for this file" if w is None else
                                   f"class {w} is not among the {len(classes)} training classes")
        sources.append(_encode(names))
        labels.append(lab)
        offsets.append(np.asarray(offs, dtype=np.int64))
        sizes.append(np.asarray(lens, dtype=np.int64))
        n += len(names)
    if n == 0:
        raise ValueError(f"no images in {str(root)!r}: expected <class>/<image> folders, <wnid>.tar files "
                         f"or a flat folder of images with a ground-truth file")
    names = [synsets.get(c, c) for c in classes] if synsets else list(classes)
    return SourceList(root, np.concatenate(sources), np.concatenate(offsets), np.concatenate(sizes),
                      np.concatenate(labels), list(classes), names, reasons)


# ---------------------------------------------------------------- ground truth
def read_id_to_wnid(path) -> dict:
    """The devkit's ILSVRC2012_ID -> wnid map, from ``meta.mat`` or its text form.

    Text form: one wnid per line, line k (from 1) for ILSVRC2012_ID k, or
    ``ID<TAB>wnid`` lines.
    """
    path = Path(path)
    if path.suffix.lower() == ".mat":
        from .matfile import read_mat

        syn = read_mat(path).get("synsets")
        if not isinstance(syn, list):
            raise ValueError(f"{path} has no struct array 'synsets' (expected the devkit's data/meta.mat)")
        out = {}
        for s in syn:
            ident = int(np.asarray(s["ILSVRC2012_ID"]).ravel()[0])
            out[ident] = str(s["WNID"])
        return out
    out = {}
    with open(path, encoding="utf-8") as f:
        for k, line in enumerate(f, 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) >= 2 and parts[0].isdigit():
                out[int(parts[0])] = parts[1]
            else:
                out[k] = parts[0]
    return out


def read_val_labels(path, meta=None) -> dict:
    """``{file stem: wnid}`` from ``LOC_val_solution.csv`` or the devkit's ground truth.

    ``meta`` (meta.mat or its text form) is needed with
    ILSVRC2012_validation_ground_truth.txt, whose lines are ILSVRC2012_IDs.
    """
    path = Path(path)
    with open(path, encoding="utf-8") as f:
        head = f.readline()
    if head.lower().startswith("imageid"):
        out = {}
        with open(path, encoding="utf-8", newline="") as f:
            for row in csv.DictReader(f):
                words = (row.get("PredictionString") or "").split()
                if words:
                    out[row["ImageId"]] = words[0]
        return out
    if meta is None:
        raise ValueError(f"{path} lists ILSVRC2012_IDs; give the devkit's {META} (--devkit-meta) to map them "
                         "to wnids")
    id2wnid = read_id_to_wnid(meta)
    out = {}
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f, 1):
            if line.strip():
                ident = int(line)
                if ident not in id2wnid:
                    raise ValueError(f"{path}:{i}: ILSVRC2012_ID {ident} is not in {meta}")
                out[f"ILSVRC2012_val_{i:08d}"] = id2wnid[ident]
    return out


def find_val_labels(where):
    """Look for a ground-truth file in ``where`` (and a devkit folder inside it); None if absent."""
    where = Path(where)
    candidates = [where, where / "ILSVRC2012_devkit_t12" / "data", where / "devkit" / "data"]
    for d in candidates:
        if (d / LOC_SOLUTION).is_file():
            return read_val_labels(d / LOC_SOLUTION)
    for d in candidates:
        if (d / GROUND_TRUTH).is_file():
            meta = next((m / META for m in candidates if (m / META).is_file()), None)
            if meta is None:
                raise ValueError(f"found {d / GROUND_TRUTH} but no {META} beside it; give --devkit-meta")
            return read_val_labels(d / GROUND_TRUTH, meta)
    return None


def split_folders(src) -> list:
    """The split sub-folders (train, val, test) that ``src`` holds, in that order."""
    src = Path(src)
    return [s for s in SPLITS if (src / s).is_dir()]


def source_classes(root, synsets=None) -> list:
    """The classes of a split folder from its names alone: sub-folders and ``<wnid>.tar`` files."""
    root = Path(root)
    with os.scandir(root) as it:
        names = [e.name[:-4] if e.name.endswith(".tar") and e.is_file() else e.name for e in it
                 if not e.name.startswith(".") and (e.is_dir() or e.name.endswith(".tar"))]
    if not names:
        raise ValueError(f"no class sub-folders or <wnid>.tar files in {str(root)!r}")
    if isinstance(synsets, (str, os.PathLike)):
        synsets = read_synsets(synsets)
    return order_classes(names, list(synsets) if synsets else None)


def is_flat(folder) -> bool:
    """Whether a split folder holds image files directly (the ILSVRC-2012 val layout)."""
    with os.scandir(folder) as it:
        return any(e.is_file() and _is_image(e.name) for e in it)
