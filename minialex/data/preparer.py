"""The one-time prepare step (Sec. 2) at ImageNet scale: worker processes,
chunks that survive a kill, a manifest, and statistics kept in a stream.

    prepare_splits("ILSVRC2012", "prepared")      # prepared/train, prepared/val (and test/)
    prepare("ILSVRC2012/train", "prepared/train", workers=16)

How a run proceeds (``dst`` = ``prepared/train``):

1. The source is listed (``ilsvrc.list_source``: class folders, per-class tar
   files or a flat val folder). Row i of the output belongs to listed file i.
2. Work happens in ``.train.partial`` beside ``dst``: ``plan.json`` (options
   and a digest of the listing), ``images.u8`` allocated at full size, and
   ``state.npz``: which chunks are done, each file's status, and the running
   sums for the statistics.
3. Chunks of ``chunk`` files go to worker processes. A worker decodes its
   files (Sec. 2: RGB, short side 256, central 256 crop), writes their rows
   into ``images.u8`` at their own offsets and returns the chunk's sums. The
   main process adds them to the totals and records the chunk as done in
   ``state.npz`` (written to a temporary file, then renamed: a kill leaves
   the old or the new state, never half of one). A chunk that was being
   decoded when the run was killed is simply decoded again.
4. When every chunk is done, the rows of skipped files are filled with the
   last good rows (``manifest.tsv`` gives every file's row), the array is
   truncated to the good rows, the small files are written, ``meta.json``
   last, and the folder is renamed to ``dst``. A folder without ``meta.json``
   is never opened as a prepared set, so a half-written array cannot be
   mistaken for a complete one.

Rerunning the same command after a kill resumes from ``state.npz``; the
result is byte for byte that of an uninterrupted run, because every sum is an
exact integer (sums of uint8 values and of their products), so the order in
which chunks finish does not matter. Leftover temporary folders of earlier
versions (``.train.tmp-*``) are removed.

Memory: a worker holds one chunk's sums, the main process one (S, S, 3)
int64 sum image, three RGB sums and one status byte per file (plus the
listing, about 200 bytes a file), whatever the number of images.
"""
from __future__ import annotations

import contextlib
import io
import itertools
import json
import multiprocessing
import os
import shutil
import sys
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path

import numpy as np

from ..progress import Progress
from .augment import pca_eigen
from .folder import load_rgb, read_synsets, warn_skipped
from .ilsvrc import find_val_labels, is_flat, list_source, source_classes, split_folders
from .prepared import FORMAT_VERSION, PreparedSet, open_prepared
from .preprocess import preprocess_image

PENDING, OK, SKIPPED = 0, 1, 2
PLAN_VERSION = 1
SAVE_EVERY_S = 0.5   # state.npz is rewritten at most this often after a chunk ends (a kill redoes at most
                     # this much work, plus the chunks in flight)


# ---------------------------------------------------------------- the worker side
def _decode(path, offset, size, short_side, crop):
    """One file (or tar member) -> (crop, crop, 3) uint8, Sec. 2 preprocessing."""
    if offset < 0:
        return preprocess_image(path, short_side, crop)
    with open(path, "rb") as f:
        f.seek(offset)
        data = f.read(size)
    if len(data) != size:
        raise OSError(f"tar member is truncated ({len(data)} of {size} bytes)")
    return preprocess_image(load_rgb(io.BytesIO(data)), short_side, crop)


