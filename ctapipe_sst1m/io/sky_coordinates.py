"""Equatorial coordinates (RA/Dec) of reconstructed directions in DL2 files of real data."""

import astropy.units as u
import numpy as np
import tables
from ctapipe.io import read_table, write_table
from ctapipe.io.hdf5dataformat import (
    DL0_TEL_POINTING_GROUP,
    DL1_SUBARRAY_TRIGGER_TABLE,
    DL1_TEL_TRIGGER_TABLE,
)

from ..coordinates import horizontal_to_icrs
from ..event_index import row_index

__all__ = [
    "add_radec_columns",
    "geometry_tables",
    "read_pointing_tracks",
]


def geometry_tables(path, prefix):
    """Paths of the subarray and telescope geometry tables of a reconstructor prefix."""
    with tables.open_file(path) as h5file:
        paths = []
        subarray = f"/dl2/event/subarray/geometry/{prefix}"
        if subarray in h5file:
            paths.append(subarray)
        telescope = f"/dl2/event/telescope/geometry/{prefix}"
        if telescope in h5file:
            paths += [
                node._v_pathname for node in h5file.iter_nodes(telescope, "Table")
            ]
    return paths


def _event_times(path, table_path, table):
    """Trigger times (astropy Time, TAI) of the rows of a geometry table."""
    if table_path.startswith("/dl2/event/subarray"):
        trigger = read_table(path, DL1_SUBARRAY_TRIGGER_TABLE)
        return trigger["time"][row_index(trigger, table)]
    trigger = read_table(path, DL1_TEL_TRIGGER_TABLE)
    return trigger["time"][row_index(trigger, table, ("obs_id", "event_id", "tel_id"))]


def read_pointing_tracks(path):
    """Telescope pointing time series {tel_id: (unix TAI s, alt rad, az rad)} of a file."""
    tracks = {}
    with tables.open_file(path) as h5file:
        names = [
            node._v_name for node in h5file.iter_nodes(DL0_TEL_POINTING_GROUP, "Table")
        ]
    for name in names:
        table = read_table(path, f"{DL0_TEL_POINTING_GROUP}/{name}")
        order = np.argsort(table["time"].tai.unix)
        tracks[int(name.split("_")[1])] = (
            table["time"].tai.unix[order],
            table["altitude"].quantity.to_value(u.rad)[order],
            np.unwrap(table["azimuth"].quantity.to_value(u.rad)[order]),
        )
    return tracks


def add_radec_columns(path, prefix, location):
    """
    Add ``<column prefix>_ra`` and ``<column prefix>_dec`` (deg, ICRS) to the geometry
    tables of a reconstructor, from their alt/az, the trigger times and the telescope
    pointing (``horizontal_to_icrs``).

    Parameters
    ----------
    path : path-like
        DL2 file with ``/dl0/monitoring/telescope/pointing`` (opened and closed here)
    prefix : str
        reconstructor prefix, e.g. ``stereo_disp``
    location : astropy.coordinates.EarthLocation
        where the horizontal frame is defined (the array reference location)

    Returns
    -------
    int
        number of rows converted
    """
    tracks = read_pointing_tracks(path)
    n_rows = 0
    for table_path in geometry_tables(path, prefix):
        table = read_table(path, table_path)
        subarray_level = table_path.startswith("/dl2/event/subarray")
        column = prefix if subarray_level else f"{prefix}_tel"
        tel_id = min(tracks) if subarray_level else int(table_path.rsplit("_", 1)[1])
        track_time, track_alt, track_az = tracks.get(tel_id, tracks[min(tracks)])
        alt = table[f"{column}_alt"].quantity.to(u.deg)
        az = table[f"{column}_az"].quantity.to(u.deg)
        ra = np.full(len(table), np.nan)
        dec = np.full(len(table), np.nan)
        valid = np.isfinite(alt) & np.isfinite(az)
        if np.any(valid):
            times = _event_times(path, table_path, table[valid])
            t = times.tai.unix
            ra[valid], dec[valid] = horizontal_to_icrs(
                alt[valid],
                az[valid],
                times,
                location,
                u.Quantity(np.interp(t, track_time, track_alt), u.rad),
                u.Quantity(np.interp(t, track_time, track_az), u.rad),
            )
        table[f"{column}_ra"] = u.Quantity(ra, u.deg)
        table[f"{column}_ra"].description = "Reconstructed right ascension (ICRS)"
        table[f"{column}_dec"] = u.Quantity(dec, u.deg)
        table[f"{column}_dec"].description = "Reconstructed declination (ICRS)"
        write_table(table, path, table_path, overwrite=True)
        n_rows += int(np.count_nonzero(valid))
    return n_rows
