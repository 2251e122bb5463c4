"""
The files of an analysis: the results document (YAML), tables (ECSV), datasets and maps
(FITS). The PNG plots are made by `ctapipe_sst1m.analysis.plots`.
"""

import astropy.units as u
import yaml
from astropy.io import fits

__all__ = ["OUTPUT_FILES", "observation_records", "summary_lines", "write_analysis"]

#: name of every file the analysis may write, with what it holds
OUTPUT_FILES = {
    "results.yaml": "inputs, target, observations and every number of the results",
    "theta2.ecsv": "θ² table: ON/OFF counts, α, excess and significance per θ² bin",
    "spectrum_observations.ecsv": "per observation: counts, OFF counts, α, excess, "
    "significance, live time in the safe energy range",
    "spectrum_parameters.ecsv": "fitted spectral parameters with errors",
    "flux_points.ecsv": "flux points (dN/dE, errors, 2 σ upper limits, TS, counts)",
    "spectrum_dataset.fits": "stacked ON/OFF spectrum dataset (gammapy, re-fittable)",
    "sky_maps.fits": "significance, excess, counts, background and exclusion images",
    "theta2.png": "θ² distribution",
    "spectrum_sed.png": "SED: fit, flux points, Crab reference",
    "spectrum_counts.png": "excess counts against the fitted model, residuals",
    "sky_maps.png": "significance and excess maps, significance distribution",
}


def write_analysis(
    directory, results, theta2, datasets, stacked, flux_points, sky_maps=None
):
    """
    Write the result files into a directory.

    Parameters
    ----------
    directory : pathlib.Path
        Existing, empty output directory.
    results : dict
        The results document (plain Python values).
    theta2 : astropy.table.Table
        From `ctapipe_sst1m.analysis.theta2.theta2_table`.
    datasets : gammapy.datasets.Datasets
        The ON/OFF spectrum datasets of the observations.
    stacked : gammapy.datasets.SpectrumDatasetOnOff
        Their stack, with the fitted model.
    flux_points : gammapy.estimators.FluxPoints
    sky_maps : ctapipe_sst1m.analysis.skymap.SkyMaps or None
        None when no sky map was made.

    Returns
    -------
    list of pathlib.Path
        The files written.
    """
    paths = {name: directory / name for name in OUTPUT_FILES}
    with open(paths["results.yaml"], "w") as stream:
        yaml.safe_dump(results, stream, sort_keys=False, allow_unicode=True)
    theta2.write(paths["theta2.ecsv"])
    datasets.info_table(cumulative=False).write(paths["spectrum_observations.ecsv"])
    stacked.models.to_parameters_table().write(paths["spectrum_parameters.ecsv"])
    flux_points.write(paths["flux_points.ecsv"], sed_type="dnde")
    stacked.write(paths["spectrum_dataset.fits"])
    written = [
        paths[name]
        for name in (
            "results.yaml",
            "theta2.ecsv",
            "spectrum_observations.ecsv",
            "spectrum_parameters.ecsv",
            "flux_points.ecsv",
            "spectrum_dataset.fits",
        )
    ]
    if sky_maps is not None:
        hdus = [fits.PrimaryHDU()]
        for name, image in sky_maps.items():
            header = image.geom.wcs.to_header()
            data = image.data.astype("uint8" if image.data.dtype == bool else "f4")
            hdus.append(fits.ImageHDU(data=data, header=header, name=name))
        fits.HDUList(hdus).writeto(paths["sky_maps.fits"])
        written.append(paths["sky_maps.fits"])
    return written


def observation_records(observations, offsets):
    """
    The observations in the results document.

    Parameters
    ----------
    observations : gammapy.data.Observations
    offsets : astropy.units.Quantity
        Their wobble offsets.

    Returns
    -------
    list of dict
        ``obs_id``, ``wobble_offset_deg``, ``livetime_s`` of each.
    """
    return [
        {
            "obs_id": int(obs.obs_id),
            "wobble_offset_deg": float(offset.to_value(u.deg)),
            "livetime_s": float(obs.observation_live_time_duration.to_value(u.s)),
        }
        for obs, offset in zip(observations, offsets)
    ]


def summary_lines(results):
    """
    The console summary of a results document, one line per step.

    Parameters
    ----------
    results : dict
        The results document.

    Returns
    -------
    list of str
    """
    theta2, spectrum, sky = results["theta2"], results["spectrum"], results["sky_map"]
    parameters = ", ".join(
        f"{name} {p['value']:.3g} ± {p['error']:.2g}"
        for name, p in spectrum["parameters"].items()
        if not p["frozen"]
    )
    hours = results["livetime_s"] / 3600
    return [
        f"{results['target']['name']}: {len(results['observations'])} observation(s),"
        f" {hours:.2f} h, {results['irf_kind']} IRFs",
        f"θ < {theta2['theta_cut_deg']:.3f} deg: N_on {theta2['n_on']}, N_off"
        f" {theta2['n_off']}, α {theta2['alpha']:.3f}, excess {theta2['excess']:.1f},"
        f" significance {theta2['significance']:.1f} σ",
        f"spectrum ({spectrum['model']}): {parameters}; TS {spectrum['ts']:.1f}",
        f"sky map: peak significance {sky['max_significance']:.1f} σ"
        if sky["made"]
        else f"sky map skipped: {sky['reason']}",
    ]
