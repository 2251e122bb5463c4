"""NsbCalibrator: voltage drop, swapped modules, saturation, pedestal statistics, warm-up."""

import numpy as np
import pytest
from astropy.time import Time
from conftest import run_cli
from ctapipe.containers import EventType
from ctapipe.io import read_table
from traitlets.config import Config

from ctapipe_sst1m import SST1MEventSource
from ctapipe_sst1m.calibration.pedestals import nsb_rate_label
from ctapipe_sst1m.calibration.saturation import reintegrate_saturated_pixels
from ctapipe_sst1m.testing import SyntheticRun, write_synthetic_run
from ctapipe_sst1m.voltage_drop import (
    baseline_shift_adc,
    voltage_drop_factor,
)


@pytest.mark.parametrize(
    "variance, expected_21, expected_22",
    [(20, 0.918, 0.984), (30, 0.860, 0.974), (50, 0.712, 0.954)],
)
def test_voltage_drop_reference_values(variance, expected_21, expected_22):
    assert voltage_drop_factor(variance, 21) == pytest.approx(expected_21, abs=1e-3)
    assert voltage_drop_factor(variance, 22) == pytest.approx(expected_22, abs=1e-3)
    # simulation ids use the same cameras
    assert voltage_drop_factor(variance, 1) == voltage_drop_factor(variance, 21)


def test_voltage_drop_clipped():
    """Beyond the tel-21 spline (74.24 ADC^2) the reference extrapolates to negative factors."""
    edge = voltage_drop_factor(74.24242424, 21)
    assert 0 < edge < 1
    for variance in (75, 100, 1000):
        assert voltage_drop_factor(variance, 21) == pytest.approx(edge)
    assert baseline_shift_adc(-5, 22) == baseline_shift_adc(0, 22)
    assert np.all(np.diff(voltage_drop_factor(np.linspace(0, 74, 50), 21)) <= 1e-12)


def test_nsb_rate_label():
    bins = [[0, 80], [2.3526, 150], [2.8863, 270]]
    assert nsb_rate_label(1.0, bins) == 80
    assert nsb_rate_label(2.5, bins) == 150
    assert nsb_rate_label(9.0, bins) == 270
    assert nsb_rate_label(-1.0, bins) is None


def test_saturation_reintegration():
    n_samples = 50
    signal = np.zeros((3, n_samples))
    # pixel 0: saturated flat top at 3500 ADC over samples 10..19, 20 % level crossings at 8 and 22
    signal[0, 8] = 800
    signal[0, 9] = 2000
    signal[0, 10:20] = 3500
    signal[0, 20] = 2000
    signal[0, 21] = 800
    signal[0, 22] = 100
    # pixel 1: bright but not wide enough above 2500 ADC
    signal[1, 10:13] = 3500
    # pixel 2: nothing
    r1 = signal / 25.0
    baseline = np.full(3, 300.0)
    result = reintegrate_saturated_pixels(
        signal + baseline[:, np.newaxis], baseline, r1
    )
    assert result.pixels.tolist() == [0]
    # from the first sample >= 700 ADC (8) to the first after the peak < 700 ADC (22), inclusive
    assert result.charge_pe[0] == pytest.approx(r1[0, 8:23].sum())
    # 10 samples above 2500 ADC starting at sample 10: 4 ns * (10 + 10 / 2)
    assert result.peak_time_ns[0] == pytest.approx(60.0)


def _events(path, NsbCalibrator=None):
    config = Config({"NsbCalibrator": NsbCalibrator or {}})
    with SST1MEventSource(path, config=config) as source:
        events = list(source)
        return events, source.nsb_calibrator.counts, source.event_counts


