"""The data path at ImageNet scale (issue 17): prepare on a 100,000-image
ILSVRC-layout tree with 1 and 2 worker processes, its peak memory, resume
after kill -9, --limit set-up time, and the loader's per-core rate.

    python benchmarks/data_scale.py [--images 100000] [--size 64] [--tmp /tmp] [--steps build,prepare,...]

Steps (all by default; --steps picks some):

  build    a synthetic ILSVRC-2012 tree in TMP: train/<wnid>/*.JPEG, each
           Imagenette image (train and val) resized to several small sizes
           (short side 48-96 pixels) and re-encoded (JPEG quality 85), until
           --images files; plus a flat val/ folder with LOC_val_solution.csv
  prepare  python -m minialex.data prepare (train and val) with --workers 1
           and --workers 2, each timed, with the peak resident memory of the
           whole process tree sampled every 0.1 s; short side and crop --size
  memory   the same with 1/5 of the classes' images (--max-per-class), to show
           that peak memory does not grow with the number of images
  resume   --workers 2 killed with SIGKILL (the whole process group) at about
           40%, run again; the files must equal the uninterrupted run's
  limit    set-up of a --limit N run (list the folder, choose N, decode N) for
           N = 64, 640, 6400 on the big tree
  fullsize --fullsize-images Imagenette images (default 1,000) enlarged to
           ILSVRC's typical 500x375 and re-encoded (quality 90, about ILSVRC's
           file size), prepared at 256x256 with 1 and 2 workers alternately,
           --pairs times: the per-core rate for full-size JPEGs and the
           speed-up of a second worker where decoding dominates
  ceiling  the baseline for every speed-up above, measured in the same run:
           the same decoding (preprocess_image on the tree's files, or the
           full-size files) done by one process, then split between two
           already-running processes, with no prepare around it. Its ratio is
           the most that two workers can gain on this machine now (other
           load, memory bandwidth, frequency); prepare's speed-up is reported
           beside it
  loader   BatchLoader over prepared Imagenette train (256x256, paper config:
           224 crops, flips, PCA colour, batch 128) with 1 and 2 workers, both
           the full host transform (float32 out) and the gather alone (uint8,
           what the GPU path needs from the host)

Everything is written under TMP/minialex-scale-*/ and deleted at the end.
Prints a Markdown summary for benchmarks/RESULTS.md.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
IMAGENETTE = REPO.parent / "shared" / "data" / "imagenette2-224"


def uptime():
    return open("/proc/loadavg").read().split()[:3]


# ---------------------------------------------------------------- build
def _variants(job):
    """Re-encode one Imagenette image at several small sizes; returns the number written."""
    from PIL import Image

    path, out_dir, stem, sizes = job
    im = Image.open(path).convert("RGB")
    n = 0
    for k, s in enumerate(sizes):
        w, h = im.size
        scale = s / min(w, h)
        small = im.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.BILINEAR)
        if k % 2:
            small = small.transpose(Image.FLIP_LEFT_RIGHT)
        small.save(Path(out_dir) / f"{stem}_{k}.JPEG", quality=85)
        n += 1
    return n


def build(root: Path, n_images: int, workers: int):
    srcs = sorted(IMAGENETTE.glob("*/*/*.JPEG"))
    per = -(-n_images // len(srcs))
    sizes = [48 + (96 - 48) * k // max(1, per - 1) for k in range(per)]
    jobs = []
    for p in srcs:
        d = root / "train" / p.parent.name
        d.mkdir(parents=True, exist_ok=True)
        jobs.append((str(p), str(d), f"{p.parent.parent.name}_{p.stem}", sizes))
    val = sorted((IMAGENETTE / "val").glob("*/*.JPEG"))
    (root / "val").mkdir(parents=True, exist_ok=True)
    rows = ["ImageId,PredictionString"]
    for p in val:
        rows.append(f"{p.stem},{p.parent.name} 0 0 10 10")
        jobs.append((str(p), str(root / "val"), p.stem, [64]))
    (root / "LOC_val_solution.csv").write_text("\n".join(rows) + "\n")
    t0 = time.perf_counter()
    with ProcessPoolExecutor(workers) as pool:
        n = sum(pool.map(_variants, jobs, chunksize=64))
    # the val images were written as <stem>_0.JPEG; rename to the ILSVRC names the CSV uses
    for p in (root / "val").iterdir():
        p.rename(p.with_name(p.name.replace("_0.JPEG", ".JPEG")))
    n_train = sum(1 for _ in (root / "train").glob("*/*.JPEG"))
    mb = sum(f.stat().st_size for f in root.rglob("*.JPEG")) / 2**20
    return n_train, n - n_train, time.perf_counter() - t0, mb


# ---------------------------------------------------------------- a timed command with its memory
def tree_rss(pid, cpu=None):
    """Resident bytes of pid and all its descendants (from /proc); records each one's CPU seconds in ``cpu``."""
    total, todo = 0, [pid]
    children = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(d))
            except (OSError, IndexError, ValueError):
                pass
    per = {}
    while todo:
        p = todo.pop()
        try:
            if cpu is not None:
                with open(f"/proc/{p}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                cpu[p] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")   # utime + stime
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        per[p] = int(line.split()[1]) * 1024
                        total += per[p]
        except OSError:
            pass
        todo += children.get(p, [])
    return total, per.get(pid, 0), max([v for k, v in per.items() if k != pid], default=0)


