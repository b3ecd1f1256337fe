"""SGD exactly as Sec. 5, and the learning-rate schedules."""
import numpy as np
import pytest

from minialex.model import AlexNet, AlexNetConfig
from minialex.optim import SGD, ReduceOnPlateau, StepDecay


def _hand_two_steps(w0, g1, g2, lr, m, wd):
    """Sec. 5 written out: v <- m v - wd*lr*w - lr*g ; w <- w + v, twice, in NumPy."""
    w, v = w0.copy(), np.zeros_like(w0)
    for g in (g1, g2):
        v = m * v - (wd * lr) * w - lr * g
        w = w + v
    return w, v


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_two_sgd_steps_match_hand_computation_bit_for_bit(dtype):
    rng = np.random.default_rng(0)
    w0 = {"a.w": rng.standard_normal((4, 3)).astype(dtype), "a.b": rng.standard_normal(3).astype(dtype)}
    g1 = {k: rng.standard_normal(v.shape).astype(dtype) for k, v in w0.items()}
    g2 = {k: rng.standard_normal(v.shape).astype(dtype) for k, v in w0.items()}
    params = {k: v.copy() for k, v in w0.items()}
    opt = SGD(params, lr=0.01, momentum=0.9, weight_decay=5e-4)
    opt.step(g1)
    opt.step(g2)
    for k in w0:
        w, v = _hand_two_steps(w0[k], g1[k], g2[k], 0.01, 0.9, 5e-4)
        assert params[k].dtype == dtype and opt.velocity[k].dtype == dtype
        np.testing.assert_array_equal(params[k], w)
        np.testing.assert_array_equal(opt.velocity[k], v)
    # the step did something: a mistaken rule (decay outside the velocity) gives other bits
    w_alt = w0["a.w"] - 0.01 * g1["a.w"] - 0.01 * 5e-4 * w0["a.w"]
    assert not np.array_equal(w_alt, params["a.w"])


def test_first_step_values_from_the_paper_rule():
    # one scalar parameter, numbers small enough to check by eye
    params = {"p": np.array([2.0])}
    opt = SGD(params, lr=0.1, momentum=0.9, weight_decay=0.5)
    opt.step({"p": np.array([1.0])})
    # v1 = 0.9*0 - 0.5*0.1*2 - 0.1*1 = -0.2 ; w1 = 1.8
    assert opt.velocity["p"][0] == pytest.approx(-0.2)
    assert params["p"][0] == pytest.approx(1.8)
    opt.step({"p": np.array([1.0])})
    # v2 = 0.9*(-0.2) - 0.05*1.8 - 0.1 = -0.37 ; w2 = 1.43
    assert opt.velocity["p"][0] == pytest.approx(-0.37)
    assert params["p"][0] == pytest.approx(1.43)


def test_sgd_updates_model_params_in_place_from_its_grads():
    m = AlexNet(AlexNetConfig.tiny())
    before = {k: v.copy() for k, v in m.named_params()}
    ids = {k: id(v) for k, v in m.named_params()}
    opt = SGD(m, lr=0.1)
    x = np.random.default_rng(0).standard_normal((2, 3, 15, 15))
    out = m.forward(x)
    m.backward(np.ones_like(out))
    grads = {k: g.copy() for k, g in m.named_grads()}
    opt.step()
    for k, v in m.named_params():
        assert id(v) == ids[k]                                # same arrays, updated in place
        np.testing.assert_allclose(v, before[k] - 0.1 * 5e-4 * before[k] - 0.1 * grads[k], rtol=1e-12, atol=1e-15)


def test_sgd_decay_bias_false_skips_1d_params():
    params = {"l.w": np.ones((2, 2)), "l.b": np.ones(2)}
    opt = SGD(params, lr=0.1, momentum=0.0, weight_decay=0.5, decay_bias=False)
    opt.step({"l.w": np.zeros((2, 2)), "l.b": np.zeros(2)})
    np.testing.assert_array_equal(params["l.b"], np.ones(2))
    np.testing.assert_allclose(params["l.w"], np.full((2, 2), 1 - 0.05))


def test_layer_decay_gives_each_layer_its_own_decay_and_the_rest_the_global_one():
    # cuda-convnet's per-layer weight costs: conv 0, local 0.004; "fc" is not named, so it keeps 0.5
    rng = np.random.default_rng(3)
    w0 = {"conv.w": rng.standard_normal((2, 3)), "conv.b": rng.standard_normal(3),
          "local.w": rng.standard_normal((4, 2, 2)), "local.b": rng.standard_normal((2, 2, 2)),
          "fc.w": rng.standard_normal((3, 2))}
    g1 = {k: rng.standard_normal(v.shape) for k, v in w0.items()}
    g2 = {k: rng.standard_normal(v.shape) for k, v in w0.items()}
    params = {k: v.copy() for k, v in w0.items()}
    opt = SGD(params, lr=0.1, momentum=0.9, weight_decay=0.5, layer_decay={"conv": 0.0, "local": 0.004})
    opt.step(g1)
    opt.step(g2)
    want_wd = {"conv.w": 0.0, "conv.b": 0.0, "local.w": 0.004, "local.b": 0.004, "fc.w": 0.5}
    for k in w0:
        assert opt.decay_of(k) == want_wd[k]
        w, v = _hand_two_steps(w0[k], g1[k], g2[k], 0.1, 0.9, want_wd[k])
        np.testing.assert_array_equal(params[k], w)
        np.testing.assert_array_equal(opt.velocity[k], v)
    # no bias decay skips a locally connected layer's (F, H', W') biases too, by their name
    opt_nb = SGD({k: v.copy() for k, v in w0.items()}, weight_decay=0.5, decay_bias=False,
                 layer_decay={"local": 0.004})
    assert opt_nb.decay_of("local.b") == 0.0 and opt_nb.decay_of("conv.b") == 0.0
    assert opt_nb.decay_of("local.w") == 0.004 and opt_nb.decay_of("fc.w") == 0.5


