import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import AltAz, EarthLocation, SkyCoord
from conftest import run_cli
from ctapipe.containers import EventType
from ctapipe.image import ImageCleaner
from ctapipe.io import DataLevel, EventSource, read_table
from protozfits import File

from ctapipe_sst1m import SST1MEventSource
from ctapipe_sst1m.event_source import (
    _in_chunks,
    camera_event_type_to_ctapipe,
    obs_id_from_file_name,
)
from ctapipe_sst1m.testing import SyntheticRun, write_synthetic_run
from ctapipe_sst1m.time import tai_ns, tai_time


def test_plugin_discovery(raw_2018):
    assert "SST1MEventSource" in EventSource.non_abstract_subclasses()
    with EventSource(raw_2018) as source:
        assert isinstance(source, SST1MEventSource)
    assert "ImageCleanerSST" in ImageCleaner.non_abstract_subclasses()


def test_is_compatible(raw_2018, raw_2017, other_zfits, tmp_path, shared_dir):
    assert SST1MEventSource.is_compatible(raw_2018)
    assert SST1MEventSource.is_compatible(raw_2017)
    assert not SST1MEventSource.is_compatible(other_zfits)
    assert not SST1MEventSource.is_compatible(
        shared_dir / "reference/instrument/sst1m_array.h5"
    )
    # the file name does not matter
    renamed = tmp_path / "SST1M1_20240304_0012.fits.fz"
    renamed.write_bytes(other_zfits.read_bytes())
    assert not SST1MEventSource.is_compatible(renamed)
    empty = tmp_path / "empty.fits.fz"
    empty.touch()
    with pytest.raises(ValueError, match="empty.fits.fz: empty file"):
        SST1MEventSource.is_compatible(empty)


def test_read_2018(raw_2018):
    with File(str(raw_2018)) as f:
        raw = [
            (
                e.eventNumber,
                e.event_type,
                e.local_time_sec,
                e.local_time_nanosec,
                e.hiGain.waveforms.samples.reshape(1296, 50).copy(),
                e.hiGain.waveforms.pixelsIndices.copy(),
                e.hiGain.waveforms.baselines.copy(),
            )
            for e in f.Events
        ]

    with SST1MEventSource(raw_2018) as source:
        assert source.datalevels == (DataLevel.R0, DataLevel.R1)
        assert not source.is_simulation
        assert list(source.subarray.tel) == [21, 22]
        events = list(source)
        assert source.event_counts == {"SUBARRAY": 30, "SKY_PEDESTAL": 2}

    assert len(events) == 32
    for event, (number, etype, sec, nsec, samples, indices, baselines) in zip(
        events, raw
    ):
        assert event.index.event_id == number
        assert event.trigger.tels_with_trigger.tolist() == [22]
        expected = EventType.SKY_PEDESTAL if etype == 8 else EventType.SUBARRAY
        assert event.trigger.event_type == expected
        assert event.sst1m[22].camera_event_number == number
        # DigiCam clock of 2018 runs on UTC: 37 s leap offset to TAI
        assert event.sst1m[22].camera_clock_ns == (sec + 37) * 10**9 + nsec
        r0 = event.r0.tel[22].waveform
        assert r0.shape == (1, 1296, 50)
        # pixel with software id p sits at the position where pixelsIndices == p
        for pixel in (0, 17, 1295):
            assert np.array_equal(
                r0[0, pixel], samples[np.flatnonzero(indices == pixel)[0]]
            )
        r1 = event.r1.tel[22]
        assert r1.waveform.shape == (1, 1296, 50) and r1.waveform.dtype == np.float32
        assert r1.pixel_status.dtype == np.uint8 and r1.pixel_status.shape == (1296,)
        assert r1.selected_gain_channel.dtype == np.int8
        outliers = event.monitoring.tel[22].camera.coefficients.outlier_mask
        # pixel 1113 is dead (pedestal waveform std 1 ADC): interpolated
        assert outliers.shape == (1, 1296) and np.flatnonzero(outliers[0]).tolist() == [
            1113
        ]
        # baselines are 16 x ADC in 2018: R1 baseline-subtracted, default dc_to_pe 26.8
        pixel = 100
        position = np.flatnonzero(indices == pixel)[0]
        expected_r1 = (samples[position] - baselines[position] / 16) / 26.80
        assert np.allclose(r1.waveform[0, pixel], expected_r1, atol=1e-4)
    pedestal = events[4]
    assert pedestal.trigger.event_type == EventType.SKY_PEDESTAL
    # interleaved pedestals are baseline subtracted: mean close to 0 p.e.
    assert abs(np.mean(pedestal.r1.tel[22].waveform)) < 0.2