def test_no_pedestal_events(tmp_path):
    run = SyntheticRun(n_events=30, pedestal_interval=1000, seed=11)
    paths, _ = write_synthetic_run(tmp_path, run)
    events, counts, event_counts = _events(paths[0])
    assert event_counts == {"SUBARRAY": 30}
    assert counts[21]["events without pedestal statistics"] == 30
    assert all(
        e.monitoring.tel[21].camera.pixel_statistics.pedestal_image.mean is None
        for e in events
    )
    assert all(np.isnan(e.sst1m[21].nsb_level_pe) for e in events)


def test_late_pedestals(tmp_path):
    """Pedestals only after the warm-up limit: the first events have no statistics, later ones do."""
    run = SyntheticRun(
        n_events=80, pedestal_interval=5, first_pedestal_event=40, seed=12
    )
    paths, truth = write_synthetic_run(tmp_path, run)
    events, counts, _ = _events(paths[0], NsbCalibrator={"max_warm_up_events": 20})
    # order is kept, nothing is lost or duplicated
    assert [e.sst1m[21].camera_event_number for e in events] == truth[
        "event_number"
    ].tolist()
    assert [e.count for e in events] == list(range(80))
    statistics = [
        e.monitoring.tel[21].camera.pixel_statistics.pedestal_image.n_events
        for e in events
    ]
    assert statistics[:40] == [-1] * 40
    first_pedestal = 44
    assert statistics[first_pedestal + 1] == 1
    # the last event is the 8th pedestal: calibrated with the 7 before it
    assert statistics[-1] == 7
    assert counts[21]["events without pedestal statistics"] == first_pedestal + 1
    assert counts[21]["pedestal events"] == 8


def test_warm_up_uses_later_pedestals(tmp_path):
    """Within the warm-up the first events are calibrated with pedestals that come after them."""
    run = SyntheticRun(n_events=60, pedestal_interval=4, seed=13)
    paths, _ = write_synthetic_run(tmp_path, run)
    events, counts, _ = _events(paths[0], NsbCalibrator={"warm_up_pedestals": 5})
    n_events = [
        e.monitoring.tel[21].camera.pixel_statistics.pedestal_image.n_events
        for e in events
    ]
    # events 0..19 are held back until 5 pedestals (indices 3, 7, 11, 15, 19) have been read
    assert n_events[0] == 5 and n_events[18] == 5
    # pedestals are counted once
    assert counts[21]["pedestal events"] == 15
    # event 58 comes after 14 pedestals (the 15th is the last event)
    assert n_events[-2] == 14
    assert np.isfinite(events[0].sst1m[21].nsb_level_pe)


def test_dead_pixel(tmp_path):
    run = SyntheticRun(n_events=30, pedestal_interval=3, dead_pixels=(700,), seed=14)
    paths, _ = write_synthetic_run(tmp_path, run)
    events, counts, _ = _events(paths[0])
    outliers = events[5].monitoring.tel[21].camera.coefficients.outlier_mask[0]
    assert np.flatnonzero(outliers).tolist() == [700]
    assert counts[21]["events with dead pixels"] == 30


def test_swapped_modules(tmp_path, shared_dir):
    instrument = shared_dir / "reference/instrument"
    # telescope 22 had modules 59 and 88 swapped from 2023-09-01 to 2024-07-18
    start = int(Time("2024-03-04T22:00:00", scale="utc").unix_tai * 1e9)
    run = SyntheticRun(tel_id=22, n_events=12, start_time_ns=start, seed=15)
    paths, _ = write_synthetic_run(tmp_path, run)
    plain, _, _ = _events(paths[0])
    swapped, _, _ = _events(
        paths[0],
        NsbCalibrator={
            "swapped_modules_path": instrument / "inverted_module_list.json",
            "pixel_mapping_path": instrument / "digicam_pixels_mapping_V5T.txt",
        },
    )
    module_59 = [1098, 1099, 1133, 1134, 1064, 1065, 1100, 1101, 1029, 1066, 1067, 1102]
    module_88 = [1165, 1166, 1194, 1195, 1135, 1136, 1167, 1168, 1103, 1137, 1138, 1169]
    for a, b in zip(plain, swapped):
        raw_a, raw_b = a.r0.tel[22].waveform[0], b.r0.tel[22].waveform[0]
        # exchanged in every event, the same way (not toggled)
        assert np.array_equal(raw_b[module_59], raw_a[module_88])
        assert np.array_equal(raw_b[module_88], raw_a[module_59])
        others = np.setdiff1d(np.arange(1296), module_59 + module_88)
        assert np.array_equal(raw_b[others], raw_a[others])


