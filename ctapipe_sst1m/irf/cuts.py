"""Global (energy-independent) cuts in the format of ctapipe's event-selection optimiser."""

import astropy.units as u
import numpy as np
from astropy.table import QTable
from ctapipe.irf import OptimizationResult

__all__ = ["global_cuts"]


def _constant_cut_table(energy_bins, value):
    """A pyirf binned cut table (``low``, ``high``, ``center``, ``cut``) of one value."""
    table = QTable()
    table["low"] = energy_bins[:-1]
    table["high"] = energy_bins[1:]
    table["center"] = np.sqrt(energy_bins[:-1] * energy_bins[1:])
    table["cut"] = u.Quantity(np.full(len(energy_bins) - 1, value.value), value.unit)
    if table["cut"].unit == u.dimensionless_unscaled:
        table["cut"] = table["cut"].value
    return table


def global_cuts(
    gammaness_cut,
    theta_cut,
    energy_bins,
    fov_offset_max,
    quality_criteria,
    clf_prefix,
):
    """
    Cuts that do not depend on energy, as a ctapipe ``OptimizationResult``.

    ``ctapipe-compute-irf`` and ``sst1m-dl3`` then treat them like the energy-dependent
    cuts of ``ctapipe-optimize-event-selection``.

    Parameters
    ----------
    gammaness_cut : float
        Events with gammaness >= cut pass.
    theta_cut : astropy.units.Quantity
        Angular cut (the ON radius of point-like IRFs).
    energy_bins : astropy.units.Quantity
        Reconstructed-energy bin edges the cut tables cover (their valid range).
    fov_offset_max : astropy.units.Quantity
        Largest field-of-view offset the cuts are valid for.
    quality_criteria : list of (str, str)
        The event selection they go with.
    clf_prefix : str
        Prefix of the gammaness column (checked by ``ctapipe-compute-irf``).

    Returns
    -------
    ctapipe.irf.OptimizationResult
    """
    return OptimizationResult(
        valid_energy_min=energy_bins[0],
        valid_energy_max=energy_bins[-1],
        valid_offset_min=0 * u.deg,
        valid_offset_max=fov_offset_max,
        gh_cuts=_constant_cut_table(
            energy_bins, u.Quantity(gammaness_cut, u.dimensionless_unscaled)
        ),
        clf_prefix=clf_prefix,
        quality_query=list(quality_criteria),
        spatial_selection_table=_constant_cut_table(energy_bins, theta_cut.to(u.deg)),
    )
