"""Raw DigiCam runs of both telescopes from the SST-1M simulation, with the true pairing."""

from contextlib import contextmanager
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.coordinates import AltAz, SkyCoord
from astropy.table import Table
from astropy.time import Time

from ..instrument import (
    DATA_TEL_ID,
    N_PIXELS,
    SIMULATION_TEL_IDS,
    TRIGGER_INTERNAL,
    TRIGGER_PATCH7,
    camera_number,
    sst1m_subarray,
)
from ..io.atomic_output import AtomicOutput
from ..io.zfits_writer import DigiCamZFitsWriter
from ..time import NS_PER_S, tai_ns
from .camera import CameraSimulator
from .readout import DigiCamReadout
from .schedule import array_location, wobble_pointing
from .source import SST1MSimulationSource

__all__ = [
    "DARK_TARGET",
    "night_date",
    "write_observation_run",
    "synthetic_pixel_indices",
    "truth_table_path",
    "write_simulated_dark_run",
    "write_simulated_raw_runs",
]

#: interleaved pedestals get array event numbers from here on (unique, never shared)
PEDESTAL_ARRAY_NUMBER_OFFSET = 1_000_000_000
#: a pedestal after the last shower of a run comes this long after it (ns)
_LAST_PEDESTAL_DELAY_NS = 1_000_000
#: TARGET keyword of a dark run: no sky pointing (`~ctapipe_sst1m.io.target.parse_target`
#: raises `~ctapipe_sst1m.io.target.NoPointingTarget`)
DARK_TARGET = "DARK"


def synthetic_pixel_indices(seed=1296):
    """A fixed permutation of the software pixel ids, standing in for the readout order."""
    return np.random.default_rng(seed).permutation(N_PIXELS).astype(np.uint16)