def decode_chunk(images_path, start, items, short_side, crop):
    """Decode one chunk and write its rows; return its status and exact sums.

    items: list of ``(path, offset, size, skip reason or None)`` for rows
    ``start, start + 1, ...``. Runs in a worker process (or in the caller when
    there is one worker).

    Returns ``(start, status (n,) uint8, {row: reason}, sum_img (S, S, 3)
    int64, sum_rgb (3,) int64, sum_outer (3, 3) int64, n_ok)``.
    """
    S = crop
    row_bytes = 3 * S * S
    status = np.full(len(items), OK, dtype=np.uint8)
    reasons = {}
    sum_img = np.zeros((S, S, 3), dtype=np.int64)
    sum_outer = np.zeros((3, 3))   # float64 sums of integers stay exact below 2**53: a chunk adds at most
                                   # n * S*S * 255**2 (256 images of 256x256: 1.1e12)
    fd = os.open(images_path, os.O_WRONLY)
    try:
        for j, (path, offset, size, skip) in enumerate(items):
            if skip is not None:
                status[j], reasons[start + j] = SKIPPED, skip
                continue
            try:
                a = _decode(path, offset, size, short_side, crop)    # (S, S, 3) uint8
            except Exception as e:  # corrupt, truncated, unreadable: skipped with the reason
                status[j], reasons[start + j] = SKIPPED, f"{type(e).__name__}: {e}"
                continue
            chw = np.ascontiguousarray(a.transpose(2, 0, 1))    # (S, S, 3) -> (3, S, S), the stored layout
            os.pwrite(fd, chw.data, (start + j) * row_bytes)
            sum_img += a
            planes = chw.reshape(3, -1).astype(np.float64)      # (3, S*S)
            sum_outer += np.einsum("ij,kj->ik", planes, planes)  # sum over pixels of x x^T; no BLAS threads
    finally:
        os.close(fd)
    sum_rgb = sum_img.sum(axis=(0, 1))                           # (3,) int64, from the exact image sum
    return (start, status, reasons, sum_img, sum_rgb, sum_outer.astype(np.int64),
            int((status == OK).sum()))


def _copy_row(fd, src_row, dst_row, row_bytes):
    """Copy one image's row inside the array file."""
    os.pwrite(fd, os.pread(fd, row_bytes, src_row * row_bytes), dst_row * row_bytes)


# ---------------------------------------------------------------- state on disk
def _atomic_write(path, write):
    """Write via ``path.tmp`` and rename, so a kill leaves the old or the new file."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        write(f)
    os.replace(tmp, path)


class _State:
    """The resumable part of a run: done chunks, per-file status, exact sums."""

    def __init__(self, n, n_chunks, S):
        self.done = np.zeros(n_chunks, dtype=bool)
        self.status = np.zeros(n, dtype=np.uint8)
        self.reasons = {}
        self.sum_img = np.zeros((S, S, 3), dtype=np.int64)
        self.sum_rgb = np.zeros(3, dtype=np.int64)
        self.sum_outer = np.zeros((3, 3), dtype=np.int64)
        self.n_ok = 0

    def add(self, k, result):
        start, status, reasons, sum_img, sum_rgb, sum_outer, n_ok = result
        self.done[k] = True
        self.status[start:start + len(status)] = status
        self.reasons.update(reasons)
        self.sum_img += sum_img
        self.sum_rgb += sum_rgb
        self.sum_outer += sum_outer
        self.n_ok += n_ok

    def save(self, path):
        reasons = json.dumps({str(k): v for k, v in self.reasons.items()})
        _atomic_write(path, lambda f: np.savez(
            f, done=self.done, status=self.status, reasons=np.array(reasons), sum_img=self.sum_img,
            sum_rgb=self.sum_rgb, sum_outer=self.sum_outer, n_ok=np.array(self.n_ok)))

    @classmethod
    def load(cls, path, n, n_chunks, S):
        st = cls(n, n_chunks, S)
        with np.load(path) as z:
            if z["status"].shape != (n,) or z["done"].shape != (n_chunks,) or z["sum_img"].shape != (S, S, 3):
                raise ValueError(f"{path} does not match this run")
            st.done, st.status = z["done"].copy(), z["status"].copy()
            st.reasons = {int(k): v for k, v in json.loads(str(z["reasons"])).items()}
            st.sum_img, st.sum_rgb, st.sum_outer = z["sum_img"].copy(), z["sum_rgb"].copy(), z["sum_outer"].copy()
            st.n_ok = int(z["n_ok"])
        return st

    def statistics(self, S):
        """mean image (3, S, S) float32 and RGB covariance (3, 3) float64 from the exact sums."""
        mean = (self.sum_img / self.n_ok).astype(np.float32).transpose(2, 0, 1)  # (S, S, 3) -> (3, S, S)
        n_px = self.n_ok * S * S
        m = self.sum_rgb / n_px
        cov = self.sum_outer / n_px - np.outer(m, m)   # population covariance over all pixels
        return mean, cov


# ---------------------------------------------------------------- the main side
def default_workers() -> int:
    """All cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _ready():
    """A no-op task: running it proves that a worker process has started."""
    return os.getpid()


