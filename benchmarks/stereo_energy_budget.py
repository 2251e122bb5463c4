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

With ``--combinations``, other ways of using the two telescopes, all with the chain's
(Hillas) impact distance: one forest per event on the features of both telescopes, the
partner telescope's features added to each telescope's forest, weights from a second
forest trained on the out-of-fold squared errors, other powers of the tree spread, and
fewer training events.

Usage: python benchmarks/stereo_energy_budget.py WORKDIR [--threshold-tev 1.41] [--combinations]
"""

import argparse
from pathlib import Path

import astropy.units as u
import numpy as np
from ctapipe.io import TableLoader
from sklearn.ensemble import RandomForestRegressor
from sklearn.model_selection import GroupKFold

from ctapipe_sst1m.reco.energy_regressor import tree_mean_std
from ctapipe_sst1m.statistics import weighted_quantile

FEATURES = [
    "hillas_width",
    "hillas_length",
    "hillas_skewness",
    "hillas_kurtosis",
    "timing_slope",
    "leakage_intensity_width_2",
    "hillas_fov_lon",
    "hillas_fov_lat",
    "HillasReconstructor_h_max",
]
FOREST = {
    "n_estimators": 150,
    "max_depth": 30,
    "min_samples_leaf": 10,
    "min_samples_split": 10,
    "n_jobs": -1,
}
CRAB_INDEX = -2.62  # CRAB_HEGRA; the productions are simulated with E^-2
IMPACT_BINS_M = [0, 80, 130, 180, 250, 2000]


def stereo_telescope_events(path):
    """Telescope events of two-telescope events passing the stereo models' selection, as plain arrays."""
    with TableLoader(
        path, dl1_parameters=True, dl2=True, simulated=True, instrument=False
    ) as loader:
        table = loader.read_telescope_events()
    selected = (
        (table["hillas_intensity"] >= 50)
        & (table["hillas_width"] > 0)
        & (table["hillas_length"] > 0)
        & (table["leakage_intensity_width_2"] <= 0.7)
        & table["HillasReconstructor_is_valid"]
    )
    table = table[selected]
    columns = {
        name: np.asarray(u.Quantity(table[name]).value, dtype=float)
        for name in FEATURES
        + [
            "hillas_intensity",
            "HillasReconstructor_tel_impact_distance",
            "true_impact_distance",
            "true_energy",
            "core_psi",
        ]
    }
    columns["event"] = np.asarray(table["obs_id"], dtype=np.int64) * 10**9 + np.asarray(
        table["event_id"]
    )
    columns["log_intensity"] = np.log10(columns["hillas_intensity"])
    columns["wl"] = columns["hillas_width"] / columns["hillas_length"]
    return columns


def resolution(ratio, weights):
    """Half the 68 % inter-quantile width, as sst1m-performance."""
    low, high = weighted_quantile(ratio, [0.1587, 0.8413], weights)
    return (high - low) / 2


def combine(events, log_energy, weights):
    """Weighted mean of the telescopes' ln E per two-telescope event; true energy per event."""
    _, index, counts = np.unique(
        events["event"], return_inverse=True, return_counts=True
    )
    mean = np.bincount(index, weights * log_energy) / np.bincount(index, weights)
    true = np.bincount(index, events["true_energy"]) / counts
    both = counts == 2
    return np.exp(mean[both]), true[both]


def with_partners(events):
    """
    The telescope events of two-telescope events, as consecutive pairs, with the partner
    telescope's log intensity and impact distance and the angle between the two image
    axes on the ground (deg, 0-90).
    """
    order = np.argsort(events["event"], kind="stable")
    _, index, counts = np.unique(
        events["event"][order], return_inverse=True, return_counts=True
    )
    rows = order[counts[index] == 2]
    paired = {name: values[rows] for name, values in events.items()}
    partner = np.arange(len(rows)) ^ 1
    paired["partner_log_intensity"] = paired["log_intensity"][partner]
    paired["partner_impact"] = paired["impact"][partner]
    angle = np.abs(paired["core_psi"] - paired["core_psi"][partner]) % 180
    paired["axis_angle"] = np.minimum(angle, 180 - angle)
    return paired


