"""
Stereo coincidences of the two SST-1M telescopes: pairs of events of the same shower.

The CoincidenceMatcher pairs the events of telescope 1 (21) and telescope 2 (22)
from their trigger times in integer nanoseconds, or from their SWAT array event
numbers, with one of the methods of the SST-1M reference pipeline:

* ``SWATEventIDs``: equal array event numbers;
* ``WhiteRabbitClosest``: White Rabbit (TAI) timestamps closer than
  ``max_time_diff_ns``;
* ``SlidingWindow``: independent camera clocks; the clock offset of telescope 2
  is found first as the offset with the most coincidences within
  ``± sliding_window_half_width_ns``, then events are paired around
  ``t1 + offset`` within a tolerance adapted to the width of the coincidence
  peak (``sliding_window_tolerance_sigmas`` robust standard deviations, at
  least ``max_time_diff_ns``, at most the window), which keeps chance pairs of
  single-telescope triggers out.

Unlike the reference pipeline (which rejects every event with several
candidates, and only sees consecutive reuse of a telescope-2 event), the pairs
are one-to-one and the closest pairs win: candidate pairs are taken greedily by
increasing ``|t2 - t1 - offset|``, skipping any pair with an event already used.

All algorithms work on sorted int64 arrays in ``O(n log n)`` (``searchsorted``
sweeps and sorts), the only loop (the greedy assignment) is compiled with numba.
"""

from dataclasses import dataclass

import numpy as np
from ctapipe.core import Component
from ctapipe.core.traits import CaselessStrEnum, Float, Int
from numba import njit

__all__ = [
    "CoincidenceMatcher",
    "MatchResult",
    "assign_closest",
    "candidate_pairs",
    "coincidences_per_offset",
    "equal_id_pairs",
    "find_time_offset",
]


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
        int64, ``times_2[index_2] - times_1[index_1] - offset_ns``.
    offset_ns : int
        Clock offset of telescope 2 (``t2 ≈ t1 + offset_ns``); found by
        SlidingWindow, 0 for the other methods.
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


def candidate_pairs(keys_1, keys_2, low, high):
    """
    All pairs ``(i, j)`` with ``low <= keys_2[j] - keys_1[i] <= high``.

    Parameters
    ----------
    keys_1, keys_2 : numpy.ndarray
        Sorted int64 arrays (times in ns, or event ids).
    low, high : int
        Inclusive bounds of the difference.

    Returns
    -------
    index_1, index_2 : numpy.ndarray
        int64 positions in ``keys_1`` and ``keys_2``, ordered by ``index_1``
        then ``index_2``.
    """
    first = np.searchsorted(keys_2, keys_1 + low, side="left")
    n_per_key = np.searchsorted(keys_2, keys_1 + high, side="right") - first
    index_1 = np.repeat(np.arange(len(keys_1), dtype=np.int64), n_per_key)
    # position of the pair in the output minus its rank within its key_1 block
    block_start = np.cumsum(n_per_key) - n_per_key
    index_2 = np.arange(len(index_1), dtype=np.int64)
    index_2 += (first - block_start)[index_1]
    return index_1, index_2


def equal_id_pairs(ids_1, ids_2):
    """
    All pairs of events with the same positive (valid) SWAT event id.

    Parameters
    ----------
    ids_1, ids_2 : numpy.ndarray
        int64 event ids, any order; ids <= 0 mean "no SWAT id" and never pair.

    Returns
    -------
    index_1, index_2 : numpy.ndarray
        int64 positions in ``ids_1`` and ``ids_2``.
    """
    valid_1 = np.flatnonzero(ids_1 > 0)
    valid_2 = np.flatnonzero(ids_2 > 0)
    by_id_1 = valid_1[np.argsort(ids_1[valid_1], kind="stable")]
    by_id_2 = valid_2[np.argsort(ids_2[valid_2], kind="stable")]
    index_1, index_2 = candidate_pairs(ids_1[by_id_1], ids_2[by_id_2], 0, 0)
    return by_id_1[index_1], by_id_2[index_2]


@njit(cache=True)
def _take_greedily(index_1, index_2, order, used_1, used_2, keep):
    """Keep the pairs in ``order`` whose two events are still free."""
    for k in order:
        if not used_1[index_1[k]] and not used_2[index_2[k]]:
            used_1[index_1[k]] = True
            used_2[index_2[k]] = True
            keep[k] = True


