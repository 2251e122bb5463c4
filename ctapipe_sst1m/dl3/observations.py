"""
Observations of DL3: runs, split where the pointing moves or the data stop.

The recorded events of the DL2 files (all of them, before any cut) are ordered by run
(``obs_id``) and time. A new observation starts at a new run, where the pointing of the
observation block changes by more than ``max_pointing_change`` (a new wobble position
written into the same run) and where two consecutive events are more than ``max_gap``
apart (the data stopped). An observation's good time interval runs from half a mean
interval between events before its first recorded event to half a mean interval after its
last: n events of a Poisson process of rate R cover n/R on average, the n − 1 intervals
between them only (n − 1)/R. Its ``OBS_ID`` is the run's ``obs_id`` when the run is one
observation, else ``obs_id × 100 + k`` for its k-th piece (k = 1, 2, …).
"""

from dataclasses import dataclass, field

import astropy.units as u
import numpy as np
import tables
from astropy.coordinates import SkyCoord
from ctapipe.io import read_table
from ctapipe.io.hdf5dataformat import DL0_TEL_POINTING_GROUP

from ..time import tai_ns

__all__ = [
    "Observation",
    "RecordedEvents",
    "read_recorded_events",
    "split_observations",
]

OBSERVATION_BLOCK_TABLE = "/configuration/observation/observation_block"
SUBARRAY_TRIGGER_TABLE = "/dl1/event/subarray/trigger"
TELESCOPE_TRIGGER_TABLE = "/dl1/event/telescope/trigger"
PROCESSING_SUMMARY_TABLE = "/dl1/service/sst1m_processing"
COINCIDENCE_SUMMARY_TABLE = "/dl1/service/coincidence"


@dataclass
class RecordedEvents:
    """
    Every recorded event of one DL2 file (what the live time and the GTIs are made of).

    Attributes
    ----------
    path : Path
    obs_id, event_id, time_ns : numpy.ndarray
        Of the set-up's events: telescope events of a mono set-up, stereo events.
    telescope_times_ns : dict
        ``{tel_id: trigger times}`` of every telescope in the file (the dead time).
    ra_deg, dec_deg : float
        Pointing of the observation block (ICRS).
    pointing : dict
        ``{tel_id: (time_ns, alt_deg, az_deg)}`` pointing time series.
    target : str
        Target name of the run (``sst1m-process`` summary), or "".
    recorded_per_written : dict
        ``{tel_id: factor}``: events the telescope recorded per event of it in the
        file. 1 for single-telescope files; for a stereo file the telescope's events
        of all four classes of ``/dl1/service/coincidence`` (matched, ambiguous,
        rejected, unmatched) per stereo event, so that its dead time counts them all.
    """

    path: object
    obs_id: np.ndarray
    event_id: np.ndarray
    time_ns: np.ndarray
    telescope_times_ns: dict
    ra_deg: float
    dec_deg: float
    pointing: dict
    target: str = ""
    recorded_per_written: dict = field(default_factory=dict)


def read_recorded_events(path, setup):
    """
    Read the recorded events, pointing and target of a DL2 file of real data.

    Raises
    ------
    ValueError
        If the file has no ICRS pointing (no pointing table): naming the file.
    """
    blocks = read_table(path, OBSERVATION_BLOCK_TABLE)
    ra = blocks["subarray_pointing_lon"].quantity.to_value(u.deg)
    dec = blocks["subarray_pointing_lat"].quantity.to_value(u.deg)
    if len(blocks) != 1 or not np.isfinite(ra[0]) or not np.isfinite(dec[0]):
        raise ValueError(
            f"{path}: no pointing (RA/Dec of the observation block);"
            " process the raw data with the TARGET keyword or"
            " SST1MEventSource.pointing_ra_deg/dec_deg"
        )
    telescope = read_table(path, TELESCOPE_TRIGGER_TABLE)
    telescope_times = {
        int(tel_id): tai_ns(telescope["time"][telescope["tel_id"] == tel_id])
        for tel_id in np.unique(telescope["tel_id"])
    }
    if setup.telescope_level:
        events = telescope[telescope["tel_id"] == setup.data_tel_id]
    else:
        events = read_table(path, SUBARRAY_TRIGGER_TABLE)
    pointing = {}
    for tel_id in telescope_times:
        table = _optional_table(path, f"{DL0_TEL_POINTING_GROUP}/tel_{tel_id:03d}")
        if table is None:
            raise ValueError(
                f"{path}: no pointing time series of telescope {tel_id}"
                f" ({DL0_TEL_POINTING_GROUP}/tel_{tel_id:03d}); make the DL1 file with"
                " sst1m-process or sst1m-stereo-match"
            )
        pointing[tel_id] = (
            tai_ns(table["time"]),
            table["altitude"].quantity.to_value(u.deg),
            table["azimuth"].quantity.to_value(u.deg),
        )
    target = ""
    summary = _optional_table(path, PROCESSING_SUMMARY_TABLE)
    if summary is not None and "target" in summary.colnames:
        target = str(summary["target"][0])
    recorded_per_written = dict.fromkeys(telescope_times, 1.0)
    coincidence = _optional_table(path, COINCIDENCE_SUMMARY_TABLE)
    if coincidence is not None:
        for tel_id, times in telescope_times.items():
            total = sum(
                int(np.sum(coincidence[f"tel_{tel_id:03d}_{kind}"]))
                for kind in ("matched", "ambiguous", "rejected", "unmatched")
            )
            recorded_per_written[tel_id] = total / max(len(times), 1)
    return RecordedEvents(
        path=path,
        obs_id=np.asarray(events["obs_id"], dtype=np.int64),
        event_id=np.asarray(events["event_id"], dtype=np.int64),
        time_ns=tai_ns(events["time"]) if len(events) else np.zeros(0, np.int64),
        telescope_times_ns=telescope_times,
        ra_deg=float(ra[0]),
        dec_deg=float(dec[0]),
        pointing=pointing,
        target=target,
        recorded_per_written=recorded_per_written,
    )


