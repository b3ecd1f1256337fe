"""The CUDA kernel bodies of minialex/kernels/_cuda.py, compiled as C++ and run on the CPU.

No GPU is needed: each ElementwiseKernel body is pasted into a C++ loop over
``i`` (CuPy's output index), with raw arrays as pointers and output
parameters as references to element ``i`` -- the semantics CuPy gives them.
The Python wrappers of _cuda.py then run unchanged on NumPy arrays, with a
stand-in for ``cupy`` that allocates NumPy arrays and a stand-in for
``ElementwiseKernel`` that calls the compiled loop. This checks the index
arithmetic, the gather formulation of col2im / max-pool backward (overlaps
add), the arg-max tie rule and the LRN window against the readable layers.

What it cannot check: CUDA compilation itself (nvcc/NVRTC), launch
configuration and anything device-specific; tests/test_gpu.py does that on a
GPU. Skipped when no C++ compiler is found.
"""
import re
import types

import numpy as np
import pytest
from cuda_cpu_harness import CXX, CpuKernel, build_library, parse_params, splitmix_uniform
from lrn_reference import HALF_CASES, backward_bound, forward_bound, half_inputs, lrn_loops, worst

from minialex.kernels import _cuda
from minialex.gradcheck import rel_error
from minialex.im2col import col2im_reference, im2col_reference
from minialex.layers import LocalResponseNorm, MaxPool2D

pytestmark = pytest.mark.skipif(CXX is None, reason="no C++ compiler (g++ or clang++) to build the kernels")


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    return build_library(tmp_path_factory.mktemp("cuda_on_cpu"))


@pytest.fixture
def cuda_on_cpu(library, monkeypatch):
    fake_cp = types.SimpleNamespace(empty=np.empty, empty_like=np.empty_like, asarray=np.asarray,
                                    ascontiguousarray=np.ascontiguousarray, int32=np.int32, float32=np.float32)
    monkeypatch.setattr(_cuda, "_cupy", lambda: fake_cp)
    monkeypatch.setattr(_cuda, "_kernel", lambda name: CpuKernel(library, name))
    return _cuda


DTYPES = [np.float32, np.float64]
TOL = {np.float32: 1e-5, np.float64: 1e-12}


def distinct(rng, shape, dtype):
    n = int(np.prod(shape))
    return ((rng.permutation(n) + 0.5) / n * 4 - 2).reshape(shape).astype(dtype)


def test_kernel_bodies_use_only_their_declared_names():
    # a typo such as `Wd` for `W` would only show at nvcc time on a GPU; C++ catches it here too,
    # but check that each body reads its output names (an unwritten output is a silent bug)
    for name, (_, outs, body) in _cuda.KERNEL_SPECS.items():
        for _, _, n in parse_params(outs):
            assert re.search(rf"\b{n}\s*=", body), (name, n)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("K,s,p", [(3, 1, 1), (5, 1, 2), (11, 4, 2), (3, 2, 0), (2, 3, 1), (3, 2, 1)])
def test_im2col_col2im(cuda_on_cpu, dtype, K, s, p):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 13, 12)).astype(dtype)
    cols = cuda_on_cpu.im2col(x, K, K, s, p)
    np.testing.assert_array_equal(cols, im2col_reference(x, K, K, s, p))
    dcols = rng.standard_normal(cols.shape).astype(dtype)
    dx = cuda_on_cpu.col2im(dcols, x.shape, K, K, s, p)
    assert rel_error(col2im_reference(dcols, x.shape, K, K, s, p), dx) < TOL[dtype]


