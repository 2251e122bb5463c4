"""
Statistics shared by the performance benchmarks and the training report.

One definition of the energy (and disp norm) bias and resolution for the package: the
*bias* is the median of the relative error, the *resolution* half the distance between
its 15.9 % and 84.1 % quantiles (the standard deviation for a Gaussian; pyirf's
default). The quantile levels are pyirf's, so that these values agree with the tables
of `pyirf.benchmarks`.
"""

import numpy as np
from pyirf.benchmarks.angular_resolution import ONE_SIGMA_QUANTILE
from pyirf.benchmarks.energy_bias_resolution import NORM_LOWER_SIGMA, NORM_UPPER_SIGMA
from pyirf.binning import calculate_bin_indices

__all__ = [
    "BOOTSTRAP_CHUNK_VALUES",
    "NORM_LOWER_SIGMA",
    "NORM_UPPER_SIGMA",
    "ONE_SIGMA_QUANTILE",
    "bias",
    "bootstrap_error",
    "bootstrap_per_bin",
    "resolution",
    "weighted_bias_resolution",
    "weighted_quantile",
]

#: largest number of resampled values held at once by `bootstrap_per_bin`
BOOTSTRAP_CHUNK_VALUES = 20_000_000


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


def bias(relative_error, axis=None):
    """
    Bias: the median of the relative error.

    Parameters
    ----------
    relative_error : array-like
        E.g. ``E_reco / E_true - 1``.
    axis : int or None
        Axis along which the median is taken (None: all values).

    Returns
    -------
    float or numpy.ndarray
    """
    return np.median(relative_error, axis=axis)


def resolution(relative_error, axis=None):
    """
    Resolution: half the distance between the 15.9 % and 84.1 % quantiles.

    The quantiles are `numpy.quantile`'s (linear interpolation); the bias does not
    change the distance, so the relative error is not corrected for it.

    Parameters
    ----------
    relative_error : array-like
        E.g. ``E_reco / E_true - 1``.
    axis : int or None
        Axis along which the quantiles are taken (None: all values).

    Returns
    -------
    float or numpy.ndarray
    """
    low, high = np.quantile(
        relative_error, [NORM_LOWER_SIGMA, NORM_UPPER_SIGMA], axis=axis
    )
    return 0.5 * (high - low)


def weighted_bias_resolution(relative_error, weights):
    """
    `bias` and `resolution` of weighted values (quantiles of `weighted_quantile`).

    Parameters
    ----------
    relative_error : array-like
        Relative errors (NaN not allowed).
    weights : array-like
        Their non-negative weights.

    Returns
    -------
    (float, float)
        Bias and resolution (NaN without values).
    """
    low, median, high = weighted_quantile(
        relative_error, [NORM_LOWER_SIGMA, 0.5, NORM_UPPER_SIGMA], weights
    )
    return median, 0.5 * (high - low)


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


def bootstrap_per_bin(values, bin_energy, energy_bins, statistics, n_resamples, rng):
    """
    Bootstrap errors of statistics of ``values`` in every energy bin.

    Each bin's values are resampled with replacement ``n_resamples`` times, at most
    `BOOTSTRAP_CHUNK_VALUES` resampled values at once; every statistic maps a
    (resamples, values) array to one number per resample.

    Parameters
    ----------
    values : numpy.ndarray
        One value per event.
    bin_energy : astropy.units.Quantity
        The energy of each event that places it in a bin.
    energy_bins : astropy.units.Quantity
        Bin edges.
    statistics : list of callable
        Statistics of the resampled values, e.g. ``lambda v: bias(v, axis=1)``.
    n_resamples : int
        Resamples of each bin (0: every error is NaN).
    rng : numpy.random.Generator or None
        Source of the resampling (needed when ``n_resamples > 0``).

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
