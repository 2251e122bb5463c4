"""
GADF (gamma-astro-data-formats) event lists and index files of SST-1M observations.

The DL3 format of ``sst1m-dl3`` (every column and keyword is in docs/irf-dl3.md):
one FITS file per observation with ``EVENTS``, ``GTI``, ``POINTING`` and the IRF HDUs,
and the index files ``hdu-index.fits.gz`` and ``obs-index.fits.gz`` that gammapy's
``DataStore.from_dir`` reads.

Times are TAI seconds since `MJDREF` (2001-01-01T00:00:00 TAI), ``TIMESYS = 'TAI'``:
the epoch and the scale of the ``TIME`` column agree.
"""

import os
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.io import fits
from astropy.table import Table
from astropy.time import Time

from ..instrument import ARRAY_REFERENCE_LOCATION
from ..version import __version__
from .atomic_output import write_fits

__all__ = [
    "HDU_CLASSES",
    "MJDREF",
    "OBS_INDEX_COLUMNS",
    "dl3_hdu_classes",
    "events_hdu",
    "gti_hdu",
    "hdu_index_table",
    "obs_index_table",
    "pointing_hdu",
    "seconds_since_mjdref",
    "site_keywords",
    "time_keywords",
    "write_index_files",
]

#: reference epoch of all times (TAI)
MJDREF = Time(51910, format="mjd", scale="tai")
#: HDU name → (HDU_TYPE, HDU_CLASS) of the hdu index
HDU_CLASSES = {
    "EVENTS": ("events", "events"),
    "GTI": ("gti", "gti"),
    "POINTING": ("pointing", "pointing"),
    "EFFECTIVE AREA": ("aeff", "aeff_2d"),
    "ENERGY DISPERSION": ("edisp", "edisp_2d"),
    "PSF": ("psf", "psf_table"),
    "BACKGROUND": ("bkg", "bkg_2d"),
    "RAD_MAX": ("rad_max", "rad_max_2d"),
}
#: EVENTS header keywords copied into the observation index (keyword: column unit)
OBS_INDEX_COLUMNS = {
    "OBS_ID": None,
    "DATE-OBS": None,
    "TIME-OBS": None,
    "DATE-END": None,
    "TIME-END": None,
    "RA_PNT": u.deg,
    "DEC_PNT": u.deg,
    "ALT_PNT": u.deg,
    "AZ_PNT": u.deg,
    "ZEN_PNT": u.deg,
    "RA_OBJ": u.deg,
    "DEC_OBJ": u.deg,
    "OBJECT": None,
    "TSTART": u.s,
    "TSTOP": u.s,
    "ONTIME": u.s,
    "TELAPSE": u.s,
    "LIVETIME": u.s,
    "DEADC": None,
    "OBS_MODE": None,
    "N_TELS": None,
    "TELLIST": None,
    "INSTRUME": None,
    "TELESCOP": None,
    "EV_COUNT": None,
    "IRF_NODE": None,
    "IRF_CHOI": None,
}


def seconds_since_mjdref(time_ns):
    """TAI nanoseconds since 1970-01-01 TAI (ctapipe's integer times) → seconds since MJDREF."""
    epoch_ns = round((MJDREF - Time(0, format="unix_tai")).to_value(u.s)) * 10**9
    return (np.asarray(time_ns, dtype=np.int64) - epoch_ns) / 1e9


def time_keywords():
    """The time reference keywords of every DL3 HDU."""
    return {
        "MJDREFI": (int(MJDREF.mjd), "[d] integer part of the reference MJD"),
        "MJDREFF": (float(MJDREF.mjd % 1), "[d] fractional part of the reference MJD"),
        "TIMEUNIT": ("s", "unit of TIME, TSTART, TSTOP"),
        "TIMESYS": ("TAI", "time scale of all times"),
        "TIMEREF": ("TOPOCENTER", "times are at the telescopes"),
    }


def site_keywords():
    """Geodetic location of the array (GEOLON/GEOLAT in deg, ALTITUDE in m)."""
    geodetic = ARRAY_REFERENCE_LOCATION.geodetic
    return {
        "GEOLON": (round(geodetic.lon.to_value(u.deg), 6), "[deg] array longitude"),
        "GEOLAT": (round(geodetic.lat.to_value(u.deg), 6), "[deg] array latitude"),
        "ALTITUDE": (round(geodetic.height.to_value(u.m), 2), "[m] array altitude"),
    }


def _gadf_keywords(hduclas1, hduclas2=None):
    keywords = {
        "HDUCLASS": "GADF",
        "HDUDOC": "https://github.com/open-gamma-ray-astro/gamma-astro-data-formats",
        "HDUVERS": "0.3",
        "HDUCLAS1": hduclas1,
    }
    if hduclas2:
        keywords["HDUCLAS2"] = hduclas2
    return keywords


