"""
Performance of the SST-1M reconstruction on the events of one tag.

Energy bias and resolution, angular resolution, gamma/hadron separation (ROC, AUC),
gammaness cuts and the energy threshold, computed with pyirf and scikit-learn from the
tag events of `ctapipe_sst1m.performance.inputs` (weighted by its `event_weights`);
`ctapipe_sst1m.performance.output` writes them. ``sst1m-performance`` is the command
line; ``docs/performance-report.md`` describes the definitions, and the bias and
resolution are those of `ctapipe_sst1m.statistics`.
"""

import operator
from dataclasses import dataclass

import astropy.units as u
import numpy as np
from astropy.table import QTable
from pyirf.benchmarks import angular_resolution, energy_bias_resolution
from pyirf.cuts import calculate_percentile_cut, evaluate_binned_cut
from sklearn.metrics import roc_auc_score, roc_curve

from ..statistics import (
    ONE_SIGMA_QUANTILE,
    bias,
    bootstrap_error,
    bootstrap_per_bin,
    resolution,
    weighted_bias_resolution,
    weighted_quantile,
)

__all__ = [
    "TagPerformance",
    "angular_resolution_table",
    "auc_per_energy",
    "energy_resolution",
    "energy_threshold",
    "evaluate_tag",
    "gammaness_cut_table",
    "roc_table",
    "summarize_above_threshold",
]

#: energy-dependent gammaness cuts are clipped to this range (as in sst1mpipe)
MIN_GAMMANESS_CUT = 0.1
MAX_GAMMANESS_CUT = 0.95


@dataclass
class TagPerformance:
    """All results of one tag (see `evaluate_tag`)."""

    energy_resolution: QTable
    angular_resolution: QTable
    roc: QTable
    auc_per_energy: QTable
    gammaness_cuts_efficiency: QTable
    summary: dict
    #: per true-energy bin, point-like gammas only (`effective_area.effective_area_table`)
    effective_area: QTable | None = None


def _blank_sparse_bins(table, columns, min_events):
    """Set ``columns`` to NaN in the bins with fewer than ``min_events`` events."""
    sparse = table["n_events"] < min_events
    for name in columns:
        table[name][sparse] = np.nan
    return table


def energy_resolution(gammas, energy_bins, min_events, n_resamples=0, rng=None):
    """
    Energy bias and resolution per true-energy bin, with bootstrap errors.

    Parameters
    ----------
    gammas : astropy.table.QTable
        Tag events (``true_energy``, ``reco_energy``).
    energy_bins : astropy.units.Quantity
        True-energy bin edges.
    min_events : int
        Bins with fewer events get NaN.
    n_resamples : int
        Bootstrap resamples of each bin for the errors (0: errors are NaN).
    rng : numpy.random.Generator or None
        Source of the resampling (needed when ``n_resamples > 0``).

    Returns
    -------
    astropy.table.QTable
        ``true_energy_low``, ``true_energy_high``, ``true_energy_center``, ``n_events``,
        ``bias`` (median of (E_reco - E_true) / E_true), ``resolution`` (half the
        distance between its 15.9 % and 84.1 % quantiles: pyirf's default), and their
        statistical errors ``bias_err``, ``resolution_err`` (`bootstrap_error`).
    """
    table = energy_bias_resolution(gammas, energy_bins, energy_type="true")
    relative_error = (gammas["reco_energy"] / gammas["true_energy"]).to_value(u.one) - 1
    table["bias_err"], table["resolution_err"] = bootstrap_per_bin(
        relative_error,
        gammas["true_energy"],
        energy_bins,
        [
            lambda values: bias(values, axis=1),
            lambda values: resolution(values, axis=1),
        ],
        n_resamples,
        rng,
    )
    return _blank_sparse_bins(
        table, ("bias", "resolution", "bias_err", "resolution_err"), min_events
    )


