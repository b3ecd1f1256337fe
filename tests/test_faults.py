"""Fault injection (issue 15): bad input, broken files and kills give one line, and lose nothing.

Every case here checks three things:
- the command fails with ONE line on stderr that names the bad input (no traceback);
- its exit code (2 bad input, 1 out of memory, 130 interrupted; see minialex.errors);
- nothing that existed before is lost: a finished run's checkpoint and metrics are
  byte-for-byte unchanged, a file we pointed at is untouched, a killed write leaves
  the previous checkpoint loadable and its temporary file is removed by the next run.

Most cases call the command lines in-process (``main(argv)``, as ``python -m`` does);
the kills, signals and MINIALEX_DEBUG run a real ``python -m minialex.train`` process.
Runs use the tiny config on 64 bundled images (4 steps per epoch).
"""
from __future__ import annotations

import os
import pickle
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from minialex import evaluate, train, viz
from minialex.checkpoint import CHECKSUMS, load_checkpoint, read_checkpoint, save_checkpoint
from minialex.data import __main__ as data_cli
from minialex.errors import CheckpointError
from minialex.model import AlexNet, AlexNetConfig

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--config", "tiny", "--limit", "64", "--batch-size", "16", "--quiet", "--no-plot"]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OPENBLAS_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1",
       "PYTHONUNBUFFERED": "1"}
ENV.pop("MINIALEX_DEBUG", None)


# ---------------------------------------------------------------- helpers
def call(main, argv, capsys):
    """Run a command line in-process: (exit code, stderr). argparse errors raise SystemExit."""
    try:
        code = main(list(argv))
    except SystemExit as e:
        code = e.code
    return code, capsys.readouterr().err


def assert_one_line_error(code, err, expected_code, *needles):
    """Exactly one stderr line says 'error:'; it holds every needle; no traceback anywhere."""
    assert code == expected_code, err
    assert "Traceback" not in err, err
    lines = [ln for ln in err.splitlines() if "error:" in ln]
    assert len(lines) == 1, err
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


def snapshot(folder):
    """{name: bytes} of every file in a folder (hidden ones too), to prove nothing changed."""
    return {p.name: p.read_bytes() for p in sorted(Path(folder).iterdir()) if p.is_file()}