def run_timed(cmd, kill_at=None, env=None):
    """Run cmd; sample the tree's RSS; optionally SIGKILL the group after kill_at seconds.

    Returns (seconds, peak tree RSS, peak main RSS, peak largest-child RSS, returncode, output tail,
    CPU seconds of the whole tree, resume lines).
    """
    env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, env=env, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    peak = [0, 0, 0]
    cpu = {}   # pid -> CPU seconds at the last sample (a process's last 0.1 s may be missed)
    done = threading.Event()

    def sample():
        while not done.is_set():
            t, m, c = tree_rss(p.pid, cpu)
            peak[0], peak[1], peak[2] = max(peak[0], t), max(peak[1], m), max(peak[2], c)
            time.sleep(0.1)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    if kill_at is not None:
        try:
            p.wait(kill_at)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
    out, err = p.communicate()
    done.set()
    th.join()
    notes = [line for line in err.splitlines() if line.startswith(("resuming", "discarding"))]
    return time.perf_counter() - t0, peak[0], peak[1], peak[2], p.returncode, (out + err)[-600:], sum(cpu.values()), notes


def digest(folder: Path):
    h = {}
    for f in sorted(folder.rglob("*")):
        if f.is_file():
            d = hashlib.sha256()
            with open(f, "rb") as fh:
                while b := fh.read(1 << 22):
                    d.update(b)
            h[str(f.relative_to(folder))] = d.hexdigest()
    return h


def prepare_cmd(src, dst, workers, size, extra=()):
    return [sys.executable, "-m", "minialex.data", "prepare", str(src), str(dst), "--short-side", str(size),
            "--crop", str(size), "--workers", str(workers), *extra]


