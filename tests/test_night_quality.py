"""
The data-quality rows, cuts and table of sst1m-night, the expected proton rate and the
time series of the report.
"""

import astropy.units as u
import numpy as np
import pytest
from astropy.table import Table
from conftest import run_cli
from ctapipe.io import TableLoader, read_table
from pyirf.spectral import IRFDOC_PROTON_SPECTRUM, PowerLaw, calculate_event_weights
from traitlets import TraitError

from ctapipe_sst1m.io.dl1_monitoring import (
    EVENT_NSB_GROUP,
    PEDESTAL_GROUP,
    SUMMARY_TABLE,
)
from ctapipe_sst1m.io.simulation_card import read_card
from ctapipe_sst1m.night.expected_rate import PROTON_SPECTRA, expected_proton_rate
from ctapipe_sst1m.night.quality import (
    COLUMNS,
    elapsed_time_s,
    quality_table,
    run_quality,
    write_quality_table,
)
from ctapipe_sst1m.night.quality_cuts import CUT_NAMES, QualityCuts
from ctapipe_sst1m.night.time_series import event_rate, nsb_levels, stereo_delta_t_ns
from ctapipe_sst1m.performance.inputs import event_weights, read_simulation_info
from ctapipe_sst1m.stereo.tables import COINCIDENCE_TABLE
from ctapipe_sst1m.stereo.white_rabbit import physical_tolerance_ns
from ctapipe_sst1m.time import tai_ns

#: mean pedestal charge of the simulation at its default NSB of 80 MHz
#: (docs/simulation-model.md, LocalPeakWindowSum of sst1m.yaml), before the voltage drop
SIMULATED_NSB_LEVEL_PE = 2.05
SIMULATED_NSB_RATE_MHZ = 80.0


@pytest.fixture(scope="module")
def expected(small_production):
    return expected_proton_rate(small_production["proton"])


@pytest.fixture(scope="module")
def rows(simulated_stereo_run, expected):
    """Quality rows of both telescopes of the simulated run: without and with MC."""
    stereo = [simulated_stereo_run["stereo_dl1"]]
    return {
        (tel_id, with_mc): run_quality(
            [simulated_stereo_run[tel_id]],
            tel_id,
            stereo,
            expected if with_mc else None,
        )
        for tel_id in (21, 22)
        for with_mc in (False, True)
    }


def _trigger_times_ns(path):
    return tai_ns(read_table(path, "/dl1/event/subarray/trigger")["time"])


@pytest.mark.slow
@pytest.mark.parametrize("tel_id", [21, 22])
def test_row_of_the_simulated_run(simulated_stereo_run, rows, tel_id):
    path = simulated_stereo_run[tel_id]
    row = rows[(tel_id, False)]
    parameters = read_table(path, f"/dl1/event/telescope/parameters/tel_{tel_id:03d}")
    summary = read_table(path, SUMMARY_TABLE)[0]
    times = np.sort(_trigger_times_ns(path))

    assert set(row) == {name for name, *_ in COLUMNS}
    assert (row["night"], row["run"], row["obs_id"]) == ("20240304", 1, 202403040001)
    assert (row["target"], row["wobble"], row["tel_id"]) == ("Simulation", "W1", tel_id)
    assert row["n_shower_events"] == len(parameters) == len(times) > 100
    assert row["n_pedestal_events"] == summary["n_pedestal_events"] > 0
    assert tai_ns(row["time_start"]) == times[0]
    assert tai_ns(row["time_stop"]) == times[-1]
    # every interval is below 10 s: the elapsed time is the span of the run
    assert row["elapsed_time_s"] == pytest.approx((times[-1] - times[0]) / 1e9)
    assert 0.95 * row["elapsed_time_s"] < row["live_time_s"] <= row["elapsed_time_s"]
    # simulated at altitude 70 deg
    assert row["zenith_deg"] == pytest.approx(20, abs=0.1)

    intensity = np.asarray(parameters["hillas_intensity"])
    exposure = row["live_time_s"] * np.cos(np.deg2rad(row["zenith_deg"]))
    rates = [row[f"rate_above_{t}pe_hz"] for t in (100, 200, 400, 800, 1600)]
    assert rates[0] * exposure == pytest.approx(np.count_nonzero(intensity > 100))
    assert rates[-1] * exposure == pytest.approx(np.count_nonzero(intensity > 1600))
    assert np.all(np.diff(rates) < 0) and rates[-1] > 0

    # stereo: this telescope's events among the pairs of the coincidence table
    pairs = read_table(simulated_stereo_run["stereo_dl1"], COINCIDENCE_TABLE)
    matched = np.isin(parameters["event_id"], pairs[f"tel_{tel_id:03d}_event_id"])
    assert row["n_stereo_events"] == np.count_nonzero(matched) == len(pairs)
    assert row["stereo_fraction"] == pytest.approx(np.mean(matched))
    assert 0.5 < row["stereo_fraction"] < 1
    assert row["stereo_method"] == "WhiteRabbitClosest"
    offset = np.median(pairs["tel_022_time_ns"] - pairs["tel_021_time_ns"])
    assert row["clock_offset_ns"] == offset
    assert abs(offset) <= physical_tolerance_ns()

    # NSB: the mean level of the shower events of the monitoring table
    nsb = read_table(path, f"{EVENT_NSB_GROUP}/tel_{tel_id:03d}")
    showers = nsb[nsb["event_type"] == 32]
    assert row["nsb_level_pe"] == pytest.approx(np.nanmean(showers["nsb_level_pe"]))
    assert row["voltage_drop"] == pytest.approx(np.mean(showers["voltage_drop"]))
    assert row["nsb_rate_mhz"] == summary["nsb_rate_mhz"]
    assert row["raised_threshold_fraction"] == pytest.approx(
        summary["mean_raised_threshold_fraction"]
    )
    # sst1m.yaml keeps the shower events only: surviving pedestals are not measured
    assert np.isnan(row["surviving_pedestal_fraction"])
    # no expected rate: no comparison
    assert np.isnan(row["mc_rate_ratio"]) and np.isnan(row["mc_expected_rate_hz"])
    assert not row["mc_fit_success"]


