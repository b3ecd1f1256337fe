"""The numba fast paths agree with the readable NumPy paths, forward and backward.

Every layer with a fast twin (Conv2D, MaxPool2D, LocalResponseNorm, ReLU) is run
twice on the same input, once as the readable layer and once as its numba twin
(``minialex.kernels.accelerate``), on random shapes including odd sizes and batch 1, in float32
and float64. Pool values and arg-max routes must match exactly; sums whose
order differs (col2im, LRN, GEMM chunks) match to a few float ulps.
No timings here: speed lives in benchmarks/cpu.py.
"""
import os

import numba
import numpy as np
import pytest

from minialex.backend import kernels_choice
from minialex.im2col import col2im_reference, im2col_reference
from minialex.kernels import _numba, accelerate
from minialex.kernels import conv as conv_module
from minialex.kernels.activation import NumbaReLU
from minialex.kernels.conv import CudaConv2D, NumbaConv2D
from minialex.layers import Conv2D, LocalResponseNorm, MaxPool2D, ReLU

# Relative tolerance of the fast path against the reference, by dtype:
# a few ulps of the largest entry, from reordered sums.
RTOL = {np.float32: 2e-6, np.float64: 1e-13}


def path(layer, impl):
    """``layer`` on the path ``impl``: "reference" (the readable layer) or "numba" (its fast twin)."""
    return accelerate(layer, np, "fast" if impl == "numba" else "reference")


def assert_close(fast, ref, dtype):
    """max|fast - ref| <= RTOL * max|ref|, and no upcast."""
    assert fast.dtype == np.dtype(dtype), f"fast path returned {fast.dtype}, expected {np.dtype(dtype)}"
    assert fast.shape == ref.shape
    scale = max(float(np.abs(ref).max()), 1e-30)
    err = float(np.abs(fast.astype(np.float64) - ref.astype(np.float64)).max())
    assert err <= RTOL[dtype] * scale, f"max abs error {err:.3e} vs scale {scale:.3e}"


def run_both(make_layer, x, seed=0):
    """Forward + backward of the reference and the numba path on the same data.

    Returns {impl: (out, dx, grads, dout_after_backward)} and the dout used.
    """
    results = {}
    for impl in ("reference", "numba"):
        layer = make_layer(impl)
        out = layer.forward(x.copy())
        dout = np.random.default_rng(seed).standard_normal(out.shape).astype(x.dtype)
        dout_before = dout.copy()
        dx = layer.backward(dout)
        assert np.array_equal(dout, dout_before), f"{impl} backward modified dout"
        grads = {k: np.array(v) for k, v in layer.grads.items()}
        results[impl] = (out, dx, grads)
    return results


DTYPES = [np.float32, np.float64]

# (N, C, H, W, F, K, stride, padding, groups): AlexNet-like and awkward ones.
CONV_CASES = [
    (1, 3, 23, 23, 8, 11, 4, 2, 1),       # conv1-like, batch 1
    (2, 4, 9, 7, 6, 5, 1, 2, 2),          # grouped, odd non-square
    (3, 6, 13, 13, 8, 3, 1, 1, 2),        # conv4-like
    (1, 1, 5, 5, 1, 5, 1, 0, 1),          # one output pixel
    (5, 3, 10, 11, 4, 3, 2, 0, 1),        # stride 2, odd batch
]


def assert_conv_paths_agree(case, dtype, seed, fast_conv="auto"):
    """Conv2D's fast path (algorithm ``fast_conv``) against the readable one: out, dx, dw, db."""
    N, C, H, W, F, K, s, p, G = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    bias = rng.standard_normal(F).astype(dtype)

    def make(impl):
        layer = path(Conv2D(C, F, K, s, p, groups=G, rng=1, weight_std=0.5, dtype=dtype), impl)
        layer.params["b"][:] = bias
        layer.fast_conv = fast_conv
        return layer

    r = run_both(make, x)
    (o_ref, dx_ref, g_ref), (o_f, dx_f, g_f) = r["reference"], r["numba"]
    assert_close(o_f, o_ref, dtype)
    assert_close(dx_f, dx_ref, dtype)
    for k in ("w", "b"):
        assert_close(g_f[k], g_ref[k], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CONV_CASES)
