"""Accuracy predictors, feature maps, ranking metrics and the predictor benchmark script."""
import csv
import json

import numpy as np
import pytest

from predictors import (
    PREDICTORS,
    EnsemblePredictor,
    FeatureMap,
    MLPPredictor,
    RidgePredictor,
    kendall_tau,
    load_predictor,
    make_predictor,
    mape,
    spearman,
    within,
)
from supernet.core.errors import SupernetError
from supernet.core.registry import get_space, space_config

NAMES = ["ridge", "mlp", "gbt", "ensemble", "auto"]


@pytest.fixture(scope="module")
def space():
    return get_space("mobilenet").build_space(space_config("mobilenet", "tiny"))


def target(arch) -> float:
    """Known synthetic accuracy: grows with active kernels, expands, depth and resolution."""
    active = [(k, e) for k, e in zip(arch["ks"], arch["e"]) if k]
    return 60 + sum(0.8 * k + 1.5 * e for k, e in active) + 0.4 * arch["r"] + 0.2 * len(active) ** 2


@pytest.fixture(scope="module")
def data(space):
    """160 distinct archs with noisy targets: 120 to train, 40 held out."""
    rng = np.random.default_rng(0)
    archs = []
    while len(archs) < 160:
        a = space.sample(rng)
        if a not in archs:
            archs.append(a)
    y = np.array([target(a) for a in archs]) + rng.normal(0, 0.3, len(archs))
    return archs[:120], y[:120], archs[120:], np.array([target(a) for a in archs[120:]])


@pytest.fixture(scope="module")
def fitted(space, data):
    archs, y, _, _ = data
    return {name: make_predictor(name, space, seed=0).fit(archs, y) for name in NAMES}


# -- predictors ---------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_predictor_ranks_held_out_archs(fitted, data, name):
    _, _, test_archs, test_y = data
    mean, std = fitted[name].predict(test_archs)
    assert mean.shape == std.shape == (len(test_archs),)
    assert np.all(np.isfinite(std)) and np.all(std >= 0)
    assert kendall_tau(test_y, mean) > 0.85  # shuffled targets give about 0 (spread 0.3)
    assert mape(test_y, mean) < 1.0  # predicting the training mean gives about 5%


def test_single_models_report_zero_std_and_ensemble_a_positive_one(fitted, data):
    test_archs = data[2]
    for name in ("ridge", "mlp", "gbt"):
        assert np.all(fitted[name].predict(test_archs)[1] == 0)
    std = fitted["ensemble"].predict(test_archs)[1]
    assert np.all(np.isfinite(std)) and np.all(std >= 0) and std.mean() > 0


@pytest.mark.slow
def test_ensemble_mean_is_member_mean_and_std_their_spread(space, data):
    archs, y, test_archs, _ = data
    ens = EnsemblePredictor(space, seed=3, members=["ridge", "gbt"], bootstrap=False).fit(archs, y)
    ridge = RidgePredictor(space, seed=3000).fit(archs, y).predict(test_archs)[0]
    gbt = make_predictor("gbt", space, seed=3001).fit(archs, y).predict(test_archs)[0]
    mean, std = ens.predict(test_archs)
    np.testing.assert_allclose(mean, (ridge + gbt) / 2, rtol=1e-7)
    np.testing.assert_allclose(std, np.abs(ridge - gbt) / 2, rtol=1e-6, atol=1e-9)


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_predictions(space, data, fitted, name):
    archs, y, test_archs, _ = data
    again = make_predictor(name, space, seed=0).fit(archs, y)
    for a, b in zip(fitted[name].predict(test_archs), again.predict(test_archs)):
        assert np.array_equal(a, b)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mlp", "gbt", "ensemble"])
def test_seed_changes_randomised_models(space, data, fitted, name):
    archs, y, test_archs, _ = data
    other = make_predictor(name, space, seed=1).fit(archs, y)
    assert not np.array_equal(fitted[name].predict(test_archs)[0], other.predict(test_archs)[0])


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_save_load_round_trip_predicts_identically(space, data, fitted, name, tmp_path):
    path = tmp_path / f"{name}.json"
    fitted[name].save(path)
    saved = json.loads(path.read_text())
    assert saved["kind"] == name and len(saved["archs"]) == len(saved["y"]) == 120
    test_archs = data[2]
    for loaded in (load_predictor(path, space), PREDICTORS[name].load(path, space)):
        assert type(loaded) is type(fitted[name]) and loaded.options == fitted[name].options
        for a, b in zip(fitted[name].predict(test_archs), loaded.predict(test_archs)):
            assert np.array_equal(a, b)


