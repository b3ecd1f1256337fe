"""Model parallelism as in Sec. 3.2: AlexNet's two towers on two devices.

    model = AlexNet(AlexNetConfig.paper())            # towers=2: the paper's net
    net = TwoTowerAlexNet(model, devices=(0, 1), xp=cupy)
    logits = net.forward(x)                           # (N, 1000) on devices[0]
    dx = net.backward(dlogits)                        # fills every tower layer's grads
    net.bytes_per_step()                              # what crossed between the towers
    net.store_into(model)                             # tower params -> unsplit names, e.g. to save

"Half of the kernels (or neurons) on each GPU, [and] the GPUs communicate
only in certain layers" (Sec. 3.2). Here each tower owns half of every conv
layer's kernels and half of fc6's and fc7's neurons; fc8, the 1000-way
output layer, is shared (``AlexNet``'s tower bookkeeping) and lives on
``devices[0]``. Activations cross between the towers only where the net
connects them:

==========  ===================================================  =================
connection  forward                                              backward
==========  ===================================================  =================
conv3       each tower receives the other's pool2 maps            the gradient of
            (conv3 sees all 256 input maps)                       those maps returns
fc6, fc7    each tower receives the other's half of the input     likewise
fc8         tower 1's fc7 half goes to ``devices[0]``             and its gradient back
lrn1, lrn2  ``size // 2`` boundary maps each way (see below)      likewise
==========  ===================================================  =================

conv2, conv4 and conv5 (``groups=2`` in the unsplit net) become ordinary
per-tower convolutions that read only their own tower's maps: nothing
crosses there. ReLU, max-pool and flatten act per tower.

**LRN at the tower boundary (a choice, docs/deviations.md).** The unsplit
``AlexNet`` normalises across all 96 (256) maps of conv1 (conv2), so the
window of map 47 reaches maps 48 and 49 on the other tower. To give *the
same numbers* as the unsplit net, each tower here receives the ``size // 2``
neighbouring maps from the other tower (a "halo"): 2 maps each way for n=5.
The paper's cuda-convnet net normalised within each GPU, which would need
no exchange; the halo is counted separately so the figure is visible.

**Bytes.** Every transfer goes through ``_send``, which adds the array's
``nbytes`` to a per-connection counter whether or not the two device ids
differ: with devices ``(0, 0)`` it counts the bytes that *would* cross, so
``(0, 0)`` and ``(0, 1)`` report the same figures, and the CPU (NumPy, where
device ids are only labels) reports them too. The input batch is copied to
both towers (Sec. 3.2: each GPU reads the images); that copy is reported as
``"input"`` apart from the tower-to-tower traffic.

**Parameters.** Each tower layer owns a copy of its slice of the unsplit
layer's parameters, on its device. ``named_params``/``named_grads`` yield
them as ``"conv1.w@t0"``, ``"conv1.w@t1"``, ... (shared layers keep their
plain name), so an element-wise optimizer (SGD of Sec. 5) updates them
unchanged; ``param_device(name)`` tells on which device to run the update
(on CuPy wrap it in ``with cupy.cuda.Device(d):``). ``store_into(model)``
writes the tower params back into the unsplit model under its own names
(checkpoints), ``load_from(model)`` does the reverse, and ``unsplit_grads()``
returns the gradients under the unsplit names (tests, logging).

Shapes:  x: (N, C, S, S) on the host or any device  ->  logits: (N, K) on devices[0]
Paper:   Sec. 3.2 (two GPUs), Sec. 3.5 / Figure 2 (which layers connect).
"""
from __future__ import annotations

import copy
from collections import OrderedDict
from contextlib import nullcontext

import numpy as np

from .backend import device_of, get_array_module, to_device, to_numpy
from .kernels import accelerate
from .layers import Conv2D, Dropout, Flatten, Linear, LocalResponseNorm

# Counter names, in the order they are printed.
CONNECTIONS_DOC = {
    "input": "the batch to both towers' devices, and tower 1's input gradient back; not tower-to-tower",
    "lrn": "LRN halo: size//2 boundary maps each way (unsplit LRN spans both towers)",
    "conv": "a conv layer that reads both towers' maps (conv3)",
    "fc": "a fully connected layer that reads both towers' neurons (fc6, fc7)",
    "head": "the shared output layer (fc8) on devices[0]",
}


