"""
A synthetic night of raw SST-1M data, for tests and benchmarks of the nightly processing.

`write_synthetic_night` writes the raw runs of telescopes 21 and 22 of one night, made
by the simulation (`~ctapipe_sst1m.simulation.raw_runs`), where the camera servers put
them (reference pipeline, spec §12)::

    {root}/cs1/data/raw/{YYYY}/{MM}/{DD}/SST1M1/SST1M1_{YYYYMMDD}_{run:04d}_{file:03d}.fits.fz
    {root}/cs2/data/raw/{YYYY}/{MM}/{DD}/SST1M2/SST1M2_{YYYYMMDD}_{run:04d}_{file:03d}.fits.fz

(`REFERENCE_RAW_LAYOUT`, `raw_directory`, defined in `ctapipe_sst1m.io.raw_layout`
and shared with ``sst1m-night``): the runs of several targets one after the other,
each split into several files, a dark run and, on request, one damaged file.
The simulation cards and the truth tables of the runs go to
``{root}/simulation/{YYYYMMDD}`` (`SIMULATION_LAYOUT`), outside the raw layout.
"""

import shutil
import struct
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from pathlib import Path

from ..instrument import DATA_TEL_IDS
from ..io.atomic_output import AtomicOutput
from ..io.raw_layout import REFERENCE_RAW_LAYOUT, raw_directory
from ..io.simulation_card import SimulationCard, write_card
from ..io.target import parse_target
from ..io.zfits_check import CATALOG_ENTRY, read_events_table
from ..time import NS_PER_S, tai_time
from .raw_runs import (
    truth_table_path,
    write_simulated_dark_run,
    write_simulated_raw_runs,
)

__all__ = [
    "REFERENCE_RAW_LAYOUT",
    "SIMULATION_LAYOUT",
    "SyntheticNight",
    "SyntheticNightRun",
    "damage_event_data",
    "raw_directory",
    "write_synthetic_night",
]

#: directory of the simulation cards and truth tables of a night, below the root
SIMULATION_LAYOUT = "simulation/{night}"
#: productions of the runs: point gammas whose triggers mostly give images in both
#: telescopes (the settings of the tests' ``simulated_stereo_run``); pointing at the
#: card's default, the node of the trained test models
RUN_CARD_ENTRIES = {
    "particle": "gamma",
    "spectrum": "point",
    "energy_min_tev": 2.0,
    "max_impact_m": 250.0,
}
#: start of the night's first run (UTC, on the night's date)
FIRST_RUN_START = time(22, 0)
#: runs start on the marks of this grid, at least RUN_GAP after the previous run's
#: last event
RUN_START_GRID = timedelta(minutes=10)
RUN_GAP = timedelta(minutes=1)
#: events of each telescope in the dark run
DARK_RUN_EVENTS = 20
#: the damaged file has one byte changed in this column's block of the first tile
DAMAGED_COLUMN = "hiGain_waveforms_samples"


@dataclass(frozen=True)
class SyntheticNightRun:
    """One observation run of a synthetic night."""

    #: run number (``NNNN`` of the file names)
    run: int
    #: target name of the TARGET keyword
    target: str
    #: wobble label of the TARGET keyword (``W1``, ``W2``)
    wobble: str
    #: start time, ISO UTC (``YYYY-MM-DDThh:mm:ss``)
    start_time: str
    #: raw files per telescope, ``{21: [Path, ...], 22: [Path, ...]}``
    files: dict
    #: truth table of the run (`~ctapipe_sst1m.simulation.raw_runs.write_simulated_raw_runs`)
    truth: Path


@dataclass(frozen=True)
class SyntheticNight:
    """The raw data of a night written by `write_synthetic_night`."""

    #: root of the layout (`REFERENCE_RAW_LAYOUT` below it)
    root: Path
    #: date of the night, ``YYYYMMDD``
    night: str
    #: observation runs in time order, numbered 1, 2, ...
    runs: list
    #: run number of the dark run (None without one)
    dark_run: int | None
    #: files of the dark run per telescope (empty without one)
    dark_files: dict
    #: the damaged file, refused by `~ctapipe_sst1m.io.zfits_check` (None without one)
    corrupt_file: Path | None

    def files(self, tel_id):
        """Every raw file of a telescope (21, 22) in time order: the runs, then the dark run."""
        run_files = [path for run in self.runs for path in run.files[tel_id]]
        return run_files + self.dark_files.get(tel_id, [])