def test_swapped_modules_outside_period(tmp_path, shared_dir):
    instrument = shared_dir / "reference/instrument"
    paths, _ = write_synthetic_run(
        tmp_path, SyntheticRun(tel_id=22, n_events=3, seed=16)
    )
    # default start time 2024-03-04 but telescope 21: no swap
    paths21, _ = write_synthetic_run(
        tmp_path / "t21", SyntheticRun(tel_id=21, n_events=3, seed=16)
    )
    config = {
        "swapped_modules_path": instrument / "inverted_module_list.json",
        "pixel_mapping_path": instrument / "digicam_pixels_mapping_V5T.txt",
    }
    with SST1MEventSource(
        paths21[0], config=Config({"NsbCalibrator": config})
    ) as source:
        assert source.nsb_calibrator.module_permutation(21, Time("2024-03-04")) is None
        assert (
            source.nsb_calibrator.module_permutation(21, Time("2026-01-01")) is not None
        )


def test_window_and_intensity_factor(tmp_path, shared_dir):
    window = shared_dir / "reference/instrument/corr_factor_1st_wdw.txt"
    paths, _ = write_synthetic_run(tmp_path, SyntheticRun(n_events=3, seed=17))
    events, _, _ = _events(
        paths[0],
        NsbCalibrator={
            "window_transmittance_path": window,
            "intensity_correction": 1.1,
        },
    )
    factors = np.loadtxt(window, skiprows=1)[:, 1]
    coefficient = events[0].monitoring.tel[21].camera.coefficients.factor[0]
    assert np.allclose(coefficient, 1.1 / factors)


def test_global_voltage_drop_applied(raw_2018):
    """The 2018 pedestals (variance ~64 ADC^2) give a global factor of 0.940 for telescope 22."""
    config = Config({"NsbCalibrator": {"apply_global_Vdrop_correction": True}})
    with SST1MEventSource(raw_2018, config=config) as source:
        events = list(source)
    assert events[0].sst1m[22].voltage_drop == pytest.approx(0.9398, abs=5e-4)
    with SST1MEventSource(raw_2018) as source:
        assert next(iter(source)).sst1m[22].voltage_drop == 1.0


def test_warm_up_pedestals_counted_twice(tmp_path):
    """count_warm_up_pedestals_twice: the warm-up pedestals are buffered again as the loop passes them."""
    run = SyntheticRun(n_events=60, pedestal_interval=4, seed=13)
    paths, _ = write_synthetic_run(tmp_path, run)
    events, counts, _ = _events(
        paths[0],
        NsbCalibrator={"warm_up_pedestals": 5, "count_warm_up_pedestals_twice": True},
    )
    n_events = [
        e.monitoring.tel[21].camera.pixel_statistics.pedestal_image.n_events
        for e in events
    ]
    # warm-up pedestals at 3, 7, 11, 15, 19: 5 images, one more after each of them
    assert [n_events[i] for i in (0, 4, 8, 12, 16, 20)] == [5, 6, 7, 8, 9, 10]
    # later pedestals (23, 27, ..., 55) once each; event 58 comes after 9 of them
    assert n_events[-2] == 10 + 9
    # the monitoring counts each pedestal once
    assert counts[21]["pedestal events"] == 15


#: the data configuration's voltage drop on the real files: telescope, factor, images
#: keeping pixels after cleaning with the correction and without (docs/nsb-calibration.md)
VOLTAGE_DROP_CASES = {"raw_2017": (21, 0.4988, 89, 18), "raw_2018": (22, 0.9398, 2, 1)}


