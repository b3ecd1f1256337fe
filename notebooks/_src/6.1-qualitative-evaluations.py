# %% [markdown]
# # Sec. 6.1 Qualitative evaluations
#
# **The claim.** Figure 3: the 96 learned conv1 kernels show frequency- and orientation-selective
# filters and coloured blobs; the **48 kernels on GPU 1 are largely colour-agnostic, the 48 on GPU 2
# largely colour-specific**, a split that happens in every run. Figure 4 (left): test images with the
# net's **top-5 labels and their probabilities**. Figure 4 (right): images whose **last hidden layer
# (4096-d) vectors are close in Euclidean distance** are semantically similar, even when their pixels
# are not.
#
# This notebook draws all three for a small net trained here, with `minialex.figures` and
# `AlexNet.features` (fc7 activations).
#
# Settings: bundled CIFAR-10 subset (`load_default()`, JPEG re-encoded CIFAR-10), 3,000 random
# training images, 500 random test images; a narrow AlexNet-shaped net (`AlexNetConfig.cifar`, two
# towers, conv1 with 16 kernels of 5x5x3, 8 per tower, widths 16-32-48-48-32, FC 128-128, no
# dropout), input centred and divided by 64, SGD lr 0.01, momentum 0.9, weight decay 5e-4, batch 64,
# 3 epochs, seed 0. A net this small and this briefly trained learns crude filters; whether its towers
# specialise by colour, as the paper's did after 90 epochs, is measured below, not assumed.

# %%
import tempfile
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Image, display

from minialex import figures
from minialex.data import image_statistics, default_subset, load_default
from minialex.evaluation import extract_features, predict_proba
from minialex.layers import SoftmaxCrossEntropy
from minialex.metrics import topk_error
from minialex.model import AlexNet, AlexNetConfig
from minialex.optim import SGD

t_start = time.perf_counter()
N_TRAIN, N_TEST, EPOCHS, BATCH, LR, SEED, SCALE = 3000, 500, 3, 64, 0.01, 0, 1 / 64
OUT = Path(tempfile.mkdtemp(prefix="minialex-6.1-"))                # figures writes PNGs; shown inline below

data = load_default()
mean, _ = image_statistics(data.x_train)                             # (3, 32, 32) mean image (Sec. 2)
x_train, y_train, x_test, y_test = default_subset(N_TRAIN, N_TEST, SEED, data)  # uint8, random, class-mixed
names = data.class_names
prep = {"mean": mean, "crop": 32, "pad": 0, "scale": SCALE}          # how evaluate feeds the net

# %%
model = AlexNet(AlexNetConfig.cifar(conv_channels=(16, 32, 48, 48, 32), fc_sizes=(128, 128),
                                    dropout=0.0, seed=SEED))
w_init = model["conv1"].params["w"].copy()
x_in = (x_train.astype(np.float32) - mean) * np.float32(SCALE)      # (3000, 3, 32, 32)
opt = SGD(model, lr=LR, momentum=0.9, weight_decay=5e-4)
loss_fn, rng = SoftmaxCrossEntropy(), np.random.default_rng(SEED)
for epoch in range(EPOCHS):
    order = rng.permutation(N_TRAIN)
    for i in range(0, N_TRAIN, BATCH):
        idx = order[i:i + BATCH]
        loss_fn.forward(model.forward(x_in[idx], train=True), y_train[idx])
        model.backward(loss_fn.backward())
        opt.step()
probs = predict_proba(model, x_test, prep)                            # (500, 10) softmax
print(f"trained; test top-1 error {topk_error(probs, y_test, 1):.3f}, "
      f"top-5 {topk_error(probs, y_test, 5):.3f} ({N_TEST} test images)")

# %% [markdown]
# ## 1. conv1 kernels by tower (Figure 3)
#
# `figures.filter_grid` tiles the kernels of each tower in its own block (tower 1 on top), each kernel
# scaled to its own range. Before and after training:

# %%
slices = model["conv1"].tower_slices
fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
for ax, (title, w) in zip(axes, [("at initialisation", w_init), (f"after {EPOCHS} epochs", model["conv1"].params["w"])]):
    ax.imshow(figures.filter_grid(w, slices), interpolation="nearest")
    ax.set_title(f"conv1 {title}\n(top block: tower 1, bottom: tower 2)", fontsize=9); ax.axis("off")
plt.show()

# %% [markdown]
# How colourful is each kernel? A colour-agnostic kernel has nearly the same weights in R, G and B;
# we measure the share of each kernel's weight variance that lies *across* the colour channels (0 for a
# grey kernel):

# %%
def colourfulness(w):
    """(F, 3, K, K) -> (F,): variance across channels / total variance, per kernel."""
    across = w.var(axis=1).mean(axis=(1, 2))                        # spread of R, G, B at each tap
    total = w.reshape(len(w), -1).var(axis=1) + 1e-12
    return across / total

c = colourfulness(model["conv1"].params["w"])
c0 = colourfulness(w_init)
for t, (a, b) in enumerate(slices):
    print(f"tower {t + 1}: colourfulness mean {c[a:b].mean():.2f} (at init {c0[a:b].mean():.2f}), "
          f"kernels {np.round(c[a:b], 2)}")

