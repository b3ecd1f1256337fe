"""One .npz per checkpoint: exact round trip, no pickle, atomic writes, clear mismatch errors."""
import os

import numpy as np
import pytest

import minialex.checkpoint as ckpt_mod
from minialex.checkpoint import load_checkpoint, read_checkpoint, save_checkpoint
from minialex.layers import SoftmaxCrossEntropy
from minialex.model import AlexNet, AlexNetConfig
from minialex.optim import SGD, ReduceOnPlateau, StepDecay


def _trained(cfg, steps=2, seed=0):
    """A model, its optimizer and schedule after a few SGD steps (non-zero velocities)."""
    m = AlexNet(cfg)
    opt = SGD(m, lr=0.05)
    sched = ReduceOnPlateau(opt, patience=1)
    rng = np.random.default_rng(seed)
    loss = SoftmaxCrossEntropy()
    dtype = np.dtype(cfg.dtype)
    for _ in range(steps):
        x = rng.standard_normal((4, 3, cfg.input_size, cfg.input_size)).astype(dtype)
        y = rng.integers(0, cfg.num_classes, 4)
        loss.forward(m.forward(x), y)
        m.backward(loss.backward())
        opt.step()
    for e in (0.5, 0.6, 0.7):
        sched.step(e)
    return m, opt, sched


def test_round_trip_is_exact(tmp_path):
    cfg = AlexNetConfig.tiny(dtype="float32")
    m, opt, sched = _trained(cfg)
    extra = {"epoch": 3, "step": 17, "data_rng": np.random.default_rng(5).bit_generator.state}
    path = tmp_path / "run" / "last.npz"
    save_checkpoint(path, m, opt, sched, extra=extra)
    assert sorted(os.listdir(tmp_path / "run")) == ["last.npz"]     # no temporary file left behind

    m2 = AlexNet(AlexNetConfig.tiny(dtype="float32"))
    opt2 = SGD(m2)
    sched2 = ReduceOnPlateau(opt2)
    out = load_checkpoint(path, m2, opt2, sched2)
    assert out["model"] is m2 and out["config"] == cfg and out["extra"] == extra
    for (n1, p1), (n2, p2) in zip(m.named_params(), m2.named_params()):
        assert n1 == n2 and p1.dtype == p2.dtype
        np.testing.assert_array_equal(p1, p2)
        np.testing.assert_array_equal(opt.velocity[n1], opt2.velocity[n2])
    assert opt2.lr == opt.lr and opt2.steps == opt.steps
    assert sched2.state_dict() == sched.state_dict()

    # training continues identically, dropout masks included
    x = np.random.default_rng(9).standard_normal((4, 3, 15, 15)).astype(np.float32)
    np.testing.assert_array_equal(m.forward(x, train=True), m2.forward(x, train=True))


def test_load_without_model_builds_it_from_the_stored_config(tmp_path):
    m, _, _ = _trained(AlexNetConfig.tiny(towers=1, lrn=False), steps=1)
    save_checkpoint(tmp_path / "m.npz", m)
    out = load_checkpoint(tmp_path / "m.npz")
    assert out["config"] == m.config and out["extra"] is None and out["optim"] is None
    assert out["model"].names == m.names
    for (_, a), (_, b) in zip(m.named_params(), out["model"].named_params()):
        np.testing.assert_array_equal(a, b)


def test_file_is_a_plain_npz_without_pickle(tmp_path):
    m, opt, sched = _trained(AlexNetConfig.tiny(), steps=1)
    save_checkpoint(tmp_path / "c.npz", m, opt, StepDecay(opt, 3), extra={"note": "hi"})
    with np.load(tmp_path / "c.npz", allow_pickle=False) as z:
        assert "param/conv1.w" in z.files and "optim/v/fc8.b" in z.files
        assert all(z[k].dtype != object for k in z.files)
        np.testing.assert_array_equal(z["param/conv1.w"], m["conv1"].params["w"])
    assert read_checkpoint(tmp_path / "c.npz")["schedule"]["kind"] == "StepDecay"


