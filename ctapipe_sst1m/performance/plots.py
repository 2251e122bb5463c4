"""
Plots of the performance tables of `ctapipe_sst1m.performance.metrics` (all tags overlaid).

The figures are `matplotlib.figure.Figure` objects, not pyplot's: no backend is chosen
and no global figure state is kept, so the plots work with any backend.
"""

import astropy.units as u
import numpy as np
from matplotlib.figure import Figure

__all__ = ["plot_performance"]


def _energy_axis(ax, label):
    if not np.all(np.isfinite(ax.dataLim.intervalx)):
        # nothing finite to show (every bin too sparse): a log axis needs limits
        ax.set_xlim(0.1, 1000)
    ax.set_xscale("log")
    ax.set_xlabel(label)
    ax.grid(True, which="both", alpha=0.3)


def _errorbar_x(table, prefix):
    """Bin centers and half-widths (TeV) of a binned table."""
    center = table[f"{prefix}center"].to_value(u.TeV)
    low, high = (
        table[f"{prefix}low"].to_value(u.TeV),
        table[f"{prefix}high"].to_value(u.TeV),
    )
    return center, [center - low, high - center]


def plot_energy_resolution(results, path):
    """
    Energy resolution and bias versus true energy, with their bootstrap errors.

    Parameters
    ----------
    results : dict[str, ctapipe_sst1m.performance.metrics.TagPerformance]
        Per tag.
    path : Path
        Output PNG.
    """
    fig = Figure(figsize=(7, 8), layout="constrained")
    ax_res, ax_bias = fig.subplots(2, 1, sharex=True)
    for tag, result in results.items():
        table = result.energy_resolution
        x, xerr = _errorbar_x(table, "true_energy_")
        ax_res.errorbar(
            x,
            table["resolution"],
            xerr=xerr,
            yerr=table["resolution_err"],
            fmt="o",
            ms=3,
            label=tag,
        )
        ax_bias.errorbar(
            x,
            table["bias"],
            xerr=xerr,
            yerr=table["bias_err"],
            fmt="o",
            ms=3,
            label=tag,
        )
    ax_res.set_ylabel("energy resolution (68 % half-width of ΔE/E)")
    ax_res.set_ylim(bottom=0)
    ax_bias.set_ylabel("energy bias (median ΔE/E)")
    ax_bias.axhline(0, color="gray", lw=0.8)
    for ax in (ax_res, ax_bias):
        _energy_axis(ax, "true energy [TeV]")
        ax.legend()
    fig.savefig(path, dpi=100)


def plot_angular_resolution(results, path):
    """
    68 % containment radius versus true energy, with its bootstrap error.

    Parameters
    ----------
    results : dict[str, ctapipe_sst1m.performance.metrics.TagPerformance]
        Per tag.
    path : Path
        Output PNG.
    """
    fig = Figure(figsize=(7, 5), layout="constrained")
    ax = fig.subplots()
    for tag, result in results.items():
        table = result.angular_resolution
        x, xerr = _errorbar_x(table, "true_energy_")
        ax.errorbar(
            x,
            table["angular_resolution_68"].to_value(u.deg),
            xerr=xerr,
            yerr=table["angular_resolution_68_err"].to_value(u.deg),
            fmt="o",
            ms=3,
            label=tag,
        )
    _energy_axis(ax, "true energy [TeV]")
    ax.set_ylabel("angular resolution (68 % containment) [deg]")
    ax.set_ylim(bottom=0)
    ax.legend()
    fig.savefig(path, dpi=100)


def plot_roc(results, path):
    """
    ROC curves and the AUC versus reconstructed energy.

    Parameters
    ----------
    results : dict[str, ctapipe_sst1m.performance.metrics.TagPerformance]
        Per tag.
    path : Path
        Output PNG.
    """
    fig = Figure(figsize=(12, 5), layout="constrained")
    ax_roc, ax_auc = fig.subplots(1, 2)
    for tag, result in results.items():
        roc = result.roc
        ax_roc.plot(
            roc["proton_efficiency"],
            roc["gamma_efficiency"],
            label=f"{tag} (AUC {roc.meta['AUC']:.3f})",
        )
        table = result.auc_per_energy
        x, xerr = _errorbar_x(table, "reco_energy_")
        ax_auc.errorbar(x, table["auc"], xerr=xerr, fmt="o", ms=3, label=tag)
    ax_roc.plot([0, 1], [0, 1], color="gray", ls=":", lw=0.8)
    ax_roc.set_xlabel("proton efficiency (false-positive rate)")
    ax_roc.set_ylabel("gamma efficiency (true-positive rate)")
    ax_roc.grid(True, alpha=0.3)
    ax_roc.legend()
    _energy_axis(ax_auc, "reconstructed energy [TeV]")
    ax_auc.set_ylabel("AUC")
    ax_auc.legend()
    fig.savefig(path, dpi=100)