def python_m(module, *argv, **kw):
    return subprocess.run([sys.executable, "-m", f"minialex.{module}", *argv], cwd=ROOT, env=ENV,
                          capture_output=True, text=True, timeout=180, **kw)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished tiny run (2 epochs) trained once; tests work on copies of it."""
    out = tmp_path_factory.mktemp("finished") / "run"
    assert train.main([*TINY, "--epochs", "2", "--out", str(out)]) == 0
    return out


@pytest.fixture
def run_copy(finished, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(finished, out)
    return out


def image_folder(root, size, classes=("ant", "bee"), per_class=2, splits=("train", "val")):
    rng = np.random.default_rng(0)
    for split in splits:
        for c in classes:
            (root / split / c).mkdir(parents=True)
            for i in range(per_class):
                a = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
                Image.fromarray(a).save(root / split / c / f"{i}.png")
    return root


# ---------------------------------------------------------------- corrupt checkpoints
def _data_offset(path, entry):
    """Byte offset of the array data of ``entry`` inside the zip (past the local header and .npy header)."""
    with zipfile.ZipFile(path) as z:
        info = z.getinfo(entry + ".npy")
    raw = Path(path).read_bytes()
    n, e = int.from_bytes(raw[info.header_offset + 26:info.header_offset + 28], "little"), \
        int.from_bytes(raw[info.header_offset + 28:info.header_offset + 30], "little")
    start = info.header_offset + 30 + n + e                   # the .npy file begins here
    return start + raw[start:start + 256].index(b"\n") + 1    # its header ends with a newline


def _rewrite(src, dst, change):
    """Copy an npz entry by entry, letting ``change(dict)`` edit the arrays (a consistent zip: valid CRCs)."""
    with np.load(src, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    change(arrays)
    with open(dst, "wb") as f:
        np.savez(f, **arrays)


def corrupt(kind, good, bad):
    """Write a broken version of checkpoint ``good`` to ``bad``; returns the words the error must contain."""
    raw = good.read_bytes()
    if kind == "truncated":
        bad.write_bytes(raw[: len(raw) // 2])
        return ["truncated"]
    if kind == "empty":
        bad.write_bytes(b"")
        return ["empty"]
    if kind == "flipped byte":                                # zip CRC-32 catches it
        off = _data_offset(good, "param/conv1.w") + 5
        bad.write_bytes(raw[:off] + bytes([raw[off] ^ 0xFF]) + raw[off + 1:])
        return ["corrupt", "param/conv1.w"]
    if kind == "edited weights":                              # valid zip, our checksum catches it
        _rewrite(good, bad, lambda a: a.__setitem__("param/fc8.b", a["param/fc8.b"] + 1))
        return ["param/fc8.b", "checksum"]
    if kind == "missing entry":
        _rewrite(good, bad, lambda a: a.pop("param/conv2.w"))
        return ["param/conv2.w", "missing"]
    if kind == "nan weights (checksums redone)":
        def nan(a):
            a["param/fc8.w"] = np.full_like(a["param/fc8.w"], np.nan)
            from minialex.checkpoint import _crc, _from_json_array, _json_array
            sums = _from_json_array(a[CHECKSUMS])
            sums["param/fc8.w"] = _crc(a["param/fc8.w"])
            a[CHECKSUMS] = _json_array(sums)
        _rewrite(good, bad, nan)
        return ["param/fc8.w", "NaN"]
    if kind == "pickle":
        bad.write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
        return ["pickle", "not a minialex checkpoint"]
    if kind == "npy":
        np.save(bad, np.zeros(3))
        os.replace(str(bad) + ".npy", bad)
        return [".npy", "not a minialex checkpoint"]
    if kind == "text":
        bad.write_text("hello, I am not a checkpoint\n")
        return ["not a minialex checkpoint"]
    if kind == "foreign npz":
        with open(bad, "wb") as f:
            np.savez(f, weights=np.zeros(3))
        return ["not a minialex checkpoint", "meta/format"]
    raise AssertionError(kind)


KINDS = ["truncated", "empty", "flipped byte", "edited weights", "missing entry",
         "nan weights (checksums redone)", "pickle", "npy", "text", "foreign npz"]


@pytest.mark.parametrize("kind", KINDS)
def test_corrupt_checkpoint_in_evaluate_viz_and_resume(kind, finished, tmp_path, capsys):
    bad = tmp_path / "bad.npz"
    words = corrupt(kind, finished / "checkpoint.npz", bad)
    before = bad.read_bytes()
    with pytest.raises(CheckpointError):                      # the library names the fault too
        load_checkpoint(bad)
    for main, argv in ((evaluate.main, [str(bad)]),
                       (viz.main, ["filters", str(bad), "-o", str(tmp_path / "f.png")]),
                       (train.main, ["--resume", str(bad), "--out", str(tmp_path / "r")])):
        code, err = call(main, argv, capsys)
        assert_one_line_error(code, err, 2, str(bad), *words)
    assert bad.read_bytes() == before                         # reading never writes
    assert not (tmp_path / "f.png").exists() and not (tmp_path / "r").exists()


def test_resume_of_a_corrupt_run_keeps_the_run(run_copy, capsys):
    ck = run_copy / "checkpoint.npz"
    ck.write_bytes(ck.read_bytes()[:-100])                    # the end (zip directory) is gone
    before = snapshot(run_copy)
    code, err = call(train.main, ["--out", str(run_copy), "--resume"], capsys)
    assert_one_line_error(code, err, 2, str(ck), "truncated")
    assert snapshot(run_copy) == before


def test_a_checkpoint_that_is_a_folder(finished, capsys, tmp_path):
    for main, argv in ((evaluate.main, [str(finished)]), (viz.main, ["filters", str(finished)])):
        code, err = call(main, argv, capsys)
        assert_one_line_error(code, err, 2, str(finished), "directory")
    code, err = call(evaluate.main, [str(tmp_path / "nope.npz")], capsys)
    assert_one_line_error(code, err, 2, "nope.npz", "not found")


def test_debug_flag_and_environment_show_the_traceback(finished, tmp_path, capsys, monkeypatch):
    bad = tmp_path / "bad.npz"
    corrupt("truncated", finished / "checkpoint.npz", bad)
    with pytest.raises(CheckpointError, match="truncated"):   # --debug: the exception propagates
        evaluate.main([str(bad), "--debug"])
    monkeypatch.setenv("MINIALEX_DEBUG", "1")
    with pytest.raises(CheckpointError):
        viz.main(["filters", str(bad)])
    res = subprocess.run([sys.executable, "-m", "minialex.evaluate", str(bad)], cwd=ROOT, capture_output=True,
                         text=True, timeout=120, env={**ENV, "MINIALEX_DEBUG": "1"})
    assert res.returncode == 1 and "Traceback" in res.stderr and "CheckpointError" in res.stderr
    res = python_m("evaluate", str(bad))                      # the same, as a user sees it
    assert_one_line_error(res.returncode, res.stderr, 2, "truncated")


# ---------------------------------------------------------------- the run directory
def test_a_finished_run_is_never_overwritten_silently(run_copy, capsys):
    before = snapshot(run_copy)
    code, err = call(train.main, [*TINY, "--out", str(run_copy)], capsys)
    assert_one_line_error(code, err, 2, str(run_copy), "--resume", "--overwrite")
    assert snapshot(run_copy) == before
    code, err = call(train.main, [*TINY, "--out", str(run_copy), "--resume", "--overwrite"], capsys)
    assert_one_line_error(code, err, 2, "--resume", "--overwrite")
    assert snapshot(run_copy) == before
    assert train.main([*TINY, "--out", str(run_copy), "--overwrite", "--epochs", "1"]) == 0
    assert read_checkpoint(run_copy / "checkpoint.npz")["extra"]["step"] == 4     # the new run


def test_the_trainer_itself_refuses_an_existing_run(run_copy):
    """The guard is in the library too, for code that builds a Trainer directly."""
    from minialex.errors import RunExistsError
    from minialex.trainer import Trainer

    class Loader:
        seed = 0

        def __len__(self):
            return 1

    model = AlexNet(AlexNetConfig.tiny())
    t = Trainer(model, None, None, Loader(), (None, None, None), run_copy, epochs=1, log=lambda *a: None)
    before = snapshot(run_copy)
    with pytest.raises(RunExistsError, match="--resume"):
        t.fit()
    assert snapshot(run_copy) == before


@pytest.mark.parametrize("case", ["file", "below a file", "read-only"])
def test_out_that_cannot_be_written_fails_before_the_data_loads(case, tmp_path, capsys, monkeypatch):
    import minialex.data.datasets as datasets

    def no_data(*a, **k):
        raise AssertionError("the data was loaded before --out was checked")

    monkeypatch.setattr(datasets, "load_dataset", no_data)
    monkeypatch.setattr("minialex.data.load_dataset", no_data)
    blocker = tmp_path / "blocker"
    blocker.write_text("keep me")
    if case == "file":
        out, words = blocker, ["is a file"]
    elif case == "below a file":
        out, words = blocker / "run", ["is a file"]
    else:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o555)
        if os.geteuid() == 0:                     # root writes through permission bits: make access() say no
            real = os.access
            monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p) == ro else real(p, mode))
        out, words = ro / "run", ["not writable"]
    code, err = call(train.main, [*TINY, "--out", str(out)], capsys)
    assert_one_line_error(code, err, 2, str(out), *words)
    assert blocker.read_text() == "keep me"


# ---------------------------------------------------------------- bad option values
@pytest.mark.parametrize("main,argv,words", [
    (train.main, ["--seed", "-1"], ["--seed", "-1"]),
    (train.main, ["--pool", "9/9"], ["--pool 9/9", "window 9"]),
    (train.main, ["--lr", "inf"], ["--lr", "inf"]),
    (train.main, ["--lr", "nan"], ["--lr", "nan"]),
    (train.main, ["--weight-decay", "inf"], ["--weight-decay"]),
    (train.main, ["--input-scale", "-1e400"], ["--input-scale"]),
    (train.main, ["--batch-size", "many"], ["--batch-size", "many"]),
    (train.main, ["--limit", "0"], ["--limit", "0"]),
    (evaluate.main, ["CKPT", "--limit", "0"], ["--limit", "0"]),
    (evaluate.main, ["CKPT", "--batch-size", "0"], ["--batch-size", "0"]),
    (evaluate.main, ["CKPT", "--seed", "-3"], ["--seed", "-3"]),
    (viz.main, ["top5", "CKPT", "--count", "0"], ["--count", "0"]),
    (viz.main, ["neighbours", "CKPT", "--database", "-1"], ["--database", "-1"]),
    (viz.main, ["filters", "CKPT", "-o", "OUTDIR"], ["is a folder"]),
])
def test_bad_values_are_one_line(main, argv, words, finished, tmp_path, capsys):
    argv = [str(finished / "checkpoint.npz") if a == "CKPT" else str(tmp_path) if a == "OUTDIR" else a
            for a in argv]
    if main is train.main:
        argv += [*TINY, "--out", str(tmp_path / "run")]
    code, err = call(main, argv, capsys)
    assert_one_line_error(code, err, 2, *words)
    assert not (tmp_path / "run").exists()


def test_resume_with_another_config_names_the_option(run_copy, capsys):
    before = snapshot(run_copy)
    code, err = call(train.main, ["--out", str(run_copy), "--resume", "--config", "paper"], capsys)
    line = assert_one_line_error(code, err, 2, "--config", "'tiny' in the run")
    assert "--data" not in line                               # it used to blame --data
    assert snapshot(run_copy) == before


# ---------------------------------------------------------------- bad data folders
def test_bad_data_folders(tmp_path, capsys):
    cases = []
    empty_class = image_folder(tmp_path / "empty", 32)
    for f in (empty_class / "train" / "bee").iterdir():
        f.unlink()
    cases.append((empty_class, ["class folder", "bee", "no image files"]))
    no_val = image_folder(tmp_path / "noval", 32, splits=("train",))
    cases.append((no_val, ["no val/ (or test/)"]))
    loop = image_folder(tmp_path / "loop", 32)
    os.symlink(loop / "train" / "ant" / "x.jpg", loop / "train" / "ant" / "x.jpg")
    cases.append((loop, ["x.jpg", "symbolic link loop"]))
    mixed = image_folder(tmp_path / "mixed", 32)
    Image.fromarray(np.zeros((20, 24, 3), np.uint8)).save(mixed / "train" / "bee" / "z.png")
    cases.append((mixed, ["z.png", "24x20"]))
    unreadable = image_folder(tmp_path / "junk", 32)
    for f in (unreadable / "val").rglob("*.png"):
        f.write_bytes(b"not a png at all")
    cases.append((unreadable, ["val/ant/0.png", "cannot identify image file"]))
    other_classes = image_folder(tmp_path / "classes", 32)
    (other_classes / "val" / "cat").mkdir()
    shutil.copy(next((other_classes / "val" / "ant").iterdir()), other_classes / "val" / "cat" / "c.png")
    cases.append((other_classes, ["classes of train/ and val/ differ"]))
    a_file = tmp_path / "file"
    a_file.write_text("x")
    cases.append((a_file, ["is a file"]))
    for folder, words in cases:
        out = tmp_path / f"run-{folder.name}"
        code, err = call(train.main, [*TINY, "--data", str(folder), "--out", str(out)], capsys)
        assert_one_line_error(code, err, 2, *words)
        assert not (out / "checkpoint.npz").exists()


def test_planted_cifar_pickle_runs_nothing_and_is_not_skipped_silently(tmp_path, capsys):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    batches = tmp_path / "root" / "cifar-10-batches-py"
    batches.mkdir(parents=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"]:
        (batches / name).write_bytes(pickle.dumps(Evil()))
    code, err = call(train.main, [*TINY, "--data", "cifar10", "--data-root", str(tmp_path / "root"),
                                  "--out", str(tmp_path / "run")], capsys)
    assert_one_line_error(code, err, 2, "data_batch_1", "md5")
    assert not marker.exists()
    assert "JPEG copy" not in err                              # no silent fall-back to other data


# ---------------------------------------------------------------- images of the wrong size
@pytest.fixture(scope="module")
def paper_like(tmp_path_factory):
    """A checkpoint of the paper's geometry (224 crops of 256 images) with few kernels, so it is small."""
    cfg = AlexNetConfig.paper(conv_channels=(8, 8, 8, 8, 8), fc_sizes=(16, 16), num_classes=2)
    path = tmp_path_factory.mktemp("paper") / "checkpoint.npz"
    mean = np.full((3, 256, 256), 120.0, np.float32)
    prep = {"crop": 224, "pad": 0, "image_size": 256, "scale": 1.0, "mean": mean.tolist()}
    save_checkpoint(path, AlexNet(cfg), extra={"preprocess": prep, "class_names": ["ant", "bee"]})
    return path


