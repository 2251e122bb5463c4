"""Event indices of single-telescope SST-1M DL1 files, for stereo matching."""

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tables
from ctapipe.containers import EventType
from ctapipe.io import read_table

from ..time import tai_ns
from .dl1_monitoring import SUMMARY_TABLE

__all__ = ["MonoRunIndex", "read_mono_index", "expand_inputs"]

log = logging.getLogger(__name__)


@dataclass
class MonoRunIndex:
    """The shower events of one telescope's DL1 file."""

    path: Path
    tel_id: int
    obs_id: int
    #: per event (shower events only, file order)
    event_id: np.ndarray
    #: array trigger time: White Rabbit when recorded, else camera clock (TAI ns)
    time_ns: np.ndarray
    #: camera clock (TAI ns)
    camera_time_ns: np.ndarray
    #: events of other types (pedestals, unknown) that were skipped
    n_skipped: int
    #: the file says whether its event ids are SWAT numbers (None: not recorded)
    swat_event_ids: bool | None

    @property
    def has_white_rabbit(self):
        """True if the array times differ from the camera clock (White Rabbit recorded)."""
        return bool(len(self.time_ns)) and not np.array_equal(
            self.time_ns, self.camera_time_ns
        )

    @property
    def time_range_ns(self):
        if len(self.camera_time_ns) == 0:
            return None
        return int(self.camera_time_ns.min()), int(self.camera_time_ns.max())


SUBARRAY_TRIGGER_TABLE = "/dl1/event/subarray/trigger"
TELESCOPE_TRIGGER_TABLE = "/dl1/event/telescope/trigger"
OBSERVATION_BLOCK_TABLE = "/configuration/observation/observation_block"


def _describe(path):
    """Whether a file is simulated, is a ctapipe DL1 file, and has trigger tables."""
    with tables.open_file(path) as h5:
        attributes = h5.root._v_attrs
        process_type = (
            attributes["CTA PROCESS TYPE"] if "CTA PROCESS TYPE" in attributes else ""
        )
        simulated = "/simulation" in h5 or str(process_type) == "Simulation"
        is_dl1 = "/configuration/instrument/subarray/layout" in h5
        has_events = SUBARRAY_TRIGGER_TABLE in h5 and TELESCOPE_TRIGGER_TABLE in h5
        obs_ids = (
            h5.get_node(OBSERVATION_BLOCK_TABLE).col("obs_id")
            if OBSERVATION_BLOCK_TABLE in h5
            else []
        )
    return simulated, is_dl1, has_events, [int(i) for i in obs_ids]


def _empty_index(path, tel_id, obs_ids):
    """The index of a DL1 file without events (e.g. of a run of pedestals only)."""
    log.warning(
        "%s: a DL1 file without events (no trigger tables or no rows), nothing to match",
        path,
    )
    empty = np.zeros(0, dtype=np.int64)
    return MonoRunIndex(
        path=path,
        tel_id=tel_id,
        obs_id=obs_ids[0] if obs_ids else -1,
        event_id=empty,
        time_ns=empty,
        camera_time_ns=empty,
        n_skipped=0,
        swat_event_ids=None,
    )


def read_mono_index(path, expected_tel_id):
    """
    Read the event index of a single-telescope DL1 file.

    A DL1 file without events (ctapipe-process of a run of pedestal events only) gives
    an empty index, with a warning naming it.

    Raises
    ------
    ValueError
        For unreadable or non-DL1 files, simulations, files of another telescope, or
        files with several telescopes or runs; the message names the file.
    """
    path = Path(path)
    try:
        simulated, is_dl1, has_events, obs_ids = _describe(path)
    except (OSError, tables.HDF5ExtError) as err:
        raise ValueError(f"{path}: not a readable ctapipe DL1 file ({err})") from None
    if simulated:
        raise ValueError(
            f"{path}: simulated events need no matching: simulations already hold the events"
            " of both telescopes with common event ids"
        )
    if not is_dl1:
        raise ValueError(f"{path}: not a ctapipe DL1 file (no instrument description)")
    if not has_events:
        return _empty_index(path, expected_tel_id, obs_ids)
    subarray_trigger = read_table(path, SUBARRAY_TRIGGER_TABLE)
    telescope_trigger = read_table(path, TELESCOPE_TRIGGER_TABLE)
    tel_ids = np.unique(telescope_trigger["tel_id"])
    if len(tel_ids) == 0:
        return _empty_index(path, expected_tel_id, obs_ids)
    if len(tel_ids) > 1 or tel_ids[0] != expected_tel_id:
        raise ValueError(
            f"{path}: holds events of telescope(s) {tel_ids.tolist()}, expected telescope {expected_tel_id}"
        )
    obs_ids = np.unique(subarray_trigger["obs_id"])
    if len(obs_ids) != 1:
        raise ValueError(f"{path}: expected one run (obs_id), found {obs_ids.tolist()}")
    showers = np.asarray(subarray_trigger["event_type"]) == EventType.SUBARRAY.value
    if not np.array_equal(subarray_trigger["event_id"], telescope_trigger["event_id"]):
        raise ValueError(f"{path}: subarray and telescope trigger tables do not match")

    swat = None
    with tables.open_file(path) as h5:
        if SUMMARY_TABLE in h5:
            swat = bool(read_table(h5, SUMMARY_TABLE)["swat_event_ids"][0])
    return MonoRunIndex(
        path=path,
        tel_id=int(tel_ids[0]),
        obs_id=int(obs_ids[0]),
        event_id=np.asarray(subarray_trigger["event_id"][showers], dtype=np.int64),
        time_ns=tai_ns(subarray_trigger["time"][showers]),
        camera_time_ns=tai_ns(telescope_trigger["time"][showers]),
        n_skipped=int(np.count_nonzero(~showers)),
        swat_event_ids=swat,
    )


def expand_inputs(paths, tel_id=None):
    """
    Files as given, directories replaced by their ``*.h5`` files (sorted).

    Parameters
    ----------
    paths : iterable of str or os.PathLike
        DL1 files and directories of DL1 files.
    tel_id : int or None
        Keep only the files of this telescope from the directories (a directory may
        hold the files of both telescopes); files given by name are always kept, so
        that a file of the wrong telescope is reported by `read_mono_index`.

    Returns
    -------
    list of pathlib.Path
    """
    files = []
    for path in map(Path, paths):
        if not path.is_dir():
            files.append(path)
            continue
        in_directory = sorted(path.glob("*.h5"))
        if tel_id is not None:
            in_directory = [f for f in in_directory if tel_id in _telescopes(f)]
        files.extend(in_directory)
    return files


def _telescopes(path):
    """Telescope ids with triggers in a DL1 file (none, with a warning, if unreadable)."""
    try:
        return set(np.unique(read_table(path, TELESCOPE_TRIGGER_TABLE)["tel_id"]))
    except (OSError, KeyError, tables.NoSuchNodeError, tables.HDF5ExtError) as err:
        log.warning(
            "%s: skipped, not a DL1 file with telescope triggers (%s)", path, err
        )
        return set()