def test_options_survive_save_and_load(space, data, tmp_path):
    archs, y, _, _ = data
    mlp = MLPPredictor(space, seed=2, features="onehot", hidden=(8, 4), alpha=0.5, max_iter=50).fit(archs, y)
    mlp.save(tmp_path / "mlp.json")
    loaded = load_predictor(tmp_path / "mlp.json", space)
    assert loaded.seed == 2 and loaded.options == {"features": "onehot", "hidden": [8, 4], "alpha": 0.5,
                                                   "max_iter": 50}


def test_load_errors(space, data, fitted, tmp_path):
    path = tmp_path / "ridge.json"
    fitted["ridge"].save(path)
    other = get_space("mobilenet").build_space(space_config("mobilenet", "tiny2d"))
    with pytest.raises(SupernetError, match="another search space"):
        load_predictor(path, other)
    with pytest.raises(SupernetError, match="not 'mlp'"):
        MLPPredictor.load(path, space)
    with pytest.raises(SupernetError, match="does not exist"):
        load_predictor(tmp_path / "missing.json", space)
    for text, message in [('{"kind": "ridge"}', "not a predictor file"), ("[1, 2]", "not a predictor file"),
                          ('{"format": "supernet-predictor/1", "kind": "ridge"}', "lacks field 'archs'")]:
        (tmp_path / "x.json").write_text(text)
        with pytest.raises(SupernetError, match=message):
            load_predictor(tmp_path / "x.json", space)


def test_user_errors_are_clear(space, data):
    archs, y, _, _ = data
    with pytest.raises(SupernetError, match="not fitted"):
        make_predictor("ridge", space).predict(archs[:3])
    with pytest.raises(SupernetError, match="not fitted"):
        make_predictor("ridge", space).save("never.json")
    with pytest.raises(SupernetError, match="3 archs but 2 targets"):
        make_predictor("mlp", space).fit(archs[:3], y[:2])
    with pytest.raises(SupernetError, match="at least 5 archs"):
        make_predictor("gbt", space).fit(archs[:4], y[:4])
    with pytest.raises(SupernetError, match="NaN"):
        make_predictor("ridge", space).fit(archs[:6], [1, 2, np.nan, 4, 5, 6])
    with pytest.raises(SupernetError, match="unknown predictor"):
        make_predictor("forest", space)
    with pytest.raises(SupernetError, match="bad options.*depth"):
        make_predictor("gbt", space, depth=3)
    with pytest.raises(SupernetError, match="unknown feature map"):
        make_predictor("ridge", space, features="binary")
    with pytest.raises(SupernetError, match="ensemble members"):
        make_predictor("ensemble", space, members=["ridge", "svm"])
    fitted = make_predictor("ridge", space).fit(archs[:10], y[:10])
    with pytest.raises(SupernetError, match="not allowed"):
        fitted.predict([archs[0].replace(r=17)])
    assert fitted.predict([])[0].shape == (0,)


# -- feature maps -------------------------------------------------------------------
def test_feature_maps_mark_inactive_positions(space):
    # stage 0 depth 1 (slot 1 inactive), stage 1 depth 2; values ks, e, d, r
    arch = space.make({"ks": [5, 3, 3, 5], "e": [3, 2, 2, 3], "d": [1, 2], "r": 20})
    assert arch["ks"][1] == 0
    ordinal = FeatureMap(space, "ordinal")([arch])[0]
    assert ordinal.tolist() == [5, 0, 3, 5, 3, 0, 2, 3, 1, 2, 20]
    index = FeatureMap(space, "index")([arch])[0]
    assert index.tolist() == [2, 0, 1, 2, 2, 0, 1, 2, 1, 2, 2]
    onehot = FeatureMap(space, "onehot")([arch])[0]
    assert onehot.shape == (22,) and onehot.sum() == 9  # 11 positions, 2 inactive
    assert onehot[2:4].tolist() == [0, 0]  # ks[1] inactive: not "first choice"
    assert onehot[0:2].tolist() == [0, 1]  # ks[0] = 5 = second choice


# -- metrics ------------------------------------------------------------------------
def test_metrics_on_hand_computed_values():
    assert kendall_tau([1, 2, 3, 4], [1, 2, 4, 3]) == pytest.approx(4 / 6)  # 5 concordant, 1 discordant
    assert kendall_tau([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 2, 3, 4], [1, 2, 4, 3]) == pytest.approx(1 - 6 * 2 / (4 * 15))
    assert spearman([1, 2, 3, 4], [10, 20, 30, 1000]) == pytest.approx(1.0)
    assert mape([100, 200], [110, 180]) == pytest.approx(10.0)
    assert mape([50, 80], [50, 80]) == 0.0
    assert within([100, 200, 50], [105, 230, 50]) == pytest.approx(2 / 3)
    assert within([100, 200, 50], [105, 230, 50], tol=0.2) == 1.0


