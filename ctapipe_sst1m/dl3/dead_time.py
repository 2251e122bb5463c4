"""
Live time of DigiCam observations: a non-paralysable dead time per recorded event.

After each trigger a DigiCam camera is blind for a time τ (read-out); triggers arrive as a
Poisson process of rate R, so the intervals between consecutive recorded events are
``Δt = τ + x`` with ``x`` exponential of rate R. Over an elapsed time T with N recorded
events the live time is ``T − N τ`` and ``DEADC = 1 − N τ / T``.

τ is measured on the run itself unless configured: the smallest interval is an estimate
of τ biased high by the mean smallest exponential interval, ``1/(n R)`` for n intervals;
``(mean(Δt) − min(Δt)) / (n − 1)`` estimates that bias without R, and is subtracted
(the unbiased estimator of the offset of a shifted exponential distribution).
"""

import astropy.units as u
import numpy as np
from ctapipe.core import Component
from ctapipe.core.traits import AstroQuantity, Int

__all__ = ["DeadTimeModel", "estimate_dead_time"]


def estimate_dead_time(times_ns):
    """
    Dead time per event from the trigger times of one telescope.

    Parameters
    ----------
    times_ns : array-like of int
        Trigger times (ns) of consecutive recorded events, any order.

    Returns
    -------
    float
        τ in seconds (>= 0), NaN with fewer than three events.
    """
    times = np.sort(np.asarray(times_ns, dtype=np.int64))
    intervals = np.diff(times) / 1e9
    intervals = intervals[intervals > 0]
    n = len(intervals)
    if n < 2:
        return np.nan
    smallest = intervals.min()
    return max(smallest - (intervals.mean() - smallest) / (n - 1), 0.0)


class DeadTimeModel(Component):
    """Live time of an observation from its recorded events (see the module docstring)."""

    dead_time_per_event = AstroQuantity(
        default_value=None,
        allow_none=True,
        physical_type=u.physical.time,
        help=(
            "Dead time per recorded event (e.g. '20 us'); None: estimated per telescope"
            " and run from the intervals between its events."
        ),
    ).tag(config=True)
    min_events = Int(
        default_value=100,
        min=3,
        help="Fewest events of a telescope for the estimate; fewer: no dead time (DEADC 1), with a warning.",
    ).tag(config=True)

    def dead_time(self, times_ns, label):
        """τ (s) of one telescope: configured, or estimated from its trigger times."""
        if self.dead_time_per_event is not None:
            return self.dead_time_per_event.to_value(u.s)
        if len(times_ns) < self.min_events:
            self.log.warning(
                "%s: %d events, fewer than %d: dead time not estimated (DEADC 1)",
                label,
                len(times_ns),
                self.min_events,
            )
            return 0.0
        return estimate_dead_time(times_ns)

    def live_fraction(self, n_events, dead_time_s, elapsed_s):
        """``1 − N τ / T``, at least 0."""
        if elapsed_s <= 0:
            return 1.0
        return max(1.0 - n_events * dead_time_s / elapsed_s, 0.0)
