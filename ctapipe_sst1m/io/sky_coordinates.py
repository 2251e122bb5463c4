"""Equatorial coordinates (RA/Dec) of reconstructed directions in DL2 files of real data."""

import astropy.units as u
import numpy as np
import tables
from astropy.coordinates import ICRS, AltAz, SkyCoord
from ctapipe.io import read_table, write_table

__all__ = ["add_radec_columns", "geometry_tables"]

TRIGGER_TABLE = "/dl1/event/subarray/trigger"
TELESCOPE_TRIGGER_TABLE = "/dl1/event/telescope/trigger"


def geometry_tables(path, prefix):
    """Paths of the subarray and telescope geometry tables of a reconstructor prefix."""
    with tables.open_file(path) as h5file:
        paths = []
        subarray = f"/dl2/event/subarray/geometry/{prefix}"
        if subarray in h5file:
            paths.append(subarray)
        telescope = f"/dl2/event/telescope/geometry/{prefix}"
        if telescope in h5file:
            paths += [node._v_pathname for node in h5file.iter_nodes(telescope, "Table")]
    return paths


def _event_times(path, table_path, table):
    """Trigger times (astropy Time, TAI) of the rows of a geometry table."""
    if table_path.startswith("/dl2/event/subarray"):
        trigger = read_table(path, TRIGGER_TABLE)[["obs_id", "event_id", "time"]]
        keys = ["obs_id", "event_id"]
    else:
        trigger = read_table(path, TELESCOPE_TRIGGER_TABLE)[["obs_id", "event_id", "tel_id", "time"]]
        keys = ["obs_id", "event_id", "tel_id"]
    index = {row: i for i, row in enumerate(zip(*(np.asarray(trigger[k]).tolist() for k in keys)))}
    rows = [index[row] for row in zip(*(np.asarray(table[k]).tolist() for k in keys))]
    return trigger["time"][rows]


def add_radec_columns(path, prefix, location):
    """
    Add ``<column prefix>_ra`` and ``<column prefix>_dec`` (deg, ICRS) to the geometry
    tables of a reconstructor, from their alt/az and the trigger times.

    Parameters
    ----------
    path : path-like
        DL2 file (opened and closed here)
    prefix : str
        reconstructor prefix, e.g. ``stereo_disp``
    location : astropy.coordinates.EarthLocation
        where the horizontal frame is defined (the array reference location)

    Returns
    -------
    int
        number of rows converted
    """
    n_rows = 0
    for table_path in geometry_tables(path, prefix):
        table = read_table(path, table_path)
        column = prefix if table_path.startswith("/dl2/event/subarray") else f"{prefix}_tel"
        alt = table[f"{column}_alt"].quantity.to(u.deg)
        az = table[f"{column}_az"].quantity.to(u.deg)
        ra = np.full(len(table), np.nan)
        dec = np.full(len(table), np.nan)
        valid = np.isfinite(alt) & np.isfinite(az)
        if np.any(valid):
            times = _event_times(path, table_path, table[valid])
            frame = AltAz(obstime=times, location=location)
            sky = SkyCoord(alt=alt[valid], az=az[valid], frame=frame).transform_to(ICRS())
            ra[valid] = sky.ra.to_value(u.deg)
            dec[valid] = sky.dec.to_value(u.deg)
        table[f"{column}_ra"] = u.Quantity(ra, u.deg)
        table[f"{column}_ra"].description = "Reconstructed right ascension (ICRS)"
        table[f"{column}_dec"] = u.Quantity(dec, u.deg)
        table[f"{column}_dec"].description = "Reconstructed declination (ICRS)"
        write_table(table, path, table_path, overwrite=True)
        n_rows += int(np.count_nonzero(valid))
    return n_rows
