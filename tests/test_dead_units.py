"""dead_fraction: a unit is dead when it is <= 0 on every image, counted per layer and across batches."""
from __future__ import annotations

import numpy as np
import pytest

from minialex.cuda_convnet import build
from minialex.dead_units import dead_fraction
from minialex.layers import Linear, ReLU, Sequential


def _net():
    fc = Linear(3, 4, rng=np.random.default_rng(0))
    fc.params["w"][...] = 0
    fc.params["b"][...] = [-1.0, -1.0, 0.0, 5.0]
    fc.params["w"][0, 0] = 1.0          # unit 0 fires only when x[0] > 1
    return Sequential(("fc", fc), ("relu", ReLU()))


def test_a_unit_that_fires_on_one_image_of_a_later_batch_is_alive():
    assert _net().params["fc.w"].shape == (3, 4)
    x = np.zeros((7, 3), np.float64)
    assert dead_fraction(_net(), x) == {"relu": 0.75}                   # units 0, 1, 2 never > 0; 3 always
    x[6, 0] = 2.0                                                     # the last image, alone in the last batch
    assert dead_fraction(_net(), x, batch_size=3) == {"relu": 0.5}    # units 1, 2 dead


def test_matches_a_naive_count_on_the_conv_local_net():
    model = build("conv-local", seed=1, conv2_bias=0.0)
    b = model.layers[model.names.index("conv2")].params["b"]
    b[:40] = -50.0                                                    # 40 of conv2's 64 maps pushed below zero
    x = np.random.default_rng(2).standard_normal((20, 3, 24, 24)).astype(np.float32)
    got = dead_fraction(model, x, batch_size=7)
    assert list(got) == ["relu1", "relu2", "relu3", "relu4"]
    h, outs = x, {}
    for name, layer in zip(model.names, model.layers):                 # naive: whole batch, then unit by unit
        h = layer.forward(h, train=False)
        outs[name] = h
    for name, out in ((n, outs[n]) for n in got):
        C, H, W = out.shape[1:]
        dead = sum(all(out[i, c, y, x_] <= 0 for i in range(len(out)))
                   for c in range(C) for y in range(H) for x_ in range(W))
        assert got[name] == pytest.approx(dead / (C * H * W))
    assert got["relu2"] >= 40 / 64


def test_bad_names_and_empty_input_are_clear_errors():
    with pytest.raises(ValueError, match="no layer named 'relu9'"):
        dead_fraction(_net(), np.zeros((2, 3)), layers=["relu9"])
    with pytest.raises(ValueError, match="holds no images"):
        dead_fraction(_net(), np.zeros((0, 3)))
