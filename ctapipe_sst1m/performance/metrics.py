"""
Performance of the SST-1M reconstruction on simulated DL2 events.

Energy bias and resolution, angular resolution, gamma/hadron separation (ROC, AUC),
gammaness cuts and the energy threshold, computed with pyirf and scikit-learn from the
DL2 files of ``sst1m-apply-models`` (ctapipe 0.32 layout). ``sst1m-performance`` is the
command line of this module; ``docs/performance-report.md`` describes the definitions.

The events of one *tag* are a `~astropy.table.QTable` with the columns ``obs_id``,
``event_id``, ``true_energy``, ``true_alt``, ``true_az``, ``reco_energy``, ``reco_alt``,
``reco_az``, ``gammaness`` and ``theta`` (true-to-reconstructed angular distance):

* ``tel_001``, ``tel_002``: telescope-level predictions of the ``mono`` variant;
* ``mono_combined``: subarray-level (combined) predictions of the ``mono`` variant;
* ``stereo``: subarray-level predictions of the ``stereo`` variant, events in which
  every telescope contributed to the three predictions.
"""

import operator
from dataclasses import dataclass

import astropy.units as u
import numpy as np
import tables
from astropy.table import QTable
from ctapipe.io import TableLoader, write_table
from pyirf.benchmarks import angular_resolution, energy_bias_resolution
from pyirf.benchmarks.angular_resolution import ONE_SIGMA_QUANTILE
from pyirf.benchmarks.energy_bias_resolution import NORM_LOWER_SIGMA, NORM_UPPER_SIGMA
from pyirf.binning import calculate_bin_indices
from pyirf.cuts import calculate_percentile_cut, evaluate_binned_cut
from pyirf.simulations import SimulatedEventsInfo
from pyirf.spectral import (
    DIFFUSE_FLUX_UNIT,
    POINT_SOURCE_FLUX_UNIT,
    PowerLaw,
    calculate_event_weights,
)
from pyirf.utils import calculate_theta
from sklearn.metrics import roc_auc_score, roc_curve

from ..event_index import event_keys
from ..io.model_sets import MODEL_KINDS, MODELS_ID_ATTR, reconstructor_prefix

__all__ = [
    "GAMMA_ID",
    "PROTON_ID",
    "SHOWER_TABLE",
    "VARIANTS",
    "PerformanceInputError",
    "TagPerformance",
    "angular_resolution_table",
    "auc_per_energy",
    "available_variants",
    "bootstrap_error",
    "check_primaries",
    "check_same_models",
    "check_simulated",
    "energy_resolution",
    "energy_threshold",
    "evaluate_tag",
    "event_weights",
    "gammaness_cut_table",
    "read_simulation_info",
    "read_tag_events",
    "roc_table",
    "summarize_above_threshold",
    "summary_table",
    "weighted_quantile",
    "write_performance",
]

#: model variants written by sst1m-apply-models (prefixes ``{variant}_regressor`` ...)
VARIANTS = ("mono", "stereo")
#: true_shower_primary_id of gammas and protons
GAMMA_ID = 0
PROTON_ID = 101
SHOWER_TABLE = "/simulation/event/subarray/shower"
DL2_SUBARRAY_GROUP = "/dl2/event/subarray"
#: largest number of resampled values held at once by the per-bin bootstrap
BOOTSTRAP_CHUNK_VALUES = 20_000_000
#: energy-dependent gammaness cuts are clipped to this range (as in sst1mpipe)
MIN_GAMMANESS_CUT = 0.1
MAX_GAMMANESS_CUT = 0.95


class PerformanceInputError(ValueError):
    """An input file cannot be used for a performance evaluation (the message names it)."""


@dataclass
class TagPerformance:
    """All results of one tag (see `evaluate_tag`)."""

    energy_resolution: QTable
    angular_resolution: QTable
    roc: QTable
    auc_per_energy: QTable
    gammaness_cuts_efficiency: QTable
    summary: dict


def check_simulated(path):
    """
    Refuse a file without simulation truth.

    Parameters
    ----------
    path : str or Path
        DL2 file.

    Raises
    ------
    PerformanceInputError
        If the file is not HDF5 or has no ``/simulation/event/subarray/shower`` table.
    """
    try:
        h5file = tables.open_file(path, mode="r")
    except tables.HDF5ExtError as err:
        raise PerformanceInputError(f"file {path} is not an HDF5 file") from err
    with h5file:
        if SHOWER_TABLE not in h5file:
            raise PerformanceInputError(
                f"file {path} has no {SHOWER_TABLE}: performance needs simulated DL2"
            )


