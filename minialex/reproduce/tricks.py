"""tricks: the Bag of Tricks (He et al. 2019) on the cifar AlexNet, one trick at a time, then all.

Baseline: the cifar config's recipe (``python -m minialex.train --config
cifar``: conv 32-48-64-64-48, fc 256-256, two towers, LRN, 3/2 pools, no
dropout; SGD batch 64, momentum 0.9, weight decay 0.0005 on every
parameter, crops of the 4-pixel-padded image and flips, inputs /64) with the
paper's schedule, lr divided by 10 on a fixed timetable (every third of the
run, Sec. 5's rule without a plateau detector), so that cosine decay can be
one of the tricks. Its learning rate is chosen on the validation split.

Each trick is then added to the baseline alone (BoT = Bag of Tricks section):

============  ===========================================================  ========
run           change                                                       BoT
============  ===========================================================  ========
cosine        cosine decay of the lr to 0 over the run                     Sec. 5.1
warmup        lr rises linearly over the first epoch                       Sec. 3.1
no-bias-decay weight decay on weights only                                 Sec. 3.1
lr-scaling    batch 256, lr = base * 256 / 256 with base = 4x the          Sec. 3.1
              baseline's lr (the rule that maps batch 64's lr to 256)
smoothing     label smoothing eps 0.1                                      Sec. 5.2
mixup         mixup alpha 0.2                                              Sec. 5.4
distill       distillation from the "cosine" run's net, T = 20            Sec. 5.3
all           every trick above together
chosen        the tricks that each lowered the validation error of the
              baseline (seed 0) when added alone: a recipe chosen on the
              validation split, as a user would choose one
============  ===========================================================  ========

fp16 (Sec. 3.2) is not in the ablation: on the numpy backend it runs the
readable float16 layers about a hundred times slower than float32 (it is a
correctness reference there; its speed is the GPU's, issue 20).

Every run has the same epoch budget: 10 epochs of the 45,000 training images
(chosen by time: about 40 minutes per run on one busy core). The trick settings are the paper's
values (eps 0.1, alpha 0.2, T 20; warm-up 1 epoch of 10, the paper's 5 of 120
rounded up), not tuned; the only tuned number, the baseline's learning rate,
is chosen on the 5,000 validation images held out from the training set. The
test split is read once per finished run.
"""
from __future__ import annotations

from .context import EXTENDED, choose_lr, mean_spread, pct, tried
from .runner import RunSpec

NAME = "tricks"
SECTION = "Sec. 5 + Bag of Tricks (He et al. 2019)"
CLAIM = "each Bag-of-Tricks refinement added to the cifar AlexNet's recipe, then all together"

BASE_BATCH = 64
FULL = dict(epochs=10, lrs=(0.005, 0.01, 0.02), sweep_epochs=3, sweep_images=15000, seeds=(0, 1),
            train_limit=None, net_options={"dropout": 0.0})
# --quick: a miniature net (conv widths of 8, fc 32) on 600 bundled images, one epoch per run.
SMALL = {"dropout": 0.0, "conv_channels": (8, 8, 8, 8, 8), "fc_sizes": (32, 32)}
QUICK = dict(epochs=2, lrs=(0.01, 0.03), sweep_epochs=1, sweep_images=300, seeds=(0, 1),
             train_limit=600, net_options=SMALL)

# name -> (RunSpec overrides, Tricks fields), each added to the baseline alone (module docstring)
TRICKS = {
    "cosine": ({"schedule": "cosine"}, {}),
    "warmup": ({}, {"warmup_epochs": 1.0}),
    "no-bias-decay": ({}, {"no_bias_decay": True}),
    "lr-scaling": ({"batch_size": 256}, {"lr_scaling": "linear"}),
    "smoothing": ({}, {"label_smoothing": 0.1}),
    "mixup": ({}, {"mixup": 0.2}),
    "distill": ({}, {"distill": None, "distill_t": 20.0}),      # the teacher's path is filled in
}
PAPER = {   # the paper's finding for each trick (He et al. 2019, ImageNet, ResNet-50/-D)
    "cosine": "helps (Table 6, ResNet-50-D: + cosine over the efficient recipe)",
    "warmup": "with zero-gamma and no bias decay, closes the gap of the lr-scaling row (Sec. 3.3, Table 4)",
    "no-bias-decay": "with warm-up and zero-gamma, closes the gap of the lr-scaling row (Sec. 3.3, Table 4)",
    "lr-scaling": "batch 256 -> 1024 with linear scaling alone: -0.9% top-1 accuracy (Sec. 3.3, Table 4)",
    "smoothing": "helps (Table 6)",
    "mixup": "helps, with a longer run (200 epochs instead of 120, Sec. 5.4; Table 6)",
    "distill": "helps (Table 6, a ResNet-152 teacher for ResNet-50, T = 20)",
    "all": "ResNet-50-D 77.16% -> 79.29% top-1 accuracy (Table 6; 75.3% -> 79.29% over the original ResNet-50)",
    "chosen": "– (BoT keeps every trick; this row keeps those that helped on validation here)",
}


