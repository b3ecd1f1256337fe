# %% [markdown]
# # Sec. 4.2 Dropout
#
# **The claim.** Setting the output of each hidden neuron to zero with probability 0.5 during training
# makes every presentation train a different, weight-sharing architecture, so neurons cannot rely on
# particular other neurons. At test time all neurons are used and **their outputs are multiplied by
# 0.5**, "a reasonable approximation to taking the geometric mean of the predictive distributions
# produced by the exponentially-many dropout networks". AlexNet uses dropout in fc6 and fc7; it
# roughly doubles the number of iterations needed to converge.
#
# This notebook: the masks of `minialex.layers.Dropout`; test-time scaling in the paper's form and in
# the inverted form; a gradient check; and dropout as an ensemble: a small net trained with dropout,
# evaluated with the 0.5 scaling and by averaging many sampled sub-networks.
#
# Settings of the run: bundled CIFAR-10 subset (`load_default()`, JPEG re-encoded CIFAR-10), 2,000
# random training / 1,000 random test images, narrow AlexNet-shaped net (`AlexNetConfig.cifar`, widths
# 16-32-48-48-32, FC 256-256, dropout 0.5 in fc6 and fc7, paper form), SGD lr 0.01, momentum 0.9,
# weight decay 5e-4, batch 64, 4 epochs, seed 0.

# %%
import time

import matplotlib.pyplot as plt
import numpy as np

from minialex.data import image_statistics, default_subset, load_default
from minialex.gradcheck import check_layer
from minialex.layers import Dropout, SoftmaxCrossEntropy, softmax
from minialex.model import AlexNet, AlexNetConfig
from minialex.optim import SGD

t_start = time.perf_counter()

# %% [markdown]
# ## 1. Masks
#
# Each training forward pass draws a fresh 0/1 mask (from the layer's own seeded generator) and
# multiplies it into the activations. A dropped unit outputs 0 and, because backward multiplies by
# the same mask, receives no gradient: it "does not participate in back-propagation".

# %%
drop = Dropout(p=0.5, rng=0)
x = np.ones((6, 64), dtype=np.float32)                    # 6 presentations of 64 units
masks = np.stack([drop.forward(x[:1], train=True)[0] for _ in range(6)])
print("fraction kept per presentation:", masks.mean(axis=1))
g = drop.backward(np.ones((1, 64), dtype=np.float32))
print("gradient reaches exactly the kept units of the last mask:", np.array_equal(g[0] != 0, masks[-1] != 0))

fig, ax = plt.subplots(figsize=(9, 1.6))
ax.imshow(masks, cmap="gray_r", aspect="auto", interpolation="nearest")
ax.set_xlabel("unit"); ax.set_ylabel("presentation")
ax.set_title("Six dropout masks (black: kept): six different sub-networks")
plt.show()

# %% [markdown]
# ## 2. Test-time scaling: paper form vs inverted form
#
# * **paper** (`mode="paper"`, minialex's default): train `x * mask`, test `x * 0.5`.
# * **inverted** (`mode="inverted"`, what most frameworks do): train `x * mask / 0.5`, test `x`.
#
# Either way, the test-time output equals the **expected** training-time output. Averaging many
# training-mode passes of the same input shows it:

# %%
x = np.random.default_rng(0).random((1, 5)).astype(np.float64) + 0.5
for mode in ("paper", "inverted"):
    d = Dropout(0.5, mode=mode, rng=1)
    avg = np.mean([d.forward(x, train=True) for _ in range(20000)], axis=0)
    print(f"{mode:9}: test output {np.round(d.forward(x, train=False)[0], 3)}   "
          f"mean of 20,000 training passes {np.round(avg[0], 3)}")

# %% [markdown]
# A net trained with one form must be tested with the same form: the layer after dropout learns
# weights for inputs of half (paper) or full (inverted) expected size. See docs/deviations.md, item 6.
#
# **Gradient check** with the mask frozen (`Dropout.freeze`), so that both function evaluations of a
# centred difference use the same sub-network; float64, threshold 1e-6.

# %%
rng = np.random.default_rng(6)
for mode in ("paper", "inverted"):
    d = Dropout(0.5, mode=mode)
    d.freeze((rng.random((4, 10)) >= 0.5).astype(np.float64))
    rep = check_layer(d, rng.standard_normal((4, 10)), name=f"Dropout({mode}, frozen mask)")
    print(rep)
    assert rep.passed

# %% [markdown]
# ## 3. Dropout as an ensemble
#
# Train a small net with dropout in fc6 and fc7 (paper form), then predict the test set in two ways:
#
# 1. the paper's way: one pass, all units, outputs of fc6/fc7 multiplied by 0.5 (`train=False`);
# 2. an explicit ensemble: K passes with K random masks (`train=True` in the dropout layers), and
#    the average of the K softmax outputs (arithmetic mean) or of the log-probabilities (geometric
#    mean, renormalised).
#
# The conv layers have no dropout, so their output is computed once and only fc6-fc8 are sampled.