def _first_run_start(night):
    """UTC datetime of the first run of a night ``YYYYMMDD`` (`FIRST_RUN_START`)."""
    try:
        date = datetime.strptime(night, "%Y%m%d").date()
    except ValueError:
        raise ValueError(f"night {night!r} is not a date YYYYMMDD") from None
    return datetime.combine(date, FIRST_RUN_START)


def _check_target(name, wobble):
    """Refuse a target name that does not come back from its TARGET keyword."""
    parsed = parse_target(f"{name}_{wobble},0,0")
    if not name or (parsed.name, parsed.wobble) != (name, wobble):
        raise ValueError(
            f"target name {name!r} cannot be written in a TARGET keyword (with wobble"
            f" {wobble} read back as {parsed.name!r}, {parsed.wobble})"
        )


def _schedule(targets, runs_per_target):
    """(target, wobble) of the night's runs: the runs of each target in turn, W1, W2, W1..."""
    if runs_per_target < 1 or not targets:
        raise ValueError("need at least one target and one run per target")
    schedule = [
        (name, f"W{index % 2 + 1}")
        for name in targets
        for index in range(runs_per_target)
    ]
    for name, wobble in schedule:
        _check_target(name, wobble)
    return schedule


def _run_end(start, files):
    """
    UTC datetime of a run's end: its last event in either telescope (camera clocks,
    TAI), its start if it has no event.
    """
    end = start
    for paths in files.values():
        for path in paths[-1:]:
            header = read_events_table(path).header
            last_ns = header["TSTOPS"] * NS_PER_S + header["TSTOPNS"]
            end = max(end, tai_time(last_ns).utc.datetime)
    return end


