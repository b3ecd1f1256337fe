"""Two-tower placement (Sec. 3.2) on the CPU: NumPy, device ids are labels.

The split net must give the unsplit net's numbers (float64, relative error
below 1e-10: only the summation order of conv3/fc6/fc7's input gradient
differs) and count the bytes that cross between the towers, the same for
devices (0, 0) and (0, 1). The expected byte counts are derived here from the
layer shapes, independently of towers.py.
"""
import numpy as np
import pytest

from minialex import backend
from minialex.gradcheck import rel_error
from minialex.layers import SoftmaxCrossEntropy
from minialex.model import AlexNet, AlexNetConfig
from minialex.towers import TwoTowerAlexNet, on_device_of, parse_gpus

TOL = 1e-10


def batch(model, N, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N,) + model.input_shape).astype(model.config.dtype)
    y = rng.integers(0, model.config.num_classes, N)
    return x, y


def step(net, x, y, train=True):
    """forward + loss + backward; returns (logits, loss, dx) as NumPy."""
    loss = SoftmaxCrossEntropy()
    logits = net.forward(x, train=train)
    value = loss(logits, y)
    dx = net.backward(loss.backward())
    return backend.to_numpy(logits), float(value), backend.to_numpy(dx)


CONFIGS = {
    "tiny": AlexNetConfig.tiny(),
    "tiny-no-lrn-no-conv3": AlexNetConfig.tiny(lrn=False, drop_conv=(3,)),
    "tiny-tanh-inverted-dropout": AlexNetConfig.tiny(activation="tanh", dropout_mode="inverted"),
    "cifar": AlexNetConfig.cifar(dtype="float64"),
    "tiny-lrn-per-tower": AlexNetConfig.tiny(lrn_per_tower=True),
}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_split_on_device_0_0_matches_unsplit(name):
    model = AlexNet(CONFIGS[name])
    net = TwoTowerAlexNet(model, devices=(0, 0))
    x, y = batch(model, 4)
    state = model.rng_state()                    # the split net draws dropout from model's rngs
    ref = step(model, x, y)
    model.set_rng_state(state)
    got = step(net, x, y)
    assert rel_error(ref[0], got[0]) < TOL
    assert abs(ref[1] - got[1]) < TOL * max(1.0, abs(ref[1]))
    assert rel_error(ref[2], got[2]) < TOL
    grads, split = dict(model.named_grads()), net.unsplit_grads()
    assert list(split) == list(grads)            # the unsplit names, in the unsplit order
    for key in grads:
        assert split[key].shape == grads[key].shape, key
        assert rel_error(grads[key], split[key]) < TOL, key


def test_dropout_really_drops_and_eval_mode_matches():
    model = AlexNet(AlexNetConfig.tiny())
    net = TwoTowerAlexNet(model, devices=(0, 1))
    x, _ = batch(model, 3)
    np.testing.assert_allclose(net.forward(x, train=False), model.forward(x, train=False), rtol=1e-12)
    a = net.forward(x, train=True)
    b = net.forward(x, train=True)
    assert not np.allclose(a, b), "fresh dropout masks each training step"


