"""python -m minialex.reproduce: every --quick miniature runs and writes what it promises.

Each experiment's --quick variant trains its miniature on the bundled subset
(through the normal trainer) and must leave result.md with the headline table
and a row per run, the figure, and a copy of each run's metrics.csv; the
validation split is held out from training; a finished experiment is reused
with --resume (same numbers) and never overwritten without it.
"""
from __future__ import annotations

import json
import re

import numpy as np
import pytest

from minialex.data.split import holdout_split
from minialex.reproduce import available
from minialex.reproduce.__main__ import main

EXPERIMENTS = list(available())


def test_holdout_split_is_balanced_disjoint_and_seeded():
    y = np.repeat(np.arange(10), 30)[np.random.default_rng(1).permutation(300)]
    tr, va = holdout_split(y, 50, seed=0)
    assert len(va) == 50 and len(tr) == 250
    assert np.intersect1d(tr, va).size == 0 and np.union1d(tr, va).size == 300
    assert np.bincount(y[va], minlength=10).tolist() == [5] * 10
    tr2, va2 = holdout_split(y, 50, seed=0)
    assert np.array_equal(va, va2)
    assert not np.array_equal(va, holdout_split(y, 50, seed=1)[1])
    with pytest.raises(ValueError, match="multiple of the 10 classes"):
        holdout_split(y, 55)


def test_list_names_every_experiment(capsys):
    assert main(["--list"]) == 0
    out = capsys.readouterr().out
    for name in EXPERIMENTS:
        assert re.search(rf"^{re.escape(name)}\s+Sec\. ", out, re.M), name


@pytest.fixture(scope="module")
def quick_root(tmp_path_factory):
    """One folder for every miniature: the ablations share their baseline runs there, as at full scale."""
    return tmp_path_factory.mktemp("reproduce-quick")


