"""CoincidenceMatcher: stereo pairs of the two SST-1M telescopes (times, SWAT ids)."""

import logging

import numpy as np
import pytest
import yaml
from traitlets import TraitError

from ctapipe_sst1m.stereo.coincidence import (
    CoincidenceMatcher,
    MatchResult,
    OffsetNotFound,
)
from ctapipe_sst1m.stereo.offset_scan import coincidences_per_offset
from ctapipe_sst1m.stereo.pairs import assign_closest, candidate_pairs
from ctapipe_sst1m.stereo.white_rabbit import (
    BASELINE_LIGHT_TIME_NS,
    physical_tolerance_ns,
)
from ctapipe_sst1m.testing import simulate_stereo_times

N_STEREO = 20_000
CLOCK_OFFSET_NS = 3_217_000
#: t2 - t1 spread of a shower without White Rabbit (geometry, camera clocks)
CAMERA_CLOCK_SIGMA_NS = 200.0
COUNT_KEYS = ("matched", "ambiguous", "rejected", "unmatched")
METHODS = ["SWATEventIDs", "WhiteRabbitClosest", "SlidingWindow"]


def counts(matched, ambiguous, rejected, unmatched):
    return dict(zip(COUNT_KEYS, (matched, ambiguous, rejected, unmatched)))


def simulate(seed, **kwargs):
    """20,000 stereo showers (150 Hz), 40 % extra singles, 20 Hz pedestals, shuffled."""
    return simulate_stereo_times(N_STEREO, np.random.default_rng(seed), **kwargs)


@pytest.fixture(scope="module")
def white_rabbit_run():
    """White Rabbit timestamps: 5 ns jitter, no clock offset."""
    return simulate(1)


@pytest.fixture(scope="module")
def camera_clock_run():
    """Independent camera clocks: telescope 2 is 3.217 ms ahead."""
    return simulate(
        2, clock_offset_ns=CLOCK_OFFSET_NS, delay_sigma_ns=CAMERA_CLOCK_SIGMA_NS
    )


def match(sim, method, **traits):
    matcher = CoincidenceMatcher(method=method, **traits)
    return matcher(sim.times_1_ns, sim.times_2_ns, sim.event_ids_1, sim.event_ids_2)


def check_consistent(result, times_1, times_2):
    """One-to-one pairs sorted by t1, delta_t as documented, disjoint counts."""
    assert isinstance(result, MatchResult)
    for array in (result.index_1, result.index_2, result.delta_t_ns):
        assert array.dtype == np.int64
        assert len(array) == len(result.index_1)
    assert len(np.unique(result.index_1)) == len(result.index_1)
    assert len(np.unique(result.index_2)) == len(result.index_2)
    assert np.all(np.diff(times_1[result.index_1]) >= 0)
    np.testing.assert_array_equal(
        result.delta_t_ns,
        times_2[result.index_2]
        - times_1[result.index_1]
        - result.model_ns(times_1[result.index_1]),
    )
    for classes, times in ((result.counts_1, times_1), (result.counts_2, times_2)):
        assert set(classes) == set(COUNT_KEYS)
        assert sum(classes.values()) == len(times)
        assert classes["matched"] + classes["ambiguous"] == len(result.index_1)


def test_defaults_are_the_data_configuration(data_config):
    config = yaml.safe_load(data_config.read_text())["CoincidenceMatcher"]
    matcher = CoincidenceMatcher()
    for name, value in config.items():
        assert getattr(matcher, name) == value


def test_candidate_pairs_brute_force():
    rng = np.random.default_rng(0)
    keys_1 = np.sort(rng.integers(0, 1000, 200))
    keys_2 = np.sort(rng.integers(0, 1000, 150))
    index_1, index_2 = candidate_pairs(keys_1, keys_2, -7, 12)
    difference = keys_2[np.newaxis, :] - keys_1[:, np.newaxis]
    expected = np.argwhere((difference >= -7) & (difference <= 12))
    np.testing.assert_array_equal(np.column_stack([index_1, index_2]), expected)