# ----------------------------------------------------------------------------
# --gpus
# ----------------------------------------------------------------------------
def parse_gpus(text, backend="cupy", device_count=None):
    """Parse and validate ``--gpus`` ("0", "0,1", "1,1"): the devices of tower 0 and tower 1.

    Parameters
    ----------
    text : str or None
        Comma-separated CUDA device ids. One id places both towers on that
        device; two ids place tower 0 on the first and tower 1 on the second.
        None means "not given": ``None`` is returned (single-device run).
    backend : "numpy" or "cupy"
        ``--gpus`` needs ``--backend cupy``; with "numpy" it is an error, not ignored.
    device_count : int, optional
        Number of visible CUDA devices. Default: asked from CuPy
        (``minialex.backend.get_backend("cupy")`` raises a clear error first
        when CuPy or a device is missing). Tests pass it to run without a GPU.

    Returns
    -------
    (d0, d1) : tuple of two ints, or None when ``text`` is None.

    Raises
    ------
    ValueError
        Naming the bad value and what is expected: not integers, negative,
        more than two ids, ``--gpus`` with backend "numpy", or an id that
        does not exist (the message gives the number of visible devices).
    RuntimeError
        From ``get_backend("cupy")`` when CuPy or a CUDA device is missing.
    """
    if text is None:
        return None
    if backend != "cupy":
        raise ValueError(f"--gpus {text!r} needs --backend cupy, got --backend {backend!r}; "
                         "the NumPy backend runs on the CPU only")
    parts = [p.strip() for p in str(text).split(",")]
    if not 1 <= len(parts) <= 2 or any(p == "" for p in parts):
        raise ValueError(f"--gpus must be one or two comma-separated device ids like '0' or '0,1', "
                         f"got {text!r}")
    try:
        ids = [int(p) for p in parts]
    except ValueError:
        raise ValueError(f"--gpus must be integer device ids like '0' or '0,1', got {text!r}") from None
    if any(i < 0 for i in ids):
        raise ValueError(f"--gpus device ids must be >= 0, got {text!r}")
    if device_count is None:
        from .backend import get_backend

        cp = get_backend("cupy")               # clear RuntimeError without CuPy or a device
        device_count = cp.cuda.runtime.getDeviceCount()
    for i in ids:
        if i >= device_count:
            raise ValueError(f"--gpus names CUDA device {i}, but only {device_count} device(s) are "
                             f"visible (ids 0..{device_count - 1}); check `nvidia-smi` and "
                             "CUDA_VISIBLE_DEVICES")
    return (ids[0], ids[-1])


# ----------------------------------------------------------------------------
# Stages: the unsplit layer list regrouped into per-tower work and connections
# ----------------------------------------------------------------------------
class _Stage:
    """One step of the tower net: its layers (one per tower, or one shared) and how activations
    and gradients move through them. ``forward(net, acts, train)`` takes and returns the two
    towers' activations; ``backward(net, grads)`` the two towers' gradients. ``net`` is the
    ``TwoTowerAlexNet``: its devices and its counted ``_send``."""

    def __init__(self, name, layers):
        self.name, self.layers = name, layers          # one layer per tower

    def param_layers(self):
        """(tower, layer) pairs whose parameters the optimizer updates; tower None: shared."""
        return [(t, layer) for t, layer in enumerate(self.layers) if layer.params]

    def backward(self, net, grads):
        return [net._run(t, self.layers[t].backward, grads[t]) for t in (0, 1)]


class _PerTower(_Stage):
    """A layer applied to each tower's own activations; nothing crosses."""

    def forward(self, net, acts, train):
        return [net._run(t, self.layers[t].forward, acts[t], train) for t in (0, 1)]