def assign_closest(index_1, index_2, distance, n_1, n_2):
    """
    Greedy one-to-one assignment of candidate pairs, closest pairs first.

    Pairs are taken by increasing ``distance`` (ties by ``index_1``, then
    ``index_2``); a pair is skipped if one of its events is already used.

    Parameters
    ----------
    index_1, index_2 : numpy.ndarray
        int64 event indices of the candidate pairs.
    distance : numpy.ndarray
        Non-negative distance of each candidate pair (e.g. ``|Δt|``).
    n_1, n_2 : int
        Number of events of each telescope.

    Returns
    -------
    numpy.ndarray
        bool, True for the candidate pairs kept.
    """
    order = np.lexsort((index_2, index_1, distance))
    keep = np.zeros(len(order), dtype=bool)
    used_1 = np.zeros(n_1, dtype=bool)
    used_2 = np.zeros(n_2, dtype=bool)
    _take_greedily(index_1, index_2, order, used_1, used_2, keep)
    return keep


def coincidences_per_offset(differences_ns, offsets_ns, half_width_ns):
    """
    Number of differences within ``± half_width_ns`` of each offset.

    The differences are histogrammed once on the window edges; the count of each
    window is a difference of cumulative sums.

    Parameters
    ----------
    differences_ns : numpy.ndarray
        int64 pairwise differences ``t2 - t1``.
    offsets_ns : numpy.ndarray
        int64 window centres.
    half_width_ns : int
        Half width of the (inclusive) window.

    Returns
    -------
    numpy.ndarray
        int64 counts, one per offset.
    """
    upper = offsets_ns + half_width_ns  # window: lower < d <= upper
    lower = offsets_ns - half_width_ns - 1
    edges = np.unique(np.concatenate([lower, upper]))
    # n_below[k]: number of differences <= edges[k]
    bin_index = np.searchsorted(edges, differences_ns, side="left")
    n_below = np.cumsum(np.bincount(bin_index, minlength=len(edges) + 1))
    n_upper = n_below[np.searchsorted(edges, upper)]
    return n_upper - n_below[np.searchsorted(edges, lower)]


def find_time_offset(times_1_ns, times_2_ns, offsets_ns, half_width_ns):
    """
    Clock offset of telescope 2 giving the most coincidences within a window.

    All differences ``t2 - t1`` within the scanned range (plus the window) are
    computed once; the best scan offset is the first maximum of
    `coincidences_per_offset`; it is refined to the median difference of the
    pairs in its window (the scan count is flat over a window width around the
    true offset).

    Parameters
    ----------
    times_1_ns, times_2_ns : numpy.ndarray
        Sorted int64 times of each telescope.
    offsets_ns : numpy.ndarray
        int64 scanned offsets, increasing, not empty.
    half_width_ns : int
        Half width of the coincidence window.

    Returns
    -------
    offset_ns : int
        The refined offset (``t2 ≈ t1 + offset_ns``), 0 if the scan found no
        coincidence.
    coincidences : numpy.ndarray
        int64 number of coincidences at each scanned offset.
    """
    index_1, index_2 = candidate_pairs(
        times_1_ns,
        times_2_ns,
        offsets_ns[0] - half_width_ns,
        offsets_ns[-1] + half_width_ns,
    )
    differences = times_2_ns[index_2] - times_1_ns[index_1]
    del index_1, index_2
    coincidences = coincidences_per_offset(differences, offsets_ns, half_width_ns)
    if coincidences.max() == 0:
        return 0, coincidences
    best = offsets_ns[np.argmax(coincidences)]
    in_window = differences[np.abs(differences - best) <= half_width_ns]
    return int(np.rint(np.median(in_window))), coincidences


def pair_tolerance(sorted_1, sorted_2, offset_ns, half_width_ns, n_sigmas, minimum_ns):
    """
    Tolerance around the clock offset for the pairs of SlidingWindow.

    The residuals ``t2 - t1 - offset`` of all candidate pairs within the window
    form a narrow coincidence peak on a flat background of chance pairs; the
    peak width is estimated robustly (1.4826 times the median absolute deviation).

    Returns
    -------
    int
        ``clip(n_sigmas * sigma, minimum_ns, half_width_ns)`` in ns.
    """
    index_1, index_2 = candidate_pairs(
        sorted_1, sorted_2, offset_ns - half_width_ns, offset_ns + half_width_ns
    )
    if len(index_1) == 0:
        return int(half_width_ns)
    residuals = sorted_2[index_2] - sorted_1[index_1] - offset_ns
    sigma = 1.4826 * np.median(np.abs(residuals - np.median(residuals)))
    return int(np.clip(n_sigmas * sigma, min(minimum_ns, half_width_ns), half_width_ns))


