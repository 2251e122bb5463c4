"""Stock ctapipe-process on SST-1M raw data, driven through its command line."""

import numpy as np
import pytest
from conftest import run_cli, run_subprocess
from ctapipe.io import TableLoader, read_table


def process(input_path, output, config, *extra):
    return run_cli(
        "ctapipe-process",
        "--input",
        input_path,
        "--output",
        output,
        "--config",
        config,
        *extra,
    )


@pytest.fixture(scope="module")
def dl1_2018(raw_2018, data_config, tmp_path_factory):
    """The stock ``ctapipe-process`` command line, finding the plugin through its entry point."""
    output = tmp_path_factory.mktemp("dl1") / "x.h5"
    result = run_subprocess(
        "ctapipe-process",
        "--input",
        raw_2018,
        "--output",
        output,
        "--config",
        data_config,
    )
    assert result.returncode == 0, result.stderr
    return output


def test_2018_shower_events(dl1_2018):
    parameters = read_table(dl1_2018, "/dl1/event/telescope/parameters/tel_022")
    trigger = read_table(dl1_2018, "/dl1/event/subarray/trigger")
    # 32 events, of which 2 interleaved pedestals (event numbers 1027892 and 1027909)
    assert len(parameters) == 30 and len(trigger) == 30
    assert (
        1027892 not in parameters["event_id"] and 1027909 not in parameters["event_id"]
    )
    assert np.all(trigger["event_type"] == 32)
    images = read_table(dl1_2018, "/dl1/event/telescope/images/tel_022")
    # high night-sky background: a few p.e. per pixel on average, faint showers
    assert 1 < np.mean(images["image"]) < 6
    assert np.all(np.isfinite(images["peak_time"]))
    # nanosecond times reach the file (quarter-ns TAI high-resolution columns)
    tel_trigger = read_table(dl1_2018, "/dl1/event/telescope/trigger")
    assert np.all(np.diff(tel_trigger["time"].unix_tai) > 0)


def test_table_loader(dl1_2018):
    with TableLoader(dl1_2018) as loader:
        events = loader.read_telescope_events([22], dl1_parameters=True, pointing=False)
    assert len(events) == 30


def test_2017_hillas_parameters(raw_2017, data_config, tmp_path):
    output = tmp_path / "dl1_2017.h5"
    result = process(raw_2017, output, data_config)
    assert result.returncode == 0, result.stderr
    parameters = read_table(output, "/dl1/event/telescope/parameters/tel_021")
    # 100 events of which 8 interleaved pedestals
    assert len(parameters) == 92
    # the voltage-drop correction of sst1m.yaml doubles the charges (the SiPM gain is
    # halved at this NSB): images keep pixels in 89 of the 92 events, as in the
    # reference's DL1 (docs/nsb-calibration.md); their parameters are plausible
    kept = parameters[parameters["morphology_n_pixels"] > 0]
    assert len(kept) == 89
    p = parameters[parameters["morphology_n_pixels"] >= 3]
    assert 70 <= len(p) <= 89
    assert np.all(p["hillas_intensity"] > 20)
    assert np.all(p["hillas_width"] <= p["hillas_length"])
    # telescope frame: the 0.45 m camera radius is 4.5 deg
    assert np.all(p["hillas_length"].quantity.to_value("deg") < 4.5)
    assert np.all(p["hillas_r"].quantity.to_value("deg") < 5.5)


def test_options_on_command_line(raw_2018, data_config, shared_dir, tmp_path):
    calibration = (
        shared_dir / "reference/calibration/averaged_calib_param_v2_2023_2024_tel2.h5"
    )
    output = tmp_path / "x.h5"
    result = process(
        raw_2018,
        output,
        data_config,
        f"--SST1MEventSource.calibration_path={calibration}",
        "--SST1MEventSource.pointing_ra_deg=83.6331",
        "--SST1MEventSource.pointing_dec_deg=22.0145",
        "--SST1MEventSource.obs_id=201808220001",
    )
    assert result.returncode == 0, result.stderr
    ob = read_table(output, "/configuration/observation/observation_block")
    assert ob["obs_id"][0] == 201808220001
    assert ob["subarray_pointing_lon"].quantity[0].to_value("deg") == pytest.approx(
        83.6331
    )


