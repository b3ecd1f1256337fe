"""A prepare killed at any moment resumes and ends with the same files as an
uninterrupted run, and leaves nothing behind (issue 17, item 1)."""
import io
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import minialex.data.preparer as P
from minialex.data import open_prepared, prepare

REPO = Path(__file__).resolve().parents[1]


def make_source(root, classes=3, per_class=7, size=(40, 30), bad=True):
    """root/<class>/*.jpg, random pictures; with ``bad``, two unreadable files sort
    first in class 0, so their rows are filled by later images when the set is compacted."""
    rng = np.random.default_rng(3)
    for c in range(classes):
        d = root / f"c{c}"
        d.mkdir(parents=True)
        for k in range(per_class):
            a = rng.integers(0, 256, (size[1] + k, size[0] + 2 * k, 3), dtype=np.uint8)
            Image.fromarray(a).save(d / f"img{k:03d}.jpg", quality=90)
    if bad:
        (root / "c0" / "a_corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
        buf = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (50, 50, 3), dtype=np.uint8)).save(buf, format="PNG")
        (root / "c0" / "b_truncated.png").write_bytes(buf.getvalue()[:150])


def files_of(folder):
    return {p.name: p.read_bytes() for p in sorted(Path(folder).iterdir())}


def _killed_child(src, dst, n, chunk):
    """Run prepare and die like kill -9 (os._exit, no clean-up) at the n-th write or row move."""
    count = [0]
    orig_copy = P._copy_row

    def tick():
        count[0] += 1
        if count[0] == n:
            os._exit(9)

    def write(path, fn):
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as f:
            fn(f)
        tick()                 # dies after the temporary file, before the rename
        os.replace(tmp, path)

    def copy(*a):
        tick()
        orig_copy(*a)

    P._atomic_write, P._copy_row, P.SAVE_EVERY_S = write, copy, 0.0
    import warnings
    warnings.simplefilter("ignore")
    prepare(src, dst, short_side=24, crop=20, workers=1, chunk=chunk, progress=False, log=lambda m: None)
    os._exit(0)


def test_killed_at_every_write_resumes_to_the_same_set(tmp_path):
    make_source(tmp_path / "src")
    with pytest.warns(RuntimeWarning, match="skipped 2"):
        ref = prepare(tmp_path / "src", tmp_path / "ref" / "set", short_side=24, crop=20, workers=1, chunk=4,
                      progress=False)
    assert len(ref) == 21 and ref.meta["listed"] == 23
    man = (ref.path / "manifest.tsv").read_text().splitlines()
    assert man[1].startswith("c0/a_corrupt.jpg\t0\tc0\tskipped\t-1\t")   # source, label, class, status, row
    want = files_of(ref.path)
    ctx = multiprocessing.get_context("fork")
    n, finished = 0, False
    while not finished:
        n += 1
        out = tmp_path / f"run{n}"
        dst = out / "set"
        p = ctx.Process(target=_killed_child, args=(tmp_path / "src", dst, n, 4))
        p.start()
        p.join(60)
        assert p.exitcode in (0, 9), p.exitcode
        finished = p.exitcode == 0
        if not finished:
            if dst.exists():   # only the rename itself is left: the set is complete
                assert (dst / "meta.json").is_file()
            else:   # nothing that looks like a prepared set
                assert not any((q / "meta.json").is_file() and q.name == "set" for q in out.iterdir())
            import warnings
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if not dst.exists():
                    prepare(tmp_path / "src", dst, short_side=24, crop=20, workers=1, chunk=4, progress=False,
                            log=lambda m: None)
        assert files_of(dst) == want, f"killed at event {n}"
        assert sorted(q.name for q in out.iterdir()) == ["set"], f"leftovers after event {n}"
    assert n > 15   # every state write, every row move and every final file was a kill point