# %%
data = load_default()
N_TRAIN, N_TEST, EPOCHS, BATCH, LR, SEED, SCALE = 2000, 1000, 4, 64, 0.01, 0, 64.0
mean, _ = image_statistics(data.x_train)                             # (3, 32, 32) mean image (Sec. 2)
x_train, y_train, x_test, y_test = default_subset(N_TRAIN, N_TEST, SEED, data)  # random, class-mixed
x_train = (x_train.astype(np.float32) - mean) / SCALE                # (2000, 3, 32, 32)
x_test = (x_test.astype(np.float32) - mean) / SCALE                  # (1000, 3, 32, 32)

model = AlexNet(AlexNetConfig.cifar(conv_channels=(16, 32, 48, 48, 32), fc_sizes=(256, 256),
                                    dropout=0.5, dropout_mode="paper", seed=SEED))
opt = SGD(model, lr=LR, momentum=0.9, weight_decay=5e-4)
loss_fn, rng = SoftmaxCrossEntropy(), np.random.default_rng(SEED)
for epoch in range(EPOCHS):
    order, wrong = rng.permutation(N_TRAIN), 0
    for i in range(0, N_TRAIN, BATCH):
        idx = order[i:i + BATCH]
        logits = model.forward(x_train[idx], train=True)
        loss_fn.forward(logits, y_train[idx])
        model.backward(loss_fn.backward())
        opt.step()
        wrong += int((logits.argmax(axis=1) != y_train[idx]).sum())
    print(f"epoch {epoch + 1}: training error (with dropout) {wrong / N_TRAIN:.3f}")

# %%
split = model.names.index("flatten")
conv_part, fc_part = model.layers[:split], model.layers[split:]
h = x_test
for layer in conv_part:
    h = layer.forward(h, train=False)                                # (1000, 32, 3, 3), computed once

def fc_forward(h, train):
    for layer in fc_part:
        h = layer.forward(h, train=train)
    return h                                                         # (1000, 10) logits

p_scaled = softmax(fc_forward(h, train=False))                       # the paper's 0.5 scaling
K = 200
samples = np.stack([softmax(fc_forward(h, train=True)) for _ in range(K)])   # (K, 1000, 10)
ks = np.array([1, 2, 5, 10, 20, 50, 100, 200])
err_arith = [float((samples[:k].mean(0).argmax(1) != y_test).mean()) for k in ks]
err_geo = [float((np.log(samples[:k] + 1e-30).mean(0).argmax(1) != y_test).mean()) for k in ks]
err_scaled = float((p_scaled.argmax(1) != y_test).mean())
agree = float((samples.mean(0).argmax(1) == p_scaled.argmax(1)).mean())
print(f"test error, 0.5-scaled net                 : {err_scaled:.3f}")
print(f"test error, one sampled sub-network         : {err_arith[0]:.3f}")
print(f"test error, arithmetic mean of {K} samples  : {err_arith[-1]:.3f}")
print(f"test error, geometric mean of {K} samples   : {err_geo[-1]:.3f}")
print(f"predictions of the scaled net and the {K}-sample mean agree on {agree:.1%} of test images")
print(f"mean |p_scaled - p_mean| per class probability: {np.abs(p_scaled - samples.mean(0)).mean():.4f}")

# %%
fig, ax = plt.subplots(figsize=(6.5, 3.6))
ax.semilogx(ks, err_arith, "o-", label="average of K sampled nets (arithmetic)")
ax.semilogx(ks, err_geo, "s--", label="average of K sampled nets (geometric)")
ax.axhline(err_scaled, color="k", ls=":", label="one pass, outputs x 0.5 (paper)")
ax.set_xlabel("K, number of sampled dropout masks"); ax.set_ylabel("test error")
ax.set_title(f"Dropout as an ensemble ({N_TEST} CIFAR-10 test images)")
ax.legend(fontsize=8)
plt.show()
print(f"notebook ran in {time.perf_counter() - t_start:.1f} s wall, {time.process_time():.1f} s CPU")

# %% [markdown]
# **Reading the result.** Compare the curve with the dotted line: the question is how many sampled
# sub-networks an explicit ensemble needs before it matches the one-pass 0.5-scaled net, which costs a
# single forward pass. The agreement rate and the mean probability difference printed above say how
# close the two predictors are for *this* small net; the paper only claims that the scaling is a
# reasonable approximation to the geometric mean of the ensemble.


# %% [markdown]
# ## Full scale, beside this miniature
#
# Everything above is this notebook's **miniature**, run live in about a minute. Below is the
# **full-scale** result, read from `docs/results/dropout/` (not computed here): Sec. 4.2 at full scale: the cifar AlexNet with and without dropout, two seeds each, on the full CIFAR-10, with the train/test gap.
# `docs/results.md` has every claim; `python -m minialex.reproduce dropout --quick` runs the same
# experiment's own miniature, and without `--quick` the full run (hours on a CPU).

# %%
from minialex.reproduce.published import show

show("dropout")