def plot_gammaness_cuts(results, path):
    """
    Energy-dependent gammaness cuts and the gamma and proton efficiencies they give.

    Parameters
    ----------
    results : dict[str, ctapipe_sst1m.performance.metrics.TagPerformance]
        Per tag.
    path : Path
        Output PNG.
    """
    fig = Figure(figsize=(7, 8), layout="constrained")
    ax_cut, ax_eff = fig.subplots(2, 1, sharex=True)
    for i, (tag, result) in enumerate(results.items()):
        table = result.gammaness_cuts_efficiency
        x, xerr = _errorbar_x(table, "")
        color = f"C{i}"
        ax_cut.errorbar(
            x, table["cut"], xerr=xerr, fmt="o", ms=3, color=color, label=tag
        )
        ax_eff.plot(
            x, table["gamma_efficiency"], "o-", ms=3, color=color, label=f"{tag} gammas"
        )
        ax_eff.plot(
            x,
            table["proton_efficiency"],
            "s--",
            ms=3,
            color=color,
            label=f"{tag} protons",
        )
    efficiency = next(iter(results.values())).gammaness_cuts_efficiency.meta["GH_EFF"]
    ax_cut.set_ylabel(f"gammaness cut ({efficiency:.0%} gamma efficiency)")
    ax_eff.set_ylabel("fraction passing the cut")
    ax_eff.set_yscale("log")
    for ax in (ax_cut, ax_eff):
        _energy_axis(ax, "reconstructed energy [TeV]")
        ax.legend(fontsize="small")
    fig.savefig(path, dpi=100)


def plot_effective_area(results, path):
    """
    Effective area versus true energy, with valid predictions and after the gammaness cut.

    Parameters
    ----------
    results : dict[str, ctapipe_sst1m.performance.metrics.TagPerformance]
        Per tag; the tags without an effective area are left out.
    path : Path
        Output PNG.
    """
    fig = Figure(figsize=(7, 5), layout="constrained")
    ax = fig.subplots()
    for i, (tag, result) in enumerate(results.items()):
        table = result.effective_area
        if table is None:
            continue
        center = table["energy_center"].to_value(u.TeV)
        xerr = [
            center - table["energy_min"].to_value(u.TeV),
            table["energy_max"].to_value(u.TeV) - center,
        ]
        for suffix, marker, label in (
            ("", "o", f"{tag}, valid predictions"),
            ("_gh_cut", "s", f"{tag}, gammaness ≥ {table.meta['GH_CUT']:g}"),
        ):
            ax.errorbar(
                center,
                table[f"effective_area{suffix}"].to_value(u.m**2),
                xerr=xerr,
                yerr=table[f"effective_area{suffix}_err"].to_value(u.m**2),
                fmt=marker,
                ms=5,
                color=f"C{i}",
                mfc="none" if suffix else None,
                lw=1,
                label=label,
            )
    _energy_axis(ax, "true energy [TeV]")
    ax.set_yscale("log")
    ax.set_ylabel("effective area [m²]")
    ax.legend(fontsize="x-small", ncol=2)
    fig.savefig(path, dpi=100)


def plot_performance(directory, results):
    """
    Write energy_resolution.png, angular_resolution.png, roc.png, gammaness_cuts.png
    and, if a tag has an effective area (point-like gammas), effective_area.png.

    Parameters
    ----------
    directory : Path
        Output directory.
    results : dict[str, ctapipe_sst1m.performance.metrics.TagPerformance]
        Per tag.

    Returns
    -------
    list of Path
        The files written.
    """
    plots = {
        "energy_resolution.png": plot_energy_resolution,
        "angular_resolution.png": plot_angular_resolution,
        "roc.png": plot_roc,
        "gammaness_cuts.png": plot_gammaness_cuts,
    }
    if any(result.effective_area is not None for result in results.values()):
        plots["effective_area.png"] = plot_effective_area
    for name, function in plots.items():
        function(results, directory / name)
    return [directory / name for name in plots]
