"""CuPy (CUDA) kernels, and only them.

Each kernel has a readable twin that it is tested against (tests/test_gpu.py):

=====================  ==========================================================
kernel here            readable twin
=====================  ==========================================================
``im2col``             ``minialex.im2col.im2col_reference``
``col2im``             ``minialex.im2col.col2im_reference``
``maxpool_forward``    ``MaxPool2D.forward`` (im2col + argmax), Sec. 3.4
``maxpool_backward``   ``MaxPool2D.backward`` (col2im of the routed gradient)
``lrn_forward``        ``LocalResponseNorm.forward``, Sec. 3.3
``lrn_backward``       ``LocalResponseNorm.backward``
``sgd_update``         ``SGD.step``'s four in-place lines, Sec. 5
``dropout_mask``       a NumPy splitmix64 in tests/test_gpu.py (Sec. 4.2)
``crop_flip_shift``    ``data/_numba.py``'s ``crop_flip_shift_f32`` (Sec. 2, 4.1)
=====================  ==========================================================

The wrappers with a numba twin in ``_numba.py`` (im2col, col2im,
maxpool_forward, maxpool_backward, lrn_forward, lrn_backward) take the same
arguments in the same order. The fast layers that call them are in this
package (``conv.py``, ``pool.py``, ``lrn.py``, ``dropout.py``).

Every kernel is an ``ElementwiseKernel`` with one CUDA thread per *output*
element, and every backward kernel is written as a **gather**: the thread
that owns input pixel (n, c, h, w) loops over the few windows that contain it
and sums their contributions. Overlapping windows (z=3, s=2) therefore
accumulate without atomics, and the sums are deterministic (same order every
run, float64 included).

Matrix products are not here: ``xp.matmul`` on CuPy arrays is cuBLAS. There is
no cuDNN anywhere in minialex.

CuPy is imported lazily, inside the functions: importing minialex never
needs it. Each function runs on the device that holds its input
(``_on_device_of``), so the two-tower model can call it for either GPU.

Checked without a GPU by tests/test_cuda_kernels_on_cpu.py (the bodies
compiled as C++ and run on NumPy arrays) and tests/test_cuda_compile.py
(NVRTC compiles them, where CuPy is installed); on a GPU by tests/test_gpu.py.
"""
from __future__ import annotations

import contextlib
import functools

from ..im2col import conv_output_size


def _cupy():
    import cupy  # lazily: minialex imports without CuPy

    return cupy


# ----------------------------------------------------------------------------
# Kernel sources. Index names follow the layers: n, c, h, w for the input,
# oh, ow for output positions, kh, kw inside a window. ``i`` is CuPy's flat
# index of the output element this thread writes (C order).
# ----------------------------------------------------------------------------

# The sums of the gather kernels and of LRN run in ``A``: float for a 16-bit T
# (float16: col2im adds up to 25 windows for conv2, and float16's spacing near
# 16 is 2^-6; LRN's squares overflow float16 from |x| = 256 on), T itself
# otherwise, so float and double are computed as before.
# Written without naming the half type, so the same preamble serves CuPy's
# float16 and the C++ harness's _Float16 (tests/cuda_cpu_harness.py).
ACC_PREAMBLE = r"""
template <bool Small, typename F, typename T> struct minialex_acc { typedef T type; };
template <typename F, typename T> struct minialex_acc<true, F, T> { typedef F type; };
"""
_ACC = "typedef minialex_acc<(sizeof(T) < 4), float, T>::type A;   // the accumulator type\n"

_IM2COL_SRC = r"""
    // cols: (C*KH*KW, N*OH*OW); row r = (c, kh, kw), column q = (n, oh, ow).
    // 32-bit index arithmetic (the wrapper refuses 2**31 elements or more):
    // a 64-bit division costs several times a 32-bit one on the GPU.
    const int ii = (int)i, NQ = N * OH * OW;
    const int r = ii / NQ, q = ii - r * NQ;
    const int kw = r % KW, kh = (r / KW) % KH, c = r / (KW * KH);
    const int ow = q % OW, oh = (q / OW) % OH, n = q / (OW * OH);
    const int h = oh * s - p + kh, w = ow * s - p + kw;
    if (h >= 0 && h < H && w >= 0 && w < W) {
        col = x[((n * C + c) * H + h) * W + w];
    } else {
        col = (T)0;                                   // zero padding
    }
"""

