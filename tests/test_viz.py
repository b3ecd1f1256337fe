"""minialex.figures and python -m minialex.viz: every figure is a non-empty PNG of the stated size; the pieces behind them are right."""
import numpy as np
import pytest
from PIL import Image

from minialex import figures, viz
from minialex.metrics import MetricsLog
from minialex.model import AlexNet, AlexNetConfig


def assert_png(path, size):
    assert path.stat().st_size > 1000
    with Image.open(path) as im:
        assert im.format == "PNG"
        assert im.size == size
        a = np.asarray(im.convert("L"))
    assert a.std() > 0                                   # not a blank canvas


def test_filters_png_and_tower_split(tmp_path):
    model = AlexNet(AlexNetConfig.cifar())               # conv1: 32 kernels, 16 per tower
    out = figures.plot_filters(model, tmp_path / "filters.png")
    assert_png(out, (800, 600))


def test_filter_grid_puts_each_tower_in_its_own_block():
    rng = np.random.default_rng(0)
    F, K = 12, 3
    w = rng.standard_normal((F, 3, K, K))
    slices = [(0, 6), (6, 12)]
    grid = figures.filter_grid(w, slices, cols=3, pad=1, gap=4)
    cell, block_h = K + 1, 2 * (K + 1) + 1                # 2 rows of 3 per tower
    assert grid.shape == (2 * block_h + 4, 3 * cell + 1, 3)
    for f in range(F):
        t, j = divmod(f, 6)
        r, c = divmod(j, 3)
        y, x = t * (block_h + 4) + 1 + r * cell, 1 + c * cell
        k = w[f].transpose(1, 2, 0)                       # (K, K, 3)
        expect = (k - k.min()) / (k.max() - k.min())
        np.testing.assert_allclose(grid[y:y + K, x:x + K], expect, atol=1e-12)
    gap_rows = grid[block_h:block_h + 4]                  # white gap between the towers
    assert (gap_rows == 1).all()


def test_top5_png(tmp_path):
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, size=(6, 3, 32, 32), dtype=np.uint8)
    probs = rng.dirichlet(np.ones(10), size=6)
    labels = rng.integers(0, 10, 6)
    names = [f"class{i}" for i in range(10)]
    out = figures.plot_top5(images, probs, labels, names, tmp_path / "top5.png")
    assert_png(out, (1000, 500))
    with pytest.raises(ValueError, match="must agree"):
        figures.plot_top5(images[:2], probs, labels, names, tmp_path / "x.png")


def test_nearest_neighbours_matches_brute_force():
    rng = np.random.default_rng(2)
    q, d = rng.standard_normal((4, 16)), rng.standard_normal((30, 16))
    idx = figures.nearest_neighbours(q, d, n=5)
    for i in range(4):
        dist = [np.sqrt(((q[i] - d[j]) ** 2).sum()) for j in range(30)]
        assert list(idx[i]) == list(np.argsort(dist)[:5])
    assert list(figures.nearest_neighbours(d[:3], d, n=1)[:, 0]) == [0, 1, 2]   # each vector finds itself


def test_neighbours_png(tmp_path):
    rng = np.random.default_rng(3)
    q = rng.integers(0, 256, size=(3, 3, 32, 32), dtype=np.uint8)
    db = rng.integers(0, 256, size=(20, 3, 32, 32), dtype=np.uint8)
    out = figures.plot_neighbours(q, db, np.arange(12).reshape(3, 4), tmp_path / "nn.png")
    assert_png(out, (800, 600))


def test_curves_png(tmp_path):
    log = MetricsLog(tmp_path / "metrics.csv")
    for e in range(1, 4):
        log.append({"epoch": e, "step": 10 * e, "lr": 0.01 / e, "train_loss": 2.0 / e, "train_top1": 0.8 / e,
                    "train_top5": 0.4 / e, "val_loss": 2.1 / e, "val_top1": 0.85 / e, "val_top5": 0.45 / e,
                    "images_per_s": 300.0})
    out = figures.plot_curves(tmp_path / "metrics.csv", tmp_path / "curves.png")
    assert_png(out, (1200, 400))


def test_metrics_log_truncate_and_reload(tmp_path):
    log = MetricsLog(tmp_path / "m.csv")
    for e in (1, 2, 3):
        log.append({"epoch": e, "lr": 0.1})
    MetricsLog(tmp_path / "m.csv").truncate(2)
    assert [r["epoch"] for r in MetricsLog(tmp_path / "m.csv").rows] == ["1", "2"]
    with pytest.raises(ValueError, match="unknown field"):
        log.append({"epoch": 4, "bogus": 1})


def test_cli_figures(tmp_path, capsys):
    from minialex import train

    run = tmp_path / "run"
    assert train.main(["--config", "tiny", "--limit", "40", "--batch-size", "20", "--epochs", "1", "--quiet",
                       "--out", str(run)]) == 0
    ck = str(run / "checkpoint.npz")
    cases = [(["filters", ck], (800, 600)), (["curves", str(run)], (1200, 400)),
             (["top5", ck, "--count", "4"], (1000, 500)),
             (["neighbours", ck, "--count", "2", "--database", "200"], (800, 600))]
    for i, (argv, size) in enumerate(cases):
        out = tmp_path / f"fig{i}.png"
        assert viz.main([*argv, "-o", str(out)]) == 0
        assert_png(out, size)


def test_moved_from_init_rebuilds_the_initial_weights_from_the_config():
    """Figure 3 is readable only once conv1 has moved from its random start; the measure of that."""
    model = AlexNet(AlexNetConfig.tiny(seed=3))
    assert figures.moved_from_init(model) == 0.0                 # same seed -> the same initial weights
    w = model["conv1"].params["w"]
    w0 = w.copy()
    w += 0.5 * w0                                                # ||w - w0|| = 0.5 ||w0||
    assert abs(figures.moved_from_init(model) - 0.5) < 1e-12
    rng = np.random.default_rng(0)
    w[...] = w0 + rng.standard_normal(w0.shape)
    expected = np.linalg.norm(w - w0) / np.linalg.norm(w0)
    assert abs(figures.moved_from_init(model) - expected) < 1e-12


def test_cli_filters_says_how_far_conv1_moved(tmp_path, capsys):
    from minialex.checkpoint import save_checkpoint

    model = AlexNet(AlexNetConfig.cifar(seed=1))                  # untrained: moved 0%
    mean = np.zeros((3, 32, 32), np.float32)
    ck = tmp_path / "run" / "checkpoint.npz"
    save_checkpoint(ck, model, extra={"preprocess": {"crop": 32, "pad": 4, "image_size": 32, "scale": 1.0,
                                                     "mean": mean.tolist()}})
    assert viz.main(["filters", str(ck)]) == 0                    # no -o: beside the checkpoint
    out = capsys.readouterr().out
    assert_png(tmp_path / "run" / "filters.png", (800, 600))
    assert "moved 0.0% from their initialisation" in out and "docs/results.md" in out
