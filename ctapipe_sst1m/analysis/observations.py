"""
The observations of an analysis: a gammapy DataStore, its IRF kind, the target.

A DataStore directory holds ``hdu-index.fits.gz`` and ``obs-index.fits.gz`` (as written
by ``sst1m-dl3``); one directory holds one IRF kind: *point-like* (a ``rad_max`` HDU for
every observation) or *full-enclosure* (no ``rad_max``; a ``psf`` and, for sky maps, a
``bkg`` HDU).
"""

from dataclasses import dataclass
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.coordinates import SkyCoord
from gammapy.data import DataStore

__all__ = [
    "INDEX_FILES",
    "POINT_LIKE",
    "FULL_ENCLOSURE",
    "TARGET_TOLERANCE",
    "AnalysisInputError",
    "Target",
    "open_datastore",
    "select_observations",
    "irf_kind",
    "has_irf",
    "resolve_target",
    "wobble_offsets",
    "total_livetime",
    "sky_map_observations",
]

#: the index files of a gammapy DataStore directory
INDEX_FILES = ("hdu-index.fits.gz", "obs-index.fits.gz")
POINT_LIKE = "point-like"
FULL_ENCLOSURE = "full-enclosure"
#: largest separation between the RA_OBJ/DEC_OBJ of two observations of one target
TARGET_TOLERANCE = 0.01 * u.deg


class AnalysisInputError(ValueError):
    """The DataStore, the observations or the options cannot be analysed."""


@dataclass(frozen=True)
class Target:
    """The analysed source."""

    #: its name (OBJECT keyword or ``--target-name``)
    name: str
    #: its ICRS position
    position: SkyCoord


