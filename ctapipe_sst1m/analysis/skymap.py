"""
Excess and significance maps around the target with the ring background.

Needs full-enclosure IRFs with a background model (BKG HDU): one
`gammapy.datasets.MapDataset` per observation (`MapDatasetMaker` counts, exposure and
background, `SafeMaskMaker` ``offset-max``, which also leaves out the bins where the
background is zero), stacked and summed over energy; the `RingBackgroundMaker` estimates
the OFF counts in a ring around every pixel, away from an exclusion circle around the
target, weighted by an acceptance (below), and
`ExcessMapEstimator` correlates the counts within a radius and gives the excess and the
Li & Ma significance (``sqrt_ts``) of every pixel.

The ring needs only the shape of the acceptance across the field, not its scale. A
background IRF made from few simulated protons predicts no count in some offset and
energy bins (`SafeMaskMaker` leaves their counts out: those pixels have no significance)
or anywhere in the map. Unless the background IRF predicts counts in every pixel of the
field, the acceptance falls back on the gamma exposure summed over true energy
(``acceptance="auto"``), a proxy that, like the hadron acceptance, falls off with the
offset from the pointing, slowly over a ring of a degree.
"""

from dataclasses import dataclass

import numpy as np
from gammapy.datasets import MapDataset
from gammapy.estimators import ExcessMapEstimator
from gammapy.makers import MapDatasetMaker, RingBackgroundMaker, SafeMaskMaker
from gammapy.maps import MapAxis, WcsGeom
from regions import CircleSkyRegion

__all__ = [
    "SkyMaps",
    "background_covers_field",
    "background_from_exposure",
    "make_sky_maps",
    "sky_map_summary",
]

#: maps of ExcessMapEstimator kept
ESTIMATOR_MAPS = ("sqrt_ts", "npred_excess", "counts", "npred_background")
#: energy bins per decade of the map datasets (summed over energy afterwards)
ENERGY_BINS_PER_DECADE = 2
#: where the ring's acceptance comes from: the background IRF, the exposure, or the
#: background IRF if it predicts counts in every pixel of the field
ACCEPTANCES = ("background-irf", "exposure", "auto")


@dataclass
class SkyMaps:
    """The sky maps of `make_sky_maps`: 2D `gammapy.maps.WcsNDMap` images."""

    #: Li & Ma significance of the correlated counts against the ring background
    significance: object
    #: correlated excess counts
    excess: object
    #: correlated counts
    counts: object
    #: correlated ring-background counts
    background: object
    #: True outside the exclusion circle around the target
    exclusion: object
    #: the acceptance of the ring: "background-irf" or "exposure"
    acceptance: str

    def items(self):
        """(name, map) pairs: the HDU names of the FITS file."""
        return [
            ("SIGNIFICANCE", self.significance),
            ("EXCESS", self.excess),
            ("COUNTS", self.counts),
            ("BACKGROUND", self.background),
            ("EXCLUSION", self.exclusion),
        ]


def background_covers_field(dataset, in_field):
    """
    Whether the background of a map dataset predicts counts in every pixel of the field.

    Parameters
    ----------
    dataset : gammapy.datasets.MapDataset
        With a background map.
    in_field : numpy.ndarray
        Boolean, the shape of the background map: the bins within the field (e.g.
        `SafeMaskMaker.make_mask_offset_max`).

    Returns
    -------
    bool
        True if every pixel within the field has a positive background in at least
        one energy bin.
    """
    predicted = np.sum(dataset.background.data, axis=0) > 0
    return bool(np.all(predicted[np.any(in_field, axis=0)]))


def background_from_exposure(dataset):
    """
    Replace the background of a map dataset by its exposure summed over true energy.

    The same image in every reconstructed-energy bin, divided among them: an
    acceptance shape for the ring (its scale cancels), not a background prediction.

    Parameters
    ----------
    dataset : gammapy.datasets.MapDataset
        With counts, exposure and background maps of the same sky pixels.
    """
    exposure = dataset.exposure.sum_over_axes(keepdims=False).data
    n_energy = dataset.background.data.shape[0]
    data = np.broadcast_to(exposure / n_energy, dataset.background.data.shape)
    dataset.background = dataset.background.copy(data=data.copy())


