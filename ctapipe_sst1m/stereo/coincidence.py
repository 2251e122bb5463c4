"""
Stereo coincidences of the two SST-1M telescopes: pairs of events of the same shower.

The CoincidenceMatcher pairs the events of telescope 1 (21) and telescope 2 (22)
from their trigger times in integer nanoseconds, or from their SWAT array event
numbers, with one of the methods of the SST-1M reference pipeline:

* ``SWATEventIDs``: equal array event numbers;
* ``WhiteRabbitClosest``: White Rabbit (TAI) timestamps within a tolerance bounded
  by physics, 618 ns (`ctapipe_sst1m.stereo.white_rabbit`);
* ``SlidingWindow``: independent camera clocks; the clock offset of telescope 2
  comes from a scan of coincidences whose peak must stand out from chance and from
  the second-best peak, a linear clock drift is fitted, and the pairs lie within
  the width of the coincidence peak (`ctapipe_sst1m.stereo.offset_scan`).

Unlike the reference pipeline (which rejects every event with several
candidates, and only sees consecutive reuse of a telescope-2 event), the pairs
are one-to-one and the closest pairs win: candidate pairs are taken greedily by
increasing ``|t2 - t1 - model|``, skipping any pair with an event already used
(`ctapipe_sst1m.stereo.pairs`).

All algorithms work on sorted int64 arrays in ``O(n log n)`` (``searchsorted``
sweeps and sorts), the only loop (the greedy assignment) is compiled with numba.
"""

from dataclasses import dataclass

import numpy as np
from ctapipe.core import Component
from ctapipe.core.traits import Bool, CaselessStrEnum, Float, Int

from .offset_scan import (
    ClockModel,
    OffsetNotFound,
    OffsetPeak,
    find_time_offset,
    fit_clock_model,
    offset_peak,
)
from .pairs import assign_closest, candidate_pairs, count_classes, equal_id_pairs
from .white_rabbit import physical_tolerance_ns, wide_pairs

__all__ = ["CoincidenceMatcher", "MatchResult", "OffsetNotFound"]


@dataclass
class MatchResult:
    """
    Stereo pairs found by `CoincidenceMatcher`.

    Attributes
    ----------
    index_1, index_2 : numpy.ndarray
        int64, the pairs as indices into the input arrays of telescope 1 and 2,
        sorted by the time of telescope 1.
    delta_t_ns : numpy.ndarray
        int64, ``times_2[index_2] - times_1[index_1]`` minus the clock model
        (`model_ns`): ``offset_ns + drift_ns_per_s · (t1 − reference_time_ns)``.
    offset_ns : int
        Clock offset of telescope 2 (``t2 ≈ t1 + offset_ns``) at
        ``reference_time_ns``; found by SlidingWindow, 0 for the other methods.
    counts_1, counts_2 : dict
        Disjoint classes of the events of each telescope, summing to its number of
        events: ``matched`` (in a pair, its only candidate), ``ambiguous`` (in a
        pair, chosen as the closest of several candidates), ``rejected`` (had
        candidates, all taken by closer pairs), ``unmatched`` (no candidate).
    method : str
        The matching method.
    scan_offsets_ns, scan_coincidences : numpy.ndarray or None
        SlidingWindow only: the scanned offsets and the number of coincidences
        (all candidate pairs, not one-to-one) within the window at each offset.
    drift_ns_per_s : float
        SlidingWindow: fitted linear drift of the offset (ns per s); 0 otherwise.
    reference_time_ns : int
        Telescope-1 time of ``offset_ns`` (SlidingWindow: its first event).
    tolerance_ns : int or None
        Largest ``|delta_t_ns|`` of a pair (None for SWATEventIDs).
    offset_peak : ctapipe_sst1m.stereo.offset_scan.OffsetPeak or None
        SlidingWindow: how the peak of the offset scan stands out.
    """

    index_1: np.ndarray
    index_2: np.ndarray
    delta_t_ns: np.ndarray
    offset_ns: int
    counts_1: dict
    counts_2: dict
    method: str
    scan_offsets_ns: np.ndarray | None = None
    scan_coincidences: np.ndarray | None = None
    drift_ns_per_s: float = 0.0
    reference_time_ns: int = 0
    tolerance_ns: int | None = None
    offset_peak: OffsetPeak | None = None

    def model_ns(self, times_1_ns):
        """
        The clock model ``t2 − t1`` at telescope-1 times (int64 ns).

        Parameters
        ----------
        times_1_ns : numpy.ndarray
            int64 telescope-1 times.

        Returns
        -------
        numpy.ndarray
        """
        model = ClockModel(
            self.offset_ns, self.drift_ns_per_s, self.reference_time_ns, 0
        )
        return model.expected_ns(times_1_ns)


