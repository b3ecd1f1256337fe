"""A small reader for MATLAB level-5 .mat files, enough for the ILSVRC-2012
devkit's ``meta.mat`` (so that labelling the validation set needs no SciPy).

The devkit stores a struct array ``synsets`` (1860 x 1) whose fields include
``ILSVRC2012_ID`` (a number, 1..1000 for the leaf classes) and ``WNID`` (a
string such as ``'n02119789'``); ``ILSVRC2012_validation_ground_truth.txt``
gives one ILSVRC2012_ID per validation image in that numbering.

Format (MathWorks, "MAT-File Format", level 5): a 128-byte header, then data
elements. Each element has an 8-byte tag (type, byte count) or a 4-byte
"small element" tag with up to 4 bytes of data, and is padded to 8 bytes;
``miCOMPRESSED`` elements hold one zlib-compressed element. An ``miMATRIX``
element holds array flags (class), dimensions, a name, and then the class's
data: numbers for numeric classes, UTF-16/8 code units for char arrays, field
names and one matrix per element and field for structs, one matrix per element
for cells. Arrays are stored column-major. Level-7.3 files are HDF5 and are
not read here (the devkit's meta.mat is level 5).

    variables = read_mat("ILSVRC2012_devkit_t12/data/meta.mat")
    synsets = variables["synsets"]      # list of dicts, one per struct element
    synsets[0]["WNID"], synsets[0]["ILSVRC2012_ID"]   # 'n02119789', 1.0
"""
from __future__ import annotations

import struct
import zlib

import numpy as np

# data types of elements (miXXX) and the numpy dtype of their values
MI_DTYPES = {1: "i1", 2: "u1", 3: "i2", 4: "u2", 5: "i4", 6: "u4", 7: "f4", 9: "f8", 12: "i8", 13: "u8"}
MI_MATRIX, MI_COMPRESSED, MI_UTF8, MI_UTF16, MI_UTF32 = 14, 15, 16, 17, 18
# array classes (mxXXX_CLASS) in the array-flags sub-element
MX_CELL, MX_STRUCT, MX_OBJECT, MX_CHAR, MX_SPARSE = 1, 2, 3, 4, 5
MX_NUMERIC = {6: "f8", 7: "f4", 8: "i1", 9: "u1", 10: "i2", 11: "u2", 12: "i4", 13: "u4", 14: "i8", 15: "u8"}


class MatFileError(ValueError):
    """The file is not a level-5 MAT file, or uses a part of it this reader does not know."""


