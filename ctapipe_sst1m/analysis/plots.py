"""
The PNG plots of the analysis.

The figures are `matplotlib.figure.Figure` objects, not pyplot's, except the θ² plot:
gammapy's `plot_theta_squared_table` draws on pyplot's current figure, so that figure is
made with pyplot and closed once saved (no backend is chosen here).

The reference Crab spectrum is the HEGRA power law, dN/dE = 2.83e-11 (E/TeV)^-2.62
cm⁻² s⁻¹ TeV⁻¹, Aharonian et al. 2004, ApJ 614, 897
(`gammapy.modeling.models.create_crab_spectral_model("hegra")`).
"""

import warnings
from contextlib import contextmanager

import astropy.units as u
import numpy as np
from gammapy.modeling.models import create_crab_spectral_model
from gammapy.visualization import plot_theta_squared_table
from matplotlib import pyplot as plt
from matplotlib.figure import Figure

__all__ = [
    "plot_theta2",
    "plot_spectrum",
    "plot_counts_fit",
    "plot_sky_maps",
    "plot_analysis",
]


@contextmanager
def _overlaid_quantity_plots():
    """
    Silence matplotlib's "already has a converter" warning of overlaid gammapy plots.

    Every gammapy plot enters astropy's ``quantity_support()``, which makes a new
    converter class each time; matplotlib ≥ 3.10 warns when the second plot on the same
    axes brings a converter of another class, although both convert the same way.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore",
            message="This axis already has a converter set",
            category=UserWarning,
        )
        yield


def plot_theta2(table, theta_cut, title, path):
    """
    θ² distribution of the ON, OFF and excess counts and the significance per bin.

    Parameters
    ----------
    table : astropy.table.Table
        From `ctapipe_sst1m.analysis.theta2.theta2_table`.
    theta_cut : astropy.units.Quantity
        The θ cut, drawn as a vertical line at θ².
    title : str
        Title of the figure.
    path : pathlib.Path
        Output PNG.
    """
    fig = plt.figure(figsize=(7, 7))
    try:
        plot_theta_squared_table(table)
        cut = theta_cut.to_value(u.deg) ** 2
        for ax in fig.axes:
            ax.axvline(cut, color="gray", ls="--", lw=1)
            ax.grid(True, alpha=0.3)
        fig.axes[0].set_title(title)
        fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)


def plot_spectrum(model, fit_success, flux_points, energy_range, title, path):
    """
    SED: the fitted model with its 1 σ band, the flux points and the Crab (HEGRA).

    Parameters
    ----------
    model : gammapy.modeling.models.SkyModel
        The fitted model.
    fit_success : bool
        Whether the fit converged (the error band is drawn only then).
    flux_points : gammapy.estimators.FluxPoints
    energy_range : astropy.units.Quantity
        Energy range of the model curves.
    title : str
    path : pathlib.Path
        Output PNG.
    """
    fig = Figure(figsize=(7, 5), layout="constrained")
    ax = fig.add_subplot()
    kwargs = {"ax": ax, "sed_type": "e2dnde"}
    crab = create_crab_spectral_model("hegra")
    with _overlaid_quantity_plots():
        crab.plot(
            energy_range, color="gray", ls=":", label="Crab (HEGRA 2004)", **kwargs
        )
        model.spectral_model.plot(energy_range, color="C0", label="fit", **kwargs)
        if fit_success:
            model.spectral_model.plot_error(energy_range, facecolor="C0", **kwargs)
        flux_points.plot(color="C1", label="flux points", **kwargs)
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.savefig(path, dpi=100)


def plot_counts_fit(stacked, title, path):
    """
    Excess counts against the predicted ones per energy bin, and their residuals.

    Parameters
    ----------
    stacked : gammapy.datasets.SpectrumDatasetOnOff
        With the fitted model.
    title : str
    path : pathlib.Path
        Output PNG.
    """
    fig = Figure(figsize=(7, 6), layout="constrained")
    ax_spectrum, ax_residuals = fig.subplots(
        2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    with _overlaid_quantity_plots():
        stacked.plot_excess(ax=ax_spectrum)
        _plot_excess_residuals(stacked, ax_residuals)
    ax_spectrum.set_title(title)
    fig.savefig(path, dpi=100)


def _plot_excess_residuals(stacked, ax):
    """Excess − predicted excess per energy bin in the safe range, with Poisson errors.

    Drawn here: gammapy's residual plot sets infinite axis limits when a bin has no
    prediction or no OFF count.
    """
    mask = stacked.mask_safe.data.squeeze()
    energy = stacked.counts.geom.axes["energy"].center[mask]
    excess = stacked.excess.data.squeeze()[mask]
    predicted = stacked.npred_signal().data.squeeze()[mask]
    alpha = stacked.alpha.data.squeeze()[mask]
    variance = (
        stacked.counts.data.squeeze()[mask]
        + alpha**2 * (stacked.counts_off.data.squeeze()[mask])
    )
    ax.errorbar(
        energy.to_value(u.TeV), excess - predicted, yerr=np.sqrt(variance), fmt="o"
    )
    ax.axhline(0, color="gray", lw=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("reconstructed energy [TeV]")
    ax.set_ylabel("excess − model")


def plot_sky_maps(sky_maps, position, title, path):
    """
    Significance and excess maps, and the significance distribution outside the
    exclusion circle against a standard normal distribution.

    Parameters
    ----------
    sky_maps : ctapipe_sst1m.analysis.skymap.SkyMaps
    position : astropy.coordinates.SkyCoord
        The target, marked on the maps.
    title : str
    path : pathlib.Path
        Output PNG.
    """
    fig = Figure(figsize=(15, 4.8), layout="constrained")
    wcs = sky_maps.significance.geom.wcs
    for index, (image, label) in enumerate(
        ((sky_maps.significance, "significance"), (sky_maps.excess, "excess counts"))
    ):
        ax = fig.add_subplot(1, 3, index + 1, projection=wcs)
        image.plot(ax=ax, fig=fig, cmap="RdBu_r" if index == 0 else "viridis")
        fig.colorbar(ax.images[-1], ax=ax, label=label)
        ax.scatter(
            position.ra.deg,
            position.dec.deg,
            transform=ax.get_transform("icrs"),
            marker="+",
            color="k",
            s=80,
        )
        ax.set_title(f"{title}: {label}")
    ax = fig.add_subplot(1, 3, 3)
    data = sky_maps.significance.data
    finite = np.isfinite(data)
    bins = np.linspace(-6, max(6.0, np.nanmax(data) + 0.5), 60)
    ax.hist(data[finite], bins=bins, histtype="step", label="all pixels")
    off = data[finite & sky_maps.exclusion.data]
    ax.hist(off, bins=bins, histtype="step", label="outside the exclusion")
    x = np.linspace(-6, 6, 200)
    normal = np.exp(-0.5 * x**2) / np.sqrt(2 * np.pi) * off.size * np.diff(bins)[0]
    ax.plot(x, normal, color="k", lw=1, label="normal distribution")
    ax.set_yscale("log")
    ax.set_ylim(bottom=0.5)
    ax.set_xlabel("significance")
    ax.set_ylabel("pixels")
    ax.legend()
    fig.savefig(path, dpi=100)


def plot_analysis(directory, title, theta2, spectrum, sky_maps=None):
    """
    Make every PNG of the analysis.

    Parameters
    ----------
    directory : pathlib.Path
        Output directory.
    title : str
        The target name, in the titles.
    theta2 : tuple
        (θ² table, θ cut).
    spectrum : tuple
        (stacked dataset with its fitted model, fit success, flux points, safe energy
        range).
    sky_maps : tuple or None
        (`ctapipe_sst1m.analysis.skymap.SkyMaps`, target position), None without maps.

    Returns
    -------
    list of pathlib.Path
        The PNG files.
    """
    paths = [directory / "theta2.png"]
    plot_theta2(*theta2, title, paths[-1])
    stacked, fit_success, flux_points, energy_range = spectrum
    paths.append(directory / "spectrum_sed.png")
    model = stacked.models[0]
    plot_spectrum(model, fit_success, flux_points, energy_range, title, paths[-1])
    paths.append(directory / "spectrum_counts.png")
    plot_counts_fit(stacked, title, paths[-1])
    if sky_maps is not None:
        paths.append(directory / "sky_maps.png")
        plot_sky_maps(*sky_maps, title, paths[-1])
    return paths