def angular_resolution_table(gammas, energy_bins, min_events, n_resamples=0, rng=None):
    """
    68 % containment radius of the true-to-reconstructed distance per true-energy bin.

    Parameters
    ----------
    gammas : astropy.table.QTable
        Tag events (``true_energy``, ``theta``).
    energy_bins : astropy.units.Quantity
        True-energy bin edges.
    min_events : int
        Bins with fewer events get NaN.
    n_resamples : int
        Bootstrap resamples of each bin for the error (0: the error is NaN).
    rng : numpy.random.Generator or None
        Source of the resampling (needed when ``n_resamples > 0``).

    Returns
    -------
    astropy.table.QTable
        ``true_energy_low``, ``true_energy_high``, ``true_energy_center``, ``n_events``,
        ``angular_resolution_68`` and its statistical error ``angular_resolution_68_err``
        (deg).
    """
    table = angular_resolution(gammas, energy_bins, energy_type="true")
    (error,) = bootstrap_per_bin(
        gammas["theta"].to_value(u.deg),
        gammas["true_energy"],
        energy_bins,
        [lambda values: np.quantile(values, ONE_SIGMA_QUANTILE, axis=1)],
        n_resamples,
        rng,
    )
    table["angular_resolution_68_err"] = error * u.deg
    return _blank_sparse_bins(
        table, ("angular_resolution_68", "angular_resolution_68_err"), min_events
    )


def _labels_scores(gammaness_gammas, gammaness_protons):
    labels = np.concatenate(
        [np.ones(len(gammaness_gammas)), np.zeros(len(gammaness_protons))]
    )
    return labels, np.concatenate([gammaness_gammas, gammaness_protons])


def roc_table(gammaness_gammas, gammaness_protons):
    """
    ROC curve of the gammaness (gammas are the positive class), unweighted.

    Parameters
    ----------
    gammaness_gammas, gammaness_protons : array-like
        Gammaness of the gamma and proton events.

    Returns
    -------
    astropy.table.QTable
        ``gammaness_cut`` (events with gammaness >= cut pass; the first is +inf),
        ``gamma_efficiency`` (true-positive rate), ``proton_efficiency`` (false-positive
        rate); ``meta["AUC"]`` the area under the curve.
    """
    labels, scores = _labels_scores(gammaness_gammas, gammaness_protons)
    proton_efficiency, gamma_efficiency, cuts = roc_curve(labels, scores)
    table = QTable(
        {
            "gammaness_cut": cuts,
            "gamma_efficiency": gamma_efficiency,
            "proton_efficiency": proton_efficiency,
        }
    )
    table.meta["AUC"] = float(roc_auc_score(labels, scores))
    return table


def auc_per_energy(gammas, protons, energy_bins, min_events):
    """
    Area under the ROC curve per reconstructed-energy bin.

    Parameters
    ----------
    gammas, protons : astropy.table.QTable
        Tag events (``reco_energy``, ``gammaness``).
    energy_bins : astropy.units.Quantity
        Reconstructed-energy bin edges.
    min_events : int
        Bins with fewer gammas or fewer protons get NaN.

    Returns
    -------
    astropy.table.QTable
        ``reco_energy_low``, ``reco_energy_high``, ``reco_energy_center``, ``n_gammas``,
        ``n_protons``, ``auc``.
    """
    gamma_bin = (
        np.digitize(gammas["reco_energy"].to_value(u.TeV), energy_bins.to_value(u.TeV))
        - 1
    )
    proton_bin = (
        np.digitize(protons["reco_energy"].to_value(u.TeV), energy_bins.to_value(u.TeV))
        - 1
    )
    n_bins = len(energy_bins) - 1
    table = QTable()
    table["reco_energy_low"] = energy_bins[:-1]
    table["reco_energy_high"] = energy_bins[1:]
    table["reco_energy_center"] = np.sqrt(energy_bins[:-1] * energy_bins[1:])
    table["n_gammas"] = np.bincount(
        gamma_bin[(gamma_bin >= 0) & (gamma_bin < n_bins)], minlength=n_bins
    )
    table["n_protons"] = np.bincount(
        proton_bin[(proton_bin >= 0) & (proton_bin < n_bins)], minlength=n_bins
    )
    table["auc"] = np.nan
    for i in range(n_bins):
        if table["n_gammas"][i] >= min_events and table["n_protons"][i] >= min_events:
            labels, scores = _labels_scores(
                gammas["gammaness"][gamma_bin == i],
                protons["gammaness"][proton_bin == i],
            )
            table["auc"][i] = roc_auc_score(labels, scores)
    return table


def _pass_fraction(passes, bin_values, energy_bins):
    """Fraction of True per bin (NaN in empty bins)."""
    edges = energy_bins.to_value(u.TeV)
    values = bin_values.to_value(u.TeV)
    total, _ = np.histogram(values, edges)
    passed, _ = np.histogram(values[passes], edges)
    with np.errstate(invalid="ignore", divide="ignore"):
        return passed / total


