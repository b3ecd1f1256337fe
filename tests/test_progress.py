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
