"""Multi-file synthetic runs with White Rabbit times, SWAT numbers and TARGET."""

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import AltAz, EarthLocation, SkyCoord
from ctapipe.containers import CoordinateFrameType, EventType, PointingMode

from ctapipe_sst1m import SST1MEventSource
from ctapipe_sst1m.testing import SyntheticRun, write_synthetic_run
from ctapipe_sst1m.time import tai_ns


@pytest.fixture(scope="module")
def two_file_run(tmp_path_factory):
    directory = tmp_path_factory.mktemp("run")
    run = SyntheticRun(
        tel_id=22, n_events=60, n_files=2, white_rabbit_offset_ns=123_456, seed=3
    )
    paths, truth = write_synthetic_run(directory, run)
    return paths, truth


def test_two_file_run(two_file_run):
    paths, truth = two_file_run
    assert [p.name for p in paths] == [
        "SST1M2_20240304_0012_000.fits.fz",
        "SST1M2_20240304_0012_001.fits.fz",
    ]
    # the second file given first: events still come in time order
    with SST1MEventSource(paths[1], input_urls=[paths[0]]) as source:
        events = list(source)
        assert source.obs_ids == [202403040012]
        ob = source.observation_blocks[202403040012]
        sb = source.scheduling_blocks[202403040012]
        assert source.target.name == "Crab" and source.target.wobble == "W1"
    assert len(events) == 60
    event_ids = [e.index.event_id for e in events]
    assert event_ids == truth["array_event_number"].tolist()
    assert [e.sst1m[22].camera_event_number for e in events] == truth[
        "event_number"
    ].tolist()

    expected_types = [
        EventType.SKY_PEDESTAL if t == 8 else EventType.SUBARRAY
        for t in truth["camera_event_type"]
    ]
    assert [e.trigger.event_type for e in events] == expected_types

    # camera clock (TAI) and White Rabbit time, exact to the ns
    assert [e.sst1m[22].camera_clock_ns for e in events] == truth["clock_ns"].tolist()
    assert [e.sst1m[22].white_rabbit_time_ns for e in events] == truth[
        "white_rabbit_ns"
    ].tolist()
    for event, clock, wr in zip(events, truth["clock_ns"], truth["white_rabbit_ns"]):
        assert tai_ns(event.trigger.tel[22].time) == clock
        assert tai_ns(event.trigger.time) == wr

    assert ob.subarray_pointing_frame == CoordinateFrameType.ICRS
    assert ob.subarray_pointing_lon.to_value(u.deg) == pytest.approx(83.6331)
    assert ob.subarray_pointing_lat.to_value(u.deg) == pytest.approx(22.0145)
    assert sb.pointing_mode == PointingMode.TRACK
    location = EarthLocation(
        lon=14.782078 * u.deg, lat=49.913084 * u.deg, height=510 * u.m
    )
    crab = SkyCoord(ra=83.6331 * u.deg, dec=22.0145 * u.deg)
    expected = crab.transform_to(
        AltAz(obstime=events[-1].trigger.tel[22].time, location=location)
    )
    assert u.isclose(
        events[-1].monitoring.tel[22].pointing.altitude, expected.alt, atol=1e-5 * u.deg
    )


def test_all_subruns(two_file_run):
    paths, truth = two_file_run
    with SST1MEventSource(paths[0], all_subruns=True) as source:
        assert source.file_paths == paths
        assert len(list(source)) == 60


def test_configured_pointing_wins(two_file_run):
    paths, _ = two_file_run
    with SST1MEventSource(
        paths[0], pointing_ra_deg=10.0, pointing_dec_deg=45.0
    ) as source:
        ob = source.observation_blocks[source.obs_ids[0]]
        assert ob.subarray_pointing_lon.to_value(u.deg) == 10.0
        assert source.target.name == "Crab"


def test_no_swat_no_white_rabbit(tmp_path):
    run = SyntheticRun(
        n_events=12,
        first_array_event_number=None,
        white_rabbit_offset_ns=None,
        target=None,
    )
    paths, truth = write_synthetic_run(tmp_path, run)
    with SST1MEventSource(paths[0]) as source:
        events = list(source)
        assert source.target is None
        assert (
            source.scheduling_blocks[source.obs_ids[0]].pointing_mode
            == PointingMode.UNKNOWN
        )
    assert [e.index.event_id for e in events] == truth["event_number"].tolist()
    assert all(e.sst1m[21].white_rabbit_time_ns == -1 for e in events)
    # without White Rabbit, the array trigger time is the camera clock
    assert all(e.trigger.time == e.trigger.tel[21].time for e in events)
    assert all(np.isnan(e.monitoring.tel[21].pointing.altitude) for e in events)


def test_dark_target(tmp_path, caplog):
    paths, _ = write_synthetic_run(tmp_path, SyntheticRun(n_events=5, target="DARK"))
    with SST1MEventSource(paths[0]) as source:
        assert source.target is None
    assert "dark run without sky pointing" in caplog.text


def test_synthetic_charges(tmp_path):
    """Synthetic images calibrate back to their p.e.: pedestal events average 0 p.e."""
    run = SyntheticRun(n_events=20, pedestal_interval=2, dc_to_pe=26.8)
    paths, _ = write_synthetic_run(tmp_path, run)
    with SST1MEventSource(paths[0], max_events=20) as source:
        pedestals = [
            e for e in source if e.trigger.event_type == EventType.SKY_PEDESTAL
        ]
    mean_r1 = np.mean([e.r1.tel[21].waveform.mean() for e in pedestals])
    assert abs(mean_r1) < 0.01


def test_tai_time_round_trip():
    from ctapipe_sst1m.time import tai_time

    values = np.array(
        [0, 1, 1_709_590_000_015_922_228, 1_769_015_262_383_583_536], dtype=np.int64
    )
    assert tai_ns(tai_time(values)).tolist() == values.tolist()
    assert tai_time(0).isot == "1970-01-01T00:00:00.000"
