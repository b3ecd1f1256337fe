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
