"""lrn-cifar (Sec. 3.3): the cuda-convnet four-layer CIFAR-10 net with and without response normalisation.

The paper: "On the CIFAR-10 dataset, a four-layer CNN achieved a 13% test
error rate without normalization and 11% with normalization." That net is
cuda-convnet's ``layers-conv-local-13pct`` / ``-11pct`` (two conv layers,
two locally connected layers, fc10), built by ``minialex.cuda_convnet``
("conv-local"). Both arms share one recipe: SGD batch 128, momentum 0.9,
weight decay 0.0005, random 24x24 crops of the 32x32 image and flips
(cuda-convnet's "training on image translations"), a centre 24x24 crop at
test time, cosine decay over the run. The learning rate is chosen on the
net with LRN (the paper's net) from {0.01, 0.02, 0.04} by the validation
error after 3 epochs on 15,000 training images (extended past an end of the
grid where the best lies, ``context.choose_lr``), and used for both arms.
"""
from __future__ import annotations

from .context import EXTENDED, choose_lr, mean_spread, pct, tried
from .runner import RunSpec

NAME = "lrn-cifar"
SECTION = "Sec. 3.3"
CLAIM = "four-layer CNN on CIFAR-10: 13% test error without response normalisation, 11% with it"

FULL = dict(epochs=20, lrs=(0.01, 0.02, 0.04), sweep_epochs=3, sweep_images=15000, seeds=(0, 1),
            train_limit=None)
QUICK = dict(epochs=1, lrs=(0.01, 0.02), sweep_epochs=1, sweep_images=400, seeds=(0,), train_limit=600)


def spec(name, lrn, lr, epochs, seed, limit):
    return RunSpec(name, net="conv-local", net_options={"lrn": lrn, "local": True}, epochs=epochs, lr=lr,
                   seed=seed, pad=0, train_limit=limit)


def run(ctx):
    p = QUICK if ctx.quick else FULL
    lr, sweep = choose_lr(ctx, lambda lr: spec(f"sweep-lrn-lr{lr:g}", True, lr, p["sweep_epochs"], 0,
                                               p["sweep_images"]), p["lrs"])
    arms = {"LRN": [], "no LRN": []}
    if lr is not None:
        for seed in ctx.seeds_or(p["seeds"]):            # interleaved: a cut-off leaves matched pairs
            arms["LRN"].append(ctx.train(spec(f"lrn-seed{seed}", True, lr, p["epochs"], seed, p["train_limit"])))
            arms["no LRN"].append(ctx.train(spec(f"nolrn-seed{seed}", False, lr, p["epochs"], seed,
                                                 p["train_limit"])))
    test = {k: [r.get("test_top1") for r in v] for k, v in arms.items()}
    pairs = [b - a for a, b in zip(test["LRN"], test["no LRN"]) if a is not None and b is not None]
    claims = [("test top-1 error with LRN (layers-conv-local-11pct)", "11%; target here <= 15%",
               mean_spread(test["LRN"])),
              ("test top-1 error without LRN (-13pct)", "13%", mean_spread(test["no LRN"])),
              ("LRN effect: error without minus with, per seed", "2 points",
               mean_spread(pairs).replace("%", " points", 1) if pairs else "–")]
    figure = None
    if any(r.get("metrics") for v in arms.values() for r in v):
        from .figures import grouped_curves
        figure = grouped_curves(ctx.out / f"{NAME}.png", arms,
                                title="Sec. 3.3: cuda-convnet conv-local net, CIFAR-10, with and without LRN")
    notes = [
        "## Recipe",
        __doc__.split("\n\n", 1)[1].replace("\n", " "),
        f"Chosen learning rate: {'–' if lr is None else lr} from {tried(sweep)} (sweep rows `sweep-lrn-*`, "
        f"validation error, {p['sweep_epochs']} epochs on {p['sweep_images']:,} images; {EXTENDED}); "
        f"{p['epochs']} epochs per run. "
        "The test set was not used for any choice.",
        "Differences from cuda-convnet's recipe (`minialex/cuda_convnet.py` lists them all): whole-window "
        "pooling (24 -> 11 -> 5, not 12 -> 6), He-style initialisation, one learning rate and weight "
        "decay for every layer, a cosine schedule of fixed length instead of ~450 epochs with batch 5 "
        "folded in, one centre crop at test time instead of cuda-convnet's multi-view test, and a "
        "JPEG q75 copy of CIFAR-10.",
    ]
    ctx.write_result(f"{NAME}: {CLAIM}", claims, list(sweep) + arms["LRN"] + arms["no LRN"], notes, figure)