def check_primaries(path, particle):
    """
    Refuse a gamma file that contains other primaries, or a proton file with gammas.

    Parameters
    ----------
    path : str or Path
        DL2 file with a ``/simulation/event/subarray/shower`` table.
    particle : {"gamma", "proton"}
        What the file is given as.

    Raises
    ------
    PerformanceInputError
        If the file holds primaries of the other kind.
    """
    with tables.open_file(path, mode="r") as h5file:
        primary = h5file.get_node(SHOWER_TABLE).col("true_shower_primary_id")
    wrong = (primary != GAMMA_ID) if particle == "gamma" else (primary == GAMMA_ID)
    if np.any(wrong):
        raise PerformanceInputError(
            f"file {path}, given as the {particle} input, contains {np.count_nonzero(wrong)}"
            f" showers of true_shower_primary_id {', '.join(map(str, np.unique(primary[wrong])))}"
            f" ({GAMMA_ID} = gamma, {PROTON_ID} = proton): are the gamma and proton inputs swapped?"
        )


def check_same_models(paths):
    """
    Refuse DL2 files made with different model sets.

    The model set is identified by the HDF5 root attribute ``SST1M_MODELS_ID`` written
    by ``sst1m-apply-models``; a file without it differs from a file with it.

    Parameters
    ----------
    paths : list of str or Path
        DL2 files.

    Raises
    ------
    PerformanceInputError
        Naming two files whose model sets differ.
    """
    ids = {}
    for path in paths:
        with tables.open_file(path, mode="r") as h5file:
            attrs = h5file.root._v_attrs
            ids[path] = str(attrs[MODELS_ID_ATTR]) if MODELS_ID_ATTR in attrs else None
    first, first_id = next(iter(ids.items()))
    for path, models_id in ids.items():
        if models_id != first_id:
            raise PerformanceInputError(
                f"{first} ({MODELS_ID_ATTR}={first_id or 'absent'}) and {path}"
                f" ({MODELS_ID_ATTR}={models_id or 'absent'})"
                " were made with different model sets: apply the same models to both"
            )


def available_variants(path):
    """
    Model variants with predictions in a DL2 file.

    Parameters
    ----------
    path : str or Path
        DL2 file.

    Returns
    -------
    variants : list of str
        Those of `VARIANTS` that have at least one ``{variant}_*`` table under
        ``/dl2/event/subarray``.
    """
    with tables.open_file(path, mode="r") as h5file:
        if DL2_SUBARRAY_GROUP not in h5file:
            return []
        prefixes = {
            node._v_name
            for group in h5file.get_node(DL2_SUBARRAY_GROUP)
            for node in group
        }
    return [v for v in VARIANTS if any(p.startswith(f"{v}_") for p in prefixes)]


def read_simulation_info(loader):
    """
    The simulated spectrum of a file (all its simulation runs).

    Parameters
    ----------
    loader : ctapipe.io.TableLoader
        Open loader of the file.

    Returns
    -------
    pyirf.simulations.SimulatedEventsInfo
        The number of showers counts the reuses.

    Raises
    ------
    PerformanceInputError
        If the runs of the file differ in energy range, index, viewcone or scatter range.
    """
    runs = loader.read_simulation_configuration()
    for name in (
        "energy_range_min",
        "energy_range_max",
        "spectral_index",
        "max_scatter_range",
        "min_viewcone_radius",
        "max_viewcone_radius",
    ):
        if len(np.unique(runs[name])) > 1:
            raise PerformanceInputError(
                f"file {loader.input_url}: the simulation runs differ in {name};"
                " evaluate them separately"
            )
    return SimulatedEventsInfo(
        n_showers=int(np.sum(runs["n_showers"] * runs["shower_reuse"])),
        energy_min=runs["energy_range_min"].quantity[0],
        energy_max=runs["energy_range_max"].quantity[0],
        max_impact=runs["max_scatter_range"].quantity[0],
        spectral_index=float(runs["spectral_index"][0]),
        viewcone_min=runs["min_viewcone_radius"].quantity[0],
        viewcone_max=runs["max_viewcone_radius"].quantity[0],
    )


def _column(table, name, fill_value):
    """A column as Quantity or array, masked entries (left joins) set to ``fill_value``."""
    column = table[name]
    data = column.filled(fill_value) if hasattr(column, "filled") else column
    return (
        u.Quantity(data, column.unit) if column.unit is not None else np.asarray(data)
    )