def test_coincidences_per_offset_brute_force():
    rng = np.random.default_rng(3)
    differences = rng.integers(-500, 500, 5000)
    offsets = np.arange(-400, 400, 7)
    counts = coincidences_per_offset(differences, offsets, 30)
    expected = [np.count_nonzero(np.abs(differences - o) <= 30) for o in offsets]
    np.testing.assert_array_equal(counts, expected)


def test_assign_closest_is_greedy_by_distance():
    # tel-1 event 0 is closest to tel-2 event 0, which tel-1 event 1 wants too
    index_1 = np.array([0, 0, 1])
    index_2 = np.array([0, 1, 0])
    distance = np.array([1, 5, 3])
    np.testing.assert_array_equal(
        assign_closest(index_1, index_2, distance, 2, 2), [True, False, False]
    )
    # equal distances: the lower tel-1 index wins
    np.testing.assert_array_equal(
        assign_closest(np.array([1, 0]), np.array([0, 0]), np.array([4, 4]), 2, 1),
        [False, True],
    )


def test_closer_tel1_event_wins_the_other_is_rejected():
    times_1 = np.array([1_000_000, 1_000_030])
    times_2 = np.array([1_000_020])
    result = CoincidenceMatcher()(times_1, times_2)
    np.testing.assert_array_equal(result.index_1, [1])
    np.testing.assert_array_equal(result.index_2, [0])
    np.testing.assert_array_equal(result.delta_t_ns, [-10])
    assert result.counts_1 == counts(1, 0, 1, 0)
    assert result.counts_2 == counts(0, 1, 0, 0)
    check_consistent(result, times_1, times_2)


def test_event_with_two_candidates_is_ambiguous():
    times_1 = np.array([5_000, 900_000])
    times_2 = np.array([5_105, 4_990, 50_000])
    result = CoincidenceMatcher(white_rabbit_tolerance_ns=200)(times_1, times_2)
    np.testing.assert_array_equal(result.index_1, [0])
    np.testing.assert_array_equal(result.index_2, [1])
    assert result.counts_1 == counts(0, 1, 0, 1)
    assert result.counts_2 == counts(1, 0, 1, 1)
    check_consistent(result, times_1, times_2)


def test_white_rabbit_tolerance_is_inclusive():
    matcher = CoincidenceMatcher(white_rabbit_tolerance_ns=100)
    result = matcher(np.array([0, 1000]), np.array([100, 1101]))
    np.testing.assert_array_equal(result.index_1, [0])


def test_swat_duplicated_id_closest_in_time_wins():
    # id 5 twice in telescope 1: both are candidates of the telescope-2 event
    times_1 = np.array([0, 100, 200, 300])
    ids_1 = np.array([5, 5, 0, 7])
    times_2 = np.array([90, 210, 300])
    ids_2 = np.array([5, 0, -1])
    result = CoincidenceMatcher(method="swateventids")(times_1, times_2, ids_1, ids_2)
    assert result.method == "SWATEventIDs"
    np.testing.assert_array_equal(result.index_1, [1])
    np.testing.assert_array_equal(result.index_2, [0])
    np.testing.assert_array_equal(result.delta_t_ns, [-10])
    # ids <= 0 (no SWAT id) never pair, even at equal times
    assert result.counts_1 == counts(1, 0, 1, 2)
    assert result.counts_2 == counts(0, 1, 0, 2)
    check_consistent(result, times_1, times_2)


def test_swat_ids(white_rabbit_run):
    sim = white_rabbit_run
    result = match(sim, "SWATEventIDs")
    check_consistent(result, sim.times_1_ns, sim.times_2_ns)
    assert sim.precision_recall(result) == (1.0, 1.0)
    assert result.counts_1["matched"] == N_STEREO
    assert result.offset_ns == 0
    assert result.scan_offsets_ns is None and result.scan_coincidences is None
    assert np.all(np.abs(result.delta_t_ns) < 50)


def test_white_rabbit_closest(white_rabbit_run):
    sim = white_rabbit_run
    result = match(sim, "WhiteRabbitClosest")
    check_consistent(result, sim.times_1_ns, sim.times_2_ns)
    precision, recall = sim.precision_recall(result)
    assert precision >= 0.999
    assert recall >= 0.999
    assert result.offset_ns == 0
    assert np.all(np.abs(result.delta_t_ns) <= 10_000)
    assert result.scan_offsets_ns is None


