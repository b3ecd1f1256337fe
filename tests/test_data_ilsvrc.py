"""The official ILSVRC-2012 layouts (issue 17, item 2): per-class tar files,
the flat val folder labelled by the devkit (meta.mat, read without SciPy) or
by LOC_val_solution.csv, and one prepare command for every split."""
import json
import stat

import numpy as np
import pytest

from data_helpers import IMAGENETTE, SHARED_DATA, ilsvrc_tree, write_mat_synsets
from minialex.data import open_prepared, preprocess_image
from minialex.data.__main__ import main
from minialex.data.ilsvrc import list_source, read_id_to_wnid, read_val_labels
from minialex.data.matfile import MatFileError, read_mat


@pytest.mark.parametrize("compress", [False, True])
def test_matfile_reads_the_devkit_struct(tmp_path, compress):
    write_mat_synsets(tmp_path / "meta.mat", [3, 1, 2], ["n03", "n01", "n02"], compress=compress)
    syn = read_mat(tmp_path / "meta.mat")["synsets"]
    assert [s["WNID"] for s in syn] == ["n03", "n01", "n02"]
    assert [float(s["ILSVRC2012_ID"].ravel()[0]) for s in syn] == [3.0, 1.0, 2.0]
    assert syn[0]["words"] == "words of n03" and syn[0]["children"].size == 0
    assert read_id_to_wnid(tmp_path / "meta.mat") == {3: "n03", 1: "n01", 2: "n02"}


def test_matfile_agrees_with_scipy(tmp_path):
    sio = pytest.importorskip("scipy.io", reason="SciPy absent: the hand-written file is checked by the test above")
    syn = np.zeros((3, 1), dtype=[("ILSVRC2012_ID", "O"), ("WNID", "O"), ("children", "O")])
    for i, (ident, w) in enumerate([(2, "n05"), (1, "n04"), (3, "n09")]):
        syn[i, 0] = (np.array([[float(ident)]]), w, np.array([[1.0, 2.0]]) if i == 2 else np.zeros((1, 0)))
    for comp in (False, True):
        sio.savemat(tmp_path / "s.mat", {"synsets": syn, "grid": np.arange(6.0).reshape(2, 3)}, do_compression=comp)
        got = read_mat(tmp_path / "s.mat")
        assert read_id_to_wnid(tmp_path / "s.mat") == {2: "n05", 1: "n04", 3: "n09"}
        np.testing.assert_array_equal(got["grid"], np.arange(6.0).reshape(2, 3))   # column-major undone
        np.testing.assert_array_equal(got["synsets"][2]["children"], [[1.0, 2.0]])
        write_mat_synsets(tmp_path / "own.mat", [7], ["n07"], compress=comp)       # our writer, SciPy's reader
        assert sio.loadmat(tmp_path / "own.mat")["synsets"][0, 0]["WNID"][0] == "n07"


def test_matfile_refuses_what_it_cannot_read(tmp_path):
    (tmp_path / "h5.mat").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 200)
    with pytest.raises(MatFileError, match="7.3"):
        read_mat(tmp_path / "h5.mat")
    (tmp_path / "x.mat").write_bytes(b"not a mat file" * 20)
    with pytest.raises(MatFileError, match="not a MATLAB"):
        read_mat(tmp_path / "x.mat")


