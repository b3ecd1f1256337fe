"""float32 stays float32; bad input raises ValueError naming the value and the expectation."""
import numpy as np
import pytest

from minialex.layers import (Conv2D, Dropout, Flatten, Linear, LocalResponseNorm, MaxPool2D, ReLU,
                             SoftmaxCrossEntropy, Tanh)


def _layers():
    rng = np.random.default_rng(0)
    return [
        (Conv2D(4, 6, 3, padding=1, groups=2, rng=rng), (2, 4, 8, 8)),
        (ReLU(), (2, 4, 8, 8)),
        (Tanh(), (2, 4, 8, 8)),
        (LocalResponseNorm(), (2, 4, 8, 8)),
        (MaxPool2D(3, 2), (2, 4, 8, 8)),
        (Dropout(0.5, rng=rng), (2, 10)),
        (Dropout(0.5, mode="inverted", rng=rng), (2, 10)),
        (Linear(10, 3, rng=rng), (2, 10)),
        (Flatten(), (2, 4, 8, 8)),
    ]


@pytest.mark.parametrize("layer,shape", _layers(), ids=lambda v: type(v).__name__ if not isinstance(v, tuple) else "")
def test_float32_stays_float32(layer, shape):
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    out = layer.forward(x, train=True)
    assert out.dtype == np.float32
    dx = layer.backward(np.ones_like(out))
    assert dx.dtype == np.float32
    for k, g in layer.grads.items():
        assert g.dtype == np.float32, k
    assert layer.forward(x, train=False).dtype == np.float32


def test_loss_float32():
    loss = SoftmaxCrossEntropy()
    x = np.random.default_rng(2).standard_normal((4, 3)).astype(np.float32)
    assert loss.forward(x, np.array([0, 1, 2, 0])).dtype == np.float32
    assert loss.backward().dtype == np.float32


def test_backward_does_not_modify_dout():
    rng = np.random.default_rng(3)
    for layer, shape in _layers():
        x = rng.standard_normal(shape).astype(np.float32)
        out = layer.forward(x)
        dout = rng.standard_normal(out.shape).astype(np.float32)
        keep = dout.copy()
        layer.backward(dout)
        np.testing.assert_array_equal(dout, keep)


def test_wrong_ndim():
    with pytest.raises(ValueError, match=r"4-D.*3-D"):
        Conv2D(3, 4, 3).forward(np.zeros((3, 8, 8), np.float32))
    with pytest.raises(ValueError, match=r"4-D.*2-D"):
        MaxPool2D().forward(np.zeros((8, 8), np.float32))
    with pytest.raises(ValueError, match=r"4-D"):
        LocalResponseNorm().forward(np.zeros((2, 8), np.float32))
    with pytest.raises(ValueError, match=r"2-D.*4-D"):
        Linear(8, 2).forward(np.zeros((1, 2, 2, 2), np.float32))


def test_channel_and_feature_mismatch():
    with pytest.raises(ValueError, match=r"5 channels.*in_channels=3"):
        Conv2D(3, 4, 3).forward(np.zeros((1, 5, 8, 8), np.float32))
    with pytest.raises(ValueError, match=r"7 features.*in_features=8"):
        Linear(8, 2).forward(np.zeros((2, 7), np.float32))


def test_groups_must_divide_channels():
    with pytest.raises(ValueError, match=r"groups=2.*in_channels=3"):
        Conv2D(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match=r"groups=4.*out_channels=6"):
        Conv2D(8, 6, 3, groups=4)


def test_kernel_larger_than_padded_input():
    with pytest.raises(ValueError, match=r"kernel_size=11.*8x8"):
        Conv2D(3, 4, 11, padding=1).forward(np.zeros((1, 3, 6, 6), np.float32))
    with pytest.raises(ValueError, match=r"kernel_size=3.*2x2"):
        MaxPool2D(3, 2).forward(np.zeros((1, 1, 2, 2), np.float32))


def test_bad_constructor_values():
    with pytest.raises(ValueError, match=r"p must be in \[0, 1\), got 1.5"):
        Dropout(1.5)
    with pytest.raises(ValueError, match="mode"):
        Dropout(0.5, mode="sometimes")
    with pytest.raises(ValueError, match="alpha_convention"):
        LocalResponseNorm(alpha_convention="caffe2")
    with pytest.raises(ValueError, match="kernel_size must be a positive integer, got 0"):
        MaxPool2D(0, 2)


def test_labels_out_of_range_and_shape():
    loss = SoftmaxCrossEntropy()
    x = np.zeros((3, 4), np.float32)
    with pytest.raises(ValueError, match=r"label 4 out of range.*0 <= label < 4"):
        loss.forward(x, np.array([0, 1, 4]))
    with pytest.raises(ValueError, match=r"label -1 out of range"):
        loss.forward(x, np.array([0, -1, 2]))
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        loss.forward(x, np.array([0, 1]))                      # no silent broadcast
    with pytest.raises(ValueError, match="integers"):
        loss.forward(x, np.array([0.0, 1.0, 2.0]))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_reaching_the_loss(bad):
    x = np.zeros((2, 3), np.float32)
    x[1, 2] = bad
    with pytest.raises(ValueError, match="non-finite"):
        SoftmaxCrossEntropy().forward(x, np.array([0, 1]))


def test_integer_input_rejected():
    with pytest.raises(ValueError, match="floating-point"):
        Conv2D(3, 4, 3).forward(np.zeros((1, 3, 8, 8), np.int64))