def test_col2im_rejects_a_wrong_shape(cuda_on_cpu):
    with pytest.raises(ValueError, match="expected"):
        cuda_on_cpu.col2im(np.zeros((5, 7)), (1, 1, 4, 4), 3, 3, 1, 0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("z,s,shape", [(3, 2, (2, 3, 11, 9)), (2, 2, (2, 3, 8, 8)), (3, 1, (1, 2, 6, 7)),
                                       (3, 2, (1, 2, 13, 13))])
def test_maxpool(cuda_on_cpu, dtype, z, s, shape):
    rng = np.random.default_rng(1)
    x = distinct(rng, shape, dtype)
    layer = MaxPool2D(z, s)
    out = layer.forward(x)
    dout = rng.standard_normal(out.shape).astype(dtype)
    dx = layer.backward(dout)
    got, arg = cuda_on_cpu.maxpool_forward(x, z, s)
    np.testing.assert_array_equal(got, out)
    assert arg.dtype == np.int32 and arg.shape == out.shape
    assert rel_error(dx, cuda_on_cpu.maxpool_backward(dout, arg, x.shape, z, s)) < TOL[dtype]


def test_covering_maxpool_layer(cuda_on_cpu):
    """CudaMaxPool2D with cover=True (partial edge windows) against the readable layer."""
    from minialex.kernels.pool import CudaMaxPool2D
    rng = np.random.default_rng(2)
    x = distinct(rng, (2, 3, 12, 11), np.float64)
    ref, fast = MaxPool2D(3, 2, cover=True), MaxPool2D(3, 2, cover=True)
    fast.__class__ = CudaMaxPool2D
    out = ref.forward(x)
    np.testing.assert_array_equal(fast.forward(x), out)
    assert out.shape == (2, 3, 6, 5)
    dout = rng.standard_normal(out.shape)
    dx = fast.backward(dout)
    assert dx.shape == x.shape and rel_error(ref.backward(dout), dx) < TOL[np.float64]


def test_maxpool_ties_and_overlapping_windows(cuda_on_cpu):
    x = np.zeros((1, 1, 5, 5))
    layer = MaxPool2D(3, 2)
    out = layer.forward(x)
    dout = np.arange(1.0, out.size + 1).reshape(out.shape)
    dx = layer.backward(dout)
    _, arg = cuda_on_cpu.maxpool_forward(x, 3, 2)
    np.testing.assert_array_equal(arg, 0)                      # first max in row-major order
    np.testing.assert_array_equal(cuda_on_cpu.maxpool_backward(dout, arg, x.shape, 3, 2), dx)
    x[0, 0, 2, 2] = 1.0                                        # the max of all four windows
    _, arg = cuda_on_cpu.maxpool_forward(x, 3, 2)
    dx = cuda_on_cpu.maxpool_backward(np.ones((1, 1, 2, 2)), arg, x.shape, 3, 2)
    assert dx[0, 0, 2, 2] == 4.0 and dx.sum() == 4.0


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size,alpha,beta,k,conv,C", [(5, 1.0, 0.75, 1.0, "paper", 7), (3, 0.5, 0.6, 2.0, "pytorch", 7),
                                                      (5, 1e-4, 0.75, 2.0, "paper", 7), (4, 1.0, 0.75, 1.0, "paper", 7),
                                                      (5, 1.0, 0.75, 1.0, "paper", 2), (1, 1.0, 0.75, 1.0, "paper", 3)])
def test_lrn(cuda_on_cpu, dtype, size, alpha, beta, k, conv, C):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, C, 4, 5)).astype(dtype)
    layer = LocalResponseNorm(size, alpha, beta, k, alpha_convention=conv)  # the readable layer keeps scale
    out = layer.forward(x)
    _, scale, _ = layer.cache
    got, got_scale = cuda_on_cpu.lrn_forward(x, size, k, layer.coeff, beta)
    assert rel_error(out, got) < TOL[dtype] and rel_error(scale, got_scale) < TOL[dtype]
    dout = rng.standard_normal(x.shape).astype(dtype)
    dx = layer.backward(dout)
    got_dx = cuda_on_cpu.lrn_backward(dout, x, got_scale, got, size, k, layer.coeff, beta)
    assert rel_error(dx, got_dx) < TOL[dtype]


def test_splitmix_reference_matches_the_published_first_output():
    # splitmix64 seeded with 0 first returns 0xE220A8397B1DCDAF (Vigna's splitmix64.c test vector)
    _, raw = splitmix_uniform(1, 0)
    assert int(raw[0]) == 0xE220A8397B1DCDAF


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("p", [0.5, 0.1, 0.0])
def test_dropout_mask_is_the_splitmix_stream_thresholded(cuda_on_cpu, dtype, p):
    seed = 12345678901234567
    mask = cuda_on_cpu.dropout_mask((7, 33), p, seed, dtype)
    u, _ = splitmix_uniform(7 * 33, seed)
    assert mask.dtype == dtype and mask.shape == (7, 33)
    np.testing.assert_array_equal(mask.ravel(), (u >= p).astype(dtype))


