"""
The schedule of a simulated observation: where the array is (Ondrejov), when the target
culminates, the wobble positions and the runs (`ObservationSchedule`).
"""

from dataclasses import dataclass

import astropy.units as u
from astropy.coordinates import TETE, EarthLocation
from astropy.time import Time
from ctapipe.core import Component
from ctapipe.core.traits import Float, Int, List, Unicode

from ..instrument import DEFAULT_TELESCOPE_LOCATIONS

__all__ = [
    "ObservationRun",
    "ObservationSchedule",
    "array_location",
    "upper_culmination",
    "wobble_pointing",
]


def array_location():
    """EarthLocation of telescope 21, where the simulation's Alt/Az are computed."""
    lon, lat, height = DEFAULT_TELESCOPE_LOCATIONS[21]
    return EarthLocation(lon=lon * u.deg, lat=lat * u.deg, height=height * u.m)


def wobble_pointing(target, offset_deg, angle_deg):
    """
    Pointing (ICRS) of a wobble: ``offset_deg`` from the target at position angle
    ``angle_deg`` (east of north: 0 north, 90 east).
    """
    return target.directional_offset_by(angle_deg * u.deg, offset_deg * u.deg)


def upper_culmination(target, location, night):
    """
    Upper culmination of a target in the night starting on the date ``night``
    (``YYYY-MM-DD``, local evening), i.e. the one closest to the following midnight UTC.

    Returns
    -------
    astropy.time.Time
    """
    midnight = Time(f"{night}T00:00:00", scale="utc") + 1 * u.day
    # apparent right ascension (precession and nutation since J2000: 0.37 deg for the
    # Crab in 2024, 88 s of hour angle)
    apparent = target.transform_to(TETE(obstime=midnight, location=location))
    hour_angle = (
        midnight.sidereal_time("apparent", location.lon) - apparent.ra
    ).wrap_at(180 * u.deg)
    sidereal_day = 86164.0905 * u.s
    return midnight - (hour_angle.to_value(u.deg) / 360.0) * sidereal_day


@dataclass(frozen=True)
class ObservationRun:
    """One run of an `ObservationSchedule`."""

    run: int
    start: Time
    duration_s: float
    wobble: str
    wobble_offset_deg: float
    wobble_angle_deg: float


class ObservationSchedule(Component):
    """
    The runs of a simulated observation: consecutive wobble runs around the target's
    upper culmination (or from a given start); run r has the wobble position
    ``wobble_angles_deg[(r - 1) % n]``, labelled W1, W2, ...
    """

    night = Unicode(
        default_value="2024-01-14",
        help="Date (YYYY-MM-DD) of the evening the night starts.",
    ).tag(config=True)
    start_time = Unicode(
        default_value=None,
        allow_none=True,
        help=(
            "Start of the first run (UTC, ISO); default: the runs are centred on the"
            " target's upper culmination in the night."
        ),
    ).tag(config=True)
    n_runs = Int(default_value=4, min=1, help="Number of runs.").tag(config=True)
    first_run = Int(default_value=1, min=0, help="Run number of the first run.").tag(
        config=True
    )
    run_duration_s = Float(
        default_value=1200.0, min=1.0, help="Length of a run (s)."
    ).tag(config=True)
    run_gap_s = Float(
        default_value=60.0,
        min=0.0,
        help="Time between the end of a run and the next (s).",
    ).tag(config=True)
    wobble_offset_deg = Float(
        default_value=0.4,
        min=0.0,
        max=5.0,
        help="Offset of the pointing from the target (deg).",
    ).tag(config=True)
    wobble_angles_deg = List(
        Float(),
        default_value=[0.0, 180.0],
        minlen=1,
        help="Position angles of the pointing around the target (deg, east of north), in turn.",
    ).tag(config=True)

    def runs(self, target, location):
        """The `ObservationRun` list for a target seen from a location."""
        step_s = self.run_duration_s + self.run_gap_s
        if self.start_time is None:
            middle = upper_culmination(target, location, self.night)
            first = middle - (self.n_runs * step_s - self.run_gap_s) / 2 * u.s
        else:
            first = Time(self.start_time, scale="utc")
        runs = []
        for k in range(self.n_runs):
            run = self.first_run + k
            # the wobble cycles with the run number: a run simulated alone gets the
            # wobble it has in the whole observation
            wobble = (run - 1) % len(self.wobble_angles_deg)
            runs.append(
                ObservationRun(
                    run=run,
                    start=first + k * step_s * u.s,
                    duration_s=self.run_duration_s,
                    wobble=f"W{wobble + 1}",
                    wobble_offset_deg=self.wobble_offset_deg,
                    wobble_angle_deg=self.wobble_angles_deg[wobble],
                )
            )
        return runs
