# %% [markdown]
# # Sec. 3.1 ReLU nonlinearity
#
# **The claim.** Neurons with the non-saturating nonlinearity f(x) = max(0, x) (Rectified Linear
# Units) train several times faster than neurons with the saturating tanh. Figure 1: a **four-layer
# convolutional net on CIFAR-10 with ReLUs reaches 25% training error six times faster** than the
# same net with tanh neurons, each net with its own best learning rate and no regularisation.
#
# This notebook redraws Figure 1 in miniature with `minialex.layers.ReLU` and `Tanh`: the same
# four-layer net (three conv layers and one fully connected layer), once with each nonlinearity,
# trained on real CIFAR-10 images, and the speed-up factor measured at fixed training errors.
#
# Settings (small, so it runs in about a minute on 2 CPU cores): 1,500 random training images from
# the bundled CIFAR-10 subset (`load_default()`, JPEG re-encoded CIFAR-10), mean image subtracted,
# raw centred pixel values as in the paper; net conv 5x5x16 - pool 3/2 - conv 5x5x32 - pool 3/2 -
# conv 3x3x32 - pool 3/2 - fc 10; weights N(0, 0.01^2), biases 0 (Sec. 5's scale); momentum SGD 0.9,
# batch 64, no weight decay, no dropout, 8 epochs, seed 0. Learning rates: ReLU 0.003, tanh 0.01,
# each the best of {0.001, 0.003, 0.01} by training error after 5 epochs in a sweep run while writing
# this notebook (2,000 images, otherwise these settings). Set `SWEEP = True` below to re-run the sweep
# on this notebook's 1,500 images; it takes about 3 minutes.
# The paper's 25% needs far more training than this; we measure at the errors these runs reach.

# %%
import time

import matplotlib.pyplot as plt
import numpy as np

from minialex.data import image_statistics, load_default
from minialex.gradcheck import check_layer
from minialex.kernels import accelerate
from minialex.layers import (Conv2D, Flatten, Linear, MaxPool2D, ReLU, Sequential, SoftmaxCrossEntropy,
                             Tanh)
from minialex.optim import SGD

t_start = time.perf_counter()
N_TRAIN, EPOCHS, BATCH, SEED = 1500, 8, 64, 0
LR = {"relu": 0.003, "tanh": 0.01}
SWEEP = False

# %% [markdown]
# ## 1. The two nonlinearities and their gradients
#
# tanh saturates: for |x| > 3 its derivative 1 - tanh(x)^2 is below 0.01, so a unit driven far from
# zero passes almost no gradient back. ReLU's derivative is exactly 1 for every positive input.

# %%
z = np.linspace(-5, 5, 401)[None, :]
relu, tanh = ReLU(), Tanh()
fig, axes = plt.subplots(1, 2, figsize=(10, 3.2))
for layer, name in [(relu, "ReLU"), (tanh, "tanh")]:
    out = layer.forward(z)
    grad = layer.backward(np.ones_like(z))
    axes[0].plot(z[0], out[0], label=name)
    axes[1].plot(z[0], grad[0], label=name)
axes[0].set_title("f(x)"); axes[1].set_title("f'(x), from backward()")
for ax in axes:
    ax.set_xlabel("x"); ax.legend(); ax.grid(alpha=0.3)
plt.show()

# %% [markdown]
# **Gradient checks**, float64, centred differences, threshold 1e-6. ReLU's inputs are kept away from
# the kink at 0, where a finite difference straddling it would be wrong by construction.

# %%
rng = np.random.default_rng(2)
x = rng.standard_normal((3, 4, 5))
x = np.where(np.abs(x) < 0.1, 0.5, x)                         # nothing near the kink
for layer in (ReLU(), Tanh()):
    rep = check_layer(layer, x)
    print(rep)
    assert rep.passed

# %% [markdown]
# ## 2. Figure 1 in miniature
#
# The data: real CIFAR-10 images (the bundled subset is sorted by class, so we draw a random subset).

# %%
data = load_default()
mean, _ = image_statistics(data.x_train)                          # (3, 32, 32) mean image (Sec. 2)
tr = np.random.default_rng(SEED).permutation(len(data.x_train))[:N_TRAIN]
x_train = data.x_train[tr].astype(np.float32) - mean              # (1500, 3, 32, 32), raw centred RGB
y_train = data.y_train[tr]
print("images per class:", np.bincount(y_train, minlength=10))


def four_layer_net(activation, seed=SEED):
    """conv-act-pool x 3, then fc: the same structure and initial weights for both nonlinearities."""
    rng = np.random.default_rng(seed)
    act = ReLU if activation == "relu" else Tanh
    return accelerate(Sequential(                                     # the fast kernels, as AlexNet's (minialex.kernels)
        ("conv1", Conv2D(3, 16, 5, padding=2, rng=rng)), ("act1", act()), ("pool1", MaxPool2D(3, 2)),   # 16x15x15
        ("conv2", Conv2D(16, 32, 5, padding=2, rng=rng)), ("act2", act()), ("pool2", MaxPool2D(3, 2)),  # 32x7x7
        ("conv3", Conv2D(32, 32, 3, padding=1, rng=rng)), ("act3", act()), ("pool3", MaxPool2D(3, 2)),  # 32x3x3
        ("flatten", Flatten()), ("fc4", Linear(32 * 3 * 3, 10, rng=rng))))