class _Connect(_Stage):
    """A conv/FC layer whose input is both towers' activations, concatenated on
    axis 1; each tower computes its own output kernels/neurons."""

    def __init__(self, name, layers, counter):
        super().__init__(name, layers)
        self.counter = counter
        self.sizes = None                              # input channels per tower, set on forward

    def forward(self, net, acts, train):
        self.sizes = [a.shape[1] for a in acts]
        out = []
        for t in (0, 1):
            with net._on(t):
                parts = [acts[s] if s == t else net._send(acts[s], t, self.counter) for s in (0, 1)]
                inp = net.xp.concatenate(parts, axis=1)      # (N, C0 + C1, ...) tower 0's first
                out.append(self.layers[t].forward(inp, train=train))
        return out

    def backward(self, net, grads):
        c0 = self.sizes[0]
        pieces = [[None, None], [None, None]]                # pieces[s][t]: dL/d(acts[s]) from tower t
        for t in (0, 1):
            with net._on(t):
                dinp = self.layers[t].backward(grads[t])     # (N, C0 + C1, ...)
            own = (dinp[:, :c0], dinp[:, c0:])
            for s in (0, 1):
                pieces[s][t] = own[s] if s == t else net._send(own[s], s, self.counter)
        out = []
        for s in (0, 1):
            with net._on(s):
                out.append(pieces[s][0] + pieces[s][1])
        return out


class _Head(_Stage):
    """The shared output layer on devices[0], fed by both towers: forward returns the logits,
    backward takes dL/dlogits and returns the two towers' gradients."""

    def __init__(self, name, layer):
        super().__init__(name, [layer])
        self.sizes = None

    def param_layers(self):
        return [(None, self.layers[0])]

    def forward(self, net, acts, train):
        self.sizes = [a.shape[1] for a in acts]
        with net._on(0):
            inp = net.xp.concatenate([acts[0], net._send(acts[1], 0, "head")], axis=1)  # (N, D)
            return self.layers[0].forward(inp, train=train)

    def backward(self, net, dlogits):
        with net._on(0):
            dinp = self.layers[0].backward(dlogits)                 # (N, D0 + D1)
        d0 = self.sizes[0]
        return [dinp[:, :d0], net._send(dinp[:, d0:], 1, "head")]


class _HaloLRN(_Stage):
    """LRN per tower, on its maps plus ``size // 2`` neighbouring maps of the other tower."""

    def __init__(self, name, layers, half):
        super().__init__(name, layers)
        self.half = half
        self.meta = None

    def forward(self, net, acts, train):
        c0, c1 = acts[0].shape[1], acts[1].shape[1]
        h0, h1 = min(self.half, c1), min(self.half, c0)       # halo maps tower 0 / 1 receives
        self.meta = (c0, c1, h0, h1)
        out = []
        with net._on(0):
            ext = acts[0] if h0 == 0 else net.xp.concatenate(
                [acts[0], net._send(acts[1][:, :h0], 0, "lrn")], axis=1)          # (N, c0 + h0, H, W)
            out.append(self.layers[0].forward(ext, train=train)[:, :c0])          # (N, c0, H, W)
        with net._on(1):
            ext = acts[1] if h1 == 0 else net.xp.concatenate(
                [net._send(acts[0][:, c0 - h1:], 1, "lrn"), acts[1]], axis=1)     # (N, h1 + c1, H, W)
            out.append(self.layers[1].forward(ext, train=train)[:, h1:])          # (N, c1, H, W)
        return out

    def backward(self, net, grads):
        xp = net.xp
        c0, c1, h0, h1 = self.meta
        N, _, H, W = grads[0].shape
        with net._on(0):
            g = grads[0] if h0 == 0 else xp.concatenate(
                [grads[0], xp.zeros((N, h0, H, W), grads[0].dtype)], axis=1)      # halo outputs unused
            d0 = self.layers[0].backward(g)                                        # (N, c0 + h0, H, W)
        with net._on(1):
            g = grads[1] if h1 == 0 else xp.concatenate(
                [xp.zeros((N, h1, H, W), grads[1].dtype), grads[1]], axis=1)
            d1 = self.layers[1].backward(g)                                        # (N, h1 + c1, H, W)
        with net._on(0):
            dx0 = d0[:, :c0].copy()
            if h1:
                dx0[:, c0 - h1:] += net._send(d1[:, :h1], 0, "lrn")               # tower 1 used our maps
        with net._on(1):
            dx1 = d1[:, h1:].copy()
            if h0:
                dx1[:, :h0] += net._send(d0[:, c0:], 1, "lrn")
        return [dx0, dx1]