def make_sky_maps(
    observations,
    position,
    energy_axis_true,
    energy_min,
    energy_max,
    width,
    bin_size,
    offset_max,
    ring_inner_radius,
    ring_width,
    exclusion_radius,
    correlation_radius,
    acceptance="auto",
):
    """
    Excess and significance maps of the stacked observations around the target.

    Parameters
    ----------
    observations : gammapy.data.Observations
        With background IRFs.
    position : astropy.coordinates.SkyCoord
        The target, at the map centre.
    energy_axis_true : gammapy.maps.MapAxis
        True energy axis of the exposure.
    energy_min, energy_max : astropy.units.Quantity
        Range of reconstructed energy summed in the maps.
    width, bin_size : astropy.units.Quantity
        Side and pixel size of the square maps.
    offset_max : astropy.units.Quantity
        Pixels farther from the pointing of an observation are masked in it.
    ring_inner_radius, ring_width : astropy.units.Quantity
        The ring of the background estimate.
    exclusion_radius : astropy.units.Quantity
        Radius of the circle around the target left out of the rings.
    correlation_radius : astropy.units.Quantity
        Radius within which the counts of every pixel are summed.
    acceptance : {"background-irf", "exposure", "auto"}
        Shape of the acceptance across the field: the background IRF, the exposure
        summed over true energy, or the background IRF if it predicts counts in every
        pixel within ``offset_max`` of the pointing of every observation, else the
        exposure.

    Returns
    -------
    SkyMaps
    """
    energy_axis = MapAxis.from_energy_bounds(
        energy_min,
        energy_max,
        nbin=ENERGY_BINS_PER_DECADE,
        per_decade=True,
        name="energy",
    )
    geom = WcsGeom.create(
        skydir=position,
        width=(width, width),
        binsz=bin_size,
        frame="icrs",
        axes=[energy_axis],
    )
    if acceptance not in ACCEPTANCES:
        raise ValueError(f"acceptance must be one of {ACCEPTANCES}, not {acceptance!r}")
    maker = MapDatasetMaker(selection=["counts", "exposure", "background"])
    datasets = [
        maker.run(
            MapDataset.create(
                geom, energy_axis_true=energy_axis_true, name=f"obs_{obs.obs_id}"
            ),
            obs,
        )
        for obs in observations
    ]
    safe_mask_maker = SafeMaskMaker(methods=["offset-max"], offset_max=offset_max)
    if acceptance == "auto":
        covered = all(
            background_covers_field(
                dataset, safe_mask_maker.make_mask_offset_max(dataset, obs)
            )
            for dataset, obs in zip(datasets, observations)
        )
        acceptance = "background-irf" if covered else "exposure"
    # the safe mask leaves out the bins where the background is zero: with the
    # exposure as acceptance, none within the field
    stacked = MapDataset.create(geom, energy_axis_true=energy_axis_true, name="stacked")
    for dataset, obs in zip(datasets, observations):
        if acceptance == "exposure":
            background_from_exposure(dataset)
        stacked.stack(safe_mask_maker.run(dataset, obs))
    image_geom = geom.to_image()
    exclusion = ~image_geom.region_mask(
        [CircleSkyRegion(position, radius=exclusion_radius)]
    )
    ring_maker = RingBackgroundMaker(
        r_in=ring_inner_radius, width=ring_width, exclusion_mask=exclusion
    )
    on_off = ring_maker.run(stacked.to_image())
    estimator = ExcessMapEstimator(
        correlation_radius=correlation_radius, selection_optional=[]
    )
    maps = estimator.run(on_off)
    images = {
        name: maps[name].reduce_over_axes(keepdims=False) for name in ESTIMATOR_MAPS
    }
    # where the acceptance is zero (a background IRF from few simulated protons has
    # empty offset/energy bins) or the ring holds no count, there is no background
    # estimate: no significance there, rather than an infinite one
    no_background = ~(images["npred_background"].data > 0)
    for name in ("sqrt_ts", "npred_excess"):
        images[name].data[no_background] = np.nan
    return SkyMaps(
        significance=images["sqrt_ts"],
        excess=images["npred_excess"],
        counts=images["counts"],
        background=images["npred_background"],
        exclusion=exclusion,
        acceptance=acceptance,
    )


def sky_map_summary(sky_maps, position):
    """
    The significance at the target, the largest one and its distribution elsewhere.

    Parameters
    ----------
    sky_maps : SkyMaps
    position : astropy.coordinates.SkyCoord
        The target.

    Returns
    -------
    dict
        ``significance_at_target``, ``excess_at_target``, ``max_significance`` with
        its ``max_significance_ra_deg``/``dec_deg``, and the mean and standard
        deviation of the finite significances outside the exclusion circle
        (``off_significance_mean``, ``off_significance_std``; 0 and 1 without sources),
        ``pixels_without_background``: pixels without a background estimate, where the
        acceptance is zero or the ring holds no count (no significance there; NaN
        maximum and statistics if that is every pixel), and the ``acceptance`` used.
    """
    significance = sky_maps.significance
    data = significance.data
    finite = np.isfinite(data)
    off = data[finite & sky_maps.exclusion.data]
    summary = {
        "significance_at_target": float(
            significance.get_by_coord({"skycoord": position})[0]
        ),
        "excess_at_target": float(
            sky_maps.excess.get_by_coord({"skycoord": position})[0]
        ),
        "max_significance": np.nan,
        "max_significance_ra_deg": np.nan,
        "max_significance_dec_deg": np.nan,
        "off_significance_mean": float(np.mean(off)) if off.size else np.nan,
        "off_significance_std": float(np.std(off)) if off.size else np.nan,
        "pixels_without_background": int(np.count_nonzero(~finite)),
        "acceptance": sky_maps.acceptance,
    }
    if np.any(finite):
        peak = np.unravel_index(np.argmax(np.where(finite, data, -np.inf)), data.shape)
        peak_position = significance.geom.get_coord().skycoord[peak].icrs
        summary["max_significance"] = float(data[peak])
        summary["max_significance_ra_deg"] = float(peak_position.ra.deg)
        summary["max_significance_dec_deg"] = float(peak_position.dec.deg)
    return summary