def chosen_tricks(single, baseline):
    """The tricks whose run (seed 0) ended with a lower validation error than the baseline's.

    single: {trick: result dict}; baseline: result dict. Returns a tuple in TRICKS order, or None
    while any of those runs is unfinished (the choice needs them all).
    """
    vals = {t: r.get("val_top1") for t, r in single.items()}
    if baseline.get("val_top1") is None or any(v is None for v in vals.values()) or set(vals) != set(TRICKS):
        return None
    return tuple(t for t in TRICKS if vals[t] < baseline["val_top1"])


def _names(chosen):
    """The chosen tricks for the report: 'not yet known' (None), 'none' (empty) or their names."""
    return "not yet known" if chosen is None else ", ".join(chosen) or "none"


def recipe(p, name, lr, seed, teacher_ckpt=None, which=()):
    """The RunSpec of the baseline with the tricks in ``which`` added."""
    over, tricks = {}, {}
    for t in which:
        o, tr = TRICKS[t]
        over.update(o)
        tricks.update(tr)
    if "distill" in tricks:
        tricks["distill"] = str(teacher_ckpt)
    batch = over.get("batch_size", BASE_BATCH)
    if tricks.get("lr_scaling") == "linear":
        lr = lr * 256 / BASE_BATCH          # the base lr of a 256-image batch; Tricks scales it by batch / 256
    kw = dict(net="cifar", epochs=p["epochs"], batch_size=batch, lr=lr, schedule="step", seed=seed,
              net_options=dict(p["net_options"]), train_limit=p["train_limit"], tricks=tricks)
    kw.update({k: v for k, v in over.items() if k != "batch_size"})
    return RunSpec(name, **kw)


def run(ctx):
    p = QUICK if ctx.quick else FULL
    seeds = ctx.seeds_or(p["seeds"])

    def sweep_spec(lr):
        return RunSpec(f"sweep-lr{lr:g}", net="cifar", epochs=p["sweep_epochs"], batch_size=BASE_BATCH, lr=lr,
                       schedule="step", seed=0, net_options=dict(p["net_options"]), train_limit=p["sweep_images"])

    lr, sweep = choose_lr(ctx, sweep_spec, p["lrs"])
    runs, rows, done = list(sweep), {}, {}
    chosen = None          # the "chosen" arm's tricks, once every single-trick run (seed 0) has finished

    def train(spec):
        """ctx.train, once per run name (the teacher is also a row of the table)."""
        if spec.name not in done:
            done[spec.name] = ctx.train(spec)
            runs.append(done[spec.name])
        return done[spec.name]

    def teacher_ckpt(seed):
        """The distillation teacher: the net of the "cosine" run (baseline + cosine decay), trained first
        if need be. On the full training set seed 0's serves every seed; a --quick run draws its
        training subset from the seed, and the teacher must have seen the student's images (their mean)."""
        s = 0 if p["train_limit"] is None else seed
        return ctx.run_dir_of(train(recipe(p, f"cosine-seed{s}", lr, s, which=("cosine",)))) / "checkpoint.npz"

    if lr is not None:
        def arm_run(arm, which, seed):
            ckpt = teacher_ckpt(seed) if "distill" in which else None
            rows.setdefault(arm, []).append(train(recipe(p, f"{arm}-seed{seed}", lr, seed, ckpt, which)))
            return rows[arm][-1]

        base0 = arm_run("baseline", (), seeds[0])
        single = {name: arm_run(name, (name,), seeds[0]) for name in TRICKS}
        arm_run("all", tuple(TRICKS), seeds[0])
        chosen = chosen_tricks(single, base0)
        if chosen and len(chosen) == 1:
            rows["chosen"] = [single[chosen[0]]]      # the same recipe as that trick's run: reuse it
        elif chosen:
            arm_run("chosen", chosen, seeds[0])
        for s in seeds[1:]:
            arm_run("baseline", (), s)
            arm_run("all", tuple(TRICKS), s)
            if chosen:
                arm_run("chosen", chosen, s)
    claims, figure = table(rows, chosen), None
    if rows:
        from .figures import tricks_bars
        figure = tricks_bars(ctx.out / f"{NAME}.png", rows, title="Bag of Tricks on the cifar AlexNet, "
                             f"{p['epochs']} epochs, {'bundled subset' if ctx.quick else 'full CIFAR-10'}")
    notes = _notes(p, lr, sweep, chosen, ctx.quick)
    ctx.write_result(f"{NAME}: {CLAIM}", claims, runs, notes, figure)
    return runs