_COL2IM_SRC = r"""
    // dx: (N, C, H, W). Sum cols over every window (oh, ow) that covers
    // padded pixel (h+p, w+p): oh*s <= h+p <= oh*s + KH-1.
    // 32-bit index arithmetic, as in im2col (cols has fewer than 2**31 elements).
    const int ii = (int)i;
    const int w = ii % W, h = (ii / W) % H, c = (ii / (W * H)) % C;
    const int n = ii / (W * H * C);
    const int hp = h + p, wp = w + p;
    const int oh0 = hp < KH ? 0 : (hp - KH) / s + 1, oh1 = min(hp / s + 1, OH);
    const int ow0 = wp < KW ? 0 : (wp - KW) / s + 1, ow1 = min(wp / s + 1, OW);
    const int NQ = N * OH * OW;
    A acc = 0;
    for (int oh = oh0; oh < oh1; ++oh) {
        const int kh = hp - oh * s;
        for (int ow = ow0; ow < ow1; ++ow) {
            const int kw = wp - ow * s;
            const int r = (c * KH + kh) * KW + kw;
            const int q = (n * OH + oh) * OW + ow;
            acc += (A)cols[r * NQ + q];
        }
    }
    dx = (T)acc;
"""

_MAXPOOL_FWD_SRC = r"""
    // out, arg: (N, C, OH, OW); x: (N, C, H, W); no padding.
    // arg = kh*z + kw of the first maximum in row-major window order,
    // the row index of the readable code's (z*z, N*C*OH*OW) columns.
    const int ow = i % OW, oh = (i / OW) % OH;
    const ptrdiff_t nc = i / ((ptrdiff_t)OW * OH);
    const T* plane = &x[nc * H * W];
    const int h0 = oh * s, w0 = ow * s;
    T m = plane[h0 * W + w0];
    int best = 0;
    for (int kh = 0; kh < z; ++kh) {
        for (int kw = 0; kw < z; ++kw) {
            const T v = plane[(h0 + kh) * W + (w0 + kw)];
            if (v > m) { m = v; best = kh * z + kw; }   // strict: first max wins
        }
    }
    out = m;
    arg = best;
"""

_MAXPOOL_BWD_SRC = r"""
    // dx: (N, C, H, W). Gather: add dout of every window whose arg-max is
    // this pixel; with z=3, s=2 up to four windows can name it.
    const int w = i % W, h = (i / W) % H;
    const ptrdiff_t nc = i / ((ptrdiff_t)W * H);
    const int oh0 = h < z ? 0 : (h - z) / s + 1, oh1 = min(h / s + 1, OH);
    const int ow0 = w < z ? 0 : (w - z) / s + 1, ow1 = min(w / s + 1, OW);
    A acc = 0;
    for (int oh = oh0; oh < oh1; ++oh) {
        for (int ow = ow0; ow < ow1; ++ow) {
            const ptrdiff_t o = (nc * OH + oh) * OW + ow;
            if (arg[o] == (h - oh * s) * z + (w - ow * s)) acc += (A)dout[o];
        }
    }
    dx = (T)acc;
"""

_LRN_FWD_SRC = r"""
    // out, scale: (N, C, H, W). scale_i = k + coeff * sum_{j in window(i)} x_j^2,
    // window(i) = [max(0, i-half), min(C-1, i+half)] (Sec. 3.3).
    // The squares, their sum, the bracket and its pow are computed in A (float
    // for a 16-bit T, ACC_PREAMBLE); out and scale are rounded to T once.
    const ptrdiff_t HW = (ptrdiff_t)H * W;
    const ptrdiff_t pix = i % HW;
    const int c = (i / HW) % C;
    const ptrdiff_t n = i / (HW * C);
    const int j0 = max(0, c - half), j1 = min(C - 1, c + half);
    A acc = 0;
    for (int j = j0; j <= j1; ++j) {
        const A v = (A)x[(n * C + j) * HW + pix];
        acc += v * v;
    }
    const A sc = (A)k + (A)coeff * acc;
    scale = (T)sc;
    out = (T)((A)x[i] * pow(sc, -(A)beta));
"""