@pytest.mark.parametrize("clock_offset_ns", [CLOCK_OFFSET_NS, -6_480_500])
def test_sliding_window_narrow(clock_offset_ns):
    """A window matching the clock precision: accidental coincidences are rare."""
    sim = simulate(
        4, clock_offset_ns=clock_offset_ns, delay_sigma_ns=CAMERA_CLOCK_SIGMA_NS
    )
    matcher = CoincidenceMatcher(
        method="SlidingWindow", sliding_window_half_width_ns=50_000
    )
    result = matcher(sim.times_1_ns, sim.times_2_ns)
    check_consistent(result, sim.times_1_ns, sim.times_2_ns)
    precision, recall = sim.precision_recall(result)
    assert precision >= 0.99
    assert recall >= 0.99
    assert abs(result.offset_ns - clock_offset_ns) <= matcher.offset_scan_step_ns
    assert np.all(np.abs(result.delta_t_ns) <= 50_000)


def test_sliding_window_default(camera_clock_run):
    """
    The default ±1 ms window finds the offset and every stereo pair.

    With ~80 Hz of non-stereo triggers per telescope a ±1 ms window would pair
    ~15 % of the singles with each other; the pairs are taken within the width of
    the coincidence peak instead (here the 10 µs minimum), which keeps them out.
    """
    sim = camera_clock_run
    matcher = CoincidenceMatcher(method="SlidingWindow")
    result = matcher(sim.times_1_ns, sim.times_2_ns)
    check_consistent(result, sim.times_1_ns, sim.times_2_ns)
    assert abs(result.offset_ns - CLOCK_OFFSET_NS) <= matcher.offset_scan_step_ns
    precision, recall = sim.precision_recall(result)
    assert precision >= 0.99 and recall >= 0.99
    assert np.all(np.abs(result.delta_t_ns) <= matcher.max_time_diff_ns)

    np.testing.assert_array_equal(
        result.scan_offsets_ns, np.arange(-10_000_000, 10_000_000, 20_000)
    )
    assert result.scan_coincidences.dtype == np.int64
    assert len(result.scan_coincidences) == 1000
    best = result.scan_offsets_ns[np.argmax(result.scan_coincidences)]
    assert abs(best - CLOCK_OFFSET_NS) <= matcher.sliding_window_half_width_ns
    assert result.scan_coincidences.max() > N_STEREO


@pytest.mark.parametrize("method", METHODS)
def test_input_order_does_not_matter(method):
    sim = simulate(5, shuffle=False)
    ordered = match(sim, method)
    rng = np.random.default_rng(6)
    perm_1 = rng.permutation(len(sim.times_1_ns))
    perm_2 = rng.permutation(len(sim.times_2_ns))
    shuffled = CoincidenceMatcher(method=method)(
        sim.times_1_ns[perm_1],
        sim.times_2_ns[perm_2],
        sim.event_ids_1[perm_1],
        sim.event_ids_2[perm_2],
    )
    check_consistent(shuffled, sim.times_1_ns[perm_1], sim.times_2_ns[perm_2])
    np.testing.assert_array_equal(perm_1[shuffled.index_1], ordered.index_1)
    np.testing.assert_array_equal(perm_2[shuffled.index_2], ordered.index_2)
    assert shuffled.counts_1 == ordered.counts_1
    assert shuffled.counts_2 == ordered.counts_2
    assert shuffled.offset_ns == ordered.offset_ns
    assert sim.precision_recall(ordered)[1] >= 0.99


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("n_1, n_2", [(0, 0), (3, 0), (0, 2)])
def test_empty_inputs(method, n_1, n_2):
    times_1 = np.arange(n_1, dtype=np.int64) * 1_000
    times_2 = np.arange(n_2, dtype=np.int64) * 1_000
    result = CoincidenceMatcher(method=method)(
        times_1, times_2, np.arange(1, n_1 + 1), np.arange(1, n_2 + 1)
    )
    assert len(result.index_1) == len(result.index_2) == len(result.delta_t_ns) == 0
    assert result.offset_ns == 0
    assert result.counts_1 == counts(0, 0, 0, n_1)
    assert result.counts_2 == counts(0, 0, 0, n_2)
    if method == "SlidingWindow":
        assert np.all(result.scan_coincidences == 0)