def test_other_fits_file_refused(other_zfits, data_config, tmp_path):
    output = tmp_path / "out.h5"
    result = process(other_zfits, output, data_config)
    assert result.returncode != 0
    assert other_zfits.name in result.stderr
    assert not output.exists()


def test_empty_file_refused(data_config, tmp_path):
    empty = tmp_path / "SST1M1_20240304_0001.fits.fz"
    empty.touch()
    output = tmp_path / "out.h5"
    result = process(empty, output, data_config)
    assert result.returncode != 0
    assert f"{empty}: empty file" in result.stderr
    assert not output.exists()


def test_truncated_file_refused(raw_2018, data_config, tmp_path):
    truncated = tmp_path / "SST1M2_20180822_0001.fits.fz"
    truncated.write_bytes(raw_2018.read_bytes()[:500_000])
    output = tmp_path / "out.h5"
    result = process(truncated, output, data_config)
    assert result.returncode != 0
    assert f"{truncated}: truncated file" in result.stderr
    assert not output.exists()


def test_quickstart(tmp_path):
    result = run_cli("sst1m-quickstart", tmp_path / "analysis")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "analysis/sst1m.yaml").is_file()
    assert (tmp_path / "analysis/sst1m_mc.yaml").is_file()
    assert (tmp_path / "analysis/sst1m_models.yaml").is_file()


def test_sst1m_process_writes_pointing(tmp_path, data_config):
    from ctapipe_sst1m.testing import SyntheticRun, write_synthetic_run

    paths, truth = write_synthetic_run(
        tmp_path, SyntheticRun(tel_id=21, n_events=40, seed=5)
    )
    output = tmp_path / "dl1.h5"
    result = run_cli(
        "sst1m-process",
        "--input",
        paths[0],
        "--output",
        output,
        "--config",
        data_config,
    )
    assert result.returncode == 0, result.stderr
    assert not list(tmp_path.glob("*.part"))
    with TableLoader(output) as loader:
        events = loader.read_telescope_events([21], dl1_parameters=True, pointing=True)
    n_showers = np.count_nonzero(truth["camera_event_type"] != 8)
    assert len(events) == n_showers
    assert np.all(np.isfinite(events["telescope_pointing_altitude"]))
    ob = read_table(output, "/configuration/observation/observation_block")
    assert ob["obs_id"][0] == 202403040012
    summary = read_table(output, "/dl1/service/sst1m_processing")
    assert summary["n_pedestal_events"][0] == np.count_nonzero(
        truth["camera_event_type"] == 8
    )
    assert summary["n_shower_events"][0] == n_showers
    assert summary["swat_event_ids"][0] and summary["camera_clock_scale"][0] == "TAI"
    assert summary["n_interpolated_pixels"][0] == 0
    import tables

    with tables.open_file(output) as h5:
        attributes = h5.root._v_attrs
        assert (
            attributes["CONTEXT SST1M TEL021 N_PEDESTAL_EVENTS"]
            == summary["n_pedestal_events"][0]
        )
        assert attributes["CONTEXT SST1M TEL021 TARGET"] == "Crab"


def test_sst1m_process_no_partial_output(tmp_path, data_config):
    """Data corrupt in the last tile: refused before any output (no .part file either).

    The damage is found by the checksum before decoding (tests/test_bad_input_raw.py);
    a failure in the middle of the processing is tested with a full disk
    (tests/test_bad_input_disk.py)."""
    from ctapipe_sst1m.testing import SyntheticRun, write_synthetic_run

    paths, _ = write_synthetic_run(tmp_path, SyntheticRun(n_events=250, seed=6))
    data = bytearray(paths[0].read_bytes())
    end = len(data) - 2880 * 50
    data[end - 200_000 : end] = bytes(range(256)) * (200_000 // 256) + bytes(
        200_000 % 256
    )
    paths[0].write_bytes(bytes(data))
    output = tmp_path / "dl1.h5"
    # in its own process: corrupt data can crash protozfits' decoder
    result = run_subprocess(
        "sst1m-process",
        "--input",
        paths[0],
        "--output",
        output,
        "--config",
        data_config,
    )
    assert result.returncode != 0
    assert str(paths[0]) in result.stderr
    assert not output.exists()
    assert not list(tmp_path.glob("*.part"))