_LRN_BWD_SRC = r"""
    // dx_j = dout_j * scale_j^-beta
    //        - 2 coeff beta x_j * sum_{i in window(j)} dout_i out_i / scale_i
    // (docs/derivations.md#local-response-normalisation; window is symmetric).
    // The sum, the pow and the difference in A; dx rounded to T once.
    const ptrdiff_t HW = (ptrdiff_t)H * W;
    const ptrdiff_t pix = i % HW;
    const int c = (i / HW) % C;
    const ptrdiff_t n = i / (HW * C);
    const int j0 = max(0, c - half), j1 = min(C - 1, c + half);
    A acc = 0;
    for (int j = j0; j <= j1; ++j) {
        const ptrdiff_t o = (n * C + j) * HW + pix;
        acc += (A)dout[o] * (A)out[o] / (A)scale[o];
    }
    dx = (T)((A)dout[i] * pow((A)scale[i], -(A)beta) - (A)2 * (A)coeff * (A)beta * (A)x[i] * acc);
"""

_SGD_SRC = r"""
    // Sec. 5, one pass instead of four: v = m v - (wd eps) w - eps g; w = w + v.
    // Same operations in the same order as SGD.step on the CPU, each rounded
    // to T (compiled without FMA contraction), so the two agree bit for bit.
    T vv = m * v;
    vv = vv - wd_lr * w;
    vv = vv - lr * g[i];
    v = vv;
    w = w + vv;
"""

_DROPOUT_MASK_SRC = r"""
    // Element i of the stream splitmix64(seed): a counter-based generator, so
    // every thread draws its own number with no state shared between threads.
    unsigned long long z = seed + (unsigned long long)(i + 1) * 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    z = z ^ (z >> 31);
    const double u = (double)(z >> 11) * (1.0 / 9007199254740992.0);   // uniform in [0, 1), 53 bits
    mask = u >= p ? (T)1 : (T)0;                                        // keep with probability 1 - p
"""

_CROP_FLIP_SHIFT_SRC = r"""
    // out: (N, C, SH, SW); x: (N, C, H, W) uint8; mean: (C, H, W); top, left,
    // flip: (N,); shift: (N, C). out[n, c, r, j] = (x[n, c, h, w] - mean[c, h, w])
    // + shift[n, c], or shift[n, c] where (h, w) is zero padding;
    // h = top[n] + r - pad, w = left[n] + (flip[n] ? SW - 1 - j : j) - pad.
    const int j = i % SW, r = (i / SW) % SH, c = (i / ((ptrdiff_t)SW * SH)) % C;
    const int n = i / ((ptrdiff_t)SW * SH * C);
    const T s = shift[n * C + c];
    const int h = top[n] + r - pad, w = left[n] + (flip[n] ? SW - 1 - j : j) - pad;
    if (h < 0 || h >= H || w < 0 || w >= W) {
        out = s;
    } else {   // two roundings, as the NumPy and numba paths do
        const T d = (T)x[(((ptrdiff_t)n * C + c) * H + h) * W + w] - mean[((ptrdiff_t)c * H + h) * W + w];
        out = d + s;
    }
"""


_INTS = "int32 N, int32 C, int32 H, int32 W, int32 KH, int32 KW, int32 OH, int32 OW, int32 s, int32 p"

# name -> (input params, output params, CUDA body), in CuPy's ElementwiseKernel
# syntax. Plain strings, so tests/test_cuda_kernels_on_cpu.py can compile the
# same bodies as C++ on a machine without a GPU.
KERNEL_SPECS = {
    "im2col": (f"raw T x, {_INTS}", "T col", _IM2COL_SRC),
    "col2im": (f"raw T cols, {_INTS}", "T dx", _ACC + _COL2IM_SRC),
    "maxpool_fwd": ("raw T x, int32 H, int32 W, int32 OH, int32 OW, int32 z, int32 s",
                    "T out, int32 arg", _MAXPOOL_FWD_SRC),
    "maxpool_bwd": ("raw T dout, raw int32 arg, int32 H, int32 W, int32 OH, int32 OW, int32 z, int32 s",
                    "T dx", _ACC + _MAXPOOL_BWD_SRC),
    # LRN's constants arrive as float64 and are rounded to A, not to T: float16 would
    # round alpha = 1e-4 by up to 2^-11 (float32 and float64 get the same values as before)
    "lrn_fwd": ("raw T x, int32 C, int32 H, int32 W, int32 half, float64 k, float64 coeff, float64 beta",
                "T out, T scale", _ACC + _LRN_FWD_SRC),
    "lrn_bwd": ("raw T dout, raw T x, raw T scale, raw T out, int32 C, int32 H, int32 W, "
                "int32 half, float64 coeff, float64 beta", "T dx", _ACC + _LRN_BWD_SRC),
    "sgd_update": ("raw T g, T m, T wd_lr, T lr", "T w, T v", _SGD_SRC),
    "dropout_mask": ("uint64 seed, float64 p", "T mask", _DROPOUT_MASK_SRC),
    # the same stream, its seed read from a one-element device buffer (CUDA graphs: kernels/graphs.py)
    "dropout_mask_buf": ("raw uint64 seeds, float64 p", "T mask",
                         "const unsigned long long seed = seeds[0];\n" + _DROPOUT_MASK_SRC),
    "crop_flip_shift": ("raw uint8 x, raw T mean, raw int32 top, raw int32 left, raw int32 flip, raw T shift, "
                        "int32 C, int32 H, int32 W, int32 SH, int32 SW, int32 pad", "T out", _CROP_FLIP_SHIFT_SRC),
}