# %% [markdown]
# ### What you are looking at, and why it is not yet Figure 3
#
# The two grids above look alike, and both look like colour noise; the towers' colourfulness is
# about the same after training as at initialisation. Two numbers explain it:

# %%
moved = figures.moved_from_init(model)          # ||w - w0|| / ||w0||, w0 rebuilt from the config's seed
w_rand = np.random.default_rng(1).standard_normal((2000, 3, 5, 5))   # i.i.d. kernels, like an init
print(f"conv1 moved {100 * moved:.0f}% from its initialisation in {EPOCHS} epochs "
      f"({EPOCHS * -(-N_TRAIN // BATCH)} SGD steps)")
print(f"colourfulness of i.i.d. random kernels: {colourfulness(w_rand).mean():.2f} "
      "(2/3 in expectation: the variance across 3 channels is 2/3 of the total); a grey kernel: 0.00")

# %% [markdown]
# - **The kernels have barely left their random start.** Each still consists mostly of its
#   initialisation, which is independent noise in every tap and colour: that is the colour noise you
#   see. Our narrow net trained for the steps printed above; the paper's kernels are the product of about
#   90 epochs over 1.2 million images (about 840,000 steps of 128, Sec. 5). README's default run
#   (`python -m minialex.train`, 8 epochs on the bundled subset) is in the same situation: its conv1
#   moved 23% from its initialisation (measured on that run; `python -m minialex.viz filters` prints
#   the number for any checkpoint), and its Figure 3 also looks like noise.
# - **The colourfulness numbers measure the noise, not a learned split.** Random kernels score 2/3
#   (printed above), and that is what both towers score, before and after. The paper's GPU-1 kernels
#   would score near 0 (grey edges and gratings); its GPU-2 kernels higher (colour blobs). A split
#   between the towers can only show once the kernels are mostly learned weights, not initial ones.
#
# So this cell shows how to *draw and measure* Figure 3, on a net too small and too briefly trained to
# *reproduce* it. The full-scale figure belongs to the results page, `docs/results.md`: conv1 of
# the long full-CIFAR-10 run (`python -m minialex.reproduce cifar-best`), drawn with
# `python -m minialex.viz filters` from its checkpoint, which also prints how far its kernels moved.
# That page marks the runs that are still going; until that run has finished, this notebook's
# miniature and the default run are all there is, and they show the method, not the paper's result.

# %% [markdown]
# ## 2. Top-5 labels (Figure 4, left)
#
# Eight test images, each with the five most probable labels (`figures.plot_top5`; the bar of the true
# label is red).

# %%
show = np.arange(8)
path = figures.plot_top5(x_test[show], probs[show], y_test[show], names, OUT / "top5.png", width_px=1400, height_px=420)
display(Image(filename=str(path)))
print("true label in the top 5 for", int(sum(y_test[i] in np.argsort(-probs[i])[:5] for i in show)), "of 8")

# %% [markdown]
# ## 3. Nearest neighbours in fc7 space (Figure 4, right)
#
# `AlexNet.features` returns the last hidden layer's activations (fc7 after its ReLU; 128-d here,
# 4096-d in the paper). For a few test images we find the training images whose vectors are closest in
# Euclidean distance (`figures.nearest_neighbours`), and compare with neighbours by raw pixel distance.

# %%
f_train = extract_features(model, x_train, prep)                      # (3000, 128)
f_test = extract_features(model, x_test, prep)                        # (500, 128)
queries = np.arange(5)
nn_feat = figures.nearest_neighbours(f_test[queries], f_train, n=6)       # (5, 6) indices into x_train
pix = lambda a: a.reshape(len(a), -1).astype(np.float64)
nn_pix = figures.nearest_neighbours(pix(x_test[queries]), pix(x_train), n=6)
path = figures.plot_neighbours(x_test[queries], x_train, nn_feat, OUT / "neighbours.png", width_px=700, height_px=600)
display(Image(filename=str(path)))
for kind, nn in [("fc7", nn_feat), ("pixels", nn_pix)]:
    same = (y_train[nn] == y_test[queries][:, None]).mean()
    print(f"neighbours by {kind:6}: {same:.0%} share the query's label")

# %% [markdown]
# Over all 500 test queries (five neighbours each), how often does a neighbour share the query's
# class, in fc7 space and in pixel space? Chance is 10%.

# %%
nn_f = figures.nearest_neighbours(f_test, f_train, n=5)
nn_p = figures.nearest_neighbours(pix(x_test), pix(x_train), n=5)
agree_f = (y_train[nn_f] == y_test[:, None]).mean()
agree_p = (y_train[nn_p] == y_test[:, None]).mean()
fig, ax = plt.subplots(figsize=(4.5, 3))
ax.bar(["fc7 features", "raw pixels"], [agree_f, agree_p], color=["tab:green", "tab:gray"])
ax.axhline(0.1, color="k", ls=":", label="chance")
ax.set_ylabel("neighbours with the same label"); ax.legend()
ax.set_title(f"5 nearest training images, {N_TEST} test queries")
plt.show()
print(f"same label: fc7 {agree_f:.1%}, pixels {agree_p:.1%}")
print(f"notebook ran in {time.perf_counter() - t_start:.1f} s wall, {time.process_time():.1f} s CPU")
