"""A tiny, dependency-free progress bar for long work (data preparation, epochs).

    with Progress(total=9469, desc="prepare") as bar:
        for item in items:
            ...
            bar.update()

On a terminal it redraws one line (count, percent, rate, ETA) at most ten
times a second; when stderr is not a terminal (CI logs, files) it prints a
plain line about every ``log_every`` seconds instead, so logs stay readable.
"""
from __future__ import annotations

import sys
import time


def format_seconds(s: float) -> str:
    """``3725.2 -> '1:02:05'``; ``'?'`` for unknown (inf/nan)."""
    if s != s or s == float("inf"):
        return "?"
    s = int(round(s))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m:d}:{sec:02d}"


class Progress:
    """Count of done items with rate and ETA, printed to ``file`` (stderr).

    Parameters
    ----------
    total : int or None
        Number of items expected; None when unknown (no percent, no ETA).
    desc : str
        Label printed in front.
    unit : str
        Name of one item in the rate, e.g. "img" gives "512.3 img/s".
    file : text stream, default sys.stderr
    enabled : bool
        False makes every call a no-op (e.g. ``--quiet``).
    log_every : float
        Seconds between plain lines when ``file`` is not a terminal.
    """

    def __init__(self, total=None, desc="", unit="it", file=None, enabled=True, log_every=10.0):
        self.total, self.desc, self.unit = total, desc, unit
        self.file = file if file is not None else sys.stderr
        self.enabled = enabled
        self.log_every = log_every
        self.tty = bool(getattr(self.file, "isatty", lambda: False)())
        self.n = 0
        self.start = time.perf_counter()
        self._last_print = float("-inf")  # the first update always prints
        self._closed = False

    @property
    def rate(self) -> float:
        """Items per second since the start."""
        dt = time.perf_counter() - self.start
        return self.n / dt if dt > 0 else 0.0

    def line(self) -> str:
        """The status text, e.g. ``'prepare: 512/9469 (5%) 480.1 img/s ETA 0:18'``."""
        rate = self.rate
        head = f"{self.desc}: " if self.desc else ""
        if self.total:
            pct = 100.0 * self.n / self.total
            eta = (self.total - self.n) / rate if rate > 0 else float("inf")
            return (f"{head}{self.n}/{self.total} ({pct:3.0f}%) {rate:.1f} {self.unit}/s "
                    f"ETA {format_seconds(eta)}")
        elapsed = time.perf_counter() - self.start
        return f"{head}{self.n} {self.unit} {rate:.1f} {self.unit}/s {format_seconds(elapsed)}"

    def update(self, n: int = 1):
        """Mark ``n`` more items done; prints when enough time has passed."""
        self.n += n
        if not self.enabled:
            return
        now = time.perf_counter()
        interval = 0.1 if self.tty else self.log_every
        if now - self._last_print >= interval:
            self._last_print = now
            self._emit()

    def _emit(self, final=False):
        if self.tty:
            end = "\n" if final else ""
            self.file.write("\r" + self.line() + "\x1b[K" + end)
        else:
            self.file.write(self.line() + "\n")
        self.file.flush()

    def close(self):
        """Print the final line (always, so logs show the total and the rate)."""
        if self._closed:
            return
        self._closed = True
        if self.enabled:
            self._emit(final=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
