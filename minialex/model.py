"""AlexNet (Sec. 3.5, Figure 2) built from minialex layers, and its config.

    cfg = AlexNetConfig.paper()          # the ImageNet net: 60,965,224 parameters
    cfg = AlexNetConfig.cifar()          # the same structure for 32x32 CIFAR-10
    model = AlexNet(cfg)
    logits = model.forward(x, train=True)        # x: (N, 3, S, S) -> (N, num_classes)
    dx = model.backward(dlogits)                  # fills every layer's grads
    for name, w in model.named_params(): ...      # "conv1.w", "conv1.b", ...

The model is a ``Sequential`` of named layers

    conv1 relu1 lrn1 pool1  conv2 relu2 lrn2 pool2  conv3 relu3  conv4 relu4
    conv5 relu5 pool5  flatten  fc6 relu6 drop6  fc7 relu7 drop7  fc8

and returns logits: the softmax loss (``SoftmaxCrossEntropy``) stays outside,
as in the paper's "1000-way softmax" feeding the multinomial logistic
regression objective.

Choices where the paper is ambiguous (docs/deviations.md):

* **Input 224 with padding 2 in conv1**, not 227. The paper crops 224x224
  patches (Sec. 4.1; 150,528 input dimensions, 2048 = 32*32*2 patches per
  image), and 224 with an 11x11 stride-4 kernel gives no integer size.
  Padding 2 gives floor((224 + 4 - 11) / 4) + 1 = 55, as in Figure 2, and
  keeps the paper's crop arithmetic intact; 227 (Caffe's choice) would need
  the data pipeline to cut 227-pixel crops the paper never mentions. The last
  row/column of padding is never read (217 / 4 is not an integer), which is
  harmless. conv2 pads 2 and conv3-5 pad 1 so their sizes are 27 and 13.
* **conv1 has 55*55*96 = 290,400 neurons**, not the 253,440 printed in the
  paper; ``summary()`` shows both.
* **towers=1** is the Sec. 3.2 comparison net, "half as many kernels in each
  convolutional layer, trained on one GPU". Following footnote 2 of the
  original paper, the last conv layer and the FC layers are *not* halved (so
  the two nets have about the same number of parameters): 48-128-192-192-256.
* **fc8 is shared** between the towers in the tower bookkeeping: it is one
  1000-way layer whose inputs come from both towers (Figure 2).
* **Dropping a conv layer** (Sec. 7) removes the conv and its nonlinearity
  and LRN; a max-pool that followed it stays, so spatial sizes and fc6 are
  unchanged and only depth differs. Only the middle layers conv2-conv4 can be
  dropped ("removing any of the middle convolutional layers").
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

import numpy as np

from .backend import get_array_module, to_device
from .kernels import accelerate, move
from .layers import (Conv2D, Dropout, Flatten, Linear, LocalResponseNorm, MaxPool2D, ReLU,
                     Sequential, Tanh)

PAPER_BIAS_ONE = ("conv2", "conv4", "conv5", "fc6", "fc7")   # Sec. 5: biases 1 here, 0 elsewhere
INITS = ("paper", "scaled")
ACTIVATIONS = ("relu", "tanh")

# Figure 2 / Sec. 3.5: neurons per layer as printed in the paper (conv1's is
# inconsistent with 55x55x96; see the module docstring).
PAPER_NEURONS = {"conv1": 253_440, "conv2": 186_624, "conv3": 64_896, "conv4": 64_896,
                 "conv5": 43_264, "fc6": 4096, "fc7": 4096, "fc8": 1000}
PAPER_NUM_PARAMS = 60_965_224


@dataclass(frozen=True)
class AlexNetConfig:
    """Every architectural and initialisation choice of AlexNet, with the paper's defaults.

    The defaults are exactly Sec. 3.5 / Sec. 5 (``AlexNetConfig.paper()``).
    Per-layer tuples have one entry per conv layer conv1..conv5.
    """

    # --- input (Sec. 2, 4.1) ---
    input_size: int = 224            # 224x224 crops; conv1 pads 2 to reach 55 (module docstring)
    in_channels: int = 3             # RGB
    # --- conv layers (Sec. 3.5, Figure 2); widths are the two-tower totals ---
    conv_channels: tuple = (96, 256, 384, 384, 256)
    conv_kernels: tuple = (11, 5, 3, 3, 3)
    conv_strides: tuple = (4, 1, 1, 1, 1)
    conv_paddings: tuple = (2, 2, 1, 1, 1)   # paper gives none; Caffe/torchvision-style (PAPER.md note)
    # --- fully connected layers ---
    fc_sizes: tuple = (4096, 4096)   # fc6, fc7 (hidden); fc8 is num_classes
    num_classes: int = 1000          # the 1000-way softmax
    # --- two towers (Sec. 3.2) ---
    towers: int = 2                  # 2: conv2/4/5 use groups=2 (same-GPU connectivity);
                                     # 1: the single-GPU net with half the kernels in conv1-4
    grouped_convs: tuple = (2, 4, 5)  # conv layers that see only their own tower when towers=2
    # --- local response normalisation (Sec. 3.3) ---
    lrn: bool = True                 # False: the Sec. 3.3 ablation
    lrn_after: tuple = (1, 2)        # LRN follows the nonlinearity of conv1 and conv2
    lrn_size: int = 5                # n
    lrn_alpha: float = 1e-4          # alpha
    lrn_beta: float = 0.75           # beta
    lrn_k: float = 2.0               # k
    lrn_alpha_convention: str = "paper"   # "paper": alpha not divided by n; "pytorch": alpha / n
    lrn_per_tower: bool = False      # True: each tower normalises its own maps (the paper's two-GPU code); False: the formula over all N maps (docs/deviations.md, 18)
    # --- max pooling (Sec. 3.4) ---
    pool_kernel: int = 3             # z; 3 with stride 2 overlaps, the Sec. 3.4 ablation uses 2
    pool_stride: int = 2             # s
    pool_after: tuple = (1, 2, 5)    # after LRN1, LRN2 and conv5's nonlinearity
    # --- nonlinearity (Sec. 3.1) ---
    activation: str = "relu"         # "relu" or "tanh" (Figure 1's comparison)
    # --- dropout (Sec. 4.2) ---
    dropout: float = 0.5             # probability of zeroing a unit in fc6 and fc7; 0 disables
    dropout_mode: str = "paper"      # "paper": scale by (1-p) at test; "inverted": by 1/(1-p) in training
    # --- depth ablation (Sec. 7) ---
    drop_conv: tuple = ()            # conv layers to remove, from (2, 3, 4); () keeps all five
    # --- initialisation (Sec. 5) ---
    init: str = "paper"              # "paper": w ~ N(0, weight_std^2), biases 1 in conv2/4/5, fc6/7;
                                     # "scaled" (not in the paper; He et al. 2015): std = sqrt(2 / fan_in)
                                     # before a ReLU, sqrt(1 / fan_in) before tanh and for fc8, biases 0.
                                     # The paper's init stalls small deep nets (cifar() docstring).
    weight_std: float = 0.01         # the paper's 0.01 (used by init="paper")
    seed: int = 0                    # seeds the initial weights and the dropout masks
    dtype: str = "float32"           # parameter dtype; "float64" for gradient checks

    # ------------------------------------------------------------------
    # Named configurations
    # ------------------------------------------------------------------
    @classmethod
    def paper(cls, **overrides):
        """Exactly Sec. 3.5 and Sec. 5: 96-256-384-384-256-4096-4096-1000, 60,965,224 params."""
        return dataclasses.replace(cls(), **overrides)

    @classmethod
    def cifar(cls, **overrides):
        """The same structure scaled to 32x32 CIFAR-10 images and 10 classes.

        Same layer order, LRN after conv1/conv2, overlapping 3/2 pools after
        conv1, conv2 and conv5, groups=2 in conv2/4/5, dropout 0.5 in fc6/fc7.
        Sizes: 32 -> conv1 (5x5, s1, p2) 32 -> pool 15 -> conv2 (5x5, p2) 15
        -> pool 7 -> conv3-5 (3x3, p1) 7 -> pool 3 -> fc6 input 48*3*3 = 432.

        Why these numbers:
        * 11x11 stride-4 kernels on a 32-pixel image would leave a 6x6 map
          before the first pool; 5x5 stride-1 kernels keep conv1 at full
          resolution, and the three 3/2 pools shrink 32 -> 15 -> 7 -> 3 as
          the paper's shrink 55 -> 27 -> 13 -> 6.
        * Widths 32-48-64-64-48 (1/3 to 1/5 of the paper's) and fc 256-256
          were chosen by timing a batch-128 SGD step on 2 CPU cores: about
          0.43 CPU-seconds per step single-threaded (~0.25 s wall on two idle
          cores), against 0.75 for 32-64-96-96-64. conv2 (5x5 over 15x15)
          costs the most; every width stays even so both towers get half.
        * init="scaled" (He-style): with the paper's N(0, 0.01^2) and
          biases of 1 this net does not learn at lr 0.01: 60 full-batch SGD
          steps on 64 CIFAR-10 images left the loss at 2.300 (= ln 10),
          because each layer shrinks the signal ~100x. Pass init="paper" to
          see it.
        * Dropout 0.5 (kept, as in the paper) slows early learning a lot on
          this narrow net. Seen once (seed 0; first 300 train / 100 test
          images per class of cifar10-jpg, standardised; batch 128, lr 0.01):
          test accuracy after 4 epochs 35.7% with dropout=0.0, 25.0% with
          0.5 (28.2% after 3 epochs at lr 0.03). Short runs may prefer
          ``cifar(dropout=0.0)`` or a smaller p.
        * Inputs are expected at unit scale (pixels / 255 minus the mean
          image, or standardised); the paper's raw 0-255 values would make
          the He-scaled logits ~100x too large.
        """
        base = dict(input_size=32, conv_channels=(32, 48, 64, 64, 48), conv_kernels=(5, 5, 3, 3, 3),
                    conv_strides=(1, 1, 1, 1, 1), conv_paddings=(2, 2, 1, 1, 1),
                    fc_sizes=(256, 256), num_classes=10, init="scaled")
        base.update(overrides)
        return cls(**base)

    @classmethod
    def cifar_wide(cls, **overrides):
        """``cifar()`` with twice the kernels and FC units: 64-96-128-128-96, fc 512-512.

        The net of ``python -m minialex.reproduce cifar-best`` (docs/results.md):
        the same eight layers, towers, LRN, overlapping pools and dropout as
        ``cifar()``, 1,032,394 parameters against 260,970. Width chosen by
        time: a batch-128 SGD step took 0.51 s on one core against 0.23 s for
        ``cifar()`` and 0.66 s for 64-128-192-192-128 (fc 512), measured on
        the 2-core development machine (load average 3.5) on 2026-12-01, so
        that about 30 epochs of 45,000 images fit in two hours on one thread.
        """
        base = dict(conv_channels=(64, 96, 128, 128, 96), fc_sizes=(512, 512))
        base.update(overrides)
        return cls.cifar(**base)

    @classmethod
    def tiny(cls, **overrides):
        """A float64 net with every layer type, small enough for a whole-model gradient check.

        15 -> conv1 (3x3, p1) 15 -> pool 7 -> conv2 7 -> pool 3 -> conv3-5 3
        -> pool 1 -> fc 6-6 -> 3 classes.
        """
        base = dict(input_size=15, conv_channels=(6, 6, 4, 4, 4), conv_kernels=(3, 3, 3, 3, 3),
                    conv_strides=(1, 1, 1, 1, 1), conv_paddings=(1, 1, 1, 1, 1),
                    fc_sizes=(6, 6), num_classes=3, init="scaled", dtype="float64")
        base.update(overrides)
        return cls(**base)

    # ------------------------------------------------------------------
    def __post_init__(self):
        for name in ("conv_channels", "conv_kernels", "conv_strides", "conv_paddings", "fc_sizes",
                     "grouped_convs", "lrn_after", "pool_after", "drop_conv"):
            object.__setattr__(self, name, tuple(int(v) for v in getattr(self, name)))
        for name in ("conv_channels", "conv_kernels", "conv_strides", "conv_paddings"):
            if len(getattr(self, name)) != 5:
                raise ValueError(f"AlexNetConfig: {name} must have 5 entries (conv1..conv5), "
                                 f"got {getattr(self, name)!r}")
        if self.towers not in (1, 2):
            raise ValueError(f"AlexNetConfig: towers must be 1 or 2, got {self.towers!r}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"AlexNetConfig: activation must be one of {ACTIVATIONS}, got {self.activation!r}")
        if self.init not in INITS:
            raise ValueError(f"AlexNetConfig: init must be one of {INITS}, got {self.init!r}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"AlexNetConfig: dropout must be in [0, 1), got {self.dropout!r}")
        bad = [c for c in self.drop_conv if c not in (2, 3, 4)]
        if bad:
            raise ValueError(f"AlexNetConfig: drop_conv may name only the middle conv layers "
                             f"(2, 3, 4), got {self.drop_conv!r}")
        if self.dtype not in ("float32", "float64", "float16", "bfloat16"):   # the last two: working copies
            raise ValueError(f"AlexNetConfig: dtype must be float32, float64, float16 or bfloat16, "  # (precision.py)
                             f"got {self.dtype!r}")
        for i in range(5):
            c = self.conv_channels[i]
            if self.towers == 2 and c % 2:
                raise ValueError(f"AlexNetConfig: conv{i + 1} has {c} kernels; two towers need an even number")

    # ------------------------------------------------------------------
    def conv_widths(self):
        """Number of kernels of conv1..conv5 as built.

        towers=2: ``conv_channels``. towers=1 (Sec. 3.2's baseline): half of
        them in conv1..conv4; the last conv layer keeps its width (footnote 2
        of the paper), as do the FC layers.
        """
        if self.towers == 2:
            return self.conv_channels
        return tuple(c // 2 if i < 4 else c for i, c in enumerate(self.conv_channels))

    def to_dict(self):
        """A JSON-serialisable dict of every field (tuples become lists)."""
        return {f.name: (list(v) if isinstance(v, tuple) else v)
                for f in dataclasses.fields(self) for v in [getattr(self, f.name)]}

    @classmethod
    def from_dict(cls, d):
        """Inverse of ``to_dict``; unknown keys raise ValueError naming them."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"AlexNetConfig.from_dict: unknown field(s) {unknown}; expected a subset of "
                             f"{sorted(names)}")
        return cls(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items()})

    def to_json(self):
        return json.dumps(self.to_dict(), sort_keys=True)

    def diff(self, other):
        """Names of the fields whose values differ from ``other``'s, in field order."""
        return [f.name for f in dataclasses.fields(self) if getattr(self, f.name) != getattr(other, f.name)]