@pytest.mark.slow
def test_nsb_of_the_simulated_run(rows):
    """
    The simulation's 80 MHz as processed with sst1m.yaml: the voltage-drop correction of
    each telescope undoes the drop the simulated readout applied, slightly for telescope
    22, more for telescope 21 (its steep spline).
    """
    tel_22 = rows[(22, False)]
    assert tel_22["nsb_rate_mhz"] == SIMULATED_NSB_RATE_MHZ
    assert 0.9 < tel_22["voltage_drop"] < 1
    assert tel_22["nsb_level_pe"] * tel_22["voltage_drop"] == pytest.approx(
        SIMULATED_NSB_LEVEL_PE, rel=0.1
    )
    tel_21 = rows[(21, False)]
    # the simulated cameras have the voltage drop the chain corrects
    # (simulation/readout.py): 0.884 measured for telescope 21
    assert 0.85 < tel_21["voltage_drop"] < 0.92
    assert tel_21["nsb_level_pe"] * tel_21["voltage_drop"] == pytest.approx(
        SIMULATED_NSB_LEVEL_PE, rel=0.2
    )


@pytest.mark.slow
def test_comparison_with_simulated_protons(rows, expected):
    for tel_id in (21, 22):
        row = rows[(tel_id, True)]
        assert row["mc_fit_success"]
        assert 0 < row["mc_expected_rate_hz"] < row["rate_above_100pe_hz"]
        # point gammas of 2-300 TeV at 200 Hz: far more bright images than protons
        assert row["mc_rate_ratio"] > 3


@pytest.mark.slow
def test_cuts_flag_rows_out_of_range(rows, tmp_path):
    table = quality_table(list(rows.values()), QualityCuts())
    assert len(table) == 4
    assert list(table["tel_id"]) == [21, 21, 22, 22]
    assert table["live_time_s"].unit == u.s and table["zenith_deg"].unit == u.deg
    # the gamma run against protons fails the MC ratio; without MC nothing fails
    with_mc = table["mc_fit_success"]
    assert np.all(table["failed_cuts"][with_mc] == "mc_rate_ratio")
    assert np.all(table["good"] == ~with_mc)
    assert np.all(table["failed_cuts"][~with_mc] == "")

    without, with_ = np.flatnonzero(~with_mc), np.flatnonzero(with_mc)
    table["zenith_deg"][without[0]] = 75.0
    table["surviving_pedestal_fraction"][without[0]] = 0.2
    table["live_time_s"][with_[0]] = 6 * 3600
    table["nsb_rate_mhz"][without[1]] = np.nan  # not measured: not judged
    good, failed = QualityCuts().flags(table)
    assert failed[without[0]] == "zenith_deg,surviving_pedestal_fraction"
    assert failed[with_[0]] == "livetime_h,mc_rate_ratio"
    assert failed[without[1]] == "" and good[without[1]]
    assert not good[without[0]] and not good[with_[0]]
    # wider ranges accept them
    wide = QualityCuts(
        zenith_deg=[0, 80],
        livetime_h=[0, 10],
        surviving_pedestal_fraction=[0, 1],
        mc_rate_ratio=[0, 1000],
    )
    assert np.all(wide.flags(table)[0])
    with pytest.raises(TraitError, match="min <= max"):
        QualityCuts(zenith_deg=[70, 0])
    assert set(CUT_NAMES) == set(QualityCuts.class_trait_names(config=True))


