"""
The tolerance of WhiteRabbitClosest, bounded by physics.

White Rabbit time stamps are synchronous to a few ns, so the ``t2 − t1`` of one shower
is the difference of the arrival times of its light at the two telescopes: a plane
front crossing the baseline ``b`` arrives at most ``b/c`` apart (the telescopes of
`ctapipe_sst1m.instrument.TELESCOPE_GROUND_POSITIONS` are 155.2 m apart: 518 ns),
plus the time resolution of each camera's trigger within the light pulse
(`TRIGGER_TIME_RESOLUTION_NS`). Pairs further apart are chance coincidences of
unrelated triggers; `wide_pairs` counts them against the chance expectation so that
an unexpected offset of the cameras' time stamps is reported rather than losing
true pairs silently.
"""

import astropy.units as u
import numpy as np
from astropy.constants import c

from ..instrument import TELESCOPE_GROUND_POSITIONS
from .offset_scan import chance_coincidences
from .pairs import candidate_pairs

__all__ = [
    "BASELINE_LIGHT_TIME_NS",
    "TRIGGER_TIME_RESOLUTION_NS",
    "physical_tolerance_ns",
    "wide_pairs",
]

#: light travel time over the distance of the two telescopes (ns): the largest
#: difference of the arrival times of a shower front at the two telescopes
BASELINE_LIGHT_TIME_NS = float(
    (
        np.linalg.norm(TELESCOPE_GROUND_POSITIONS[2] - TELESCOPE_GROUND_POSITIONS[1])
        / c
    ).to_value(u.ns)
)
#: margin for the trigger time of each camera within the shower's light pulse (the
#: 4 ns trigger clock, the pulse rise, tens of ns of photon arrival-time spread) and
#: for the White Rabbit time stamping (ns)
TRIGGER_TIME_RESOLUTION_NS = 100


def physical_tolerance_ns():
    """
    Largest ``|t2 − t1|`` of the White Rabbit times of one shower: 618 ns.

    Returns
    -------
    int
        `BASELINE_LIGHT_TIME_NS` (518 ns) rounded up plus `TRIGGER_TIME_RESOLUTION_NS`.
    """
    return int(np.ceil(BASELINE_LIGHT_TIME_NS)) + TRIGGER_TIME_RESOLUTION_NS


def wide_pairs(sorted_1, sorted_2, tolerance_ns, widest_ns):
    """
    Candidate pairs with ``tolerance < |t2 − t1| <= widest``, and the chance expectation.

    Parameters
    ----------
    sorted_1, sorted_2 : numpy.ndarray
        Sorted int64 times of each telescope, not empty.
    tolerance_ns, widest_ns : int
        The pair tolerance and a wider window (``widest_ns > tolerance_ns``).

    Returns
    -------
    n_wide : int
        Candidate pairs between the two.
    expected : float
        The number two independent Poisson streams would give.
    """
    index_1, index_2 = candidate_pairs(sorted_1, sorted_2, -widest_ns, widest_ns)
    n_wide = int(
        np.count_nonzero(np.abs(sorted_2[index_2] - sorted_1[index_1]) > tolerance_ns)
    )
    width = 2 * (widest_ns - tolerance_ns)
    return n_wide, chance_coincidences(sorted_1, sorted_2, 0, width)
