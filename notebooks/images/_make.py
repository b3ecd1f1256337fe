"""Re-create the bundled photos in this folder from ../shared/data/imagenette2-224.

    python notebooks/images/_make.py

One photo from each of 8 Imagenette classes (the first file, in sorted order, of
the validation folder of each class), kept at its stored size (short side 224)
and re-encoded as JPEG quality 80. Imagenette is a subset of ImageNet
(ILSVRC-2012 validation images here); non-commercial research terms, so only
these few are bundled, for the Sec. 2 and Sec. 4.1 notebooks.
"""
from pathlib import Path

from PIL import Image

HERE = Path(__file__).resolve().parent
SRC = HERE.parents[2] / "shared" / "data" / "imagenette2-224" / "val"
WNIDS = {"n01440764": "tench", "n02102040": "english_springer", "n02979186": "cassette_player",
         "n03000684": "chain_saw", "n03028079": "church", "n03394916": "french_horn",
         "n03417042": "garbage_truck", "n03888257": "parachute"}

if __name__ == "__main__":
    for wnid, name in WNIDS.items():
        src = sorted((SRC / wnid).glob("*.JPEG"))[0]
        im = Image.open(src).convert("RGB")
        out = HERE / f"{wnid}_{name}.jpg"
        im.save(out, quality=80)
        print(f"{src.name} -> {out.name} {im.size} {out.stat().st_size // 1024} KB")
