"""
The clock offset of SlidingWindow: offset scan, significance of its peak, clock model.

Without White Rabbit the two cameras run on independent clocks. The offset of
telescope 2 is the offset ``Δ`` where most events of the two telescopes coincide
within ``± w`` (`find_time_offset`, one histogram of the time differences for the
whole scan). That peak is trusted only if it stands out (`OffsetPeak`):

* from the **chance level**: two independent Poisson streams of ``n1`` and ``n2``
  events over a common time ``T`` give on average ``n1·n2·(2w + 1)/T`` accidental
  coincidences per window; the probability of the best count or more from chance
  alone, times the number of independent windows of the scan (``range/(2w)``, the
  look-elsewhere effect), expressed in Gaussian standard deviations, must reach
  ``min_significance`` (5σ);
* from the **second-best peak** outside the neighbourhood of the best one (more than
  ``exclusion_widths`` window widths ``2w`` away, 2 by default: the coincidence
  plateau of true pairs is ``2w`` wide around the true offset): the excess of the
  best count over the chance level must be at least ``min_excess_ratio`` (2) times
  the excess of the second-best. Periodic or quasi-periodic trigger times give a
  comb of aliased peaks of similar heights (ratio ≈ 1), which fails this test; chance
  fluctuations of a Poisson background stay far below half of a significant peak.

`fit_clock_model` then describes ``t2 − t1`` of the true pairs as ``offset + drift ·
(t1 − t_ref)`` (a linear clock drift between the cameras: a Theil-Sen line through the
Δt peak of time slices of the run, refined by least squares on the pairs within a
tolerance of the model) and returns the tolerance of the pairs: a number of robust
standard deviations of the residuals (1.4826 times their median absolute deviation),
at least a minimum, at most the scan window. Over a 20-minute run it finds every pair
up to a drift of 2 µs/s (docs/stereo-matching.md).
"""

from dataclasses import dataclass

import numpy as np
from scipy.special import ndtri_exp
from scipy.stats import poisson, theilslopes

from .pairs import candidate_pairs

__all__ = [
    "ClockModel",
    "OffsetNotFound",
    "OffsetPeak",
    "chance_coincidences",
    "coincidences_per_offset",
    "find_time_offset",
    "fit_clock_model",
    "offset_peak",
]


class OffsetNotFound(ValueError):
    """The offset scan has no peak that stands out (not significant or not unique)."""


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


@dataclass
class OffsetPeak:
    """
    How the best peak of an offset scan stands out (see the module documentation).

    Attributes
    ----------
    offset_ns : int
        Scanned offset of the best peak (first maximum).
    n_coincidences : int
        Coincidences at the best peak.
    chance_level : float
        Expected accidental coincidences per window, ``n1·n2·(2w + 1)/T``.
    n_windows : int
        Independent windows of the scan (the trials of the look-elsewhere effect).
    significance : float
        Gaussian-equivalent significance of the best peak against the chance level,
        corrected for ``n_windows`` trials (inf beyond double precision).
    second_offset_ns, n_second : int or None
        The highest count outside the neighbourhood of the best peak, and its offset;
        None when the scan has no offset outside it.
    min_significance, min_excess_ratio : float
        The thresholds applied.
    """

    offset_ns: int
    n_coincidences: int
    chance_level: float
    n_windows: int
    significance: float
    second_offset_ns: int | None
    n_second: int | None
    min_significance: float
    min_excess_ratio: float

    @property
    def excess_ratio(self):
        """Excess over chance of the best peak divided by that of the second (inf if ≤ 0)."""
        if self.n_second is None or self.n_second <= self.chance_level:
            return np.inf
        return (self.n_coincidences - self.chance_level) / (
            self.n_second - self.chance_level
        )

    @property
    def is_significant(self):
        """The best peak is above the chance level by ``min_significance``."""
        return bool(self.significance >= self.min_significance)

    @property
    def is_unique(self):
        """No peak outside the neighbourhood comes close to the best one."""
        return bool(self.excess_ratio >= self.min_excess_ratio)

    def problems(self):
        """Why the peak is not accepted (empty list if it is)."""
        problems = []
        if not self.is_significant:
            problems.append(
                f"not significant ({_sigma(self.significance)} above the chance level,"
                f" {self.min_significance:g}σ required)"
            )
        if not self.is_unique:
            problems.append(
                f"not unique (excess over chance {self.excess_ratio:.2f} times that of"
                f" the peak at {self.second_offset_ns / 1e6:.3f} ms,"
                f" {self.min_excess_ratio:g} required)"
            )
        return problems

    def summary(self):
        """One line with the numbers of the test."""
        second = (
            "no offset outside the best peak's neighbourhood"
            if self.n_second is None
            else f"second-best {self.n_second} at {self.second_offset_ns / 1e6:.3f} ms"
        )
        return (
            f"best peak {self.n_coincidences} coincidences at"
            f" {self.offset_ns / 1e6:.3f} ms, {second}, chance level"
            f" {self.chance_level:.1f} per window, significance"
            f" {_sigma(self.significance)} ({self.n_windows} independent windows)"
        )


