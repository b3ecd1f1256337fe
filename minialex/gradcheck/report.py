"""What a gradient check reports: per-tensor results, findings, the whole report.

Plain data, shared by ``core.py`` (which fills it) and ``diagnose.py``
(which adds findings); neither of those imports the other's internals.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class TensorCheck:
    """Result for one tensor (``dx``, a parameter, or ``out`` against a reference)."""

    name: str
    shape: tuple
    max_rel_error: float
    worst_index: tuple
    passed: bool
    analytic_at_worst: float = 0.0
    numeric_at_worst: float = 0.0
    worst: list = field(default_factory=list)   # up to 3 (index, yours, numeric), worst first

    def where(self, idx=None):
        """Human-readable location of an entry, the worst by default (channel/position for 4-D)."""
        idx = self.worst_index if idx is None else idx
        if len(self.shape) == 4 and len(idx) == 4:
            axes = ("f", "c", "kh", "kw") if self.name in ("w", "dw") else ("n", "c", "h", "w")
            return " ".join(f"{a}={i}" for a, i in zip(axes, idx))
        return str(idx)


@dataclass
class Diagnosis:
    """One plain-English finding about a check.

    ``code`` is stable, for tests and autograders ("pool_overlap",
    "lrn_window_edges", "scale_factor", "kink", "float32", ...); ``message``
    names what to check. ``unreliable`` marks findings that make the verdict
    itself untrustworthy (float32 arithmetic, an input sitting on a kink).
    """

    code: str
    tensor: str
    message: str
    unreliable: bool = False

    def __str__(self):
        return f"[{self.code}] {self.tensor}: {self.message}"


@dataclass
class GradReport:
    """Outcome of a gradient check: one ``TensorCheck`` per tensor.

    ``forward`` holds the forward pass against ``reference=`` (None without
    one); ``diagnoses`` what ``diagnose.py`` found.
    """

    layer: str
    threshold: float
    tensors: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    problems: list = field(default_factory=list)    # not a tensor mismatch: "backward modified dout in place", ...
    forward: TensorCheck | None = None
    diagnoses: list = field(default_factory=list)

    @property
    def passed(self):
        ok = all(t.passed for t in self.tensors) and not self.problems
        return ok and (self.forward is None or self.forward.passed)

    @property
    def max_error(self):
        """Largest gradient error (the forward mismatch is ``forward.max_rel_error``)."""
        return max((t.max_rel_error for t in self.tensors), default=0.0)

    @property
    def codes(self):
        """The diagnosis codes, e.g. ``["pool_overlap"]``."""
        return [d.code for d in self.diagnoses]

    @property
    def reliable(self):
        """False when float32 arithmetic or a kink makes the verdict untrustworthy."""
        return not any(d.unreliable for d in self.diagnoses)

    def hints(self):
        """Diagnosis messages, each naming its tensor, most specific first, no repeats."""
        return list(dict.fromkeys(f"{d.tensor}: {d.message}" for d in self.diagnoses))

    def __getitem__(self, name):
        for t in self.tensors + ([self.forward] if self.forward else []):
            if t.name == name:
                return t
        raise KeyError(name)

    def __str__(self):
        verdict = "PASS" if self.passed else "FAIL"
        if not self.reliable:
            verdict += " (UNRELIABLE, see below)"
        lines = [f"gradient check of {self.layer} (float64, threshold {self.threshold:.0e}): {verdict}"]
        rows = self.tensors + ([self.forward] if self.forward else [])
        w = max([len(t.name) for t in rows] + [6])
        lines.append(f"  {'tensor':<{w}}  {'shape':<18} {'max rel err':>11}  {'worst at':<26} result")
        for t in rows:
            label = t.name
            lines.append(
                f"  {label:<{w}}  {str(t.shape):<18} {t.max_rel_error:11.2e}  {t.where():<26} "
                f"{'ok' if t.passed else 'FAIL'}"
            )
            if not t.passed and t.worst:
                other = "reference" if t is self.forward else "numeric"
                for idx, mine, theirs in t.worst:
                    lines.append(f"  {'':<{w}}  at {t.where(idx)}: yours {mine:.6g}, {other} {theirs:.6g}")
        if self.forward is not None:
            lines.append("  (out = your forward pass against the reference on the same inputs and params)")
        lines += [f"  FAIL: {m}" for m in self.problems]
        lines += [f"  note: {n}" for n in self.notes]
        for d in self.diagnoses:
            tag = "unreliable" if d.unreliable else "hint"
            lines.append(f"  {tag} [{d.code}] {d.tensor}: {d.message}")
        return "\n".join(lines)




@dataclass
class CheckContext:
    """Everything ``diagnose.py`` may look at: the arrays, both gradients, the closure."""

    kind: str                   # "lrn", "pool", "conv", "relu", "softmax", "col2im" or "generic"
    info: dict                  # hyper-parameters: size, kernel_size, stride, padding, groups, ...
    f: object                   # f() -> scalar, closes over ``arrays``
    arrays: dict                # tensor name ("dx", "w", ...) -> the float64 array it differentiates
    analytic: dict              # tensor name -> analytic gradient (float64)
    numeric: dict               # tensor name -> centred-difference gradient
    dout: object                # the upstream gradient used
    threshold: float
    eps: float
    input_dtypes: dict          # tensor name -> dtype the caller passed
    out_dtype: object = None    # dtype of the forward output
    out: object = None          # the forward output (float64 copy)
    ref_out: object = None      # the reference's forward output, if any
    layer: object = None
    reference: object = None    # a layer or forward function computing the same thing
    extra: dict = field(default_factory=dict)   # e.g. labels for a loss