def test_dropout_mask_with_the_seed_in_a_buffer_is_the_same_stream(cuda_on_cpu):
    """dropout_mask_buf (CUDA graphs read the seed from device memory) = the seed passed by value."""
    seed = 2 ** 63 + 12345                                    # above int64: the full uint64 range
    by_value = cuda_on_cpu.dropout_mask((5, 41), 0.3, seed, np.float32)
    in_buffer = cuda_on_cpu.dropout_mask((5, 41), 0.3, np.array([seed], dtype=np.uint64), np.float32)
    np.testing.assert_array_equal(by_value, in_buffer)
    u, _ = splitmix_uniform(5 * 41, seed)
    np.testing.assert_array_equal(in_buffer.ravel(), (u >= 0.3).astype(np.float32))


def test_dropout_mask_keep_rate_and_seeds(cuda_on_cpu):
    a = cuda_on_cpu.dropout_mask((256, 512), 0.5, 1, np.float32)
    b = cuda_on_cpu.dropout_mask((256, 512), 0.5, 1, np.float32)
    c = cuda_on_cpu.dropout_mask((256, 512), 0.5, 2, np.float32)
    np.testing.assert_array_equal(a, b)                       # a seed gives its mask
    assert abs(a.mean() - 0.5) < 0.005                        # 131072 draws: 5 sigma is 0.007
    assert 0.45 < (a == c).mean() < 0.55                      # other seeds: independent-looking masks
    assert abs(cuda_on_cpu.dropout_mask((1000, 100), 0.2, 3, np.float64).mean() - 0.8) < 0.01


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("wd", [5e-4, 0.0])
def test_sgd_update_is_bit_identical_to_sgd_step(cuda_on_cpu, dtype, wd):
    from minialex.optim import SGD

    rng = np.random.default_rng(3)
    w = rng.standard_normal((5, 7)).astype(dtype)
    v = (0.1 * rng.standard_normal((5, 7))).astype(dtype)
    g = rng.standard_normal((5, 7)).astype(dtype)
    opt = SGD({"w": w.copy()}, lr=0.013, momentum=0.9, weight_decay=wd)
    opt.velocity["w"][...] = v
    opt.step({"w": g})                                        # the CPU's four in-place lines
    w2, v2 = w.copy(), v.copy()
    cuda_on_cpu.sgd_update(w2, v2, g, 0.9, wd * 0.013, 0.013)
    np.testing.assert_array_equal(v2, opt.velocity["w"])
    np.testing.assert_array_equal(w2, opt.params["w"])


def test_sgd_update_rejects_mismatched_shapes(cuda_on_cpu):
    with pytest.raises(ValueError, match="shapes differ"):
        cuda_on_cpu.sgd_update(np.zeros((2, 3)), np.zeros((2, 3)), np.zeros((3, 2)), 0.9, 0.0, 0.1)


@pytest.mark.parametrize("pad,crop,flip_all", [(0, 5, False), (2, 7, True), (4, 9, False), (1, 9, True)])
def test_crop_flip_shift_equals_the_numba_loader_kernel(cuda_on_cpu, pad, crop, flip_all):
    """The GPU augmentation kernel against data/_numba.py's crop_flip_shift_f32: bit for bit."""
    from minialex.data._numba import crop_flip_shift_f32

    rng = np.random.default_rng(4)
    N, C, H, W = 6, 3, 9, 8
    x = rng.integers(0, 256, (N, C, H, W), dtype=np.uint8)
    mean = rng.uniform(0, 255, (C, H, W)).astype(np.float32)
    top = rng.integers(0, H + 2 * pad - crop + 1, N)
    left = rng.integers(0, W + 2 * pad - crop + 1, N)
    flip = np.ones(N, bool) if flip_all else rng.random(N) < 0.5
    shift = rng.standard_normal((N, C)).astype(np.float32)
    want = np.empty((N, C, crop, crop), np.float32)
    crop_flip_shift_f32(x, mean, top, left, flip, shift, pad, want)
    got = cuda_on_cpu.crop_flip_shift(x, mean, top, left, flip, shift, pad, (crop, crop))
    np.testing.assert_array_equal(got, want)


