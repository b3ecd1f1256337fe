"""Errors a user can cause, and how the command lines report them: one line, no traceback.

    raise CheckpointError(f"{path}: truncated or not a zip archive (...)")   # library code
    sys.exit(run_cli(_main, argv))                                            # a command line

Library modules raise ``UserError`` (or a subclass, or a plain ``ValueError``)
with a message that names the bad input and what was expected. The command
lines (``train``, ``evaluate``, ``viz``, ``data``) run their body through
``run_cli``, which turns every failure into one ``error: ...`` line on stderr
and an exit code:

    0    done                          2    bad input (options, files, folders, checkpoints)
    1    out of memory, disk full, or an internal error (a bug: please report it)
    130  interrupted (Ctrl-C, SIGTERM)  (3 is the trainer's "diverged", see train.py)

``--debug`` on any of those command lines, or ``MINIALEX_DEBUG=1`` in the
environment, re-raises instead, so Python prints the full traceback.
"""
from __future__ import annotations

import argparse
import errno
import os
import sys

DEBUG_ENV = "MINIALEX_DEBUG"
DEBUG_HINT = "--debug or MINIALEX_DEBUG=1 shows the traceback"


class UserError(ValueError):
    """Bad input from the user: the message is one line naming the input and what was expected.

    A ValueError, so callers that catch ValueError (and older tests) still do.
    """


class CheckpointError(UserError):
    """A checkpoint file that cannot be used: corrupt, truncated, foreign, or for another net."""


class DataError(UserError):
    """A data set or folder that cannot be used (empty class folder, wrong image size, ...)."""


class RunExistsError(UserError):
    """A run directory already holds a run and neither --resume nor --overwrite was given."""


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (``prog: error: ...``) instead of the whole usage block."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {one_line(message)} (--help lists the options)\n")


def int_at_least(name, minimum, what=None):
    """argparse type: an integer >= ``minimum``; a bad value names the option, what it must be and the value.

    ``what`` words the requirement (default ``"an integer >= MINIMUM"``).
    """
    what = what or f"an integer >= {minimum}"

    def parse(s):
        try:
            v = int(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be {what}, got {s!r}") from None
        if v < minimum:
            raise argparse.ArgumentTypeError(f"{name} must be {what}, got {v}")
        return v
    return parse


def positive_int(name):
    """argparse type: an integer >= 1 ("NAME must be a positive integer, got ...")."""
    return int_at_least(name, 1, "a positive integer")


def debug_requested(argv=None):
    """True when ``--debug`` is among the arguments or MINIALEX_DEBUG is set (not "", "0")."""
    argv = sys.argv[1:] if argv is None else argv
    return "--debug" in argv or os.environ.get(DEBUG_ENV, "") not in ("", "0")


def one_line(text):
    """Collapse a message onto one line (newlines and runs of spaces become single spaces)."""
    return " ".join(str(text).split())


def describe(exc):
    """``(message, exit code)`` for an exception escaping a command line."""
    if isinstance(exc, KeyboardInterrupt):
        return (one_line(exc) or "interrupted (Ctrl-C): stopped before finishing; files written earlier are kept", 130)
    text = one_line(exc)
    if isinstance(exc, MemoryError) or "out of memory" in text.lower() or "ALLOC_FAILED" in text:
        detail = text or "MemoryError"           # numpy, CuPy (a MemoryError), cuBLAS/cuDNN status errors
        return (f"out of memory ({detail}); lower --batch-size (or --limit) and run again", 1)
    if isinstance(exc, UnicodeError):        # a ValueError, but a file's bytes, not an option
        return (f"cannot decode text ({one_line(exc)})", 2)
    if isinstance(exc, ValueError):          # UserError and the library's plain ValueErrors
        return (one_line(exc), 2)
    if isinstance(exc, OSError):
        what = exc.strerror or one_line(exc) or type(exc).__name__
        where = f": {exc.filename}" if exc.filename is not None else ""
        where += f" -> {exc.filename2}" if getattr(exc, "filename2", None) is not None else ""
        if exc.errno == errno.ENOSPC:
            return (f"disk full{where}; free some space and run again (--resume continues a run)", 1)
        if exc.errno == errno.ELOOP:
            return (f"symbolic link loop{where}: the link points back at itself; remove or fix it", 2)
        return (f"{what}{where}", 2)
    return (f"internal error, {type(exc).__name__}: {one_line(exc)} (a bug in minialex? {DEBUG_HINT}; "
            "please report it)", 1)


def run_cli(main, argv=None, prog=None):
    """Run ``main(argv)`` and turn any failure into one ``error:`` line and an exit code.

    ``--debug`` is removed from ``argv`` before ``main`` sees it. SystemExit
    (argparse's usage errors, exit code 2) passes through unchanged.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = debug_requested(argv)
    argv = [a for a in argv if a != "--debug"]
    if debug:
        return main(argv)
    try:
        return main(argv)
    except SystemExit:
        raise
    except BaseException as e:               # noqa: B902 -- KeyboardInterrupt too: one line, exit 130
        message, code = describe(e)
        print(f"{prog + ': ' if prog else ''}error: {message}", file=sys.stderr, flush=True)
        return code
