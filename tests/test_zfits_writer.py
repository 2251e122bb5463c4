"""Round trips of `DigiCamZFitsWriter` files through protozfits and astropy."""

import tracemalloc
import warnings
from importlib.resources import files

import numpy as np
import pytest
from astropy.io import fits
from protozfits import File

from ctapipe_sst1m.io.zfits_writer import DigiCamZFitsWriter

RESOURCES = files("protozfits") / "tests" / "resources"
REAL_FILE = RESOURCES / "example_SST1M_20180822.fits.fz"
N_PIXELS = 1296
N_SAMPLES = 50
START_SEC = 1_700_000_000
TARGET = "Crab_W1,83.6331,22.0145"


def synthetic_events(n_events, seed=0, optional=True):
    """Return ``write_event`` keyword arguments of random events at ~165 Hz.

    Every 10th event is a pedestal (``event_type`` 8); odd events carry explicit
    flags and trigger traces, even ones use the defaults; samples alternate
    between 2-D and flat arrays. With ``optional``, SWAT numbers, White Rabbit
    times and the ``eventType`` enum are given.
    """
    rng = np.random.default_rng(seed)
    pixel_indices = rng.permutation(N_PIXELS).astype(np.uint16)
    events = []
    for i in range(n_events):
        time_ns = i * 6_000_004
        sec, nanosec = START_SEC + time_ns // 10**9, time_ns % 10**9
        is_pedestal = i % 10 == 0
        samples = rng.integers(-(2**15), 2**15, (N_PIXELS, N_SAMPLES), dtype=np.int16)
        event = dict(
            telescope_id=21,
            event_number=1000 + i,
            samples=samples if i % 2 else samples.ravel(),
            pixel_indices=pixel_indices,
            baselines=rng.integers(-(2**15), 2**15, N_PIXELS, dtype=np.int16),
            local_time_sec=sec,
            local_time_nanosec=nanosec,
            event_type=8 if is_pedestal else 1,
        )
        if i % 2:
            event.update(
                pixels_flags=rng.integers(0, 2, N_PIXELS, dtype=np.uint16),
                trigger_input_traces=rng.integers(0, 256, 28800, dtype=np.uint8),
                trigger_output_patch7=rng.integers(0, 256, 2700, dtype=np.uint8),
                trigger_output_patch19=rng.integers(0, 256, 2700, dtype=np.uint8),
            )
        if optional:
            event.update(
                array_event_number=29_901_023 + i,
                trig_time_sec=sec,
                trig_time_nanosec=nanosec + 37,
                array_event_type=2 if is_pedestal else 1,
            )
        events.append(event)
    return events


def write_file(path, events, **options):
    """Write ``events`` (``write_event`` keyword arguments) to ``path``."""
    with DigiCamZFitsWriter(path, **options) as writer:
        for event in events:
            writer.write_event(**event)


def read_events(path):
    """Read all events of ``path`` with protozfits."""
    with File(str(path)) as zfits:
        return list(zfits.Events)