def test_read_2017_camera(raw_2017):
    with SST1MEventSource(raw_2017, max_events=5) as source:
        events = list(source)
    assert len(events) == 5
    # the 2017 camera reports telescopeID 1: it is telescope 21
    assert events[0].trigger.tels_with_trigger.tolist() == [21]
    r1 = events[0].r1.tel[21].waveform
    # baselines stored as plain ADC in 2017: the median R1 sample is close to 0
    assert abs(np.median(r1)) < 0.5


def test_calibration_file(raw_2018, shared_dir):
    path = (
        shared_dir / "reference/calibration/averaged_calib_param_v2_2023_2024_tel2.h5"
    )
    with SST1MEventSource(raw_2018, calibration_path=path, max_events=1) as source:
        event = next(iter(source))
    outliers = event.monitoring.tel[22].camera.coefficients.outlier_mask[0]
    # 21 badly calibrated pixels and the dead pixel 1113
    assert np.count_nonzero(outliers) == 22 and outliers[1113]
    badly_calibrated = outliers.copy()
    badly_calibrated[1113] = False
    assert np.all(event.r1.tel[22].pixel_status[badly_calibrated] == 0)


def test_configured_pointing(raw_2018):
    with SST1MEventSource(
        raw_2018, pointing_ra_deg=83.6331, pointing_dec_deg=22.0145, max_events=3
    ) as source:
        events = list(source)
        ob = source.observation_blocks[source.obs_ids[0]]
    assert ob.subarray_pointing_lon.to_value("deg") == pytest.approx(83.6331)
    location = EarthLocation(
        lon=14.782078 * u.deg, lat=49.913084 * u.deg, height=510 * u.m
    )
    for event in events:
        expected = SkyCoord(ra=83.6331 * u.deg, dec=22.0145 * u.deg).transform_to(
            AltAz(obstime=event.trigger.tel[22].time, location=location)
        )
        pointing = event.monitoring.tel[22].pointing
        assert u.isclose(pointing.altitude, expected.alt, atol=1e-5 * u.deg)
        assert u.isclose(pointing.azimuth, expected.az, atol=1e-5 * u.deg)
        assert event.monitoring.pointing.array_ra.to_value(u.deg) == pytest.approx(
            83.6331
        )


@pytest.mark.parametrize(
    "camera_type, expected",
    [
        (1, EventType.SUBARRAY),
        (2, EventType.SUBARRAY),
        (4, EventType.SUBARRAY),
        (8, EventType.SKY_PEDESTAL),
        (9, EventType.SUBARRAY),
        (0x10, EventType.UNKNOWN),
        (0, EventType.UNKNOWN),
        (0x20001, EventType.SUBARRAY),
    ],
)
def test_event_types(camera_type, expected):
    assert camera_event_type_to_ctapipe(camera_type) == expected


def test_obs_id_from_name():
    assert obs_id_from_file_name("/a/SST1M1_20240304_0012.fits.fz") == 202403040012
    assert obs_id_from_file_name("SST1M2_20240304_0012_003.fits.fz") == 202403040012
    assert obs_id_from_file_name("example_SST1M_20180822.fits.fz") is None


def test_obs_id_fallback(raw_2018):
    with SST1MEventSource(raw_2018) as source:
        # night of 2018-08-22 (first event 2018-08-23T00:00:01 UTC)
        assert source.obs_ids == [201808220000]
    with SST1MEventSource(raw_2018, obs_id=42) as source:
        assert source.obs_ids == [42]


def test_in_chunks_delivers_events_before_an_error():
    def events():
        yield from range(5)
        raise OSError("corrupt event 5")

    chunks = _in_chunks(events(), 4)
    assert next(chunks) == [0, 1, 2, 3]
    # the events read before the failure, then the failure
    assert next(chunks) == [4]
    with pytest.raises(OSError, match="corrupt event 5"):
        next(chunks)
    assert list(_in_chunks(iter(range(8)), 4)) == [[0, 1, 2, 3], [4, 5, 6, 7]]