def test_integer_like_inputs_accepted():
    result = CoincidenceMatcher()([10, 2000], np.array([15, 2003], dtype=np.uint32))
    np.testing.assert_array_equal(result.delta_t_ns, [5, 3])
    assert CoincidenceMatcher()([], []).counts_1["unmatched"] == 0


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"times_1_ns": np.array([1.5, 2.0])}, "times_1_ns must hold integers"),
        ({"times_2_ns": np.zeros((2, 2), dtype=np.int64)}, "times_2_ns must be a 1-D"),
        ({"event_ids_1": np.array([1, 2, 3])}, "event_ids_1 has 3 entries but there"),
        ({"event_ids_2": np.array([1.0, 2.0])}, "event_ids_2 must hold integers"),
    ],
)
def test_invalid_inputs(kwargs, message):
    arguments = {
        "times_1_ns": np.array([1, 2]),
        "times_2_ns": np.array([1, 2]),
        "event_ids_1": None,
        "event_ids_2": None,
    } | kwargs
    with pytest.raises(ValueError, match=message):
        CoincidenceMatcher()(**arguments)


def test_swat_without_ids():
    times = np.array([1, 2])
    matcher = CoincidenceMatcher(method="SWATEventIDs")
    with pytest.raises(ValueError, match="needs event_ids_1 and event_ids_2"):
        matcher(times, times)
    with pytest.raises(ValueError, match="needs event_ids_1 and event_ids_2"):
        matcher(times, times, np.array([1, 2]))
    with pytest.raises(ValueError, match="no SWAT event ids for telescope 2"):
        matcher(times, times, np.array([1, 2]), np.array([0, -1]))


def test_invalid_configuration():
    with pytest.raises(ValueError, match="empty offset scan"):
        CoincidenceMatcher(
            method="SlidingWindow", offset_scan_start_ns=10, offset_scan_stop_ns=10
        )(np.array([1]), np.array([1]))
    with pytest.raises(TraitError):
        CoincidenceMatcher(method="Closest")
    with pytest.raises(TraitError):
        CoincidenceMatcher(offset_scan_step_ns=0)


# ------------------------------------------------- SlidingWindow: is the peak real?
START_NS = 1_709_590_000 * 10**9


def periodic_times(rng, n_slots=4000, period_ns=5_000_000):
    """
    Quasi-periodic triggers (a 5 ms grid, 100 µs jitter): each slot is a stereo event
    (60 %) or a single-telescope trigger of either telescope (20 % each).

    Shifting telescope 2 by one period pairs the events of neighbouring slots: 0.8 ×
    0.8 = 64 % of the slots, more than the 60 % of true pairs at the true offset.
    """
    slots = (
        START_NS + np.arange(n_slots) * period_ns + rng.integers(0, 100_000, n_slots)
    )
    kind = rng.choice(3, n_slots, p=[0.6, 0.2, 0.2])
    return slots[kind != 2], slots[kind != 1] + CLOCK_OFFSET_NS


def test_periodic_times_refused_not_aliased(caplog):
    times_1, times_2 = periodic_times(np.random.default_rng(1))
    matcher = CoincidenceMatcher(method="SlidingWindow")
    with pytest.raises(OffsetNotFound) as error:
        matcher(times_1, times_2)
    message = str(error.value)
    assert "not unique" in message
    assert "not significant" not in message  # aliases are far above chance
    # the scan summary: both peaks, the chance level, the significance
    for part in ("best peak", "second-best", "chance level", "independent windows"):
        assert part in message

    # told to go on, it warns and returns what it found: an alias, not the offset
    matcher = CoincidenceMatcher(method="SlidingWindow", refuse_ambiguous_offset=False)
    with caplog.at_level(logging.WARNING):
        result = matcher(times_1, times_2)
    assert "not unique" in caplog.text and "used anyway" in caplog.text
    peak = result.offset_peak
    assert not peak.is_unique and peak.is_significant
    assert peak.excess_ratio < 1.2
    assert abs(abs(result.offset_ns - CLOCK_OFFSET_NS) - 5_000_000) < 200_000


