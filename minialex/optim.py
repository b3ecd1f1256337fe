"""Stochastic gradient descent exactly as Sec. 5, and learning-rate schedules.

    opt = SGD(model, lr=0.01, momentum=0.9, weight_decay=5e-4)
    sched = ReduceOnPlateau(opt, patience=2)
    for epoch in ...:
        for x, y in batches:
            loss.forward(model.forward(x), y); model.backward(loss.backward())
            opt.step()                       # or opt.step(model.named_grads())
        sched.step(val_error)                # lr /= 10 when val error stops improving

Paper, Sec. 5 (batch 128, momentum 0.9, weight decay 0.0005):

    v_{i+1} := 0.9 v_i - 0.0005 eps w_i - eps <dL/dw>_{D_i}
    w_{i+1} := w_i + v_{i+1}

Weight decay sits *inside* the velocity, multiplied by the learning rate, as
written; this is neither "L2 added to the loss then momentum" in PyTorch's
form (v = m v + g + wd w; w -= lr v) nor decoupled (AdamW-style) decay, though
the first differs only by where eps is applied. The learning rate starts at
0.01 and is divided by 10 when the validation error stops improving, three
times in all.
"""
from __future__ import annotations

from .backend import device_of, get_array_module, kernels_choice


def _named(items, what):
    """(name, array) pairs from a model (``named_params``/``named_grads``), a dict or an iterable."""
    if hasattr(items, "named_params") and what == "params":
        items = items.named_params()
    elif hasattr(items, "named_grads") and what == "grads":
        items = items.named_grads()
    elif isinstance(items, dict):
        items = items.items()
    return list(items)


def _layer_of(name):
    """"local3.w" -> "local3"; "tower0.conv1.w" -> "tower0.conv1"; a name without a dot is its own layer."""
    return name.rsplit(".", 1)[0]


def _is_bias(name, w):
    """A bias: a 1-D parameter, or one named "<layer>.b" (a locally connected layer's biases are
    (F, H', W'), one per output position)."""
    return w.ndim == 1 or name.rsplit(".", 1)[-1] == "b"