def _header(*keyword_sets):
    header = fits.Header()
    for keywords in keyword_sets:
        for key, value in keywords.items():
            header[key] = value
    return header


def events_hdu(events, keywords):
    """
    The ``EVENTS`` HDU.

    Parameters
    ----------
    events : astropy.table.Table
        Columns EVENT_ID, TIME (s since MJDREF), RA, DEC, ENERGY, GAMMANESS, MULTIP,
        ALT, AZ (with units).
    keywords : dict
        Observation keywords (OBS_ID, pointing, times, live time, object, telescopes).
    """
    header = _header(
        _gadf_keywords("EVENTS"),
        {"CREATOR": f"sst1m-dl3 {__version__}", "ORIGIN": "SST-1M", "EUNIT": "TeV"},
        time_keywords(),
        site_keywords(),
        keywords,
    )
    return fits.BinTableHDU(events, header=header, name="EVENTS")


def gti_hdu(start, stop):
    """The ``GTI`` HDU: one interval, seconds since MJDREF."""
    table = Table({"START": [start] * u.s, "STOP": [stop] * u.s})
    return fits.BinTableHDU(
        table, header=_header(_gadf_keywords("GTI"), time_keywords()), name="GTI"
    )


def pointing_hdu(time_s, ra, dec, alt, az, keywords=()):
    """The ``POINTING`` HDU: the pointing time series of the observation."""
    table = Table(
        {
            "TIME": np.asarray(time_s) * u.s,
            "RA_PNT": u.Quantity(ra, u.deg),
            "DEC_PNT": u.Quantity(dec, u.deg),
            "ALT_PNT": u.Quantity(alt, u.deg),
            "AZ_PNT": u.Quantity(az, u.deg),
        }
    )
    header = _header(
        _gadf_keywords("POINTING"),
        time_keywords(),
        site_keywords(),
        dict(keywords),
    )
    return fits.BinTableHDU(table, header=header, name="POINTING")


def dl3_hdu_classes(path):
    """(HDU name, HDU_TYPE, HDU_CLASS) of the GADF HDUs in a DL3 file."""
    with fits.open(path) as hdul:
        names = [hdu.name for hdu in hdul[1:]]
    return [(name, *HDU_CLASSES[name]) for name in names if name in HDU_CLASSES]


def hdu_index_table(dl3_paths, index_dir):
    """
    The HDU index of DL3 files: one row per GADF HDU, directories relative to ``index_dir``.
    """
    rows = []
    for path in dl3_paths:
        path = Path(path)
        obs_id = int(fits.getval(path, "OBS_ID", extname="EVENTS"))
        file_dir = os.path.relpath(path.parent.resolve(), Path(index_dir).resolve())
        for name, hdu_type, hdu_class in dl3_hdu_classes(path):
            rows.append((obs_id, hdu_type, hdu_class, file_dir, path.name, name))
    table = Table(
        rows=rows or None,
        names=["OBS_ID", "HDU_TYPE", "HDU_CLASS", "FILE_DIR", "FILE_NAME", "HDU_NAME"],
        dtype=[np.int64, "U8", "U10", "U256", "U256", "U20"],
    )
    table.meta.update(_gadf_keywords("INDEX", "HDU"))
    return table


def obs_index_table(dl3_paths):
    """The observation index of DL3 files, from their ``EVENTS`` headers."""
    headers = [fits.getheader(path, extname="EVENTS") for path in dl3_paths]
    table = Table()
    for key, unit in OBS_INDEX_COLUMNS.items():
        if not any(key in header for header in headers):
            continue
        values = [header.get(key, np.nan if unit else "") for header in headers]
        table[key] = u.Quantity(values, unit) if unit is not None else values
    table.meta.update(_gadf_keywords("INDEX", "OBS"))
    table.meta.update({key: value for key, (value, _) in time_keywords().items()})
    table.meta.update({key: value for key, (value, _) in site_keywords().items()})
    return table


def write_index_files(dl3_paths, index_dir, overwrite=True):
    """
    Write ``hdu-index.fits.gz`` and ``obs-index.fits.gz`` of DL3 files into ``index_dir``.

    Returns
    -------
    list of Path
        The two index files.
    """
    dl3_paths = sorted(Path(p) for p in dl3_paths)
    index_dir = Path(index_dir)
    hdu_index = fits.table_to_hdu(hdu_index_table(dl3_paths, index_dir))
    hdu_index.name = "HDU_INDEX"
    obs_index = fits.table_to_hdu(obs_index_table(dl3_paths))
    obs_index.name = "OBS_INDEX"
    paths = [index_dir / "hdu-index.fits.gz", index_dir / "obs-index.fits.gz"]
    for hdu, path in zip((hdu_index, obs_index), paths):
        write_fits(fits.HDUList([fits.PrimaryHDU(), hdu]), path, overwrite=overwrite)
    return paths
