"""python -m minialex.train: files of a short run, option errors, exact resume, signals, NaN stop.

Every run here uses the tiny config on 64 bundled images in batches of 16
(4 steps per epoch), so a run takes a second or two.
"""
import csv
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from minialex import train
from minialex.checkpoint import read_checkpoint
from minialex.trainer import Trainer

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--config", "tiny", "--limit", "64", "--batch-size", "16", "--quiet"]


def run(out, *extra):
    return train.main([*TINY, "--out", str(out), *extra])


def test_short_run_writes_checkpoint_metrics_and_png(tmp_path, capsys):
    assert run(tmp_path, "--epochs", "2") == 0
    printed = capsys.readouterr().out
    assert "test  top-1 error" in printed and "wall time" in printed

    ck = read_checkpoint(tmp_path / "checkpoint.npz")
    assert ck["extra"]["epoch"] == 2 and ck["extra"]["step"] == 8
    assert ck["config"]["input_size"] == 15
    assert set(ck["velocity"]) == set(ck["params"])
    assert all(np.isfinite(v).all() for v in ck["params"].values())

    with open(tmp_path / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    for r in rows:
        for k in ("lr", "train_loss", "train_top1", "train_top5", "val_top1", "val_top5", "images_per_s"):
            assert np.isfinite(float(r[k])), k
        assert 0 <= float(r["val_top1"]) <= 1 and float(r["val_top5"]) <= float(r["val_top1"])
        assert float(r["images_per_s"]) > 0
        # the time the loop waited for the loader is part of the epoch's time, never more
        assert 0 <= float(r["data_wait_s"]) <= float(r["epoch_s"])
    assert int(rows[1]["step"]) == 8

    png = tmp_path / "curves.png"
    assert png.stat().st_size > 1000
    with Image.open(png) as im:
        assert im.format == "PNG" and im.size == (1200, 400)


@pytest.mark.parametrize("argv, needle", [
    (["--lr", "-1"], "--lr must be in (0"),
    (["--lr", "abc"], "--lr must be a number"),
    (["--epochs", "0"], "--epochs must be a positive integer, got 0"),
    (["--batch-size", "-5"], "--batch-size must be a positive integer"),
    (["--momentum", "1.5"], "--momentum must be in [0, 1)"),
    (["--dropout", "1"], "--dropout must be in [0, 1)"),
    (["--pool", "3x2"], "--pool must be WINDOW/STRIDE"),
    (["--drop-conv", "1"], "--drop-conv takes conv layers from 2, 3, 4"),
    (["--schedule", "linear"], "invalid choice: 'linear'"),
    (["--towers", "3"], "invalid choice: 3"),
    (["--gpus", "0,1"], "--gpus 0,1 needs --backend cupy"),
    (["--data", "/no/such/folder"], "no such folder"),
    (["--pad", "-1"], "--pad must be >= 0"),
    (["--resume"], "no checkpoint at"),
    (["--config", "paper"], "--config paper takes 224x224 crops"),
])
def test_bad_options_fail_before_any_work(tmp_path, capsys, argv, needle):
    with pytest.raises(SystemExit) as e:
        train.main(["--out", str(tmp_path / "run"), *argv])
    assert e.value.code == 2
    assert needle in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_cupy_backend_without_cupy_is_a_clear_error(tmp_path, capsys):
    from minialex.backend import cupy_available

    if cupy_available():
        pytest.skip("CuPy and a CUDA device are present")
    with pytest.raises(SystemExit) as e:
        train.main(["--backend", "cupy", "--out", str(tmp_path / "run")])
    assert e.value.code == 2
    assert "cupy" in capsys.readouterr().err.lower()
    assert not (tmp_path / "run").exists()


def test_help_names_paper_sections(capsys):
    with pytest.raises(SystemExit) as e:
        train.main(["--help"])
    assert e.value.code == 0
    text = " ".join(capsys.readouterr().out.split())     # argparse wraps lines
    for s in ("Sec. 5", "Sec. 3.3", "Sec. 3.4", "Sec. 3.1", "Sec. 4.2", "Sec. 3.2", "Sec. 4.1", "Sec. 7"):
        assert s in text, s


def _state(out):
    ck = read_checkpoint(Path(out) / "checkpoint.npz")
    return ck


def _metric_rows(out):
    with open(Path(out) / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    timing = ("images_per_s", "epoch_s", "wall_s", "data_wait_s")
    return [{k: v for k, v in r.items() if k not in timing} for r in rows]


def test_resume_is_exact_bit_for_bit(tmp_path):
    """Stopped at step 3 (mid-epoch 1) and step 6 (mid-epoch 2), resumed each time:
    the same weights, velocities, dropout RNG state and metrics as one run of 12 steps."""
    common = ["--epochs", "3", "--schedule", "step", "--step-epochs", "1", "--no-plot"]
    assert run(tmp_path / "a", *common) == 0
    assert run(tmp_path / "b", *common, "--max-steps", "3") == 0
    assert _state(tmp_path / "b")["extra"]["step"] == 3
    assert run(tmp_path / "b", "--resume", "--max-steps", "6") == 0
    assert _state(tmp_path / "b")["extra"]["step"] == 6
    assert run(tmp_path / "b", "--resume") == 0

    a, b = _state(tmp_path / "a"), _state(tmp_path / "b")
    assert a["extra"]["step"] == b["extra"]["step"] == 12
    assert a["params"].keys() == b["params"].keys()
    for k in a["params"]:
        assert np.array_equal(a["params"][k], b["params"][k]), k
        assert np.array_equal(a["velocity"][k], b["velocity"][k]), k
    assert a["model_rng"] == b["model_rng"]
    assert a["schedule"] == b["schedule"] and a["optim"] == b["optim"]
    assert _metric_rows(tmp_path / "a") == _metric_rows(tmp_path / "b")
    # and the runs really trained: the weights moved away from the initial ones
    c = run(tmp_path / "c", *common, "--max-steps", "1")
    assert c == 0
    init = _state(tmp_path / "c")["params"]
    assert any(not np.array_equal(init[k], a["params"][k]) for k in init)


def test_resume_refuses_changed_options(tmp_path, capsys):
    assert run(tmp_path, "--epochs", "1", "--max-steps", "2", "--no-plot") == 0
    with pytest.raises(SystemExit) as e:
        run(tmp_path, "--resume", "--lr", "0.5")
    assert e.value.code == 2
    assert "--lr differ from it" in capsys.readouterr().err


def test_signal_writes_checkpoint_and_stops(tmp_path, monkeypatch, capsys):
    """The SIGTERM handler only sets a flag; the loop checkpoints at the next step boundary."""
    original = Trainer._train_step

    def step_then_signal(self, x, y):
        loss = original(self, x, y)
        if self.step == 1:                       # during the second step
            signal.raise_signal(signal.SIGTERM)
        return loss

    monkeypatch.setattr(Trainer, "_train_step", step_then_signal)
    assert run(tmp_path, "--epochs", "3", "--no-plot") == 130
    assert "SIGTERM received" in capsys.readouterr().err
    ck = _state(tmp_path)
    assert ck["extra"]["step"] == 2 and ck["extra"]["batch"] == 2 and ck["extra"]["epoch"] == 0
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL    # the handler is removed again
    monkeypatch.setattr(Trainer, "_train_step", original)
    assert run(tmp_path, "--resume", "--no-plot") == 0
    assert _state(tmp_path)["extra"]["step"] == 12


@pytest.mark.slow
def test_sigterm_to_a_real_process(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "minialex.train", *TINY, "--epochs", "1000", "--no-plot",
                             "--out", str(out)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    metrics = out / "metrics.csv"
    deadline = time.time() + 120
    def epochs_done():                            # metrics.csv is created empty at the start
        return len(metrics.read_text().splitlines()) - 1 if metrics.exists() else 0

    while epochs_done() < 1 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert epochs_done() >= 1, proc.communicate()[1] if proc.poll() is not None else "no epoch within 120 s"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "SIGTERM received" in err
    step = _state(out)["extra"]["step"]
    assert step >= 4


def test_nan_loss_stops_with_the_step_and_keeps_last_good_checkpoint(tmp_path, capsys):
    code = run(tmp_path, "--epochs", "50", "--lr", "1e8", "--no-plot")
    err = capsys.readouterr().err
    assert code == 3
    assert "diverged" in err and "at step" in err
    ck = _state(tmp_path)                         # still loadable, finite, from before the divergence
    assert all(np.isfinite(v).all() for v in ck["params"].values())
    bad_step = int(err.split("at step ")[1].split()[0].rstrip(";,"))
    assert ck["extra"]["step"] < bad_step


def test_status_lines_name_the_split_the_position_and_skip_a_trivial_top5(tmp_path, capsys):
    """Issue 15, item 7: the summary's step is where the run stopped; a val/ split is called val;
    with five classes or fewer top-5 error is always 0, so it reads n/a."""
    from minialex import evaluate

    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for c in ("ant", "bee", "cat"):
            (tmp_path / "d" / split / c).mkdir(parents=True)
            for i in range(6):
                Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(
                    tmp_path / "d" / split / c / f"{i}.png")
    out = tmp_path / "run"
    argv = ["--config", "tiny", "--batch-size", "4", "--quiet", "--no-plot", "--data", str(tmp_path / "d"),
            "--out", str(out), "--epochs", "3", "--max-steps", "6"]
    assert train.main(argv) == 0                    # 18 images: 5 steps per epoch; stops at step 6
    text = capsys.readouterr().out
    assert "| val loss" in text and "top-5 n/a (3 classes)" in text and "test loss" not in text
    assert "stopped (--max-steps) at step 6 (epoch 2, batch 1/5)" in text
    assert "stopped at step 6 (epoch 2, batch 1/5) (max_steps)" in text
    assert "summary after epoch 1 (step 5)" in text
    assert "val   top-1 error" in text and "top-5 n/a (3 classes)" in text.split("summary")[-1]
    assert train.main(["--out", str(out), "--resume", "--max-steps", "7"]) == 0
    assert "resumed " + str(out / "checkpoint.npz") + " at step 6 (epoch 2, batch 1/5)" in capsys.readouterr().out
    assert evaluate.main([str(out / "checkpoint.npz"), "--data", str(tmp_path / "d")]) == 0
    table = capsys.readouterr().out
    assert "n/a" in table and "3 classes" in table