def read_header(path):
    """Return the ``Events`` header, verifying the checksums without warnings."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with fits.open(path, checksum=True) as hdul:
            assert [hdu.name for hdu in hdul] == ["PRIMARY", "Events"]
            for hdu in hdul:
                assert hdu.verify_checksum() == 1
                assert hdu.verify_datasum() == 1
            return hdul["Events"].header.copy()


def assert_array(actual, expected, dtype):
    """Assert ``actual`` is an array of ``dtype`` equal to ``expected``."""
    assert isinstance(actual, np.ndarray)
    assert actual.dtype == dtype
    np.testing.assert_array_equal(actual, np.ravel(expected))


def assert_same(actual, expected, where="event"):
    """Assert two protozfits events (nested named tuples) are identical."""
    if hasattr(expected, "_fields"):
        assert actual._fields == expected._fields, where
        for name in expected._fields:
            assert_same(
                getattr(actual, name), getattr(expected, name), f"{where}.{name}"
            )
    elif isinstance(expected, np.ndarray):
        assert isinstance(actual, np.ndarray), where
        assert actual.dtype == expected.dtype, where
        np.testing.assert_array_equal(actual, expected, err_msg=where)
    else:
        assert actual == expected, where


def written_kwargs(event):
    """Return the ``write_event`` keyword arguments reproducing a protozfits event."""
    waveforms = event.hiGain.waveforms
    return dict(
        telescope_id=event.telescopeID,
        event_number=event.eventNumber,
        samples=waveforms.samples,
        pixel_indices=waveforms.pixelsIndices,
        baselines=waveforms.baselines,
        local_time_sec=event.local_time_sec,
        local_time_nanosec=event.local_time_nanosec,
        event_type=event.event_type,
        pixels_flags=event.pixels_flags,
        trigger_input_traces=event.trigger_input_traces,
        trigger_output_patch7=event.trigger_output_patch7,
        trigger_output_patch19=event.trigger_output_patch19,
        trigger_output_muon=event.trigger_output_muon,
    )


def test_round_trip(tmp_path):
    events = synthetic_events(250)
    path = tmp_path / "run.fits.fz"
    write_file(path, events, header={"TARGET": TARGET}, rows_per_tile=100)

    read = read_events(path)
    assert len(read) == len(events)
    for event, written in zip(read, events):
        waveforms = event.hiGain.waveforms
        assert event.telescopeID == written["telescope_id"]
        assert event.eventNumber == written["event_number"]
        assert event.arrayEvtNum == written["array_event_number"]
        assert event.eventType == written["array_event_type"]
        assert event.local_time_sec == written["local_time_sec"]
        assert event.local_time_nanosec == written["local_time_nanosec"]
        assert event.event_type == written["event_type"]
        assert event.trig.timeSec == written["trig_time_sec"]
        assert event.trig.timeNanoSec == written["trig_time_nanosec"]
        assert_array(waveforms.samples, written["samples"], np.int16)
        assert_array(waveforms.pixelsIndices, written["pixel_indices"], np.uint16)
        assert_array(waveforms.baselines, written["baselines"], np.int16)
        flags = written.get("pixels_flags", np.ones(N_PIXELS))
        assert_array(event.pixels_flags, flags, np.uint16)
        inputs = written.get("trigger_input_traces", np.zeros(28800))
        assert_array(event.trigger_input_traces, inputs, np.uint8)
        for name in ("trigger_output_patch7", "trigger_output_patch19"):
            outputs = written.get(name, np.zeros(2700))
            assert_array(getattr(event, name), outputs, np.uint8)

    header = read_header(path)
    last = events[-1]
    assert header["TARGET"] == TARGET
    assert header["PBFHEAD"] == "DataModel.CameraEvent"
    assert header["ORIGIN"] == "CTA"
    assert header["TIMESYS"] == "UTC"
    assert header["ZTABLE"] is True
    assert header["ZNAXIS2"] == 250
    assert header["ZTILELEN"] == 100
    assert header["NAXIS2"] == 3
    assert header["NTRIGEXT"] == 25
    assert header["NTRIGINT"] == 225
    assert header["NOTHERTG"] == 0
    assert header["TSTARTS"] == START_SEC
    assert header["TSTARTNS"] == 0
    assert header["TSTOPS"] == last["local_time_sec"]
    assert header["TSTOPNS"] == last["local_time_nanosec"]
    assert header["DATE"] == "2023-11-14T22:13:21"


def test_optional_columns_absent(tmp_path):
    path = tmp_path / "old_style.fits.fz"
    write_file(path, synthetic_events(3, optional=False))

    for event in read_events(path) + read_events(REAL_FILE)[:1]:
        assert event.arrayEvtNum is None
        assert event.trig is None
        assert event.eventType is None
    event = read_events(path)[0]
    assert event.trigger_output_muon is None
    assert_array(event.pixels_flags, np.ones(N_PIXELS), np.uint16)
    assert_array(event.trigger_output_patch7, np.zeros(2700), np.uint8)
    header = read_header(path)
    assert "TARGET" not in header
    assert "arrayEvtNum" not in header.values()
    assert "trig_timeSec" not in header.values()


def test_rewrite_real_file(tmp_path):
    real_events = read_events(REAL_FILE)
    path = tmp_path / "copy.fits.fz"
    write_file(path, [written_kwargs(event) for event in real_events])

    rewritten = read_events(path)
    assert len(rewritten) == len(real_events) == 32
    for index, (actual, expected) in enumerate(zip(rewritten, real_events)):
        assert_same(actual, expected, f"event {index}")

    header = read_header(path)
    real_header = fits.getheader(REAL_FILE, "Events")
    column_keywords = ("TFORM", "TTYPE", "TZERO", "ZFORM", "ZCTYP", "TPBID")
    for keyword in real_header:
        if keyword.startswith(column_keywords) or keyword.endswith(("RATE", "TRIG")):
            assert header[keyword] == real_header[keyword], keyword
    for keyword in ("TFIELDS", "ZNAXIS1", "ZNAXIS2", "TSTARTS", "TSTARTNS", "TSTOPS"):
        assert header[keyword] == real_header[keyword], keyword
    assert header["DATE"] == real_header["DATE"]
    assert header["EXPOSURE"] == pytest.approx(real_header["EXPOSURE"], abs=1e-8)
    with open(path, "rb") as copy, open(REAL_FILE, "rb") as real:
        assert copy.read(2880) == real.read(2880)


def test_identical_input_gives_identical_bytes(tmp_path):
    events = synthetic_events(30)
    first, second = tmp_path / "a.fits.fz", tmp_path / "b.fits.fz"
    write_file(first, events, header={"TARGET": TARGET}, rows_per_tile=7)
    write_file(second, events, header={"TARGET": TARGET}, rows_per_tile=7)
    assert first.read_bytes() == second.read_bytes()


def test_exception_leaves_no_file(tmp_path):
    path = tmp_path / "crashed.fits.fz"
    with pytest.raises(RuntimeError, match="camera server crashed"):
        with DigiCamZFitsWriter(path, rows_per_tile=2) as writer:
            for event in synthetic_events(5):
                writer.write_event(**event)
            raise RuntimeError("camera server crashed")
    assert list(tmp_path.iterdir()) == []


def test_raw_compression_round_trip(tmp_path):
    events = synthetic_events(5)
    path = tmp_path / "raw.fits.fz"
    write_file(path, events, compression="raw", rows_per_tile=2)
    for event, written in zip(read_events(path), events):
        assert_array(event.hiGain.waveforms.samples, written["samples"], np.int16)
        assert event.arrayEvtNum == written["array_event_number"]


def test_optional_columns_must_stay_consistent(tmp_path):
    first, second = synthetic_events(2)
    del second["trig_time_sec"]
    with pytest.raises(ValueError, match="trig_timeSec"):
        with DigiCamZFitsWriter(tmp_path / "bad.fits.fz") as writer:
            writer.write_event(**first)
            writer.write_event(**second)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "change",
    [
        {"baselines": np.zeros(N_PIXELS - 1, dtype=np.int16)},
        {"samples": np.zeros(N_PIXELS * N_SAMPLES + 1, dtype=np.int16)},
        {"samples": np.zeros(N_PIXELS * N_SAMPLES)},
        {"event_number": -1},
        {"local_time_sec": 1.5},
        {"pixel_indices": np.full(N_PIXELS, -1)},
    ],
)
def test_invalid_event_is_refused(tmp_path, change):
    event = synthetic_events(1)[0] | change
    with DigiCamZFitsWriter(tmp_path / "bad.fits.fz") as writer:
        with pytest.raises(ValueError):
            writer.write_event(**event)


def test_layout_keywords_are_protected(tmp_path):
    with pytest.raises(ValueError, match="ZNAXIS2"):
        DigiCamZFitsWriter(tmp_path / "bad.fits.fz", header={"ZNAXIS2": 3})


def test_user_header_replaces_descriptive_keywords(tmp_path):
    path = tmp_path / "dark.fits.fz"
    header = {"RUNTYPE": "dark", "TARGET": ("dark", "pointing target")}
    write_file(path, synthetic_events(2), header=header)
    written = read_header(path)
    assert written["RUNTYPE"] == "dark"
    assert written["TARGET"] == "dark"
    assert written.comments["TARGET"] == "pointing target"


def test_memory_stays_bounded(tmp_path):
    """500 events (87 MB uncompressed) in tiles of 10 must not be held in memory."""
    event = synthetic_events(1)[0]
    tracemalloc.start()
    path = tmp_path / "long.fits.fz"
    with DigiCamZFitsWriter(path, compression="raw", rows_per_tile=10) as writer:
        for number in range(500):
            writer.write_event(**(event | {"event_number": number}))
        _, peak_during_writing = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak_during_writing < 20e6
    assert read_header(path)["ZNAXIS2"] == 500