@pytest.mark.filterwarnings("ignore:skipped 2")
def test_kill_9_at_random_moments_with_two_workers(tmp_path):
    """The real thing: the command line with two worker processes, its whole
    process group killed with SIGKILL at random moments, then run again."""
    make_source(tmp_path / "src", classes=4, per_class=60, size=(320, 240))
    t0 = time.monotonic()
    ref = prepare(tmp_path / "src", tmp_path / "ref" / "set", short_side=40, crop=32, workers=1, chunk=8,
                  progress=False, log=lambda m: None)
    t_ref = time.monotonic() - t0   # one worker, no start-up: the killed runs take longer than half of it
    want = files_of(ref.path)
    dst = tmp_path / "out" / "set"
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / ".set.tmp-abc123").mkdir()   # what the old thread-pool version left after a kill
    cmd = [sys.executable, "-m", "minialex.data", "prepare", str(tmp_path / "src"), str(dst), "--short-side", "40",
           "--crop", "32", "--workers", "2", "--chunk", "8", "--quiet"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OPENBLAS_NUM_THREADS": "1"}
    rng = np.random.default_rng(0)
    kills, resumed = 0, 0
    for attempt in range(12):
        proc = subprocess.Popen(cmd, env=env, start_new_session=True, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
        lines, started = [], threading.Event()

        def read(stream=proc.stderr, lines=lines, started=started):
            for line in stream:
                lines.append(line)
                if line.startswith("resuming"):
                    started.set()

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        work = tmp_path / "out" / ".set.partial"
        t0 = time.monotonic()
        # wait until this run works: the first creates the work folder, later ones say they resume
        while proc.poll() is None and time.monotonic() - t0 < 30 and not (
                started.is_set() if attempt else (work / "state.npz").exists()):
            time.sleep(0.01)
        if attempt < 6:  # the first six runs are killed after a random time; the last one may finish
            time.sleep(rng.uniform(0.1, 0.5) * t_ref)
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                kills += 1
        proc.wait()
        reader.join(10)
        resumed += any(line.startswith("resuming") for line in lines)
        if dst.exists():
            break
        assert not (work / "meta.json").exists()   # nothing that looks complete before it is
    else:
        pytest.fail("prepare never finished")
    assert kills >= 2 and resumed >= 2, (kills, resumed)   # else the test did not test resuming
    assert files_of(dst) == want   # same bytes as one uninterrupted single-worker run
    assert sorted(q.name for q in (tmp_path / "out").iterdir()) == ["set"]


def test_other_options_discard_an_interrupted_run(tmp_path, capsys):
    make_source(tmp_path / "src", bad=False)
    dst = tmp_path / "set"
    ctx = multiprocessing.get_context("fork")
    p = ctx.Process(target=_killed_child, args=(tmp_path / "src", dst, 4, 2))
    p.start()
    p.join(60)
    assert p.exitcode == 9 and (tmp_path / ".set.partial" / "state.npz").is_file()
    notes = []
    ps = prepare(tmp_path / "src", dst, short_side=24, crop=16, workers=1, progress=False, log=notes.append)
    assert ps.images.shape == (21, 3, 16, 16) and "discarding" in notes[0]
    assert sorted(q.name for q in tmp_path.iterdir()) == ["set", "src"]


def test_worker_count_does_not_change_the_result(tmp_path):
    make_source(tmp_path / "src", bad=False, per_class=10)
    a = prepare(tmp_path / "src", tmp_path / "a", short_side=24, crop=20, workers=1, chunk=3, progress=False)
    b = prepare(tmp_path / "src", tmp_path / "b", short_side=24, crop=20, workers=2, chunk=3, progress=False)
    fa, fb = files_of(a.path), files_of(b.path)
    meta_a, meta_b = fa.pop("meta.json"), fb.pop("meta.json")
    assert fa == fb and meta_a == meta_b
    # and the statistics are those of the stored images (streamed exactly)
    from minialex.data import image_statistics
    mean, cov = image_statistics(np.asarray(a.images))
    np.testing.assert_allclose(a.mean, mean, rtol=1e-6)
    np.testing.assert_allclose(a.rgb_cov, cov, rtol=1e-9)
    assert open_prepared(a.path).labels.tolist() == [0] * 10 + [1] * 10 + [2] * 10


def test_splits_share_one_worker_pool_and_match_one_worker(tmp_path, monkeypatch):
    """prepare_splits starts one WorkerPool for train and val (its start-up, about 0.5 s, is paid
    once and overlaps the listing), and the sets equal those of a one-worker run."""
    make_source(tmp_path / "src" / "train", bad=False, per_class=5)
    make_source(tmp_path / "src" / "val", bad=False, per_class=2)
    one = P.prepare_splits(tmp_path / "src", tmp_path / "one", short_side=24, crop=20, workers=1, chunk=3,
                           progress=False)
    made = []
    real = P.WorkerPool

    class Counted(real):
        def __init__(self, workers):
            made.append(workers)
            super().__init__(workers)

    monkeypatch.setattr(P, "WorkerPool", Counted)
    two = P.prepare_splits(tmp_path / "src", tmp_path / "two", short_side=24, crop=20, workers=2, chunk=3,
                           progress=False)
    assert made == [2]
    for split in ("train", "val"):
        fa, fb = files_of(one[split].path), files_of(two[split].path)
        assert fa.pop("meta.json") == fb.pop("meta.json") and fa == fb