def test_viz_on_a_paper_config_checkpoint_with_an_image_folder(paper_like, tmp_path, capsys):
    folder = image_folder(tmp_path / "imgs", 224)             # like imagenette2-224: rescaled to 256 first
    for fig, extra in (("top5", ["--count", "2"]), ("neighbours", ["--count", "2", "--neighbours", "2"])):
        out = tmp_path / f"{fig}.png"
        code, err = call(viz.main, [fig, str(paper_like), "--data", str(folder), "-o", str(out), *extra], capsys)
        assert code == 0, err
        assert Image.open(out).size in ((1000, 500), (800, 600))


def test_images_of_the_wrong_size_name_the_expected_size(paper_like, finished, tmp_path, capsys):
    code, err = call(viz.main, ["top5", str(paper_like), "--data", "default", "-o", str(tmp_path / "t.png")],
                     capsys)
    assert_one_line_error(code, err, 2, "this checkpoint expects 256x256", "32x32")
    big = image_folder(tmp_path / "big", 48)
    ck = str(finished / "checkpoint.npz")
    for main, argv in ((evaluate.main, [ck, "--data", str(big)]),
                       (viz.main, ["neighbours", ck, "--data", str(big), "-o", str(tmp_path / "n.png")])):
        code, err = call(main, argv, capsys)
        assert_one_line_error(code, err, 2, "this checkpoint expects 32x32", "48x48")