def _optional_table(path, table_path):
    """A table of the file, or None if it has none at ``table_path``."""
    with tables.open_file(path) as h5file:
        if table_path not in h5file:
            return None
    return read_table(path, table_path)


@dataclass
class Observation:
    """One DL3 observation: a run or a piece of it."""

    obs_id: int
    run_obs_id: int
    start_ns: int
    stop_ns: int
    ra_deg: float
    dec_deg: float
    target: str
    #: recorded events of the set-up in the observation
    n_events: int
    #: per telescope, trigger times within the observation
    telescope_times_ns: dict = field(default_factory=dict)
    #: per telescope, (time_ns, alt_deg, az_deg) within the observation
    pointing: dict = field(default_factory=dict)
    #: per telescope, events recorded within the observation (see `RecordedEvents`)
    n_recorded: dict = field(default_factory=dict)

    @property
    def elapsed_s(self):
        return (self.stop_ns - self.start_ns) / 1e9


def split_observations(recorded, max_gap, max_pointing_change):
    """
    The observations of a set of DL2 files.

    Parameters
    ----------
    recorded : list of RecordedEvents
    max_gap : astropy.units.Quantity
        Largest interval between consecutive events inside an observation.
    max_pointing_change : astropy.units.Quantity
        Largest pointing change inside an observation.

    Returns
    -------
    list of Observation
        Ordered by run and time; runs without events give none.
    """
    obs_id = np.concatenate([r.obs_id for r in recorded])
    time_ns = np.concatenate([r.time_ns for r in recorded])
    file_index = np.concatenate(
        [np.full(len(r.obs_id), i) for i, r in enumerate(recorded)]
    )
    order = np.lexsort((time_ns, obs_id))
    obs_id, time_ns, file_index = obs_id[order], time_ns[order], file_index[order]
    new = np.ones(len(obs_id), dtype=bool)
    if len(obs_id) > 1:
        # the pointing is one per file: compare the files' pointings once each
        pointings = SkyCoord(
            ra=[r.ra_deg for r in recorded] * u.deg,
            dec=[r.dec_deg for r in recorded] * u.deg,
        )
        changes = pointings[:, np.newaxis].separation(pointings[np.newaxis, :])
        moved = changes[file_index[1:], file_index[:-1]] > max_pointing_change
        gap = np.diff(time_ns) > max_gap.to_value(u.ns)
        new[1:] = (obs_id[1:] != obs_id[:-1]) | moved | gap
    starts = np.flatnonzero(new)
    stops = np.append(starts[1:], len(obs_id))
    pieces_per_run = {}
    for start in starts:
        pieces_per_run[obs_id[start]] = pieces_per_run.get(obs_id[start], 0) + 1
    observations = []
    piece = {}
    for start, stop in zip(starts, stops):
        run = int(obs_id[start])
        piece[run] = piece.get(run, 0) + 1
        number = run if pieces_per_run[run] == 1 else run * 100 + piece[run]
        first = recorded[file_index[start]]
        # half a mean interval before the first and after the last event: N events
        # of a Poisson process cover N mean intervals
        half_interval = 0
        if stop - start > 1:
            half_interval = (
                (time_ns[stop - 1] - time_ns[start]) // (stop - start - 1) // 2
            )
        observation = Observation(
            obs_id=number,
            run_obs_id=run,
            start_ns=int(time_ns[start] - half_interval),
            stop_ns=int(time_ns[stop - 1] + half_interval),
            ra_deg=first.ra_deg,
            dec_deg=first.dec_deg,
            target=first.target,
            n_events=int(stop - start),
        )
        files = np.unique(file_index[start:stop])
        for i in files:
            _add_telescope_data(observation, recorded[i])
        observations.append(observation)
    return observations


def _add_telescope_data(observation, recorded):
    """Trigger times and pointing of one file that fall into an observation."""

    def inside(times):
        return (times >= observation.start_ns) & (times <= observation.stop_ns)

    for tel_id, times in recorded.telescope_times_ns.items():
        kept = times[inside(times)]
        observation.n_recorded[tel_id] = (
            observation.n_recorded.get(tel_id, 0.0)
            + len(kept) * recorded.recorded_per_written[tel_id]
        )
        previous = observation.telescope_times_ns.get(tel_id, np.zeros(0, np.int64))
        observation.telescope_times_ns[tel_id] = np.concatenate([previous, kept])
    for tel_id, (times, alt, az) in recorded.pointing.items():
        mask = inside(times)
        if tel_id in observation.pointing:
            old = observation.pointing[tel_id]
            observation.pointing[tel_id] = tuple(
                np.concatenate([a, b[mask]]) for a, b in zip(old, (times, alt, az))
            )
        else:
            observation.pointing[tel_id] = (times[mask], alt[mask], az[mask])
