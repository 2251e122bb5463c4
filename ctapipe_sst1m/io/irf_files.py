"""
SST-1M IRF files: ctapipe's IRF HDUs, the cuts they were made with, and their node.

``sst1m-make-irfs`` writes one GADF file per model node, telescope set-up, cuts and IRF
kind::

    {irf_dir}/{node}/{setup}/{cuts}/irf_{kind}.fits.gz

with the HDUs of ``ctapipe-compute-irf`` (``EFFECTIVE AREA``, ``ENERGY DISPERSION``,
``PSF``, ``BACKGROUND``, point-like: ``RAD_MAX``), the HDUs of the event selection of
``ctapipe-optimize-event-selection`` (``QUALITY_CUTS_EXPR``, ``GH_CUTS``,
``VALID_ENERGY``, ``VALID_OFFSET``, ``MULTIPLICITY_CUTS`` if any, and its ``RAD_MAX``
table renamed ``THETA_CUTS``) and primary-header keywords naming the node, the set-up,
the models and the cuts. ``sst1m-dl3`` reads the selection and the cuts from here, so a
DL3 file always uses the cuts of its IRFs.
"""

from dataclasses import dataclass
from pathlib import Path

import astropy.units as u
from astropy.io import fits
from astropy.table import QTable, Table

from ..version import __version__
from .atomic_output import write_fits
from .irf_setups import setup_by_name

__all__ = [
    "CUT_KINDS",
    "IRF_KINDS",
    "IrfFile",
    "IrfFileError",
    "find_irf_files",
    "irf_path",
    "write_irf_file",
]

#: how the gammaness (and θ) cuts are chosen
CUT_KINDS = ("global", "efficiency", "optimised")
#: point-like IRFs (after a θ cut, with RAD_MAX) or full-enclosure ones (with the PSF)
IRF_KINDS = ("point-like", "full-enclosure")
#: the IRF HDUs of ctapipe-compute-irf kept in the file
IRF_HDUS = ("EFFECTIVE AREA", "ENERGY DISPERSION", "PSF", "BACKGROUND", "RAD_MAX")
#: HDUs of ctapipe's OptimizationResult copied into the IRF file (name in the file)
_CUT_HDUS = {
    "QUALITY_CUTS_EXPR": "QUALITY_CUTS_EXPR",
    "GH_CUTS": "GH_CUTS",
    "VALID_ENERGY": "VALID_ENERGY",
    "VALID_OFFSET": "VALID_OFFSET",
    "MULTIPLICITY_CUTS": "MULTIPLICITY_CUTS",
    "RAD_MAX": "THETA_CUTS",
}


class IrfFileError(ValueError):
    """A file is not a usable SST-1M IRF file (the message names it)."""


def irf_path(irf_dir, node, setup, cuts, kind):
    """Path of an IRF file in an IRF tree (see the module docstring)."""
    return Path(irf_dir) / node / setup / cuts / f"irf_{kind}.fits.gz"


def write_irf_file(path, irf_hdus, cuts_file, keywords, overwrite=False):
    """
    Write an SST-1M IRF file from ctapipe's IRF and event-selection files.

    Parameters
    ----------
    path : path-like
        Output (``.fits.gz``), written atomically.
    irf_hdus : astropy.io.fits.HDUList
        Output of ``ctapipe-compute-irf`` (primary HDU first).
    cuts_file : path-like
        Output of ``ctapipe-optimize-event-selection`` (or an ``OptimizationResult``
        written by ``ctapipe_sst1m.irf.cuts``).
    keywords : dict
        Primary-header keywords: at least ``SETUP``, ``ZEN_PNT``, ``AZ_PNT``,
        ``NSB_MHZ``, ``NODE``, ``MODELSID``, ``CUTS``, ``IRFKIND``.
    overwrite : bool
        Replace an existing file.
    """
    primary = fits.PrimaryHDU()
    primary.header["TELESCOP"] = "SST1M"
    primary.header["CREATOR"] = "sst1m-make-irfs"
    primary.header["VERSION"] = __version__
    for key, value in keywords.items():
        primary.header[key] = value
    # the effective areas of the background species would be taken for the gammas'
    # by gammapy (it reads the first HDU of a type)
    hdus = [primary]
    hdus += [hdu.copy() for hdu in irf_hdus[1:] if hdu.name in IRF_HDUS]
    with fits.open(cuts_file) as cuts:
        for name, new_name in _CUT_HDUS.items():
            if name in cuts:
                hdu = cuts[name].copy()
                hdu.name = new_name
                hdus.append(hdu)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_fits(fits.HDUList(hdus), path, overwrite=overwrite)