def test_mismatching_shape_names_the_first_tensor(tmp_path):
    m, _, _ = _trained(AlexNetConfig.tiny(), steps=1)
    save_checkpoint(tmp_path / "c.npz", m)
    other = AlexNet(AlexNetConfig.tiny(conv_channels=(6, 6, 8, 4, 4)))
    before = {k: v.copy() for k, v in other.named_params()}
    with pytest.raises(ValueError, match=r"'conv3.w' has shape \(4, 6, 3, 3\) in the file, but \(8, 6, 3, 3\)"):
        load_checkpoint(tmp_path / "c.npz", other, check_config=False)
    for k, v in other.named_params():                         # nothing was modified
        np.testing.assert_array_equal(v, before[k])


def test_mismatching_config_names_the_field(tmp_path):
    m, _, _ = _trained(AlexNetConfig.tiny(), steps=1)
    save_checkpoint(tmp_path / "c.npz", m)
    with pytest.raises(ValueError, match="config field 'lrn_alpha' differs"):
        load_checkpoint(tmp_path / "c.npz", AlexNet(AlexNetConfig.tiny(lrn_alpha=0.5)))


def test_missing_optimizer_or_schedule_state_is_an_error(tmp_path):
    m, opt, _ = _trained(AlexNetConfig.tiny(), steps=1)
    save_checkpoint(tmp_path / "c.npz", m)
    with pytest.raises(ValueError, match="no optimizer state"):
        load_checkpoint(tmp_path / "c.npz", m, optimizer=opt)
    save_checkpoint(tmp_path / "d.npz", m, opt, StepDecay(opt, 2))
    with pytest.raises(ValueError, match="StepDecay"):
        load_checkpoint(tmp_path / "d.npz", m, opt, ReduceOnPlateau(opt))


def test_not_a_checkpoint(tmp_path):
    np.savez(tmp_path / "x.npz", a=np.zeros(3))
    with pytest.raises(ValueError, match="not a minialex checkpoint"):
        load_checkpoint(tmp_path / "x.npz")


def test_crash_during_write_keeps_the_old_checkpoint(tmp_path, monkeypatch):
    m, _, _ = _trained(AlexNetConfig.tiny(), steps=1)
    path = tmp_path / "c.npz"
    save_checkpoint(path, m, extra={"epoch": 1})
    good = path.read_bytes()

    def crash(f, **arrays):                                   # dies half-way through the write
        f.write(b"PK partial")
        raise KeyboardInterrupt("power cut")

    monkeypatch.setattr(ckpt_mod.np, "savez", crash)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, m, extra={"epoch": 2})
    monkeypatch.undo()
    assert path.read_bytes() == good
    assert sorted(os.listdir(tmp_path)) == ["c.npz"]          # the temporary file was removed
    assert load_checkpoint(path)["extra"] == {"epoch": 1}


def test_extra_must_be_json(tmp_path):
    m, _, _ = _trained(AlexNetConfig.tiny(), steps=1)
    with pytest.raises(ValueError, match="JSON"):
        save_checkpoint(tmp_path / "c.npz", m, extra={"a": np.zeros(2)})


def test_checkpoint_gets_ordinary_file_permissions(tmp_path):
    """The atomic write goes through mkstemp (mode 0600); the final file has 0666 less the umask."""
    m, _, _ = _trained(AlexNetConfig.tiny(), steps=1)
    old = os.umask(0o022)
    try:
        save_checkpoint(tmp_path / "c.npz", m)
        assert os.stat(tmp_path / "c.npz").st_mode & 0o777 == 0o644
        os.umask(0o077)
        save_checkpoint(tmp_path / "d.npz", m)
        assert os.stat(tmp_path / "d.npz").st_mode & 0o777 == 0o600
    finally:
        os.umask(old)
