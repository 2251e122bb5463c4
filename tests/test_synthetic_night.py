"""A synthetic night of raw data of both telescopes in the camera servers' layout."""

import re
from collections import Counter
from pathlib import Path

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import AltAz, EarthLocation, SkyCoord
from astropy.io import fits
from astropy.table import Table
from astropy.time import Time
from ctapipe.containers import EventType
from ctapipe.io import EventSource

from ctapipe_sst1m import SST1MEventSource
from ctapipe_sst1m.instrument import DEFAULT_TELESCOPE_LOCATIONS
from ctapipe_sst1m.io.raw_layout import raw_directory
from ctapipe_sst1m.io.simulation_card import SimulationCard, write_card
from ctapipe_sst1m.io.target import NoPointingTarget, parse_target
from ctapipe_sst1m.io.zfits_check import (
    ZFitsError,
    check_events_table,
    read_events_table,
)
from ctapipe_sst1m.simulation.night import write_synthetic_night
from ctapipe_sst1m.simulation.raw_runs import write_simulated_raw_runs
from ctapipe_sst1m.time import NS_PER_S, tai_ns, tai_time

NIGHT = "20240304"
FILE_NAME = re.compile(
    r"SST1M(?P<camera>[12])_(?P<night>\d{8})_(?P<run>\d{4})_(?P<file>\d{3})\.fits\.fz"
)


@pytest.fixture(scope="module")
def night(tmp_path_factory):
    """The default night: 2 targets x 2 runs, a dark run, one damaged file."""
    return write_synthetic_night(tmp_path_factory.mktemp("night"), night=NIGHT)


def _header(path):
    return fits.getheader(path, extname="Events")


def _camera_clock_ns(header, which):
    """Camera clock (TAI ns) of the first (``START``) or last (``STOP``) event of a file."""
    return header[f"T{which}S"] * NS_PER_S + header[f"T{which}NS"]


def test_raw_directory():
    assert raw_directory("/net", NIGHT, 21) == Path(
        "/net/cs1/data/raw/2024/03/04/SST1M1"
    )
    assert raw_directory("/net", NIGHT, 22) == Path(
        "/net/cs2/data/raw/2024/03/04/SST1M2"
    )
    with pytest.raises(ValueError, match="YYYYMMDD"):
        raw_directory("/net", "2024-03-04", 21)
    with pytest.raises(ValueError, match="not an SST-1M telescope"):
        raw_directory("/net", NIGHT, 23)


def test_layout(night):
    """The reference's glob finds exactly the night's files, named by camera, night, run."""
    assert night.night == NIGHT
    for tel_id, camera in ((21, 1), (22, 2)):
        directory = night.root / f"cs{camera}/data/raw/2024/03/04/SST1M{camera}"
        assert raw_directory(night.root, NIGHT, tel_id) == directory
        found = sorted(directory.glob(f"SST1M{camera}*.fits.fz"))
        # nothing else there: no card, truth table or temporary file
        assert sorted(directory.iterdir()) == found
        assert found == sorted(night.files(tel_id))
        assert len(found) == 2 * 2 * 2 + 1
        for path in found:
            match = FILE_NAME.fullmatch(path.name)
            assert match is not None, path.name
            assert (match["camera"], match["night"]) == (str(camera), NIGHT)


def test_runs(night):
    """Runs 1-4 in time order, each after the previous one, in several numbered files."""
    assert [run.run for run in night.runs] == [1, 2, 3, 4]
    assert [run.target for run in night.runs] == ["TargetA"] * 2 + ["TargetB"] * 2
    assert [run.wobble for run in night.runs] == ["W1", "W2", "W1", "W2"]
    assert night.runs[0].start_time == "2024-03-04T22:00:00"
    previous_end_ns = 0
    for run in night.runs:
        start_ns = tai_ns(Time(run.start_time, scale="utc"))
        assert start_ns > previous_end_ns
        assert sorted(run.files) == [21, 22]
        for paths in run.files.values():
            assert len(paths) >= 2
            matches = [FILE_NAME.fullmatch(path.name) for path in paths]
            assert {int(match["run"]) for match in matches} == {run.run}
            assert [int(match["file"]) for match in matches] == list(range(len(paths)))
            headers = [_header(path) for path in paths]
            assert _camera_clock_ns(headers[0], "START") > start_ns
            previous_end_ns = max(
                previous_end_ns, _camera_clock_ns(headers[-1], "STOP")
            )