@pytest.mark.slow
def test_quality_table_file(rows, tmp_path):
    """ECSV written atomically; a run without events keeps its row, times masked."""
    empty = dict(rows[(21, False)], time_start=None, time_stop=None, n_shower_events=0)
    table = quality_table([rows[(22, True)], empty], QualityCuts())
    path = tmp_path / "quality.ecsv"
    write_quality_table(table, path)
    assert [p.name for p in tmp_path.iterdir()] == ["quality.ecsv"]
    read = Table.read(path)
    assert read.colnames == table.colnames
    assert list(read["tel_id"]) == [21, 22]
    assert read["time_start"].mask.tolist() == [True, False]
    assert read["rate_above_400pe_hz"].unit == u.Hz
    assert read["failed_cuts"][1] == "mc_rate_ratio" and not read["good"][1]
    assert read.meta["cuts"]["zenith_deg"] == [0.0, 70.0]
    write_quality_table(table[:1], path)  # a night remade replaces its table
    assert len(Table.read(path)) == 1


def test_surviving_pedestals_when_the_dl1_keeps_them(raw_2018, data_config, tmp_path):
    """sst1m-process keeping the pedestal events: none of the two has an image."""
    dl1 = tmp_path / "pedestals.dl1.h5"
    result = run_cli(
        "sst1m-process",
        "--input",
        raw_2018,
        "--output",
        dl1,
        "--config",
        data_config,
        "--EventTypeFilter.allowed_types=SUBARRAY",
        "--EventTypeFilter.allowed_types=SKY_PEDESTAL",
    )
    assert result.returncode == 0, result.stderr
    row = run_quality([dl1], 22)
    assert row["n_shower_events"] == 30 and row["n_pedestal_events"] == 2
    assert row["surviving_pedestal_fraction"] == 0.0
    # no pointing in this file: no zenith, hence no zenith-corrected rates
    assert np.isnan(row["zenith_deg"]) and np.isnan(row["rate_above_100pe_hz"])
    assert np.isnan(row["stereo_fraction"]) and row["stereo_method"] == ""
    table = quality_table([row], QualityCuts())
    assert table["good"][0] and table["failed_cuts"][0] == ""
    with pytest.raises(ValueError, match="expected telescope 21"):
        run_quality([dl1], 21)


@pytest.mark.slow
def test_expected_proton_rate(small_production):
    path = small_production["proton"]
    expected = expected_proton_rate(path)
    assert set(expected.rate_hz) == {21, 22}
    assert expected.zenith_deg == pytest.approx(20)
    assert expected.spectrum == "DAMPE_P_He"
    coarse = expected_proton_rate(path, intensity_edges_pe=[100, 400, 1600, 6400])
    for tel_id in (21, 22):
        assert (
            np.all(expected.rate_hz[tel_id] >= 0) and expected.rate_hz[tel_id].sum() > 0
        )
        assert (
            np.all(np.diff(coarse.rate_hz[tel_id]) < 0)
            and coarse.rate_hz[tel_id][-1] > 0
        )
        assert np.all(coarse.rate_error_hz[tel_id] < coarse.rate_hz[tel_id])

    # the normalisation, from the simulation card: rate = sum over the images of
    # flux(E) / simulated flux(E) for one second (power laws of index -2.62 and -2)
    card = read_card(path.with_name("proton.simcard.yaml"))
    index = card.spectral_index
    area = np.pi * (card.max_impact_m * u.m) ** 2
    solid_angle = 2 * np.pi * (1 - np.cos(np.deg2rad(card.viewcone_deg))) * u.sr
    e_min, e_max = card.energy_min_tev * u.TeV, card.energy_max_tev * u.TeV

    def simulated_flux(energy):
        integral = (
            (e_max ** (index + 1) - e_min ** (index + 1)) / (index + 1) / u.TeV**index
        )
        return (
            card.n_showers
            * (energy / u.TeV) ** index
            / integral
            / area
            / solid_angle
            / u.s
        )

    irfdoc = expected_proton_rate(path, spectrum="IRFDOC_PROTON")
    parameters = read_table(path, "/dl1/event/telescope/parameters/tel_001")
    showers = read_table(path, "/simulation/event/subarray/shower")
    energy = dict(zip(showers["event_id"], showers["true_energy"].quantity))
    imaged = np.isfinite(parameters["hillas_intensity"])
    energies = u.Quantity([energy[e] for e in parameters["event_id"][imaged]])
    rate = np.sum(IRFDOC_PROTON_SPECTRUM(energies) / simulated_flux(energies)).to_value(
        u.one
    )
    assert irfdoc.rate_hz[21].sum() == pytest.approx(rate, rel=1e-6)

    with pytest.raises(ValueError, match="true_shower_primary_id"):
        expected_proton_rate(small_production["gamma_diffuse"])