def _as_int64(values, name):
    """1-D int64 array of integer values, ValueError otherwise."""
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array, got shape {array.shape}")
    if array.size and array.dtype.kind not in "iu":
        raise ValueError(
            f"{name} must hold integers (int64 nanoseconds or event ids),"
            f" got dtype {array.dtype}"
        )
    return array.astype(np.int64, copy=False)


class CoincidenceMatcher(Component):
    """
    Pair the events of the two SST-1M telescopes seeing the same shower.

    Call it with the trigger times (integer ns) of each telescope, and the SWAT
    array event ids for method SWATEventIDs; it returns a `MatchResult`.

    Candidate pairs are

    * SWATEventIDs: equal positive event ids (ids <= 0 mean "no SWAT id"). Ids
      are expected to be unique within a telescope; an id occurring several times
      makes all same-id events of the other telescope candidates: the one closest
      in time is paired ("ambiguous" if it had several candidates), the others are
      "rejected";
    * WhiteRabbitClosest: ``|t2 - t1| <= white_rabbit_tolerance_ns`` (default
      `physical_tolerance_ns`, 618 ns);
    * SlidingWindow: ``|t2 - t1 - model| <= tolerance``, with the offset of
      `~ctapipe_sst1m.stereo.offset_scan.find_time_offset` over
      ``arange(offset_scan_start_ns, offset_scan_stop_ns, offset_scan_step_ns)``
      (stop excluded), tested by `~ctapipe_sst1m.stereo.offset_scan.offset_peak`
      (`OffsetNotFound` if it fails and ``refuse_ambiguous_offset``), and the model
      and tolerance of `~ctapipe_sst1m.stereo.offset_scan.fit_clock_model`.

    and the pairs are chosen one-to-one, closest first (`assign_closest`).
    """

    method = CaselessStrEnum(
        ["SWATEventIDs", "WhiteRabbitClosest", "SlidingWindow"],
        default_value="WhiteRabbitClosest",
        help=(
            "SWATEventIDs: equal SWAT array event ids; WhiteRabbitClosest: closest"
            " White Rabbit timestamps; SlidingWindow: camera clocks without White"
            " Rabbit, offset found by a scan of coincidences"
        ),
    ).tag(config=True)

    white_rabbit_tolerance_ns = Int(
        default_value=None,
        allow_none=True,
        min=0,
        help=(
            "WhiteRabbitClosest: maximum |t2 - t1| of a pair (ns). None: the light"
            " travel time over the telescopes' baseline (518 ns) plus 100 ns of"
            " trigger-time resolution, 618 ns; 10000 reproduces sst1mpipe"
        ),
    ).tag(config=True)

    max_time_diff_ns = Int(
        default_value=10_000,
        min=0,
        help=(
            "SlidingWindow: smallest tolerance of a pair around the clock model (ns)."
            " WhiteRabbitClosest: the window of sst1mpipe (ns); candidate pairs"
            " between white_rabbit_tolerance_ns and this beyond chance are reported"
        ),
    ).tag(config=True)

    sliding_window_half_width_ns = Int(
        default_value=1_000_000,
        min=0,
        help=(
            "SlidingWindow: half width of the coincidence window of the offset scan"
            " and maximum |t2 - t1 - offset| of a pair (ns)"
        ),
    ).tag(config=True)

    sliding_window_tolerance_sigmas = Float(
        default_value=5.0,
        min=0,
        help=(
            "SlidingWindow: pairs lie within this many robust standard deviations of"
            " the coincidence peak around the clock model (at least"
            " max_time_diff_ns, at most sliding_window_half_width_ns)"
        ),
    ).tag(config=True)

    offset_scan_start_ns = Int(
        default_value=-10_000_000,
        help="SlidingWindow: first scanned clock offset of telescope 2 (ns)",
    ).tag(config=True)

    offset_scan_stop_ns = Int(
        default_value=10_000_000,
        help="SlidingWindow: end of the offset scan, excluded (ns)",
    ).tag(config=True)

    offset_scan_step_ns = Int(
        default_value=20_000,
        min=1,
        help="SlidingWindow: step of the offset scan (ns)",
    ).tag(config=True)

    offset_min_significance = Float(
        default_value=5.0,
        min=0,
        help=(
            "SlidingWindow: the best peak of the offset scan must exceed the chance"
            " level n1*n2*2w/T by this many Gaussian standard deviations (Poisson"
            " probability times the number of independent windows of the scan)"
        ),
    ).tag(config=True)

    offset_min_excess_ratio = Float(
        default_value=2.0,
        min=0,
        help=(
            "SlidingWindow: the excess over chance of the best peak must be at least"
            " this many times that of the highest count outside its neighbourhood"
            " (aliases of periodic trigger times give about 1)"
        ),
    ).tag(config=True)

    offset_peak_exclusion_widths = Float(
        default_value=2.0,
        min=0,
        help=(
            "SlidingWindow: the neighbourhood of the best peak excluded from the"
            " search of the second-best, in window widths (2 * half width) per side"
        ),
    ).tag(config=True)

    refuse_ambiguous_offset = Bool(
        default_value=True,
        help=(
            "SlidingWindow: refuse (OffsetNotFound, with the scan summary) an offset"
            " whose peak is not significant or not unique; False: warn and use it"
        ),
    ).tag(config=True)

    fit_clock_drift = Bool(
        default_value=True,
        help=(
            "SlidingWindow: fit a linear drift of the clock offset over the run"
            " (t2 - t1 = offset + drift * (t1 - t_first)); False: a constant offset"
        ),
    ).tag(config=True)

    def scan_offsets_ns(self):
        """
        The offsets scanned by SlidingWindow.

        Returns
        -------
        numpy.ndarray
            int64 offsets (ns).
        """
        offsets = np.arange(
            self.offset_scan_start_ns,
            self.offset_scan_stop_ns,
            self.offset_scan_step_ns,
            dtype=np.int64,
        )
        if len(offsets) == 0:
            raise ValueError(
                "empty offset scan: offset_scan_start_ns"
                f" ({self.offset_scan_start_ns}) must be < offset_scan_stop_ns"
                f" ({self.offset_scan_stop_ns})"
            )
        return offsets

    def white_rabbit_tolerance(self):
        """
        The WhiteRabbitClosest tolerance: the option, or `physical_tolerance_ns`.

        Returns
        -------
        int
            ns.
        """
        if self.white_rabbit_tolerance_ns is None:
            return physical_tolerance_ns()
        return self.white_rabbit_tolerance_ns

    def __call__(self, times_1_ns, times_2_ns, event_ids_1=None, event_ids_2=None):
        """
        Find the stereo pairs.

        Parameters
        ----------
        times_1_ns, times_2_ns : array-like
            Integer (TAI) nanoseconds of the events of telescope 1 and 2, any order.
        event_ids_1, event_ids_2 : array-like or None
            SWAT array event ids of the same events, needed by SWATEventIDs.

        Returns
        -------
        MatchResult

        Raises
        ------
        OffsetNotFound
            SlidingWindow with ``refuse_ambiguous_offset``: the peak of the offset
            scan is not significant or not unique; the message has the scan summary.
        """
        times_1 = _as_int64(times_1_ns, "times_1_ns")
        times_2 = _as_int64(times_2_ns, "times_2_ns")
        ids = []
        for name, values, times in (
            ("event_ids_1", event_ids_1, times_1),
            ("event_ids_2", event_ids_2, times_2),
        ):
            if values is None:
                ids.append(None)
                continue
            array = _as_int64(values, name)
            if len(array) != len(times):
                raise ValueError(
                    f"{name} has {len(array)} entries but there are {len(times)} times"
                )
            ids.append(array)

        order_1 = np.argsort(times_1, kind="stable")
        order_2 = np.argsort(times_2, kind="stable")
        sorted_1 = times_1[order_1]
        sorted_2 = times_2[order_2]
        model = ClockModel(0, 0.0, 0, None)  # SWATEventIDs: no tolerance
        scan = {}

        if self.method == "SWATEventIDs":
            self._check_swat_ids(ids, times_1, times_2)
            index_1, index_2 = equal_id_pairs(ids[0][order_1], ids[1][order_2])
        elif self.method == "WhiteRabbitClosest":
            model = ClockModel(0, 0.0, 0, self.white_rabbit_tolerance())
            index_1, index_2 = candidate_pairs(
                sorted_1, sorted_2, -model.tolerance_ns, model.tolerance_ns
            )
            self._report_wide_pairs(sorted_1, sorted_2, model.tolerance_ns)
        else:
            model, scan = self._sliding_window_model(sorted_1, sorted_2)
            span = model.expected_ns(sorted_1[[0, -1]] if len(sorted_1) else [0])
            index_1, index_2 = candidate_pairs(
                sorted_1,
                sorted_2,
                span.min() - model.tolerance_ns,
                span.max() + model.tolerance_ns,
            )

        distance = np.abs(
            sorted_2[index_2] - sorted_1[index_1] - model.expected_ns(sorted_1[index_1])
        )
        if self.method == "SlidingWindow":  # candidates along the drifting model
            near = distance <= model.tolerance_ns
            index_1, index_2, distance = index_1[near], index_2[near], distance[near]
        keep = assign_closest(index_1, index_2, distance, len(times_1), len(times_2))
        counts_1 = count_classes(index_1, keep, len(times_1))
        counts_2 = count_classes(index_2, keep, len(times_2))

        pair_1, pair_2 = index_1[keep], index_2[keep]
        by_time_1 = np.argsort(pair_1)
        pair_1, pair_2 = order_1[pair_1[by_time_1]], order_2[pair_2[by_time_1]]
        result = MatchResult(
            index_1=pair_1,
            index_2=pair_2,
            delta_t_ns=times_2[pair_2]
            - times_1[pair_1]
            - model.expected_ns(times_1[pair_1]),
            offset_ns=model.offset_ns,
            counts_1=counts_1,
            counts_2=counts_2,
            method=self.method,
            drift_ns_per_s=model.drift_ns_per_s,
            reference_time_ns=model.reference_time_ns,
            tolerance_ns=model.tolerance_ns,
            **scan,
        )
        self.log.info(
            "%s: %d pairs, offset %d ns, telescope 1 %s, telescope 2 %s",
            self.method,
            len(pair_1),
            model.offset_ns,
            counts_1,
            counts_2,
        )
        return result

    def _sliding_window_model(self, sorted_1, sorted_2):
        """The clock model of SlidingWindow and the scan fields of `MatchResult`."""
        half_width = self.sliding_window_half_width_ns
        offsets = self.scan_offsets_ns()
        offset_ns, coincidences = find_time_offset(
            sorted_1, sorted_2, offsets, half_width
        )
        peak = None
        if len(sorted_1) and len(sorted_2):
            peak = offset_peak(
                sorted_1,
                sorted_2,
                offsets,
                coincidences,
                half_width,
                exclusion_widths=self.offset_peak_exclusion_widths,
                min_significance=self.offset_min_significance,
                min_excess_ratio=self.offset_min_excess_ratio,
            )
            problems = peak.problems()
            if problems:
                message = (
                    f"SlidingWindow: the peak of the clock-offset scan is"
                    f" {' and '.join(problems)}: {peak.summary()}"
                )
                if self.refuse_ambiguous_offset:
                    raise OffsetNotFound(
                        f"{message}. The camera clocks cannot be matched on these"
                        " times (periodic triggers, too few stereo events, or a clock"
                        " offset outside the scan); set"
                        " CoincidenceMatcher.refuse_ambiguous_offset=False to use the"
                        " peak anyway"
                    )
                self.log.warning("%s; used anyway", message)
            else:
                self.log.info("SlidingWindow: %s", peak.summary())
        model = fit_clock_model(
            sorted_1,
            sorted_2,
            offset_ns,
            half_width,
            self.sliding_window_tolerance_sigmas,
            self.max_time_diff_ns,
            fit_drift=self.fit_clock_drift,
        )
        self.log.info(
            "SlidingWindow: offset %d ns, drift %.3g ns/s, pairs within %d ns",
            model.offset_ns,
            model.drift_ns_per_s,
            model.tolerance_ns,
        )
        if peak is not None and model.tolerance_ns >= half_width:
            self.log.warning(
                "SlidingWindow: the Δt peak of the pairs is as wide as the window"
                " (± %d ns): true pairs are not separated from chance ones (a clock"
                " drift beyond the fit, or more chance than true coincidences)",
                half_width,
            )
        scan = {
            "scan_offsets_ns": offsets,
            "scan_coincidences": coincidences,
            "offset_peak": peak,
        }
        return model, scan

    def _report_wide_pairs(self, sorted_1, sorted_2, tolerance):
        """Warn about more candidate pairs than chance beyond the tolerance (WR)."""
        widest = self.max_time_diff_ns
        if widest <= tolerance or not (len(sorted_1) and len(sorted_2)):
            return
        n_wide, expected = wide_pairs(sorted_1, sorted_2, tolerance, widest)
        if n_wide > expected + 5 * np.sqrt(expected) + 3:
            self.log.warning(
                "WhiteRabbitClosest: %d candidate pairs with %d < |t2 - t1| <= %d ns,"
                " %.1f expected by chance: the White Rabbit times of the cameras may"
                " be offset; check the Δt of the pairs and set white_rabbit_tolerance_ns",
                n_wide,
                tolerance,
                widest,
                expected,
            )

    @staticmethod
    def _check_swat_ids(ids, times_1, times_2):
        """ValueError unless both telescopes with events have valid SWAT ids."""
        if ids[0] is None or ids[1] is None:
            raise ValueError("method SWATEventIDs needs event_ids_1 and event_ids_2")
        for number, (event_ids, times) in enumerate(zip(ids, (times_1, times_2)), 1):
            if len(times) and not np.any(event_ids > 0):
                raise ValueError(
                    f"no SWAT event ids for telescope {number} (all event_ids_{number}"
                    " <= 0): use WhiteRabbitClosest or SlidingWindow"
                )