def test_target_keywords(night):
    """TARGET names the run's target and wobble, and the card's alt/az at the start."""
    lon, lat, height = DEFAULT_TELESCOPE_LOCATIONS[21]
    location = EarthLocation(lon=lon * u.deg, lat=lat * u.deg, height=height * u.m)
    pointings = set()
    for run in night.runs:
        targets = {
            parse_target(_header(path)["TARGET"])
            for paths in run.files.values()
            for path in paths
        }
        assert len(targets) == 1
        (target,) = targets
        assert (target.name, target.wobble) == (run.target, run.wobble)
        altaz = SkyCoord(
            ra=target.ra_deg * u.deg, dec=target.dec_deg * u.deg
        ).transform_to(
            AltAz(obstime=Time(run.start_time, scale="utc"), location=location)
        )
        assert altaz.alt.to_value(u.deg) == pytest.approx(70.0, abs=1e-3)
        assert altaz.az.to_value(u.deg) == pytest.approx(180.0, abs=1e-2)
        pointings.add((target.ra_deg, target.dec_deg))
    assert len(pointings) == len(night.runs)


def test_corrupt_file_refused(night):
    """The damaged file keeps a readable header but is refused, with or without checksums."""
    path = night.corrupt_file
    assert path == night.runs[-1].files[22][-1]
    assert parse_target(_header(path)["TARGET"]).name == "TargetB"
    table = read_events_table(path)
    with pytest.raises(ZFitsError, match="do not match their checksum"):
        check_events_table(path, table)
    # decoded in a separate process: the damaged zlib block is refused as well
    with pytest.raises(ZFitsError, match="corrupt Events table"):
        check_events_table(path, table, verify_checksums=False)
    with pytest.raises(ZFitsError, match=path.name):
        SST1MEventSource(path)


def test_other_files_pass_the_check(night):
    good = [
        path
        for tel_id in (21, 22)
        for path in night.files(tel_id)
        if path != night.corrupt_file
    ]
    assert len(good) == 17
    for path in good:
        check_events_table(path, read_events_table(path))


def test_event_source_reads_a_run_file(night):
    """ctapipe's EventSource: all events of a file, the run's obs_id and target, SWAT ids."""
    run = night.runs[1]
    path = run.files[21][0]
    with EventSource(path) as source:
        assert isinstance(source, SST1MEventSource)
        assert source.obs_ids == [202403040002]
        assert (source.target.name, source.target.wobble) == ("TargetA", "W2")
        events = list(source)
    header = _header(path)
    assert len(events) == 60 == header["ZNAXIS2"]
    assert {event.index.obs_id for event in events} == {202403040002}
    types = Counter(event.trigger.event_type for event in events)
    assert types == {
        EventType.SUBARRAY: header["NTRIGINT"],
        EventType.SKY_PEDESTAL: header["NTRIGEXT"],
    }
    truth = Table.read(run.truth)
    camera_numbers = truth["tel_021_event_number"]
    in_file = (camera_numbers >= 1) & (camera_numbers <= 60)
    showers = [e for e in events if e.trigger.event_type == EventType.SUBARRAY]
    assert [e.index.event_id for e in showers] == truth["array_event_number"][
        in_file
    ].tolist()


def test_truth_tables(night):
    """Truth of each run: its showers are the files' shower events, mostly stereo."""
    energies = []
    for run in night.runs:
        assert run.truth.parent == night.root / "simulation" / NIGHT
        truth = Table.read(run.truth)
        assert 0 < len(truth) <= 120
        assert np.all(truth["true_energy_tev"] >= 2.0)
        triggered = {}
        for tel_id, paths in run.files.items():
            triggered[tel_id] = truth[f"tel_{tel_id:03d}_event_number"] > 0
            headers = [_header(path) for path in paths]
            n_showers = np.count_nonzero(triggered[tel_id])
            assert sum(h["NTRIGINT"] for h in headers) == n_showers
            assert sum(h["NTRIGEXT"] for h in headers) == n_showers // 10
        stereo = np.count_nonzero(triggered[21] & triggered[22])
        assert stereo > 0.5 * len(truth)
        energies.append(truth["true_energy_tev"][:10].tolist())
    # a card seed per run: different showers
    assert len({tuple(e) for e in energies}) == len(night.runs)


