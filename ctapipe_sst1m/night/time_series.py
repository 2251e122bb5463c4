"""
The time series of a night that the report plots, read from what sst1m-process and
sst1m-stereo-match store in the DL1 files: the rate of the shower events of a telescope
in bins of `RATE_BIN_S`, its NSB level per pedestal time window, and the time
differences of the stereo pairs.
"""

import numpy as np
import tables
from ctapipe.io import read_table

from ..io.dl1_monitoring import PEDESTAL_GROUP
from ..io.mono_dl1 import read_mono_index
from ..stereo.tables import COINCIDENCE_TABLE
from ..time import NS_PER_S, tai_ns

__all__ = [
    "RATE_BIN_S",
    "event_rate",
    "nsb_levels",
    "read_optional_table",
    "stereo_delta_t_ns",
]

#: width of the bins of the rate over time (s)
RATE_BIN_S = 10.0


def read_optional_table(h5file, node):
    """
    A table of an open file, or None if the file does not have it.

    Parameters
    ----------
    h5file : tables.File
        Open HDF5 file.
    node : str
        Path of the table in the file.

    Returns
    -------
    astropy.table.Table or None
    """
    return read_table(h5file, node) if node in h5file else None


def event_rate(dl1_paths, tel_id, bin_s=RATE_BIN_S):
    """
    Rate of the shower events of a telescope over time.

    The bins start at the first event; the last, partial bin is left out unless it
    covers at least half a bin or is the only one (then it spans the events).

    Parameters
    ----------
    dl1_paths : list of str or Path
        The telescope's DL1 files.
    tel_id : int
    bin_s : float
        Bin width (s).

    Returns
    -------
    time_ns : numpy.ndarray
        int64, the centre of each bin (TAI ns).
    rate_hz : numpy.ndarray
        Events per second in each bin.
    """
    times = np.sort(
        np.concatenate(
            [read_mono_index(p, tel_id).time_ns for p in dl1_paths]
            or [np.zeros(0, np.int64)]
        )
    )
    if len(times) < 2:
        return np.zeros(0, np.int64), np.zeros(0)
    width = int(bin_s * NS_PER_S)
    offsets = times - times[0]
    n_bins = int(offsets[-1] // width) + 1
    counts = np.bincount(offsets // width, minlength=n_bins)
    starts = np.arange(n_bins, dtype=np.int64) * width
    exposure = np.clip(offsets[-1] - starts, 0, width)
    kept = exposure >= width / 2 if n_bins > 1 else exposure > 0
    return (
        times[0] + starts[kept] + exposure[kept] // 2,
        counts[kept] / (exposure[kept] / NS_PER_S),
    )


def nsb_levels(dl1_paths, tel_id):
    """
    NSB level over time: the mean pedestal charge over the camera of each pedestal time
    window of sst1m-process.

    Parameters
    ----------
    dl1_paths : list of str or Path
    tel_id : int

    Returns
    -------
    time_ns : numpy.ndarray
        int64, the middle of each window (TAI ns), sorted.
    nsb_level_pe : numpy.ndarray
        Mean pedestal charge (p.e.).
    """
    times, levels = [np.zeros(0, np.int64)], [np.zeros(0)]
    for path in dl1_paths:
        with tables.open_file(path) as h5file:
            windows = read_optional_table(h5file, f"{PEDESTAL_GROUP}/tel_{tel_id:03d}")
        if windows is None:
            continue
        start = np.asarray(windows["time_start_ns"], dtype=np.int64)
        times.append(start + (tai_ns(windows["time_stop"]) - start) // 2)
        levels.append(np.asarray(windows["charge_mean"]).mean(axis=1))
    times, levels = np.concatenate(times), np.concatenate(levels)
    order = np.argsort(times)
    return times[order], levels[order]


def stereo_delta_t_ns(stereo_paths):
    """
    The time differences of the stereo pairs after the clock model of the matching.

    Parameters
    ----------
    stereo_paths : list of str or Path
        Stereo DL1 files (sst1m-stereo-match).

    Returns
    -------
    numpy.ndarray
        int64 ``delta_t_ns`` of every pair.
    """
    differences = [np.zeros(0, np.int64)]
    for path in stereo_paths:
        with tables.open_file(path) as h5file:
            pairs = read_optional_table(h5file, COINCIDENCE_TABLE)
        if pairs is not None:
            differences.append(np.asarray(pairs["delta_t_ns"], dtype=np.int64))
    return np.concatenate(differences)