class SGD:
    """Momentum SGD with weight decay inside the velocity (Sec. 5).

    Parameters
    ----------
    params : model, dict or iterable of (name, array)
        Anything with ``named_params()`` (e.g. ``AlexNet``), or name -> array
        pairs. The arrays are updated **in place**: the layers keep theirs.
        If a model is given, ``step()`` without arguments reads its grads.
    lr : float
        eps, the learning rate (paper: 0.01 initially). Schedules change it.
    momentum : float
        0.9 in the paper.
    weight_decay : float
        0.0005 in the paper; enters as ``- weight_decay * lr * w``.
    decay_bias : bool
        True (the paper's rule is written for every parameter w). False skips
        decay on biases (1-D parameters, and any named "<layer>.b", such as a
        locally connected layer's (F, H', W') biases): the "no bias decay" trick of Bag of
        Tricks (He et al. 2019), beyond the paper.
    layer_decay : dict layer name -> float, optional
        A weight decay per layer, replacing ``weight_decay`` for the
        parameters of the layers it names; a parameter's layer is its name
        without the last ``.part`` ("local3.w" -> "local3"). cuda-convnet's
        per-layer weight costs (``wc``, inside the velocity times the
        learning rate as here) are this: ``{"conv1": 0, "local3": 0.004}``.
        The paper has one decay for all layers. ``decay_bias`` still applies.

    State
    -----
    velocity : dict name -> array, same shape, dtype and array module (NumPy or
        CuPy) as the parameter; starts at 0.
    """

    def __init__(self, params, lr=0.01, momentum=0.9, weight_decay=5e-4, decay_bias=True, layer_decay=None):
        if lr < 0:
            raise ValueError(f"SGD: lr must be >= 0, got {lr!r}")
        if not 0 <= momentum < 1:
            raise ValueError(f"SGD: momentum must be in [0, 1), got {momentum!r}")
        if weight_decay < 0:
            raise ValueError(f"SGD: weight_decay must be >= 0, got {weight_decay!r}")
        self.model = params if hasattr(params, "named_grads") else None
        self.params = dict(_named(params, "params"))
        if not self.params:
            raise ValueError("SGD: no parameters given")
        self.lr, self.momentum, self.weight_decay = float(lr), float(momentum), float(weight_decay)
        self.decay_bias = bool(decay_bias)
        self.layer_decay = self._check_layer_decay(layer_decay)
        # On CuPy arrays the update runs as one CUDA kernel unless MINIALEX_KERNELS=reference:
        # chosen once here, like the layers' kernels (create the optimizer after moving the model).
        self.fused = kernels_choice() == "fast"
        self.velocity = {}
        for name, w in self.params.items():
            xp = get_array_module(w)
            with device_of(w):                         # on w's GPU (two towers: two GPUs)
                self.velocity[name] = xp.zeros_like(w)
        self.steps = 0

    def _check_layer_decay(self, layer_decay):
        """{layer: float} checked against the parameters' layers; raises ValueError naming the bad entry."""
        layer_decay = dict(layer_decay or {})
        layers = sorted({_layer_of(n) for n in self.params})
        for layer, wd in layer_decay.items():
            if layer not in layers:
                raise ValueError(f"SGD: layer_decay names layer {layer!r}, which has no parameters; "
                                 f"expected one of {layers}")
            if not float(wd) >= 0:
                raise ValueError(f"SGD: layer_decay[{layer!r}] must be >= 0, got {wd!r}")
        return {k: float(v) for k, v in layer_decay.items()}

    def decay_of(self, name):
        """The weight decay that parameter ``name`` gets: its layer's, or ``weight_decay``; 0 for
        bias when ``decay_bias`` is False."""
        if not self.decay_bias and _is_bias(name, self.params[name]):
            return 0.0
        return self.layer_decay.get(_layer_of(name), self.weight_decay)

    def step(self, grads=None):
        """One update of every parameter, in place.

        ``grads``: name -> gradient pairs (a dict, an iterable, or a model's
        ``named_grads()``); ``None`` reads them from the model given at
        construction. Every parameter must have a gradient of its shape.

        Per parameter, in this order (the bit-for-bit test repeats it; on
        CuPy arrays ``_cuda.sgd_update`` does the same in one kernel):
            v = momentum * v
            v = v - (weight_decay * lr) * w
            v = v - lr * g
            w = w + v
        """
        if grads is None:
            if self.model is None:
                raise ValueError("SGD.step: no grads given and SGD was not built from a model")
            grads = self.model
        grads = dict(_named(grads, "grads"))
        lr, m = self.lr, self.momentum
        for name, w in self.params.items():
            g = grads.get(name)
            if g is None:
                raise ValueError(f"SGD.step: no gradient for parameter {name!r}; run backward first")
            if tuple(g.shape) != tuple(w.shape):
                raise ValueError(f"SGD.step: gradient of {name!r} has shape {tuple(g.shape)}, "
                                 f"expected {tuple(w.shape)}")
            wd = self.decay_of(name)
            v = self.velocity[name]
            if self.fused and get_array_module(w).__name__ != "numpy":   # GPU: the four lines as one kernel
                from .kernels import _cuda             # (imports CuPy lazily)

                _cuda.sgd_update(w, v, g, m, wd * lr, lr)
                continue
            with device_of(w):                         # w, v, g share w's GPU
                v *= m                                 # 0.9 v_i
                if wd:
                    v -= (wd * lr) * w                 # - 0.0005 eps w_i
                v -= lr * g                            # - eps <dL/dw>
                w += v                                 # w_{i+1} = w_i + v_{i+1}
        self.steps += 1

    def state_dict(self):
        """{"hyper": JSON-able scalars, "velocity": name -> array}; arrays are the live ones."""
        return {"hyper": {"lr": self.lr, "momentum": self.momentum, "weight_decay": self.weight_decay,
                          "decay_bias": self.decay_bias, "layer_decay": dict(self.layer_decay),
                          "steps": self.steps},
                "velocity": dict(self.velocity)}

    def load_state_dict(self, state):
        """Restore hyper-parameters and velocities (copied into the existing arrays).

        Raises ValueError naming the first velocity whose name or shape does not match.
        """
        vel = state["velocity"]
        missing = [n for n in self.velocity if n not in vel]
        extra = [n for n in vel if n not in self.velocity]
        if missing or extra:
            raise ValueError(f"SGD.load_state_dict: velocity names differ: missing {missing}, "
                             f"unexpected {extra}")
        for name, v in self.velocity.items():
            src = vel[name]
            if tuple(src.shape) != tuple(v.shape):
                raise ValueError(f"SGD.load_state_dict: velocity {name!r} has shape {tuple(src.shape)}, "
                                 f"expected {tuple(v.shape)}")
        for name, v in self.velocity.items():
            xp = get_array_module(v)
            with device_of(v):
                v[...] = xp.asarray(vel[name], dtype=v.dtype)
        h = state["hyper"]
        self.lr, self.momentum, self.weight_decay = float(h["lr"]), float(h["momentum"]), float(h["weight_decay"])
        self.decay_bias = bool(h.get("decay_bias", True))
        self.layer_decay = self._check_layer_decay(h.get("layer_decay"))
        self.steps = int(h.get("steps", 0))