@pytest.mark.parametrize("raw", VOLTAGE_DROP_CASES)
def test_data_config_corrects_voltage_drop(raw, request, data_config, tmp_path):
    """sst1m.yaml applies the global voltage drop; the seed's setting is one option away."""
    tel_id, factor, kept_with, kept_without = VOLTAGE_DROP_CASES[raw]
    outputs = {"with": tmp_path / "with.h5", "without": tmp_path / "without.h5"}
    options = {
        "with": [],
        "without": ["--NsbCalibrator.apply_global_Vdrop_correction=False"],
    }
    for key, output in outputs.items():
        result = run_cli(
            "sst1m-process",
            "--input",
            request.getfixturevalue(raw),
            "--output",
            output,
            "--config",
            data_config,
            *options[key],
        )
        assert result.returncode == 0, result.stderr

    def table(key, kind):
        return read_table(outputs[key], f"/dl1/event/telescope/{kind}/tel_{tel_id:03d}")

    nsb = {key: table(key, "nsb") for key in outputs}
    showers = nsb["with"]["event_type"] == EventType.SUBARRAY.value
    drop = nsb["with"]["voltage_drop"][showers]
    assert np.all(drop == drop[0]) and drop[0] == pytest.approx(factor, abs=1e-4)
    assert np.all(nsb["without"]["voltage_drop"] == 1.0)
    # the charges are divided by the factor, nothing else changes
    images = {key: np.stack(table(key, "images")["image"]) for key in outputs}
    np.testing.assert_allclose(
        images["with"] * drop[0], images["without"], rtol=2e-5, atol=2e-4
    )
    kept = {
        key: np.count_nonzero(table(key, "parameters")["morphology_n_pixels"] > 0)
        for key in outputs
    }
    assert kept == {"with": kept_with, "without": kept_without}


def test_pedestal_window_raw_std(tmp_path):
    """Each pedestal's own raw waveform std enters its time window, warm-up pedestals too."""
    run = SyntheticRun(n_events=40, pedestal_interval=4, seed=18)
    paths, _ = write_synthetic_run(tmp_path, run)
    config = Config({"NsbCalibrator": {"pedestal_time_window_s": 1e6}})
    with SST1MEventSource(paths[0], config=config) as source:
        events = list(source)
        source.nsb_calibrator.finish()
        windows = source.nsb_calibrator.pedestal_windows[21]
    raw_std = [
        e.r0.tel[21].waveform[0].std(axis=1, dtype=np.float64)
        for e in events
        if e.trigger.event_type == EventType.SKY_PEDESTAL
    ]
    # all 10 pedestals are read in the warm-up, their raw waveforms before their images
    assert len(windows) == 1 and windows[0]["n_events"] == len(raw_std) == 10
    np.testing.assert_allclose(
        windows[0]["raw_std_mean"], np.mean(raw_std, axis=0), rtol=1e-12
    )


def test_clipped_voltage_drop_reported(tmp_path, caplog):
    """A pedestal variance beyond the telescope-21 spline (74.24 ADC^2) gives its edge factor, with a warning."""
    run = SyntheticRun(n_events=30, pedestal_interval=3, noise_adc=9.5, seed=19)
    paths, _ = write_synthetic_run(tmp_path, run)
    events, _, _ = _events(
        paths[0], NsbCalibrator={"apply_global_Vdrop_correction": True}
    )
    edge = voltage_drop_factor(74.24242424, 21)
    assert all(e.sst1m[21].voltage_drop == pytest.approx(edge) for e in events)
    warnings = [
        r.getMessage() for r in caplog.records if "voltage-drop model" in r.getMessage()
    ]
    assert len(warnings) == 1
    assert (
        "tel 21: pedestal variance" in warnings[0] and "clipped to 0.161" in warnings[0]
    )