class _TowerDropout(_Stage):
    """Dropout per tower with one mask drawn for the whole layer by the unsplit
    layer's rng, so the split net drops exactly the units the unsplit one would."""

    def __init__(self, name, source, drawer, layers, slices):
        super().__init__(name, layers)
        self.source, self.slices = source, slices
        self.drawer = drawer        # source's twin on the towers' device, sharing its rng

    def forward(self, net, acts, train):
        src = self.source
        if train and src.p > 0:
            N = acts[0].shape[0]
            D = sum(a.shape[1] for a in acts)
            if src.frozen_mask is not None:
                mask = to_numpy(src.frozen_mask)
            else:
                # The unsplit layer draws the whole (N, D) mask from its rng, as the
                # unsplit net would (on tower 0's GPU for CuPy); a broadcast dummy
                # gives it the shape, dtype and device for free.
                with net._on(0):
                    dummy = net.xp.broadcast_to(net.xp.zeros((), dtype=acts[0].dtype), (N, D))
                    mask = self.drawer._draw_mask(dummy)                          # (N, D) 0/1
            for t, (a, b) in enumerate(self.slices):
                with net._on(t):
                    self.layers[t].freeze(net._move(mask[:, a:b], t))               # (N, b-a)
        return [net._run(t, self.layers[t].forward, acts[t], train) for t in (0, 1)]


