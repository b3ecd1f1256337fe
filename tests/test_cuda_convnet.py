"""minialex.cuda_convnet: the CIFAR-10 nets of Sec. 3.1 and 3.3 have the shapes their docstring states."""
from __future__ import annotations

import numpy as np
import pytest

from minialex.cuda_convnet import build


def _shapes(model, x):
    out = {}
    for name, layer in zip(model.names, model.layers):
        x = layer.forward(x, train=False)
        out[name] = x.shape[1:]
    return out


def test_conv_local_shapes_follow_the_docstring():
    model = build("conv-local", seed=0)
    s = _shapes(model, np.zeros((2, 3, 24, 24), np.float32))
    assert s["conv1"] == (64, 24, 24) and s["pool1"] == (64, 11, 11) and s["pool2"] == (64, 5, 5)
    assert s["local3"] == (32, 5, 5) and s["local4"] == (32, 5, 5) and s["fc10"] == (10,)
    assert "lrn1" in model.names and "lrn1" not in build("conv-local", lrn=False).names
    assert dict(model.named_params())["local3.b"].shape == (32, 5, 5)           # one bias per output unit


def test_cover_pools_gives_cuda_convnets_sizes_and_survives_a_rebuild():
    from minialex.cuda_convnet import rebuild

    model = build("conv-local", seed=0, cover_pools=True)
    s = _shapes(model, np.zeros((2, 3, 24, 24), np.float32))
    assert s["pool1"] == (64, 12, 12) and s["pool2"] == (64, 6, 6)           # layers-conv-local-11pct's sizes
    assert s["local4"] == (32, 6, 6) and dict(model.named_params())["fc10.w"].shape == (32 * 6 * 6, 10)
    assert dict(model.named_params())["local3.b"].shape == (32, 6, 6)
    assert _shapes(build("fig1", cover_pools=True), np.zeros((1, 3, 32, 32), np.float32))["pool3"] == (64, 4, 4)
    again = rebuild(model.build_record())
    assert model.build_record()["cover_pools"] is True and again.build_record() == model.build_record()
    assert "cover_pools" not in build("conv-local").spec                   # older records stay as they were


def test_fig1_shapes_follow_the_docstring():
    s = _shapes(build("fig1", activation="tanh"), np.zeros((2, 3, 32, 32), np.float32))
    assert s["pool1"] == (32, 15, 15) and s["pool2"] == (32, 7, 7) and s["pool3"] == (64, 3, 3)
    assert s["fc10"] == (10,)


@pytest.mark.parametrize("name", ["fig1", "conv-local"])
def test_conv2_bias_sets_conv2_biases_only(name):
    plain = dict(build(name, seed=3).named_params())
    ones = dict(build(name, seed=3, conv2_bias=1.0).named_params())
    assert np.all(ones["conv2.b"] == 1) and np.all(plain["conv2.b"] == 0)
    for k in plain:
        if k != "conv2.b":
            np.testing.assert_array_equal(plain[k], ones[k])          # same weights from the same seed
    assert build(name, conv2_bias=1.0).spec["conv2_bias"] == 1.0


def test_unknown_net_or_activation_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown net 'vgg'"):
        build("vgg")
    with pytest.raises(ValueError, match="activation must be relu or tanh, got 'gelu'"):
        build("fig1", activation="gelu")


def test_build_record_rebuilds_the_same_net_and_a_bad_record_is_a_clear_error():
    from minialex.cuda_convnet import rebuild

    net = build("fig1", activation="tanh", conv2_bias=1.0, dtype="float64")
    again = rebuild(net.build_record())
    assert again.names == net.names and again.build_record() == net.build_record()
    assert dict(again.named_params())["conv2.b"].dtype == np.float64
    np.testing.assert_array_equal(dict(again.named_params())["conv2.b"], 1.0)
    with pytest.raises(ValueError, match="not a cuda_convnet record"):
        rebuild({"builder": "alexnet", "name": "fig1"})
    with pytest.raises(ValueError, match="does not fit build"):
        rebuild({"builder": "cuda_convnet", "name": "fig1", "widths": 3})
