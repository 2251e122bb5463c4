"""SST1MEnergyRegressor: ctapipe's energy forest plus the spread of its trees."""

import astropy.units as u
import numpy as np
import pytest
from astropy.table import Table
from ctapipe.reco import EnergyRegressor
from ctapipe.reco.reconstructor import ReconstructionProperty
from sklearn.ensemble import GradientBoostingRegressor, RandomForestRegressor
from traitlets.config import Config

from ctapipe_sst1m.instrument import sst1m_subarray
from ctapipe_sst1m.reco.energy_regressor import (
    SST1MEnergyRegressor,
    tree_mean_std,
)

MODEL_CONFIG = {"n_estimators": 50, "min_samples_leaf": 10, "random_state": 1}
SELECTION = Config(
    {"MLQualityQuery": {"quality_criteria": [("bright", "hillas_intensity > 20")]}}
)


@pytest.fixture(scope="module")
def subarray():
    return sst1m_subarray((1, 2))


def training_table(n, rng):
    """E = intensity / 100 TeV, 5 % scatter where x < 0 and 40 % where x > 0."""
    intensity = 10 ** rng.uniform(1.5, 4.0, n)
    x = rng.uniform(-1, 1, n)
    scatter = np.where(x < 0, 0.05, 0.4)
    energy = intensity / 100 * np.exp(scatter * rng.normal(size=n))
    return Table(
        {
            "obs_id": np.ones(n, dtype=int),
            "event_id": np.arange(n),
            "tel_id": np.ones(n, dtype=int),
            "hillas_intensity": intensity,
            "x": x,
            "true_energy": energy * u.TeV,
        }
    )


def regressor(cls, subarray, **kwargs):
    return cls(
        subarray,
        model_cls="RandomForestRegressor",
        model_config=MODEL_CONFIG,
        log_target=True,
        features=["hillas_intensity", "x"],
        config=SELECTION,
        prefix="energy",
        **kwargs,
    )


def test_tree_mean_std_is_the_forest():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(500, 3))
    y = X[:, 0] + rng.normal(size=500)
    forest = RandomForestRegressor(n_estimators=20, random_state=0).fit(X, y)
    mean, std = tree_mean_std(forest, X[:50])
    per_tree = np.stack([tree.predict(X[:50]) for tree in forest.estimators_])
    np.testing.assert_allclose(mean, forest.predict(X[:50]), rtol=1e-12)
    np.testing.assert_allclose(std, per_tree.std(axis=0), rtol=1e-9, atol=1e-12)


def test_same_energies_as_ctapipe_and_uncertainty_follows_scatter(subarray):
    rng = np.random.default_rng(2)
    train = training_table(4000, rng)
    test = training_table(2000, rng)
    key = subarray.tel[1]
    ours = regressor(SST1MEnergyRegressor, subarray)
    stock = regressor(EnergyRegressor, subarray)
    ours.fit(key, train)
    stock.fit(key, train)

    result = ours.predict_table(key, test)[ReconstructionProperty.ENERGY]
    expected = stock.predict_table(key, test)[ReconstructionProperty.ENERGY]
    energy = result["energy_tel_energy"].quantity
    np.testing.assert_allclose(
        energy.to_value(u.TeV),
        expected["energy_tel_energy"].quantity.to_value(u.TeV),
        rtol=1e-12,
    )
    assert result["energy_tel_energy_uncert"].unit == u.TeV

    relative = (result["energy_tel_energy_uncert"].quantity / energy).to_value(u.one)
    assert np.all(np.isfinite(relative)) and np.all(relative > 0)
    sharp = np.median(relative[test["x"] < 0])
    broad = np.median(relative[test["x"] > 0])
    # the trees disagree where the training energies scatter more
    assert broad > 2 * sharp


def test_event_selection_and_models_without_trees(subarray):
    rng = np.random.default_rng(3)
    train = training_table(1000, rng)
    test = training_table(10, rng)
    test["hillas_intensity"][:3] = 10.0  # fails the selection
    key = subarray.tel[1]
    ours = regressor(SST1MEnergyRegressor, subarray)
    ours.fit(key, train)
    result = ours.predict_table(key, test)[ReconstructionProperty.ENERGY]
    assert list(result["energy_tel_is_valid"]) == [False] * 3 + [True] * 7
    assert np.all(np.isnan(result["energy_tel_energy_uncert"][:3]))

    boosted = SST1MEnergyRegressor(
        subarray,
        model_cls="GradientBoostingRegressor",
        model_config={"n_estimators": 10},
        log_target=True,
        features=["hillas_intensity", "x"],
        config=SELECTION,
        prefix="energy",
    )
    boosted.fit(key, train)
    assert isinstance(boosted._models[key], GradientBoostingRegressor)
    result = boosted.predict_table(key, test)[ReconstructionProperty.ENERGY]
    assert np.all(np.isfinite(result["energy_tel_energy"][3:]))
    assert np.all(np.isnan(result["energy_tel_energy_uncert"]))