# ---------------------------------------------------------------- python -m minialex.data
def test_every_data_prepare_error_is_one_line(tmp_path, capsys):
    src = image_folder(tmp_path / "src", 40, splits=("train",)) / "train"
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "keep.txt").write_text("keep")
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    empty = tmp_path / "emptysrc"
    (empty / "cls").mkdir(parents=True)
    cases = [
        (["prepare", str(tmp_path / "nope"), str(tmp_path / "d1")], ["nope", "no such folder"]),
        (["prepare", str(src), str(existing)], [str(existing), "exists", "--overwrite"]),
        (["prepare", str(src), str(tmp_path / "d2"), "--crop", "300"], ["--crop 300", "--short-side 256"]),
        (["prepare", str(src), str(tmp_path / "d3"), "--short-side", "0"], ["--short-side", "0"]),
        (["prepare", str(src), str(tmp_path / "d4"), "--workers", "-2"], ["--workers", "-2"]),
        (["prepare", str(src), str(a_file / "d5")], ["a_file", "not a writable folder"]),
        (["prepare", str(empty), str(tmp_path / "d6")], ["cls", "no image files"]),
        (["info", str(tmp_path / "nope")], ["nope", "not a prepared set"]),
        (["info", str(src)], ["not a prepared set"]),
        (["cifar10", str(tmp_path / "nothing")], ["no cifar-10-batches-py/", "--download"]),
    ]
    for argv, words in cases:
        code, err = call(data_cli.main, argv, capsys)
        assert_one_line_error(code, err, 2, *words)
    assert (existing / "keep.txt").read_text() == "keep" and a_file.read_text() == "x"
    assert not any((tmp_path / f"d{i}").exists() for i in range(1, 7))
    assert data_cli.main(["prepare", str(src), str(tmp_path / "ok"), "--short-side", "40", "--crop", "32",
                          "--quiet"]) == 0
    meta = (tmp_path / "ok" / "meta.json")
    meta.write_text("{ not json")
    code, err = call(data_cli.main, ["info", str(tmp_path / "ok")], capsys)
    assert_one_line_error(code, err, 2, "meta.json", "corrupt")