def _prefixes(variant):
    return {kind: reconstructor_prefix(variant, kind) for kind in MODEL_KINDS}


#: the predicted quantities of a variant: (reconstructor kind, column suffix)
PREDICTIONS = (
    ("regressor", "energy"),
    ("disp", "alt"),
    ("disp", "az"),
    ("classifier", "prediction"),
)


def _require_columns(path, table, variant, telescope_level, where):
    """Refuse a table without the prediction columns of ``variant``."""
    p = _prefixes(variant)
    if telescope_level:
        names = [f"{p[kind]}_tel_{suffix}" for kind, suffix in PREDICTIONS]
        names += [f"{prefix}_tel_is_valid" for prefix in p.values()]
    else:
        names = [f"{p[kind]}_{suffix}" for kind, suffix in PREDICTIONS]
        names += [
            f"{prefix}_{suffix}"
            for prefix in p.values()
            for suffix in ("is_valid", "telescopes")
        ]
    missing = [name for name in names if name not in table.colnames]
    if missing:
        raise PerformanceInputError(
            f"file {path} lacks the DL2 columns {', '.join(missing)} ({where});"
            " was it made by sst1m-apply-models with all three models of the variant?"
        )


def _normalised_events(table, variant, telescope_level, selected):
    """The tag's events of ``table`` in the common layout (see the module docstring)."""
    p = _prefixes(variant)
    tel = "_tel" if telescope_level else ""
    valid = selected.copy()
    for prefix in p.values():
        valid &= _column(table, f"{prefix}{tel}_is_valid", False).astype(bool)
    table = table[valid]
    events = QTable()
    events["obs_id"] = np.asarray(table["obs_id"])
    events["event_id"] = np.asarray(table["event_id"])
    for name in ("true_energy", "true_alt", "true_az"):
        events[name] = _column(table, name, np.nan)
    events["reco_energy"] = _column(table, f"{p['regressor']}{tel}_energy", np.nan)
    events["reco_alt"] = _column(table, f"{p['disp']}{tel}_alt", np.nan)
    events["reco_az"] = _column(table, f"{p['disp']}{tel}_az", np.nan)
    events["gammaness"] = _column(table, f"{p['classifier']}{tel}_prediction", np.nan)
    events["theta"] = calculate_theta(events, events["true_az"], events["true_alt"])
    return events


def _passing_quality(subarray, subarray_events, variant, failing):
    """Subarray events whose contributing telescopes all pass the quality query."""
    contributed = np.zeros((len(subarray_events), subarray.n_tels), dtype=bool)
    for prefix in _prefixes(variant).values():
        contributed |= _column(subarray_events, f"{prefix}_telescopes", False).astype(
            bool
        )
    keys = event_keys(subarray_events)
    passes = np.ones(len(subarray_events), dtype=bool)
    for tel_id, tel_failing in failing.items():
        index = subarray.tel_ids_to_indices(tel_id)[0]
        passes &= ~(contributed[:, index] & np.isin(keys, tel_failing))
    return passes


def read_tag_events(path, variants, quality_query=None):
    """
    Read the events of every tag of the given variants from a DL2 file.

    Only events whose three predictions (energy, direction, gammaness) are valid are
    kept; ``stereo`` events need every telescope of the subarray in the three
    combinations.

    Parameters
    ----------
    path : str or Path
        Simulated DL2 file of sst1m-apply-models.
    variants : list of str
        Variants to read (of `VARIANTS`).
    quality_query : ctapipe.core.QualityQuery or None
        Selection on the DL1 telescope parameters: telescope events must pass it, and
        subarray events need every contributing telescope to pass it.

    Returns
    -------
    events : dict[str, astropy.table.QTable]
        Per tag (``tel_001``, ``tel_002``, ``mono_combined``, ``stereo``).
    simulation : pyirf.simulations.SimulatedEventsInfo
        The simulated spectrum of the file.

    Raises
    ------
    PerformanceInputError
        If a variant's columns are missing.
    """
    use_quality = quality_query is not None and len(quality_query.quality_criteria) > 0
    with TableLoader(
        path,
        dl1_parameters=use_quality,
        dl2=True,
        simulated=True,
        true_parameters=False,
        true_images=False,
        observation_info=False,
        instrument=False,
        pointing=False,
    ) as loader:
        simulation = read_simulation_info(loader)
        subarray = loader.subarray
        subarray_events = loader.read_subarray_events()
        telescope_events = {}
        if "mono" in variants or use_quality:
            telescope_events = loader.read_telescope_events_by_id()

    tel_passes = {
        tel_id: quality_query.get_table_mask(table)
        if use_quality
        else np.ones(len(table), bool)
        for tel_id, table in telescope_events.items()
    }
    failing = {
        tel_id: event_keys(table[~tel_passes[tel_id]])
        for tel_id, table in telescope_events.items()
    }
    events = {}
    for variant in variants:
        _require_columns(
            path,
            subarray_events,
            variant,
            False,
            f"subarray predictions of the {variant} models",
        )
        selected = _passing_quality(subarray, subarray_events, variant, failing)
        if variant == "stereo":
            for prefix in _prefixes(variant).values():
                selected &= np.all(
                    _column(subarray_events, f"{prefix}_telescopes", False), axis=1
                )
            events["stereo"] = _normalised_events(
                subarray_events, variant, False, selected
            )
            continue
        for tel_id, table in telescope_events.items():
            if len(table) == 0:
                continue
            tag = f"tel_{tel_id:03d}"
            _require_columns(
                path,
                table,
                variant,
                True,
                f"telescope predictions of the mono models, {tag}",
            )
            events[tag] = _normalised_events(table, variant, True, tel_passes[tel_id])
        events["mono_combined"] = _normalised_events(
            subarray_events, variant, False, selected
        )
    return events, simulation