class TwoTowerAlexNet:
    """AlexNet's two towers placed on two devices, with counted transfers (Sec. 3.2).

    Parameters
    ----------
    model : AlexNet
        A model with ``config.towers == 2``. Its parameters are copied (sliced)
        into the towers; ``model`` itself is not modified.
    devices : (int, int)
        Device ids of tower 0 and tower 1; (0, 0) runs both on one device.
        With ``xp=numpy`` they are labels only.
    xp : module, optional
        ``numpy`` or ``cupy``; default: where ``model``'s parameters live.

    Attributes
    ----------
    stages : list
        The unsplit layer sequence regrouped into per-tower stages.
    bytes : OrderedDict
        Bytes moved per connection (keys of ``CONNECTIONS_DOC``) since
        ``reset_bytes()``; ``bytes_per_step()`` is the last step's.

    Shapes:  x: (N, C, S, S)  ->  logits: (N, num_classes) on devices[0]
    Paper:   Sec. 3.2, Figure 2.
    """

    def __init__(self, model, devices=(0, 0), xp=None):
        cfg = getattr(model, "config", None)
        if cfg is None or cfg.towers != 2:
            raise ValueError("TwoTowerAlexNet: needs an AlexNet built with towers=2, got "
                             f"towers={getattr(cfg, 'towers', None)!r}")
        devices = tuple(int(d) for d in devices)
        if len(devices) != 2 or min(devices) < 0:
            raise ValueError(f"TwoTowerAlexNet: devices must be two ids >= 0, got {devices!r}")
        self.model = model               # keeps the dropout rngs and the config
        self.devices = devices
        self.xp = model.xp if xp is None else xp
        self.bytes = OrderedDict((k, 0) for k in CONNECTIONS_DOC)
        self._step_bytes = None
        self.stages = self._build(model)

    # ------------------------------------------------------------------
    # the parts of AlexNet's interface a training loop uses
    # ------------------------------------------------------------------
    @property
    def config(self):
        return self.model.config

    @property
    def input_shape(self):
        return self.model.input_shape

    def num_params(self):
        """Learned parameters, counted once (fc8 is shared): equals the unsplit model's."""
        return int(sum(int(np.prod(p.shape)) for _, p in self.named_params()))

    def rng_state(self):
        """The dropout rngs are the unsplit model's (see ``_TowerDropout``)."""
        return self.model.rng_state()

    def set_rng_state(self, state):
        self.model.set_rng_state(state)

    def kernel_paths(self):
        """{stage name: the path its layers run} ("numba", "cuda", "reference", ...); tower 0's layer."""
        return {st.name: st.layers[0].kernel_path for st in self.stages}

    def predict(self, x):
        """Logits in test mode, without keeping backward caches. Shapes: (N, C, S, S) -> (N, K)."""
        out = self.forward(x, train=False)
        for st in self.stages:
            for layer in st.layers:
                layer.cache = None
        return out

    # ------------------------------------------------------------------
    # devices and transfers
    # ------------------------------------------------------------------
    def _on(self, t):
        """Context manager: make tower ``t``'s device current (no-op on NumPy)."""
        if self.xp is np:
            return nullcontext()
        return self.xp.cuda.Device(self.devices[t])

    def _move(self, a, t):
        """``a`` on tower ``t``'s device. CuPy copies between devices only from contiguous
        arrays, so a strided slice is first made contiguous where it lives."""
        if self.xp is np:
            return a
        if type(a).__module__.startswith("cupy"):
            with a.device:
                a = self.xp.ascontiguousarray(a)
        return to_device(a, self.xp, self.devices[t])

    def _put(self, a, t):
        """A private copy of parameter ``a`` on tower ``t``'s device (not counted: set-up)."""
        with self._on(t):
            out = self._move(a, t)
            if out is a or (self.xp is np and np.shares_memory(out, a)):
                out = out.copy()
        return out

    def _send(self, a, t, counter):
        """Move activation ``a`` to tower ``t``'s device; count ``a.nbytes`` under ``counter``.

        Counted even when the source already is that device: the count is the
        logical tower-to-tower traffic, the same for devices (0, 0) and (0, 1).
        """
        self.bytes[counter] += int(a.nbytes)
        return self._move(a, t)

    def reset_bytes(self):
        for k in self.bytes:
            self.bytes[k] = 0

    def bytes_per_step(self):
        """{connection: bytes} of the last forward+backward (see ``CONNECTIONS_DOC``),
        plus "between_towers": the sum of everything but "input".

        A test-mode forward (``predict``) in between does not change it; before
        the first backward it holds what the forward passes have counted so far.
        """
        src = self._step_bytes if self._step_bytes is not None else self.bytes
        out = OrderedDict(src)
        out["between_towers"] = sum(v for k, v in src.items() if k != "input")
        return out

    def report(self):
        """A short text table of ``bytes_per_step()`` in MiB, for the training log."""
        b = self.bytes_per_step()
        lines = [f"bytes moved per step, devices {self.devices} (Sec. 3.2):"]
        for k, v in b.items():
            what = CONNECTIONS_DOC.get(k, "total between the towers, forward + backward")
            lines.append(f"  {k:>14}: {v / 2**20:9.3f} MiB  {what}")
        return "\n".join(lines)

    # ------------------------------------------------------------------
    # building the stages
    # ------------------------------------------------------------------
    def _split(self, layer, t):
        """Tower t's part of ``layer`` (``Layer.split_for_tower``), its parameters copied to t's device."""
        part = layer.split_for_tower(t)
        part.params = {k: self._put(v, t) for k, v in part.params.items()}
        return part

    def _build(self, model):
        stages = []
        replicated = True            # the input image: every tower has all of it
        fc_slices = None             # tower slices of the last hidden FC (for dropout)
        for name, layer in zip(model.names, model.layers):
            if isinstance(layer, Conv2D):
                if layer.groups not in (1, 2) or layer.towers != 2:
                    raise ValueError(f"TwoTowerAlexNet: {name} has groups={layer.groups}, towers={layer.towers}; "
                                     "expected groups 1 or 2 and towers=2")
                own = layer.groups == 2
                parts = [self._split(layer, t) for t in (0, 1)]
                if own or replicated:
                    stages.append(_PerTower(name, parts))
                else:
                    stages.append(_Connect(name, parts, "conv"))
                replicated = False
            elif isinstance(layer, Linear) and layer.towers == 2:
                parts = [self._split(layer, t) for t in (0, 1)]
                stages.append(_Connect(name, parts, "fc"))
                fc_slices = layer.tower_slices
                replicated = False
            elif isinstance(layer, Linear):
                head = copy.copy(layer)
                head.params = {k: self._put(v, 0) for k, v in layer.params.items()}
                head.grads = {k: None for k in layer.params}
                head.cache = None
                stages.append(_Head(name, head))
            elif isinstance(layer, LocalResponseNorm):
                if layer.groups not in (1, 2):
                    raise ValueError(f"TwoTowerAlexNet: {name} has groups={layer.groups}; expected 1 or 2")
                parts = [copy.deepcopy(layer) for _ in (0, 1)]
                for part in parts:
                    part.groups = 1                                # each part sees one tower's maps
                # groups=2 (lrn_per_tower): each tower normalises alone, nothing crosses.
                stages.append(_HaloLRN(name, parts, 0 if layer.groups == 2 else layer.size // 2))
            elif isinstance(layer, Dropout):
                parts = [Dropout(layer.p, mode=layer.mode, rng=0) for _ in (0, 1)]
                drawer = accelerate(copy.copy(layer), self.xp)     # shallow: the same rng object
                stages.append(_TowerDropout(name, layer, drawer, parts, fc_slices))
            elif layer.params:
                raise ValueError(f"TwoTowerAlexNet: do not know how to split {name} ({type(layer).__name__})")
            else:                     # ReLU, Tanh, MaxPool2D, Flatten: per tower, stateless
                if replicated and not isinstance(layer, Flatten):
                    raise ValueError(f"TwoTowerAlexNet: {name} before the first conv layer is not supported")
                stages.append(_PerTower(name, [copy.deepcopy(layer) for _ in (0, 1)]))
        if not stages or not isinstance(stages[-1], _Head):
            raise ValueError("TwoTowerAlexNet: the model must end in a shared output layer (fc8)")
        for st in stages:                    # the fast twins (or readable layers) for the towers' device
            for layer in st.layers:
                accelerate(layer, self.xp)
        return stages

    # ------------------------------------------------------------------
    # forward / backward
    # ------------------------------------------------------------------
    def forward(self, x, train=True):
        """Logits of the batch; ``train`` turns dropout on (Sec. 4.2).

        Shapes:  x: (N, C, S, S)  ->  (N, num_classes) on devices[0]
        """
        self.reset_bytes()                    # bytes_per_step() keeps the last full step's
        acts = [self._send(x, 0, "input"), self._send(x, 1, "input")]
        for st in self.stages:                # the last, the head, returns the logits
            acts = st.forward(self, acts, train)
        return acts

    def backward(self, dlogits):
        """Backpropagate dL/dlogits (N, K) on devices[0]; fills every tower layer's grads.

        Returns the gradient w.r.t. the input on each tower's device, summed on
        devices[0] (the input is replicated, so its gradient is the sum).
        """
        grads = dlogits
        for st in reversed(self.stages):      # the head takes dL/dlogits, the rest two towers' grads
            grads = st.backward(self, grads)
        dx1 = self._send(grads[1], 0, "input")
        with self._on(0):
            dx = grads[0] + dx1
        self._step_bytes = OrderedDict(self.bytes)
        return dx

    def _run(self, t, fn, *args):
        with self._on(t):
            return fn(*args)

    # ------------------------------------------------------------------
    # parameters
    # ------------------------------------------------------------------
    def _param_layers(self):
        """Yield (unsplit layer name, tower or None, layer) for every layer with params."""
        for st in self.stages:
            for t, layer in st.param_layers():
                yield st.name, t, layer

    def named_params(self):
        """Yield ("conv1.w@t0", array), ... ("fc8.w", array) for every parameter."""
        for name, t, layer in self._param_layers():
            for k, v in layer.params.items():
                yield (f"{name}.{k}" if t is None else f"{name}.{k}@t{t}"), v

    def named_grads(self):
        """Same names as ``named_params``, the gradients of the last backward."""
        for name, t, layer in self._param_layers():
            for k, v in layer.grads.items():
                yield (f"{name}.{k}" if t is None else f"{name}.{k}@t{t}"), v

    def param_device(self, name):
        """Device id holding the parameter ``name`` (as ``named_params`` spells it)."""
        return self.devices[1] if name.endswith("@t1") else self.devices[0]

    def _unsplit(self, which):
        """{unsplit name: NumPy array} of params or grads, tower halves joined."""
        parts, axes = OrderedDict(), {}
        for name, t, layer in self._param_layers():
            src = layer.params if which == "params" else layer.grads
            for k, v in src.items():
                parts.setdefault(f"{name}.{k}", []).append(None if v is None else to_numpy(v))
                axes[f"{name}.{k}"] = layer.tower_axes.get(k)
        out = OrderedDict()
        for key, arrays in parts.items():
            if any(a is None for a in arrays):
                out[key] = None
            elif len(arrays) == 1:
                out[key] = arrays[0]
            else:                                   # the halves, along the axis the layer declares
                out[key] = np.concatenate(arrays, axis=axes[key])
        return out

    def unsplit_params(self):
        """{"conv1.w": (96, 3, 11, 11), ...} as NumPy arrays, the unsplit model's names and shapes."""
        return self._unsplit("params")

    def unsplit_grads(self):
        """Gradients of the last backward under the unsplit model's names and shapes (NumPy)."""
        return self._unsplit("grads")

    def store_into(self, model):
        """Write the tower params into ``model`` (same config) in place, e.g. before a checkpoint."""
        target = dict(model.named_params())
        for key, value in self.unsplit_params().items():
            if key not in target or tuple(target[key].shape) != value.shape:
                raise ValueError(f"store_into: model has no parameter {key} of shape {value.shape}")
            with on_device_of(target[key]):
                xp = get_array_module(target[key])
                target[key][...] = xp.asarray(value, dtype=target[key].dtype)

    def load_from(self, model):
        """Copy ``model``'s params into the towers in place (e.g. after loading a checkpoint)."""
        source = {k: to_numpy(v) for k, v in model.named_params()}
        for name, t, layer in self._param_layers():
            full = model[name]
            for k, v in layer.params.items():
                w = source[f"{name}.{k}"]
                if t is not None:
                    w = full.tower_part(k, w, t)
                if tuple(w.shape) != tuple(v.shape):
                    raise ValueError(f"load_from: {name}.{k} has shape {w.shape}, tower {t} expects {v.shape}")
                with self._on(0 if t is None else t):
                    v[...] = self.xp.asarray(w, dtype=v.dtype)


def transfer_plan(model, batch):
    """Bytes one training step moves per connection, from the layer shapes alone (no run).

    The same figures ``TwoTowerAlexNet.bytes_per_step()`` measures, for any
    batch size, e.g. to print the paper net's traffic before training.
    Paper config, batch 128, float32: see docs/gpu.md.

    Returns an OrderedDict with the keys of ``bytes_per_step()``.
    """
    if model.config.towers != 2:
        raise ValueError(f"transfer_plan: needs towers=2, got towers={model.config.towers}")
    item = np.dtype(model.config.dtype).itemsize
    plan = OrderedDict((k, 0) for k in CONNECTIONS_DOC)
    shapes = [(name, layer, shape) for name, layer, shape in model.layer_shapes()]
    N = int(batch)
    plan["input"] = 3 * N * int(np.prod(model.input_shape)) * item   # x to both towers; dx of tower 1 back
    prev_shape, seen_conv = model.input_shape, False
    for name, layer, shape in shapes:
        half_in = int(np.prod(prev_shape)) // 2 * N * item          # one tower's share of this layer's input
        if isinstance(layer, Conv2D):
            if seen_conv and layer.groups == 1:
                plan["conv"] += 4 * half_in                          # both ways, forward and backward
            seen_conv = True
        elif isinstance(layer, Linear):
            plan["fc" if layer.towers == 2 else "head"] += (4 if layer.towers == 2 else 2) * half_in
        elif isinstance(layer, LocalResponseNorm):
            C, H, W = shape
            h = 0 if layer.groups == 2 else min(layer.size // 2, C // 2)
            plan["lrn"] += 4 * N * h * H * W * item
        prev_shape = shape
    plan["between_towers"] = sum(v for k, v in plan.items() if k != "input")
    return plan


# ``with on_device_of(p): ...`` runs CuPy work on p's device (a no-op for NumPy),
# e.g. an optimizer stepping parameters that live on two GPUs.
on_device_of = device_of
