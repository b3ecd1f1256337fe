# %% [markdown]
# # Sec. 7 Discussion: depth matters
#
# **The claim.** "Our network's performance degrades if a single convolutional layer is removed. For
# example, removing any of the middle layers results in a loss of about 2% for the top-1 performance
# of the network. So the depth really is important for achieving our results."
#
# This notebook removes one middle conv layer with the model's ablation switch
# (`AlexNetConfig(drop_conv=(3,))`: conv3 and its ReLU disappear, every spatial size stays the same,
# docs/deviations.md item 13), shows what changes in the architecture, and compares the full and the
# shallower net on a small run.
#
# Settings of the run: bundled CIFAR-10 subset (`load_default()`, JPEG re-encoded CIFAR-10), 2,000
# random training / 1,000 random test images, input centred and divided by 64; narrow AlexNet-shaped
# net (`AlexNetConfig.cifar`, widths 16-32-48-48-32, FC 128-128, no dropout), SGD lr 0.01, momentum
# 0.9, weight decay 5e-4, batch 64, 3 epochs, seed 0.

# %%
import time

import matplotlib.pyplot as plt
import numpy as np

from minialex.data import image_statistics, default_subset, load_default
from minialex.layers import Conv2D, SoftmaxCrossEntropy
from minialex.metrics import topk_error
from minialex.model import AlexNet, AlexNetConfig
from minialex.optim import SGD

t_start = time.perf_counter()
narrow = dict(conv_channels=(16, 32, 48, 48, 32), fc_sizes=(128, 128), dropout=0.0, seed=0)

# %% [markdown]
# ## 1. What removing conv3 changes
#
# The paper's net, with and without conv3: one conv layer fewer, conv4 now reads conv2's pooled maps
# directly (256 channels instead of 384), every output size is unchanged.

# %%
for drop in [(), (3,)]:
    m = AlexNet(AlexNetConfig.paper(drop_conv=drop))
    convs = [(n, l.in_channels, l.out_channels, l.groups) for n, l in zip(m.names, m.layers) if isinstance(l, Conv2D)]
    print(f"drop_conv={drop}: {len(convs)} conv layers, {m.num_params():,} parameters")
    print("   ", ", ".join(f"{n} {c}->{f}" + (" g2" if g == 2 else "") for n, c, f, g in convs))
    print("    pool5 output:", [s for n, _, s in m.layer_shapes() if n == "pool5"][0])
    del m

# %% [markdown]
# ## 2. Full vs one conv layer fewer, on a small run
#
# Same seed, same batches, the same initial weights for every layer the two nets share.

# %%
data = load_default()
N_TRAIN, N_TEST, EPOCHS, BATCH, LR, SEED, SCALE = 2000, 1000, 3, 64, 0.01, 0, 64.0
mean, _ = image_statistics(data.x_train)                             # (3, 32, 32) mean image (Sec. 2)
x_train, y_train, x_test, y_test = default_subset(N_TRAIN, N_TEST, SEED, data)  # random, class-mixed
x_train = (x_train.astype(np.float32) - mean) / SCALE                # (2000, 3, 32, 32)
x_test = (x_test.astype(np.float32) - mean) / SCALE                  # (1000, 3, 32, 32)


def train(model):
    """Momentum SGD (minialex.optim, Sec. 5); training error of every epoch."""
    opt = SGD(model, lr=LR, momentum=0.9, weight_decay=5e-4)
    loss_fn, rng, curve = SoftmaxCrossEntropy(), np.random.default_rng(SEED), []
    for epoch in range(EPOCHS):
        order, wrong = rng.permutation(N_TRAIN), 0
        for i in range(0, N_TRAIN, BATCH):
            idx = order[i:i + BATCH]
            logits = model.forward(x_train[idx], train=True)
            loss_fn.forward(logits, y_train[idx])
            model.backward(loss_fn.backward())
            opt.step()
            wrong += int((logits.argmax(axis=1) != y_train[idx]).sum())
        curve.append(wrong / N_TRAIN)
    return curve


results = {}
for drop in [(), (3,)]:
    t0 = time.perf_counter()
    model = AlexNet(AlexNetConfig.cifar(drop_conv=drop, **narrow))
    curve = train(model)
    scores = np.concatenate([model.predict(x_test[i:i + 500]) for i in range(0, N_TEST, 500)])
    results[drop] = (curve, topk_error(scores, y_test, 1), topk_error(scores, y_test, 5), model.num_params())
    print(f"drop_conv={drop!s:5}: {model.num_params():,} params, training error {np.round(curve, 3)}, "
          f"test top-1 {results[drop][1]:.3f}, top-5 {results[drop][2]:.3f} ({time.perf_counter() - t0:.0f} s)")

# %%
fig, ax = plt.subplots(figsize=(6.5, 3.5))
for drop, (curve, top1, top5, n) in results.items():
    label = "all 5 conv layers" if not drop else "without conv3"
    line, = ax.plot(range(1, EPOCHS + 1), curve, "o-", label=f"{label}: training")
    ax.axhline(top1, ls="--", color=line.get_color(), label=f"{label}: test top-1 {top1:.3f}")
ax.set_xlabel("epoch"); ax.set_ylabel("error"); ax.legend(fontsize=8)
ax.set_title(f"Depth ablation, {N_TRAIN} CIFAR-10 images, seed {SEED}")
plt.show()
d1 = results[(3,)][1] - results[()][1]
print(f"top-1 change from removing conv3 in this run: {d1:+.3f} (paper, ImageNet: about +0.02)")
print(f"notebook ran in {time.perf_counter() - t_start:.1f} s wall, {time.process_time():.1f} s CPU")

# %% [markdown]
# **Reading the result.** A 2% effect on ImageNet after 90 epochs is not something a 3-epoch run on
# 2,000 CIFAR-10 images can confirm or refute: the shallower net is also cheaper and may even learn
# faster at first. The printed change is what this one run gave; a real test needs the full training
# run (`python -m minialex.train --drop-conv 3`) and several seeds.


# %% [markdown]
# ## Full scale, beside this miniature
#
# Everything above is this notebook's **miniature**, run live in about a minute. Below is the
# **full-scale** result, read from `docs/results/depth/` (not computed here): Sec. 7 at full scale: the cifar AlexNet with and without conv3, two seeds each, on the full CIFAR-10.
# `docs/results.md` has every claim; `python -m minialex.reproduce depth --quick` runs the same
# experiment's own miniature, and without `--quick` the full run (hours on a CPU).

# %%
from minialex.reproduce.published import show

show("depth")