def event_weights(true_energy, simulation, target_spectrum):
    """
    Weights that turn the simulated spectrum into ``target_spectrum``.

    A diffuse simulation weighted to a point-like spectrum is integrated over its
    viewcone first. Only ratios of the weights are used (the observation time is
    arbitrary).

    Parameters
    ----------
    true_energy : astropy.units.Quantity
        True energies of the events.
    simulation : pyirf.simulations.SimulatedEventsInfo
        Simulated spectrum of their file.
    target_spectrum : callable
        pyirf spectrum, e.g. ``pyirf.spectral.CRAB_HEGRA``.

    Returns
    -------
    numpy.ndarray
        One weight per event.
    """
    simulated = PowerLaw.from_simulation(simulation, obstime=1 * u.h)
    target_unit = target_spectrum(1 * u.TeV).unit
    if target_unit.is_equivalent(
        POINT_SOURCE_FLUX_UNIT
    ) and simulated.normalization.unit.is_equivalent(DIFFUSE_FLUX_UNIT):
        simulated = simulated.integrate_cone(
            simulation.viewcone_min, simulation.viewcone_max
        )
    elif target_unit.is_equivalent(
        DIFFUSE_FLUX_UNIT
    ) and simulated.normalization.unit.is_equivalent(POINT_SOURCE_FLUX_UNIT):
        raise PerformanceInputError(
            "cannot weight a point-like simulation (viewcone 0) to a diffuse spectrum"
        )
    return calculate_event_weights(true_energy, target_spectrum, simulated)


def weighted_quantile(values, quantiles, weights=None):
    """
    Quantiles of weighted values.

    The empirical distribution function puts the value ``k`` (sorted) at
    ``(W_k - w_k / 2) / W`` (``W_k`` the cumulative weight, ``W`` the total) and is
    interpolated linearly; with equal weights this is the ``hazen`` method of
    `numpy.quantile`.

    Parameters
    ----------
    values : array-like
        Values (NaN not allowed).
    quantiles : float or array-like
        Quantiles in [0, 1].
    weights : array-like or None
        Non-negative weights, default all 1.

    Returns
    -------
    float or numpy.ndarray
        NaN if there are no values.
    """
    values = np.asarray(values, dtype=float)
    if values.size == 0:
        return np.full(np.shape(quantiles), np.nan)[()]
    weights = (
        np.ones_like(values) if weights is None else np.asarray(weights, dtype=float)
    )
    order = np.argsort(values)
    values, weights = values[order], weights[order]
    cumulative = np.cumsum(weights)
    cdf = (cumulative - 0.5 * weights) / cumulative[-1]
    return np.interp(quantiles, cdf, values)


def _blank_sparse_bins(table, columns, min_events):
    """Set ``columns`` to NaN in the bins with fewer than ``min_events`` events."""
    sparse = table["n_events"] < min_events
    for name in columns:
        table[name][sparse] = np.nan
    return table