@dataclass
class IrfFile:
    """
    The record of an SST-1M IRF file: what it describes and the cuts it was made with.

    Attributes
    ----------
    path : Path
    setup : ctapipe_sst1m.io.irf_setups.IrfSetup
    zenith_deg, azimuth_deg, nsb_rate_mhz : float
        The node (pointing and NSB of the simulations).
    node : str
    models_id : str
        Identity of the models of the set-up's variant (``sst1m-apply-models``).
    cuts : str
        One of `CUT_KINDS`.
    kind : str
        One of `IRF_KINDS`.
    quality_criteria : list of (str, str)
        The event selection (ctapipe ``QualityQuery`` criteria).
    gh_cuts : astropy.table.QTable
        Gammaness cut per reconstructed energy bin (``low``, ``high``, ``center``,
        ``cut``; events with gammaness >= cut pass).
    theta_cuts : astropy.table.QTable or None
        θ cut per reconstructed energy bin (point-like IRFs).
    multiplicity_cuts : astropy.table.QTable or None
        Smallest number of telescopes per reconstructed energy bin (optimised cuts).
    """

    path: Path
    setup: object
    zenith_deg: float
    azimuth_deg: float
    nsb_rate_mhz: float
    node: str
    models_id: str
    cuts: str
    kind: str
    quality_criteria: list
    gh_cuts: QTable
    theta_cuts: QTable | None
    multiplicity_cuts: QTable | None

    @classmethod
    def read(cls, path):
        """
        Read the record of an IRF file.

        Raises
        ------
        IrfFileError
            If the file is not FITS or lacks the SST-1M keywords or the cut HDUs.
        """
        path = Path(path)
        try:
            hdul = fits.open(path)
        except (OSError, ValueError) as err:
            raise IrfFileError(f"IRF file {path} cannot be read: {err}") from err
        with hdul:
            header = hdul[0].header
            missing = [
                key
                for key in ("SETUP", "ZEN_PNT", "AZ_PNT", "NSB_MHZ", "MODELSID")
                if key not in header
            ]
            missing += [
                name for name in ("GH_CUTS", "QUALITY_CUTS_EXPR") if name not in hdul
            ]
            if missing:
                raise IrfFileError(
                    f"{path} is not an SST-1M IRF file of sst1m-make-irfs"
                    f" (missing {', '.join(missing)})"
                )
            criteria = [
                (str(name), str(expression))
                for name, expression in Table.read(hdul["QUALITY_CUTS_EXPR"])
                if str(name).strip()
            ]
            optional = {
                name: QTable.read(hdul[name]) if name in hdul else None
                for name in ("THETA_CUTS", "MULTIPLICITY_CUTS")
            }
            return cls(
                path=path,
                setup=setup_by_name(header["SETUP"]),
                zenith_deg=float(header["ZEN_PNT"]),
                azimuth_deg=float(header["AZ_PNT"]),
                nsb_rate_mhz=float(header["NSB_MHZ"]),
                node=str(header.get("NODE", "")),
                models_id=str(header["MODELSID"]),
                cuts=str(header.get("CUTS", "")),
                kind=str(header.get("IRFKIND", "")).lower(),
                quality_criteria=criteria,
                gh_cuts=QTable.read(hdul["GH_CUTS"]),
                theta_cuts=optional["THETA_CUTS"],
                multiplicity_cuts=optional["MULTIPLICITY_CUTS"],
            )

    @property
    def pointing_alt_deg(self):
        return 90.0 - self.zenith_deg

    def irf_hdus(self):
        """The IRF HDUs (copies), without the primary and the cut tables."""
        with fits.open(self.path) as hdul:
            return [hdul[name].copy() for name in IRF_HDUS if name in hdul]

    @property
    def energy_range(self):
        """Reconstructed-energy range of the gammaness cut table."""
        return u.Quantity(
            [self.gh_cuts["low"].quantity[0], self.gh_cuts["high"].quantity[-1]]
        )


def find_irf_files(irf_dir, setup=None, cuts=None, kind=None):
    """
    The IRF files of an IRF tree that match a set-up, cuts and kind.

    Parameters
    ----------
    irf_dir : path-like
        Root of the tree (or a single IRF file).
    setup, cuts, kind : str or None
        Keep only these (None: any).

    Returns
    -------
    list of IrfFile
        Sorted by path.

    Raises
    ------
    IrfFileError
        If ``irf_dir`` does not exist, or a file in the tree is not an IRF file.
    """
    irf_dir = Path(irf_dir)
    if irf_dir.is_file():
        paths = [irf_dir]
    elif irf_dir.is_dir():
        paths = sorted(irf_dir.rglob("irf_*.fits.gz"))
    else:
        raise IrfFileError(f"IRF directory {irf_dir} does not exist")
    found = []
    for path in paths:
        irf = IrfFile.read(path)
        if setup is not None and irf.setup.name != setup:
            continue
        if cuts is not None and irf.cuts != cuts:
            continue
        if kind is not None and irf.kind != kind:
            continue
        found.append(irf)
    return found