def gammaness_cut_table(gammas, protons, energy_bins, gamma_efficiency, min_events):
    """
    Energy-dependent gammaness cut keeping a fraction of the gammas in each bin.

    Parameters
    ----------
    gammas, protons : astropy.table.QTable
        Tag events (``reco_energy``, ``gammaness``).
    energy_bins : astropy.units.Quantity
        Reconstructed-energy bin edges.
    gamma_efficiency : float
        Target fraction of gammas passing (gammaness >= cut) in each bin.
    min_events : int
        Bins with fewer gammas get the cut of the target efficiency over all energies.

    Returns
    -------
    astropy.table.QTable
        ``low``, ``high``, ``center`` (reconstructed energy), ``n_events`` (gammas),
        ``cut``, clipped to [0.1, 0.95] (pyirf ``calculate_percentile_cut``), and the
        resulting ``gamma_efficiency`` and ``proton_efficiency`` per bin.
    """
    overall = np.clip(
        weighted_quantile(gammas["gammaness"], 1 - gamma_efficiency),
        MIN_GAMMANESS_CUT,
        MAX_GAMMANESS_CUT,
    )
    cuts = calculate_percentile_cut(
        np.asarray(gammas["gammaness"]),
        gammas["reco_energy"],
        energy_bins,
        fill_value=overall,
        percentile=100 * (1 - gamma_efficiency),
        min_value=MIN_GAMMANESS_CUT,
        max_value=MAX_GAMMANESS_CUT,
        min_events=min_events,
    )
    for name, events in (("gamma_efficiency", gammas), ("proton_efficiency", protons)):
        passes = evaluate_binned_cut(
            np.asarray(events["gammaness"]), events["reco_energy"], cuts, operator.ge
        )
        cuts[name] = _pass_fraction(passes, events["reco_energy"], energy_bins)
    cuts.meta["GH_EFF"] = gamma_efficiency
    return cuts


def energy_threshold(true_energy, weights, energy_bins):
    """
    Energy threshold: the peak of the weighted true-energy distribution.

    Parameters
    ----------
    true_energy : astropy.units.Quantity
        True energies of the selected gammas.
    weights : array-like
        Their weights to the assumed source spectrum.
    energy_bins : astropy.units.Quantity
        Logarithmic bin edges (the distribution is dN/dlogE).

    Returns
    -------
    astropy.units.Quantity
        Logarithmic center of the fullest bin (NaN without events).
    """
    counts, _ = np.histogram(
        true_energy.to_value(u.TeV), energy_bins.to_value(u.TeV), weights=weights
    )
    if not np.any(counts > 0):
        return np.nan * u.TeV
    peak = np.argmax(counts)
    return np.sqrt(energy_bins[peak] * energy_bins[peak + 1]).to(u.TeV)


def _reconstruction_figures(relative_error, theta_deg, weights):
    """Weighted energy bias, energy resolution and 68 % containment radius (deg)."""
    return (
        *weighted_bias_resolution(relative_error, weights),
        weighted_quantile(theta_deg, ONE_SIGMA_QUANTILE, weights),
    )


