"""The one-time prepare step (Sec. 2) and its CLI: memmap, labels, mean image, RGB covariance."""
import json
import warnings

import numpy as np
import pytest

from data_helpers import SHARED_DATA, make_folder
from minialex.data import (BatchLoader, TrainTransform, image_statistics, open_prepared, prepare,
                           preprocess_image)
from minialex.data.__main__ import main


def test_cli_prepare_generated_folder(tmp_path, capsys):
    files = make_folder(tmp_path / "src", with_bad=True)
    dst = tmp_path / "out" / "set"
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        assert main(["prepare", str(tmp_path / "src"), str(dst), "--short-side", "40", "--crop", "32",
                     "--quiet"]) == 0
    msgs = [str(m.message) for m in w if issubclass(m.category, RuntimeWarning)]
    assert len(msgs) == 1 and "skipped 2" in msgs[0]
    assert "prepared 6 images, 2 classes" in capsys.readouterr().out
    for name in ("images.u8", "labels.npy", "mean.npy", "rgb_cov.npy", "eigvals.npy", "eigvecs.npy",
                 "classes.txt", "meta.json"):
        assert (dst / name).is_file(), name
    assert sorted(p.name for p in dst.parent.iterdir()) == ["set"]  # no temp folder left
    ps = open_prepared(dst)
    assert isinstance(ps.images, np.memmap) and ps.images.shape == (6, 3, 32, 32)
    assert ps.labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert ps.classes == ["ant", "cat"]
    order = ["rgba", "cmyk", "coord", "rgb_wide", "grey", "palette"]
    for i, name in enumerate(order):  # stored image == Sec. 2 preprocessing of the file, in NCHW
        np.testing.assert_array_equal(ps.images[i], preprocess_image(files[name], 40, 32).transpose(2, 0, 1))
    mean, cov = image_statistics(np.asarray(ps.images))
    np.testing.assert_allclose(ps.mean, mean, rtol=1e-6)
    np.testing.assert_allclose(ps.rgb_cov, cov, rtol=1e-9)
    np.testing.assert_allclose(ps.eigvecs.T @ ps.eigvecs, np.eye(3), atol=1e-10)
    meta = json.loads((dst / "meta.json").read_text())
    assert meta["shape"] == [6, 3, 32, 32] and len(meta["skipped"]) == 2


def test_prepare_refuses_existing_and_overwrites(tmp_path):
    make_folder(tmp_path / "src")
    prepare(tmp_path / "src", tmp_path / "set", short_side=16, crop=16, progress=False)
    with pytest.raises(FileExistsError, match="overwrite"):
        prepare(tmp_path / "src", tmp_path / "set", short_side=16, crop=16, progress=False)
    ps = prepare(tmp_path / "src", tmp_path / "set", short_side=24, crop=20, progress=False, overwrite=True)
    assert ps.images.shape == (6, 3, 20, 20)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["set", "src"]


def test_prepare_empty_source_makes_nothing(tmp_path):
    (tmp_path / "src" / "a").mkdir(parents=True)
    with pytest.raises(ValueError, match="has no image files"):
        prepare(tmp_path / "src", tmp_path / "set", progress=False)
    assert not (tmp_path / "set").exists()
    with pytest.raises(ValueError, match="must not exceed"):
        prepare(tmp_path / "src", tmp_path / "set", short_side=16, crop=32, progress=False)


def test_open_checks_the_files(tmp_path):
    with pytest.raises(ValueError, match="not a prepared set"):
        open_prepared(tmp_path)
    make_folder(tmp_path / "src")
    prepare(tmp_path / "src", tmp_path / "set", short_side=8, crop=8, progress=False)
    with open(tmp_path / "set" / "images.u8", "ab") as f:
        f.write(b"\0")
    with pytest.raises(ValueError, match="bytes, expected"):
        open_prepared(tmp_path / "set")


def test_help_cites_the_paper(capsys):
    with pytest.raises(SystemExit):
        main(["prepare", "--help"])
    out = capsys.readouterr().out
    assert "Sec. 2" in out and "--short-side" in out and "Sec. 4.1" in out


def test_real_imagenette_slice(tmp_path, capsys):
    root = SHARED_DATA / "imagenette2-224"
    if not root.is_dir():
        pytest.skip(f"real data absent: {root}")
    src = tmp_path / "slice"
    wnids = sorted(p.name for p in (root / "val").iterdir())[:2]
    for wnid in wnids:  # 3 images of 2 classes, linked, not copied
        (src / "val" / wnid).mkdir(parents=True)
        for p in sorted((root / "val" / wnid).iterdir())[:3]:
            (src / "val" / wnid / p.name).symlink_to(p)
    assert main(["prepare", str(src), str(tmp_path / "set"), "--split", "val", "--quiet",
                 "--synsets", str(SHARED_DATA / "imagenet-synsets.tsv")]) == 0
    ps = open_prepared(tmp_path / "set")
    assert ps.images.shape == (6, 3, 256, 256) and ps.classes == wnids
    assert ps.names[0] == "tench"
    assert ps.eigvals[0] > ps.eigvals[1] > ps.eigvals[2] > 0
    ld = BatchLoader(ps.images, ps.labels, 4, transform=TrainTransform(mean=ps.mean, crop=224, pca=ps.pca))
    shapes = [xb.shape for xb, _ in ld]
    assert shapes == [(4, 3, 224, 224), (2, 3, 224, 224)]
    assert main(["info", str(tmp_path / "set")]) == 0
    assert "class counts: [3, 3]" in capsys.readouterr().out