def expected_bytes(model, N):
    """Tower-to-tower traffic of one step, from the layer shapes (Sec. 3.2).

    Every connection moves the same amount forward (activations) and backward
    (their gradients): conv3 and the hidden FC layers exchange each tower's
    half of their input both ways, fc8 takes tower 1's half of fc7, LRN
    swaps size//2 boundary maps each way.
    """
    cfg, item = model.config, np.dtype(model.config.dtype).itemsize
    shapes = {name: shape for name, _, shape in model.layer_shapes()}
    names = model.names
    out = {"lrn": 0, "conv": 0, "fc": 0, "head": 0}
    prev = None
    for name in names:
        if name == "conv3":
            C, H, W = shapes[prev]
            out["conv"] += 2 * 2 * N * (C // 2) * H * W * item      # both ways, fwd + bwd
        if name.startswith("lrn"):
            C, H, W = shapes[name]
            out["lrn"] += 2 * 2 * N * (cfg.lrn_size // 2) * H * W * item
        if name in ("fc6", "fc7"):
            (D,) = shapes[prev] if len(shapes[prev]) == 1 else (int(np.prod(shapes[prev])),)
            out["fc"] += 2 * 2 * N * (D // 2) * item
        if name == f"fc{6 + len(cfg.fc_sizes)}":
            (D,) = shapes[prev]
            out["head"] += 2 * N * (D // 2) * item                 # tower 1 -> devices[0], fwd + bwd
        prev = name
    return out


@pytest.mark.parametrize("name", ["tiny", "cifar"])
def test_bytes_0_0_equal_0_1_and_match_the_layer_shapes(name):
    model = AlexNet(CONFIGS[name])
    x, y = batch(model, 4)
    counts = []
    for devices in [(0, 0), (0, 1)]:
        net = TwoTowerAlexNet(model, devices=devices)
        step(net, x, y)
        counts.append(dict(net.bytes_per_step()))
    assert counts[0] == counts[1]
    want = expected_bytes(model, 4)
    for key, value in want.items():
        assert counts[0][key] == value, (key, counts[0][key], value)
    assert counts[0]["between_towers"] == sum(want.values())
    assert counts[0]["input"] == 3 * x.nbytes          # x to both towers; tower 1's dx back
    assert "between_towers" in net.report() and "MiB" in net.report()


def test_grouped_convs_stay_local_and_conv3_fc_connect():
    net = TwoTowerAlexNet(AlexNet(AlexNetConfig.tiny()))
    kinds = {st.name: type(st).__name__ for st in net.stages}     # each stage's class owns its forward/backward
    assert [kinds[n] for n in ("conv1", "conv2", "conv3", "conv4", "conv5")] == \
        ["_PerTower", "_PerTower", "_Connect", "_PerTower", "_PerTower"]
    assert [kinds[n] for n in ("fc6", "fc7", "fc8")] == ["_Connect", "_Connect", "_Head"]
    conv2 = [st for st in net.stages if st.name == "conv2"][0]
    assert conv2.layers[0].params["w"].shape == (3, 3, 3, 3)   # half the kernels, own half of the maps


def reference_sgd(params, grads, velocity, lr=0.01, momentum=0.9, wd=5e-4):
    """Sec. 5: v <- 0.9 v - 0.0005 lr w - lr g; w <- w + v (in place)."""
    for k, w in params:
        v = velocity.setdefault(k, np.zeros_like(w))
        v *= momentum
        v -= wd * lr * w + lr * grads[k]
        w += v


def test_sgd_on_tower_names_equals_sgd_on_unsplit_names():
    model = AlexNet(AlexNetConfig.tiny(dropout=0.0))
    net = TwoTowerAlexNet(model, devices=(0, 1))
    x, y = batch(model, 4)
    vm, vn = {}, {}
    for _ in range(2):
        step(model, x, y)
        reference_sgd(list(model.named_params()), dict(model.named_grads()), vm)
        step(net, x, y)
        reference_sgd(list(net.named_params()), dict(net.named_grads()), vn)
    split = net.unsplit_params()
    for key, w in model.named_params():
        assert rel_error(w, split[key]) < TOL, key
    assert {net.param_device(k) for k, _ in net.named_params()} == {0, 1}
    assert net.param_device("conv1.w@t1") == 1 and net.param_device("fc8.w") == 0


def test_store_into_and_load_from_round_trip():
    model = AlexNet(AlexNetConfig.tiny())
    net = TwoTowerAlexNet(model)
    for _, w in net.named_params():
        w += 1.0                                      # change the towers only
    other = AlexNet(AlexNetConfig.tiny(seed=5))
    net.store_into(other)
    for key, w in other.named_params():
        np.testing.assert_array_equal(w, dict(model.named_params())[key] + 1.0)
    fresh = TwoTowerAlexNet(AlexNet(AlexNetConfig.tiny(seed=7)))
    fresh.load_from(other)
    for key, w in fresh.unsplit_params().items():
        np.testing.assert_array_equal(w, dict(other.named_params())[key])


def test_split_params_are_copies_not_views():
    model = AlexNet(AlexNetConfig.tiny())
    before = model["conv1"].params["w"].copy()
    net = TwoTowerAlexNet(model)
    for _, w in net.named_params():
        w *= 0
    np.testing.assert_array_equal(model["conv1"].params["w"], before)


def test_needs_two_towers():
    with pytest.raises(ValueError, match="towers=2.*towers=1"):
        TwoTowerAlexNet(AlexNet(AlexNetConfig.tiny(towers=1)))
    with pytest.raises(ValueError, match="two ids >= 0"):
        TwoTowerAlexNet(AlexNet(AlexNetConfig.tiny()), devices=(0, -1))


def test_on_device_of_is_a_no_op_for_numpy():
    a = np.ones(3)
    with on_device_of(a):
        a += 1
    np.testing.assert_array_equal(a, 2)


# ----------------------------------------------------------------------------
# --gpus
# ----------------------------------------------------------------------------
@pytest.mark.parametrize("text,want", [(None, None), ("0", (0, 0)), ("0,1", (0, 1)), (" 1 , 0 ", (1, 0)),
                                       ("1,1", (1, 1))])
def test_parse_gpus_valid(text, want):
    assert parse_gpus(text, "cupy", device_count=2) == want


@pytest.mark.parametrize("text,match", [
    ("a", "integer device ids"),
    ("0,1,2", "one or two comma-separated"),
    ("0,", "one or two comma-separated"),
    ("-1", ">= 0"),
    ("2", "CUDA device 2, but only 2 device"),
    ("0,3", "CUDA device 3, but only 2 device"),
])
def test_parse_gpus_errors_name_the_bad_value(text, match):
    with pytest.raises(ValueError, match=match):
        parse_gpus(text, "cupy", device_count=2)


def test_parse_gpus_needs_cupy_backend():
    with pytest.raises(ValueError, match="needs --backend cupy, got --backend 'numpy'"):
        parse_gpus("0", "numpy", device_count=2)


def test_parse_gpus_without_cupy_says_what_is_missing():
    if backend.cupy_available():
        pytest.skip("CuPy and a CUDA device are present here")
    with pytest.raises(RuntimeError, match="CuPy is not installed|no CUDA device"):
        parse_gpus("0", "cupy")


def test_training_loop_interface_delegates_to_the_unsplit_model():
    model = AlexNet(AlexNetConfig.tiny())
    net = TwoTowerAlexNet(model, devices=(0, 1))
    assert net.config is model.config and net.input_shape == model.input_shape
    assert net.num_params() == model.num_params()
    x, _ = batch(model, 2)
    np.testing.assert_allclose(net.predict(x), model.predict(x), rtol=1e-12)
    assert all(layer.cache is None for st in net.stages if hasattr(st, "layers") for layer in st.layers)
    state = net.rng_state()
    a = net.forward(x)
    net.set_rng_state(state)
    np.testing.assert_array_equal(net.forward(x), a)     # same dropout masks again


@pytest.mark.parametrize("name", ["tiny", "tiny-no-lrn-no-conv3", "cifar", "tiny-lrn-per-tower"])
def test_transfer_plan_predicts_the_measured_bytes(name):
    from minialex.towers import transfer_plan

    model = AlexNet(CONFIGS[name])
    net = TwoTowerAlexNet(model, devices=(0, 1))
    x, y = batch(model, 3)
    step(net, x, y)
    assert transfer_plan(model, 3) == net.bytes_per_step()


def test_project_sgd_and_checkpoints_drive_the_tower_net(tmp_path):
    """minialex.optim.SGD and minialex.checkpoint take the split net as they take AlexNet."""
    from minialex.checkpoint import load_checkpoint, save_checkpoint
    from minialex.optim import SGD

    model = AlexNet(AlexNetConfig.tiny())
    net = TwoTowerAlexNet(model, devices=(0, 1))
    ref = AlexNet(AlexNetConfig.tiny())
    opt, opt_ref = SGD(net), SGD(ref)
    x, y = batch(model, 4)
    for _ in range(2):                               # same seed: both draw the same dropout masks
        step(ref, x, y)
        opt_ref.step()
        step(net, x, y)
        opt.step()
    split = net.unsplit_params()
    for key, w in ref.named_params():
        assert rel_error(w, split[key]) < TOL, key
    path = save_checkpoint(tmp_path / "ckpt.npz", net, opt)
    again = TwoTowerAlexNet(AlexNet(AlexNetConfig.tiny()), devices=(0, 1))
    opt2 = SGD(again)
    load_checkpoint(path, again, opt2)
    for (k, a), (_, b) in zip(net.named_params(), again.named_params()):
        np.testing.assert_array_equal(a, b)
    for k in opt.velocity:
        np.testing.assert_array_equal(opt.velocity[k], opt2.velocity[k])
    with pytest.raises(ValueError, match="conv1.w"):
        load_checkpoint(path, AlexNet(AlexNetConfig.tiny()))   # tower names: use store_into for that


def test_train_run_with_gpus_trains_the_towers_like_the_unsplit_net(tmp_path, monkeypatch):
    """`python -m minialex.train --gpus` wiring, on the CPU: device ids are labels here, so
    parse_gpus is stood in for (its own tests are above); the split run's metrics equal the
    unsplit run's epoch for epoch, to float32 round-off."""
    import csv

    from minialex import experiment, towers, train

    argv = ["--config", "tiny", "--limit", "64", "--batch-size", "16", "--quiet", "--epochs", "2",
            "--no-plot"]
    logs, summaries, rows = [], [], []
    for gpus, out in [(None, "plain"), ("0,1", "towers")]:
        args = train.parse_args([*argv, "--out", str(tmp_path / out)])
        args.gpus = gpus
        monkeypatch.setattr(towers, "parse_gpus", lambda text, backend: (0, 1))
        summaries.append(experiment.run(args, log=logs.append))
        with open(tmp_path / out / "metrics.csv") as f:
            rows.append(list(csv.DictReader(f)))
    assert any("two towers on CUDA devices (0, 1)" in line and "MiB cross between the towers" in line
               for line in logs)
    from minialex.checkpoint import read_checkpoint
    from minialex.towers import transfer_plan

    cfg = AlexNetConfig.from_dict(read_checkpoint(tmp_path / "towers" / "checkpoint.npz")["config"])
    assert summaries[1]["tower_bytes_per_step"] == transfer_plan(AlexNet(cfg), 16)   # a full step, not eval
    assert "tower_bytes_per_step" not in summaries[0]
    for a, b in zip(*rows):
        for key in ("train_loss", "val_top1", "val_top5"):
            # the CLI trains in float32: only the summation order of conv3/fc6/fc7 differs
            assert abs(float(a[key]) - float(b[key])) <= 1e-5 * max(1.0, abs(float(a[key]))), key


def test_bytes_per_step_survives_an_evaluation_forward():
    model = AlexNet(AlexNetConfig.tiny())
    net = TwoTowerAlexNet(model)
    x, y = batch(model, 4)
    step(net, x, y)
    after_step = net.bytes_per_step()
    net.predict(x[:1])                               # evaluation between training steps
    assert net.bytes_per_step() == after_step


def test_lrn_per_tower_sends_no_halo():
    """lrn_per_tower=True is the paper's own two-GPU LRN: each tower normalises
    its maps alone, so the LRN layers move no bytes between the towers."""
    per_tower = AlexNet(CONFIGS["tiny-lrn-per-tower"])
    spanning = AlexNet(CONFIGS["tiny"])
    x, y = batch(per_tower, 4)
    counts = {}
    for key, model in (("per_tower", per_tower), ("spanning", spanning)):
        net = TwoTowerAlexNet(model, devices=(0, 1))
        step(net, x, y)
        counts[key] = dict(net.bytes_per_step())
    assert counts["per_tower"]["lrn"] == 0 < counts["spanning"]["lrn"]
    assert counts["per_tower"]["conv"] == counts["spanning"]["conv"]