@pytest.mark.slow
def test_expected_rate_reuses_the_performance_weights(small_production, expected):
    # the weighting expected_proton_rate had before it reused event_weights: pyirf's
    # event weights against the simulated power law for one second
    path = small_production["proton"]
    with TableLoader(path) as loader:
        simulation = read_simulation_info(loader)
        events = loader.read_telescope_events_by_id(
            dl1_parameters=True, simulated=True, dl2=False, observation_info=False
        )
    simulated_per_s = PowerLaw.from_simulation(simulation, obstime=1 * u.s)
    for tel_id, data_tel_id in ((1, 21), (2, 22)):
        table = events[tel_id]
        energy = u.Quantity(table["true_energy"])
        events_per_s = calculate_event_weights(
            energy, PROTON_SPECTRA["DAMPE_P_He"], simulated_per_s
        )
        intensity = np.asarray(table["hillas_intensity"], dtype=float)
        imaged = np.isfinite(intensity)
        rate, _ = np.histogram(
            intensity[imaged], expected.intensity_edges_pe, weights=events_per_s[imaged]
        )
        assert rate.sum() > 0
        np.testing.assert_allclose(expected.rate_hz[data_tel_id], rate, rtol=1e-12)
        # the default observation time of event_weights (1 h) is unchanged
        per_hour = event_weights(energy, simulation, PROTON_SPECTRA["DAMPE_P_He"])
        np.testing.assert_allclose(per_hour, 3600 * events_per_s, rtol=1e-12)


@pytest.mark.slow
def test_time_series(simulated_stereo_run):
    path = simulated_stereo_run[21]
    times = np.sort(_trigger_times_ns(path))
    duration_s = (times[-1] - times[0]) / 1e9
    # a bin longer than the run: one bin, the mean rate
    centre, rate = event_rate([path], 21, bin_s=10)
    assert rate == pytest.approx([len(times) / duration_s])
    assert centre.tolist() == [times[0] + (times[-1] - times[0]) // 2]
    # bins of 0.1 s: the events of the bins kept, around the mean rate
    centre, rate = event_rate([path], 21, bin_s=0.1)
    assert len(rate) == int(duration_s / 0.1) + (duration_s % 0.1 >= 0.05)
    assert np.all(np.diff(centre) > 0) and np.all(rate > 0)
    assert np.mean(rate) == pytest.approx(len(times) / duration_s, rel=0.2)

    time_ns, level = nsb_levels([path], 21)
    windows = read_table(path, f"{PEDESTAL_GROUP}/tel_021")
    assert len(level) == len(windows) >= 1
    assert level[0] == pytest.approx(np.mean(windows["charge_mean"][0]))
    assert times[0] <= time_ns[0] <= times[-1]

    delta_t = stereo_delta_t_ns([simulated_stereo_run["stereo_dl1"]])
    pairs = read_table(simulated_stereo_run["stereo_dl1"], COINCIDENCE_TABLE)
    assert np.array_equal(delta_t, pairs["delta_t_ns"])
    assert np.all(np.abs(delta_t) <= physical_tolerance_ns())


def test_elapsed_time_leaves_out_pauses():
    second = 1_000_000_000
    times = np.array([0, 2, 5, 30, 31, 45], dtype=np.int64) * second
    # 2 + 3, then a pause of 25 s, 1, then a pause of 14 s
    assert elapsed_time_s(times[::-1]) == 6.0
    assert elapsed_time_s(times, max_gap_s=20) == 20.0
    assert elapsed_time_s(times[:1]) == 0.0