def open_datastore(directory):
    """
    Open a gammapy DataStore directory.

    Parameters
    ----------
    directory : str or os.PathLike
        Directory with ``hdu-index.fits.gz`` and ``obs-index.fits.gz``.

    Returns
    -------
    gammapy.data.DataStore

    Raises
    ------
    AnalysisInputError
        If the directory or one of its index files is missing.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise AnalysisInputError(f"DataStore directory {directory} does not exist")
    missing = [name for name in INDEX_FILES if not (directory / name).is_file()]
    if missing:
        raise AnalysisInputError(
            f"{directory} is not a gammapy DataStore: {' and '.join(missing)} missing"
            " (sst1m-dl3 writes them next to the DL3 files)"
        )
    return DataStore.from_dir(directory)


def select_observations(datastore, obs_ids=()):
    """
    The observations to analyse, with their events, GTI, effective area and dispersion.

    Parameters
    ----------
    datastore : gammapy.data.DataStore
        From `open_datastore`.
    obs_ids : sequence of int
        Observation ids; empty: every observation of the DataStore.

    Returns
    -------
    gammapy.data.Observations
        In the order of ``obs_ids`` (ascending ids by default).

    Raises
    ------
    AnalysisInputError
        If an id is not in the DataStore, if none is selected, if a file of the HDU
        index is missing, or if an observation lacks its events, GTI, effective area or
        energy dispersion.
    """
    available = sorted(int(obs_id) for obs_id in datastore.obs_table["OBS_ID"])
    missing = sorted(set(obs_ids) - set(available))
    if missing:
        raise AnalysisInputError(
            f"observation(s) {', '.join(map(str, missing))} not in the DataStore"
            f" {datastore.hdu_table.base_dir} (it has {_id_list(available)})"
        )
    selected = list(obs_ids) if obs_ids else available
    if not selected:
        raise AnalysisInputError(
            f"no observation selected: the DataStore {datastore.hdu_table.base_dir} is empty"
        )
    _check_files(datastore, selected)
    observations = datastore.get_observations(
        obs_id=selected, required_irf="point-like"
    )
    loaded = {int(obs.obs_id) for obs in observations}
    incomplete = [obs_id for obs_id in selected if obs_id not in loaded]
    if incomplete:
        raise AnalysisInputError(
            f"observation(s) {', '.join(map(str, incomplete))} of the DataStore"
            f" {datastore.hdu_table.base_dir} lack an events, gti, aeff or edisp HDU"
        )
    return observations


def _check_files(datastore, obs_ids):
    """Refuse files of the HDU index that are missing (gammapy fails late on them)."""
    table = datastore.hdu_table
    rows = table[np.isin(table["OBS_ID"], obs_ids)]
    paths = {
        Path(table.base_dir) / row["FILE_DIR"].strip() / row["FILE_NAME"].strip()
        for row in rows
    }
    missing = sorted(str(path) for path in paths if not path.is_file())
    if missing:
        raise AnalysisInputError(
            f"file(s) of the DataStore {table.base_dir} missing: {', '.join(missing)}"
        )


def _id_list(obs_ids):
    """At most ten ids, for messages."""
    text = ", ".join(map(str, obs_ids[:10]))
    return text + (f", ... ({len(obs_ids)} in all)" if len(obs_ids) > 10 else "")


def irf_kind(observations):
    """
    `POINT_LIKE` if every observation has a RAD_MAX, `FULL_ENCLOSURE` if none has.

    Parameters
    ----------
    observations : gammapy.data.Observations

    Returns
    -------
    str

    Raises
    ------
    AnalysisInputError
        If some observations have a RAD_MAX and others not.
    """
    with_rad_max = [obs.obs_id for obs in observations if obs.rad_max is not None]
    if not with_rad_max:
        return FULL_ENCLOSURE
    if len(with_rad_max) == len(observations):
        return POINT_LIKE
    raise AnalysisInputError(
        f"observations {', '.join(map(str, with_rad_max))} have point-like IRFs (RAD_MAX)"
        " and the others full-enclosure IRFs: analyse them separately"
    )


def has_irf(observations, name):
    """
    Whether every observation has the IRF ``name`` (``"psf"``, ``"bkg"``, ...).

    Parameters
    ----------
    observations : gammapy.data.Observations
    name : str
        Attribute of `gammapy.data.Observation`.

    Returns
    -------
    bool
    """
    return all(getattr(obs, name) is not None for obs in observations)


def resolve_target(observations, ra_deg=None, dec_deg=None, name=None):
    """
    The target: the given position, or the RA_OBJ/DEC_OBJ of the observations.

    Parameters
    ----------
    observations : gammapy.data.Observations
    ra_deg, dec_deg : float or None
        ICRS position of the target; both or neither.
    name : str or None
        Name of the target; default: the OBJECT keyword common to the observations,
        else the position.

    Returns
    -------
    Target

    Raises
    ------
    AnalysisInputError
        Without a given position, if an observation has no RA_OBJ/DEC_OBJ or if their
        positions differ by more than `TARGET_TOLERANCE`.
    """
    targets = [obs.meta.target for obs in observations]
    if ra_deg is not None and dec_deg is not None:
        position = SkyCoord(ra_deg, dec_deg, unit="deg", frame="icrs")
    else:
        without = [
            obs.obs_id for obs, t in zip(observations, targets) if t.position is None
        ]
        if without:
            raise AnalysisInputError(
                f"observation(s) {', '.join(map(str, without))} have no RA_OBJ/DEC_OBJ:"
                " give --target-ra and --target-dec"
            )
        position = targets[0].position
        separation = max(position.separation(t.position) for t in targets)
        if separation > TARGET_TOLERANCE:
            positions = "; ".join(
                f"{obs.obs_id}: {t.name} ({t.position.ra.deg:.4f}, {t.position.dec.deg:.4f})"
                for obs, t in zip(observations, targets)
            )
            raise AnalysisInputError(
                f"the observations have different targets (RA_OBJ, DEC_OBJ up to"
                f" {separation.to_value(u.deg):.3f} deg apart: {positions}): select"
                " observations of one target with --obs-id, or give --target-ra and"
                " --target-dec"
            )
    if name is None:
        names = {t.name for t in targets}
        if len(names) == 1 and None not in names:
            name = names.pop()
        else:
            name = f"RA {position.ra.deg:.3f} Dec {position.dec.deg:.3f}"
    return Target(name=name, position=position)


def wobble_offsets(observations, position):
    """
    Angular distance of the target from the pointing of every observation.

    Parameters
    ----------
    observations : gammapy.data.Observations
    position : astropy.coordinates.SkyCoord

    Returns
    -------
    astropy.units.Quantity
        In deg, one per observation.
    """
    return u.Quantity(
        [
            obs.get_pointing_icrs(obs.tmid).separation(position).to(u.deg)
            for obs in observations
        ]
    )


def total_livetime(observations):
    """
    Sum of the live times (GTI duration times DEADC) of the observations.

    Parameters
    ----------
    observations : gammapy.data.Observations

    Returns
    -------
    astropy.units.Quantity
        In s.
    """
    return (
        np.sum(
            [obs.observation_live_time_duration.to_value(u.s) for obs in observations]
        )
        * u.s
    )


def sky_map_observations(observations, kind, full_enclosure_directory=None):
    """
    The observations with background IRFs for the sky maps, or why there are none.

    Parameters
    ----------
    observations : gammapy.data.Observations
        The analysed observations.
    kind : str
        Their IRF kind (`irf_kind`).
    full_enclosure_directory : str or os.PathLike or None
        A full-enclosure DataStore with the same observations, for a point-like
        ``kind``.

    Returns
    -------
    observations : gammapy.data.Observations or None
    reason : str or None
        Why there are no observations for the maps.

    Raises
    ------
    AnalysisInputError
        If ``full_enclosure_directory`` lacks one of the observations or has point-like
        IRFs.
    """
    if kind == POINT_LIKE:
        if full_enclosure_directory is None:
            return None, (
                "point-like DataStore (no background IRF): give"
                " --datastore-full-enclosure for sky maps"
            )
        observations = select_observations(
            open_datastore(full_enclosure_directory),
            [int(obs.obs_id) for obs in observations],
        )
        if irf_kind(observations) != FULL_ENCLOSURE:
            raise AnalysisInputError(
                f"--datastore-full-enclosure {full_enclosure_directory} has point-like"
                " IRFs (RAD_MAX)"
            )
    if not has_irf(observations, "bkg"):
        return None, "no background IRF in the full-enclosure DataStore"
    return observations, None
