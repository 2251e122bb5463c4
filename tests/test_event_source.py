import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import AltAz, EarthLocation, SkyCoord
from ctapipe.containers import EventType
from ctapipe.image import ImageCleaner
from ctapipe.io import DataLevel, EventSource
from protozfits import File

from ctapipe_sst1m import SST1MEventSource
from ctapipe_sst1m.event_source import (
    camera_event_type_to_ctapipe,
    obs_id_from_file_name,
)


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
