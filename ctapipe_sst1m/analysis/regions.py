"""
Where the ON and the OFF regions of a wobble observation stop overlapping.

The OFF regions of `gammapy.makers.WobbleRegionsFinder` are the ON region rotated about
the pointing position by multiples of 360°/(N + 1), N the number of OFF regions. Two
neighbours are 2 d sin(180°/(N + 1)) apart, d the wobble offset of the target, so circles
of radius r do not overlap as long as r < d sin(180°/(N + 1)) (r < d for one OFF region).
Beyond that gammapy does not fail: the θ² table falls back to one OFF region and the
reflected-regions background maker finds no OFF region and masks the whole dataset (zero
counts). This module gives the limit and the error the analysis raises instead.
"""

import astropy.units as u
import numpy as np

from .observations import AnalysisInputError

__all__ = [
    "OverlappingRegionsError",
    "max_region_radius",
    "overlap_message",
    "check_radius",
]


class OverlappingRegionsError(AnalysisInputError):
    """The ON and OFF regions of an observation overlap."""


def max_region_radius(offset, n_off_regions):
    """
    Largest radius of the ON and OFF regions that do not overlap.

    Parameters
    ----------
    offset : astropy.units.Quantity
        Wobble offset(s) of the target (angle).
    n_off_regions : int
        Number of OFF regions (at least 1).

    Returns
    -------
    astropy.units.Quantity
        In deg, the shape of ``offset``.
    """
    return (offset * np.sin(np.pi / (n_off_regions + 1))).to(u.deg)


def overlap_message(obs_id, offset, radius, n_off_regions, what):
    """
    The message of an `OverlappingRegionsError`.

    Parameters
    ----------
    obs_id : int
        The observation.
    offset : astropy.units.Quantity
        Its wobble offset.
    radius : astropy.units.Quantity
        The radius of the ON region.
    n_off_regions : int or None
        Number of OFF regions asked for; None for gammapy's `ReflectedRegionsFinder`
        (as many as fit).
    what : str
        What the ON region is for and where its radius comes from, e.g. ``"θ² cut"``.

    Returns
    -------
    str
    """
    offset_deg, radius_deg = offset.to_value(u.deg), radius.to_value(u.deg)
    if n_off_regions is None:
        return (
            f"observation {obs_id}: no OFF region fits outside the ON region of radius"
            f" {radius_deg:.3f} deg ({what}) at the wobble offset {offset_deg:.3f} deg;"
            " the radius must stay below the offset: reduce it"
        )
    limit = max_region_radius(offset, n_off_regions).to_value(u.deg)
    return (
        f"observation {obs_id}: the ON region of radius {radius_deg:.3f} deg ({what}) and"
        f" its {n_off_regions} OFF region(s) overlap at the wobble offset"
        f" {offset_deg:.3f} deg (the radius must stay below offset x sin(180 deg /"
        f" (N + 1)) = {limit:.3f} deg): use fewer OFF regions (--n-off-regions) or a"
        " smaller region"
    )


def check_radius(obs_ids, offsets, radius, n_off_regions, what):
    """
    Refuse an ON radius at which the ON and OFF regions of an observation overlap.

    Parameters
    ----------
    obs_ids : sequence of int
        The observations.
    offsets : astropy.units.Quantity
        Their wobble offsets.
    radius : astropy.units.Quantity
        Radius of the ON region.
    n_off_regions : int
        Number of OFF regions.
    what : str
        What the region is for, for the message.

    Raises
    ------
    OverlappingRegionsError
        For the first observation where they overlap.
    """
    limits = max_region_radius(offsets, n_off_regions)
    for obs_id, offset, limit in zip(obs_ids, offsets, limits):
        if radius >= limit:
            raise OverlappingRegionsError(
                overlap_message(obs_id, offset, radius, n_off_regions, what)
            )