class WorkerPool:
    """Decoding processes, started in the background as soon as this is made.

    A worker is a fresh interpreter (forkserver, or spawn where there is no
    forkserver) that imports numpy and Pillow: about half a second before it
    decodes anything. Starting them in a thread while the main process lists
    the source overlaps that start-up with the listing, and ``prepare_splits``
    shares one pool between every split, so it is paid once. Use as a context
    manager, or call ``close()``.
    """

    def __init__(self, workers: int):
        # forkserver: fresh processes (no threads inherited from the caller) that fork from one server
        # which has imported this module once
        method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
        ctx = multiprocessing.get_context(method)
        if method == "forkserver":
            ctx.set_forkserver_preload([__name__])
        self.workers = workers
        self.executor = ProcessPoolExecutor(workers, mp_context=ctx)
        self._starting = threading.Thread(target=self._start, name="minialex-prepare-workers", daemon=True)
        self._starting.start()

    def _start(self):
        try:   # one no-op per worker makes the executor start them all; errors surface at the first real task
            wait([self.executor.submit(_ready) for _ in range(self.workers)])
        except Exception:  # noqa: BLE001 - e.g. shut down before the workers came up
            pass

    def submit(self, fn, *args):
        self._starting.join()
        return self.executor.submit(fn, *args)

    def close(self):
        self._starting.join()
        self.executor.shutdown(wait=True, cancel_futures=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


@contextlib.contextmanager
def _workers(workers, pool=None):
    """``pool`` if given; else a new WorkerPool of ``workers`` processes, closed on exit; else None
    (one worker: decode in this process)."""
    if pool is not None or workers <= 1:
        yield pool
    else:
        with WorkerPool(workers) as own:
            yield own


def _remove_leftovers(dst: Path):
    """Temporary folders of earlier, killed runs (``.NAME.tmp-*``, ``.NAME.old-*``)."""
    for p in dst.parent.glob(f".{dst.name}.tmp-*"):
        shutil.rmtree(p, ignore_errors=True)
    for p in dst.parent.glob(f".{dst.name}.old-*"):
        shutil.rmtree(p, ignore_errors=True)


def prepare(src, dst, short_side=256, crop=256, split=None, synsets=None, max_per_class=None,
            workers=None, progress=True, overwrite=False, classes=None, val_labels=None,
            chunk=256, log=None, listing=None, pool=None) -> PreparedSet:
    """Preprocess one split once and write a prepared set (Sec. 2); resumable.

    Parameters
    ----------
    src : split folder (``ilsvrc`` layouts), or its parent when ``split`` is
        given and ``src/split`` exists
    dst : output folder (must not exist unless ``overwrite``)
    short_side, crop : int, Sec. 2 uses 256 and 256
    synsets : synset file or dict (readable names; its order fixes the class order)
    max_per_class : keep the first n files of each class (quick slices)
    workers : decoding processes (default: all cores); 1 decodes in this process
    classes : label against this class list (the training split's)
    val_labels : ``{file stem: wnid}`` for a flat val folder (``ilsvrc.read_val_labels``)
    chunk : files per unit of work; a kill loses at most ``workers`` chunks of work
    log : callable for notes (default: print to stderr)
    listing : an ``ilsvrc.SourceList`` already made for ``src`` (``prepare_splits`` lists every split first)
    pool : a ``WorkerPool`` to decode in (``prepare_splits`` shares one); by
        default one of ``workers`` processes is started here, before the
        listing, and closed at the end

    Returns the opened PreparedSet. Rerun the same call after an interruption
    to resume (see the module docstring).
    """
    log = log or (lambda msg: print(msg, file=sys.stderr))
    if crop is None or short_side is None:
        raise ValueError("prepare needs both short_side and crop (the stored images share one size)")
    if crop > short_side:
        raise ValueError(f"crop ({crop}) must not exceed short_side ({short_side})")
    src, dst = Path(src), Path(dst)
    if split and (src / split).is_dir():
        src = src / split
    if dst.exists() and not overwrite:
        raise FileExistsError(f"{dst} exists; remove it or pass overwrite=True (--overwrite)")
    if isinstance(synsets, (str, os.PathLike)):
        synsets = read_synsets(synsets)
    with _workers(workers or default_workers(), pool) as pool:   # started now: up while the source is listed
        return _prepare(src, dst, short_side, crop, split, synsets, max_per_class, pool, progress,
                        classes, val_labels, chunk, log, listing)


def _prepare(src, dst, short_side, crop, split, synsets, max_per_class, pool, progress, classes, val_labels,
             chunk, log, listing) -> PreparedSet:
    """``prepare`` once its arguments are checked and its pool (or None: decode here) is started."""
    if listing is None:
        listing = list_source(src, classes=classes, synsets=synsets, val_labels=val_labels,
                              max_per_class=max_per_class)
    N = len(listing)
    dst.parent.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(dst)
    work = dst.with_name(f".{dst.name}.partial")
    plan = {"version": PLAN_VERSION, "source": str(src.resolve()), "n": N, "short_side": short_side,
            "crop": crop, "chunk": chunk, "listing": listing.digest()}
    if (work / "meta.json").is_file() and json.loads((work / "meta.json").read_text()).get("plan") == plan:
        return _rename_into_place(work, dst)        # killed after the set was complete, before the rename
    state = _open_work(work, plan, dst, log)
    try:
        _run_chunks(listing, work, state, short_side, crop, chunk, pool, progress, src.name)
        return _finish(listing, work, dst, state, src, split, short_side, crop, plan)
    except (KeyboardInterrupt, SystemExit):
        log(f"interrupted: {int((state.status != PENDING).sum())} of {N} images are done; run the same "
            f"command again to resume, or delete {work}")
        raise
    except BaseException:
        if state.n_ok == 0 and not state.done.any():
            shutil.rmtree(work, ignore_errors=True)
        raise


def _open_work(work: Path, plan: dict, dst: Path, log) -> "_State":
    """The state of an interrupted run with the same plan, or a fresh work folder and state."""
    N, S = plan["n"], plan["crop"]
    n_chunks = -(-N // plan["chunk"])
    state = None
    if (work / "plan.json").is_file() and (work / "state.npz").is_file() and (work / "images.u8").is_file():
        if json.loads((work / "plan.json").read_text()) == plan:
            try:
                state = _State.load(work / "state.npz", N, n_chunks, S)
            except (ValueError, OSError, KeyError) as e:
                log(f"cannot resume from {work / 'state.npz'} ({e}); starting again")
            else:
                log(f"resuming {dst}: {int(state.done.sum())} of {n_chunks} chunks were done "
                    f"({int((state.status != PENDING).sum())} of {N} images)")
        else:
            log(f"discarding the interrupted prepare in {work}: it was made with other options or another "
                "listing of the source")
    if state is None:
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir()
        _atomic_write(work / "plan.json", lambda f: f.write(json.dumps(plan, indent=1).encode()))
        with open(work / "images.u8", "wb") as f:
            f.truncate(N * 3 * S * S)   # sparse until written
        state = _State(N, n_chunks, S)
        state.save(work / "state.npz")
    return state


def _run_chunks(listing, work, state, short_side, crop, chunk, pool, progress, name):
    """Decode every chunk not yet done, in ``pool``'s processes (in this one when ``pool`` is None),
    recording each as it finishes."""
    N = len(listing)
    todo = [k for k in range(len(state.done)) if not state.done[k]]
    if not todo:
        return
    remaining = sum(min(chunk, N - k * chunk) for k in todo)
    workers = 1 if pool is None else max(1, min(pool.workers, len(todo)))
    resumed = f", resumed with {N - remaining} done" if remaining < N else ""
    bar = Progress(remaining, desc=f"prepare {name} ({workers} worker{'s' * (workers > 1)}{resumed})",
                   unit="img", enabled=progress)
    images_path = str(work / "images.u8")
    root = str(listing.root)

    def task(k):
        lo, hi = k * chunk, min(N, (k + 1) * chunk)
        items = [(listing.path(i, root), int(listing.offsets[i]), int(listing.sizes[i]), listing.reasons.get(i))
                 for i in range(lo, hi)]
        return (images_path, lo, items, short_side, crop)

    last_save = -float("inf")   # the first chunk to finish is recorded at once

    def record(k, result):
        nonlocal last_save
        state.add(k, result)
        bar.update(len(result[1]))
        if time.monotonic() - last_save >= SAVE_EVERY_S:
            state.save(work / "state.npz")
            last_save = time.monotonic()

    if pool is None:
        for k in todo:
            record(k, decode_chunk(*task(k)))
    else:
        pending, queue = {}, list(todo)
        while queue or pending:
            while queue and len(pending) < 2 * workers:   # bounded: memory does not grow with N
                k = queue.pop(0)
                pending[pool.submit(decode_chunk, *task(k))] = k
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in finished:
                record(pending.pop(fut), fut.result())
    state.save(work / "state.npz")
    bar.close()


def _finish(listing, work, dst, state, src, split, short_side, crop, plan):
    """Fill the rows of skipped files, truncate, write the small files, rename into place."""
    N, S = len(listing), crop
    row_bytes = 3 * S * S
    ok = np.flatnonzero(state.status == OK)
    k = len(ok)
    skipped = [(listing.source(i), state.reasons.get(i, "")) for i in np.flatnonzero(state.status == SKIPPED)]
    warn_skipped(skipped, src)
    if k == 0:
        shutil.rmtree(work, ignore_errors=True)
        raise ValueError(f"no readable images in {str(src)!r} ({N} files, all skipped)")
    # rows >= k of good files move into the rows < k of skipped files (in order): sources and
    # destinations are disjoint, so repeating a half-done move after a kill is harmless
    row = np.full(N, -1, dtype=np.int64)
    row[ok[ok < k]] = ok[ok < k]
    holes = np.setdiff1d(np.arange(k), ok[ok < k])     # rows < k without a good image
    movers = ok[ok >= k]                               # good images in rows >= k, same count
    row[movers] = holes
    images = work / "images.u8"
    if not (work / "compacted").exists():
        fd = os.open(images, os.O_RDWR)
        try:
            for s, d in zip(movers.tolist(), holes.tolist()):
                _copy_row(fd, s, d, row_bytes)
            os.fsync(fd)
        finally:
            os.close(fd)
        (work / "compacted").touch()
    if images.stat().st_size != k * row_bytes:
        os.truncate(images, k * row_bytes)
    meta = _write_files(listing, work, state, row, ok, k, S, skipped)
    meta.update(source=str(Path(src).resolve()), split=split, short_side=short_side, crop=crop)
    meta["plan"] = plan   # a run killed before the rename below finds the set complete
    _atomic_write(work / "meta.json", lambda f: f.write(json.dumps(meta, indent=1).encode()))
    return _rename_into_place(work, dst)


def _write_files(listing, work, state, row, ok, k, S, skipped) -> dict:
    """labels, statistics, classes, manifest and skipped lists; returns the meta dict (not yet written)."""
    N = len(listing)
    labels = np.empty(k, dtype=np.int64)
    labels[row[ok]] = listing.labels[ok]
    mean, cov = state.statistics(S)
    eigvals, eigvecs = pca_eigen(cov)
    for name, arr in (("labels", labels), ("mean", mean), ("rgb_cov", cov), ("eigvals", eigvals),
                      ("eigvecs", eigvecs)):
        _atomic_write(work / f"{name}.npy", lambda f, a=arr: np.save(f, a))

    def text(name, lines):   # streamed: the manifest of 1.28M files is never one string
        def write(f):
            for line in lines:
                f.write(line.encode("utf-8"))
        _atomic_write(work / name, write)

    text("classes.txt", [f"{c}\t{n}\n" for c, n in zip(listing.classes, listing.names)])
    status_name = {OK: "ok", SKIPPED: "skipped"}
    text("manifest.tsv", itertools.chain(["source\tlabel\tclass\tstatus\trow\treason\n"], (
        f"{listing.source(i)}\t{listing.labels[i]}\t"
        f"{listing.classes[listing.labels[i]] if listing.labels[i] >= 0 else ''}\t"
        f"{status_name[state.status[i]]}\t{row[i]}\t{state.reasons.get(i, '')}\n" for i in range(N))))
    text("skipped.tsv", ["source\treason\n"] + [f"{s}\t{r}\n" for s, r in skipped])
    meta = {
        "format": FORMAT_VERSION,
        "shape": [k, 3, S, S],
        "dtype": "uint8",
        "layout": "NCHW",
        "num_classes": len(listing.classes),
        "listed": N,
        "skipped": [s for s, _ in skipped],
        "files": "manifest.tsv: every listed file with its label, status and row; skipped.tsv: the reasons",
        "paper": "Sec. 2: short side rescaled, central crop; mean image and RGB covariance of this set",
    }
    return meta


def _rename_into_place(work: Path, dst: Path) -> PreparedSet:
    """Drop the run's own files from the finished work folder and rename it to ``dst``."""
    for p in work.iterdir():
        if p.name in ("plan.json", "state.npz", "compacted") or p.name.endswith(".tmp"):
            p.unlink()
    if dst.exists():  # overwrite: move the old set aside only now that the new one is complete
        old = dst.with_name(f".{dst.name}.old-{os.getpid()}")
        os.rename(dst, old)
        os.rename(work, dst)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(work, dst)
    return open_prepared(dst)


def prepare_splits(src, dst, splits=None, val_labels=None, synsets=None, log=None, **kw) -> dict:
    """Prepare every split that ``src`` holds into ``dst/<split>`` (the layout ``train`` expects).

    ``src`` holds ``train/`` and ``val/`` (and ``test/``) in any ``ilsvrc``
    layout. Every split is labelled against the training split's classes.
    A flat ``val/`` takes its labels from ``val_labels`` or from a ground-truth
    file found in ``src`` (``ilsvrc.find_val_labels``). When ``src`` holds no
    split folders it is prepared as one set into ``dst`` itself.

    Returns ``{split: PreparedSet}`` (``{"": PreparedSet}`` for a single set).
    """
    src, dst = Path(src), Path(dst)
    if isinstance(synsets, (str, os.PathLike)):
        synsets = read_synsets(synsets)
    found = split_folders(src)
    splits = list(splits) if splits else found
    if not splits:
        return {"": prepare(src, dst, synsets=synsets, val_labels=val_labels, log=log, **kw)}
    missing = [s for s in splits if s not in found]
    if missing:
        raise ValueError(f"{src} has no {', '.join(missing)}/ folder (it holds: {', '.join(found) or 'none'})")
    if not kw.get("overwrite"):
        taken = [str(dst / s) for s in splits if (dst / s).exists()]
        if taken:
            raise FileExistsError(f"{', '.join(taken)} exist(s); remove or pass overwrite=True (--overwrite)")
    kw["workers"] = kw.get("workers") or default_workers()
    with _workers(kw["workers"], kw.get("pool")) as pool:   # one pool for every split, started before the listing
        kw["pool"] = pool
        classes = source_classes(src / "train", synsets) if "train" in found else None
        listings = {}
        for s in splits:   # list (and check) every split before decoding any
            labels = val_labels
            if labels is None and s != "train" and is_flat(src / s):
                labels = find_val_labels(src)
            listings[s] = list_source(src / s, classes=classes, synsets=synsets, val_labels=labels,
                                      max_per_class=kw.get("max_per_class"))
        return {s: prepare(src / s, dst / s, synsets=synsets, log=log, listing=listings[s], **kw) for s in splits}
