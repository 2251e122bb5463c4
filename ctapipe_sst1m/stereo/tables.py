"""
The coincidence tables of a stereo DL1 file: the pairs, the match summary, the offset scan.

- `COINCIDENCE_TABLE`: per stereo event the original ids and times of its pair;
- `COINCIDENCE_SUMMARY`: method, clock model (offset, drift), pair tolerance, the
  test of the offset-scan peak (SlidingWindow), number of stereo events and the four
  event classes of each telescope (also as the file's context metadata,
  `coincidence_metadata`);
- `OFFSET_SCAN_TABLE` (SlidingWindow): the coincidences per scanned clock offset.
"""

import numpy as np
from astropy.table import Table
from ctapipe.io import write_table

from ..io.pointing_table import add_pointing_tables

__all__ = [
    "COINCIDENCE_SUMMARY",
    "COINCIDENCE_TABLE",
    "OFFSET_SCAN_TABLE",
    "coincidence_metadata",
    "offset_scan_table",
    "pair_table",
    "summary_table",
    "write_coincidence_tables",
]

COINCIDENCE_TABLE = "/dl1/event/subarray/coincidence"
COINCIDENCE_SUMMARY = "/dl1/service/coincidence"
OFFSET_SCAN_TABLE = "/dl1/service/coincidence_offset_scan"


def pair_table(pairs):
    """
    The original ids and times of every stereo pair.

    Parameters
    ----------
    pairs : list of ctapipe_sst1m.stereo.merge.StereoPair
        The pairs written.

    Returns
    -------
    astropy.table.Table
        For `COINCIDENCE_TABLE`, int64 columns.
    """

    def column(name):
        return np.array([getattr(p, name) for p in pairs], dtype=np.int64)

    table = Table(
        {
            "obs_id": column("obs_id"),
            "event_id": column("event_id"),
            "tel_021_event_id": column("event_id"),
            "tel_022_obs_id": column("obs_id_2"),
            "tel_022_event_id": column("event_id_2"),
            "tel_021_time_ns": column("time_1_ns"),
            "tel_022_time_ns": column("time_2_ns"),
            "delta_t_ns": column("delta_t_ns"),
        }
    )
    table.meta["time_scale"] = "TAI ns since 1970-01-01 (times used for the matching)"
    return table


def _summary_values(result):
    """Method, clock model and (SlidingWindow) the test of the offset-scan peak."""
    values = {
        "method": result.method,
        "offset_ns": result.offset_ns,
        "drift_ns_per_s": float(result.drift_ns_per_s),
        "reference_time_ns": result.reference_time_ns,
        "tolerance_ns": -1 if result.tolerance_ns is None else result.tolerance_ns,
    }
    peak = result.offset_peak
    if peak is not None:
        values |= {
            "scan_peak_coincidences": peak.n_coincidences,
            "scan_chance_level": peak.chance_level,
            "scan_significance": peak.significance,
            "scan_second_coincidences": -1 if peak.n_second is None else peak.n_second,
            "scan_excess_ratio": float(peak.excess_ratio),
        }
    return values


def summary_table(result, n_stereo):
    """
    The match statistics of a run, one row.

    Parameters
    ----------
    result : ctapipe_sst1m.stereo.coincidence.MatchResult
        The matching.
    n_stereo : int
        Stereo events written.

    Returns
    -------
    astropy.table.Table
        For `COINCIDENCE_SUMMARY`: method, clock model (``offset_ns``,
        ``drift_ns_per_s``, ``reference_time_ns``), pair ``tolerance_ns`` (-1: ids),
        for SlidingWindow the test of the scan peak (``scan_*``: coincidences, chance
        level, significance, second-best count or -1, excess ratio), ``n_stereo`` and
        the four event classes of each telescope.
    """
    return Table(
        {
            **{key: [value] for key, value in _summary_values(result).items()},
            "n_stereo": [n_stereo],
            **{f"tel_021_{k}": [v] for k, v in result.counts_1.items()},
            **{f"tel_022_{k}": [v] for k, v in result.counts_2.items()},
        }
    )


def offset_scan_table(result):
    """
    The coincidences per scanned clock offset (SlidingWindow), or None.

    Parameters
    ----------
    result : ctapipe_sst1m.stereo.coincidence.MatchResult
        The matching.

    Returns
    -------
    astropy.table.Table or None
        For `OFFSET_SCAN_TABLE`; None when no offset was scanned.
    """
    if result.scan_offsets_ns is None:
        return None
    return Table(
        {
            "offset_ns": result.scan_offsets_ns,
            "n_coincidences": result.scan_coincidences,
        }
    )


def coincidence_metadata(result):
    """
    The match statistics as ctapipe context metadata (``CONTEXT SST1M COINCIDENCE ...``).

    Parameters
    ----------
    result : ctapipe_sst1m.stereo.coincidence.MatchResult
        The matching.

    Returns
    -------
    dict
        For ``DataWriter.context_metadata``.
    """
    metadata = {
        f"SST1M COINCIDENCE {key.upper()}": value if key == "method" else float(value)
        for key, value in _summary_values(result).items()
        if key != "reference_time_ns"  # ns of a TAI time: not as a float
    }
    for tel_id, counts in ((21, result.counts_1), (22, result.counts_2)):
        for key, value in counts.items():
            metadata[f"SST1M COINCIDENCE TEL{tel_id:03d} {key.upper()}"] = float(value)
    return metadata


def write_coincidence_tables(path, pairs, result, telescope_locations):
    """
    Write the pointing tables and the coincidence tables into a stereo DL1 file.

    Parameters
    ----------
    path : Path
        The stereo DL1 file.
    pairs : list of ctapipe_sst1m.stereo.merge.StereoPair
        The pairs written.
    result : ctapipe_sst1m.stereo.coincidence.MatchResult
        The matching.
    telescope_locations : dict
        ``{tel_id: [lon_deg, lat_deg, height_m]}``, for the pointing tables.
    """
    add_pointing_tables(path, telescope_locations)
    write_table(pair_table(pairs), path, COINCIDENCE_TABLE, overwrite=True)
    write_table(
        summary_table(result, len(pairs)), path, COINCIDENCE_SUMMARY, overwrite=True
    )
    scan = offset_scan_table(result)
    if scan is not None:
        write_table(scan, path, OFFSET_SCAN_TABLE, overwrite=True)
