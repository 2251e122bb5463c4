"""
What limits the stereo energy resolution on the project's simulation (a diagnostic).

On a production of ``benchmarks/ml_production.py`` (diffuse gammas for training, point
gammas for testing) the stereo energy forest of ``sst1m_models.yaml`` (same features,
selection and forest arguments) is trained with the impact distance feature taken from

* the two-telescope Hillas reconstruction (what the chain uses),
* the truth (the best any geometry could do),
* the truth smeared by a Gaussian of 10 and 20 m,

and the telescopes are combined with intensity weights and with inverse-variance weights
(spread of the trees). Printed: the Crab-weighted stereo energy resolution above the
stereo threshold (half the 68 % inter-quantile width of E_reco/E_true - 1, as
``sst1m-performance``), and the per-telescope resolution of ln E in bins of the true
impact distance (inside and beyond the light-pool edge at ~130 m).

Usage: python benchmarks/stereo_energy_budget.py WORKDIR [--threshold-tev 1.41]
"""

import argparse
from pathlib import Path

import astropy.units as u
import numpy as np
from ctapipe.io import TableLoader
from sklearn.ensemble import RandomForestRegressor

from ctapipe_sst1m.components.energy_regressor import tree_mean_std
from ctapipe_sst1m.performance import weighted_quantile

FEATURES = ["hillas_width", "hillas_length", "hillas_skewness", "hillas_kurtosis", "timing_slope",
            "leakage_intensity_width_2", "hillas_fov_lon", "hillas_fov_lat", "HillasReconstructor_h_max"]
FOREST = {"n_estimators": 150, "max_depth": 30, "min_samples_leaf": 10, "min_samples_split": 10, "n_jobs": -1}
CRAB_INDEX = -2.62  # CRAB_HEGRA; the productions are simulated with E^-2
IMPACT_BINS_M = [0, 80, 130, 180, 250, 2000]


def stereo_telescope_events(path):
    """Telescope events of two-telescope events passing the stereo models' selection, as plain arrays."""
    with TableLoader(path, dl1_parameters=True, dl2=True, simulated=True, instrument=False) as loader:
        table = loader.read_telescope_events()
    selected = (
        (table["hillas_intensity"] >= 50) & (table["hillas_width"] > 0) & (table["hillas_length"] > 0)
        & (table["leakage_intensity_width_2"] <= 0.7) & table["HillasReconstructor_is_valid"]
    )
    table = table[selected]
    columns = {name: np.asarray(u.Quantity(table[name]).value, dtype=float)
               for name in FEATURES + ["hillas_intensity", "HillasReconstructor_tel_impact_distance",
                                       "true_impact_distance", "true_energy"]}
    columns["event"] = np.asarray(table["obs_id"], dtype=np.int64) * 10**9 + np.asarray(table["event_id"])
    columns["log_intensity"] = np.log10(columns["hillas_intensity"])
    columns["wl"] = columns["hillas_width"] / columns["hillas_length"]
    return columns


def resolution(ratio, weights):
    """Half the 68 % inter-quantile width, as sst1m-performance."""
    low, high = weighted_quantile(ratio, [0.1587, 0.8413], weights)
    return (high - low) / 2


def combine(events, log_energy, weights):
    """Weighted mean of the telescopes' ln E per two-telescope event; true energy per event."""
    _, index, counts = np.unique(events["event"], return_inverse=True, return_counts=True)
    mean = np.bincount(index, weights * log_energy) / np.bincount(index, weights)
    true = np.bincount(index, events["true_energy"]) / counts
    both = counts == 2
    return np.exp(mean[both]), true[both]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("workdir", type=Path)
    parser.add_argument("--threshold-tev", type=float, default=1.41)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    train = stereo_telescope_events(args.workdir / "gamma_diffuse.dl1.h5")
    test = stereo_telescope_events(args.workdir / "gamma_point.dl1.h5")
    rng = np.random.default_rng(args.seed)
    impacts = {
        "Hillas reconstruction": lambda d: d["HillasReconstructor_tel_impact_distance"],
        "true": lambda d: d["true_impact_distance"],
        "true + N(0, 10 m)": lambda d: d["true_impact_distance"] + rng.normal(0, 10, len(d["true_energy"])),
        "true + N(0, 20 m)": lambda d: d["true_impact_distance"] + rng.normal(0, 20, len(d["true_energy"])),
    }
    print(f"{len(train['true_energy'])} training, {len(test['true_energy'])} test telescope events")
    print(f"{'impact distance':<24s} {'weights':<18s} {'sigma_E (Crab, E > thr)':>24s}   "
          + "  ".join(f"b {lo}-{hi} m" for lo, hi in zip(IMPACT_BINS_M[:-1], IMPACT_BINS_M[1:])))
    names = ["log_intensity", "wl", *FEATURES, "impact"]
    for label, impact in impacts.items():
        for data in (train, test):
            data["impact"] = impact(data)
        forest = RandomForestRegressor(random_state=args.seed, **FOREST)
        forest.fit(np.column_stack([train[n] for n in names]), np.log(train["true_energy"]))
        log_energy, spread = tree_mean_std(forest, np.column_stack([test[n] for n in names]))
        residual = log_energy - np.log(test["true_energy"])
        per_bin = []
        above = test["true_energy"] >= args.threshold_tev
        for lo, hi in zip(IMPACT_BINS_M[:-1], IMPACT_BINS_M[1:]):
            rows = above & (test["true_impact_distance"] >= lo) & (test["true_impact_distance"] < hi)
            per_bin.append((np.percentile(residual[rows], 84.13) - np.percentile(residual[rows], 15.87)) / 2)
        for weighting, weights in (("intensity", test["hillas_intensity"]), ("inverse variance", spread**-2.0)):
            energy, true = combine(test, log_energy, weights)
            keep = true >= args.threshold_tev
            sigma = resolution(energy[keep] / true[keep] - 1, true[keep] ** (CRAB_INDEX + 2))
            print(f"{label:<24s} {weighting:<18s} {sigma:>24.3f}   " + "  ".join(f"{s:>11.3f}" for s in per_bin))


if __name__ == "__main__":
    main()