# No FMA contraction anywhere: a*b - c stays two rounded operations, as on the
# CPU. It keeps sgd_update bit-identical to SGD.step and costs nothing
# measurable in these memory-bound kernels.
_NVRTC_OPTIONS = ("--fmad=false",)


@functools.lru_cache(maxsize=None)
def _kernel(name):
    """Build (once) the ElementwiseKernel called ``name``; CuPy compiles it per dtype and device."""
    cp = _cupy()
    in_params, out_params, src = KERNEL_SPECS[name]
    return cp.ElementwiseKernel(in_params, out_params, src, f"minialex_{name}", options=_NVRTC_OPTIONS,
                                preamble=ACC_PREAMBLE)


def _on_device_of(a):
    """``with _on_device_of(a):`` makes ``a``'s GPU current (CuPy allocates and launches there)."""
    if type(a).__module__.startswith("cupy"):
        return a.device
    return contextlib.nullcontext()


def _contiguous(a):
    return _cupy().ascontiguousarray(a)


def _check_index_range(*shapes):
    """Refuse arrays of 2**31 elements or more: the kernels keep coordinates in 32-bit ints."""
    for shape in shapes:
        n = 1
        for d in shape:
            n *= int(d)
        if n >= 2 ** 31:
            raise ValueError(f"minialex._cuda: array of shape {tuple(shape)} has {n} elements; "
                             f"the kernels support fewer than 2**31, use a smaller batch")


# ----------------------------------------------------------------------------
# im2col / col2im
# ----------------------------------------------------------------------------
def im2col(x, KH, KW, stride=1, padding=0, out=None):
    """CUDA im2col, same layout as ``im2col_reference``.

    Shapes:  x: (N, C, H, W)  ->  cols: (C*KH*KW, N*OH*OW)
             rows ordered (c, kh, kw), columns ordered (n, oh, ow);
             padded positions read as 0.
    ``out``: an optional contiguous array of that shape to write into.
    """
    cp = _cupy()
    N, C, H, W = x.shape
    OH = conv_output_size(H, KH, stride, padding)
    OW = conv_output_size(W, KW, stride, padding)
    _check_index_range(x.shape, (C * KH * KW, N * OH * OW))
    with _on_device_of(x):
        x = _contiguous(x)
        cols = cp.empty((C * KH * KW, N * OH * OW), dtype=x.dtype) if out is None else out
        _kernel("im2col")(x, N, C, H, W, KH, KW, OH, OW, stride, padding, cols)
    return cols


def col2im(cols, x_shape, KH, KW, stride=1, padding=0, out=None):
    """CUDA col2im, the adjoint of ``im2col``: overlapping windows **add**.

    Shapes:  cols: (C*KH*KW, N*OH*OW)  ->  dx: (N, C, H, W)  (= x_shape)
    ``out``: an optional contiguous array of shape x_shape to write into.
    """
    cp = _cupy()
    N, C, H, W = x_shape
    OH = conv_output_size(H, KH, stride, padding)
    OW = conv_output_size(W, KW, stride, padding)
    if tuple(cols.shape) != (C * KH * KW, N * OH * OW):
        raise ValueError(f"col2im: cols has shape {tuple(cols.shape)}, expected "
                         f"{(C * KH * KW, N * OH * OW)} for x_shape={tuple(x_shape)}")
    _check_index_range(x_shape, cols.shape)
    with _on_device_of(cols):
        cols = _contiguous(cols)
        dx = cp.empty((N, C, H, W), dtype=cols.dtype) if out is None else out
        _kernel("col2im")(cols, N, C, H, W, KH, KW, OH, OW, stride, padding, dx)
    return dx


