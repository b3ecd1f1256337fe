"""Conv2D's backward cache: x, not the im2col columns (issue 20, "lean memory").

A CPU proxy for the GPU's peak memory: on CuPy, Conv2D runs the readable
forward/backward (im2col kernel + cuBLAS), so what the readable path keeps
between forward and backward is what the GPU holds. Counted here on NumPy
with the readable kernels, for the paper net's layer shapes (batch 2).
The GPU figure itself (peak bytes against PyTorch's) is measured by
benchmarks/gpu.py on a GPU only.
"""
import numpy as np

from minialex.im2col import conv_output_size
from minialex.layers import Conv2D
from minialex.model import AlexNet, AlexNetConfig
from minialex.precision import use_readable_kernels


def _bytes(obj, seen):
    """Bytes of the distinct arrays in a cache (tuples nested), each buffer counted once."""
    if isinstance(obj, np.ndarray):
        base = obj if obj.base is None else obj.base
        if id(base) in seen:
            return 0
        seen.add(id(base))
        return base.nbytes
    if isinstance(obj, (tuple, list)):
        return sum(_bytes(o, seen) for o in obj)
    return 0


def test_paper_net_convs_keep_their_input_not_the_columns():
    model = AlexNet(AlexNetConfig.paper())
    use_readable_kernels(model)                      # the path CuPy runs
    x = np.random.default_rng(0).standard_normal((2, *model.input_shape)).astype(np.float32)
    model.forward(x, train=True)
    kept = cols = 0
    for layer in model.layers:
        if not isinstance(layer, Conv2D):
            continue
        x_shape, x_kept = layer.cache
        N, C, H, W = x_shape
        K, s, p = layer.kernel_size, layer.stride, layer.padding
        OH, OW = conv_output_size(H, K, s, p), conv_output_size(W, K, s, p)
        held = _bytes(layer.cache, set())
        assert held == N * C * H * W * 4                  # x itself, nothing more
        kept += held
        cols += C * K * K * N * OH * OW * 4             # what keeping the columns would hold
    # the paper net's five convs: the columns would hold over 10x their inputs (K*K/s^2 each)
    assert cols > 10 * kept, (cols, kept)


def test_backward_rebuilds_the_columns_and_frees_the_cache():
    rng = np.random.default_rng(1)
    conv = Conv2D(4, 6, 3, stride=2, padding=1, groups=2, rng=rng, dtype=np.float64)   # the readable layer
    x = rng.standard_normal((2, 4, 7, 7))
    out = conv.forward(x)
    dout = rng.standard_normal(out.shape)
    dx = conv.backward(dout)
    assert conv.cache is None
    # naive loops: dw[f, c, i, j] = sum over n, oh, ow of dout * x_pad at the window's tap
    xp_ = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    dw = np.zeros_like(conv.params["w"])
    dxp = np.zeros_like(xp_)
    w = conv.params["w"]
    for f in range(6):
        g = f // 3
        for c in range(2):
            for i in range(3):
                for j in range(3):
                    for oh in range(out.shape[2]):
                        for ow in range(out.shape[3]):
                            h, v = oh * 2 + i, ow * 2 + j
                            dw[f, c, i, j] += (dout[:, f, oh, ow] * xp_[:, g * 2 + c, h, v]).sum()
                            dxp[:, g * 2 + c, h, v] += dout[:, f, oh, ow] * w[f, c, i, j]
    assert np.allclose(conv.grads["w"], dw, rtol=1e-12, atol=1e-12)
    assert np.allclose(dx, dxp[:, :, 1:-1, 1:-1], rtol=1e-12, atol=1e-12)
