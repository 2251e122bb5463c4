"""
The IRF of an observation: the nearest node, or an interpolation in cos(zenith).

Candidates are the IRF files of one set-up, cuts and kind, made with the models of the
DL2 files (same models id). *nearest*: the node at the smallest angular distance from
the observation's mean pointing; among nodes at that pointing, the closest NSB rate
(`ctapipe_sst1m.io.model_sets.nearest_node`, the rule of the model sets).
*interpolate*: where nodes at the observation's NSB rate lie on both sides of its
cos(zenith), the IRFs of the two nearest nodes on either side are interpolated linearly
in cos(zenith) with pyirf's estimators (effective area in log, energy dispersion and
PSF as probability densities by their quantiles, RAD_MAX, background rate linearly);
otherwise the nearest node.
"""

from dataclasses import dataclass

import astropy.units as u
import numpy as np
from pyirf.interpolation import (
    EffectiveAreaEstimator,
    EnergyDispersionEstimator,
    PSFTableEstimator,
    RadMaxEstimator,
)

from ..io.irf_files import IrfFile
from ..io.model_sets import nearest_node

__all__ = ["IrfChoice", "IrfChoiceError", "choose_irf"]


class IrfChoiceError(ValueError):
    """No IRF fits an observation (the message says why)."""


@dataclass
class IrfChoice:
    """The IRF HDUs of an observation and how they were chosen."""

    hdus: list
    method: str
    nodes: list
    reference: IrfFile
    distance_deg: float


def choose_irf(
    candidates, zenith_deg, azimuth_deg, nsb_rate_mhz, method, max_distance_deg
):
    """
    Choose (or interpolate) the IRF of an observation.

    Parameters
    ----------
    candidates : list of IrfFile
        IRFs of the observation's set-up, cuts, kind and models.
    zenith_deg, azimuth_deg : float
        Mean pointing of the observation.
    nsb_rate_mhz : float or None
        NSB rate of the observation (None or NaN: not used).
    method : {"nearest", "interpolate"}
    max_distance_deg : float
        Refuse an observation farther than this from every node.

    Returns
    -------
    IrfChoice

    Raises
    ------
    IrfChoiceError
        No candidate, or the nearest node is too far.
    """
    if not candidates:
        raise IrfChoiceError("no IRF file of this set-up, cuts, kind and models")
    nearest, distance = nearest_node(candidates, zenith_deg, azimuth_deg, nsb_rate_mhz)
    if distance > max_distance_deg:
        raise IrfChoiceError(
            f"the pointing (zenith {zenith_deg:.1f}, azimuth {azimuth_deg:.1f} deg) is"
            f" {distance:.1f} deg from the nearest IRF node {nearest.node}"
            f" (limit DL3Tool.max_node_distance {max_distance_deg} deg)"
        )
    if method == "interpolate":
        pair = _bracketing_nodes(candidates, nearest, zenith_deg)
        if pair is not None:
            return IrfChoice(
                hdus=_interpolate(pair, zenith_deg),
                method="interpolated",
                nodes=[c.node for c in pair],
                reference=nearest,
                distance_deg=distance,
            )
    return IrfChoice(
        hdus=nearest.irf_hdus(),
        method="nearest",
        nodes=[nearest.node],
        reference=nearest,
        distance_deg=distance,
    )


def _bracketing_nodes(candidates, nearest, zenith_deg):
    """The nodes (same NSB and azimuth as the nearest) just below and above in cos(zenith)."""
    same = [
        c
        for c in candidates
        if c.nsb_rate_mhz == nearest.nsb_rate_mhz
        and abs(c.azimuth_deg - nearest.azimuth_deg) < 0.01
    ]
    cos_target = np.cos(np.deg2rad(zenith_deg))
    below = [c for c in same if np.cos(np.deg2rad(c.zenith_deg)) <= cos_target]
    above = [c for c in same if np.cos(np.deg2rad(c.zenith_deg)) > cos_target]
    if not below or not above:
        return None
    low = max(below, key=lambda c: np.cos(np.deg2rad(c.zenith_deg)))
    high = min(above, key=lambda c: np.cos(np.deg2rad(c.zenith_deg)))
    if np.isclose(np.cos(np.deg2rad(low.zenith_deg)), cos_target):
        return None
    return [low, high]


