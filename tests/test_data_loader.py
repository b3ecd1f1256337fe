"""The background batch loader (Sec. 4.1's CPU/GPU overlap): order, determinism, errors, shutdown."""
import threading
import time

import numpy as np
import pytest

from minialex.data import BatchLoader, TrainTransform, pca_eigen


def data(N=50, H=6, W=6, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (N, 3, H, W)).astype(np.uint8)
    x[:, 0, 0, 0] = np.arange(N)  # image id readable from pixel (0, 0, 0)
    return x, np.arange(N) % 7


def loader_threads():
    return [t for t in threading.enumerate() if t.name.startswith("BatchLoader")]


def test_each_epoch_covers_every_sample_once_and_reshuffles():
    x, y = data()
    ld = BatchLoader(x, y, 8, seed=1)
    assert len(ld) == 7
    seen = []
    for _ in range(3):
        ids = []
        for xb, yb in ld:
            assert xb.dtype == np.float32 and yb.dtype == np.int64
            ids += xb[:, 0, 0, 0].astype(int).tolist()
            np.testing.assert_array_equal(yb, y[xb[:, 0, 0, 0].astype(int)])  # labels follow images
        assert sorted(ids) == list(range(50))
        seen.append(ids)
    assert seen[0] != seen[1] and seen[1] != seen[2]


def test_drop_last_and_no_shuffle():
    x, y = data()
    ld = BatchLoader(x, y, 8, drop_last=True, shuffle=False)
    sizes = [len(b[1]) for b in ld]
    assert sizes == [8] * 6 and len(ld) == 6
    ld = BatchLoader(x, y, 8, shuffle=False)
    sizes = [len(b[1]) for b in ld]
    assert sizes == [8] * 6 + [2]
    assert next(iter(ld))[0][:, 0, 0, 0].tolist() == list(range(8))


def test_deterministic_given_seed_with_augmentation():
    x, y = data()
    mean = x.astype(np.float32).mean(0)
    tf = TrainTransform(mean=mean, crop=4, pad=1, pca=pca_eigen(np.diag([9., 4., 1.])))

    def run(seed, background=True):
        ld = BatchLoader(x, y, 16, transform=tf, seed=seed, background=background)
        return [(xb.copy(), yb.copy()) for _ in range(2) for xb, yb in ld]

    a, b, c = run(0), run(0), run(1)
    serial = run(0, background=False)
    for (xa, ya), (xb, yb), (xs, ys) in zip(a, b, serial):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(xa, xs)  # the thread changes nothing
        np.testing.assert_array_equal(ya, yb)
    assert any(not np.array_equal(xa, xc) for (xa, _), (xc, _) in zip(a, c))


def test_set_epoch_replays_an_epoch():
    x, y = data()
    ld = BatchLoader(x, y, 10, seed=3)
    first = [yb.tolist() for _, yb in ld]
    [yb for _, yb in ld]
    ld.set_epoch(0)
    assert [yb.tolist() for _, yb in ld] == first


def test_worker_exception_reaches_main_thread():
    x, y = data()
    calls = []

    def bad(xb, rng):
        calls.append(1)
        if len(calls) == 3:
            raise ZeroDivisionError("boom in batch 3")
        return xb

    ld = BatchLoader(x, y, 8, transform=bad)
    got = 0
    with pytest.raises(ZeroDivisionError, match="boom in batch 3"):
        for _ in ld:
            got += 1
    assert got == 2
    assert not loader_threads()


def test_early_break_shuts_down_cleanly():
    x, y = data(N=400)

    def slow(xb, rng):
        time.sleep(0.01)
        return xb

    ld = BatchLoader(x, y, 4, transform=slow, prefetch=2)
    for i, _ in enumerate(ld):
        if i == 2:
            break
    assert ld._threads == [] and not loader_threads()
    with BatchLoader(x, y, 4) as ld2:  # context manager form
        next(iter(ld2))
    assert not loader_threads()


def test_dtype_and_memmap_source(tmp_path):
    x, y = data()
    mm = np.memmap(tmp_path / "x.u8", dtype=np.uint8, mode="w+", shape=x.shape)
    mm[:] = x
    mm.flush()
    ro = np.memmap(tmp_path / "x.u8", dtype=np.uint8, mode="r", shape=x.shape)
    ld = BatchLoader(ro, y, 16, dtype=np.float64, seed=0)
    ref = BatchLoader(x, y, 16, dtype=np.float64, seed=0)
    for (a, ya), (b, yb) in zip(ld, ref):
        assert a.dtype == np.float64
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(ya, yb)


def test_bad_arguments():
    x, y = data()
    with pytest.raises(ValueError, match="differ"):
        BatchLoader(x, y[:-1], 8)
    with pytest.raises(ValueError, match="batch_size"):
        BatchLoader(x, y, 0)
    with pytest.raises(ValueError, match="backend"):
        BatchLoader(x, y, 8, xp="torch")


@pytest.mark.gpu
def test_cupy_batches():
    from minialex.backend import cupy_available

    if not cupy_available():
        pytest.skip("CuPy or a CUDA device is not available")
    import cupy

    x, y = data()
    ld = BatchLoader(x, y, 16, xp="cupy", seed=0)
    ref = BatchLoader(x, y, 16, seed=0)
    for (a, ya), (b, yb) in zip(ld, ref):
        assert isinstance(a, cupy.ndarray) and isinstance(ya, cupy.ndarray)
        np.testing.assert_array_equal(a.get(), b)
        np.testing.assert_array_equal(ya.get(), yb)


def test_several_workers_give_the_same_batches_in_order():
    """workers=3: batch b comes from thread b mod 3, and the stream equals one worker's."""
    from minialex.data import TrainTransform
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (50, 3, 12, 12), dtype=np.uint8)
    y = np.arange(50)
    tf = TrainTransform(mean=np.zeros((3, 12, 12), np.float32), crop=8, flip=True,
                        pca=(np.array([3.0, 2.0, 1.0]), np.eye(3)))
    one = [(a.copy(), b.copy()) for a, b in BatchLoader(x, y, 7, transform=tf, seed=5)]
    three = [(a.copy(), b.copy()) for a, b in BatchLoader(x, y, 7, transform=tf, seed=5, workers=3)]
    assert len(one) == len(three) == 8
    for (a1, b1), (a3, b3) in zip(one, three):
        np.testing.assert_array_equal(b1, b3)
        np.testing.assert_array_equal(a1, a3)


def test_a_failing_worker_raises_at_its_batch():
    calls = []

    def tf(xb, rng):
        calls.append(len(xb))
        if xb[0, 0, 0, 0] == 30:   # the batch that starts at image 30 (no shuffle, batch 10: batch 3)
            raise ValueError("bad batch")
        return xb.astype(np.float32)

    x = np.arange(60, dtype=np.uint8).reshape(60, 1, 1, 1)
    ld = BatchLoader(x, np.zeros(60), 10, transform=tf, shuffle=False, workers=2)
    got = []
    with pytest.raises(ValueError, match="bad batch"):
        for xb, _ in ld:
            got.append(int(xb[0, 0, 0, 0]))
    assert got == [0, 10, 20]
    with pytest.raises(ValueError, match="workers must be >= 1"):
        BatchLoader(x, np.zeros(60), 10, workers=0)
