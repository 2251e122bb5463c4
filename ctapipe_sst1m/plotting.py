"""Diagnostic plots of SST-1M DL1 files written by sst1m-process."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from ctapipe.instrument import SubarrayDescription  # noqa: E402
from ctapipe.io import read_table  # noqa: E402
from ctapipe.visualization import CameraDisplay  # noqa: E402

from .components.cleaning import ImageCleanerSST  # noqa: E402
from .io.dl1_monitoring import EVENT_NSB_GROUP, PEDESTAL_GROUP  # noqa: E402

__all__ = ["plot_nsb_diagnostics", "plot_simulation_overview", "plot_feature_importances"]


def plot_nsb_diagnostics(dl1_path, png_path, tel_id, cleaner=None):
    """
    Camera maps of the pedestal charge mean and std, the pixels whose picture
    threshold is raised, and the NSB level over time, for one telescope.

    Parameters
    ----------
    dl1_path : str or Path
        DL1 file written by sst1m-process from raw data.
    png_path : str or Path
        Output PNG.
    tel_id : int
        Telescope.
    cleaner : ImageCleanerSST or None
        Cleaner whose thresholds are shown (default configuration if None).
    """
    subarray = SubarrayDescription.from_hdf(dl1_path)
    geometry = subarray.tel[tel_id].camera.geometry
    cleaner = cleaner or ImageCleanerSST(subarray=subarray)
    windows = read_table(dl1_path, f"{PEDESTAL_GROUP}/tel_{tel_id:03d}")
    weights = np.asarray(windows["n_events"], dtype=float)
    mean = np.average(np.asarray(windows["charge_mean"]), axis=0, weights=weights)
    std = np.average(np.asarray(windows["charge_std"]), axis=0, weights=weights)
    parameters = cleaner.parameters_for(tel_id, float(np.mean(mean)))
    threshold = np.maximum(parameters.picture_threshold_pe, mean + parameters.stdev_scaling * std)

    nsb = read_table(dl1_path, f"{EVENT_NSB_GROUP}/tel_{tel_id:03d}")
    trigger = read_table(dl1_path, "/dl1/event/telescope/trigger")
    trigger = trigger[trigger["tel_id"] == tel_id]
    times = dict(zip(np.asarray(trigger["event_id"]), trigger["time"].tai.unix_tai))
    shown = np.isin(nsb["event_id"], list(times))
    event_times = np.array([times[e] for e in np.asarray(nsb["event_id"])[shown]])

    fig, axes = plt.subplots(2, 2, figsize=(12, 10), layout="constrained")
    for ax, values, title in (
        (axes[0, 0], mean, "pedestal charge mean [p.e.]"),
        (axes[0, 1], std, "pedestal charge std [p.e.]"),
        (axes[1, 0], threshold, f"picture threshold [p.e.] ({np.mean(threshold > parameters.picture_threshold_pe):.1%} raised)"),
    ):
        display = CameraDisplay(geometry, image=values, ax=ax, title=title)
        display.add_colorbar(ax=ax)
    ax = axes[1, 1]
    if event_times.size:
        ax.plot(event_times - event_times.min(), np.asarray(nsb["nsb_level_pe"])[shown], ".", ms=3)
    ax.set_xlabel("time since first event [s]")
    ax.set_ylabel("NSB level: mean pedestal charge [p.e.]")
    ax.set_title(f"{int(weights.sum())} pedestal events in {len(windows)} time windows")
    fig.suptitle(f"tel {tel_id}: NSB diagnostics of {dl1_path.name if hasattr(dl1_path, 'name') else dl1_path}")
    fig.savefig(png_path, dpi=80)
    plt.close(fig)


def plot_simulation_overview(dl1_path, card_path, png_path, n_images=4, crab_index=-2.6):
    """
    Overview of a simulated production: thrown and triggered energies (and the
    differential trigger rate for a Crab-like spectrum), intensity versus energy,
    and true images of the first triggered events.

    Parameters
    ----------
    dl1_path : str or Path
        DL1 file of the production (sst1m-simulate or ctapipe-process with sst1m_mc.yaml).
    card_path : str or Path
        Its simulation card (for the images).
    png_path : str or Path
        Output PNG.
    """
    from ctapipe.io import TableLoader

    from .io.simulation_source import SST1MSimulationSource

    distribution = read_table(dl1_path, "/simulation/service/shower_distribution")[0]
    config = read_table(dl1_path, "/configuration/simulation/run")[0]
    edges = np.asarray(distribution["bins_energy"])
    thrown = np.asarray(distribution["histogram"]).sum(axis=1)
    showers = read_table(dl1_path, "/simulation/event/subarray/shower")
    triggered, _ = np.histogram(np.asarray(showers["true_energy"]), edges)
    with TableLoader(dl1_path) as loader:
        events = loader.read_telescope_events(dl1_parameters=True, simulated=True, dl2=False, pointing=False)

    fig = plt.figure(figsize=(4 * n_images, 9), layout="constrained")
    grid = fig.add_gridspec(2, n_images)
    centers = np.sqrt(edges[:-1] * edges[1:])
    ax = fig.add_subplot(grid[0, : n_images // 2])
    ax.stairs(thrown, edges, label="thrown")
    ax.stairs(triggered, edges, label="triggered")
    weight = centers ** (crab_index - config["spectral_index"])
    rate = triggered * weight
    ax.stairs(rate / rate.max() * triggered.max(), edges, label=f"triggered × E^{crab_index - config['spectral_index']:.1f} (rate, a.u.)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("true energy [TeV]")
    ax.set_ylabel("showers per bin")
    ax.set_title(f"threshold (peak of the rate): {centers[np.argmax(rate)]:.2f} TeV")
    ax.legend()

    ax = fig.add_subplot(grid[0, n_images // 2 :])
    valid = np.isfinite(events["hillas_intensity"])
    ax.loglog(
        np.asarray(events["true_energy"])[valid],
        np.asarray(events["hillas_intensity"])[valid],
        ".", ms=2,
    )
    ax.set_xlabel("true energy [TeV]")
    ax.set_ylabel("image intensity [p.e.]")
    ax.set_title(f"{len(events)} telescope events of {len(showers)} triggered showers")

    with SST1MSimulationSource(card_path, max_events=n_images) as source:
        for column, event in enumerate(source):
            tel_id = event.trigger.tels_with_trigger[0]
            ax = fig.add_subplot(grid[1, column])
            geometry = source.subarray.tel[tel_id].camera.geometry
            display = CameraDisplay(geometry, image=event.simulation.tel[tel_id].true_image, ax=ax, title="")
            display.add_colorbar(ax=ax, label="true p.e.")
            shower = event.simulation.shower
            ax.set_title(
                f"tel {tel_id}: {shower.energy.to_value('TeV'):.2f} TeV,"
                f" impact {event.simulation.tel[tel_id].impact.distance.to_value('m'):.0f} m"
            )
    fig.suptitle(f"{config['n_showers']} simulated {'gamma' if showers['true_shower_primary_id'][0] == 0 else 'proton'} showers")
    fig.savefig(png_path, dpi=70)
    plt.close(fig)


def plot_feature_importances(importances, png_path, title=""):
    """
    Horizontal bar chart of the feature importances of a trained forest.

    Parameters
    ----------
    importances : astropy.table.Table
        column ``feature`` and one column of importances per model (e.g. ``norm``, ``sign``)
    png_path : path-like
    title : str
    """
    models = [c for c in importances.colnames if c != "feature"]
    fig, axes = plt.subplots(1, len(models), figsize=(5 * len(models), 0.35 * len(importances) + 1.5), squeeze=False)
    y = np.arange(len(importances))
    for ax, model in zip(axes[0], models):
        ax.barh(y, importances[model])
        ax.set_yticks(y, importances["feature"])
        ax.invert_yaxis()
        ax.set_xlabel(f"importance ({model})")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(png_path, dpi=100)
    plt.close(fig)
