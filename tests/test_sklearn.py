"""flowforge.sklearn.FlowDensity: scikit-learn's estimator checks, likelihood
reached, recipe defaults, sampling, pickling, Pipeline and GridSearchCV."""
import pickle

import numpy as np
import pytest

pytest.importorskip("sklearn")
from sklearn.datasets import make_moons  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402
from sklearn.neighbors import KernelDensity  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from flowforge.sklearn import FlowDensity  # noqa: E402
from flowforge.training.recipes import DEFAULT_MODELS, recipe  # noqa: E402


def tiny(**kw):
    return FlowDensity(**{"model": "maf", "steps": 3, "options": {"layers": 1, "hidden": 8}, **kw})


@parametrize_with_checks([tiny()])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def moons():
    x = make_moons(1200, noise=0.05, random_state=0)[0]
    return x[:1000], x[1000:]


@pytest.fixture(scope="module")
def fitted(moons):
    return FlowDensity(model="maf", steps=300, random_state=0).fit(moons[0])


def test_beats_a_gaussian_on_moons(fitted, moons):
    test = moons[1]
    gaussian = -0.5 * (2 * np.log(2 * np.pi * np.e) + np.log(np.linalg.det(np.cov(moons[0].T))))
    assert fitted.score(test) / len(test) > gaussian + 0.5, fitted.score(test) / len(test)
    assert np.isclose(fitted.score(test), fitted.score_samples(test).sum())


def test_defaults_come_from_the_recipe():
    est = FlowDensity(random_state=0, steps=2).fit(np.random.default_rng(0).normal(size=(40, 3)))
    assert est.flow_.config["name"] == DEFAULT_MODELS["vector"]
    assert est.flow_.config["preprocess"] == ["standardize"]
    want_lr = recipe(DEFAULT_MODELS["vector"], "vector")["train"].get("lr", 1e-3)
    assert est.train_summary_["steps"] == 2 and want_lr > 0


def test_sample_is_seeded_and_shaped(fitted):
    a, b = fitted.sample(50, random_state=3), fitted.sample(50, random_state=3)
    assert a.shape == (50, 2) and np.array_equal(a, b)
    assert not np.array_equal(a, fitted.sample(50, random_state=4))
    assert np.abs(a).max() < 10  # samples land near the moons (scale ~1), not in the tails


def test_pickle_round_trip_keeps_scores(fitted, moons):
    blob = pickle.dumps(fitted)
    assert b"torch.nn" not in blob and b"flowforge.distributions" not in blob  # config + weights, no modules
    again = pickle.loads(blob)
    np.testing.assert_array_equal(again.score_samples(moons[1]), fitted.score_samples(moons[1]))


def test_unfitted_and_wrong_width_fail_clearly(fitted):
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        FlowDensity().score_samples(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="3 features"):
        fitted.score_samples(np.zeros((2, 3)))


def test_pipeline_and_grid_search_over_steps(moons):
    x = moons[0][:300]
    pipe = make_pipeline(StandardScaler(), tiny(random_state=0))
    assert pipe.fit(x).score_samples(x[:5]).shape == (5,)
    search = GridSearchCV(tiny(random_state=0), {"steps": [1, 60]}, cv=2).fit(x)
    assert search.best_params_ == {"steps": 60}  # more training, higher held-out likelihood
    kde = GridSearchCV(KernelDensity(), {"bandwidth": [0.1, 0.3]}, cv=2).fit(x)  # the same protocol
    assert np.isfinite(kde.best_score_)