def test_reclean_from_first_pass(tmp_path, data_config):
    """Second pass cleans with the pedestal statistics of the first pass's time windows."""
    from ctapipe_sst1m.testing import SyntheticRun, write_synthetic_run

    paths, truth = write_synthetic_run(
        tmp_path,
        SyntheticRun(tel_id=22, n_events=240, pedestal_interval=2, rate_hz=200, seed=8),
    )
    windows = [
        "--NsbCalibrator.pedestal_time_window_s=0.3",
        "--NsbCalibrator.min_number_pedestals=20",
    ]
    first = tmp_path / "first.h5"
    result = run_cli(
        "sst1m-process", "-i", paths[0], "-o", first, "--config", data_config, *windows
    )
    assert result.returncode == 0, result.stderr
    pedestal_windows = read_table(first, "/dl1/monitoring/telescope/pedestal/tel_022")
    assert len(pedestal_windows) >= 3
    assert pedestal_windows["n_events"].sum() == 120
    # window times are TAI, on the scale of the event times
    trigger = read_table(first, "/dl1/event/telescope/trigger")
    assert (
        trigger["time"][0].tai.unix_tai - pedestal_windows["time_start"][0].tai.unix_tai
        < 1.0
    )

    second = tmp_path / "second.h5"
    result = run_cli(
        "sst1m-process",
        "-i",
        paths[0],
        "-o",
        second,
        "--config",
        data_config,
        *windows,
        "--reclean",
        first,
    )
    assert result.returncode == 0, result.stderr
    nsb = read_table(second, "/dl1/event/telescope/nsb/tel_022")
    kept = pedestal_windows[pedestal_windows["n_events"] > 20]
    window_levels = {round(float(np.mean(row["charge_mean"])), 9) for row in kept}
    showers = nsb[nsb["event_type"] == 32]
    assert {
        round(float(level), 9) for level in showers["nsb_level_pe"]
    } <= window_levels
    assert len(read_table(second, "/dl1/event/telescope/parameters/tel_022")) == 120
    histogram = read_table(
        second, "/dl1/monitoring/telescope/pixel_charge_histogram/tel_022"
    )
    assert histogram["count"].sum() <= 120 * 1296


def test_stock_merge_of_two_runs(tmp_path, data_config):
    """ctapipe-merge joins the DL1 of two runs of sst1m-process; TableLoader reads both."""
    from ctapipe_sst1m.testing import SyntheticRun, write_synthetic_run

    outputs, n_showers = [], 0
    for run in (12, 13):
        paths, truth = write_synthetic_run(
            tmp_path / f"run{run}", SyntheticRun(run=run, n_events=30, seed=run)
        )
        outputs.append(tmp_path / f"run{run}.dl1.h5")
        result = run_cli(
            "sst1m-process", "-i", paths[0], "-o", outputs[-1], "--config", data_config
        )
        assert result.returncode == 0, result.stderr
        n_showers += np.count_nonzero(truth["camera_event_type"] != 8)
    merged = tmp_path / "merged.dl1.h5"
    result = run_cli("ctapipe-merge", "--output", merged, *outputs)
    assert result.returncode == 0, result.stderr
    with TableLoader(merged) as loader:
        events = loader.read_telescope_events([21], dl1_parameters=True, pointing=True)
    assert len(events) == n_showers
    assert set(events["obs_id"]) == {202403040012, 202403040013}
    # the pointing time series of sst1m-process is merged too
    assert np.all(np.isfinite(events["telescope_pointing_altitude"]))


@pytest.mark.parametrize(
    "option",
    [
        "--SST1MEventSource.pointing_dec_deg=-100",
        "--SST1MEventSource.pointing_ra_deg=400",
        "--SST1MEventSource.obs_id=-1",
    ],
)
def test_out_of_range_option_refused(raw_2017_10, data_config, tmp_path, option):
    """An option outside its range: exit status 2, the option named, no output."""
    output = tmp_path / "out.h5"
    result = process(raw_2017_10, output, data_config, option)
    assert result.returncode == 2
    name = option.split(".")[1].split("=")[0]
    assert f"'{name}' trait of a SST1MEventSource" in result.stderr
    assert not output.exists()