def _count_classes(candidate_index, keep, n_events):
    """The disjoint `MatchResult` counts of one telescope from its candidate pairs."""
    paired = np.zeros(n_events, dtype=bool)
    paired[candidate_index[keep]] = True
    n_candidates = np.bincount(candidate_index, minlength=n_events)
    has_candidates = n_candidates > 0
    several = n_candidates > 1
    return {
        "matched": int(np.count_nonzero(paired & ~several)),
        "ambiguous": int(np.count_nonzero(paired & several)),
        "rejected": int(np.count_nonzero(~paired & has_candidates)),
        "unmatched": int(np.count_nonzero(~has_candidates)),
    }


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
    * WhiteRabbitClosest: ``|t2 - t1| <= max_time_diff_ns``;
    * SlidingWindow: ``|t2 - t1 - offset| <= tolerance``, with the offset of
      `find_time_offset` over ``arange(offset_scan_start_ns, offset_scan_stop_ns,
      offset_scan_step_ns)`` (stop excluded) and the tolerance of `pair_tolerance`.

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

    max_time_diff_ns = Int(
        default_value=10_000,
        min=0,
        help="WhiteRabbitClosest: maximum |t2 - t1| of a pair (ns)",
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
            " the coincidence peak around the offset (at least max_time_diff_ns, at"
            " most sliding_window_half_width_ns)"
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
        offset_ns, scan_offsets, scan_coincidences = 0, None, None

        if self.method == "SWATEventIDs":
            self._check_swat_ids(ids, times_1, times_2)
            index_1, index_2 = equal_id_pairs(ids[0][order_1], ids[1][order_2])
        elif self.method == "WhiteRabbitClosest":
            index_1, index_2 = candidate_pairs(
                sorted_1, sorted_2, -self.max_time_diff_ns, self.max_time_diff_ns
            )
        else:
            half_width = self.sliding_window_half_width_ns
            scan_offsets = self.scan_offsets_ns()
            offset_ns, scan_coincidences = find_time_offset(
                sorted_1, sorted_2, scan_offsets, half_width
            )
            if scan_coincidences.max() == 0 and len(sorted_1) and len(sorted_2):
                self.log.warning("No coincidence in the offset scan, offset set to 0")
            tolerance = pair_tolerance(
                sorted_1,
                sorted_2,
                offset_ns,
                half_width,
                self.sliding_window_tolerance_sigmas,
                self.max_time_diff_ns,
            )
            self.log.info("SlidingWindow: pairs within %d ns of the offset", tolerance)
            index_1, index_2 = candidate_pairs(
                sorted_1, sorted_2, offset_ns - tolerance, offset_ns + tolerance
            )

        distance = np.abs(sorted_2[index_2] - sorted_1[index_1] - offset_ns)
        keep = assign_closest(index_1, index_2, distance, len(times_1), len(times_2))
        counts_1 = _count_classes(index_1, keep, len(times_1))
        counts_2 = _count_classes(index_2, keep, len(times_2))

        pair_1, pair_2 = index_1[keep], index_2[keep]
        by_time_1 = np.argsort(pair_1)
        pair_1, pair_2 = order_1[pair_1[by_time_1]], order_2[pair_2[by_time_1]]
        result = MatchResult(
            index_1=pair_1,
            index_2=pair_2,
            delta_t_ns=times_2[pair_2] - times_1[pair_1] - offset_ns,
            offset_ns=offset_ns,
            counts_1=counts_1,
            counts_2=counts_2,
            method=self.method,
            scan_offsets_ns=scan_offsets,
            scan_coincidences=scan_coincidences,
        )
        self.log.info(
            "%s: %d pairs, offset %d ns, telescope 1 %s, telescope 2 %s",
            self.method,
            len(pair_1),
            offset_ns,
            counts_1,
            counts_2,
        )
        return result

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
