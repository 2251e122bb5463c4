"""
Energy regression with a per-telescope uncertainty: ``SST1MEnergyRegressor``.

ctapipe's ``EnergyRegressor`` leaves ``energy_uncert`` of the telescope predictions
empty. For forests (``RandomForestRegressor``, ``ExtraTreesRegressor``) the spread of
the individual trees' predictions measures how well the training events that resemble
an image constrain its energy: small inside the light pool, large for a telescope
beyond the pool edge whose impact distance is poorly known. ``SST1MEnergyRegressor``
predicts the energy as the mean of the trees (exactly what the forest predicts) and
fills ``energy_uncert`` with the standard deviation of the trees, converted to energy:
``energy * std(ln E)`` for a logarithmic target, ``std(E)`` otherwise. The stereo
combination can weight the telescopes with it (``SST1MStereoCombiner.energy_weights``).
Models without individual trees leave the uncertainty NaN, as ctapipe does.
"""

from concurrent.futures import ThreadPoolExecutor

import astropy.units as u
import numpy as np
from astropy.table import Table
from ctapipe.containers import ArrayEventContainer, ReconstructedEnergyContainer
from ctapipe.reco import EnergyRegressor
from ctapipe.reco.preprocessing import collect_features, table_to_X
from ctapipe.reco.reconstructor import ReconstructionProperty
from ctapipe.reco.utils import add_defaults_and_meta
from joblib import effective_n_jobs
from sklearn.ensemble import ExtraTreesRegressor, RandomForestRegressor

__all__ = ["SST1MEnergyRegressor", "tree_mean_std"]

#: regressors whose prediction is the mean of independent trees
FORESTS = (RandomForestRegressor, ExtraTreesRegressor)


def _sums(trees, X):
    """Sum and sum of squares of the predictions of some trees."""
    total = np.zeros(len(X))
    total_sq = np.zeros(len(X))
    for tree in trees:
        prediction = tree.predict(X)
        total += prediction
        total_sq += prediction * prediction
    return total, total_sq


def tree_mean_std(forest, X):
    """
    Mean and standard deviation of the predictions of a forest's trees.

    The trees are shared among ``forest.n_jobs`` threads (tree prediction releases
    the GIL), as in the forest's own ``predict``.

    Parameters
    ----------
    forest : fitted ``RandomForestRegressor`` or ``ExtraTreesRegressor``
    X : ndarray (n_samples, n_features)

    Returns
    -------
    mean, std : ndarray (n_samples,)
        ``mean`` equals ``forest.predict(X)`` up to rounding.
    """
    trees = forest.estimators_
    n_threads = min(effective_n_jobs(forest.n_jobs), len(trees))
    groups = [trees[i::n_threads] for i in range(n_threads)]
    with ThreadPoolExecutor(n_threads) as pool:
        sums = list(pool.map(lambda group: _sums(group, X), groups))
    total = np.sum([total for total, _ in sums], axis=0)
    total_sq = np.sum([total_sq for _, total_sq in sums], axis=0)
    mean = total / len(trees)
    variance = np.clip(total_sq / len(trees) - mean * mean, 0.0, None)
    return mean, np.sqrt(variance)


class SST1MEnergyRegressor(EnergyRegressor):
    """
    ctapipe's ``EnergyRegressor`` that also fills ``energy_uncert`` per telescope.

    Configured like ``EnergyRegressor`` (its configuration section applies); the
    uncertainty is the spread of the forest's trees (see the module documentation).
    """

    def _predict_with_uncertainty(self, key, table):
        """Energy, its uncertainty (both Quantities) and the valid mask of the rows."""
        model = self._models.get(key)
        if model is None:
            raise KeyError(
                f"No model available for key {key}, available: {list(self._models)}"
            )
        if not isinstance(model, FORESTS):
            energy, valid = self._predict(key, table)
            return energy, u.Quantity(np.full(len(table), np.nan), self.unit), valid

        X, valid = table_to_X(table, self.features, self.log)
        energy = np.full(len(table), np.nan)
        uncert = np.full(len(table), np.nan)
        if np.any(valid):
            mean, std = tree_mean_std(model, X)
            if self.log_target:
                energy[valid] = np.exp(mean)
                uncert[valid] = energy[valid] * std
            else:
                energy[valid] = mean
                uncert[valid] = std
        return u.Quantity(energy, self.unit), u.Quantity(uncert, self.unit), valid

    def __call__(self, event: ArrayEventContainer) -> None:
        for tel_id in event.trigger.tels_with_trigger:
            table = collect_features(event, tel_id, self.instrument_table)
            table = self.feature_generator(table, subarray=self.subarray)
            if self.quality_query.get_table_mask(table)[0]:
                energy, uncert, valid = self._predict_with_uncertainty(
                    self.subarray.tel[tel_id], table
                )
                container = ReconstructedEnergyContainer(
                    energy=energy[0], energy_uncert=uncert[0], is_valid=bool(valid[0])
                )
            else:
                nan = u.Quantity(np.nan, self.unit)
                container = ReconstructedEnergyContainer(
                    energy=nan, energy_uncert=nan, is_valid=False
                )
            container.prefix = f"{self.prefix}_tel"
            event.dl2.tel[tel_id].energy[self.prefix] = container

        self.stereo_combiner(event)

    def predict_table(self, key, table: Table) -> dict[ReconstructionProperty, Table]:
        table = self.feature_generator(table, subarray=self.subarray)
        n_rows = len(table)
        energy = u.Quantity(np.full(n_rows, np.nan), self.unit)
        uncert = u.Quantity(np.full(n_rows, np.nan), self.unit)
        is_valid = np.full(n_rows, False)

        selected = self.quality_query.get_table_mask(table)
        if np.any(selected):
            energy[selected], uncert[selected], is_valid[selected] = (
                self._predict_with_uncertainty(key, table[selected])
            )
        result = Table(
            {
                f"{self.prefix}_tel_energy": energy,
                f"{self.prefix}_tel_energy_uncert": uncert,
                f"{self.prefix}_tel_is_valid": is_valid,
            }
        )
        add_defaults_and_meta(
            result,
            ReconstructedEnergyContainer,
            prefix=self.prefix,
            add_tel_prefix=True,
        )
        return {ReconstructionProperty.ENERGY: result}