def _next_start(previous_end):
    """The first mark of `RUN_START_GRID` at least `RUN_GAP` after ``previous_end``."""
    earliest = previous_end + RUN_GAP
    midnight = datetime.combine(earliest.date(), time())
    return midnight + -(-(earliest - midnight) // RUN_START_GRID) * RUN_START_GRID


def _iso(start):
    """ISO string (to the second) of a UTC datetime."""
    return start.strftime("%Y-%m-%dT%H:%M:%S")


def damage_event_data(path):
    """
    Change one byte of the compressed waveforms of a zfits file (atomically).

    The byte in the middle of the first tile's `DAMAGED_COLUMN` block gets its bits
    flipped: the headers stay intact (``astropy.io.fits.getheader`` reads TARGET), the
    layout stays consistent, but ``DATASUM`` no longer matches (a changed byte
    always changes the ones' complement sum: the difference, at most 255 times a
    power of 256, is never a multiple of 2**32 - 1), so
    `~ctapipe_sst1m.io.zfits_check.check_events_table` refuses the file; the damaged
    zlib stream does not decode either (its Adler-32 check), which the check without
    checksums (``verify_checksums=False``) finds in the file of the default night.
    """
    path = Path(path)
    table = read_events_table(path)
    header = table.header
    columns = [header[f"TTYPE{i}"] for i in range(1, header["TFIELDS"] + 1)]
    with AtomicOutput(path, overwrite=True) as output:
        shutil.copyfile(path, output.temporary)
        with open(output.temporary, "r+b") as f:
            f.seek(table.data_offset + CATALOG_ENTRY * columns.index(DAMAGED_COLUMN))
            size, offset = struct.unpack(">qq", f.read(CATALOG_ENTRY))
            f.seek(table.data_offset + header["ZHEAPPTR"] + offset + size // 2)
            byte = f.read(1)[0]
            f.seek(-1, 1)
            f.write(bytes([byte ^ 0xFF]))
        output.commit()


def write_synthetic_night(
    root,
    night="20240304",
    targets=("TargetA", "TargetB"),
    runs_per_target=2,
    n_showers=120,
    events_per_file=60,
    seed=1,
    dark_run=True,
    corrupt_file=True,
    progress_bar=False,
    parent=None,
):
    """
    Write a night of raw data of telescopes 21 and 22 in the reference layout.

    Every target gets ``runs_per_target`` runs, one target after the other, numbered
    1, 2, ... in time order: the first starts at 22:00 UTC of the night's date, each
    next one on the first 10-minute mark at least a minute after the previous run's
    last event. A run holds the triggers of ``n_showers`` simulated point gammas
    (`RUN_CARD_ENTRIES`, card seed ``seed + run``) with interleaved pedestals, in
    files of ``events_per_file`` events, TARGET ``{target}_{W1|W2},{RA},{DEC}`` (the
    card's alt/az pointing at the run's start; the wobble label alternates). With
    ``dark_run``, a dark run of `DARK_RUN_EVENTS` pedestal events per telescope
    (TARGET ``DARK``) follows, with the next run number. With ``corrupt_file``, the
    last file of telescope 22 of the observation runs (that of the last run) is
    damaged (`damage_event_data`). Files already in the layout under the same names
    are replaced; each run is written all or nothing. ``progress_bar`` and ``parent``
    as in `~ctapipe_sst1m.simulation.raw_runs.write_simulated_raw_runs`.

    The default night (2 targets x 2 runs of 120 showers) has 105-115 events (about
    10 of them interleaved pedestals) per telescope and run, in 2 files each, and
    takes about 5 s to write.

    Parameters
    ----------
    root : str or Path
        Root of the layout (`raw_directory`).
    night : str
        Date of the night, ``YYYYMMDD``.
    targets : sequence of str
        Target names (no ``,``, no wobble label).
    runs_per_target : int
    n_showers : int
        Simulated showers per run.
    events_per_file : int
    seed : int
    dark_run, corrupt_file : bool
    progress_bar : bool
    parent : ctapipe.core.Component, optional

    Returns
    -------
    SyntheticNight
    """
    root = Path(root)
    schedule = _schedule(targets, runs_per_target)
    directories = {
        tel_id: raw_directory(root, night, tel_id) for tel_id in DATA_TEL_IDS
    }
    start = _first_run_start(night)
    simulation = root / SIMULATION_LAYOUT.format(night=night)
    simulation.mkdir(parents=True, exist_ok=True)
    runs = []
    for run, (target, wobble) in enumerate(schedule, start=1):
        card_path = simulation / f"SST1M_{night}_{run:04d}.simcard.yaml"
        write_card(
            card_path,
            SimulationCard(**RUN_CARD_ENTRIES, n_showers=n_showers, seed=seed + run),
        )
        files, _ = write_simulated_raw_runs(
            card_path,
            simulation,
            date=night,
            run=run,
            start_time=_iso(start),
            events_per_file=events_per_file,
            target_name=target,
            wobble=wobble,
            directories=directories,
            progress_bar=progress_bar,
            parent=parent,
        )
        runs.append(
            SyntheticNightRun(
                run=run,
                target=target,
                wobble=wobble,
                start_time=_iso(start),
                files=files,
                truth=truth_table_path(simulation, night, run),
            )
        )
        start = _next_start(_run_end(start, files))
    dark_number, dark_files = None, {}
    if dark_run:
        dark_number = len(runs) + 1
        dark_files = write_simulated_dark_run(
            simulation,
            n_events=DARK_RUN_EVENTS,
            date=night,
            run=dark_number,
            start_time=_iso(start),
            events_per_file=events_per_file,
            seed=seed + dark_number,
            directories=directories,
            parent=parent,
        )
    damaged = None
    if corrupt_file:
        tel_22_files = [path for run in runs for path in run.files[22]]
        if not tel_22_files:
            raise ValueError(
                "no file of telescope 22 to damage: no shower triggered it"
            )
        damaged = tel_22_files[-1]
        damage_event_data(damaged)
    return SyntheticNight(
        root=root,
        night=night,
        runs=runs,
        dark_run=dark_number,
        dark_files=dark_files,
        corrupt_file=damaged,
    )