class _RunWriter:
    """The files of one telescope's run, a new file every ``events_per_file`` events."""

    def __init__(self, directory, tel_id, date, run, events_per_file, header):
        self.directory, self.tel_id, self.date, self.run = (
            Path(directory),
            tel_id,
            date,
            run,
        )
        self.events_per_file, self.header = events_per_file, header
        self.paths, self._writer, self._n_in_file, self.event_number = [], None, 0, 0

    def write(
        self,
        adc,
        time_ns,
        clock_offset_ns,
        event_type,
        array_event_number,
        baseline_adc,
    ):
        if self._writer is None or self._n_in_file == self.events_per_file:
            self.close()
            name = f"SST1M{camera_number(self.tel_id)}_{self.date}_{self.run:04d}_{len(self.paths):03d}.fits.fz"
            self.paths.append(self.directory / name)
            self._writer = DigiCamZFitsWriter(self.paths[-1], header=self.header)
            self._n_in_file = 0
        self.event_number += 1
        self._n_in_file += 1
        indices = synthetic_pixel_indices()
        clock = (time_ns + clock_offset_ns) // 4 * 4
        self._writer.write_event(
            telescope_id=self.tel_id,
            event_number=self.event_number,
            samples=adc[indices],
            pixel_indices=indices,
            baselines=np.full(N_PIXELS, int(round(baseline_adc * 16)), dtype=np.int16),
            local_time_sec=int(clock // NS_PER_S),
            local_time_nanosec=int(clock % NS_PER_S),
            event_type=event_type,
            array_event_number=int(array_event_number),
            trig_time_sec=int(time_ns // NS_PER_S),
            trig_time_nanosec=int(time_ns % NS_PER_S),
        )
        return self.event_number

    def close(self):
        """Write the open file of the run."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def discard(self):
        """Drop the open file and delete the files already written: no partial run."""
        if self._writer is not None:
            self._writer.discard()
            self._writer = None
        for path in self.paths:
            path.unlink(missing_ok=True)


def truth_table_path(directory, date, run):
    """The truth table of a run written by `write_simulated_raw_runs` into ``directory``."""
    return Path(directory) / f"SST1M_{date}_{run:04d}_truth.ecsv"


def _poisson_interval_ns(rng, mean_ns):
    """An interval of a Poisson process (at least 1 ns)."""
    return max(int(rng.exponential(mean_ns)), 1)


def _file_header(target, start):
    """The keywords of the files of a run: TARGET and the creation date of its start."""
    return {
        "TARGET": target,
        # the camera clocks run on TAI (White Rabbit): a DATE on the same clock (the
        # writer's default) would make SST1MEventSource take them for UTC, 37 s off
        "DATE": (start.utc.strftime("%Y-%m-%dT%H:%M:%S"), "File creation date (UTC)"),
    }


def _run_writers(tel_ids, directory, directories, date, run, events_per_file, header):
    """
    One `_RunWriter` per simulated telescope (``tel_ids``: 1, 2), each in its directory.

    ``directories`` maps data telescope ids (21, 22) to directories; telescopes not
    in it (all if it is None) write into ``directory``.
    """
    directories = directories or {}
    writers = {}
    for tel_id in tel_ids:
        data_tel_id = DATA_TEL_ID[tel_id]
        tel_directory = Path(directories.get(data_tel_id, directory))
        tel_directory.mkdir(parents=True, exist_ok=True)
        writers[tel_id] = _RunWriter(
            tel_directory, data_tel_id, date, run, events_per_file, header
        )
    return writers


@contextmanager
def _all_or_nothing(writers):
    """Close the writers' last files at the end; on any error delete all their files."""
    try:
        yield
        for writer in writers.values():
            writer.close()
    except BaseException:
        for writer in writers.values():
            writer.discard()
        raise


def _with_next_time(events, last_gap_ns):
    """``(event, time of the next event)`` pairs (the last: its time + ``last_gap_ns``)."""
    previous = None
    for event in events:
        if previous is not None:
            yield previous, event[0]
        previous = event
    if previous is not None:
        yield previous, previous[0] + last_gap_ns


def _write_events(events, writers, readout, clock_offset_ns, pedestal_interval):
    """
    Write simulated events into the runs of both telescopes.

    ``events`` are ``(time_ns, {tel_id: r1}, row)`` in time order; each triggered camera
    records the event (SWAT number = the event's position in the run), and after every
    ``pedestal_interval`` of its shower events an interleaved pedestal halfway to the
    next event. Returns the truth rows, with the camera event numbers (-1: not
    triggered).
    """
    offsets = {1: 0, 2: clock_offset_ns}
    shower_count = dict.fromkeys(writers, 0)
    rows = []
    timed = _with_next_time(events, _LAST_PEDESTAL_DELAY_NS * 2)
    for number, ((time_ns, r1, row), next_time_ns) in enumerate(timed, start=1):
        row = {"array_event_number": number, **row}
        for tel_id, writer in writers.items():
            camera_event_number = -1
            if tel_id in r1:
                camera_event_number = writer.write(
                    readout.adc(tel_id, r1[tel_id][0]),
                    time_ns,
                    offsets[tel_id],
                    TRIGGER_PATCH7,
                    number,
                    readout.baseline_adc,
                )
                shower_count[tel_id] += 1
                if shower_count[tel_id] % pedestal_interval == 0:
                    pedestal_number = (
                        PEDESTAL_ARRAY_NUMBER_OFFSET + writer.event_number + 1
                    )
                    # between this shower and the next: the files stay in time order
                    writer.write(
                        readout.pedestal_adc(tel_id),
                        (time_ns + next_time_ns) // 2,
                        offsets[tel_id],
                        TRIGGER_INTERNAL,
                        pedestal_number,
                        readout.baseline_adc,
                    )
            row[f"tel_{DATA_TEL_ID[tel_id]:03d}_event_number"] = camera_event_number
        rows.append(row)
    return rows


def _write_truth(rows, path):
    """The truth table of a run, written whole or not at all."""
    truth = Table(rows=rows)
    with AtomicOutput(path, True) as output:
        truth.write(output.temporary, format="ascii.ecsv")
        output.commit()
    return truth


def write_simulated_raw_runs(
    card_path,
    directory,
    date="20240304",
    run=1,
    start_time="2024-03-04T22:00:00",
    clock_offset_ns=3_217_000,
    mean_interval_ns=5_000_000,
    pedestal_interval=10,
    events_per_file=200,
    dc_to_pe=None,
    baseline_adc=330.0,
    target_name="Simulation",
    wobble="W1",
    directories=None,
    progress_bar=False,
    parent=None,
):
    """
    Write the simulated showers of a card as raw zfits runs of telescopes 21 and 22.

    Every simulated event where a camera triggers becomes a camera event of that
    telescope (stereo events in both, single-telescope triggers in one), with the
    White Rabbit time (true time, TAI; the events are a Poisson process of mean
    interval ``mean_interval_ns``, 5 ms: 200 Hz, the order of SST-1M's trigger rates,
    ≈165 Hz in the 2018 example run of protozfits), the camera clock (telescope 22 off by
    ``clock_offset_ns``), a common SWAT array event number, the TARGET keyword
    ``{target_name}_{wobble},{RA},{DEC}`` of the card's pointing at ``start_time``
    (UTC), and an interleaved pedestal event (NSB only) after every
    ``pedestal_interval`` events of a camera; runs are split into files of
    ``events_per_file`` events named ``SST1M{1,2}_{date}_{run:04d}_{file:03d}.fits.fz``.
    The files of a telescope go to ``directories[tel_id]`` (``directory`` for a
    telescope not in it, or if it is None), the truth table to ``directory``. A run
    that fails leaves no file of either telescope and no truth table.
    ``progress_bar`` shows one over the thrown showers. ``parent`` (a ctapipe Tool
    or Component) configures the simulation source and its detector model
    (``CameraSimulator``, ``ShowerImager``).

    Returns
    -------
    paths : dict
        ``{21: [Path, ...], 22: [Path, ...]}``.
    truth : astropy.table.Table
        Per simulated triggered event: SWAT number, camera event numbers of
        telescopes 21 and 22 (-1 if not triggered), true energy; written to
        `truth_table_path` (``{directory}/SST1M_{date}_{run:04d}_truth.ecsv``).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    source = SST1MSimulationSource(card_path, parent=parent, progress_bar=progress_bar)
    card = source.card
    start = Time(start_time, scale="utc")
    pointing = SkyCoord(
        alt=card.pointing_alt_deg * u.deg,
        az=card.pointing_az_deg * u.deg,
        frame=AltAz(obstime=start, location=array_location()),
    ).icrs
    target = f"{target_name}_{wobble},{pointing.ra.deg:.4f},{pointing.dec.deg:.4f}"
    start_ns = int(tai_ns(start))
    writers = _run_writers(
        source.subarray.tel,
        directory,
        directories,
        date,
        run,
        events_per_file,
        _file_header(target, start),
    )
    readout = DigiCamReadout(source.camera, dc_to_pe, baseline_adc=baseline_adc)
    rng = np.random.default_rng(card.seed + 1)

    def events():
        time_ns = start_ns
        for event in source:
            time_ns += _poisson_interval_ns(rng, mean_interval_ns)
            r1 = {tel_id: event.r1.tel[tel_id].waveform for tel_id in event.r1.tel}
            energy = event.simulation.shower.energy.to_value(u.TeV)
            yield time_ns, r1, {"true_energy_tev": energy}

    with _all_or_nothing(writers):
        rows = _write_events(
            events(), writers, readout, clock_offset_ns, pedestal_interval
        )
        truth = _write_truth(rows, truth_table_path(directory, date, run))
    return {DATA_TEL_ID[t]: w.paths for t, w in writers.items()}, truth


def write_simulated_dark_run(
    directory,
    n_events=20,
    date="20240304",
    run=1,
    start_time="2024-03-04T22:00:00",
    clock_offset_ns=3_217_000,
    trigger_interval_ns=10_000_000,
    events_per_file=200,
    dc_to_pe=None,
    baseline_adc=330.0,
    seed=0,
    directories=None,
    parent=None,
):
    """
    Write a dark run of telescopes 21 and 22: internal triggers only, TARGET ``DARK``.

    Each telescope gets ``n_events`` pedestal events (camera event type 8) every
    ``trigger_interval_ns`` from ``start_time`` (UTC), with the NSB-only waveforms of
    the simulation's interleaved pedestals (the camera simulation has no closed
    lid), the times, clock offset and numbering of `write_simulated_raw_runs`, in
    files of ``events_per_file`` events; ``directories`` as there. A run that fails
    leaves no file. ``seed`` makes the waveforms reproducible; ``parent`` configures
    the ``CameraSimulator``.

    Returns
    -------
    dict
        ``{21: [Path, ...], 22: [Path, ...]}``.
    """
    start = Time(start_time, scale="utc")
    camera = CameraSimulator(
        sst1m_subarray(SIMULATION_TEL_IDS), np.random.default_rng(seed), parent=parent
    )
    readout = DigiCamReadout(camera, dc_to_pe, baseline_adc=baseline_adc)
    writers = _run_writers(
        SIMULATION_TEL_IDS,
        directory,
        directories,
        date,
        run,
        events_per_file,
        _file_header(DARK_TARGET, start),
    )
    offsets = {1: 0, 2: clock_offset_ns}
    start_ns = int(tai_ns(start))
    with _all_or_nothing(writers):
        for number in range(1, n_events + 1):
            for tel_id, writer in writers.items():
                writer.write(
                    readout.pedestal_adc(tel_id),
                    start_ns + number * trigger_interval_ns,
                    offsets[tel_id],
                    TRIGGER_INTERNAL,
                    PEDESTAL_ARRAY_NUMBER_OFFSET + number,
                    baseline_adc,
                )
    return {DATA_TEL_ID[t]: w.paths for t, w in writers.items()}


def night_date(time):
    """``YYYYMMDD`` of the night of a time: the local evening's date at Ondrejov (UTC − 12 h)."""
    return (time - 12 * u.hour).strftime("%Y%m%d")


def write_observation_run(
    simulator,
    readout,
    directory,
    run,
    start,
    duration_s,
    wobble="W1",
    wobble_offset_deg=0.4,
    wobble_angle_deg=0.0,
    clock_offset_ns=3_217_000,
    pedestal_interval=10,
    events_per_file=200,
    directories=None,
):
    """
    Write one run of a simulated observation as raw zfits files of telescopes 21 and 22.

    The array tracks the wobble position ``wobble_offset_deg`` from the simulator's
    target at position angle ``wobble_angle_deg`` for ``duration_s`` from ``start``;
    the showers of `~ctapipe_sst1m.simulation.observation.ObservationSimulator.run`
    that trigger a camera are written with their true time (White Rabbit, TAI),
    the camera clocks, SWAT numbers, interleaved pedestals and the TARGET keyword
    ``{target}_{wobble},{RA},{DEC}`` of the pointing, as in `write_simulated_raw_runs`,
    in files ``SST1M{1,2}_{night}_{run:04d}_{file:03d}.fits.fz``. The truth table
    (`truth_table_path`) lists per event the particle, true energy, direction, core and
    X_max, and the camera event numbers. A run that fails leaves no file.

    Parameters
    ----------
    simulator : ctapipe_sst1m.simulation.observation.ObservationSimulator
    readout : ctapipe_sst1m.simulation.readout.DigiCamReadout
        Of the simulator's camera.
    directory : str or Path
        Where the truth table, and the files of telescopes not in ``directories``, go.
    run : int
        Run number.
    start : astropy.time.Time
    duration_s : float
    wobble : str
        Wobble label of the TARGET keyword (``W1`` ...).

    Returns
    -------
    paths : dict
        ``{21: [Path, ...], 22: [Path, ...]}``.
    truth : astropy.table.Table
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    pointing = wobble_pointing(simulator.target, wobble_offset_deg, wobble_angle_deg)
    target = (
        f"{simulator.target_name}_{wobble},{pointing.ra.deg:.4f},{pointing.dec.deg:.4f}"
    )
    date = night_date(start)
    writers = _run_writers(
        simulator.imager.subarray.tel,
        directory,
        directories,
        date,
        run,
        events_per_file,
        _file_header(target, start),
    )

    def events():
        for event in simulator.run(start, duration_s, pointing):
            shower = event.shower
            row = {
                "time_ns": event.time_ns,
                "particle": event.particle,
                "true_energy_tev": float(shower.energy_tev),
                "true_alt_deg": float(np.rad2deg(shower.alt_rad)),
                "true_az_deg": float(np.rad2deg(shower.az_rad)),
                "true_core_x_m": float(shower.core_x_m),
                "true_core_y_m": float(shower.core_y_m),
                "true_x_max_gcm2": float(shower.x_max_gcm2),
                "pointing_alt_deg": float(np.rad2deg(event.pointing_alt_rad)),
                "pointing_az_deg": float(np.rad2deg(event.pointing_az_rad)),
            }
            yield event.time_ns, event.r1, row

    with _all_or_nothing(writers):
        rows = _write_events(
            events(), writers, readout, clock_offset_ns, pedestal_interval
        )
        truth = _write_truth(rows, truth_table_path(directory, date, run))
    return {DATA_TEL_ID[t]: w.paths for t, w in writers.items()}, truth