# ---------------------------------------------------------------- out of memory
def test_out_of_memory_says_lower_the_batch_size(tmp_path, capsys, monkeypatch):
    """An allocation that fails (as numpy reports it) becomes one line with the hint; nothing is written."""
    import minialex.experiment as experiment

    def alloc(*a, **k):
        np.empty(1 << 62, dtype=np.uint8)                      # 4 EiB: numpy raises MemoryError at once

    assert "BatchLoader" not in vars(experiment)              # run() takes it from minialex.data
    monkeypatch.setattr("minialex.data.BatchLoader", alloc)
    code, err = call(train.main, [*TINY, "--out", str(tmp_path / "run")], capsys)
    assert_one_line_error(code, err, 1, "out of memory", "Unable to allocate", "lower --batch-size")
    assert not (tmp_path / "run" / "checkpoint.npz").exists()


# ---------------------------------------------------------------- kills and signals
WRITER = textwrap.dedent("""
    import sys, time
    import numpy as np
    import minialex.checkpoint as ck
    from minialex.checkpoint import read_checkpoint
    from minialex.model import AlexNet, AlexNetConfig
    from minialex.optim import SGD
    from minialex.schedules import Constant
    path = sys.argv[1]
    extra = read_checkpoint(path)["extra"]
    model = AlexNet(AlexNetConfig.tiny(dtype="float32"))
    opt = SGD(model)
    real_savez = np.savez
    def slow_savez(f, **arrays):            # write half of the file, then hang until killed
        real_savez(f, **arrays)
        f.truncate(f.tell() // 2)
        f.flush()
        print("writing", flush=True)
        time.sleep(600)
    ck.np.savez = slow_savez
    ck.save_checkpoint(path, model, opt, Constant(opt), extra=dict(extra, step=999))
""")


