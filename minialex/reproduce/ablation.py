"""The four one-switch ablations of the cifar AlexNet: pool, depth, dropout, augment.

Each compares the cifar net as the paper builds it (the baseline: five conv
layers in two towers, LRN, overlapping 3/2 pools, dropout 0.5 in fc6/fc7,
random crops and flips) with the same net with one thing changed, over the
same seeds, and reports the test error of each arm, the effect, and the
train/test gap (test error minus the test-mode error on 5,000 training
images, centre crop, no dropout).

The baseline runs and its learning-rate sweep live in ``cifar-baseline``
beside ``--out`` and are trained once for all four experiments (a finished
one is reused). Recipe: ``AlexNetConfig.cifar()``, SGD batch 128, momentum
0.9, weight decay 0.0005, cosine decay; the learning rate is chosen from
{0.01, 0.02, 0.04} by the baseline's validation error after 2 epochs on
10,000 training images (extended past an end of the grid where the best
lies, ``context.choose_lr``), and used for both arms.
"""
from __future__ import annotations


from .context import EXTENDED, choose_lr, mean_spread, tried
from .runner import RunSpec

SHARED = "cifar-baseline"
FULL = dict(epochs=12, lrs=(0.01, 0.02, 0.04), sweep_epochs=2, sweep_images=10000, seeds=(0, 1),
            train_limit=None)
QUICK = dict(epochs=1, lrs=(0.02, 0.04), sweep_epochs=1, sweep_images=400, seeds=(0,), train_limit=600)
BASE = dict(net_options={"dropout": 0.5}, pad=4, flip=True)


def _spec(name, lr, epochs, seed, limit, change):
    kw = {**BASE, **change}
    kw["net_options"] = {**BASE["net_options"], **change.get("net_options", {})}
    return RunSpec(name, net="cifar", epochs=epochs, lr=lr, seed=seed, train_limit=limit, **kw)


def run_ablation(ctx, name, claim, arm, change, paper, figure_title):
    """Train the baseline (shared) and the changed arm over the seeds; write result.md.

    arm: label of the changed net, e.g. "2/2 pooling"; change: RunSpec
    fields to override (net_options merge into the baseline's).
    """
    p = QUICK if ctx.quick else FULL
    lr, sweep = choose_lr(ctx, lambda lr: _spec(f"sweep-lr{lr:g}", lr, p["sweep_epochs"], 0,
                                                p["sweep_images"], {}), p["lrs"], shared=SHARED)
    arms = {"baseline": [], arm: []}
    if lr is not None:
        for seed in ctx.seeds_or(p["seeds"]):
            arms["baseline"].append(ctx.train(_spec(f"baseline-seed{seed}", lr, p["epochs"], seed,
                                                    p["train_limit"], {}), shared=SHARED))
            arms[arm].append(ctx.train(_spec(f"{name}-seed{seed}", lr, p["epochs"], seed, p["train_limit"],
                                             change)))
    test = {k: [r.get("test_top1") for r in v] for k, v in arms.items()}
    gap = {k: [r["test_top1"] - r["train_eval_top1"] for r in v if r.get("train_eval_top1") is not None]
           for k, v in arms.items()}
    diff = [b - a for a, b in zip(test["baseline"], test[arm]) if a is not None and b is not None]
    effect = mean_spread(diff).replace("%", " points", 1) if diff else "–"
    claims = [("test top-1 error, baseline (the paper's choice)", "–", mean_spread(test["baseline"])),
              (f"test top-1 error, {arm}", "–", mean_spread(test[arm])),
              (f"effect: {arm} minus baseline, per seed", paper, effect),
              ("train/test gap, baseline (test error - train error, test mode)", "–",
               mean_spread(gap["baseline"]).replace("%", " points", 1)),
              (f"train/test gap, {arm}", "–", mean_spread(gap[arm]).replace("%", " points", 1))]
    figure = None
    if any(r.get("metrics") for v in arms.values() for r in v):
        from .figures import grouped_curves
        figure = grouped_curves(ctx.out / f"{name}.png", arms, title=figure_title)
    notes = ["## Recipe", __doc__.split("\n\n", 1)[1].replace("\n", " "),
             f"Chosen learning rate: {'–' if lr is None else lr} from {tried(sweep)} ({EXTENDED}); {p['epochs']} "
             "epochs per run. The test set "
             "was not used for any choice.",
             "Differences from the paper: 32x32 CIFAR-10 (JPEG q75 copy) with the cifar-sized net "
             "(260,970 parameters), not ImageNet with 60M; a short cosine schedule; one centre crop."]
    ctx.write_result(f"{name}: {claim}", claims, list(sweep) + arms["baseline"] + arms[arm], notes,
                     figure)
    return arms