def test_dark_run(night):
    """A dark run after the last run: 20 pedestal events per telescope, TARGET DARK."""
    assert night.dark_run == 5
    last_end_ns = max(
        _camera_clock_ns(_header(paths[-1]), "STOP")
        for paths in night.runs[-1].files.values()
    )
    for tel_id in (21, 22):
        (path,) = night.dark_files[tel_id]
        assert FILE_NAME.fullmatch(path.name)["run"] == "0005"
        assert path.parent == raw_directory(night.root, NIGHT, tel_id)
        header = _header(path)
        assert (header["ZNAXIS2"], header["NTRIGEXT"], header["NTRIGINT"]) == (
            20,
            20,
            0,
        )
        assert tai_time(_camera_clock_ns(header, "START")) > tai_time(last_end_ns)
        with pytest.raises(NoPointingTarget):
            parse_target(header["TARGET"])
    with SST1MEventSource(night.dark_files[21][0]) as source:
        assert source.target is None
        events = list(source)
    assert len(events) == 20
    assert {event.trigger.event_type for event in events} == {EventType.SKY_PEDESTAL}


@pytest.mark.parametrize(
    "arguments, message",
    [
        ({"night": "2024-03-04"}, "YYYYMMDD"),
        ({"night": "20241340"}, "'20241340' is not a date YYYYMMDD"),
        ({"targets": ("Crab_W1",)}, "cannot be written in a TARGET"),
        ({"targets": ("A,B",)}, "cannot be written in a TARGET"),
        ({"runs_per_target": 0}, "at least one"),
    ],
)
def test_invalid_night(tmp_path, arguments, message):
    with pytest.raises(ValueError, match=message):
        write_synthetic_night(tmp_path, **arguments)
    assert list(tmp_path.iterdir()) == []


def _small_card(directory):
    """A card of 20 point gammas that trigger both telescopes."""
    card = directory / "card.simcard.yaml"
    write_card(
        card,
        SimulationCard(n_showers=20, seed=4, energy_min_tev=2.0, max_impact_m=250.0),
    )
    return card


def test_raw_runs_target_and_directories(tmp_path):
    """write_simulated_raw_runs: TARGET Simulation_W1 by default, a directory per telescope."""
    card = _small_card(tmp_path)
    paths, _ = write_simulated_raw_runs(card, tmp_path / "default")
    assert {
        _header(p)["TARGET"].split(",")[0] for ps in paths.values() for p in ps
    } == {"Simulation_W1"}
    other = tmp_path / "tel22"
    paths, _ = write_simulated_raw_runs(
        card,
        tmp_path / "truth",
        target_name="Crab",
        wobble="W3",
        directories={22: other},
    )
    assert {p.parent for p in paths[21]} == {tmp_path / "truth"}
    assert {p.parent for p in paths[22]} == {other}
    assert (tmp_path / "truth" / "SST1M_20240304_0001_truth.ecsv").is_file()
    assert list(other.glob("*.ecsv")) == []
    target = parse_target(_header(paths[22][0])["TARGET"])
    assert (target.name, target.wobble) == ("Crab", "W3")


def test_failed_raw_run_leaves_no_file(tmp_path):
    """A run whose truth table cannot be written leaves no raw file of either telescope."""
    card = _small_card(tmp_path)
    # a directory in the way of the truth table: its rename fails after the raw files
    (tmp_path / "SST1M_20240304_0001_truth.ecsv").mkdir()
    with pytest.raises(IsADirectoryError):
        write_simulated_raw_runs(card, tmp_path, directories={22: tmp_path / "tel22"})
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == [card]