def test_conv_fast_matches_reference(case, dtype):
    assert_conv_paths_agree(case, dtype, seed=sum(case))


# Shapes for the direct kernels: kernel counts not a multiple of 4, pixel
# counts not a multiple of 4 or 16, batch 1, padding 0 and padding K-1, and a
# stride-2 case (direct forward only).
DIRECT_CASES = CONV_CASES + [
    (1, 16, 7, 9, 6, 3, 1, 1, 2),         # batch 1, grouped, 3 kernels per group
    (3, 8, 15, 15, 10, 5, 1, 2, 2),       # cifar conv2-like, odd sizes
    (2, 12, 6, 5, 7, 3, 1, 0, 1),         # no padding, 7 kernels
    (2, 6, 5, 6, 4, 3, 1, 2, 1),          # padding K-1: dx padding 0
    (2, 12, 9, 9, 8, 3, 2, 1, 2),         # stride 2: direct forward, GEMM dw and dx
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("fast_conv,rows_below", [("direct", 0), ("direct", 10**9), ("gemm", 32)])
@pytest.mark.parametrize("case", DIRECT_CASES)
def test_conv_direct_and_gemm_match_reference(case, fast_conv, rows_below, dtype, monkeypatch):
    """Every algorithm of the fast path, forced, agrees with the readable path:
    the GEMM; the direct kernels with the forward pass (and dx) by patches
    (rows_below=0) or, for stride 1, by whole rows (rows_below huge)."""
    monkeypatch.setattr(_numba, "ROWS_BELOW", rows_below)
    monkeypatch.setattr(_numba, "ROWS_FEW_KERNELS", 0 if rows_below == 0 else 16)
    assert_conv_paths_agree(case, dtype, seed=sum(case) + 1, fast_conv=fast_conv)


def test_conv_auto_plan():
    """"auto" takes the direct kernels where they pay (few kernels per group,
    stride 1) and the GEMM elsewhere; a bad name is a clear error."""
    cifar_conv2 = path(Conv2D(32, 48, 5, 1, 2, groups=2), "numba")
    assert cifar_conv2._plan() == (True, True, True)
    assert cifar_conv2.kernel_path == "numba (forward direct, dw direct, dx direct)"
    cifar_conv1 = path(Conv2D(3, 32, 5, 1, 2), "numba")            # forward by conv2d_rows
    assert cifar_conv1._plan() == (True, True, True)
    paper_conv1 = path(Conv2D(3, 96, 11, 4, 2), "numba")           # stride 4
    assert paper_conv1._plan() == (False, False, False)
    paper_conv3 = path(Conv2D(256, 384, 3, 1, 1), "numba")         # 384 kernels: BLAS territory
    assert paper_conv3._plan() == (False, False, False)
    paper_conv5 = path(Conv2D(384, 256, 3, 1, 1, groups=2), "numba")   # 128 per group: dw by BLAS
    assert paper_conv5._plan() == (True, False, True)
    assert paper_conv5.kernel_path == "numba (forward direct, dw gemm, dx direct)"
    cifar_conv2.fast_conv = "gemm"
    assert cifar_conv2._plan() == (False, False, False)
    cifar_conv2.fast_conv = "fft"
    with pytest.raises(ValueError, match="fast_conv"):
        cifar_conv2.forward(np.zeros((1, 32, 15, 15), np.float32))


def test_conv_direct_dw_chunks_sum_in_order(monkeypatch):
    """A tiny DW_CHUNK_BYTES puts one image in each dw chunk; the chunk sums
    must still add up to the reference dw."""
    monkeypatch.setattr(_numba, "DW_CHUNK_BYTES", 1)
    rng = np.random.default_rng(14)
    x = rng.standard_normal((5, 8, 9, 9))
    make = lambda impl: path(Conv2D(8, 6, 5, 1, 2, groups=2, rng=2, weight_std=0.5,
                               dtype=np.float64), impl)
    r = run_both(make, x)
    for k in ("w", "b"):
        assert_close(r["numba"][2][k], r["reference"][2][k], np.float64)


@pytest.mark.parametrize("chunk_bytes", [1, 3000])
def test_conv_fast_path_chunks_the_batch(monkeypatch, chunk_bytes):
    """With a tiny CHUNK_BYTES the batch is split (one image per chunk, or a few):
    dw must sum over chunks and dx must land in the right images."""
    monkeypatch.setattr(conv_module, "CHUNK_BYTES", chunk_bytes)
    rng = np.random.default_rng(7)
    x = rng.standard_normal((5, 4, 8, 8)).astype(np.float64)
    make = lambda impl: path(Conv2D(4, 6, 3, 1, 1, groups=2, rng=2, weight_std=0.5,
                               dtype=np.float64), impl)
    assert make("numba")._chunk(5, 8, 8, 8) < 5                 # really more than one chunk
    r = run_both(make, x)
    for a, b in zip(r["numba"][:2], r["reference"][:2]):
        assert_close(a, b, np.float64)
    for k in ("w", "b"):
        assert_close(r["numba"][2][k], r["reference"][2][k], np.float64)


def test_conv_workspace_reuse_across_layers_and_steps():
    """Two layers of different shapes share the scratch buffers; a second step
    on new data must not see stale columns from the first."""
    rng = np.random.default_rng(8)
    conv_module.WORKSPACE.clear()
    a = path(Conv2D(3, 4, 3, 1, 1, rng=1), "numba")
    b = path(Conv2D(4, 5, 5, 2, 2, rng=2), "numba")
    a_ref = path(Conv2D(3, 4, 3, 1, 1, rng=1), "reference")
    b_ref = path(Conv2D(4, 5, 5, 2, 2, rng=2), "reference")
    for step in range(2):
        x = rng.standard_normal((2 + step, 3, 11, 11)).astype(np.float32)
        y, y_ref = b.forward(a.forward(x)), b_ref.forward(a_ref.forward(x))
        assert_close(y, y_ref, np.float32)
        d = rng.standard_normal(y.shape).astype(np.float32)
        assert_close(a.backward(b.backward(d)), a_ref.backward(b_ref.backward(d)), np.float32)
        assert_close(a.grads["w"], a_ref.grads["w"], np.float32)


POOL_CASES = [
    (1, 1, 3, 3, 3, 2),      # one window
    (2, 3, 9, 9, 3, 2),      # AlexNet's overlapping pool
    (1, 5, 13, 11, 3, 2),    # odd, non-square, batch 1
    (3, 2, 8, 8, 2, 2),      # classic non-overlapping
    (2, 2, 10, 9, 3, 1),     # heavy overlap
    (1, 2, 27, 27, 12, 5),   # z*z = 144 > 127: int32 arg-max
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", POOL_CASES)
def test_maxpool_fast_matches_reference(case, dtype):
    N, C, H, W, z, s = case
    x = np.random.default_rng(sum(case)).standard_normal((N, C, H, W)).astype(dtype)
    r = run_both(lambda impl: path(MaxPool2D(z, s), impl), x)
    (o_ref, dx_ref, _), (o_f, dx_f, _) = r["reference"], r["numba"]
    assert o_f.dtype == dtype and np.array_equal(o_f, o_ref)
    assert_close(dx_f, dx_ref, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", [(2, 3, 24, 24, 3, 2), (1, 2, 12, 11, 3, 2), (2, 2, 7, 9, 2, 2)])
def test_covering_maxpool_fast_matches_reference(case, dtype):
    """cover=True (cuda-convnet's partial edge windows) on the numba path."""
    N, C, H, W, z, s = case
    x = np.random.default_rng(sum(case)).standard_normal((N, C, H, W)).astype(dtype)
    r = run_both(lambda impl: path(MaxPool2D(z, s, cover=True), impl), x)
    (o_ref, dx_ref, _), (o_f, dx_f, _) = r["reference"], r["numba"]
    assert o_f.shape == (N, C, -(-(H - z) // s) + 1, -(-(W - z) // s) + 1)
    assert np.array_equal(o_f, o_ref) and dx_f.shape == x.shape
    assert_close(dx_f, dx_ref, dtype)


def test_maxpool_ties_go_to_first_max_and_overlaps_add():
    """Integer-valued inputs tie everywhere; the fast path must route each
    gradient exactly where the reference does (first max, row-major), and
    pixels shared by overlapping windows get the sum."""
    rng = np.random.default_rng(9)
    x = rng.integers(0, 3, size=(2, 3, 11, 11)).astype(np.float32)
    r = run_both(lambda impl: path(MaxPool2D(3, 2), impl), x)
    assert np.array_equal(r["numba"][0], r["reference"][0])
    assert_close(r["numba"][1], r["reference"][1], np.float32)    # same routes; sums may reorder
    # A constant input: every window's first element is its max.
    ones = np.ones((1, 1, 5, 5), np.float32)
    pool = path(MaxPool2D(3, 2), "numba")
    pool.forward(ones)
    dx = pool.backward(np.ones((1, 1, 2, 2), np.float32))
    expected = np.zeros((5, 5), np.float32)
    expected[0, 0] = expected[0, 2] = expected[2, 0] = expected[2, 2] = 1
    assert np.array_equal(dx[0, 0], expected)


def test_maxpool_nan_is_the_argmax_like_numpy():
    x = np.arange(25, dtype=np.float32).reshape(1, 1, 5, 5)
    x[0, 0, 1, 1] = np.nan                                       # inside window (0, 0) only
    out, arg = _numba.maxpool_forward(x, 3, 2)
    ref = path(MaxPool2D(3, 2), "reference").forward(x)
    assert np.isnan(out[0, 0, 0, 0]) and arg[0, 0, 0, 0] == 4
    assert np.array_equal(out, ref, equal_nan=True)


@pytest.mark.parametrize("z,s", [(3, 2), (2, 2), (3, 1), (4, 3)])   # both literal kernels, generic
def test_maxpool_kernels_match_argmax_with_ties_and_nans(z, s):
    """Every forward kernel variant gives np.argmax's answer over each window:
    ties to the first maximum, a NaN (the first one) wins, -inf and -0.0 kept."""
    rng = np.random.default_rng(z * 10 + s)
    x = rng.integers(-2, 3, size=(2, 3, 13, 12)).astype(np.float32)
    flat = x.reshape(-1)
    flat[rng.choice(flat.size, 12, replace=False)] = np.nan
    flat[rng.choice(flat.size, 12, replace=False)] = -np.inf
    flat[rng.choice(flat.size, 12, replace=False)] = -0.0
    out, arg = _numba.maxpool_forward(x, z, s)
    layer = path(MaxPool2D(z, s), "reference")
    ref = layer.forward(x)
    assert np.array_equal(out, ref, equal_nan=True)
    assert np.array_equal(arg.reshape(-1), layer.cache[-1])        # the reference's flat arg-max


LRN_CASES = [
    # (N, C, H, W, size, alpha, beta, k, convention)
    (1, 96, 5, 7, 5, 1e-4, 0.75, 2.0, "paper"),    # the paper's constants, batch 1
    (2, 7, 3, 3, 5, 1.0, 0.75, 1.0, "paper"),      # visible constants, odd C
    (3, 3, 4, 5, 5, 1.0, 0.75, 1.0, "pytorch"),    # window wider than C
    (2, 8, 3, 2, 3, 0.3, 0.6, 0.5, "paper"),       # beta != 3/4: the pow branch
    (1, 1, 2, 2, 5, 1.0, 0.75, 1.0, "paper"),      # one channel
    (2, 6, 1, 1, 4, 0.5, 0.75, 1.5, "paper"),      # even size: window 2*(4//2)+1
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", LRN_CASES)
def test_lrn_fast_matches_reference(case, dtype):
    N, C, H, W, n, alpha, beta, k, conv = case
    x = np.random.default_rng(N * C + H).standard_normal((N, C, H, W)).astype(dtype)
    r = run_both(lambda impl: path(LocalResponseNorm(n, alpha, beta, k, conv), impl), x)
    for a, b in zip(r["numba"][:2], r["reference"][:2]):
        assert_close(a, b, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 1, 1, 1), (3, 5, 7, 9), (2, 16, 33, 31), (4, 40000)])
def test_relu_fast_matches_reference_exactly(shape, dtype):
    """Same values bit for bit, NaN, inf and -0.0 included; dout untouched."""
    rng = np.random.default_rng(int(np.prod(shape)))
    x = rng.standard_normal(shape).astype(dtype)
    flat = x.reshape(-1)
    flat[: min(5, flat.size)] = [np.nan, -np.inf, np.inf, -0.0, 0.0][: min(5, flat.size)]
    r = run_both(lambda impl: path(ReLU(), impl), x)
    for a, b in zip(r["numba"][:2], r["reference"][:2]):
        assert a.dtype == b.dtype == np.dtype(dtype)
        assert np.array_equal(a, b, equal_nan=True)
        assert np.array_equal(np.signbit(a), np.signbit(b))


def test_col2im_fast_matches_reference_and_overwrites_out():
    rng = np.random.default_rng(10)
    for (N, C, H, W, K, s, p) in [(1, 3, 11, 11, 3, 2, 1), (2, 2, 9, 8, 5, 1, 2), (1, 1, 7, 7, 7, 1, 0)]:
        x_shape = (N, C, H, W)
        cols = im2col_reference(np.zeros(x_shape, np.float32), K, K, s, p)
        cols = rng.standard_normal(cols.shape).astype(np.float32)
        out = np.full(x_shape, 123.0, np.float32)                  # garbage: must be overwritten
        fast = _numba.col2im(cols, x_shape, K, K, s, p, out=out)
        assert fast is out
        assert_close(fast, col2im_reference(cols, x_shape, K, K, s, p), np.float32)
        assert_close(_numba.col2im(cols, x_shape, K, K, s, p),            # allocating its own output
                     col2im_reference(cols, x_shape, K, K, s, p), np.float32)


def test_kernel_switch_env_and_errors(monkeypatch):
    """One switch, one name: kernels= or MINIALEX_KERNELS, "fast" or "reference", applied by accelerate."""
    monkeypatch.setenv("MINIALEX_KERNELS", "reference")
    assert kernels_choice() == "reference" and type(accelerate(Conv2D(3, 4, 3), np)) is Conv2D
    monkeypatch.setenv("MINIALEX_KERNELS", "fast")
    assert kernels_choice() == "fast" and type(accelerate(Conv2D(3, 4, 3), np)) is NumbaConv2D
    assert kernels_choice("reference") == "reference"              # an explicit value wins over env
    assert type(accelerate(accelerate(ReLU(), np), np, "reference")) is ReLU   # and back again
    for bad in ("fortran", "numba", "auto"):                       # the old value names are gone too
        monkeypatch.setenv("MINIALEX_KERNELS", bad)
        with pytest.raises(ValueError, match="MINIALEX_KERNELS must be one of"):
            kernels_choice()
    monkeypatch.delenv("MINIALEX_KERNELS")
    assert kernels_choice() == "fast"                              # the default
    with pytest.raises(ValueError, match="kernels must be one of"):
        kernels_choice("fortran")


def test_reference_switch_really_skips_numba(monkeypatch):
    """MINIALEX_KERNELS=reference: accelerate keeps the readable layers and their cache format."""
    monkeypatch.setenv("MINIALEX_KERNELS", "reference")
    x = np.random.default_rng(11).standard_normal((1, 6, 7, 7)).astype(np.float32)
    lrn, pool, conv = (accelerate(layer, np) for layer in (LocalResponseNorm(), MaxPool2D(), Conv2D(6, 4, 3, rng=0)))
    assert {lrn.kernel_path, pool.kernel_path, conv.kernel_path} == {"reference"}
    lrn.forward(x), pool.forward(x), conv.forward(x)
    assert lrn.cache[1] is not None                                # scale kept: reference path
    assert pool.cache[-1].ndim == 1                                # flat arg-max over im2col columns
    assert len(conv.cache) == 2 and conv.cache[0] == x.shape       # the readable (x shape, x)


def test_fast_path_not_used_for_non_numpy_arrays():
    class FakeXp:                                                  # stands in for cupy
        __name__ = "cupy"
    assert type(accelerate(Conv2D(3, 4, 3), FakeXp, "fast")) is CudaConv2D
    assert type(accelerate(path(ReLU(), "numba"), FakeXp, "fast")) is ReLU   # no CUDA ReLU: readable
    assert isinstance(path(ReLU(), "numba"), NumbaReLU)


def test_thread_count_respected():
    """numba never runs more threads than cores, the kernels do not raise the
    count, and one thread gives bit-identical results (no reduction races)."""
    cores = os.cpu_count()
    assert numba.get_num_threads() <= cores
    rng = np.random.default_rng(12)
    x = rng.standard_normal((3, 8, 13, 13)).astype(np.float32)
    d = rng.standard_normal((3, 8, 6, 6)).astype(np.float32)

    def run():
        conv = path(Conv2D(8, 8, 3, 1, 1, groups=2, rng=3), "numba")     # conv2d_rows
        wide = path(Conv2D(8, 8, 5, 1, 2, rng=4), "numba")               # patch kernel
        relu = path(ReLU(), "numba")
        lrn = path(LocalResponseNorm(), "numba")
        pool = path(MaxPool2D(3, 2), "numba")
        y = pool.forward(lrn.forward(relu.forward(wide.forward(conv.forward(x)))))
        dx = conv.backward(wide.backward(relu.backward(lrn.backward(pool.backward(d)))))
        return y, dx, conv.grads["w"], wide.grads["w"], wide.grads["b"]

    before = numba.get_num_threads()
    many = run()
    assert numba.get_num_threads() == before
    numba.set_num_threads(1)
    try:
        one = run()
        assert numba.get_num_threads() == 1
    finally:
        numba.set_num_threads(before)
    for a, b in zip(many, one):
        assert np.array_equal(a, b)


@pytest.mark.parametrize("impl", ["reference", "numba"])
def test_conv_without_input_grad_keeps_weight_grads(impl):
    """input_grad=False (the first layer) skips dx but leaves dw and db unchanged."""
    rng = np.random.default_rng(13)
    x = rng.standard_normal((2, 3, 9, 9)).astype(np.float32)
    full = path(Conv2D(3, 4, 3, 2, 1, rng=5), impl)
    skip = path(Conv2D(3, 4, 3, 2, 1, rng=5, input_grad=False), impl)
    d = rng.standard_normal(full.forward(x).shape).astype(np.float32)
    skip.forward(x)
    assert full.backward(d) is not None and skip.backward(d) is None
    for k in ("w", "b"):
        assert np.array_equal(full.grads[k], skip.grads[k])
    assert skip.cache is None


def test_kernel_twins_take_the_same_arguments():
    """A numba kernel and its CUDA twin have one signature, so a fast layer calls either the same way."""
    import inspect

    from minialex.kernels import _cuda

    for name in ("im2col", "col2im", "maxpool_forward", "maxpool_backward", "lrn_forward", "lrn_backward"):
        assert inspect.signature(getattr(_numba, name)) == inspect.signature(getattr(_cuda, name)), name