def summarize_above_threshold(
    gammas, protons, threshold, gammaness_cut, n_resamples=0, rng=None
):
    """
    Weighted performance of the events above the energy threshold.

    Reconstruction quantities use the gammas with E_true >= ``threshold``; the
    classification quantities use the gammas and protons with E_reco >= ``threshold``
    (the true energy of a proton is not comparable to a gamma's).

    Parameters
    ----------
    gammas, protons : astropy.table.QTable
        Tag events with a ``weight`` column.
    threshold : astropy.units.Quantity
        Energy threshold.
    gammaness_cut : float
        Global gammaness cut (events with gammaness >= cut pass).
    n_resamples : int
        Bootstrap resamples of the gammas above the threshold for the errors of the
        reconstruction quantities (0: the errors are NaN). The threshold is held fixed.
    rng : numpy.random.Generator or None
        Source of the resampling (needed when ``n_resamples > 0``).

    Returns
    -------
    dict
        ``energy_bias``, ``energy_resolution`` (as in `energy_resolution`, weighted),
        ``angular_resolution`` (weighted 68 % containment, deg), their statistical errors
        ``energy_bias_err``, ``energy_resolution_err``, ``angular_resolution_err``
        (`bootstrap_error`), ``auc`` (weighted), ``gamma_efficiency`` and
        ``proton_efficiency`` of ``gammaness_cut`` (weighted), ``n_gammas`` (E_true
        above threshold), ``n_protons`` (E_reco above threshold).
    """
    true_above = gammas[gammas["true_energy"] >= threshold]
    relative_error = (true_above["reco_energy"] / true_above["true_energy"]).to_value(
        u.one
    ) - 1
    theta = true_above["theta"].to_value(u.deg)
    weights = np.asarray(true_above["weight"])
    energy_bias, energy_res, containment = _reconstruction_figures(
        relative_error, theta, weights
    )
    replicates = np.full((n_resamples if len(true_above) > 1 else 0, 3), np.nan)
    for replicate in replicates:
        drawn = rng.integers(0, len(true_above), len(true_above))
        replicate[:] = _reconstruction_figures(
            relative_error[drawn], theta[drawn], weights[drawn]
        )
    bias_err, resolution_err, containment_err = (
        bootstrap_error(column) for column in replicates.T
    )

    gamma_reco = gammas[gammas["reco_energy"] >= threshold]
    proton_reco = protons[protons["reco_energy"] >= threshold]
    labels, scores = _labels_scores(gamma_reco["gammaness"], proton_reco["gammaness"])
    sample_weight = np.concatenate([gamma_reco["weight"], proton_reco["weight"]])
    classes_present = len(gamma_reco) > 0 and len(proton_reco) > 0

    def efficiency(events):
        if len(events) == 0:
            return np.nan
        return float(
            np.average(events["gammaness"] >= gammaness_cut, weights=events["weight"])
        )

    return {
        "energy_bias": energy_bias,
        "energy_bias_err": bias_err,
        "energy_resolution": energy_res,
        "energy_resolution_err": resolution_err,
        "angular_resolution": containment * u.deg,
        "angular_resolution_err": containment_err * u.deg,
        "auc": roc_auc_score(labels, scores, sample_weight=sample_weight)
        if classes_present
        else np.nan,
        "gamma_efficiency": efficiency(gamma_reco),
        "proton_efficiency": efficiency(proton_reco),
        "n_gammas": len(true_above),
        "n_protons": len(proton_reco),
    }


def evaluate_tag(
    gammas,
    protons,
    energy_bins,
    threshold_bins,
    gammaness_cut,
    gamma_efficiency,
    min_events,
    n_resamples=0,
    rng=None,
):
    """
    All performance results of one tag.

    Parameters
    ----------
    gammas, protons : astropy.table.QTable
        Tag events (see the module docstring) with a ``weight`` column.
    energy_bins : astropy.units.Quantity
        Bin edges of the resolution tables (true energy), the AUC and the cuts (reco).
    threshold_bins : astropy.units.Quantity
        Bin edges of the true-energy distribution whose peak is the threshold.
    gammaness_cut : float
        Global gammaness cut.
    gamma_efficiency : float
        Target gamma efficiency of the energy-dependent cuts.
    min_events : int
        Minimum events per bin: gammas for the resolutions and the cuts, each species
        for the AUC.
    n_resamples : int
        Bootstrap resamples for the statistical errors of the resolutions and of the
        bias (0: no errors, NaN).
    rng : numpy.random.Generator or None
        Source of the resampling (needed when ``n_resamples > 0``).

    Returns
    -------
    TagPerformance
    """
    threshold = energy_threshold(
        gammas["true_energy"], gammas["weight"], threshold_bins
    )
    summary = {"energy_threshold": threshold}
    summary.update(
        summarize_above_threshold(
            gammas, protons, threshold, gammaness_cut, n_resamples, rng
        )
    )
    return TagPerformance(
        energy_resolution=energy_resolution(
            gammas, energy_bins, min_events, n_resamples, rng
        ),
        angular_resolution=angular_resolution_table(
            gammas, energy_bins, min_events, n_resamples, rng
        ),
        roc=roc_table(gammas["gammaness"], protons["gammaness"]),
        auc_per_energy=auc_per_energy(gammas, protons, energy_bins, min_events),
        gammaness_cuts_efficiency=gammaness_cut_table(
            gammas, protons, energy_bins, gamma_efficiency, min_events
        ),
        summary=summary,
    )