def test_chance_coincidences_only_refused():
    """Two independent Poisson streams: the best peak is a fluctuation of chance."""
    rng = np.random.default_rng(2)
    times_1 = START_NS + np.sort(rng.integers(0, 20 * 10**9, 4000))
    times_2 = START_NS + np.sort(rng.integers(0, 20 * 10**9, 4000))
    with pytest.raises(OffsetNotFound, match="not significant"):
        CoincidenceMatcher(method="SlidingWindow")(times_1, times_2)
    result = CoincidenceMatcher(method="SlidingWindow", refuse_ambiguous_offset=False)(
        times_1, times_2
    )
    peak = result.offset_peak
    # 4000 × 4000 × 2 ms / 20 s = 1600 per window; the best of 10 windows, ~2σ above
    assert peak.chance_level == pytest.approx(1600, rel=0.01)
    assert peak.significance < 3 and peak.excess_ratio < 2


def test_offset_peak_of_a_stereo_run(camera_clock_run):
    """The numbers of the significance test on a run with a true coincidence peak."""
    sim = camera_clock_run
    half_width = 1_000_000
    result = CoincidenceMatcher(method="SlidingWindow")(sim.times_1_ns, sim.times_2_ns)
    peak = result.offset_peak
    # chance level n1·n2·(2w + 1)/T of the whole run (the runs overlap fully)
    duration = max(sim.times_1_ns.max(), sim.times_2_ns.max() - CLOCK_OFFSET_NS) - min(
        sim.times_1_ns.min(), sim.times_2_ns.min() - CLOCK_OFFSET_NS
    )
    expected = len(sim.times_1_ns) * len(sim.times_2_ns) * (2 * half_width + 1)
    assert peak.chance_level == pytest.approx(expected / duration, rel=0.01)
    # the true pairs stand above chance; elsewhere the scan stays near chance
    assert peak.n_coincidences - peak.chance_level == pytest.approx(N_STEREO, rel=0.02)
    assert abs(peak.second_offset_ns - peak.offset_ns) > 4 * half_width
    assert peak.excess_ratio > 5
    assert peak.significance > 30 and peak.n_windows == 10
    assert peak.problems() == []


@pytest.mark.parametrize("seed", range(5))
def test_few_stereo_events_still_significant(seed):
    """30 stereo showers in 0.2 s (and 12 singles per telescope) pass the test."""
    short = simulate_stereo_times(
        30,
        np.random.default_rng(seed),
        clock_offset_ns=CLOCK_OFFSET_NS,
        delay_sigma_ns=CAMERA_CLOCK_SIGMA_NS,
    )
    result = CoincidenceMatcher(method="SlidingWindow")(
        short.times_1_ns, short.times_2_ns
    )
    assert short.precision_recall(result) == (1.0, 1.0)
    assert result.offset_peak.significance >= 5
    assert result.offset_peak.excess_ratio >= 2


# ----------------------------------------------------------- SlidingWindow: drift
#: a 20-minute run at 150 Hz of stereo showers
DRIFT_RUN_STEREO = 150 * 1200


@pytest.fixture(scope="module")
def twenty_minute_run():
    return simulate_stereo_times(
        DRIFT_RUN_STEREO,
        np.random.default_rng(7),
        clock_offset_ns=CLOCK_OFFSET_NS,
        delay_sigma_ns=CAMERA_CLOCK_SIGMA_NS,
    )


def drifting(sim, drift_ns_per_s):
    """Telescope-2 times of a camera clock running fast by ``drift_ns_per_s``."""
    elapsed_s = (sim.times_2_ns - START_NS) / 1e9
    return sim.times_2_ns + np.rint(drift_ns_per_s * elapsed_s).astype(np.int64)


