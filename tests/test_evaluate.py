"""minialex.evaluation and python -m minialex.evaluate: softmax averaging over ten crops (Sec. 4.1) and over nets (Sec. 6)."""
import numpy as np
import pytest

from minialex import evaluate, evaluation as ev
from minialex.checkpoint import save_checkpoint
from minialex.layers import softmax
from minialex.metrics import correct_topk, topk_error
from minialex.model import AlexNet, AlexNetConfig

CROP, PAD, S = 15, 2, 17          # tiny net: 15x15 crops of 17x17 images, padded by 2 for ten-crop


def tiny_checkpoint(path, seed):
    """A tiny net with a recorded preprocessing, as minialex.train writes it."""
    model = AlexNet(AlexNetConfig.tiny(seed=seed, num_classes=6, dropout=0.5))
    mean = np.random.default_rng(seed).uniform(100, 150, size=(3, S, S)).astype(np.float32)
    prep = {"crop": CROP, "pad": PAD, "image_size": S, "mean": mean.tolist()}
    save_checkpoint(path, model, extra={"preprocess": prep, "class_names": [str(i) for i in range(6)]})
    return path


@pytest.fixture
def images():
    rng = np.random.default_rng(7)
    return rng.integers(0, 256, size=(12, 3, S, S), dtype=np.uint8)