def test_tar_train_and_devkit_val_in_one_command(tmp_path, capsys):
    """Per-class tars for train, the flat val folder labelled by the devkit; both
    splits by one command with two worker processes; pixels as Sec. 2 makes them."""
    tr, va = ilsvrc_tree(tmp_path / "src", n_classes=3, per_class=4, val_per_class=3, train="tar", val="devkit")
    dst = tmp_path / "out"
    assert main(["prepare", str(tmp_path / "src"), str(dst), "--short-side", "36", "--crop", "32",
                 "--workers", "2", "--chunk", "2", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "-> " + str(dst / "train") in out and "-> " + str(dst / "val") in out
    wnids = sorted(tr)
    ps = open_prepared(dst / "train")
    assert ps.classes == wnids and ps.images.shape == (12, 3, 32, 32)
    assert ps.labels.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    import io
    for i, (name, data) in enumerate(tr[wnids[1]]):  # row 4.. = class 1, member order
        np.testing.assert_array_equal(ps.images[4 + i], preprocess_image(io.BytesIO(data), 36, 32).transpose(2, 0, 1))
    val = open_prepared(dst / "val")
    truth = {n: wnids.index(w) for w, files in va.items() for n, _ in files}
    man = [line.split("\t") for line in (dst / "val" / "manifest.tsv").read_text().splitlines()[1:]]
    assert len(man) == 9 and all(m[3] == "ok" for m in man)
    for source, label, wnid, status, row, reason in man:   # manifest: file, label, class, status, row
        assert int(label) == truth[source] and wnid == wnids[truth[source]]
        assert val.labels[int(row)] == truth[source]
    assert sorted(val.labels.tolist()) == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    # normal permissions, nothing left beside the sets
    for p in [dst, dst / "train", dst / "val", dst / "train" / "images.u8"]:
        assert stat.S_IMODE(p.stat().st_mode) & 0o044 == 0o044, p   # readable by group and others
    assert sorted(p.name for p in dst.iterdir()) == ["train", "val"]


def test_loc_solution_and_class_folders_give_the_same_sets(tmp_path):
    ilsvrc_tree(tmp_path / "a", train="tar", val="loc")
    ilsvrc_tree(tmp_path / "b", train="folders", val="folders")
    for s in "ab":
        assert main(["prepare", str(tmp_path / s), str(tmp_path / f"out_{s}"), "--short-side", "20", "--crop", "16",
                     "--workers", "1", "--quiet"]) == 0
    for split in ("train", "val"):
        a, b = open_prepared(tmp_path / "out_a" / split), open_prepared(tmp_path / "out_b" / split)
        assert a.classes == b.classes
        # rows may be ordered differently (flat val: by file name); compare as sets of (image, label)
        ka = sorted((y, img.tobytes()) for img, y in zip(a.images, a.labels))
        kb = sorted((y, img.tobytes()) for img, y in zip(b.images, b.labels))
        assert ka == kb
        np.testing.assert_allclose(a.rgb_cov, b.rgb_cov, rtol=1e-12)


def test_labels_follow_the_synset_file_order(tmp_path):
    tsv = SHARED_DATA / "imagenet-synsets.tsv"
    if not tsv.is_file():
        pytest.skip(f"real data absent: {tsv}")
    wnids = [line.split("\t")[0] for line in tsv.read_text().splitlines()]
    assert wnids == sorted(wnids)   # so sorted wnids = the synset order = the usual ILSVRC labels 0..999
    ilsvrc_tree(tmp_path / "src", train="folders", val="devkit")
    assert main(["prepare", str(tmp_path / "src"), str(tmp_path / "out"), "--short-side", "16", "--crop", "16",
                 "--synsets", str(tsv), "--workers", "1", "--quiet"]) == 0
    ps = open_prepared(tmp_path / "out" / "val")
    assert ps.classes == sorted(ps.classes) and all(c in wnids for c in ps.classes)
    if IMAGENETTE.is_dir():
        assert ps.names[0] == "tench"


def test_flat_val_without_ground_truth_and_unknown_classes(tmp_path, capsys):
    tr, va = ilsvrc_tree(tmp_path / "src", train="folders", val="loc")
    (tmp_path / "src" / "LOC_val_solution.csv").rename(tmp_path / "solution.csv")
    assert main(["prepare", str(tmp_path / "src"), str(tmp_path / "out"), "--quiet", "--workers", "1"]) == 2   # bad input: exit 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "--val-labels" in err and "Traceback" not in err
    # a ground truth naming a class that train lacks: that file is skipped, with the reason listed
    lines = (tmp_path / "solution.csv").read_text().splitlines()
    first = lines[1].split(",")[0]
    lines[1] = f"{first},n09999999 1 2 3 4"
    (tmp_path / "solution.csv").write_text("\n".join(lines) + "\n")
    with pytest.warns(RuntimeWarning, match="skipped 1"):
        assert main(["prepare", str(tmp_path / "src"), str(tmp_path / "out"), "--short-side", "16", "--crop", "16",
                     "--val-labels", str(tmp_path / "solution.csv"), "--workers", "1", "--quiet"]) == 0
    skipped = (tmp_path / "out" / "val" / "skipped.tsv").read_text().splitlines()
    assert len(skipped) == 2 and skipped[1].startswith(first) and "n09999999" in skipped[1]
    meta = json.loads((tmp_path / "out" / "val" / "meta.json").read_text())
    assert meta["listed"] == 6 and meta["shape"][0] == 5


def test_ground_truth_forms(tmp_path):
    (tmp_path / "gt.txt").write_text("2\n1\n2\n")
    (tmp_path / "ids.txt").write_text("n01\nn02\n")
    want = {"ILSVRC2012_val_00000001": "n02", "ILSVRC2012_val_00000002": "n01", "ILSVRC2012_val_00000003": "n02"}
    assert read_val_labels(tmp_path / "gt.txt", tmp_path / "ids.txt") == want
    (tmp_path / "ids2.txt").write_text("2\tn02\n1\tn01\n")
    assert read_val_labels(tmp_path / "gt.txt", tmp_path / "ids2.txt") == want
    with pytest.raises(ValueError, match="meta.mat"):
        read_val_labels(tmp_path / "gt.txt")


def test_help_documents_the_layouts(capsys):
    with pytest.raises(SystemExit):
        main(["prepare", "--help"])
    out = capsys.readouterr().out
    for words in ("DST/train", "DST/val", "--data DST", "LOC_val_solution.csv", "meta.mat", "<wnid>.tar",
                  "kill -9", "--workers", "Sec. 2", "Sec. 4.1"):
        assert words in out, words


def test_list_source_reads_tar_members_in_place(tmp_path):
    tr, _ = ilsvrc_tree(tmp_path / "src", n_classes=2, per_class=3, train="tar", val="folders")
    ls = list_source(tmp_path / "src" / "train", max_per_class=2)
    assert len(ls) == 4 and ls.labels.tolist() == [0, 0, 1, 1]
    w = sorted(tr)[0]
    assert ls.source(0) == f"{w}.tar:{tr[w][0][0]}"
    with open(ls.path(0), "rb") as f:   # the byte range is the member's data
        f.seek(ls.offsets[0])
        assert f.read(ls.sizes[0]) == tr[w][0][1]


def test_one_split_is_labelled_against_train(tmp_path):
    import shutil
    tr, va = ilsvrc_tree(tmp_path / "src", train="folders", val="folders")
    wnids = sorted(tr)
    shutil.rmtree(tmp_path / "src" / "val" / wnids[0])   # val lacks the first class
    assert main(["prepare", str(tmp_path / "src"), str(tmp_path / "val"), "--split", "val", "--short-side", "16",
                 "--crop", "16", "--workers", "1", "--quiet"]) == 0
    ps = open_prepared(tmp_path / "val")
    assert ps.classes == wnids and sorted(set(ps.labels.tolist())) == [1, 2]
