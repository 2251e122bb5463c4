"""
Position of the excess near the target: the centroid of the ON events minus that of the
OFF events, with the OFF regions of a wobble observation mapped onto the ON region.

The OFF regions are the target rotated about the pointing position by 360°·k/(N + 1),
k = 1 … N (the positions of `gammapy.makers.WobbleRegionsFinder`); an OFF event is mapped
onto the ON region by the opposite rotation, so that its offset from the target is what it
would be for a background event in the ON region. The excess centroid is then the mean
offset of the ON events minus α times that of the mapped OFF events, divided by the
excess, in the tangent plane of the target.
"""

from dataclasses import dataclass

import astropy.units as u
import numpy as np
from astropy.coordinates import SkyCoord, SkyOffsetFrame

__all__ = ["ExcessPosition", "excess_position"]


@dataclass(frozen=True)
class ExcessPosition:
    """Centroid of the excess, its statistical error and the counts it comes from."""

    position: SkyCoord
    #: standard error of the centroid, per axis combined in quadrature (deg)
    error_deg: float
    n_on: int
    n_off: int
    alpha: float

    @property
    def excess(self):
        return self.n_on - self.alpha * self.n_off


def _rotated_about(center, coords, angle):
    """``coords`` rotated by ``angle`` about ``center`` (position angles + angle)."""
    return center.directional_offset_by(
        center.position_angle(coords) + angle, center.separation(coords)
    )


def excess_position(observations, target, radius, n_off_regions):
    """
    The centroid of the excess within ``radius`` of the target.

    Parameters
    ----------
    observations : gammapy.data.Observations
        Wobble observations of the target (events in ICRS).
    target : astropy.coordinates.SkyCoord
    radius : astropy.units.Quantity
        Radius of the ON region (and of each OFF region).
    n_off_regions : int
        OFF regions per observation.

    Returns
    -------
    ExcessPosition
        With a position of NaN if there is no positive excess.
    """
    frame = SkyOffsetFrame(origin=target.icrs)
    on_offsets, off_offsets = [], []
    for observation in observations:
        events = observation.events.radec
        pointing = observation.get_pointing_icrs(observation.tmid)
        on = events[events.separation(target) < radius]
        on_offsets.append(on.transform_to(frame))
        for k in range(1, n_off_regions + 1):
            angle = 360.0 * k / (n_off_regions + 1) * u.deg
            center = _rotated_about(pointing, target, angle)
            off = events[events.separation(center) < radius]
            if len(off):
                off_offsets.append(
                    _rotated_about(pointing, off, -angle).transform_to(frame)
                )
    alpha = 1.0 / n_off_regions

    def lon_lat(parts):
        if not parts:
            return np.empty(0), np.empty(0)
        lon = np.concatenate([p.lon.to_value(u.deg) for p in parts])
        lat = np.concatenate([p.lat.to_value(u.deg) for p in parts])
        return lon, lat

    on_lon, on_lat = lon_lat(on_offsets)
    off_lon, off_lat = lon_lat(off_offsets)
    excess = on_lon.size - alpha * off_lon.size
    if excess <= 0:
        nan = SkyCoord(np.nan * u.deg, np.nan * u.deg, frame=frame).icrs
        return ExcessPosition(nan, np.nan, on_lon.size, off_lon.size, alpha)
    centroid = [
        (on.sum() - alpha * off.sum()) / excess
        for on, off in ((on_lon, off_lon), (on_lat, off_lat))
    ]
    variance = sum(
        (np.sum((on - c) ** 2) + alpha**2 * np.sum((off - c) ** 2)) / excess**2
        for on, off, c in (
            (on_lon, off_lon, centroid[0]),
            (on_lat, off_lat, centroid[1]),
        )
    )
    position = SkyCoord(centroid[0] * u.deg, centroid[1] * u.deg, frame=frame).icrs
    return ExcessPosition(
        position, float(np.sqrt(variance)), on_lon.size, off_lon.size, alpha
    )