def _notes(p, lr, sweep, chosen, quick):
    """The recipe paragraphs of result.md."""
    return [
        "## Recipe",
        "Baseline: `--config cifar` ("
        + ("a miniature with conv widths 8 and fc 32-32 for --quick; " if quick else "")
        + "conv 32-48-64-64-48, fc 256-256, two towers, LRN, 3/2 pools, no dropout), "
        f"SGD batch {BASE_BATCH}, momentum 0.9, weight decay 0.0005 on every parameter, lr divided by 10 every "
        f"{max(1, p['epochs'] // 3)} epochs (Sec. 5 on a fixed timetable), {p['epochs']} epochs, crops of the "
        "4-pixel-padded image and flips, inputs centred by the training mean image and scaled by 1/64.",
        f"Learning rate chosen from {tried(sweep)} ({EXTENDED}) by validation top-1 error after {p['sweep_epochs']} "
        f"epochs on {p['sweep_images']:,} training images (seed 0): {'–' if lr is None else lr}. Trick settings "
        "are the paper's (label smoothing 0.1, mixup alpha 0.2, T = 20, warm-up 1 epoch, linear scaling to "
        "batch 256), not tuned. The test set was not used for any choice.",
        "Teacher for distillation: the net of the `cosine` run (the baseline with cosine decay, the same "
        "size as the student; seed 0's on the full data), not a larger net as in the paper: a wider teacher "
        "(cifar-wide) would have cost about three student runs of CPU time. So `distill` measures "
        "self-distillation from a net that is only one trick better than the baseline.",
        "`chosen`: the tricks whose single run (seed 0) ended below the baseline's validation error "
        f"({_names(chosen)}), "
        "together; chosen on the validation split, never on the test set.",
        "Effect = test top-1 error of the run minus the baseline's (mean over seeds): negative is better. "
        "fp16 (Sec. 3.2) is not measured here: on numpy it is a correctness reference, ~100x slower.",
        "The paper's column is its finding on ImageNet with ResNets (He et al. 2019, Tables 4 and 6), "
        "a direction to compare with, not the same experiment.",
    ]


def table(rows, chosen=None):
    """Headline rows (run, paper's finding, ours: test error and its difference from the baseline).

    chosen: the tricks of the "chosen" arm (named in its row), or None while unknown."""
    def tests(arm):
        return [r.get("test_top1") for r in rows.get(arm, []) if r.get("test_top1") is not None]

    def unfinished(arm):
        """'running (epoch e/E)' for a started run, else 'not yet run'."""
        for r in rows.get(arm, []):
            m = r.get("metrics") or {}
            if m.get("epoch"):
                return f"running (epoch {int(m['epoch'][-1])}/{r['spec']['epochs']})"
        return "not yet run"

    base = tests("baseline")
    base_mean = sum(base) / len(base) if base else None
    out = [("baseline (cifar recipe, step schedule): test top-1 error", "–",
            mean_spread(base) if base else unfinished("baseline"))]
    label = {"all": "all tricks together",
             "chosen": f"the tricks that helped on validation ({_names(chosen)})"}
    for arm in list(TRICKS) + ["all", "chosen"]:
        t = tests(arm)
        if not t:
            ours = unfinished(arm)
        else:
            m = sum(t) / len(t)
            diff = f"; effect {100 * (m - base_mean):+.2f} points" if base_mean is not None else ""
            ours = (mean_spread(t) if len(t) > 1 else pct(m)) + diff
        out.append((label.get(arm, f"+ {arm}"), PAPER[arm], ours))
    return out
