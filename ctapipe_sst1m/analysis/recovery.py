"""
A simulated source against what the analysis recovered: flux, index, position, significance.

Reads the output directory of ``sst1m-analysis`` (``results.yaml`` and the stacked
``spectrum_dataset.fits``) and the DataStore it analysed; the injected spectrum is a
gammapy spectral model (the simulation's, e.g. `CRAB_HEGRA_MODEL`).
"""

import astropy.units as u
import numpy as np
import yaml
from astropy.coordinates import SkyCoord
from gammapy.datasets import SpectrumDatasetOnOff
from gammapy.modeling.models import PowerLawSpectralModel

from .observations import open_datastore, select_observations
from .position import excess_position
from .spectrum import expected_significance

__all__ = ["CRAB_HEGRA_MODEL", "injected_vs_recovered", "power_law_model"]


def power_law_model(amplitude, index, reference=1 * u.TeV):
    """A gammapy power law from pyirf's convention (``index`` negative)."""
    return PowerLawSpectralModel(
        amplitude=u.Quantity(amplitude, "cm-2 s-1 TeV-1"),
        index=-index,
        reference=reference,
    )


#: the Crab of HEGRA (Aharonian et al. 2004), the default source of the observations
CRAB_HEGRA_MODEL = power_law_model(2.83e-11, -2.62)


def injected_vs_recovered(analysis_dir, datastore_dir, injected_model, target):
    """
    The injected source against the fitted spectrum, the excess and its position.

    Parameters
    ----------
    analysis_dir : pathlib.Path
        Output of ``sst1m-analysis`` with a power-law fit.
    datastore_dir : pathlib.Path
        The DataStore it analysed (for the events of the excess position).
    injected_model : gammapy.modeling.models.PowerLawSpectralModel
    target : astropy.coordinates.SkyCoord
        Injected position.

    Returns
    -------
    dict
        ``reference_tev``; ``flux_injected``, ``flux``, ``flux_error``, ``flux_pull``
        (cm⁻² s⁻¹ TeV⁻¹ at the fit's reference energy); ``index_injected``, ``index``,
        ``index_error``, ``index_pull`` (gammapy's positive index); ``offset_deg`` (excess
        centroid to target), ``position_error_deg``, ``excess``; ``significance`` (θ²,
        Li & Ma, every energy), ``spectrum_significance`` (Li & Ma of the spectrum's ON
        region in its safe energy range) and ``expected_significance`` (the injected
        spectrum through the same IRFs, OFF counts and safe range).
    """
    results = yaml.safe_load((analysis_dir / "results.yaml").read_text())
    parameters = results["spectrum"]["parameters"]
    reference = parameters["reference"]["value"] * u.Unit(
        parameters["reference"]["unit"]
    )
    flux_injected = injected_model(reference).to_value("cm-2 s-1 TeV-1")
    flux = parameters["amplitude"]
    index = parameters["index"]
    stacked = SpectrumDatasetOnOff.read(analysis_dir / "spectrum_dataset.fits")
    expected = expected_significance(stacked, injected_model)
    theta2 = results["theta2"]
    observations = select_observations(open_datastore(datastore_dir))
    n_off_regions = round(1 / theta2["alpha"])
    position = excess_position(
        observations, target, theta2["theta_cut_deg"] * u.deg, n_off_regions
    )
    index_injected = float(injected_model.index.value)
    return {
        "reference_tev": float(reference.to_value(u.TeV)),
        "flux_injected": float(flux_injected),
        "flux": flux["value"],
        "flux_error": flux["error"],
        "flux_pull": (flux["value"] - flux_injected) / flux["error"],
        "index_injected": index_injected,
        "index": index["value"],
        "index_error": index["error"],
        "index_pull": (index["value"] - index_injected) / index["error"],
        "offset_deg": float(position.position.separation(SkyCoord(target)).deg),
        "position_error_deg": position.error_deg,
        "excess": float(position.excess),
        "significance": theta2["significance"],
        "expected_significance": expected["expected_significance"],
        "spectrum_significance": expected["measured_significance"],
        "fit_success": results["spectrum"]["fit_success"],
        "energy_range_tev": results["spectrum"]["energy_range_tev"],
        "max_sky_significance": results["sky_map"].get("max_significance", np.nan),
    }