def train(activation, lr, epochs=EPOCHS):
    """Returns the error of every mini-batch (before its update) and the error of every epoch."""
    net = four_layer_net(activation)
    opt = SGD(net, lr=lr, momentum=0.9, weight_decay=0.0)
    loss_fn, rng = SoftmaxCrossEntropy(), np.random.default_rng(SEED)
    batch_err, epoch_err = [], []
    for epoch in range(epochs):
        order, wrong = rng.permutation(N_TRAIN), 0
        for i in range(0, N_TRAIN, BATCH):
            idx = order[i:i + BATCH]
            logits = net.forward(x_train[idx], train=True)
            loss_fn.forward(logits, y_train[idx])
            net.backward(loss_fn.backward())
            opt.step()
            w = int((logits.argmax(axis=1) != y_train[idx]).sum())
            wrong += w
            batch_err.append(w / len(idx))
        epoch_err.append(wrong / N_TRAIN)
    return np.array(batch_err), np.array(epoch_err)


if SWEEP:                                                          # how LR above was chosen
    for act in ("relu", "tanh"):
        for lr in (0.001, 0.003, 0.01):
            print(act, lr, "training error per epoch:", np.round(train(act, lr, epochs=5)[1], 3))

runs = {}
for act in ("relu", "tanh"):
    t0 = time.perf_counter()
    runs[act] = train(act, LR[act])
    print(f"{act}: lr {LR[act]}, training error per epoch {np.round(runs[act][1], 3)} "
          f"({time.perf_counter() - t0:.0f} s)")

# %% [markdown]
# The training error of a mini-batch is noisy, so for the speed-up we smooth it over one epoch's worth
# of batches (a running mean) and read off the first iteration at which each net's smoothed error falls
# to a given level.

# %%
steps_per_epoch = int(np.ceil(N_TRAIN / BATCH))
smooth = {a: np.convolve(b, np.ones(steps_per_epoch) / steps_per_epoch, mode="valid") for a, (b, _) in runs.items()}
offset = steps_per_epoch - 1                                      # smoothed value k covers batches k..k+offset


def first_below(curve, level):
    hit = np.nonzero(curve <= level)[0]
    return int(hit[0]) + offset + 1 if hit.size else None       # iterations needed


print(f"{'training error':>15} {'ReLU iters':>11} {'tanh iters':>11} {'speed-up':>9}")
speedups = {}
for level in (0.80, 0.75, 0.70, 0.65):
    r, t = first_below(smooth["relu"], level), first_below(smooth["tanh"], level)
    if r is None:
        s = "ReLU not reached"
    elif t is None:
        s = f"> {len(runs['tanh'][0]) / r:.1f}x (tanh not reached)"
    else:
        s = f"{t / r:.1f}x"
        speedups[level] = t / r
    print(f"{level:15.2f} {str(r):>11} {str(t):>11} {s:>9}")

# %%
fig, ax = plt.subplots(figsize=(7, 4))
it = np.arange(len(smooth["relu"])) + offset + 1
ax.plot(it / steps_per_epoch, smooth["relu"], "-", label=f"ReLU (lr {LR['relu']})")
ax.plot(it / steps_per_epoch, smooth["tanh"], "--", label=f"tanh (lr {LR['tanh']})")
for level in (0.75, 0.70, 0.65):
    ax.axhline(level, color="grey", lw=0.5)
ax.set_xlabel("epochs"); ax.set_ylabel("training error (running mean over one epoch)")
ax.set_title(f"Figure 1 in miniature: 4-layer CNN, {N_TRAIN} CIFAR-10 images")
ax.legend()
plt.show()
print(f"notebook ran in {time.perf_counter() - t_start:.1f} s wall, {time.process_time():.1f} s CPU")

# %% [markdown]
# How saturated are the tanh units? At the start, conv1's pre-activations on 256 training images:

# %%
pre = four_layer_net("tanh")["conv1"].forward(x_train[:256])           # (256, 16, 32, 32)
print(f"conv1 pre-activation std {pre.std():.2f}; fraction with |x| > 2 (tanh' < 0.08): "
      f"{(np.abs(pre) > 2).mean():.1%}")

# %% [markdown]
# **Reading the result.** The table gives the speed-up measured in *this* run; compare it with the
# paper's factor of six at 25% training error. The run is three orders of magnitude smaller than the
# paper's (1,500 images, 8 epochs, one seed), the levels it reaches are far above 25%, and the
# measured factor depends on the level, on the learning rates and on the initialisation. In
# particular, tanh saturates here because raw centred pixel values (standard deviation about 60)
# meet weights of standard deviation 0.01 (the cell above measures how many conv1 units start
# saturated). With inputs scaled to unit variance and fan-in-scaled weights, tanh saturates less
# and the gap can shrink or vanish in a net this small.


# %% [markdown]
# ## Full scale, beside this miniature
#
# Everything above is this notebook's **miniature**, run live in about a minute. Below is the
# **full-scale** result, read from `docs/results/fig1/` (not computed here): Figure 1 at full scale: the same comparison on all 45,000 training images (cuda-convnet's four-layer net, each nonlinearity's learning rate from a sweep, training until 25% training error, two seeds).
# `docs/results.md` has every claim; `python -m minialex.reproduce fig1 --quick` runs the same
# experiment's own miniature, and without `--quick` the full run (hours on a CPU).

# %%
from minialex.reproduce.published import show

show("fig1")

# %% [markdown]
# Until 2026-12-02 the runs were capped at 40 epochs, and tanh had not reached 25% by then in either seed,
# so the factor was only a lower bound. That first result, kept for the record (the same sweeps and ReLU
# runs; a cap only stops a constant-rate run):

# %%
show("fig1-max40")