def bootstrap_error(samples):
    """
    Statistical error of a statistic from its bootstrap replicates.

    Parameters
    ----------
    samples : array-like
        The statistic of each resampled data set (NaN ignored).

    Returns
    -------
    float
        Half the central 68 % interval (15.9 % to 84.1 %) of the replicates: the
        standard error for a Gaussian distribution; NaN without finite replicates.
    """
    samples = np.asarray(samples, dtype=float)
    if not np.any(np.isfinite(samples)):
        return np.nan
    low, high = np.nanquantile(samples, [NORM_LOWER_SIGMA, NORM_UPPER_SIGMA])
    return 0.5 * (high - low)


def _resolution_along(values, axis):
    """Half the 15.9 %-84.1 % inter-quantile distance along ``axis`` (pyirf's default)."""
    low, high = np.quantile(values, [NORM_LOWER_SIGMA, NORM_UPPER_SIGMA], axis=axis)
    return 0.5 * (high - low)


def _bootstrap_per_bin(values, bin_energy, energy_bins, statistics, n_resamples, rng):
    """
    Bootstrap errors of statistics of ``values`` in every energy bin.

    Each bin's values are resampled with replacement ``n_resamples`` times; every
    statistic maps a (resamples, values) array to one number per resample.

    Returns
    -------
    list of numpy.ndarray
        Per statistic, the error of each bin (NaN for bins with fewer than 2 values or
        without resamples).
    """
    errors = [np.full(len(energy_bins) - 1, np.nan) for _ in statistics]
    if n_resamples == 0 or len(values) == 0:
        return errors
    bin_index, valid = calculate_bin_indices(bin_energy, energy_bins)
    for bin_idx in np.unique(bin_index[valid]):
        in_bin = values[valid & (bin_index == bin_idx)]
        if len(in_bin) < 2:
            continue
        chunk = max(1, BOOTSTRAP_CHUNK_VALUES // len(in_bin))
        replicates = [[] for _ in statistics]
        for start in range(0, n_resamples, chunk):
            size = min(chunk, n_resamples - start)
            resampled = in_bin[rng.integers(0, len(in_bin), (size, len(in_bin)))]
            for replicate, statistic in zip(replicates, statistics):
                replicate.append(statistic(resampled))
        for error, replicate in zip(errors, replicates):
            error[bin_idx] = bootstrap_error(np.concatenate(replicate))
    return errors


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
    table["bias_err"], table["resolution_err"] = _bootstrap_per_bin(
        relative_error,
        gammas["true_energy"],
        energy_bins,
        [
            lambda values: np.median(values, axis=1),
            lambda values: _resolution_along(values, axis=1),
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
    (error,) = _bootstrap_per_bin(
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
    low, median, high = weighted_quantile(
        relative_error, [NORM_LOWER_SIGMA, 0.5, NORM_UPPER_SIGMA], weights
    )
    return (
        median,
        0.5 * (high - low),
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
    bias, resolution, containment = _reconstruction_figures(
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
        "energy_bias": bias,
        "energy_bias_err": bias_err,
        "energy_resolution": resolution,
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


#: output tables of a tag: attributes of TagPerformance, ECSV file stems and HDF5 node names
TAG_TABLES = (
    "energy_resolution",
    "angular_resolution",
    "roc",
    "auc_per_energy",
    "gammaness_cuts_efficiency",
)


def summary_table(results, meta):
    """
    One row per tag of the summaries of `evaluate_tag`.

    Parameters
    ----------
    results : dict[str, TagPerformance]
        Per tag.
    meta : dict
        Table metadata (inputs, cuts, spectra).

    Returns
    -------
    astropy.table.QTable
    """
    rows = [{"tag": tag, **result.summary} for tag, result in results.items()]
    table = QTable(rows=rows)
    table.meta.update(meta)
    return table


def write_performance(directory, results, summary):
    """
    Write the tables of every tag as ECSV files and into ``performance.h5``.

    Parameters
    ----------
    directory : Path
        Existing, empty output directory.
    results : dict[str, TagPerformance]
        Per tag.
    summary : astropy.table.QTable
        From `summary_table`.

    Returns
    -------
    list of Path
        The files written.
    """
    h5_path = directory / "performance.h5"
    written = []
    for tag, result in results.items():
        for name in TAG_TABLES:
            table = getattr(result, name)
            path = directory / f"{name}_{tag}.ecsv"
            table.write(path, format="ascii.ecsv")
            written.append(path)
            write_table(table, h5_path, f"/{tag}/{name}")
    summary.write(directory / "summary.ecsv", format="ascii.ecsv")
    write_table(summary, h5_path, "/summary")
    return [*written, directory / "summary.ecsv", h5_path]