def _elements(buf, endian):
    """Yield ``(type, payload bytes)`` for each data element in ``buf``."""
    pos = 0
    while pos + 4 <= len(buf):
        (word,) = struct.unpack_from(endian + "I", buf, pos)
        if word >> 16:                       # small element: type and size in one word, data in the next 4 bytes
            typ, n = word & 0xFFFF, word >> 16
            yield typ, buf[pos + 4:pos + 4 + n]
            pos += 8
            continue
        typ, n = struct.unpack_from(endian + "II", buf, pos)
        start = pos + 8
        if start + n > len(buf):
            raise MatFileError(f"element of type {typ} claims {n} bytes, only {len(buf) - start} left")
        yield typ, buf[start:start + n]
        pos = start + (n if typ == MI_COMPRESSED else (n + 7) // 8 * 8)


def _values(typ, data, endian):
    """The numbers (or code units) of one numeric/text element as a 1-D array."""
    if typ in MI_DTYPES:
        return np.frombuffer(data, dtype=np.dtype(MI_DTYPES[typ]).newbyteorder(endian))
    if typ == MI_UTF8:
        return np.frombuffer(data, dtype=np.uint8)
    if typ == MI_UTF16:
        return np.frombuffer(data, dtype=np.dtype("u2").newbyteorder(endian))
    if typ == MI_UTF32:
        return np.frombuffer(data, dtype=np.dtype("u4").newbyteorder(endian))
    raise MatFileError(f"unexpected element type {typ} where numbers were expected")


def _matrix(data, endian):
    """Decode the payload of one miMATRIX element -> ``(name, value)``.

    Values: numeric -> ndarray (dims, column-major order respected); char ->
    str (one row) or list of str (one per row); struct -> list of dicts (its
    elements in column-major order); cell -> list.
    """
    if not data:                             # an empty matrix (e.g. a struct field with no value)
        return "", np.zeros((0, 0))
    parts = _elements(data, endian)
    flags_typ, flags = next(parts)
    cls = flags[0] if endian == "<" else flags[3]
    _, dims_raw = next(parts)
    dims = tuple(int(d) for d in _values(5, dims_raw, endian))
    _, name_raw = next(parts)
    name = bytes(name_raw).decode("ascii", "replace")
    count = int(np.prod(dims)) if dims else 0
    if cls in MX_NUMERIC:
        typ, real = next(parts)
        v = _values(typ, real, endian).astype(MX_NUMERIC[cls])
        return name, v.reshape(dims, order="F")  # column-major -> dims
    if cls == MX_CHAR:
        typ, raw = next(parts) if count else (MI_UTF16, b"")
        if typ == MI_UTF8:
            text = bytes(raw).decode("utf-8")
            codes = np.array([ord(c) for c in text], dtype=np.uint32)
        else:
            codes = _values(typ, raw, endian).astype(np.uint32)
        rows = dims[0] if dims else 0
        grid = codes.reshape(dims, order="F") if count else np.zeros((rows, 0), np.uint32)  # (rows, cols)
        lines = ["".join(map(chr, r)) for r in grid.reshape(rows, -1)]
        return name, lines[0] if rows == 1 else lines
    if cls == MX_STRUCT:
        _, fl_raw = next(parts)
        field_len = int(_values(5, fl_raw, endian)[0])
        _, names_raw = next(parts)
        names_raw = bytes(names_raw)
        fields = [names_raw[i:i + field_len].split(b"\0", 1)[0].decode("ascii")
                  for i in range(0, len(names_raw), field_len)]
        out = []
        for _ in range(count):
            item = {}
            for f in fields:
                typ, sub = next(parts)
                if typ != MI_MATRIX:
                    raise MatFileError(f"struct field {f!r} holds element type {typ}, not a matrix")
                item[f] = _matrix(sub, endian)[1]
            out.append(item)
        return name, out
    if cls == MX_CELL:
        out = []
        for _ in range(count):
            typ, sub = next(parts)
            out.append(_matrix(sub, endian)[1])
        return name, out
    kind = {MX_OBJECT: "object", MX_SPARSE: "sparse"}.get(cls, f"class {cls}")
    raise MatFileError(f"variable {name!r} is a {kind} array, which this reader does not decode")


def read_mat(path) -> dict:
    """Read every variable of a level-5 MAT file into ``{name: value}``.

    Raises MatFileError for level-7.3 (HDF5) files, which need h5py, and for
    files that are not MAT files at all.
    """
    with open(path, "rb") as f:
        buf = f.read()
    if buf[:8] == b"\x89HDF\r\n\x1a\n" or b"MATLAB 7.3" in buf[:116]:
        raise MatFileError(f"{path} is a MATLAB 7.3 (HDF5) file; save it with -v7 or give the text form "
                           "(one wnid per line, line k = ILSVRC2012_ID k)")
    if len(buf) < 128 or not buf[:6] == b"MATLAB":
        raise MatFileError(f"{path} is not a MATLAB level-5 .mat file (no 'MATLAB' header)")
    endian = {b"IM": "<", b"MI": ">"}.get(buf[126:128])
    if endian is None:
        raise MatFileError(f"{path}: unknown byte-order mark {buf[126:128]!r}")
    out = {}
    for typ, data in _elements(memoryview(buf)[128:], endian):
        if typ == MI_COMPRESSED:
            inner = zlib.decompress(bytes(data))
            typ, data = next(_elements(inner, endian))
        if typ == MI_MATRIX:
            name, value = _matrix(bytes(data), endian)
            out[name] = value
    return out