def _activation(name):
    return ReLU() if name == "relu" else Tanh()


class AlexNet(Sequential):
    """The network of Figure 2: five conv layers, three FC layers, logits out.

    Shapes:  x: (N, in_channels, input_size, input_size)  ->  logits: (N, num_classes)
             paper config: 3x224x224 -> 96x55x55 -> 96x27x27 -> 256x27x27 -> 256x13x13
             -> 384x13x13 -> 384x13x13 -> 256x13x13 -> 256x6x6 = 9216 -> 4096 -> 4096 -> 1000
    Paper:   Sec. 3.5 (architecture), 3.2 (towers), 3.3 (LRN), 3.4 (pooling),
             4.2 (dropout), 5 (initialisation). See the module docstring for the
             choices the paper leaves open.

    Attributes
    ----------
    config : AlexNetConfig
    names, layers : lists, as in ``Sequential``; ``model["conv1"]`` is a layer.
    Layers run the fast kernels or the readable code as ``kernels`` says ("fast" or
    "reference"; default ``MINIALEX_KERNELS``), chosen here and again by ``to``;
    ``minialex.backend.kernel_paths(model)`` lists each layer's path.
    Each Conv2D/Linear layer is built with ``towers=config.towers`` (fc8: 1) and
    gives ``tower_slices``: a list of ``(start, stop)`` output-kernel ranges, one
    per tower (``[(0, F)]`` for a shared layer); see ``Layer`` for the contract.
    """

    def __init__(self, config=None, kernels=None):
        config = AlexNetConfig() if config is None else config
        if not isinstance(config, AlexNetConfig):
            raise ValueError(f"AlexNet: config must be an AlexNetConfig, got {type(config).__name__}")
        self.config = config
        super().__init__(*self._build(config))
        accelerate(self, np, kernels)      # the fast twins or the readable layers, chosen once here

    # ------------------------------------------------------------------
    @staticmethod
    def _build(cfg):
        dtype = np.dtype(cfg.dtype)
        init_ss, drop_ss = np.random.SeedSequence(cfg.seed).spawn(2)
        rng = np.random.default_rng(init_ss)           # one stream, layers drawn in order
        drop_rngs = [np.random.default_rng(s) for s in drop_ss.spawn(len(cfg.fc_sizes))]
        widths = cfg.conv_widths()
        act_name = cfg.activation                      # layer names: relu1 or tanh1, ...
        gain = 2.0 if cfg.activation == "relu" else 1.0

        def init_of(name, fan_in, last=False):
            """(weight_std, bias) for a layer under cfg.init (Sec. 5 or He-style)."""
            if cfg.init == "paper":
                return cfg.weight_std, (1.0 if name in PAPER_BIAS_ONE else 0.0)
            return float(np.sqrt((1.0 if last else gain) / fan_in)), 0.0

        items = []
        C, H = cfg.in_channels, cfg.input_size
        for i in range(5):
            n = i + 1
            if n in cfg.drop_conv:
                if n in cfg.pool_after:                # keep the pool: sizes stay as in the full net
                    pool = MaxPool2D(cfg.pool_kernel, cfg.pool_stride)
                    items.append((f"pool{n}", pool))
                    C, H, _ = pool.output_shape((C, H, H))
                continue
            F, K = widths[i], cfg.conv_kernels[i]
            G = cfg.towers if (cfg.towers == 2 and n in cfg.grouped_convs) else 1
            if C % G:
                raise ValueError(f"AlexNet: conv{n} with groups={G} needs an even number of input "
                                 f"channels, got {C}")
            std, bias = init_of(f"conv{n}", C // G * K * K)
            conv = Conv2D(C, F, K, stride=cfg.conv_strides[i], padding=cfg.conv_paddings[i], groups=G,
                          rng=rng, weight_std=std, bias_init=bias, dtype=dtype, towers=cfg.towers)
            items.append((f"conv{n}", conv))
            C, H, _ = conv.output_shape((C, H, H))
            if H < 1:
                raise ValueError(f"AlexNet: conv{n} output is empty for input_size={cfg.input_size}")
            items.append((f"{act_name}{n}", _activation(cfg.activation)))
            if cfg.lrn and n in cfg.lrn_after:
                items.append((f"lrn{n}", LocalResponseNorm(cfg.lrn_size, cfg.lrn_alpha, cfg.lrn_beta,
                                                           cfg.lrn_k, cfg.lrn_alpha_convention,
                                                           groups=cfg.towers if cfg.lrn_per_tower else 1)))
            if n in cfg.pool_after:
                pool = MaxPool2D(cfg.pool_kernel, cfg.pool_stride)
                if pool.kernel_size > H:
                    raise ValueError(f"AlexNet: pool{n} window {pool.kernel_size} is larger than its "
                                     f"{H}x{H} input; input_size={cfg.input_size} is too small")
                items.append((f"pool{n}", pool))
                C, H, _ = pool.output_shape((C, H, H))
        items.append(("flatten", Flatten()))
        D = C * H * H                                  # 256*6*6 = 9216 in the paper
        for j, units in enumerate(cfg.fc_sizes):
            n = 6 + j
            std, bias = init_of(f"fc{n}", D)
            fc = Linear(D, units, rng=rng, weight_std=std, bias_init=bias, dtype=dtype, towers=cfg.towers)
            items += [(f"fc{n}", fc), (f"{act_name}{n}", _activation(cfg.activation))]
            if cfg.dropout > 0:
                items.append((f"drop{n}", Dropout(cfg.dropout, mode=cfg.dropout_mode, rng=drop_rngs[j])))
            D = units
        n = 6 + len(cfg.fc_sizes)
        std, bias = init_of(f"fc{n}", D, last=True)
        out = Linear(D, cfg.num_classes, rng=rng, weight_std=std, bias_init=bias, dtype=dtype,
                     towers=1)                        # shared by both towers (module docstring)
        items.append((f"fc{n}", out))
        return items

    # ------------------------------------------------------------------
    @property
    def input_shape(self):
        """(C, H, W) the model expects."""
        c = self.config
        return (c.in_channels, c.input_size, c.input_size)

    def _check_input(self, x):
        if x.ndim != 4 or tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(f"AlexNet: input must have shape (N, {', '.join(map(str, self.input_shape))}), "
                             f"got {tuple(x.shape)}")

    def forward(self, x, train=True):
        """Logits for a batch. ``train`` turns dropout on (Sec. 4.2).

        Shapes:  x: (N, C, S, S)  ->  logits: (N, num_classes)
        """
        self._check_input(x)
        return super().forward(x, train=train)

    def backward(self, dlogits):
        """Backpropagate dL/dlogits (N, num_classes); fills every layer's grads; returns dL/dx."""
        return super().backward(dlogits)

    def features(self, x):
        """The last hidden layer's activations (fc7 after its nonlinearity), test mode.

        Sec. 6.1 / Figure 4 (right): nearest neighbours by Euclidean distance of
        these 4096-d vectors. Dropout's test-time scaling is not applied (it
        multiplies all of them by the same 0.5 and changes no ranking).

        Shapes:  x: (N, C, S, S)  ->  (N, fc_sizes[-1])
        """
        self._check_input(x)
        if not self.config.fc_sizes:
            raise ValueError("AlexNet.features: this config has no hidden FC layer (fc_sizes=())")
        last = f"{self.config.activation}{5 + len(self.config.fc_sizes)}"
        for name, layer in zip(self.names, self.layers):
            x = layer.forward(x, train=False)
            if name == last:
                break
        for layer in self.layers:                      # nothing will call backward: free the caches
            layer.cache = None
        return x

    def predict(self, x):
        """Logits in test mode (no dropout), without keeping backward caches.

        Shapes:  x: (N, C, S, S) -> (N, num_classes)
        """
        out = self.forward(x, train=False)
        for layer in self.layers:
            layer.cache = None
        return out

    # ------------------------------------------------------------------
    def layer_shapes(self):
        """[(name, layer, output (C, H, W) or (D,))] for every layer, computed without running it."""
        shape = self.input_shape
        rows = []
        for name, layer in zip(self.names, self.layers):
            if isinstance(layer, (Conv2D, MaxPool2D)):
                shape = layer.output_shape(shape)
            elif isinstance(layer, Flatten):
                shape = (int(np.prod(shape)),)
            elif isinstance(layer, Linear):
                shape = (layer.out_features,)
            rows.append((name, layer, tuple(int(s) for s in shape)))
        return rows

    def num_params(self):
        """Total number of learned parameters (60,965,224 for the paper config)."""
        return int(sum(int(np.prod(p.shape)) for _, p in self.named_params()))

    def summary(self, print_fn=print):
        """Print (and return) a table: each layer's output shape, neurons and parameters,
        with the paper's Figure 2 neuron counts beside ours for the conv and FC layers."""
        rows = [("layer", "output shape", "neurons", "params", "paper neurons")]
        paper_cfg = self.config.input_size == 224 and self.config.conv_channels == (96, 256, 384, 384, 256)
        for name, layer, shape in self.layer_shapes():
            n_params = sum(int(np.prod(p.shape)) for p in layer.params.values())
            paper = PAPER_NEURONS.get(name, "") if paper_cfg and layer.params else ""
            rows.append((name, "x".join(map(str, shape)), f"{int(np.prod(shape)):,}",
                         f"{n_params:,}" if n_params else "", f"{paper:,}" if paper else ""))
        rows.append(("total", "", "", f"{self.num_params():,}",
                     f"{PAPER_NUM_PARAMS:,}" if paper_cfg else ""))
        widths = [max(len(r[i]) for r in rows) for i in range(5)]
        lines = ["  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
                 for r in rows]
        lines.insert(1, "-" * len(lines[0]))
        if paper_cfg:
            lines.append("paper neurons: Sec. 3.5 as printed; conv1's 253,440 is inconsistent with "
                         "55x55x96 = 290,400 (a known erratum).")
        text = "\n".join(lines)
        if print_fn is not None:
            print_fn(text)
        return text

    # ------------------------------------------------------------------
    def towers(self):
        """{layer name: [(start, stop) of tower 0, (start, stop) of tower 1]} for conv/FC layers.

        The ranges index output kernels (conv) or output neurons (FC): with
        towers=2 the first half lives on GPU 0, the second on GPU 1 (Sec. 3.2);
        conv1's 48 + 48 are Figure 3's two rows. fc8 and every layer of a
        towers=1 net have a single range.
        """
        return {name: layer.tower_slices for name, layer in zip(self.names, self.layers) if layer.tower_axes}

    def dropout_layers(self):
        """[(name, Dropout)] in order, e.g. to freeze masks for a gradient check."""
        return [(n, l) for n, l in zip(self.names, self.layers) if isinstance(l, Dropout)]

    def rng_state(self):
        """JSON-serialisable bit-generator states of the dropout layers (for exact resumption)."""
        return {n: l.rng.bit_generator.state for n, l in self.dropout_layers()}

    def set_rng_state(self, state):
        """Restore what ``rng_state`` returned."""
        for n, l in self.dropout_layers():
            if n in state:
                l.rng.bit_generator.state = state[n]

    def to(self, xp, kernels=None):
        """Move every parameter to ``xp`` (``numpy``, ``cupy`` or their names), in place; returns self.

        The layers become the fast twins for that device, or the readable ones
        (``kernels``: "fast" or "reference"; default ``MINIALEX_KERNELS``, see
        ``minialex.kernels.accelerate``). Create the optimizer after moving: it
        holds references to the arrays.
        """
        return move(self, xp, kernels)

    @property
    def xp(self):
        """The array module holding the parameters."""
        return get_array_module(*[p for _, p in self.named_params()])

    def __repr__(self):
        return f"AlexNet({self.config!r}, {self.num_params():,} params)"


# ----------------------------------------------------------------------------
# python -m minialex.model: print the Figure 2 table, optionally time an SGD step
# ----------------------------------------------------------------------------

def time_train_step(model, batch_size=128, repeats=5, warmup=2, seed=0):
    """Median wall and CPU seconds of one SGD step (forward, loss, backward, update).

    Random inputs and labels on the model's device; the first ``warmup`` steps
    (numba compilation, allocation) are not timed. Returns a dict.
    """
    import resource
    import time

    from .layers import SoftmaxCrossEntropy
    from .optim import SGD

    xp = model.xp
    cfg = model.config
    rng = np.random.default_rng(seed)
    x = to_device(rng.standard_normal((batch_size, *model.input_shape)).astype(cfg.dtype), xp)
    y = to_device(rng.integers(0, cfg.num_classes, batch_size), xp)
    loss, opt = SoftmaxCrossEntropy(), SGD(model)

    def step():
        loss.forward(model.forward(x, train=True), y)
        model.backward(loss.backward())
        opt.step()
        if xp is not np:
            xp.cuda.Device().synchronize()

    def cpu():
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime

    for _ in range(warmup):
        step()
    walls, cpus = [], []
    for _ in range(repeats):
        t, c = time.perf_counter(), cpu()
        step()
        walls.append(time.perf_counter() - t)
        cpus.append(cpu() - c)
    wall = float(np.median(walls))
    return {"batch_size": batch_size, "wall_s": wall, "cpu_s": float(np.median(cpus)),
            "images_per_s": batch_size / wall}


def main(argv=None):
    import argparse
    import os

    ap = argparse.ArgumentParser(
        prog="python -m minialex.model",
        description="Print AlexNet's layer table (output shapes, neurons, parameters; the paper's "
                    "Figure 2 / Sec. 3.5 numbers beside ours) and optionally time one SGD step "
                    "(forward + softmax loss + backward + the Sec. 5 update).")
    ap.add_argument("--config", choices=("paper", "cifar", "tiny"), default="paper",
                    help="paper: Sec. 3.5 exactly; cifar: the 32x32 CIFAR-10 net; tiny: gradient checks")
    ap.add_argument("--towers", type=int, choices=(1, 2), help="override: 1 = Sec. 3.2's one-GPU net")
    ap.add_argument("--time", type=int, metavar="BATCH", help="time an SGD step at this batch size")
    ap.add_argument("--repeats", type=int, default=5, help="timed steps (median reported)")
    ap.add_argument("--backend", choices=("numpy", "cupy"), default="numpy")
    args = ap.parse_args(argv)
    overrides = {} if args.towers is None else {"towers": args.towers}
    cfg = getattr(AlexNetConfig, args.config)(**overrides)
    model = AlexNet(cfg)
    model.summary()
    if args.time:
        model.to(args.backend)
        r = time_train_step(model, args.time, repeats=args.repeats)
        threads = os.environ.get("NUMBA_NUM_THREADS", "default")
        print(f"\nSGD step, batch {r['batch_size']}, {cfg.dtype}, {args.backend}: median "
              f"{r['wall_s']:.3f} s wall ({r['images_per_s']:.0f} images/s), {r['cpu_s']:.3f} s CPU "
              f"over {args.repeats} steps; {os.cpu_count()} CPUs visible, NUMBA_NUM_THREADS={threads}, "
              f"load average {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main())