def test_sigkill_during_a_checkpoint_write_loses_nothing(run_copy, tmp_path, capsys):
    """kill -9 in the middle of a write: the old checkpoint stays whole; the next start removes the temp file."""
    ck = run_copy / "checkpoint.npz"
    good = ck.read_bytes()
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(ck)], cwd=ROOT, env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing", proc.stderr.read()
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    stale = [p for p in run_copy.iterdir() if p.name.startswith(".checkpoint.npz.") and p.name.endswith(".tmp")]
    assert len(stale) == 1 and stale[0].stat().st_size > 0   # the killed write's half file
    assert ck.read_bytes() == good and read_checkpoint(ck)["extra"]["step"] == 8
    assert train.main(["--out", str(run_copy), "--resume", "--epochs", "3"]) == 0   # in-process: faster
    assert f"removed {stale[0].name}" in capsys.readouterr().out
    assert not stale[0].exists()
    assert read_checkpoint(ck)["extra"]["step"] == 12        # continued from step 8


def _wait_for_epoch(proc, metrics, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        if metrics.exists() and len(metrics.read_text().splitlines()) >= 2:
            return
        time.sleep(0.1)
    out, err = proc.communicate(timeout=30) if proc.poll() is not None else ("", "still running")
    raise AssertionError(f"no epoch finished: {err}")


def test_sigkill_at_a_random_moment_then_resume(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "minialex.train", *TINY, "--epochs", "1000", "--out", str(out)],
                            cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _wait_for_epoch(proc, out / "metrics.csv")
    time.sleep(np.random.default_rng().uniform(0, 0.3))      # somewhere in the next epochs
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    step = read_checkpoint(out / "checkpoint.npz")["extra"]["step"]   # loads: whole, checksums pass
    assert step % 4 == 0                    # written at epoch ends only (4 steps each; 0 if the kill beat epoch 1)
    assert train.main(["--out", str(out), "--resume", "--max-steps", str(step + 1)]) == 0
    assert read_checkpoint(out / "checkpoint.npz")["extra"]["step"] == step + 1
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


def test_a_second_signal_aborts_in_one_line_and_keeps_the_checkpoint(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "minialex.train", *TINY, "--epochs", "1000", "--out", str(out)],
                            cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _wait_for_epoch(proc, out / "metrics.csv")
    proc.send_signal(signal.SIGINT)                           # Ctrl-C, and at once a second signal
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    line = assert_one_line_error(proc.returncode, err, 130, "received a second time", "checkpoint.npz", "--resume")
    ck = read_checkpoint(out / "checkpoint.npz")               # whole and loadable
    step = ck["extra"]["step"]                 # 4 or more; 0 when the abort cut the epoch-end write short
    assert f"(step {step}) is kept" in line    # the message names the checkpoint that is on disk
    assert train.main(["--out", str(out), "--resume", "--max-steps", str(step + 1)]) == 0
    assert read_checkpoint(out / "checkpoint.npz")["extra"]["step"] == step + 1
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


def test_a_run_stopped_before_its_first_step_resumes(tmp_path, capsys, monkeypatch):
    """A fresh run writes a checkpoint at step 0; Ctrl-C before step 1 leaves only that, and --resume takes it."""
    from minialex.trainer import Trainer

    def interrupted(self, stop):
        raise KeyboardInterrupt

    monkeypatch.setattr(Trainer, "_run_epoch", interrupted)
    code, err = call(train.main, [*TINY, "--epochs", "1", "--out", str(tmp_path)], capsys)
    assert_one_line_error(code, err, 130, "interrupted")
    assert read_checkpoint(tmp_path / "checkpoint.npz")["extra"]["step"] == 0
    monkeypatch.undo()
    assert train.main(["--out", str(tmp_path), "--resume"]) == 0
    assert read_checkpoint(tmp_path / "checkpoint.npz")["extra"]["step"] == 4


def test_stale_temp_files_of_dead_writers_go_live_ones_stay(tmp_path):
    from minialex.tempfiles import remove_stale

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()                    # a pid whose process has exited
    keep_own = tmp_path / f".checkpoint.npz.{os.getpid()}.abc.tmp"      # this process: a write in progress
    keep_parent = tmp_path / f".checkpoint.npz.{os.getppid()}.def.tmp"  # another live process
    stale = tmp_path / f".checkpoint.npz.{dead}.xyz.tmp"
    old_style = tmp_path / ".checkpoint.npz.q1w2e3.tmp"                # written before pids were in names
    stale_dir = tmp_path / f".cifar10-extract.{dead}.r4t5"
    for f in (keep_own, keep_parent, stale, old_style):
        f.write_bytes(b"x" * 10)
    (stale_dir / "cifar-10-batches-py").mkdir(parents=True)
    (stale_dir / "cifar-10-batches-py" / "data_batch_1").write_bytes(b"y" * 7)
    other = tmp_path / "checkpoint.npz"
    other.write_bytes(b"keep")
    removed = dict(remove_stale(tmp_path, ".checkpoint.npz.", ".tmp"))
    assert removed == {stale: 10, old_style: 10}
    assert dict(remove_stale(tmp_path, ".cifar10-extract.")) == {stale_dir: 7}
    assert keep_own.exists() and keep_parent.exists() and other.read_bytes() == b"keep"


def test_a_damaged_metrics_csv_is_named(run_copy, capsys):
    metrics = run_copy / "metrics.csv"
    lines = metrics.read_text().splitlines()
    metrics.write_text("\n".join([lines[0], lines[1].replace(lines[1].split(",")[0], "one", 1), *lines[2:]]) + "\n")
    before = snapshot(run_copy)
    code, err = call(viz.main, ["curves", str(run_copy), "-o", str(run_copy / "c.png")], capsys)
    assert_one_line_error(code, err, 2, "metrics.csv, line 2, column 'epoch'", "'one' is not a number")
    code, err = call(train.main, ["--out", str(run_copy), "--resume", "--epochs", "3"], capsys)
    assert_one_line_error(code, err, 2, "metrics.csv, line 2")
    assert snapshot(run_copy) == before


def test_a_second_signal_during_a_checkpoint_write_waits_for_the_write():
    from minialex.trainer import Interrupted, StopRequest

    written = []
    with StopRequest(kept=lambda: f"step {written[-1]} is kept") as stop:
        stop._handle(signal.SIGINT, None)             # first: stop at the next step boundary
        assert stop
        with pytest.raises(Interrupted, match="SIGTERM received a second time.*step 8 is kept"):
            with stop.holding():
                stop._handle(signal.SIGTERM, None)    # second, mid-write: held
                written.append(8)                     # the write completes
        with pytest.raises(Interrupted, match="step 8 is kept"):
            stop._handle(signal.SIGINT, None)         # outside a write: at once