# ----------------------------------------------------------------------------
# Overlapping max pooling (Sec. 3.4)
# ----------------------------------------------------------------------------
def maxpool_forward(x, z, s):
    """Max over z x z windows every s pixels (no padding).

    Shapes:  x: (N, C, H, W)  ->  out: (N, C, OH, OW),  arg: (N, C, OH, OW) int32
             OH = (H - z) // s + 1, likewise OW.
    ``arg`` is the position ``kh*z + kw`` of the maximum inside its window;
    ties go to the first maximum in row-major window order, as in
    ``MaxPool2D.forward`` (``argmax`` over the im2col rows). NaN inputs are
    not propagated (a NaN never compares greater); the loss catches them.
    """
    cp = _cupy()
    N, C, H, W = x.shape
    OH, OW = conv_output_size(H, z, s, 0), conv_output_size(W, z, s, 0)
    _check_index_range(x.shape)
    with _on_device_of(x):
        x = _contiguous(x)
        out = cp.empty((N, C, OH, OW), dtype=x.dtype)
        arg = cp.empty((N, C, OH, OW), dtype=cp.int32)
        _kernel("maxpool_fwd")(x, H, W, OH, OW, z, s, out, arg)
    return out, arg


def maxpool_backward(dout, arg, x_shape, z, s):
    """Route each output gradient to its window's arg-max; overlaps **add**.

    Shapes:  dout, arg: (N, C, OH, OW)  ->  dx: (N, C, H, W)  (= x_shape)
    Equals ``MaxPool2D.backward``: col2im of a (z*z, N*C*OH*OW) matrix that
    holds dout at row ``arg`` of each column.
    """
    cp = _cupy()
    N, C, H, W = x_shape
    OH, OW = dout.shape[2], dout.shape[3]
    if tuple(arg.shape) != tuple(dout.shape):
        raise ValueError(f"maxpool_backward: arg has shape {tuple(arg.shape)}, dout {tuple(dout.shape)}; "
                         "expected equal")
    with _on_device_of(dout):
        dout = _contiguous(dout)
        arg = cp.ascontiguousarray(arg, dtype=cp.int32)
        dx = cp.empty((N, C, H, W), dtype=dout.dtype)
        _kernel("maxpool_bwd")(dout, arg, H, W, OH, OW, z, s, dx)
    return dx


