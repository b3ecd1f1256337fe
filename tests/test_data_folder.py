"""Image folders in the ILSVRC layout (issue 4, item 1) and their bad input."""
import os
import warnings

import numpy as np
import pytest

from data_helpers import SHARED_DATA, make_folder
from minialex.data import list_image_folder, load_image_folder, load_rgb, read_synsets


def test_classes_sorted_and_non_images_ignored(tmp_path):
    make_folder(tmp_path / "r")
    f = list_image_folder(tmp_path / "r")
    assert f.classes == ["ant", "cat"]
    names = [p.name for p in f.paths]
    assert names == ["d_rgba.png", "e_cmyk.JPEG", "f_coord.png", "a_wide.jpg", "b_grey.png", "c_palette.png"]
    assert f.labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert f.labels.dtype == np.int64


def test_every_mode_becomes_rgb(tmp_path):
    files = make_folder(tmp_path / "r")
    for name, path in files.items():
        a = np.asarray(load_rgb(path))
        assert a.ndim == 3 and a.shape[2] == 3 and a.dtype == np.uint8, name
    assert (np.asarray(load_rgb(files["grey"])) == 100).all()
    assert (np.asarray(load_rgb(files["palette"])) == [10, 20, 30]).all()  # palette index 0
    # alpha 128 composited over white: round(60 * 128/255 + 255 * (1 - 128/255)) = 157
    assert (np.asarray(load_rgb(files["rgba"])) == 157).all()
    red = np.asarray(load_rgb(files["cmyk"])).reshape(-1, 3).mean(0)
    assert red[0] > 240 and red[1] < 15 and red[2] < 15                    # CMYK (0,255,255,0) is red
    assert load_rgb(files["rgb_wide"]).size == (50, 30)                    # non-square kept as is


def test_max_per_class(tmp_path):
    make_folder(tmp_path / "r")
    f = list_image_folder(tmp_path / "r", max_per_class=2)
    assert [p.name for p in f.paths] == ["d_rgba.png", "e_cmyk.JPEG", "a_wide.jpg", "b_grey.png"]


def test_synset_names(tmp_path):
    (tmp_path / "r" / "n02").mkdir(parents=True)
    (tmp_path / "r" / "n01").mkdir(parents=True)
    for d in ("n01", "n02"):
        make_folder(tmp_path / "tmp" / d)
        (tmp_path / "tmp" / d / "ant" / "f_coord.png").rename(tmp_path / "r" / d / "x.png")
    syn = tmp_path / "syn.tsv"
    syn.write_text("n01\tgoldfish\nn02\ttench, Tinca tinca\n")
    f = list_image_folder(tmp_path / "r", synsets=syn)
    assert f.classes == ["n01", "n02"] and f.names == ["goldfish", "tench, Tinca tinca"]


def test_real_synsets_file():
    path = SHARED_DATA / "imagenet-synsets.tsv"
    if not path.is_file():
        pytest.skip(f"real data absent: {path}")
    s = read_synsets(path)
    assert len(s) == 1000 and s["n01440764"] == "tench"
    assert list(s) == sorted(s)


def test_empty_class_folder_names_it(tmp_path):
    make_folder(tmp_path / "r")
    (tmp_path / "r" / "empty").mkdir()
    (tmp_path / "r" / "empty" / "readme.txt").write_text("no images here")
    with pytest.raises(ValueError, match="empty"):
        list_image_folder(tmp_path / "r")


def test_no_images_at_all(tmp_path):
    (tmp_path / "r").mkdir()
    with pytest.raises(ValueError, match=str(tmp_path / "r")):
        list_image_folder(tmp_path / "r")
    with pytest.raises(ValueError, match="does not exist"):
        list_image_folder(tmp_path / "missing")


def test_corrupt_files_skipped_with_one_warning(tmp_path):
    files = make_folder(tmp_path / "r", with_bad=True)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        x, y, folder = load_image_folder(tmp_path / "r", short_side=16, crop=16)
    msgs = [str(m.message) for m in w if issubclass(m.category, RuntimeWarning)]
    assert len(msgs) == 1
    assert "skipped 2 unreadable" in msgs[0]
    assert str(files["corrupt"]) in msgs[0] and str(files["truncated"]) in msgs[0]
    assert x.shape == (6, 3, 16, 16) and y.tolist() == [0, 0, 0, 1, 1, 1]


def test_all_unreadable_raises(tmp_path):
    (tmp_path / "r" / "a").mkdir(parents=True)
    (tmp_path / "r" / "a" / "bad.jpg").write_bytes(b"junk")
    with pytest.warns(RuntimeWarning), pytest.raises(ValueError, match="no readable images"):
        load_image_folder(tmp_path / "r", short_side=8, crop=8)


def test_unequal_sizes_need_a_crop(tmp_path):
    make_folder(tmp_path / "r")
    with pytest.raises(ValueError, match="short_side"):
        load_image_folder(tmp_path / "r")


def test_16bit_greyscale_png_is_scaled_not_clipped(tmp_path):
    """A 16-bit PNG holds 0..65535; v / 257 maps it onto 0..255 (Pillow's convert clips at 255)."""
    from PIL import Image

    v = np.array([[0, 257, 1000, 32768], [40000, 65278, 65535, 12850]], dtype=np.uint16)   # (2, 4)
    Image.fromarray(v).save(tmp_path / "g16.png")
    assert Image.open(tmp_path / "g16.png").mode.startswith("I;16")       # what Pillow reads it as
    a = np.asarray(load_rgb(tmp_path / "g16.png"))                        # (2, 4, 3)
    expected = np.rint(v / 257.0).astype(np.uint8)                        # 0, 1, 4, 128, 156, 254, 255, 50
    for c in range(3):
        np.testing.assert_array_equal(a[..., c], expected)
    ramp = (np.arange(64 * 64, dtype=np.uint32).reshape(64, 64) * 16).astype(np.uint16)   # mean 32760
    Image.fromarray(ramp).save(tmp_path / "ramp.png")
    assert abs(np.asarray(load_rgb(tmp_path / "ramp.png")).mean() - ramp.mean() / 257) < 0.5   # not ~254


def test_alpha_is_composited_over_white(tmp_path):
    from PIL import Image

    rgb = np.array([[[200, 10, 0], [0, 0, 255], [60, 60, 60]]], dtype=np.uint8)           # (1, 3, 3)
    alpha = np.array([[255, 0, 64]], dtype=np.uint8)
    Image.fromarray(np.dstack([rgb, alpha]), mode="RGBA").save(tmp_path / "a.png")
    Image.fromarray(np.dstack([rgb[..., 0], alpha]), mode="LA").save(tmp_path / "la.png")
    out = np.asarray(load_rgb(tmp_path / "a.png")).astype(np.float64)
    expected = rgb * (alpha[..., None] / 255) + 255 * (1 - alpha[..., None] / 255)       # naive formula
    np.testing.assert_array_equal(out, np.rint(expected))                # opaque kept, transparent -> white
    out_la = np.asarray(load_rgb(tmp_path / "la.png"))
    np.testing.assert_array_equal(out_la[..., 1], np.rint(expected[..., 0]).astype(np.uint8))


def test_symlink_loop_is_an_error_naming_it(tmp_path):
    files = make_folder(tmp_path / "r")
    loop = files["grey"].parent / "loop.jpg"
    os.symlink(loop, loop)                                                # points at itself
    with pytest.raises(ValueError, match=r"loop\.jpg.*symbolic link loop"):
        list_image_folder(tmp_path / "r")
