"""
The expected rate of cosmic-ray protons that the quality table compares the data with:
the rate of images per intensity bin of a simulation of diffuse protons, weighted to a
cosmic-ray spectrum of `PROTON_SPECTRA` (reference-pipeline-spec.md §13, the reference
pipeline's MC rate of ``analysis/data_quality.py``).
"""

from dataclasses import dataclass
from pathlib import Path

import astropy.units as u
import numpy as np
from ctapipe.io import TableLoader
from pyirf.spectral import IRFDOC_PROTON_SPECTRUM, DAMPE_P_He_SPECTRUM

from ..instrument import DATA_TEL_ID
from ..performance.inputs import (
    check_primaries,
    check_simulated,
    event_weights,
    read_simulation_info,
)

__all__ = [
    "INTENSITY_EDGES_PE",
    "PROTON_SPECTRA",
    "ExpectedRate",
    "expected_proton_rate",
]

#: intensity bins of the rate histograms (p.e.): 10 per decade from 10 to 10^5 p.e.
INTENSITY_EDGES_PE = np.logspace(1, 5, 41)
#: cosmic-ray spectra of pyirf the simulated protons can be weighted to: DAMPE p+He
#: (proton and helium flux measured by DAMPE up to 8 TeV, flattening assumed above;
#: what the reference pipeline uses, helium showers taken as protons of the same
#: energy) and the CTA prod3b IRF-document proton power law (9.8e-6 (E/TeV)^-2.62
#: cm-2 s-1 TeV-1 sr-1)
PROTON_SPECTRA = {
    "DAMPE_P_He": DAMPE_P_He_SPECTRUM,
    "IRFDOC_PROTON": IRFDOC_PROTON_SPECTRUM,
}


@dataclass(frozen=True)
class ExpectedRate:
    """Rate of simulated cosmic-ray protons per intensity bin, per telescope."""

    #: bin edges (p.e.)
    intensity_edges_pe: np.ndarray
    #: ``{data tel_id: rate per bin (Hz)}``
    rate_hz: dict
    #: ``{data tel_id: statistical error per bin (Hz)}``, the square root of the sum
    #: of the squared event weights
    rate_error_hz: dict
    #: zenith distance of the simulated pointing (deg)
    zenith_deg: float
    #: key of `PROTON_SPECTRA` the protons are weighted to
    spectrum: str


def expected_proton_rate(
    proton_dl1_path, intensity_edges_pe=INTENSITY_EDGES_PE, spectrum="DAMPE_P_He"
):
    """
    The rate of images of cosmic-ray protons per intensity bin, from a simulation.

    Every simulated event is weighted to the cosmic-ray spectrum
    (`~ctapipe_sst1m.performance.inputs.event_weights` against the simulated power law
    of `~ctapipe_sst1m.performance.inputs.read_simulation_info`, for one second), and
    the weights of the images with finite Hillas intensity are summed per bin.
    Everything comes from the DL1 file (``/configuration/simulation/run``, the simulated
    pointing): that of sst1m-simulate (with its ``.simcard.yaml``) or of
    ctapipe-process of a sim_telarray production.

    Parameters
    ----------
    proton_dl1_path : str or Path
        DL1 of simulated diffuse protons.
    intensity_edges_pe : numpy.ndarray
        Intensity bin edges (p.e.).
    spectrum : str
        Key of `PROTON_SPECTRA`.

    Returns
    -------
    ExpectedRate
        Simulated telescopes 1 and 2 under their data ids 21 and 22.

    Raises
    ------
    ValueError
        For a file without simulation truth, with gammas, or of point-like protons
        (the message names the file).
    """
    path = Path(proton_dl1_path)
    check_simulated(path)
    check_primaries(path, "proton")
    with TableLoader(path) as loader:
        simulation = read_simulation_info(loader)
        events = loader.read_telescope_events(
            dl1_parameters=True,
            simulated=True,
            pointing=True,
            dl2=False,
            observation_info=False,
            instrument=False,
        )
    if simulation.viewcone_max <= simulation.viewcone_min:
        raise ValueError(
            f"{path}: point-like protons (viewcone 0) cannot be weighted to a diffuse"
            " cosmic-ray spectrum"
        )
    events_per_s = event_weights(
        u.Quantity(events["true_energy"]),
        simulation,
        PROTON_SPECTRA[spectrum],
        obstime=1 * u.s,
    )
    intensity = np.asarray(events["hillas_intensity"], dtype=float)
    tel_ids = np.asarray(events["tel_id"])
    rates, errors = {}, {}
    for tel_id in np.unique(tel_ids):
        selected = (tel_ids == tel_id) & np.isfinite(intensity)
        weights = events_per_s[selected]
        values = intensity[selected]
        data_tel_id = DATA_TEL_ID.get(int(tel_id), int(tel_id))
        rate, _ = np.histogram(values, intensity_edges_pe, weights=weights)
        squares, _ = np.histogram(values, intensity_edges_pe, weights=weights**2)
        rates[data_tel_id], errors[data_tel_id] = rate, np.sqrt(squares)
    altitude = u.Quantity(events["telescope_pointing_altitude"]).to_value(u.deg)
    return ExpectedRate(
        intensity_edges_pe=np.asarray(intensity_edges_pe, dtype=float),
        rate_hz=rates,
        rate_error_hz=errors,
        zenith_deg=float(90.0 - np.mean(altitude)),
        spectrum=spectrum,
    )