@pytest.mark.parametrize("drift_us_per_s", [0.0, 1.0, 2.0])
def test_clock_drift_is_fitted(twenty_minute_run, drift_us_per_s):
    """Up to 2 µs/s over 20 minutes (2.4 ms in all) every pair is found."""
    sim = twenty_minute_run
    times_2 = drifting(sim, drift_us_per_s * 1000)
    result = CoincidenceMatcher(method="SlidingWindow")(sim.times_1_ns, times_2)
    precision, recall = sim.precision_recall(result)
    assert precision >= 0.999 and recall >= 0.999
    assert result.drift_ns_per_s == pytest.approx(drift_us_per_s * 1000, abs=1.0)
    assert abs(result.offset_ns - CLOCK_OFFSET_NS) < 100
    assert result.tolerance_ns == 10_000
    check_consistent(result, sim.times_1_ns, times_2)


def test_clock_drift_without_fit_loses_pairs(twenty_minute_run):
    """A constant offset spreads 1 µs/s over 1.2 ms: pairs within the whole window."""
    sim = twenty_minute_run
    times_2 = drifting(sim, 1000)
    matcher = CoincidenceMatcher(method="SlidingWindow", fit_clock_drift=False)
    result = matcher(sim.times_1_ns, times_2)
    precision, recall = sim.precision_recall(result)
    assert result.drift_ns_per_s == 0
    assert result.tolerance_ns == matcher.sliding_window_half_width_ns
    assert precision < 0.9 and recall < 0.9


def test_clock_drift_beyond_the_fit(twenty_minute_run, caplog):
    """3 µs/s: the Δt peak stays as wide as the window, which is reported; 5 µs/s: refused."""
    sim = twenty_minute_run
    with caplog.at_level(logging.WARNING):
        result = CoincidenceMatcher(method="SlidingWindow")(
            sim.times_1_ns, drifting(sim, 3000)
        )
    assert result.tolerance_ns == 1_000_000
    assert "as wide as the window" in caplog.text
    with pytest.raises(OffsetNotFound, match="not unique"):
        CoincidenceMatcher(method="SlidingWindow")(sim.times_1_ns, drifting(sim, 5000))


# ------------------------------------------ WhiteRabbitClosest: a physical tolerance
def test_white_rabbit_tolerance_from_the_baseline():
    # 155.2 m between the telescopes: 517.7 ns of light travel, plus 100 ns
    assert BASELINE_LIGHT_TIME_NS == pytest.approx(517.75, abs=0.01)
    assert physical_tolerance_ns() == 618
    assert CoincidenceMatcher().white_rabbit_tolerance() == 618
    assert (
        CoincidenceMatcher(white_rabbit_tolerance_ns=10_000).white_rabbit_tolerance()
        == 10_000
    )


def test_white_rabbit_rejects_accidental_coincidences():
    """
    150 Hz of singles in each telescope besides 150 Hz of stereo showers (delays up to
    ~500 ns between the telescopes): the 10 µs window of sst1mpipe pairs unrelated
    singles, the physical tolerance keeps them out.
    """
    sim = simulate_stereo_times(
        N_STEREO, np.random.default_rng(11), single_fraction=1.0, delay_sigma_ns=100.0
    )
    arguments = (sim.times_1_ns, sim.times_2_ns)
    wide = CoincidenceMatcher(white_rabbit_tolerance_ns=10_000)(*arguments)
    precision_wide, _ = sim.precision_recall(wide)
    assert precision_wide < 0.998  # accidental coincidences are there

    result = CoincidenceMatcher()(*arguments)
    precision, recall = sim.precision_recall(result)
    assert precision >= 0.999 and recall >= 0.999
    assert result.tolerance_ns == 618
    assert np.all(np.abs(result.delta_t_ns) <= 618)
    check_consistent(result, *arguments)


def test_white_rabbit_offset_between_cameras_reported(caplog):
    """Time stamps 2 µs apart: the pairs beyond the tolerance are reported."""
    sim = simulate_stereo_times(2_000, np.random.default_rng(12), clock_offset_ns=2_000)
    with caplog.at_level(logging.WARNING):
        result = CoincidenceMatcher()(sim.times_1_ns, sim.times_2_ns)
    assert len(result.index_1) < 100
    assert "candidate pairs with 618 < |t2 - t1| <= 10000 ns" in caplog.text
    assert "set white_rabbit_tolerance_ns" in caplog.text