# ----------------------------------------------------------------------------
# float16 (--precision fp16): the gather kernels and LRN sum in float (_cuda.ACC_PREAMBLE)
# ----------------------------------------------------------------------------
def test_half_col2im_sums_in_float_then_rounds_once(cuda_on_cpu, library):
    if not library.half:
        pytest.skip("the C++ compiler has no _Float16")
    # K=5, s=1, p=2 (conv2): an inner pixel sums 25 windows. Every column entry 1 + 2^-10
    # (exact in float16): the float sum 25.0244 rounds once to 25.03125; a float16 running
    # sum loses the 2^-10 from 16 on (its spacing there is 2^-6) and ends lower.
    x_shape = (1, 1, 9, 9)
    cols = np.full((25, 81), 1 + 2.0 ** -10, dtype=np.float16)
    dx = cuda_on_cpu.col2im(cols, x_shape, 5, 5, 1, 2)
    assert dx.dtype == np.float16
    exact = col2im_reference(cols.astype(np.float64), x_shape, 5, 5, 1, 2)
    np.testing.assert_array_equal(dx, exact.astype(np.float16))       # one rounding of the exact sum
    assert dx[0, 0, 4, 4] == np.float16(25.03125)


def test_half_im2col_and_maxpool_match_the_reference(cuda_on_cpu, library):
    if not library.half:
        pytest.skip("the C++ compiler has no _Float16")
    rng = np.random.default_rng(7)
    x = distinct(rng, (2, 3, 13, 13), np.float16)
    np.testing.assert_array_equal(cuda_on_cpu.im2col(x, 3, 3, 2, 1), im2col_reference(x, 3, 3, 2, 1))
    out, arg = cuda_on_cpu.maxpool_forward(x, 3, 2)
    ref = MaxPool2D(3, 2)                                   # the readable layer (numba has no float16)
    np.testing.assert_array_equal(out, ref.forward(x))
    dout = rng.standard_normal(out.shape).astype(np.float16)
    dx = cuda_on_cpu.maxpool_backward(dout, arg, x.shape, 3, 2)
    exact = MaxPool2D(3, 2)
    exact.forward(x.astype(np.float64))
    np.testing.assert_array_equal(dx, exact.backward(dout.astype(np.float64)).astype(np.float16))


@pytest.mark.parametrize("case", list(HALF_CASES))
def test_half_lrn_sums_in_float_and_rounds_once(cuda_on_cpu, library, case):
    """float16 LRN kernels against float64 loops: within one float16 rounding of each stored result.

    The bounds (tests/lrn_reference.py) are what float32 sums rounded once to float16 allow:
    |out - ref| <= (2^-11 + 2^-20)|ref| + 2^-25, and for dx one rounding plus those of the
    float16 out and scale it reads. Worst error / bound measured in the four HALF_CASES,
    in order: out 0.975, 0.986, 0.983, 0.893; scale 0.979, 0.970, 0.987, 0.991;
    dx 0.889, 0.884, 0.854, 0.564.
    The kernels before this change (squares, sums, bracket and pow in float16, constants
    rounded to float16), emulated in NumPy float16 on the same inputs (CuPy's float16 rounds
    every operation; the old body does not build with _Float16 here: pow is ambiguous):
    out 2.05, 2.89, 2.58 times the bound, scale 1.62, 2.59, 2.45, dx 1.53, 1.61, 1.54;
    in the last case x^2 overflowed to inf, so out and dx became 0 (2044 and 1163 times).
    """
    if not library.half:
        pytest.skip("the C++ compiler has no _Float16")
    size, alpha, beta, k, kind = HALF_CASES[case]
    x, dout = half_inputs(kind)
    out, scale, dx, t1, t2abs = lrn_loops(x, dout, size, alpha, beta, k)
    got, got_scale = cuda_on_cpu.lrn_forward(x, size, k, alpha, beta)
    assert got.dtype == got_scale.dtype == np.float16
    assert worst(got, out, forward_bound(out)) <= 1
    assert worst(got_scale, scale, forward_bound(scale)) <= 1
    got_dx = cuda_on_cpu.lrn_backward(dout, x, got_scale, got, size, k, alpha, beta)
    assert got_dx.dtype == np.float16
    assert worst(got_dx, dx, backward_bound(dx, t1, t2abs, beta)) <= 1