class ReduceOnPlateau:
    """Divide the learning rate by 10 when the validation error stops improving (Sec. 5).

    Call ``step(val_error)`` once per evaluation (e.g. per epoch). An error
    counts as an improvement when it is below ``best - threshold``. After
    more than ``patience`` evaluations in a row without improvement the
    optimizer's lr is multiplied by ``factor`` and the count restarts; at most
    ``max_reductions`` times (the paper reduced it three times: 0.01 -> 1e-5).

    Parameters
    ----------
    optimizer : SGD (anything with a float ``lr``)
    factor : float, 0.1 ("divided by 10")
    patience : int, evaluations without improvement before a reduction.
        The paper does not give one (it was done by hand); 2 is our default.
    max_reductions : int, 3 in the paper.
    threshold : float, minimum decrease that counts as an improvement.
    """

    def __init__(self, optimizer, factor=0.1, patience=2, max_reductions=3, threshold=0.0):
        if not 0 < factor < 1:
            raise ValueError(f"ReduceOnPlateau: factor must be in (0, 1), got {factor!r}")
        if patience < 0 or int(patience) != patience:
            raise ValueError(f"ReduceOnPlateau: patience must be a non-negative integer, got {patience!r}")
        self.optimizer = optimizer
        self.factor, self.patience = float(factor), int(patience)
        self.max_reductions, self.threshold = int(max_reductions), float(threshold)
        self.best = None
        self.bad_evals = 0
        self.reductions = 0

    def step(self, val_error):
        """Record one validation error; return True if the lr was reduced now."""
        val_error = float(val_error)
        if self.best is None or val_error < self.best - self.threshold:
            self.best, self.bad_evals = val_error, 0
            return False
        self.bad_evals += 1
        if self.bad_evals > self.patience and self.reductions < self.max_reductions:
            self.optimizer.lr *= self.factor
            self.reductions += 1
            self.bad_evals = 0
            return True
        return False

    def state_dict(self):
        """JSON-serialisable state."""
        return {"kind": "ReduceOnPlateau", "factor": self.factor, "patience": self.patience,
                "max_reductions": self.max_reductions, "threshold": self.threshold,
                "best": self.best, "bad_evals": self.bad_evals, "reductions": self.reductions}

    def load_state_dict(self, state):
        _check_kind(self, state)
        self.factor, self.patience = float(state["factor"]), int(state["patience"])
        self.max_reductions, self.threshold = int(state["max_reductions"]), float(state["threshold"])
        self.best = None if state["best"] is None else float(state["best"])
        self.bad_evals, self.reductions = int(state["bad_evals"]), int(state["reductions"])


class StepDecay:
    """Multiply the learning rate by ``gamma`` every ``step_size`` calls to ``step()``.

    A fixed-timetable stand-in for the paper's manual schedule, for runs
    without a validation set: e.g. 90 epochs with step_size=30, gamma=0.1.
    ``max_reductions`` (None: unlimited) caps the number of reductions.
    """

    def __init__(self, optimizer, step_size, gamma=0.1, max_reductions=None):
        if step_size < 1 or int(step_size) != step_size:
            raise ValueError(f"StepDecay: step_size must be a positive integer, got {step_size!r}")
        if not 0 < gamma <= 1:
            raise ValueError(f"StepDecay: gamma must be in (0, 1], got {gamma!r}")
        self.optimizer = optimizer
        self.step_size, self.gamma = int(step_size), float(gamma)
        self.max_reductions = None if max_reductions is None else int(max_reductions)
        self.count = 0
        self.reductions = 0

    def step(self, *_):
        """Count one epoch (arguments, e.g. a validation error, are ignored); True if lr changed."""
        self.count += 1
        if self.count % self.step_size == 0 and (self.max_reductions is None
                                                 or self.reductions < self.max_reductions):
            self.optimizer.lr *= self.gamma
            self.reductions += 1
            return True
        return False

    def state_dict(self):
        return {"kind": "StepDecay", "step_size": self.step_size, "gamma": self.gamma,
                "max_reductions": self.max_reductions, "count": self.count, "reductions": self.reductions}

    def load_state_dict(self, state):
        _check_kind(self, state)
        self.step_size, self.gamma = int(state["step_size"]), float(state["gamma"])
        self.max_reductions = None if state["max_reductions"] is None else int(state["max_reductions"])
        self.count, self.reductions = int(state["count"]), int(state["reductions"])


def _check_kind(sched, state):
    kind = state.get("kind")
    if kind != type(sched).__name__:
        raise ValueError(f"{type(sched).__name__}.load_state_dict: state is for {kind!r}, "
                         f"expected {type(sched).__name__!r}")
