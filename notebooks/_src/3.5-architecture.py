# %% [markdown]
# # Sec. 3.5 Overall architecture
#
# **The claim.** The net has **eight learned layers**, five convolutional and three fully connected,
# followed by a **1000-way softmax**; it maximises the multinomial logistic regression objective.
# Kernels 96 (11x11x3, stride 4), 256 (5x5x48), 384 (3x3x256), 384 (3x3x192), 256 (3x3x192); fully
# connected 4096, 4096, 1000. LRN after conv1 and conv2, overlapping max-pooling after both LRNs
# and after conv5, ReLU everywhere. Input 224x224x3; neurons per layer 253,440-186,624-64,896-64,896-
# 43,264-4096-4096-1000; **60 million parameters**.
#
# This notebook builds the paper's net (`minialex.model.AlexNet(AlexNetConfig.paper())`), prints the
# summary table beside Figure 2's numbers, counts the **60,965,224** parameters, settles the 224 vs
# 227 question, shows where the FLOPs and the parameters sit, runs one real photo through the net,
# and gradient-checks a whole (tiny) AlexNet end to end.

# %%
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from minialex.data import preprocess_image
from minialex.gradcheck import numerical_gradient, rel_error
from minialex.layers import Conv2D, Linear, SoftmaxCrossEntropy
from minialex.model import PAPER_NEURONS, AlexNet, AlexNetConfig

t_start = time.perf_counter()

# %% [markdown]
# ## 1. The summary table
#
# Output shape, neurons and parameters of every layer, with the neuron counts printed in the paper.

# %%
net = AlexNet(AlexNetConfig.paper())
net.summary()
assert net.num_params() == 60_965_224

# %% [markdown]
# Everything matches Figure 2 except conv1: 55 x 55 x 96 = 290,400 neurons, not the printed 253,440
# (a known inconsistency of the paper; docs/deviations.md, item 2).
#
# ## 2. Where do the 60,965,224 parameters come from?
#
# A conv layer has `F * (C/G) * K * K` weights plus `F` biases; `G = 2` in conv2, conv4 and conv5,
# where each kernel sees only its own GPU's half of the input ("5x5x48", "3x3x192" in the table).
# A fully connected layer has `in * out + out`.

# %%
rows = []
for name, layer in zip(net.names, net.layers):
    if isinstance(layer, Conv2D):
        F, Cg, K = layer.out_channels, layer.in_channels // layer.groups, layer.kernel_size
        formula, n = f"{F} x {Cg} x {K} x {K} + {F}", F * Cg * K * K + F
    elif isinstance(layer, Linear):
        formula, n = f"{layer.in_features} x {layer.out_features} + {layer.out_features}", \
            layer.in_features * layer.out_features + layer.out_features
    else:
        continue
    rows.append((name, formula, n))
    print(f"{name:6} {formula:28} = {n:>12,}")
print(f"{'total':35} = {sum(r[2] for r in rows):>12,}")

# %% [markdown]
# ## 3. 224 or 227?
#
# With an 11x11 kernel and stride 4, conv1's output size is `(S + 2p - 11) / 4 + 1`. For 55 we need
# S + 2p = 227. The paper says 224 (its crops and its 150,528 input dimensions), which gives no integer
# size without padding. minialex keeps 224 and pads conv1 by 2; Caffe uses 227 without padding. Both
# give the same sizes from conv1 on and the same parameter count (docs/deviations.md, item 1).

# %%
for S, p in [(224, 0), (224, 2), (227, 0)]:
    print(f"input {S}, padding {p}: (S + 2p - 11) / 4 + 1 = {(S + 2 * p - 11) / 4 + 1:g}")
caffe_cfg = AlexNetConfig.paper(input_size=227, conv_paddings=(0, 2, 1, 1, 1))
caffe = AlexNet(caffe_cfg)
ours = [(n, s) for n, _, s in net.layer_shapes() if n.startswith(("conv", "pool", "fc"))]
theirs = [(n, s) for n, _, s in caffe.layer_shapes() if n.startswith(("conv", "pool", "fc"))]
print("same shapes after every layer:", ours == theirs, "| same parameter count:",
      caffe.num_params() == net.num_params())
del caffe

# %% [markdown]
# ## 4. Where the FLOPs and the parameters sit
#
# A conv layer does `(C/G) * K * K` multiply-adds for each of its `F * OH * OW` outputs; a fully
# connected layer `in * out`. Counting them per layer for one 224 x 224 image:

# %%
macs, params, names = [], [], []
shape = net.input_shape
for name, layer, out_shape in net.layer_shapes():
    if isinstance(layer, Conv2D):
        F, OH, OW = out_shape
        macs.append(F * OH * OW * (layer.in_channels // layer.groups) * layer.kernel_size ** 2)
    elif isinstance(layer, Linear):
        macs.append(layer.in_features * layer.out_features)
    else:
        continue
    names.append(name)
    params.append(sum(int(np.prod(p.shape)) for p in layer.params.values()))
macs, params = np.array(macs), np.array(params)
conv = np.array([n.startswith("conv") for n in names])
print(f"multiply-adds per image: {macs.sum() / 1e6:,.0f} M; conv layers do {macs[conv].sum() / macs.sum():.1%}")
print(f"parameters: conv layers hold {params[conv].sum() / params.sum():.1%}, FC layers {params[~conv].sum() / params.sum():.1%}")

fig, axes = plt.subplots(1, 2, figsize=(11, 3.4))
axes[0].bar(names, macs / 1e6, color=["tab:blue" if c else "tab:orange" for c in conv])
axes[0].set_ylabel("million multiply-adds / image"); axes[0].set_title("compute")
axes[1].bar(names, params / 1e6, color=["tab:blue" if c else "tab:orange" for c in conv])
axes[1].set_ylabel("million parameters"); axes[1].set_title("parameters")
fig.suptitle("Conv layers (blue) do the computing; FC layers (orange) hold the parameters")
plt.show()

# %% [markdown]
# ## 5. One real photo through the paper's net
#
# An Imagenette photo, preprocessed as in Sec. 2 (short side 256, central crop), its central 224 x 224
# patch, mean-subtracted with a flat mean of 120 (there is no trained mean here), through the
# untrained net. Each layer's output shape is printed as the activations flow: the table above, live.
# The output is a 1000-way distribution; untrained, it is nearly uniform.

# %%
photo = sorted(Path("images").glob("*.jpg"))[0]
img = preprocess_image(photo, 256, 256).transpose(2, 0, 1)[None].astype(np.float32)   # (1, 3, 256, 256)
x = img[:, :, 16:240, 16:240] - 120.0                                                 # (1, 3, 224, 224)
h, t0 = x, time.perf_counter()
for name, layer in zip(net.names, net.layers):
    h = layer.forward(h, train=False)
    if name.startswith(("conv", "pool", "fc")):
        print(f"{name:6} -> {str(h.shape):22} mean activity {float(np.abs(h).mean()):.3g}")
p = np.exp(h - h.max()); p /= p.sum()
print(f"forward pass: {time.perf_counter() - t0:.2f} s; softmax max {p.max():.5f} (uniform: {1 / 1000})")
del net

# %% [markdown]
# ## 6. A gradient check of the whole net
#
# Every layer type of the real net, stacked exactly as in AlexNet (conv, ReLU, LRN, 3/2 pooling,
# groups=2, FC, dropout with frozen masks) with the softmax cross-entropy loss on top, but tiny:
# `AlexNetConfig.tiny()`, 15x15 inputs, 801 parameters, float64. We compare the analytic gradient of
# the loss with centred differences for every one of the 16 parameter tensors, and for the input
# along three random directions; threshold 1e-6 on the relative error `max|a-b| / max(|a|+|b|)`.

# %%
tiny = AlexNet(AlexNetConfig.tiny())
rng = np.random.default_rng(3)                   # a seed whose inputs sit away from ReLU/max-pool kinks
x = rng.standard_normal((2, *tiny.input_shape))
y = np.array([0, 2])
for name, d in tiny.dropout_layers():            # freeze one sub-network: a deterministic function
    units = tiny["fc" + name[-1]].out_features
    d.freeze((rng.random((2, units)) >= 0.5).astype(np.float64))
loss = SoftmaxCrossEntropy()

def f():
    return loss.forward(tiny.forward(x, train=True), y)

f()
dx = tiny.backward(loss.backward())
grads = {k: v.copy() for k, v in tiny.named_grads()}
errors = {}
for name, p in tiny.named_params():
    errors[name] = rel_error(grads[name], numerical_gradient(f, p))    # perturbs p in place
for i in range(3):
    u = rng.standard_normal(x.shape)
    x0 = x.copy()
    x[...] = x0 + 1e-6 * u; fp = f()
    x[...] = x0 - 1e-6 * u; fm = f()
    x[...] = x0
    errors[f"x along u{i}"] = rel_error(np.sum(dx * u), (fp - fm) / 2e-6)
for name, e in errors.items():
    print(f"  {name:14} {e:.1e}")
print(f"{len(errors)} checks, worst {max(errors.values()):.1e}:",
      "PASS" if max(errors.values()) < 1e-6 else "FAIL")
assert max(errors.values()) < 1e-6
print(f"notebook ran in {time.perf_counter() - t_start:.1f} s wall, {time.process_time():.1f} s CPU")


# %% [markdown]
# ## Full scale, beside this miniature
#
# Everything above is this notebook's **miniature**, run live in about a minute. Below is the
# **full-scale** result, read from `docs/results/cifar-best/` (not computed here): The whole architecture trained at full scale: `AlexNetConfig.cifar_wide()` on the full CIFAR-10 (`python -m minialex.reproduce cifar-best`).
# `docs/results.md` has every claim; `python -m minialex.reproduce cifar-best --quick` runs the same
# experiment's own miniature, and without `--quick` the full run (hours on a CPU).

# %%
from minialex.reproduce.published import show

show("cifar-best")