# ---------------------------------------------------------------- full-size JPEGs
def fullsize(tmp: Path, n=1000, pairs=1):
    """Prepare n full-size JPEGs at 256x256 with 1 and 2 workers, alternately, ``pairs`` times.

    Returns (the folder of JPEGs, [speed-up of each pair]).
    """
    from PIL import Image

    pool = sorted((IMAGENETTE / "train").glob("*/*.JPEG"))
    step = max(1, len(pool) // n)
    srcs = pool[::step][:n]
    root = tmp / "fullsize" / "train"
    for p in srcs:
        d = root / p.parent.name
        d.mkdir(parents=True, exist_ok=True)
        Image.open(p).convert("RGB").resize((500, 375), Image.BICUBIC).save(d / p.name, quality=90)
    kb = sum(f.stat().st_size for f in root.rglob("*.JPEG")) / len(srcs) / 1024
    ratios = []
    for k in range(pairs):
        times = {}
        for w in (1, 2):
            dst = tmp / f"fullsize-out{w}"
            load0 = uptime()
            t, rss, _, _, rc, tail, cpu, _ = run_timed(prepare_cmd(root, dst, w, 256))
            assert rc == 0, tail
            times[w] = t
            print(f"full-size: {len(srcs)} JPEGs of 500x375 ({kb:.0f} KiB each) -> 256x256, workers {w}: {t:.1f} s = "
                  f"{len(srcs) / t:.0f} img/s, {len(srcs) / cpu:.0f} img per CPU-second (incl. start-up); "
                  f"load before {load0} after {uptime()}", flush=True)
            shutil.rmtree(dst)
        ratios.append(times[1] / times[2])
        print(f"full-size pair {k + 1}: 2 workers {ratios[-1]:.2f}x faster than 1", flush=True)
    return root, ratios


def _decode_files(job):
    """Decode (Sec. 2 preprocessing) every file of job = (paths, size); returns the seconds it took."""
    from minialex.data.preprocess import preprocess_image

    paths, size = job
    t0 = time.perf_counter()
    for p in paths:
        preprocess_image(p, size, size)
    return time.perf_counter() - t0


def ceiling(paths, size, repeats=2):
    """The machine's own speed-up for this decoding: 1 process on all paths, then 2 on half each.

    The two processes are started (and have imported everything) before the clock starts, so this
    is decoding alone: the most that prepare's second worker can gain here, now.
    """
    paths = [str(p) for p in paths]
    half = len(paths) // 2
    ratios = []
    with ProcessPoolExecutor(2) as pool:
        list(pool.map(_decode_files, [(paths[:20], size), (paths[20:40], size)]))   # start both, warm the cache
        for _ in range(repeats):
            load0 = uptime()
            t0 = time.perf_counter()
            pool.submit(_decode_files, (paths, size)).result()
            t1 = time.perf_counter() - t0
            t0 = time.perf_counter()
            list(pool.map(_decode_files, [(paths[:half], size), (paths[half:], size)]))
            t2 = time.perf_counter() - t0
            ratios.append(t1 / t2)
            print(f"ceiling: {len(paths)} files at {size}x{size}: 1 process {t1:.1f} s, 2 processes {t2:.1f} s "
                  f"-> {t1 / t2:.2f}x; load before {load0} after {uptime()}", flush=True)
    return ratios


# ---------------------------------------------------------------- loader
def loader_rates(tmp: Path, batches: int):
    from minialex.data import BatchLoader, TrainTransform, prepare

    ps = prepare(IMAGENETTE / "train", tmp / "imagenette-train", workers=2, progress=False, log=lambda m: None)
    np.asarray(ps.images[:]).sum()   # into the page cache: the loader reads from memory, as after the 1st epoch
    out = []
    for kind in ("host transform", "gather only"):
        for w in (1, 2):
            tf = TrainTransform(mean=ps.mean, crop=224, flip=True, pca=ps.pca) if kind == "host transform" else None
            dtype = np.float32 if tf is not None else np.uint8
            ld = BatchLoader(ps.images, ps.labels, 128, transform=tf, seed=0, drop_last=True, workers=w,
                             dtype=dtype, prefetch=4)
            n, t0, b = 0, None, 0
            cpu0 = time.process_time()
            for x, y in ld:
                if t0 is None:
                    t0, cpu0 = time.perf_counter(), time.process_time()
                else:
                    n += len(y)
                b += 1
                if b > batches:
                    break
            dt, cpu = time.perf_counter() - t0, time.process_time() - cpu0
            out.append((kind, w, n / dt, cpu / dt, n / cpu))
            print(f"loader {kind:14s} workers {w}: {n / dt:8.1f} img/s, {cpu / dt:.2f} cores busy, "
                  f"{n / cpu:8.1f} img per CPU-second  (load {uptime()})", flush=True)
    return out


# ---------------------------------------------------------------- main
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=100_000)
    ap.add_argument("--size", type=int, default=64, help="short side and crop of the prepared sets")
    ap.add_argument("--tmp", default=tempfile.gettempdir())
    ap.add_argument("--steps", default="build,prepare,memory,resume,limit,fullsize,loader")
    ap.add_argument("--keep", action="store_true", help="keep the tree (for debugging)")
    ap.add_argument("--src", default=None, help="use this tree (made by an earlier --keep run) instead of building")
    ap.add_argument("--pairs", type=int, default=3, help="pairs step: alternating 1-/2-worker runs")
    ap.add_argument("--pair-images", type=int, default=1000, help="pairs step: train images per class")
    ap.add_argument("--loader-batches", type=int, default=40)
    ap.add_argument("--fullsize-images", type=int, default=1000, help="fullsize step: number of 500x375 JPEGs")
    args = ap.parse_args(argv)
    steps = set(args.steps.split(","))
    if not IMAGENETTE.is_dir():
        sys.exit(f"needs Imagenette at {IMAGENETTE}")
    tmp = Path(tempfile.mkdtemp(prefix="minialex-scale-", dir=args.tmp))
    src = Path(args.src) if args.src else tmp / "src"
    print(f"work in {tmp}; {os.cpu_count()} CPUs; load {uptime()}", flush=True)
    try:
        if args.src:
            n_train = sum(1 for _ in src.glob("train/*/*.JPEG"))
            n_val = sum(1 for _ in src.glob("val/*.JPEG"))
            print(f"tree {src}: {n_train} train + {n_val} val JPEGs", flush=True)
        elif steps & {"build", "prepare", "memory", "resume", "limit", "pairs"}:
            n_train, n_val, dt, mb = build(src, args.images, workers=2)
            print(f"build: {n_train} train + {n_val} val JPEGs ({mb:.0f} MiB) in {dt:.1f} s", flush=True)
        if "pairs" in steps:
            # 1 and 2 workers alternately on the same slice, so that both see the same (shared) machine
            ratios = []
            for k in range(args.pairs):
                times = {}
                for w in (1, 2):
                    dst = tmp / f"pair{w}"
                    load0 = uptime()
                    t, rss, _, _, rc, tail, cpu, _ = run_timed(prepare_cmd(
                        src, dst, w, args.size, ["--split", "train", "--max-per-class", str(args.pair_images)]))
                    assert rc == 0, tail
                    n = 10 * args.pair_images
                    times[w] = t
                    print(f"pair {k + 1} workers {w}: {n} images in {t:.1f} s = {n / t:.0f} img/s, CPU {cpu:.1f} s "
                          f"= {n / cpu:.0f} img per CPU-second; load before {load0} after {uptime()}", flush=True)
                    shutil.rmtree(dst)
                ratios.append(times[1] / times[2])
                print(f"pair {k + 1}: 2 workers {ratios[-1]:.2f}x faster than 1", flush=True)
            print(f"pairs: speed-ups {[round(r, 2) for r in ratios]}, median {np.median(ratios):.2f}", flush=True)
            if "ceiling" in steps:
                # the files the pairs prepared: the first --pair-images of each class (--max-per-class)
                chosen = [f for d in sorted(src.glob("train/*")) for f in sorted(d.glob("*.JPEG"))[:args.pair_images]]
                c = ceiling(chosen, args.size)
                print(f"pairs against the ceiling: prepare {np.median(ratios):.2f}x, decoding alone "
                      f"{np.median(c):.2f}x (medians): prepare reaches {np.median(ratios) / np.median(c):.0%} of "
                      "what this machine gives two processes now", flush=True)
        ref, t2 = None, None
        if "prepare" in steps:
            for w in (1, 2):
                dst = tmp / f"out{w}"
                load0 = uptime()
                t, rss, main_rss, child, rc, tail, cpu, _ = run_timed(prepare_cmd(src, dst, w, args.size))
                assert rc == 0, tail
                n = n_train + n_val
                print(f"prepare workers {w}: {n} images in {t:.1f} s = {n / t:.0f} img/s, CPU {cpu:.1f} s = "
                      f"{n / cpu:.0f} img per CPU-second; load before {load0}; peak RSS tree "
                      f"{rss / 2**20:.0f} MiB (main {main_rss / 2**20:.0f}, largest worker {child / 2**20:.0f}); "
                      f"load after {uptime()}", flush=True)
                if w == 2:
                    ref, t2 = digest(dst), t
                shutil.rmtree(dst) if w == 1 else None
        if "memory" in steps:
            per_class = (n_train // 10) // 5
            dst = tmp / "small"
            t, rss, main_rss, child, rc, tail, cpu, _ = run_timed(
                prepare_cmd(src, dst, 2, args.size, ["--split", "train", "--max-per-class", str(per_class)]))
            assert rc == 0, tail
            print(f"prepare workers 2, {10 * per_class} train images: {t:.1f} s; peak RSS tree {rss / 2**20:.0f} MiB "
                  f"(main {main_rss / 2**20:.0f}, largest worker {child / 2**20:.0f})", flush=True)
            shutil.rmtree(dst)
        if "resume" in steps:
            dst = tmp / "killed"
            if t2 is None:
                t2 = run_timed(prepare_cmd(src, dst, 2, args.size))[0]
                ref = digest(dst)
                shutil.rmtree(dst)
            t1 = t2
            t_kill = 0.4 * t2
            t_a, rss_a, _, _, rc_a, _, _, _ = run_timed(prepare_cmd(src, dst, 2, args.size), kill_at=t_kill)
            partial = sorted(p.name for p in dst.iterdir())
            t_b, rss_b, _, _, rc_b, tail, _, notes = run_timed(prepare_cmd(src, dst, 2, args.size))
            same = digest(dst) == ref
            left = sorted(p.name for p in tmp.iterdir() if p.name.startswith("."))
            left += sorted(p.name for p in dst.iterdir() if p.name.startswith("."))
            print(f"resume: uninterrupted {t1:.1f} s; killed (SIGKILL to the group) after {t_a:.1f} s (rc {rc_a}), "
                  f"DST then held {partial}; rerun {t_b:.1f} s (rc {rc_b}): {notes}; same files as the "
                  f"uninterrupted run: {same}; hidden entries after: {left}; load {uptime()}", flush=True)
        if "limit" in steps:
            from minialex.data import FolderImages, subset

            for n in (64, 640, 6400):   # what load_dataset + subset do for --data PATH --limit N (train split)
                t0 = time.perf_counter()
                imgs = FolderImages(src / "train", short_side=256, crop=256)
                t_list = time.perf_counter() - t0
                x, y = subset(imgs, imgs.labels, n, 0)
                t = time.perf_counter() - t0
                print(f"--limit {n}: set-up {t:.2f} s (listing {len(imgs)} files {t_list:.2f} s, decoding "
                      f"{len(y)} images {t - t_list:.2f} s); load {uptime()}", flush=True)
        if "fullsize" in steps:
            root, ratios = fullsize(tmp, args.fullsize_images, args.pairs)
            print(f"full-size pairs: speed-ups {[round(r, 2) for r in ratios]}, median {np.median(ratios):.2f}",
                  flush=True)
            if "ceiling" in steps:
                c = ceiling(sorted(root.glob("*/*.JPEG")), 256)
                print(f"full-size against the ceiling: prepare {np.median(ratios):.2f}x, decoding alone "
                      f"{np.median(c):.2f}x (medians): {np.median(ratios) / np.median(c):.0%}", flush=True)
        if "loader" in steps:
            loader_rates(tmp, args.loader_batches)
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        print(f"removed {tmp}" if not tmp.exists() else f"kept {tmp}")


if __name__ == "__main__":
    main()