@pytest.mark.slow
@pytest.mark.parametrize("name", EXPERIMENTS)
def test_quick_writes_result_figure_and_metrics(name, quick_root, capsys):
    out = quick_root / name
    assert main([name, "--quick", "--out", str(out)]) == 0
    text = (out / "result.md").read_text()
    assert "| claim | paper | ours |" in text
    assert "miniature (--quick)" in text
    assert f"python -m minialex.reproduce {name} --quick" in text
    runs = sorted(p.name for p in (out / "runs").iterdir())
    assert runs, "no runs were trained"
    for run in runs:
        info = json.loads((out / "runs" / run / "run.json").read_text())
        assert info["status"] == "done"
        row = re.search(rf"^\| {re.escape(run)} \| {info['spec']['seed']} \|.*\| done \|$", text, re.M)
        assert row, run
        if info["spec"]["test"]:
            assert 0 <= info["test_top1"] <= 1
        else:                              # a learning-rate sweep's run never reads the test split
            assert run.startswith("sweep-") and info["test_top1"] is None and "test_top1_ten_crop" not in info
            assert row.group(0).split("|")[7].strip() == "–", row.group(0)
        copied = (out / "metrics" / f"{run}.csv").read_text()
        assert copied == (out / "runs" / run / "metrics.csv").read_text()
        assert len(copied.strip().splitlines()) == 1 + info["epochs"]
        assert "300 validation (held out" in info["data"]
    sweeps = [r for r in runs if r.startswith("sweep-")]
    assert all(not json.loads((out / "runs" / r / "run.json").read_text())["spec"]["test"] for r in sweeps)
    last = max(json.loads((out / "runs" / r / "run.json").read_text())["finished"] for r in runs)
    assert f"; the last run finished {last}" in text          # the runs' time, not only the writing's
    pngs = list(out.glob("*.png"))
    assert pngs and f"]({pngs[0].name})" in text
    assert pngs[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # without --resume the finished runs are not overwritten
    assert main([name, "--quick", "--out", str(out)]) == 2
    assert "add --resume" in capsys.readouterr().err
    # with --resume they are reused: the same numbers come back
    before = {r: (out / "runs" / r / "run.json").read_text() for r in runs}
    assert main([name, "--quick", "--out", str(out), "--resume"]) == 0
    assert {r: (out / "runs" / r / "run.json").read_text() for r in runs} == before


def test_a_run_reproduces_and_resumes_to_the_same_result(tmp_path):
    """Same seed and threads: the same metrics.csv; a run cut off before its test pass finishes on resume."""
    from minialex.reproduce.runner import RunSpec, load_splits, train_run

    data = load_splits(quick=True)
    spec = RunSpec("tiny", net="cifar", epochs=1, lr=0.02, train_limit=256, seed=3)
    a = train_run(spec, data, tmp_path / "a", log=lambda *_: None)
    b = train_run(spec, data, tmp_path / "b", log=lambda *_: None)
    cols = slice(0, 9)                                   # epoch .. val_top5 (not the timings)
    rows = lambda d: [ln.split(",")[cols] for ln in (d / "metrics.csv").read_text().splitlines()]
    assert rows(tmp_path / "a") == rows(tmp_path / "b") and len(rows(tmp_path / "a")) == 2
    assert a["test_top1"] == b["test_top1"]
    (tmp_path / "b" / "run.json").unlink()              # as if stopped after the last epoch
    with pytest.raises(ValueError, match="add --resume"):
        train_run(spec, data, tmp_path / "b", log=lambda *_: None)
    c = train_run(spec, data, tmp_path / "b", resume=True, log=lambda *_: None)
    assert c["test_top1"] == a["test_top1"] and c["epochs"] == 1
    other = RunSpec("tiny", net="cifar", epochs=1, lr=0.05, train_limit=256, seed=3)
    with pytest.raises(ValueError, match="lr=0.02"):
        train_run(other, data, tmp_path / "b", resume=True, log=lambda *_: None)


def test_report_only_trains_nothing(tmp_path):
    out = tmp_path / "r"
    dest = tmp_path / "published"
    assert main([EXPERIMENTS[-1], "--quick", "--out", str(out), "--report", "--publish", str(dest)]) == 0
    text = (out / "result.md").read_text()
    assert "not yet run" in text
    assert not (out / "runs").exists()
    assert (dest / "result.md").read_text() == text and (dest / "metrics").is_dir()


def test_unknown_experiment_is_one_line_error(capsys):
    with pytest.raises(SystemExit) as e:
        main(["no-such-claim"])
    assert e.value.code == 2
    assert "invalid choice: 'no-such-claim'" in capsys.readouterr().err


def test_backend_cupy_errors_name_the_problem(tmp_path, capsys, monkeypatch):
    """--backend cupy without a usable CuPy is a one-line error naming the backend (no silent CPU
    fallback); --rerun refuses it, since only the numpy backend repeats a run bit for bit."""
    import minialex.backend as backend

    monkeypatch.setattr(backend, "_import_cupy", lambda: None)      # as on a machine without CuPy
    with pytest.raises(SystemExit) as e:
        main(["lrn-cifar", "--quick", "--backend", "cupy", "--out", str(tmp_path / "x")])
    assert e.value.code == 2
    assert "--backend cupy: backend 'cupy' requested but CuPy is not installed" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
    with pytest.raises(SystemExit) as e:
        main(["--rerun", str(tmp_path), "--backend", "cupy"])
    assert e.value.code == 2
    assert "bit for bit, which holds on the numpy backend only" in capsys.readouterr().err


def test_published_headline_reads_a_result_and_says_when_there_is_none(tmp_path):
    from minialex.reproduce.published import figure, headline

    assert "no committed result for `fig1` yet" in headline("fig1", root=tmp_path)
    assert figure("fig1", root=tmp_path) is None
    d = tmp_path / "fig1"
    d.mkdir()
    (d / "result.md").write_text("# fig1: title\n\n| claim | paper | ours |\n|---|---|---|\n| x | 6x | 5.0x |\n\n"
                                 "![fig1](fig1.png)\n\n## Runs\n\n| run | ... |\n")
    (d / "fig1.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    text = headline("fig1", root=tmp_path)
    assert "| x | 6x | 5.0x |" in text and "## Runs" not in text and "![fig1]" not in text
    assert figure("fig1", root=tmp_path) == d / "fig1.png"


def test_until_stops_at_the_target_and_a_resumed_run_does_not_train_past_it(tmp_path):
    """Figure 1's runs train epoch by epoch until a target; a run cut off after reaching it only tests."""
    from minialex.reproduce.runner import RunSpec, load_splits, train_run

    data = load_splits(quick=True)
    spec = RunSpec("until", net="fig1", epochs=5, lr=0.01, train_limit=128, seed=0, weight_decay=0.0,
                   schedule="constant", pad=0, flip=False)
    two = lambda m: len(m.get("epoch") or []) >= 2                      # "target reached" after 2 epochs
    r = train_run(spec, data, tmp_path / "r", extra_epochs_until=two, log=lambda *_: None)
    assert r["epochs"] == 2 and len(r["metrics"]["epoch"]) == 2
    (tmp_path / "r" / "run.json").unlink()
    again = train_run(spec, data, tmp_path / "r", resume=True, extra_epochs_until=two, log=lambda *_: None)
    assert again["epochs"] == 2 and again["test_top1"] == r["test_top1"]


def test_a_sweeps_run_never_reads_the_test_split(tmp_path, capsys):
    """RunSpec(test=False), as context.choose_lr trains a sweep: finished and recorded without a test error."""
    import dataclasses

    from minialex.reproduce.runner import RunSpec, load_splits, train_run

    spec = RunSpec("sweep-lr0.02", net="cifar", epochs=1, lr=0.02, train_limit=256, seed=3, test=False)
    blind = dataclasses.replace(load_splits(quick=True), x_test=None, y_test=None)   # reading it would fail
    r = train_run(spec, blind, tmp_path / "a", log=lambda *_: None)
    assert r["status"] == "done" and r["test_top1"] is None and r["test_top5"] is None
    assert r["val_top1"] == r["metrics"]["val_top1"][-1]
    assert json.loads((tmp_path / "a" / "run.json").read_text())["spec"]["test"] is False
    assert main(["--rerun", str(tmp_path / "a"), "--out", str(tmp_path / "b")]) == 0
    assert "SAME: all 1 rows" in capsys.readouterr().out


def test_rerun_reproduces_a_finished_run_and_reports_a_difference(tmp_path, capsys):
    """--rerun trains a finished run's spec again and compares metrics.csv and the test errors."""
    from minialex.reproduce.runner import RunSpec, load_splits, train_run

    spec = RunSpec("tiny", net="cifar", epochs=1, lr=0.02, train_limit=256, seed=5)
    train_run(spec, load_splits(quick=True), tmp_path / "a", log=lambda *_: None)
    assert main(["--rerun", str(tmp_path / "a"), "--out", str(tmp_path / "b")]) == 0
    out = capsys.readouterr().out
    assert "SAME: all 1 rows" in out and "re-running tiny (seed 5" in out
    # a changed value in the original's metrics.csv is found, and the exit code says so
    lines = (tmp_path / "a" / "metrics.csv").read_text().splitlines()
    head, row = lines[0].split(","), lines[1].split(",")
    row[head.index("val_top1")] = "0.123"
    (tmp_path / "a" / "metrics.csv").write_text("\n".join([lines[0], ",".join(row)]) + "\n")
    assert main(["--rerun", str(tmp_path / "a"), "--out", str(tmp_path / "c")]) == 1
    out = capsys.readouterr().out
    assert "DIFFERENT: 1 value(s)" in out and "val_top1 row 1: then 0.123" in out
    # an unfinished run cannot be compared
    (tmp_path / "a" / "run.json").unlink()
    assert main(["--rerun", str(tmp_path / "a"), "--out", str(tmp_path / "d")]) == 2
    assert "no finished run" in capsys.readouterr().err


def test_tricks_chosen_on_validation_needs_every_single_trick_run():
    """The "chosen" arm keeps the tricks whose single run beat the baseline's validation error."""
    from minialex.reproduce.tricks import TRICKS, chosen_tricks

    base = {"val_top1": 0.30}
    single = {t: {"val_top1": 0.31} for t in TRICKS}
    single["cosine"] = {"val_top1": 0.26}
    single["no-bias-decay"] = {"val_top1": 0.2999}
    assert chosen_tricks(single, base) == ("cosine", "no-bias-decay")
    single["mixup"] = {"val_top1": 0.30}                      # equal is not better
    assert chosen_tricks(single, base) == ("cosine", "no-bias-decay")
    single["distill"] = {"status": "started, not finished"}    # unknown until every run has finished
    assert chosen_tricks(single, base) is None
    assert chosen_tricks({t: {"val_top1": 0.4} for t in TRICKS}, base) == ()


class _FakeSweepCtx:
    """Stands in for Context.train: a run's final validation error is err(lr); records what was trained."""

    quick = False                                    # a full experiment: its sweep is extended by default

    def __init__(self, err, unfinished=()):
        self.err, self.unfinished, self.trained = err, set(unfinished), []

    def train(self, spec, shared=None):
        self.trained.append(spec.lr)
        if spec.lr in self.unfinished:
            return {"spec": spec.to_dict(), "status": "not yet run", "metrics": {}}
        return {"spec": spec.to_dict(), "status": "done", "metrics": {"val_top1": [self.err(spec.lr)]}}


def test_lr_sweep_is_extended_past_an_edge_until_the_best_is_inside():
    from minialex.reproduce.context import choose_lr, tried
    from minialex.reproduce.runner import RunSpec

    def make(lr):
        return RunSpec(f"sweep-lr{lr:g}", lr=lr)

    valley = lambda best: (lambda lr: abs(np.log2(lr / best)))      # noqa: E731  error smallest at `best`
    ctx = _FakeSweepCtx(valley(0.005))
    lr, sweep = choose_lr(ctx, make, (0.04, 0.01, 0.02), extend=2)   # best below the grid: halve twice
    assert lr == 0.005 and ctx.trained == [0.01, 0.02, 0.04, 0.005, 0.0025]
    assert tried(sweep) == "[0.0025, 0.005, 0.01, 0.02, 0.04]"       # sorted, as the table shows them

    ctx = _FakeSweepCtx(valley(1.0))                                   # best far above: stops after 2
    lr, _ = choose_lr(ctx, make, (0.01, 0.02, 0.04))                  # (the default for a full run)
    assert lr == 0.16 and ctx.trained[3:] == [0.08, 0.16]

    ctx = _FakeSweepCtx(valley(0.02))                                  # best inside: nothing more
    assert choose_lr(ctx, make, (0.01, 0.02, 0.04), extend=2)[0] == 0.02 and len(ctx.trained) == 3
    ctx = _FakeSweepCtx(valley(0.005))                                 # extend=0: the grid as given
    assert choose_lr(ctx, make, (0.01, 0.02, 0.04), extend=0)[0] == 0.01 and len(ctx.trained) == 3
    ctx = _FakeSweepCtx(valley(0.005))
    ctx.quick = True                                                   # --quick keeps its grid by default
    assert choose_lr(ctx, make, (0.01, 0.02, 0.04))[0] == 0.01 and len(ctx.trained) == 3
    ctx = _FakeSweepCtx(valley(0.005), unfinished={0.02})              # a run unfinished: no choice
    assert choose_lr(ctx, make, (0.01, 0.02, 0.04), extend=2)[0] is None and len(ctx.trained) == 3


def test_ten_crop_test_error_matches_a_naive_loop_over_the_ten_patches(tmp_path):
    """spec.ten_crop: the run also records the error of Sec. 4.1's ten patches (softmax averaged)."""
    from minialex.checkpoint import load_checkpoint
    from minialex.reproduce.runner import RunSpec, build_net, load_splits, train_run

    data = load_splits(quick=True)
    data.x_test, data.y_test = data.x_test[:60], data.y_test[:60]
    spec = RunSpec("tc", net="conv-local", net_options={"lrn": True, "local": True}, epochs=1, lr=0.01,
                   train_limit=128, seed=0, pad=0, ten_crop=True)
    r = train_run(spec, data, tmp_path / "tc", log=lambda *_: None)
    model = build_net(spec)
    load_checkpoint(tmp_path / "tc" / "checkpoint.npz", model=model, check_config=False)
    xtr = data.x_train[np.sort(np.random.default_rng([0, 777]).choice(len(data.y_train), 128, replace=False))]
    mean = xtr.astype(np.float64).mean(axis=0)                                  # (3, 32, 32)
    hits1 = hits5 = 0
    for img, label in zip(data.x_test, data.y_test):
        x = (img.astype(np.float64) - mean) * spec.input_scale                  # (3, 32, 32)
        patches = []
        for top, left in ((0, 0), (0, 8), (8, 0), (8, 8), (4, 4)):            # 4 corners, centre: 24 of 32
            p = x[:, top:top + 24, left:left + 24]
            patches += [p, p[:, :, ::-1]]                                       # and its reflection
        logits = model.predict(np.stack(patches).astype(np.float32)).astype(np.float64)   # (10, 10)
        prob = np.exp(logits - logits.max(1, keepdims=True))
        prob = (prob / prob.sum(1, keepdims=True)).mean(0)                      # (10,)
        order = np.argsort(-prob, kind="stable")
        hits1 += order[0] == label
        hits5 += label in order[:5]
    assert r["test_top1_ten_crop"] == pytest.approx(1 - hits1 / 60)
    assert r["test_top5_ten_crop"] == pytest.approx(1 - hits5 / 60)


def test_only_trains_the_matching_runs_and_reads_the_others(tmp_path):
    """--only: two processes can share one experiment's runs; unmatched runs are read, not trained."""
    out = tmp_path / "lrn"
    assert main(["lrn-cifar", "--quick", "--out", str(out), "--only", "sweep-*"]) == 0
    assert sorted(p.name for p in (out / "runs").iterdir()) == ["sweep-lrn-lr0.01", "sweep-lrn-lr0.02"]
    assert main(["lrn-cifar", "--quick", "--out", str(out), "--resume", "--only", "nolrn-*"]) == 0
    runs = sorted(p.name for p in (out / "runs").iterdir())
    assert runs == ["nolrn-seed0", "sweep-lrn-lr0.01", "sweep-lrn-lr0.02"]
    text = (out / "result.md").read_text()
    assert re.search(r"\| lrn-seed0 \|.*not yet run", text), text
    assert "--only" not in text                        # the command in result.md makes the whole experiment


def test_layer_decay_of_a_spec_reaches_the_optimizer():
    """RunSpec.layer_decay: cuda-convnet's per-layer weight costs, here as SGD(layer_decay)."""
    from minialex.reproduce.runner import RunSpec, _optimizer, build_net
    from minialex.tricks import Tricks

    decay = {"conv1": 0.0, "conv2": 0.0, "local3": 0.004, "local4": 0.004, "fc10": 0.004}
    spec = RunSpec("wc", net="conv-local", net_options={"lrn": True, "local": True}, layer_decay=decay,
                   tricks={"no_bias_decay": True})
    opt, _ = _optimizer(spec, build_net(spec), Tricks(**spec.tricks))
    for name in opt.params:
        layer, part = name.split(".")
        assert opt.decay_of(name) == (decay[layer] if part == "w" else 0.0), name
    with pytest.raises(ValueError, match="'local5'"):
        _optimizer(RunSpec("x", net="conv-local", layer_decay={"local5": 0.1}), build_net(spec), Tricks())


def test_lrn_cifar_cover_pools_switch_builds_cuda_convnets_pooling(monkeypatch):
    """lrn_cifar.COVER_POOLS (the fifth recipe) reaches the net: 6x6 maps before fc10 instead of 5x5."""
    from minialex.reproduce import lrn_cifar
    from minialex.reproduce.runner import build_net

    def fc10_inputs(cover):
        monkeypatch.setattr(lrn_cifar, "COVER_POOLS", cover)
        spec = lrn_cifar.spec("x", True, 0.01, 1, 0, None, 1.0)
        return dict(build_net(spec).named_params())["fc10.w"].shape[0], spec.net_options

    (whole, opts_whole), (cover, opts_cover) = fc10_inputs(False), fc10_inputs(True)
    assert (whole, cover) == (32 * 5 * 5, 32 * 6 * 6)
    assert "cover_pools" not in opts_whole and opts_cover["cover_pools"] is True   # old specs still resume


def test_the_machine_line_names_every_machine_that_trained_a_run():
    """Runs restored from a lost machine beside runs trained on a new one: result.md names both."""
    from minialex.reproduce.context import machines

    run = lambda name, m: {"spec": {"name": name}, "status": "done", "machine": m}
    assert machines([run("a", "CPU X"), run("b", "CPU X")]) == "CPU X"
    assert machines([run("a", "CPU X"), run("b", "CPU Y"), run("c", "CPU X")]) == \
        "CPU X (runs a, c); CPU Y (run b)"
    assert machines([]) == "" and machines([{"spec": {"name": "a"}, "status": "done"}]) == ""


def test_published_records_restore_finished_runs_into_a_new_out(tmp_path):
    """--publish writes records/RUN.json; --restore puts a lost machine's finished runs back, marked restored."""
    from minialex.reproduce.__main__ import publish
    from minialex.reproduce.context import run_row
    from minialex.reproduce.restore import restore
    from minialex.reproduce.runner import RunSpec, load_splits, read_run, train_run

    data = load_splits(quick=True)
    old = tmp_path / "old"
    spec = RunSpec("tiny", net="cifar", epochs=1, lr=0.02, train_limit=256, seed=3)
    done = train_run(spec, data, old / "runs" / "tiny", log=lambda *_: None)
    (old / "metrics").mkdir()
    (old / "metrics" / "tiny.csv").write_text((old / "runs" / "tiny" / "metrics.csv").read_text())
    (old / "result.md").write_text("# tiny\n")
    dest = publish(old, tmp_path / "published")
    record = json.loads((dest / "records" / "tiny.json").read_text())
    assert record["test_top1"] == done["test_top1"] and "metrics" not in record

    new = tmp_path / "new"                              # a new machine: the run folders are gone
    assert restore(dest, new, log=lambda *_: None) == ["tiny"]
    back = read_run(new / "runs" / "tiny")
    assert back["status"] == "done" and back["restored_from"] == str(dest)
    assert back["test_top1"] == done["test_top1"] and back["metrics"] == done["metrics"]
    assert "| done (restored) |" in run_row(back)
    assert restore(dest, new, log=lambda *_: None) == []          # what --out holds is left alone
    (new / "result.md").write_text("# tiny\n")
    publish(new, tmp_path / "again")                               # republished: the record, not its origin
    assert json.loads((tmp_path / "again" / "records" / "tiny.json").read_text()) == record
    again = train_run(spec, data, new / "runs" / "tiny", resume=True, log=lambda *_: None)
    assert again["test_top1"] == done["test_top1"]                 # counted as finished, not retrained

    (dest / "metrics" / "tiny.csv").unlink()
    with pytest.raises(ValueError, match="no metrics/tiny.csv"):
        restore(dest, tmp_path / "third", log=lambda *_: None)
    with pytest.raises(ValueError, match="no finished-run records"):
        restore(tmp_path / "empty", tmp_path / "fourth", log=lambda *_: None)


def test_a_run_folder_is_trained_by_one_process_at_a_time(tmp_path):
    """lock.py: a live owner's lock refuses a second trainer; a dead owner's lock is taken over; released after."""
    import os
    import socket
    import subprocess
    import sys

    from minialex.reproduce.lock import LOCK, run_lock
    from minialex.reproduce.runner import RunSpec, load_splits, train_run

    run_dir = tmp_path / "r"
    with run_lock(run_dir, log=lambda *_: None) as path:
        assert path.read_text().split()[0] == str(os.getpid())
        with pytest.raises(ValueError, match=f"being trained by process {os.getpid()}"):
            with run_lock(run_dir, log=lambda *_: None):
                pass
        spec = RunSpec("tiny", net="cifar", epochs=1, lr=0.02, train_limit=64, seed=0)
        with pytest.raises(ValueError, match="being trained by process"):      # train_run takes the lock too
            train_run(spec, load_splits(quick=True), run_dir, resume=True, log=lambda *_: None)
    assert not (run_dir / LOCK).exists()

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True).stdout.strip()            # a pid that has exited
    (run_dir / LOCK).write_text(f"{dead} {socket.gethostname()}\n")
    said = []
    with run_lock(run_dir, log=said.append) as path:
        assert path.read_text().split()[0] == str(os.getpid())
    assert said and "stale lock" in said[0] and dead in said[0]
    assert not (run_dir / LOCK).exists()