# ----------------------------------------------------------------------------
# Local response normalisation (Sec. 3.3)
# ----------------------------------------------------------------------------
def lrn_forward(x, size, k, coeff, beta):
    """b_i = a_i / (k + coeff * sum_{j=max(0,i-n//2)}^{min(C-1,i+n//2)} a_j^2) ** beta.

    Shapes:  x: (N, C, H, W)  ->  out, scale: (N, C, H, W)
    ``size`` is n; the window holds 2*(n//2)+1 maps, clipped at the first and
    last channel. ``coeff`` is alpha (``alpha_convention="paper"``) or
    alpha/n (``"pytorch"``): pass ``LocalResponseNorm.coeff``. ``scale`` is
    the bracket, kept for the backward pass, exactly as the readable layer.
    For float16/bfloat16 x the squares, their window sum, the bracket and its
    power are computed in float32 and ``out``/``scale`` rounded once to x's
    dtype; float32/float64 compute in their own type, as before.
    """
    cp = _cupy()
    N, C, H, W = x.shape
    _check_index_range(x.shape)
    with _on_device_of(x):
        x = _contiguous(x)
        out = cp.empty_like(x)
        scale = cp.empty_like(x)
        _kernel("lrn_fwd")(x, C, H, W, size // 2, k, coeff, beta, out, scale)
    return out, scale


def lrn_backward(dout, x, scale, out, size, k, coeff, beta):
    """Gradient of ``lrn_forward`` w.r.t. x.

        dx_j = dout_j * scale_j^-beta
               - 2 coeff beta x_j * sum_{i in window(j)} dout_i out_i / scale_i

    Shapes:  dout, x, scale, out: (N, C, H, W)  ->  dx: (N, C, H, W)
    Same formula as ``LocalResponseNorm.backward``; ``dout`` is not modified.
    ``k`` is unused (it is inside ``scale``); the signature is the numba twin's.
    For a 16-bit dtype the window sum, the power and the difference run in
    float32 and ``dx`` is rounded once.
    """
    cp = _cupy()
    N, C, H, W = x.shape
    with _on_device_of(x):
        dout, x, scale, out = (_contiguous(a) for a in (dout, x, scale, out))
        dx = cp.empty_like(x)
        _kernel("lrn_bwd")(dout, x, scale, out, C, H, W, size // 2, coeff, beta, dx)
    return dx


# ----------------------------------------------------------------------------
# SGD (Sec. 5) and dropout masks (Sec. 4.2)
# ----------------------------------------------------------------------------
def sgd_update(w, v, g, momentum, wd_lr, lr):
    """In place: ``v = momentum*v - wd_lr*w - lr*g; w = w + v`` in one kernel.

    Shapes:  w, v, g: the parameter's shape, all on one device, same dtype.
    ``wd_lr`` is weight_decay * lr (0 for an undecayed bias). Replaces the
    four whole-array operations of ``SGD.step`` (and their temporaries) by one
    pass over memory, with the same roundings.
    """
    cp = _cupy()
    if not (w.shape == v.shape == g.shape):
        raise ValueError(f"sgd_update: shapes differ: w {tuple(w.shape)}, v {tuple(v.shape)}, "
                         f"g {tuple(g.shape)}; expected equal")
    if not (w.flags.c_contiguous and v.flags.c_contiguous):
        raise ValueError("sgd_update: w and v must be C-contiguous (they are updated in place)")
    _check_index_range(w.shape)
    with _on_device_of(w):
        g = cp.ascontiguousarray(g, dtype=w.dtype)
        t = w.dtype.type
        _kernel("sgd_update")(g, t(momentum), t(wd_lr), t(lr), w, v)
    return w


def dropout_mask(shape, p, seed, dtype, device=None):
    """0/1 mask of ``shape`` drawn on the GPU: element i is kept when u_i >= p,
    u_i the i-th uniform of the splitmix64 stream that starts at ``seed``.

    Shapes:  -> mask: ``shape``, dtype ``dtype``, on the current device (or ``device``)
    ``Dropout`` draws ``seed`` from its host generator once per mask, so the
    masks are reproducible from the layer's seed and a checkpoint's rng state,
    while no random numbers are made on the host or copied to the GPU.
    ``seed`` may also be a (1,) uint64 device array, read by the kernel when it
    runs: a CUDA graph replays it with the seed copied in before each replay.
    """
    cp = _cupy()
    ctx = cp.cuda.Device(device) if device is not None else contextlib.nullcontext()
    with ctx:
        mask = cp.empty(shape, dtype=dtype)
        _check_index_range(mask.shape)
        if hasattr(seed, "shape"):                            # a device buffer, not a number
            _kernel("dropout_mask_buf")(seed, float(p), mask)
        else:
            _kernel("dropout_mask")(_uint64(seed), float(p), mask)
    return mask


def _uint64(seed):
    import numpy as np

    return np.uint64(int(seed) % 2 ** 64)


# ----------------------------------------------------------------------------
# Training-time augmentation on the GPU (Sec. 2, 4.1)
# ----------------------------------------------------------------------------
def crop_flip_shift(x, mean, top, left, flip, shift, pad, out_hw):
    """Mean subtraction, zero padding, crop, reflection and PCA colour shift in one pass.

    Shapes:  x: (N, C, H, W) uint8 on the GPU;  mean: (C, H, W);  top, left,
             flip: (N,);  shift: (N, C)  ->  out: (N, C, SH, SW) float32,
             (SH, SW) = out_hw. ``top``/``left`` are offsets in the image padded
             by ``pad``. The draws are made on the host by ``TrainTransform``;
             the result equals its CPU kernel's bit for bit, so the loader
             can send uint8 pixels (a quarter of the bytes) and augment here.
    """
    import numpy as np

    cp = _cupy()
    N, C, H, W = x.shape
    SH, SW = out_hw
    _check_index_range(x.shape, (N, C, SH, SW))
    with _on_device_of(x):
        x = cp.ascontiguousarray(x)
        mean = cp.ascontiguousarray(cp.asarray(mean, dtype=cp.float32))
        if tuple(mean.shape) != (C, H, W):
            raise ValueError(f"crop_flip_shift: mean has shape {tuple(mean.shape)}, expected {(C, H, W)}")
        ints = [cp.asarray(np.ascontiguousarray(a, dtype=np.int32)) for a in (top, left, flip)]   # (N,) each
        shift = cp.asarray(np.ascontiguousarray(shift, dtype=np.float32))                        # (N, C)
        out = cp.empty((N, C, SH, SW), dtype=cp.float32)
        _kernel("crop_flip_shift")(x, mean, *ints, shift, C, H, W, SH, SW, pad, out)
    return out