def crab_resolution(energy, true, threshold):
    """Crab-weighted energy resolution of the events with a true energy above ``threshold`` (TeV)."""
    keep = true >= threshold
    return resolution(energy[keep] / true[keep] - 1, true[keep] ** (CRAB_INDEX + 2))


def stereo_resolution(test, log_energy, weights, threshold):
    """Crab-weighted stereo energy resolution above ``threshold`` (TeV)."""
    return crab_resolution(*combine(test, log_energy, weights), threshold)


def compare_combinations(train, test, names, threshold, seed):
    """Print the stereo resolution of other ways of combining the two telescopes."""
    train, test = with_partners(train), with_partners(test)

    def per_telescope(features, training=train):
        forest = RandomForestRegressor(random_state=seed, **FOREST)
        forest.fit(
            np.column_stack([training[n] for n in features]),
            np.log(training["true_energy"]),
        )
        return tree_mean_std(forest, np.column_stack([test[n] for n in features]))

    def report(label, sigma):
        print(f"{label:<58s} {sigma:>7.3f}", flush=True)

    log_energy, spread = per_telescope(names)
    report(
        "chain: per-telescope forests, inverse-variance weights",
        stereo_resolution(test, log_energy, spread**-2.0, threshold),
    )
    for power in (1, 3, 4):
        report(
            f"tree spread to the power -{power}",
            stereo_resolution(test, log_energy, spread ** -float(power), threshold),
        )
    for extra in (
        ["axis_angle"],
        ["partner_log_intensity"],
        ["partner_log_intensity", "partner_impact"],
        ["partner_log_intensity", "partner_impact", "axis_angle"],
    ):
        extra_log_energy, extra_spread = per_telescope(names + extra)
        report(
            f"+ {', '.join(extra)}",
            stereo_resolution(test, extra_log_energy, extra_spread**-2.0, threshold),
        )

    # one forest per event: both telescopes' features (rows are pairs), h_max and the axis angle
    shared = ["HillasReconstructor_h_max", "axis_angle"]
    own = [n for n in names if n not in shared]

    def per_event(data):
        return np.column_stack(
            [data[n][0::2] for n in own]
            + [data[n][1::2] for n in own]
            + [data[n][0::2] for n in shared]
        )

    for leaf in (5, 10):
        forest = RandomForestRegressor(
            random_state=seed, **{**FOREST, "min_samples_leaf": leaf}
        )
        forest.fit(per_event(train), np.log(train["true_energy"][0::2]))
        energy = np.exp(forest.predict(per_event(test)))
        report(
            f"one forest per event, min_samples_leaf {leaf}",
            crab_resolution(energy, test["true_energy"][0::2], threshold),
        )

    # weights from a forest of the out-of-fold squared errors (features and tree spread)
    features = np.column_stack([train[n] for n in names])
    target = np.log(train["true_energy"])
    out_of_fold, out_of_fold_spread = np.zeros_like(target), np.zeros_like(target)
    for fit_rows, predict_rows in GroupKFold(3).split(features, target, train["event"]):
        forest = RandomForestRegressor(random_state=seed, **FOREST).fit(
            features[fit_rows], target[fit_rows]
        )
        out_of_fold[predict_rows], out_of_fold_spread[predict_rows] = tree_mean_std(
            forest, features[predict_rows]
        )
    test_features = np.column_stack([np.column_stack([test[n] for n in names]), spread])
    for leaf in (20, 50, 100):
        error_forest = RandomForestRegressor(
            random_state=seed, n_estimators=150, min_samples_leaf=leaf, n_jobs=-1
        )
        error_forest.fit(
            np.column_stack([features, out_of_fold_spread]), (out_of_fold - target) ** 2
        )
        variance = np.maximum(error_forest.predict(test_features), 1e-4)
        report(
            f"weights from an error forest, min_samples_leaf {leaf}",
            stereo_resolution(test, log_energy, 1 / variance, threshold),
        )

    # fewer training events (whole events drawn)
    rng = np.random.default_rng(seed)
    events = np.unique(train["event"])
    for fraction in (1 / 3, 2 / 3):
        chosen = np.isin(
            train["event"],
            rng.choice(events, int(fraction * len(events)), replace=False),
        )
        subset = {name: values[chosen] for name, values in train.items()}
        sub_log_energy, sub_spread = per_telescope(names, subset)
        report(
            f"{fraction:.0%} of the training events",
            stereo_resolution(test, sub_log_energy, sub_spread**-2.0, threshold),
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("workdir", type=Path)
    parser.add_argument("--threshold-tev", type=float, default=1.41)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--combinations",
        action="store_true",
        help="compare other ways of combining the telescopes",
    )
    args = parser.parse_args()
    train = stereo_telescope_events(args.workdir / "gamma_diffuse.dl1.h5")
    test = stereo_telescope_events(args.workdir / "gamma_point.dl1.h5")
    names = ["log_intensity", "wl", *FEATURES, "impact"]
    if args.combinations:
        for data in (train, test):
            data["impact"] = data["HillasReconstructor_tel_impact_distance"]
        compare_combinations(train, test, names, args.threshold_tev, args.seed)
        return
    rng = np.random.default_rng(args.seed)
    impacts = {
        "Hillas reconstruction": lambda d: d["HillasReconstructor_tel_impact_distance"],
        "true": lambda d: d["true_impact_distance"],
        "true + N(0, 10 m)": lambda d: (
            d["true_impact_distance"] + rng.normal(0, 10, len(d["true_energy"]))
        ),
        "true + N(0, 20 m)": lambda d: (
            d["true_impact_distance"] + rng.normal(0, 20, len(d["true_energy"]))
        ),
    }
    print(
        f"{len(train['true_energy'])} training, {len(test['true_energy'])} test telescope events"
    )
    print(
        f"{'impact distance':<24s} {'weights':<18s} {'sigma_E (Crab, E > thr)':>24s}   "
        + "  ".join(
            f"b {lo}-{hi} m" for lo, hi in zip(IMPACT_BINS_M[:-1], IMPACT_BINS_M[1:])
        )
    )
    for label, impact in impacts.items():
        for data in (train, test):
            data["impact"] = impact(data)
        forest = RandomForestRegressor(random_state=args.seed, **FOREST)
        forest.fit(
            np.column_stack([train[n] for n in names]), np.log(train["true_energy"])
        )
        log_energy, spread = tree_mean_std(
            forest, np.column_stack([test[n] for n in names])
        )
        residual = log_energy - np.log(test["true_energy"])
        per_bin = []
        above = test["true_energy"] >= args.threshold_tev
        for lo, hi in zip(IMPACT_BINS_M[:-1], IMPACT_BINS_M[1:]):
            rows = (
                above
                & (test["true_impact_distance"] >= lo)
                & (test["true_impact_distance"] < hi)
            )
            per_bin.append(
                (
                    np.percentile(residual[rows], 84.13)
                    - np.percentile(residual[rows], 15.87)
                )
                / 2
            )
        for weighting, weights in (
            ("intensity", test["hillas_intensity"]),
            ("inverse variance", spread**-2.0),
        ):
            sigma = stereo_resolution(test, log_energy, weights, args.threshold_tev)
            print(
                f"{label:<24s} {weighting:<18s} {sigma:>24.3f}   "
                + "  ".join(f"{s:>11.3f}" for s in per_bin)
            )


if __name__ == "__main__":
    main()