def _sigma(value):
    return f"{value:.1f}σ" if np.isfinite(value) else "> 37σ"


def chance_coincidences(sorted_1, sorted_2, offset_ns, width_ns):
    """
    Accidental coincidences of two Poisson streams within a window: ``n1·n2·width/T``.

    Parameters
    ----------
    sorted_1, sorted_2 : numpy.ndarray
        Sorted int64 times of each telescope, not empty.
    offset_ns : int
        Offset of the telescope-2 times; the overlap ``T`` of the two runs and the
        events ``n1``, ``n2`` in it are counted after removing it (``T`` plus one
        window, the events within a window of the overlap).
    width_ns : int
        Width of the window (ns).

    Returns
    -------
    float
        Expected number of pairs whose difference falls in a window of that width.
    """
    shifted_2 = sorted_2 - offset_ns
    start = max(sorted_1[0], shifted_2[0])
    stop = min(sorted_1[-1], shifted_2[-1])
    # the common time of the runs, a window longer on each side (runs that do not
    # overlap: the gap between them), so that short or disjoint runs stay finite
    low, high = min(start, stop) - width_ns, max(start, stop) + width_ns
    n_1 = np.count_nonzero((sorted_1 >= low) & (sorted_1 <= high))
    n_2 = np.count_nonzero((shifted_2 >= low) & (shifted_2 <= high))
    return float(n_1 * n_2 * width_ns / (max(stop - start, 0) + width_ns))