def _interpolate(pair, zenith_deg):
    """IRF HDUs interpolated linearly in cos(zenith) between two nodes."""
    grid = np.array([[np.cos(np.deg2rad(c.zenith_deg))] for c in pair])
    target = np.array([np.cos(np.deg2rad(zenith_deg))])
    hdu_lists = [c.irf_hdus() for c in pair]
    names = [hdu.name for hdu in hdu_lists[0]]
    if [hdu.name for hdu in hdu_lists[1]] != names:
        raise IrfChoiceError(
            f"the IRFs of {pair[0].node} and {pair[1].node} have different HDUs"
        )
    result = []
    for index, name in enumerate(names):
        hdus = [hdu_list[index] for hdu_list in hdu_lists]
        _check_same_binning(name, hdus, pair)
        column, interpolate = _INTERPOLATION[name]
        values = np.stack([hdu.data[column][0] for hdu in hdus])
        new = hdus[0].copy()
        new.data[column][0] = interpolate(grid, values, target, hdus[0])
        new.header["IRF_INTP"] = ("cos(zenith)", "interpolated in")
        result.append(new)
    return result


def _check_same_binning(name, hdus, pair):
    for column in hdus[0].columns.names:
        if column.endswith(("_LO", "_HI")) and not np.array_equal(
            hdus[0].data[column], hdus[1].data[column]
        ):
            raise IrfChoiceError(
                f"{name}: the IRFs of {pair[0].node} and {pair[1].node} have"
                f" different {column} binning, they cannot be interpolated"
            )


def _edges(hdu, prefix):
    data = hdu.data[0]
    unit = u.Unit(hdu.columns[f"{prefix}_LO"].unit or "")
    return np.append(data[f"{prefix}_LO"], data[f"{prefix}_HI"][-1]) * unit


# GADF arrays are (…, offset, energy) in FITS order; pyirf's are (energy, offset, …)
def _effective_area(grid, values, target, hdu):
    estimator = EffectiveAreaEstimator(
        grid_points=grid,
        effective_area=np.swapaxes(values, 1, 2) * u.m**2,
        min_effective_area=1e-6 * u.m**2,
    )
    return np.swapaxes(estimator(target)[0].to_value(u.m**2), 0, 1)


def _energy_dispersion(grid, values, target, hdu):
    estimator = EnergyDispersionEstimator(
        grid_points=grid,
        migra_bins=_edges(hdu, "MIGRA"),
        energy_dispersion=np.transpose(values, (0, 3, 2, 1)),
        axis=-2,
    )
    return np.transpose(estimator(target)[0], (2, 1, 0))


def _psf(grid, values, target, hdu):
    estimator = PSFTableEstimator(
        grid_points=grid,
        source_offset_bins=_edges(hdu, "RAD").to(u.deg),
        psf=np.transpose(values, (0, 3, 2, 1)) * u.Unit(hdu.columns["RPSF"].unit),
        axis=-1,
    )
    unit = u.Unit(hdu.columns["RPSF"].unit)
    return np.transpose(estimator(target)[0].to_value(unit), (2, 1, 0))


def _rad_max(grid, values, target, hdu):
    estimator = RadMaxEstimator(grid_points=grid, rad_max=np.swapaxes(values, 1, 2))
    return np.swapaxes(estimator(target)[0], 0, 1)


def _linear(grid, values, target, hdu):
    weight = (target[0] - grid[0, 0]) / (grid[1, 0] - grid[0, 0])
    return (1 - weight) * values[0] + weight * values[1]


#: per IRF HDU: the data column and how it is interpolated
_INTERPOLATION = {
    "EFFECTIVE AREA": ("EFFAREA", _effective_area),
    "ENERGY DISPERSION": ("MATRIX", _energy_dispersion),
    "PSF": ("RPSF", _psf),
    "RAD_MAX": ("RAD_MAX", _rad_max),
    "BACKGROUND": ("BKG", _linear),
}