def test_metric_errors():
    with pytest.raises(SupernetError, match="differ in length"):
        kendall_tau([1, 2, 3], [1, 2])
    with pytest.raises(SupernetError, match="at least 2"):
        spearman([1], [1])
    with pytest.raises(SupernetError, match="undefined"):
        mape([0, 1], [1, 1])


# -- benchmark script ---------------------------------------------------------------
def load_bench():
    from benchmarks import bench_predictors
    return bench_predictors


def test_bench_script_on_a_synthetic_pool(space, data, tmp_path, capsys):
    archs, y, _, _ = data
    pool = tmp_path / "pool.csv"
    with open(pool, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["arch", "accuracy"])
        writer.writerows([a.to_json(), v] for a, v in zip(archs[:40], y))
        writer.writerow([archs[0].to_json(), y[0] + 2])  # a duplicate
    out = tmp_path / "bench.json"
    rc = load_bench().main(["--pool", str(pool), "--space", "mobilenet", "--variant", "tiny", "--sizes", "20", "39",
                            "--seeds", "2", "--predictors", "ridge", "--out", str(out)])
    assert rc == 0
    result = json.loads(out.read_text())
    assert result["rows_read"] == 41 and result["distinct_archs"] == 40
    [row] = result["results"]  # size 39 leaves 1 test arch: skipped
    assert row["predictor"] == "ridge" and row["n_train"] == 20 and row["n_test"] == 20
    assert len(row["runs"]) == 2 and row["tau_mean"] > 0.5
    assert "ridge" in capsys.readouterr().out


def test_bench_script_rejects_a_bad_pool(tmp_path, capsys):
    pool = tmp_path / "pool.csv"
    pool.write_text("arch,acc\n{},1\n")
    rc = load_bench().main(["--pool", str(pool), "--space", "mobilenet", "--variant", "tiny",
                            "--out", str(tmp_path / "b.json")])
    assert rc == 2 and "lacks column 'accuracy'" in capsys.readouterr().err
    assert not (tmp_path / "b.json").exists()


@pytest.mark.slow
def test_gbt_picks_a_deeper_tree_when_dimensions_interact(space):
    rng = np.random.default_rng(5)
    archs = list(dict.fromkeys(space.sample(rng) for _ in range(400)))[:240]
    # a pure three-way interaction (parity of three choices): no tree of depth 2 sees any signal
    big = space.largest()
    y = np.array([(a["r"] == big["r"]) ^ (a["ks"][0] == big["ks"][0]) ^ (a["e"][0] == big["e"][0])
                  for a in archs], dtype=float)
    y += rng.normal(0, 0.05, len(y))
    auto = make_predictor("gbt", space, seed=0).fit(archs, y)
    fixed = make_predictor("gbt", space, seed=0, max_depth=2).fit(archs, y)
    assert auto.depth >= 3 and fixed.depth == 2
    again = make_predictor("gbt", space, seed=0).fit(archs, y)
    assert again.depth == auto.depth
    np.testing.assert_array_equal(again.predict(archs[:20])[0], auto.predict(archs[:20])[0])


# -- categorical features and the auto predictor ---------------------------------------------
from supernet import Dimension, SearchSpace  # noqa: E402


def test_categorical_dimensions_are_one_hot_in_every_feature_map():
    space = SearchSpace([Dimension("op", ("none", "skip", "conv"), 2, kind="categorical"), Dimension("w", (8, 16, 32)),
                         Dimension("act", ("relu", "gelu"))])
    arch = space.make({"op": ["conv", "none"], "w": 16, "act": "gelu"})
    assert FeatureMap(space, "ordinal")([arch])[0].tolist() == [0, 0, 1, 1, 0, 0, 16, 2]
    assert FeatureMap(space, "index")([arch])[0].tolist() == [0, 0, 1, 1, 0, 0, 2, 2]
    assert FeatureMap(space, "onehot")([arch])[0].tolist() == [0, 0, 1, 1, 0, 0, 0, 1, 0, 0, 1]


def test_vectorised_features_equal_a_per_arch_reference(space):
    rng = np.random.default_rng(5)
    archs = [space.sample(rng) for _ in range(40)]
    for kind in ("onehot", "ordinal", "index"):
        fm = FeatureMap(space, kind)
        assert np.array_equal(fm(archs), np.vstack([fm([a]) for a in archs]))
    ordinal = FeatureMap(space, "ordinal")(archs)
    expected = [[v for d in space.dimensions for v in (a[d.name] if d.length else [a[d.name]])] for a in archs]
    assert ordinal.tolist() == expected  # chosen values; inactive positions hold 0 already