def test_times_and_pointing_exact(tmp_path, data_config):
    """
    Trigger times are the raw White Rabbit and camera-clock nanoseconds, exactly, and
    the pointing is astropy's Alt/Az at the camera time, in the events of the source
    (set per chunk of events) and in the DL1 file of sst1m-process.
    """
    # two files, 10 % pedestals, a White Rabbit clock 1234 ns ahead of the camera, a
    # low rate: the run spans ~15 min, across a 600 s block of the pointing grid
    run = SyntheticRun(
        n_events=203, n_files=2, rate_hz=0.25, white_rabbit_offset_ns=1234, seed=4
    )
    paths, truth = write_synthetic_run(tmp_path, run)
    assert truth["clock_ns"][-1] - truth["clock_ns"][0] > 700 * 10**9
    location = EarthLocation(
        lon=14.782924 * u.deg, lat=49.911800 * u.deg, height=510 * u.m
    )
    crab = SkyCoord(ra=83.6331 * u.deg, dec=22.0145 * u.deg)

    def astropy_altaz(time_ns):
        return crab.transform_to(AltAz(obstime=tai_time(time_ns), location=location))

    def assert_within_arcsec(alt, az, expected):
        assert np.all(np.abs(alt - expected.alt) < 1 * u.arcsec)
        az_difference = (az - expected.az + 180 * u.deg) % (360 * u.deg) - 180 * u.deg
        assert np.all(np.abs(az_difference) < 1 * u.arcsec)

    with SST1MEventSource(paths[0], input_urls=paths[1:]) as source:
        events = list(source)
    assert len(events) == run.n_events
    assert [e.count for e in events] == list(range(run.n_events))
    camera_ns = np.array([tai_ns(e.trigger.tel[21].time) for e in events])
    assert np.array_equal(camera_ns, truth["clock_ns"])
    assert np.array_equal(
        [tai_ns(e.r1.tel[21].event_time) for e in events], truth["clock_ns"]
    )
    assert np.array_equal(
        [tai_ns(e.trigger.time) for e in events], truth["white_rabbit_ns"]
    )
    expected = astropy_altaz(truth["clock_ns"])
    tel_pointing = [e.monitoring.tel[21].pointing for e in events]
    assert_within_arcsec(
        u.Quantity([p.altitude for p in tel_pointing]),
        u.Quantity([p.azimuth for p in tel_pointing]),
        expected,
    )
    for event, p in zip(events, tel_pointing):
        array = event.monitoring.pointing
        assert array.array_altitude == p.altitude and array.array_azimuth == p.azimuth
        assert u.isclose(array.array_ra, 83.6331 * u.deg)
        assert u.isclose(array.array_dec, 22.0145 * u.deg)

    output = tmp_path / "dl1.h5"
    result = run_cli(
        "sst1m-process",
        f"--input={paths[0]}",
        "--SST1MEventSource.all_subruns=True",
        f"--output={output}",
        f"--config={data_config}",
    )
    assert result.returncode == 0, result.stderr
    # shower events only (EventTypeFilter), keyed by their SWAT array event number
    shower = truth["camera_event_type"] != 8
    by_id = {n: i for i, n in enumerate(truth["array_event_number"])}
    subarray = read_table(output, "/dl1/event/subarray/trigger")
    rows = [by_id[n] for n in subarray["event_id"]]
    assert rows == list(np.flatnonzero(shower))
    assert np.array_equal(tai_ns(subarray["time"]), truth["white_rabbit_ns"][rows])
    telescope = read_table(output, "/dl1/event/telescope/trigger")
    assert np.array_equal(tai_ns(telescope["time"]), truth["clock_ns"][rows])
    pointing = read_table(output, "/dl0/monitoring/telescope/pointing/tel_021")
    assert np.array_equal(tai_ns(pointing["time"]), truth["clock_ns"][rows])
    assert_within_arcsec(
        pointing["altitude"].quantity,
        pointing["azimuth"].quantity,
        astropy_altaz(truth["clock_ns"][rows]),
    )
    parameters = read_table(output, "/dl1/event/telescope/parameters/tel_021")
    assert np.array_equal(parameters["event_id"], subarray["event_id"])


def test_files_of_a_run_are_merged_in_time_order_opening_few_at_once():
    """
    _merge_in_time_order gives heapq.merge's order (ties in file order) and opens a file
    only when the merge reaches its first event: consecutive files, at most two open.
    """
    import heapq

    from ctapipe_sst1m.event_source import _event_key, _merge_in_time_order

    rng = np.random.default_rng(5)

    def events(times):
        return [{"clock_sec": int(t // 10), "clock_nsec": int(t % 10)} for t in times]

    def check(files):
        open_now, most_open = set(), [0]

        def open_events(name):
            open_now.add(name)
            most_open[0] = max(most_open[0], len(open_now))
            yield from files[name]
            open_now.discard(name)

        merged = list(
            _merge_in_time_order(
                [(_event_key(events_[0]), name) for name, events_ in files.items()],
                open_events,
            )
        )
        assert merged == list(heapq.merge(*files.values(), key=_event_key))
        return most_open[0]

    # consecutive files (a camera's subruns), with a shared time at each boundary
    bounds = np.cumsum(rng.integers(50, 100, 15))
    consecutive = {
        f"file{k}": events(np.sort(rng.integers(lo, hi + 1, 40)))
        for k, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:]))
    }
    assert check(consecutive) <= 2
    # overlapping files are still merged in time order (then all may be open)
    overlapping = {
        f"file{k}": events(np.sort(rng.integers(0, 500, 30))) for k in range(5)
    }
    check(overlapping)
