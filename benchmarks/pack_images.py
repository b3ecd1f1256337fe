"""Pack an image folder into tar parts small enough to travel to a device machine.

    python benchmarks/pack_images.py ../shared/data/imagenette2-224 .gpudata --part-mib 44
    python benchmarks/pack_images.py .gpudata --unpack /tmp/imagenette2-224      # there

A device machine receives the repository's working tree and at most 64 MiB
per call (tracked files, plus the ignored folders named in ``carry``; the
``../shared`` beside the checkout does not travel). Imagenette at 224 is
162 MB of JPEGs, so it goes in parts: the files are stored as they are (no
re-encoding: the images trained on are the images on disk), sorted by path
and cut into tar files of at most ``--part-mib`` MiB, plus ``manifest.tsv``
(part, path, bytes of every file) so that ``--unpack`` can check that every
part arrived and every file is whole. docs/gpu.md ("Carrying the data")
says how the parts travel over consecutive calls.
"""
from __future__ import annotations

import argparse
import sys
import tarfile
from pathlib import Path

IMAGE_SUFFIXES = {".jpeg", ".jpg", ".png"}
TAR_OVERHEAD = 1024          # bytes a file adds to a tar beyond its own: a 512-byte header, padding to 512


def plan_parts(src, part_bytes):
    """[[relative path, ...] per part]: files sorted by path, each part at most ``part_bytes`` of images."""
    files = sorted(p for p in Path(src).rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ValueError(f"pack_images: no images (.jpeg, .jpg, .png) under {src}")
    parts, cur, size = [], [], 0
    for f in files:
        n = f.stat().st_size + TAR_OVERHEAD
        if n > part_bytes:
            raise ValueError(f"pack_images: {f} is {n} bytes, larger than a part ({part_bytes})")
        if cur and size + n > part_bytes:
            parts.append(cur)
            cur, size = [], 0
        cur.append(f.relative_to(src))
        size += n
    parts.append(cur)
    return parts


def pack(src, dst, part_mib=44.0):
    """Write dst/part-NNN.tar and dst/manifest.tsv; returns the number of parts."""
    src, dst = Path(src), Path(dst)
    dst.mkdir(parents=True, exist_ok=True)
    parts = plan_parts(src, int(part_mib * 2**20) - 20480)    # a tar ends with up to 20 KiB of blocks
    rows = []
    for i, files in enumerate(parts):
        name = f"part-{i:03d}.tar"
        with tarfile.open(dst / name, "w") as tar:
            for rel in files:
                tar.add(src / rel, arcname=rel.as_posix())
                rows.append(f"{name}\t{rel.as_posix()}\t{(src / rel).stat().st_size}")
    (dst / "manifest.tsv").write_text("\n".join(rows) + "\n")
    return len(parts)


def unpack(parts_dir, out):
    """Extract every part into ``out`` and check it against the manifest; returns the file count."""
    parts_dir, out = Path(parts_dir), Path(out)
    manifest = parts_dir / "manifest.tsv"
    if not manifest.is_file():
        raise ValueError(f"pack_images: no manifest.tsv in {parts_dir}")
    rows = [line.split("\t") for line in manifest.read_text().splitlines() if line]
    missing = sorted({p for p, _, _ in rows if not (parts_dir / p).is_file()})
    if missing:
        raise ValueError(f"pack_images: {len(missing)} part(s) missing in {parts_dir}: {', '.join(missing)} "
                         "(carry every part; docs/gpu.md)")
    out.mkdir(parents=True, exist_ok=True)
    for name in sorted({p for p, _, _ in rows}):
        with tarfile.open(parts_dir / name) as tar:
            if hasattr(tarfile, "data_filter"):                  # Python >= 3.12 (and late 3.8-3.11)
                tar.extractall(out, filter="data")               # no paths outside ``out``, no links
            else:
                tar.extractall(out)
    bad = [rel for _, rel, n in rows if not (out / rel).is_file() or (out / rel).stat().st_size != int(n)]
    if bad:
        raise ValueError(f"pack_images: {len(bad)} file(s) missing or truncated after unpacking, e.g. {bad[0]}")
    return len(rows)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("src", help="image folder to pack, or (with --unpack) the folder holding the parts")
    p.add_argument("dst", nargs="?", help="folder for the parts (packing)")
    p.add_argument("--part-mib", type=float, default=44.0, help="largest part, MiB (default 44)")
    p.add_argument("--unpack", metavar="OUT", help="extract the parts in SRC into OUT and check them")
    args = p.parse_args(argv)
    try:
        if args.unpack:
            print(f"unpacked {unpack(args.src, args.unpack)} files into {args.unpack}")
        else:
            if not args.dst:
                p.error("packing needs DST, the folder for the parts")
            print(f"packed {args.src} into {pack(args.src, args.dst, args.part_mib)} part(s) in {args.dst}")
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