@pytest.mark.slow
def test_auto_picks_the_predictor_that_ranks_best_when_each_wins_once():
    """Three synthetic targets, each won by another model on held-out archs; auto's CV must pick that one."""
    space = SearchSpace([Dimension(f"x{i}", (0, 1, 2, 3, 4)) for i in range(6)])
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(400)]
    X = np.array([[a[f"x{i}"] for i in range(6)] for a in archs], float)
    U = rng.normal(size=(6, 5))
    cases = {"ridge": U[np.arange(6), X.astype(int)].sum(axis=1) + 0.1 * rng.normal(size=400),  # additive, unordered
             "gbt": ((X[:, 0] > 2) & (X[:, 1] > 1)) * 2.0 + (X[:, 2] > 3) + 0.05 * rng.normal(size=400),  # steps
             "mlp": (X @ np.array([1, -.8, .6, -.4, .5, -.3])) ** 2 + 0.02 * rng.normal(size=400)}  # smooth
    options = {"ridge": {}, "mlp": {"max_iter": 300}, "gbt": {"n_estimators": 100, "learning_rate": 0.2, "max_depth": 3}}
    for winner, y in cases.items():
        held = {n: kendall_tau(y[60:], make_predictor(n, space, **o).fit(archs[:60], y[:60]).predict(archs[60:])[0])
                for n, o in options.items()}
        assert max(held, key=held.get) == winner, held  # the case is what it claims to be
        auto = make_predictor("auto", space, candidates=list(options.items()), blend=False).fit(archs[:60], y[:60])
        assert auto.chosen.rstrip("*").split("-")[0] == winner, auto.scores
        mean, std = auto.predict(archs[60:])
        assert kendall_tau(y[60:], mean) == pytest.approx(held[winner], abs=0.05) and np.all(std >= 0) and std.max() > 0


def test_auto_blends_and_round_trips(tmp_path):
    space = SearchSpace([Dimension("op", ("a", "b", "c", "d"), 4, kind="categorical")])
    rng = np.random.default_rng(1)
    archs = [space.sample(rng) for _ in range(40)]
    y = np.array([len(set(a["op"])) + 0.3 * a["op"].count("a") for a in archs]) + 0.1 * rng.normal(size=40)
    fast_gbt = {"n_estimators": 50, "learning_rate": 0.2}
    cands = [("ridge", {}), ("ridge", {"features": "index"}), ("gbt", {**fast_gbt, "max_depth": 2}),
             ("gbt", {**fast_gbt, "max_depth": 3})]
    auto = make_predictor("auto", space, seed=3, candidates=cands).fit(archs, y)
    assert auto.chosen in auto.scores and len(auto.scores) == 4 + 6 + 1  # singles, pairs, all four
    auto.save(tmp_path / "p.json")
    loaded = load_predictor(tmp_path / "p.json", space)
    assert loaded.chosen == auto.chosen and np.array_equal(loaded.predict(archs)[0], auto.predict(archs)[0])
    with pytest.raises(SupernetError, match="auto candidates must be names"):
        make_predictor("auto", space, candidates=["svm"])


def test_auto_refit_keeps_its_choice_and_predicts_as_its_members_do():
    """refit (a cheap search's rounds between choices) fits the chosen blend on new data without choosing again;
    predict's one shared encoding gives what each member's own predict gives."""
    space = SearchSpace([Dimension("op", ("a", "b", "c", "d"), 4, kind="categorical"), Dimension("w", (1, 2, 3), 2)])
    rng = np.random.default_rng(2)
    archs = list({space.sample(rng) for _ in range(90)})
    y = np.array([a["op"].count("a") + 0.5 * sum(a["w"]) for a in archs]) + 0.1 * rng.normal(size=len(archs))
    cands = [("ridge", {}), ("gbt", {"n_estimators": 40, "max_depth": 2}), ("mlp", {"max_iter": 200})]
    auto = make_predictor("auto", space, seed=1, candidates=cands).fit(archs[:40], y[:40])
    again = auto.refit(archs, y)
    assert again.chosen == auto.chosen and again.scores == {} and again is not auto
    assert len(again._models) == len(again.chosen.split("+")) and len(again._fold_models) == 3
    assert all(len(m._train[0]) == len(archs) for m in again._models)  # members fitted on the new data
    mean, std = again.predict(archs)
    members = np.mean([m.predict(archs)[0] for m in again._models], axis=0)
    np.testing.assert_allclose(mean, members * again._scale + again._shift, rtol=1e-12, atol=1e-12)
    folds = np.stack([np.mean([m.predict(archs)[0] for m in ms], axis=0) for ms in again._fold_models])
    np.testing.assert_allclose(std, folds.std(axis=0) * again._scale, rtol=1e-9, atol=1e-12)
    with pytest.raises(SupernetError, match="not fitted"):
        make_predictor("auto", space).refit(archs, y)