def offset_peak(
    sorted_1,
    sorted_2,
    offsets_ns,
    coincidences,
    half_width_ns,
    *,
    exclusion_widths=2.0,
    min_significance=5.0,
    min_excess_ratio=2.0,
):
    """
    Test the best peak of an offset scan against chance and against the second best.

    Parameters
    ----------
    sorted_1, sorted_2 : numpy.ndarray
        Sorted int64 times of each telescope, not empty.
    offsets_ns, coincidences : numpy.ndarray
        The scan (`find_time_offset`).
    half_width_ns : int
        Half width ``w`` of the coincidence window.
    exclusion_widths : float
        The neighbourhood of the best peak: this many window widths ``2w`` on each side.
    min_significance, min_excess_ratio : float
        Thresholds (see `OffsetPeak`).

    Returns
    -------
    OffsetPeak
    """
    best = int(np.argmax(coincidences))
    n_best = int(coincidences[best])
    width = 2 * half_width_ns + 1
    chance = chance_coincidences(sorted_1, sorted_2, offsets_ns[best], width)
    n_windows = int(min(len(offsets_ns), (offsets_ns[-1] - offsets_ns[0]) // width + 1))
    log_p = poisson.logsf(n_best - 1, chance) + np.log(n_windows)
    significance = max(-float(ndtri_exp(min(log_p, 0.0))), 0.0)
    outside = np.abs(offsets_ns - offsets_ns[best]) > exclusion_widths * width
    second_offset, n_second = None, None
    if np.any(outside):
        second = np.flatnonzero(outside)[np.argmax(coincidences[outside])]
        second_offset, n_second = int(offsets_ns[second]), int(coincidences[second])
    return OffsetPeak(
        offset_ns=int(offsets_ns[best]),
        n_coincidences=n_best,
        chance_level=float(chance),
        n_windows=n_windows,
        significance=significance,
        second_offset_ns=second_offset,
        n_second=n_second,
        min_significance=min_significance,
        min_excess_ratio=min_excess_ratio,
    )


@dataclass
class ClockModel:
    """
    Telescope-2 clock relative to telescope 1: ``t2 − t1 = offset + drift·(t1 − t_ref)``.

    Attributes
    ----------
    offset_ns : int
        Offset at ``reference_time_ns``.
    drift_ns_per_s : float
        Linear drift of the offset (ns per second of telescope-1 time); 0 unless fitted.
    reference_time_ns : int
        Telescope-1 time of ``offset_ns`` (its first event).
    tolerance_ns : int
        Pairs lie within this distance of the model.
    """

    offset_ns: int
    drift_ns_per_s: float
    reference_time_ns: int
    tolerance_ns: int

    def expected_ns(self, times_1_ns):
        """
        The model's ``t2 − t1`` at the given telescope-1 times.

        Parameters
        ----------
        times_1_ns : numpy.ndarray
            int64 telescope-1 times.

        Returns
        -------
        numpy.ndarray
            int64 ns.
        """
        elapsed_s = (np.asarray(times_1_ns) - self.reference_time_ns) / 1e9
        return self.offset_ns + np.rint(self.drift_ns_per_s * elapsed_s).astype(
            np.int64
        )


def _tolerance(residuals, n_sigmas, minimum_ns, half_width_ns):
    sigma = 1.4826 * np.median(np.abs(residuals - np.median(residuals)))
    return int(np.clip(n_sigmas * sigma, min(minimum_ns, half_width_ns), half_width_ns))


def _peak_line(elapsed_s, difference, half_width_ns):
    """
    Starting line of the drift fit: the most populated Δt bin (1/100 of the window) in
    each of up to 10 time slices (one per 200 candidates), through a Theil-Sen line.
    """
    n_slices = int(np.clip(len(elapsed_s) // 200, 1, 10))
    if n_slices < 3 or np.ptp(elapsed_s) == 0:
        return 0.0, 0.0
    edges = np.linspace(elapsed_s.min(), elapsed_s.max(), n_slices + 1)
    slice_of = np.clip(np.searchsorted(edges, elapsed_s, "right") - 1, 0, n_slices - 1)
    bin_width = 2 * half_width_ns / 100
    bin_of = np.clip((difference + half_width_ns) // bin_width, 0, 99).astype(int)
    counts = np.bincount(slice_of * 100 + bin_of, minlength=n_slices * 100)
    counts = counts.reshape(n_slices, 100)
    peaks = (np.argmax(counts, axis=1) + 0.5) * bin_width - half_width_ns
    drift, intercept, _, _ = theilslopes(peaks, (edges[:-1] + edges[1:]) / 2)
    return float(intercept), float(drift)


def fit_clock_model(
    sorted_1,
    sorted_2,
    offset_ns,
    half_width_ns,
    n_sigmas,
    minimum_ns,
    *,
    fit_drift=True,
    max_iterations=20,
):
    """
    The clock model of SlidingWindow and the tolerance of its pairs.

    The residuals ``t2 − t1 − model`` of all candidate pairs within the window
    around ``offset_ns`` form a coincidence peak on a flat background of chance pairs;
    the tolerance is ``clip(n_sigmas · σ, minimum_ns, half_width_ns)`` with σ the
    robust width of the peak. With ``fit_drift``, a straight line ``offset + drift ·
    (t1 − t_ref)`` is fitted: started from the Δt peak of time slices of the run
    (robust against the chance pairs), then by least squares on the pairs within the
    tolerance, the tolerance recomputed from the new residuals, until the pairs do
    not change.

    Parameters
    ----------
    sorted_1, sorted_2 : numpy.ndarray
        Sorted int64 times of each telescope.
    offset_ns : int
        Offset found by the scan.
    half_width_ns : int
        Half width of the scan window: candidates and the largest tolerance.
    n_sigmas : float
        Tolerance in robust standard deviations of the residuals.
    minimum_ns : int
        Smallest tolerance.
    fit_drift : bool
        Fit a linear drift; otherwise the offset alone.
    max_iterations : int
        Iterations of the least-squares fit.

    Returns
    -------
    ClockModel
    """
    reference = int(sorted_1[0]) if len(sorted_1) else 0
    index_1, index_2 = candidate_pairs(
        sorted_1, sorted_2, offset_ns - half_width_ns, offset_ns + half_width_ns
    )
    if len(index_1) == 0:
        return ClockModel(offset_ns, 0.0, reference, int(half_width_ns))
    elapsed_s = (sorted_1[index_1] - reference) / 1e9
    difference = (sorted_2[index_2] - sorted_1[index_1] - offset_ns).astype(float)
    intercept, drift = 0.0, 0.0
    if fit_drift:
        intercept, drift = _peak_line(elapsed_s, difference, half_width_ns)
    tolerance = _tolerance(difference, n_sigmas, minimum_ns, half_width_ns)
    selected = None
    for _ in range(max_iterations if fit_drift else 0):
        residuals = difference - intercept - drift * elapsed_s
        tolerance = _tolerance(residuals, n_sigmas, minimum_ns, half_width_ns)
        within = np.abs(residuals) <= tolerance
        if selected is not None and np.array_equal(within, selected):
            break
        selected = within
        if np.count_nonzero(within) < 3 or np.ptp(elapsed_s[within]) == 0:
            break
        drift, intercept = np.polyfit(elapsed_s[within], difference[within], 1)
    return ClockModel(
        offset_ns=offset_ns + int(np.rint(intercept)),
        drift_ns_per_s=float(drift),
        reference_time_ns=reference,
        tolerance_ns=tolerance,
    )
