"""Small generated image folders and paths for the data tests (not a test module)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def coord_image(W, H):
    """RGB image, R = x mod 256, G = y mod 256, B = 7: positions readable from pixels.

    Shapes: -> (H, W, 3) uint8
    """
    a = np.zeros((H, W, 3), dtype=np.uint8)
    a[..., 0] = (np.arange(W) % 256)[None, :]
    a[..., 1] = (np.arange(H) % 256)[:, None]
    a[..., 2] = 7
    return a


def make_folder(root, with_bad=False):
    """root/{cat,ant}/... with non-square RGB JPEG, greyscale, palette, RGBA and CMYK images.

    Returns a dict name -> path of the interesting files. Class "ant" sorts first.
    With ``with_bad``: a corrupt .jpg and a truncated .png in "cat".
    """
    root = Path(root)
    (root / "cat").mkdir(parents=True)
    (root / "ant").mkdir(parents=True)
    rng = np.random.default_rng(0)
    files = {}
    files["rgb_wide"] = root / "cat" / "a_wide.jpg"
    Image.fromarray(rng.integers(0, 256, (30, 50, 3), dtype=np.uint8)).save(files["rgb_wide"], quality=95)
    files["grey"] = root / "cat" / "b_grey.png"
    Image.fromarray(np.full((40, 24), 100, np.uint8), mode="L").save(files["grey"])
    files["palette"] = root / "cat" / "c_palette.png"
    p = Image.new("P", (36, 36))
    p.putpalette([10, 20, 30] + [200, 100, 50] * 255)
    p.save(files["palette"])
    files["rgba"] = root / "ant" / "d_rgba.png"
    Image.fromarray(np.dstack([np.full((20, 28, 3), 60, np.uint8), np.full((20, 28), 128, np.uint8)]),
                    mode="RGBA").save(files["rgba"])
    files["cmyk"] = root / "ant" / "e_cmyk.JPEG"
    Image.new("CMYK", (33, 45), (0, 255, 255, 0)).save(files["cmyk"], quality=95)  # red
    files["coord"] = root / "ant" / "f_coord.png"
    Image.fromarray(coord_image(48, 32)).save(files["coord"])
    (root / "ant" / "notes.txt").write_text("not an image")
    (root / "ant" / ".DS_Store").write_bytes(b"\x00\x01")
    (root / "cat" / "labels.csv").write_text("a,b\n")
    if with_bad:
        files["corrupt"] = root / "cat" / "x_corrupt.jpg"
        files["corrupt"].write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
        files["truncated"] = root / "cat" / "y_truncated.png"
        full = root / "cat" / "tmp.bin"
        Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(full, format="PNG")
        files["truncated"].write_bytes(full.read_bytes()[:200])
        full.unlink()
    return files


# ---------------------------------------------------------------- ILSVRC-2012 layouts
IMAGENETTE = SHARED_DATA / "imagenette2-224"


def write_mat_synsets(path, ids, wnids, compress=False):
    """A MATLAB level-5 file with the devkit's struct array ``synsets`` (fields
    ILSVRC2012_ID, WNID, words, children), written by hand from the format
    specification (so the tests need no SciPy); column vector of len(ids).

    IDs are stored as miUINT16 (as MATLAB does for small integer-valued
    doubles), WNIDs as UTF-16 code units, children as an empty double matrix.
    """
    import struct
    import zlib

    def element(typ, payload, small_ok=True):
        if small_ok and len(payload) <= 4:   # small data element format
            return struct.pack("<HH", typ, len(payload)) + payload.ljust(4, b"\0")
        pad = (-len(payload)) % 8
        return struct.pack("<II", typ, len(payload)) + payload + b"\0" * pad

    def matrix(cls, dims, name, body):
        flags = element(6, struct.pack("<II", cls, 0))
        dm = element(5, struct.pack(f"<{len(dims)}i", *dims))
        nm = element(1, name.encode())
        return element(14, flags + dm + nm + body, small_ok=False)

    def double(v):  # mxDOUBLE_CLASS, stored as miUINT16
        return matrix(6, (1, 1), "", element(4, struct.pack("<H", v)))

    def char(s):
        return matrix(4, (1, len(s)), "", element(4, s.encode("utf-16-le")))

    empty = matrix(6, (0, 0), "", element(9, b""))
    fields = ["ILSVRC2012_ID", "WNID", "words", "children"]
    body = element(5, struct.pack("<i", 32))
    body += element(1, b"".join(f.encode().ljust(32, b"\0") for f in fields))
    for i, w in zip(ids, wnids):
        body += double(i) + char(w) + char(f"words of {w}") + empty
    var = matrix(2, (len(ids), 1), "synsets", body)
    if compress:
        z = zlib.compress(var)
        var = struct.pack("<II", 15, len(z)) + z
    header = b"MATLAB 5.0 MAT-file, written by minialex tests".ljust(116, b" ") + b"\0" * 8
    Path(path).write_bytes(header + struct.pack("<H", 0x0100) + b"IM" + var)


def class_images(n_classes, per_class, split="train", size=(40, 30)):
    """``{wnid: [(name, jpeg bytes), ...]}``: Imagenette files when present
    (re-encoded smaller), else generated pictures with wnid-like class names.

    Val images keep Imagenette's ILSVRC2012_val_* names; generated ones are
    numbered so that every name is unique across classes.
    """
    import io

    out = {}
    if IMAGENETTE.is_dir():
        wnids = sorted(p.name for p in (IMAGENETTE / split).iterdir())[:n_classes]
        for w in wnids:
            files = sorted((IMAGENETTE / split / w).iterdir())[:per_class]
            out[w] = []
            for k, p in enumerate(files):
                im = Image.open(p).convert("RGB")
                im = im.resize((size[0] + 3 * k, size[1] + 2 * k))
                buf = io.BytesIO()
                im.save(buf, format="JPEG", quality=90)
                name = p.name if split == "val" else f"{w}_{k + 1}.JPEG"
                out[w].append((name, buf.getvalue()))
        return out
    rng = np.random.default_rng(1)
    for c in range(n_classes):
        w = f"n0{1000000 + 7919 * c:07d}"
        out[w] = []
        for k in range(per_class):
            a = rng.integers(0, 256, (size[1] + 2 * k, size[0] + 3 * k, 3), dtype=np.uint8)
            a[..., c % 3] //= 2
            buf = io.BytesIO()
            Image.fromarray(a).save(buf, format="JPEG", quality=90)
            name = (f"ILSVRC2012_val_{100 * c + k + 1:08d}.JPEG" if split == "val" else f"{w}_{k + 1}.JPEG")
            out[w].append((name, buf.getvalue()))
    return out


def ilsvrc_tree(root, n_classes=3, per_class=4, val_per_class=2, train="tar", val="devkit"):
    """A small synthetic ILSVRC-2012 copy in the layouts as distributed.

    train: "tar" (root/train/<wnid>.tar) or "folders" (root/train/<wnid>/*.JPEG);
    val: "devkit" (flat root/val/ILSVRC2012_val_*.JPEG with
    root/ILSVRC2012_devkit_t12/data/{ILSVRC2012_validation_ground_truth.txt,meta.mat},
    whose ILSVRC2012_IDs are a shuffled numbering of the 1000 synsets as in the
    real devkit), "loc" (the same flat folder with root/LOC_val_solution.csv)
    or "folders" (root/val/<wnid>/*.JPEG).
    Returns ``(train images, val images)``: ``{wnid: [(name, bytes)]}``.
    """
    import io
    import tarfile

    root = Path(root)
    tr = class_images(n_classes, per_class, "train")
    va = class_images(n_classes, val_per_class, "val")
    (root / "train").mkdir(parents=True)
    for w, files in tr.items():
        if train == "tar":
            with tarfile.open(root / "train" / f"{w}.tar", "w") as tf:
                for name, data in files:
                    info = tarfile.TarInfo(name)
                    info.size = len(data)
                    tf.addfile(info, io.BytesIO(data))
        else:
            (root / "train" / w).mkdir()
            for name, data in files:
                (root / "train" / w / name).write_bytes(data)
    (root / "val").mkdir()
    for w, files in va.items():
        for name, data in files:
            if val == "folders":
                (root / "val" / w).mkdir(exist_ok=True)
                (root / "val" / w / name).write_bytes(data)
            else:
                (root / "val" / name).write_bytes(data)
    if val == "loc":
        rows = ["ImageId,PredictionString"]
        for w, files in va.items():
            rows += [f"{Path(n).stem},{w} 10 20 30 40 {w} 1 2 3 4" for n, _ in files]
        (root / "LOC_val_solution.csv").write_text("\n".join(rows) + "\n")
    elif val == "devkit":
        synsets = [line.split("\t")[0] for line in (SHARED_DATA / "imagenet-synsets.tsv").read_text().splitlines()] \
            if (SHARED_DATA / "imagenet-synsets.tsv").is_file() else []
        wnids = sorted(set(synsets) | set(va))
        order = np.random.default_rng(5).permutation(len(wnids))
        id_of = {wnids[j]: k + 1 for k, j in enumerate(order)}   # ILSVRC2012_ID: not the sorted order
        devkit = root / "ILSVRC2012_devkit_t12" / "data"
        devkit.mkdir(parents=True)
        truth = {int(Path(n).stem.split("_")[-1]): id_of[w] for w, files in va.items() for n, _ in files}
        lines = [str(truth.get(i, 1)) for i in range(1, max(truth) + 1)]
        (devkit / "ILSVRC2012_validation_ground_truth.txt").write_text("\n".join(lines) + "\n")
        ids = sorted(id_of.values())
        by_id = {v: k for k, v in id_of.items()}
        write_mat_synsets(devkit / "meta.mat", ids, [by_id[i] for i in ids], compress=True)
    return tr, va