def test_layer_decay_errors_name_the_layer_and_survive_a_state_round_trip():
    params = {"conv1.w": np.ones((2, 2)), "fc.w": np.ones((2, 2))}
    with pytest.raises(ValueError, match=r"'local3'.*\['conv1', 'fc'\]"):
        SGD(params, layer_decay={"local3": 0.004})
    with pytest.raises(ValueError, match=r"layer_decay\['fc'\].*-1"):
        SGD(params, layer_decay={"fc": -1})
    opt = SGD(params, layer_decay={"fc": 0.004})
    again = SGD({k: v.copy() for k, v in params.items()})
    assert again.decay_of("fc.w") == 5e-4
    again.load_state_dict(opt.state_dict())
    assert again.decay_of("fc.w") == 0.004 and again.decay_of("conv1.w") == 5e-4


def test_sgd_errors_name_the_problem():
    params = {"l.w": np.ones((2, 2))}
    opt = SGD(params)
    with pytest.raises(ValueError, match="l.w"):
        opt.step({})
    with pytest.raises(ValueError, match=r"\(3,\)"):
        opt.step({"l.w": np.ones(3)})
    with pytest.raises(ValueError, match="momentum"):
        SGD(params, momentum=1.5)
    with pytest.raises(ValueError, match="not built from a model"):
        opt.step()


def test_sgd_state_dict_round_trip_continues_identically():
    rng = np.random.default_rng(1)
    grads = [{"w": rng.standard_normal(5)} for _ in range(4)]
    p1 = {"w": np.arange(5.0)}
    o1 = SGD(p1)
    for g in grads[:2]:
        o1.step(g)
    state = o1.state_dict()
    p2 = {"w": p1["w"].copy()}
    o2 = SGD(p2, lr=0.5)
    o2.load_state_dict({"hyper": dict(state["hyper"]), "velocity": {k: v.copy() for k, v in state["velocity"].items()}})
    assert o2.lr == 0.01 and o2.steps == 2
    for g in grads[2:]:
        o1.step(g)
        o2.step(g)
    np.testing.assert_array_equal(p1["w"], p2["w"])
    with pytest.raises(ValueError, match="'w'"):
        o2.load_state_dict({"hyper": state["hyper"], "velocity": {"w": np.zeros(4)}})


def test_reduce_on_plateau_divides_by_10_at_most_3_times():
    opt = SGD({"w": np.zeros(1)}, lr=0.01)
    s = ReduceOnPlateau(opt, patience=1)
    assert not s.step(0.50)                                   # best = 0.50
    assert not s.step(0.40)                                   # improved
    assert not s.step(0.45)                                   # 1 bad eval: within patience
    assert s.step(0.41)                                       # 2 bad evals > patience: reduce
    assert opt.lr == pytest.approx(0.001)
    errs = [0.42, 0.43, 0.44, 0.45, 0.46, 0.47, 0.48, 0.49, 0.5]
    reduced = [s.step(e) for e in errs]
    assert sum(reduced) == 2 and s.reductions == 3             # 3 in all, as in the paper
    assert opt.lr == pytest.approx(1e-5)
    assert not s.step(0.9) and opt.lr == pytest.approx(1e-5)


def test_reduce_on_plateau_state_round_trip():
    opt = SGD({"w": np.zeros(1)}, lr=0.01)
    s = ReduceOnPlateau(opt, patience=2)
    for e in (0.5, 0.6, 0.6):
        s.step(e)
    s2 = ReduceOnPlateau(SGD({"w": np.zeros(1)}), patience=9)
    s2.load_state_dict(s.state_dict())
    assert s2.state_dict() == s.state_dict()
    assert s.step(0.7) == s2.step(0.7) is True
    with pytest.raises(ValueError, match="StepDecay"):
        StepDecay(opt, 3).load_state_dict(s.state_dict())


def test_step_decay():
    opt = SGD({"w": np.zeros(1)}, lr=0.01)
    s = StepDecay(opt, step_size=2, gamma=0.1, max_reductions=2)
    changed = [s.step() for _ in range(8)]
    assert changed == [False, True, False, True, False, False, False, False]
    assert opt.lr == pytest.approx(1e-4)
    s2 = StepDecay(SGD({"w": np.zeros(1)}), step_size=5)
    s2.load_state_dict(s.state_dict())
    assert s2.state_dict() == s.state_dict()
