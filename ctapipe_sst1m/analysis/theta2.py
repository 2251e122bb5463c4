"""
θ² distribution and Li & Ma significance around the target, with several OFF regions.

Both use `gammapy.makers.utils.ThetaSquaredTable` (gammapy ≥ 2.1): the ON counts are
histogrammed in θ² around the target, the OFF counts around N positions obtained by
rotating the target about the pointing position (`gammapy.makers.WobbleRegionsFinder`),
α = 1/N. The regions extend to the largest θ² of the axis, so that axis must stay below
the overlap limit of `ctapipe_sst1m.analysis.regions` (`usable_theta2_max` lowers it).
The significance within the θ² cut is `gammapy.stats.WStatCountsStatistic` (Li & Ma 1983,
eq. 17) of the counts of a one-bin table [0, θ_cut²].
"""

import astropy.units as u
import numpy as np
from gammapy.makers.utils import ThetaSquaredTable
from gammapy.maps import MapAxis
from gammapy.stats import WStatCountsStatistic

from .observations import AnalysisInputError
from .regions import OverlappingRegionsError, check_radius, max_region_radius

__all__ = [
    "REGION_MARGIN",
    "theta2_axis",
    "usable_theta2_max",
    "rad_max_theta_cut",
    "theta2_table",
    "theta2_significance",
]

#: gap kept between the regions of the θ² table, clear of the overlap limit and rounding
REGION_MARGIN = 0.01 * u.deg


def theta2_axis(theta2_max, bin_width):
    """
    The θ² axis from 0 to ``theta2_max`` (the last bin ends at or below it).

    Parameters
    ----------
    theta2_max, bin_width : astropy.units.Quantity
        In deg².

    Returns
    -------
    gammapy.maps.MapAxis
        Named ``theta_squared``.
    """
    n_bins = int(np.floor((theta2_max / bin_width).to_value(u.one) + 1e-9))
    edges = np.arange(n_bins + 1) * bin_width.to(u.deg**2)
    return MapAxis.from_edges(edges, name="theta_squared", interp="lin")


def usable_theta2_max(offsets, n_off_regions, theta2_max, bin_width):
    """
    ``theta2_max``, lowered to a multiple of ``bin_width`` at which the regions of
    every observation stay apart.

    Parameters
    ----------
    offsets : astropy.units.Quantity
        Wobble offsets of the observations.
    n_off_regions : int
        Number of OFF regions.
    theta2_max, bin_width : astropy.units.Quantity
        Wanted end of the θ² axis and its bin width, in deg².

    Returns
    -------
    astropy.units.Quantity
        In deg²; ``theta2_max`` when it fits.

    Raises
    ------
    OverlappingRegionsError
        If not even one bin fits.
    """
    radius = max_region_radius(offsets.min(), n_off_regions) - REGION_MARGIN
    limit = np.clip(radius, 0 * u.deg, None) ** 2
    if theta2_max <= limit:
        return theta2_max.to(u.deg**2)
    usable = np.floor((limit / bin_width).to_value(u.one)) * bin_width.to(u.deg**2)
    if usable <= 0:
        raise OverlappingRegionsError(
            f"not even one θ² bin of {bin_width:.3g} fits: the ON and {n_off_regions}"
            f" OFF regions overlap beyond θ = {radius.to_value(u.deg):.3f} deg at the"
            f" smallest wobble offset {offsets.min().to_value(u.deg):.3f} deg: use"
            " narrower θ² bins (theta2_bin_width_deg2) or fewer OFF regions"
        )
    return usable


def rad_max_theta_cut(observations, offsets, energy):
    """
    The point-like θ cut at one energy: the mean over the observations of their RAD_MAX.

    Parameters
    ----------
    observations : gammapy.data.Observations
        With a RAD_MAX each.
    offsets : astropy.units.Quantity
        Their wobble offsets.
    energy : astropy.units.Quantity
        Reconstructed energy at which RAD_MAX is read (nearest bin).

    Returns
    -------
    astropy.units.Quantity
        In deg.

    Raises
    ------
    AnalysisInputError
        If the RAD_MAX of an observation is not positive there (outside its range).
    """
    values = []
    for obs, offset in zip(observations, offsets):
        value = obs.rad_max.evaluate(energy=energy, offset=offset, method="nearest")
        value = u.Quantity(value).to(u.deg).squeeze()
        if not np.isfinite(value) or value <= 0:
            raise AnalysisInputError(
                f"observation {obs.obs_id}: RAD_MAX at {energy:.2f} is {value:.3f}"
                " (outside the range of the IRF?): give --theta-cut-deg"
            )
        values.append(value)
    return u.Quantity(values).mean()


def theta2_table(observations, position, axis, n_off_regions):
    """
    The θ² distribution of the ON and OFF counts (`ThetaSquaredTable`).

    Parameters
    ----------
    observations : gammapy.data.Observations
    position : astropy.coordinates.SkyCoord
        The target.
    axis : gammapy.maps.MapAxis
        θ² axis, inside the overlap limit (`usable_theta2_max`): beyond it gammapy
        falls back to one OFF region, or refuses an ON region wider than the offset.
    n_off_regions : int
        Number of OFF regions.

    Returns
    -------
    astropy.table.Table
        Columns ``theta2_min``, ``theta2_max``, ``counts``, ``counts_off``,
        ``acceptance``, ``acceptance_off``, ``alpha``, ``excess``, ``sqrt_ts``,
        ``excess_errn``, ``excess_errp``.
    """
    maker = ThetaSquaredTable(
        observations=observations,
        theta_squared_axis=axis,
        position=position,
        off_regions_number=n_off_regions,
    )
    return maker.run()


def theta2_significance(
    observations, position, offsets, theta_cut, n_off_regions, cut_source="given"
):
    """
    ON and OFF counts within θ < ``theta_cut``, the excess and its Li & Ma significance.

    Parameters
    ----------
    observations : gammapy.data.Observations
    position : astropy.coordinates.SkyCoord
        The target.
    offsets : astropy.units.Quantity
        Wobble offsets of the observations.
    theta_cut : astropy.units.Quantity
        Radius of the ON region.
    n_off_regions : int
        Number of OFF regions.
    cut_source : str
        Where the cut comes from, for the error message.

    Returns
    -------
    dict
        ``theta_cut_deg``, ``n_on``, ``n_off``, ``alpha``, ``excess``, ``excess_error``,
        ``significance`` (signed: negative for a deficit).

    Raises
    ------
    OverlappingRegionsError
        If the ON and OFF regions of an observation overlap at that radius.
    """
    check_radius(
        [obs.obs_id for obs in observations],
        offsets,
        theta_cut,
        n_off_regions,
        f"θ cut, {cut_source}",
    )
    axis = MapAxis.from_edges(
        u.Quantity([0 * u.deg**2, theta_cut**2]), name="theta_squared", interp="lin"
    )
    row = theta2_table(observations, position, axis, n_off_regions)[0]
    stat = WStatCountsStatistic(
        n_on=row["counts"], n_off=row["counts_off"], alpha=row["alpha"]
    )
    return {
        "theta_cut_deg": float(theta_cut.to_value(u.deg)),
        "n_on": int(row["counts"]),
        "n_off": int(row["counts_off"]),
        "alpha": float(row["alpha"]),
        "excess": float(stat.n_sig),
        "excess_error": float(stat.error),
        "significance": float(stat.sqrt_ts),
    }
