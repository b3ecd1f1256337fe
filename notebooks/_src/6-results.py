# %% [markdown]
# # Sec. 6 Results
#
# **The claim.** On ILSVRC-2010 the net reaches **37.5% top-1 and 17.0% top-5** test error (the
# previous best: 47.1% / 28.2%). At test time it averages its softmax over **ten patches** (Sec. 4.1),
# and on ILSVRC-2012 **averaging five similar CNNs** lowers the error from 40.7% / 18.2% (one CNN) to
# 38.1% / 16.4%.
#
# This notebook measures the same three things, in miniature, with `minialex.evaluation`: top-1 and
# top-5 error of a small trained model, centre crop vs ten crops, and an ensemble of three models.
#
# Settings: bundled CIFAR-10 subset (`load_default()`, JPEG re-encoded CIFAR-10); 2,000 random
# training images, 600 random test images (so each error has a standard error of about 2 points).
# Three narrow AlexNet-shaped nets (`AlexNetConfig.cifar`, input 28 x 28, widths 16-32-48-48-32,
# FC 128-128, no dropout) with seeds 0, 1, 2, each trained for 3 epochs on random 28 x 28 crops of the
# 32 x 32 images and their reflections (the CIFAR analogue of 224 of 256), input centred and divided by
# 64; SGD lr 0.01, momentum 0.9, weight decay 5e-4, batch 64. These are small, briefly trained models:
# the errors are far above the paper's, and on 10 classes top-5 is a much easier target than on 1000.

# %%
import time

import matplotlib.pyplot as plt
import numpy as np

from minialex.data import TrainTransform, image_statistics, default_subset, load_default
from minialex.evaluation import ensemble, predict_proba
from minialex.layers import SoftmaxCrossEntropy
from minialex.metrics import topk_error
from minialex.model import AlexNet, AlexNetConfig
from minialex.optim import SGD

t_start = time.perf_counter()
N_TRAIN, N_TEST, EPOCHS, BATCH, LR, CROP, SCALE = 2000, 600, 3, 64, 0.01, 28, 1 / 64
SEEDS = (0, 1, 2)

data = load_default()
mean, _ = image_statistics(data.x_train)                             # (3, 32, 32) mean image (Sec. 2)
x_train, y_train, x_test, y_test = default_subset(N_TRAIN, N_TEST, 0, data)  # uint8, random, class-mixed
names = data.class_names
# how minialex.evaluation turns uint8 test images into net inputs: centre/ten crops of (x - mean) * scale
prep = {"mean": mean, "crop": CROP, "pad": 0, "scale": SCALE}

# %% [markdown]
# ## 1. Train three small nets
#
# Each training batch goes through `TrainTransform` (mean subtraction, a random 28 x 28 crop and a
# random reflection, Sec. 2 and 4.1), then the input scale.

# %%
augment = TrainTransform(mean=mean, crop=CROP, flip=True)


def train(seed):
    model = AlexNet(AlexNetConfig.cifar(input_size=CROP, conv_channels=(16, 32, 48, 48, 32),
                                        fc_sizes=(128, 128), dropout=0.0, seed=seed))
    opt = SGD(model, lr=LR, momentum=0.9, weight_decay=5e-4)
    loss_fn, rng = SoftmaxCrossEntropy(), np.random.default_rng(seed)
    for epoch in range(EPOCHS):
        order = rng.permutation(N_TRAIN)
        for i in range(0, N_TRAIN, BATCH):
            idx = order[i:i + BATCH]
            xb = augment(x_train[idx], rng) * np.float32(SCALE)        # (B, 3, 28, 28) float32
            loss_fn.forward(model.forward(xb, train=True), y_train[idx])
            model.backward(loss_fn.backward())
            opt.step()
    return model


models = []
for seed in SEEDS:
    t0 = time.perf_counter()
    models.append(train(seed))
    print(f"model {seed} trained in {time.perf_counter() - t0:.0f} s")

# %% [markdown]
# ## 2. Top-1 / top-5, centre crop vs ten crops, and the ensemble
#
# `predict_proba` returns the softmax in test mode, either for the centre 28 x 28 crop or averaged over
# the ten patches (four corners, centre, and their reflections). `ensemble` averages the softmax
# outputs of several models, as the paper does.

# %%
probs = {}
for seed, model in zip(SEEDS, models):
    probs[seed, "centre"] = predict_proba(model, x_test, prep, ten_crop=False)   # (600, 10)
    probs[seed, "ten"] = predict_proba(model, x_test, prep, ten_crop=True)       # (600, 10)
for mode in ("centre", "ten"):
    probs["ensemble", mode] = ensemble([probs[s, mode] for s in SEEDS])

rows = []
print(f"{'model':>10} {'test mode':>10} {'top-1':>7} {'top-5':>7}")
for key, p in probs.items():
    e1, e5 = topk_error(p, y_test, 1), topk_error(p, y_test, 5)
    rows.append((key, e1, e5))
    print(f"{str(key[0]):>10} {key[1]:>10} {e1:7.3f} {e5:7.3f}")

# %%
fig, ax = plt.subplots(figsize=(7.5, 3.4))
labels = [f"{k[0]}\n{k[1]}" for k, _, _ in rows]
x = np.arange(len(rows))
ax.bar(x - 0.2, [r[1] for r in rows], 0.4, label="top-1 error")
ax.bar(x + 0.2, [r[2] for r in rows], 0.4, label="top-5 error")
ax.set_xticks(x, labels, fontsize=8); ax.set_ylabel("test error")
ax.set_title(f"Single models vs ensemble, centre vs ten crops ({N_TEST} CIFAR-10 test images)")
ax.legend()
plt.show()
single_c = np.mean([r[1] for r in rows if r[0][0] in SEEDS and r[0][1] == "centre"])
single_t = np.mean([r[1] for r in rows if r[0][0] in SEEDS and r[0][1] == "ten"])
ens_t = [r[1] for r in rows if r[0] == ("ensemble", "ten")][0]
print(f"mean top-1 of single models: centre {single_c:.3f}, ten crops {single_t:.3f}; "
      f"ensemble of {len(SEEDS)} with ten crops {ens_t:.3f}")
print(f"notebook ran in {time.perf_counter() - t_start:.1f} s wall, {time.process_time():.1f} s CPU")

# %% [markdown]
# **Reading the result.** The table is what these three small models gave on 600 test images: the
# paper's pattern is that ten crops beat the centre crop and the ensemble beats every member. With
# errors this high and only 600 test images, differences of a point or two are within noise. For real
# figures train with `python -m minialex.train` and evaluate the checkpoints with
# `python -m minialex.evaluate a.npz b.npz c.npz --ten-crop`.
