"""The dependency-free progress bar (minialex/progress.py)."""
import io

from minialex.progress import Progress, format_seconds


def test_format_seconds():
    assert format_seconds(5) == "0:05"
    assert format_seconds(3725.2) == "1:02:05"
    assert format_seconds(float("inf")) == "?"


def test_plain_lines_when_not_a_terminal():
    out = io.StringIO()
    with Progress(total=4, desc="prepare", unit="img", file=out, log_every=0.0) as bar:
        for _ in range(4):
            bar.update()
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue()
    assert len(lines) == 5  # one per update (log_every=0) plus the final line
    assert lines[-1].startswith("prepare: 4/4 (100%)") and "img/s" in lines[-1] and "ETA" in lines[-1]
    assert lines[0].startswith("prepare: 1/4 ( 25%)")


def test_unknown_total_and_disabled():
    out = io.StringIO()
    bar = Progress(desc="dl", unit="B", file=out, log_every=1e9)
    bar.update(10)
    bar.close()
    bar.close()  # idempotent
    assert out.getvalue().count("\n") == 2 and "dl: 10 B" in out.getvalue()
    out = io.StringIO()
    with Progress(total=3, file=out, enabled=False) as bar:
        bar.update(3)
    assert out.getvalue() == ""


def test_train_bar_eta_leaves_out_the_first_step(monkeypatch):
    """The first step compiles the numba kernels; an ETA from it would read hours (issue 15)."""
    import io
    import time

    from minialex.trainer import TrainBar

    now = [0.0]
    monkeypatch.setattr(time, "perf_counter", lambda: now[0])
    bar = TrainBar(total=100, desc="epoch 1/8", unit="img", file=io.StringIO())
    now[0] = 100.0                                   # the first step took 100 s (compiling)
    bar.update(10)
    assert "ETA after the first step" in bar.line() and "img/s" not in bar.line()
    now[0] = 101.0                                   # the second took 1 s: 10 img/s
    bar.update(10)
    assert "10.0 img/s ETA 0:08" in bar.line()       # 80 images left at 10 img/s, not 20 img per 101 s