def naive_ten_crop_probs(model, x, mean):
    """Sec. 4.1 written out: pad, cut the four corners and the centre, flip them, average the softmax."""
    xc = np.pad(x.astype(np.float64) - mean, ((0, 0), (0, 0), (PAD, PAD), (PAD, PAD)))
    H = xc.shape[2]
    probs = []
    for top, left in [(0, 0), (0, H - CROP), (H - CROP, 0), (H - CROP, H - CROP),
                      ((H - CROP) // 2, (H - CROP) // 2)]:
        patch = xc[:, :, top:top + CROP, left:left + CROP]
        for p in (patch, patch[..., ::-1]):
            logits = model.predict(np.ascontiguousarray(p))
            probs.append(softmax(logits.astype(np.float64)))
    return np.mean(probs, axis=0)


def test_predict_proba_centre_and_ten_crop_match_a_naive_version(tmp_path, images):
    model, meta = ev.load_model(tiny_checkpoint(tmp_path / "a.npz", seed=1))
    mean = meta["preprocess"]["mean"].astype(np.float64)
    centre = ev.predict_proba(model, images, meta["preprocess"], batch_size=5)
    c = (S - CROP) // 2
    expect = softmax(model.predict((images.astype(np.float64) - mean)[:, :, c:c + CROP, c:c + CROP])
                     .astype(np.float64))
    np.testing.assert_allclose(centre, expect, rtol=1e-5, atol=1e-7)
    ten = ev.predict_proba(model, images, meta["preprocess"], ten_crop=True, batch_size=5)
    np.testing.assert_allclose(ten, naive_ten_crop_probs(model, images, mean), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(ten.sum(axis=1), 1.0, rtol=1e-12)
    assert not np.allclose(ten, centre)        # the crops differ, so the average does too


def test_ten_crop_lowers_error_on_a_constructed_case(tmp_path, images):
    """Labels are what the ten-crop average predicts, so ten-crop scores 0% top-1 error.
    The centre crop alone disagrees on some images: its error is higher. An evaluation
    that ignored the ten patches would report the same error twice."""
    path = tiny_checkpoint(tmp_path / "a.npz", seed=3)
    model, meta = ev.load_model(path)
    ten = ev.predict_proba(model, images, meta["preprocess"], ten_crop=True)
    centre = ev.predict_proba(model, images, meta["preprocess"])
    labels = ten.argmax(axis=1)
    assert (centre.argmax(axis=1) != labels).any(), "construction needs images where the crops disagree"
    rows = {(name, mode): (e1, e5) for name, mode, e1, e5 in ev.evaluate([path], images, labels, ten_crop=True)}
    assert rows[(str(path), "ten-crop")][0] == 0.0
    assert rows[(str(path), "centre")][0] > 0.0
    assert rows[(str(path), "centre")][0] == topk_error(centre, labels, 1)


def test_ensemble_is_the_mean_of_the_members_softmax(tmp_path, images):
    paths = [tiny_checkpoint(tmp_path / f"m{i}.npz", seed=10 + i) for i in range(3)]
    labels = np.arange(len(images)) % 6
    members = []
    for p in paths:
        model, meta = ev.load_model(p)
        members.append(ev.predict_proba(model, images, meta["preprocess"]))
    mean = (members[0] + members[1] + members[2]) / 3
    np.testing.assert_allclose(ev.ensemble(members), mean, rtol=1e-12)
    rows = ev.evaluate([str(p) for p in paths], images, labels)
    assert [r[0] for r in rows] == [str(p) for p in paths] + ["ensemble of 3"]
    e1, e5 = rows[-1][2], rows[-1][3]
    assert e1 == topk_error(mean, labels, 1) and e5 == topk_error(mean, labels, 5)
    # different seeds: the members disagree, so the ensemble is not just one of them
    assert not np.allclose(members[0], members[1])


def test_ensemble_rejects_mismatched_members():
    with pytest.raises(ValueError, match="differ in shape"):
        ev.ensemble([np.zeros((2, 3)), np.zeros((2, 4))])
    with pytest.raises(ValueError, match="no members"):
        ev.ensemble([])


def test_topk_error_against_a_loop():
    rng = np.random.default_rng(0)
    scores = rng.standard_normal((50, 10))
    labels = rng.integers(0, 10, 50)
    for k in (1, 5):
        wrong = sum(labels[i] not in np.argsort(-scores[i])[:k] for i in range(50))
        assert topk_error(scores, labels, k) == wrong / 50
    ties = np.array([[1.0, 1.0, 0.0]])         # a tie with the label counts in its favour
    assert correct_topk(ties, np.array([1]), 1).all()


def test_cli_prints_one_table(tmp_path, capsys):
    from minialex import train

    assert train.main(["--config", "tiny", "--limit", "40", "--batch-size", "20", "--epochs", "1", "--quiet",
                       "--no-plot", "--out", str(tmp_path / "a")]) == 0
    assert train.main(["--config", "tiny", "--limit", "40", "--batch-size", "20", "--epochs", "1", "--quiet",
                       "--no-plot", "--seed", "1", "--out", str(tmp_path / "b")]) == 0
    capsys.readouterr()
    a, b = str(tmp_path / "a" / "checkpoint.npz"), str(tmp_path / "b" / "checkpoint.npz")
    assert evaluate.main([a, b, "--data", "default", "--ten-crop", "--limit", "30"]) == 0
    out = capsys.readouterr().out
    assert "30 images of bundled CIFAR-10 subset" in out
    for needle in (f"{a}  centre", f"{a}  ten-crop", "ensemble of 2  centre", "ensemble of 2  ten-crop"):
        assert " ".join(needle.split()) in " ".join(out.split()), needle
    with pytest.raises(SystemExit):
        evaluate.main([str(tmp_path / "missing.npz")])


def test_cli_backend_cupy_without_cupy_says_what_is_missing(tmp_path, capsys, monkeypatch):
    from minialex import backend, train

    assert train.main(["--config", "tiny", "--limit", "20", "--batch-size", "10", "--epochs", "1", "--quiet",
                       "--no-plot", "--out", str(tmp_path / "a")]) == 0

    def no_cupy(name):
        raise RuntimeError("backend 'cupy' requested but CuPy is not installed")

    monkeypatch.setattr(backend, "get_backend", no_cupy)
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        evaluate.main([str(tmp_path / "a" / "checkpoint.npz"), "--backend", "cupy"])
    assert e.value.code == 2
    assert "--backend cupy: backend 'cupy' requested but CuPy is not installed" in capsys.readouterr().err


@pytest.mark.parametrize("how", ["record", "reproduce-spec"])
def test_a_cuda_convnet_checkpoint_loads_without_its_net_and_evaluates(tmp_path, monkeypatch, how):
    """load_checkpoint rebuilds a cuda-convnet net from meta/net (or, for files from before that
    entry, from the spec minialex.reproduce stores), so python -m minialex.evaluate can read it."""
    from minialex import cuda_convnet
    from minialex.checkpoint import load_checkpoint, read_checkpoint

    net = cuda_convnet.build("conv-local", seed=3, lrn=False, conv2_bias=1.0)
    rng = np.random.default_rng(0)
    for _, p in net.named_params():
        p += rng.normal(0, 0.01, p.shape).astype(p.dtype)            # not what a fresh build gives
    mean = rng.uniform(100, 150, size=(3, 32, 32)).astype(np.float32)
    extra = {"preprocess": {"crop": 24, "pad": 0, "image_size": 32, "mean": mean.tolist(), "scale": 1 / 64}}
    if how == "reproduce-spec":
        extra["spec"] = {"net": "conv-local", "net_options": {"lrn": False, "local": True, "conv2_bias": 1.0}}
        with monkeypatch.context() as m:                              # a file from before meta/net
            m.delattr(cuda_convnet.CudaConvnetNet, "build_record")
            save_checkpoint(tmp_path / "c.npz", net, extra=extra)
        assert read_checkpoint(tmp_path / "c.npz")["net"] is None
    else:
        save_checkpoint(tmp_path / "c.npz", net, extra=extra)
        assert read_checkpoint(tmp_path / "c.npz")["net"]["lrn"] is False
    back = load_checkpoint(tmp_path / "c.npz")["model"]
    assert back.names == net.names and back.input_size == 24
    for (n1, p1), (n2, p2) in zip(net.named_params(), back.named_params()):
        assert n1 == n2 and p1.dtype == p2.dtype
        np.testing.assert_array_equal(p1, p2)
    x = rng.integers(0, 256, size=(5, 3, 32, 32), dtype=np.uint8)
    c = (32 - 24) // 2
    want = softmax(net.predict(((x - mean) / 64)[:, :, c:c + 24, c:c + 24].astype(np.float32)).astype(np.float64))
    model, meta = ev.load_model(tmp_path / "c.npz")
    np.testing.assert_allclose(ev.predict_proba(model, x, meta["preprocess"]), want, rtol=1e-5, atol=1e-7)
    rows = ev.evaluate([tmp_path / "c.npz"], x, np.arange(5) % 10, ten_crop=True)
    assert [r[1] for r in rows] == ["centre", "ten-crop"]
    assert rows[0][2] == pytest.approx(topk_error(want, np.arange(5) % 10, 1))
