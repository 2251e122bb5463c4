"""Diagnostic plots of SST-1M DL1 files written by sst1m-process."""

from pathlib import Path
from typing import NamedTuple

import numpy as np
from ctapipe.instrument import SubarrayDescription
from ctapipe.io import read_table
from ctapipe.visualization import CameraDisplay
from matplotlib.figure import Figure

from .calibration.nsb import NsbCalibrator
from .image.cleaning import ImageCleanerSST
from .io.dl1_monitoring import EVENT_NSB_GROUP, PEDESTAL_GROUP

__all__ = [
    "FEW_PEDESTAL_EVENTS",
    "PedestalThresholds",
    "camera_display",
    "pedestal_thresholds",
    "plot_nsb_diagnostics",
    "plot_simulation_overview",
    "plot_feature_importances",
]

#: NSB maps from fewer pedestal events are rough: the fewest of a time window used for
#: re-cleaning (``NsbCalibrator.min_number_pedestals``)
FEW_PEDESTAL_EVENTS = NsbCalibrator.min_number_pedestals.default_value


def camera_display(ax, geometry, image, title="", label="charge [p.e.]", mask=None):
    """
    A camera image with a colour bar, and the pixels of ``mask`` outlined in cyan.

    Nothing redraws the figure meanwhile: ``CameraDisplay.add_colorbar`` and its
    autoupdate redraw the whole figure at every call, slow for figures of many cameras.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
    geometry : ctapipe.instrument.CameraGeometry
    image : np.ndarray
        Value per pixel.
    title, label : str
        Title of the axes and label of the colour bar.
    mask : np.ndarray or None
        Pixels to outline (e.g. the cleaning mask).

    Returns
    -------
    ctapipe.visualization.CameraDisplay
    """
    display = CameraDisplay(geometry, image=image, ax=ax, title=title, autoupdate=False)
    if mask is not None and mask.any():
        display.highlight_pixels(mask, color="cyan", linewidth=0.8)
    ax.figure.colorbar(display.pixels, ax=ax, label=label)
    return display


class PedestalThresholds(NamedTuple):
    """Pedestal statistics of one telescope and the cleaning thresholds they give."""

    #: pedestal charge mean and std per pixel (p.e.), averaged over the time windows
    mean: np.ndarray
    std: np.ndarray
    #: picture threshold per pixel (p.e.)
    threshold: np.ndarray
    #: picture threshold of the cleaning parameter set of the NSB level (p.e.):
    #: the pedestals raise the pixels above it
    nominal_threshold: float
    n_pedestal_events: int
    n_windows: int


def pedestal_thresholds(dl1_path, tel_id, cleaner=None):
    """
    The pedestal statistics of a DL1 file of sst1m-process and the picture thresholds
    of the SST-1M cleaning: ``max(picture threshold, mean + stdev_scaling * std)``.

    Parameters
    ----------
    dl1_path : str or Path
        DL1 file written by sst1m-process from raw data.
    tel_id : int
        Telescope.
    cleaner : ImageCleanerSST or None
        Cleaner whose parameters are used (default configuration if None).

    Returns
    -------
    PedestalThresholds
    """
    subarray = SubarrayDescription.from_hdf(dl1_path)
    cleaner = cleaner or ImageCleanerSST(subarray=subarray)
    windows = read_table(dl1_path, f"{PEDESTAL_GROUP}/tel_{tel_id:03d}")
    weights = np.asarray(windows["n_events"], dtype=float)
    mean = np.average(np.asarray(windows["charge_mean"]), axis=0, weights=weights)
    std = np.average(np.asarray(windows["charge_std"]), axis=0, weights=weights)
    parameters = cleaner.parameters_for(tel_id, float(np.mean(mean)))
    threshold = np.maximum(
        parameters.picture_threshold_pe, mean + parameters.stdev_scaling * std
    )
    return PedestalThresholds(
        mean,
        std,
        threshold,
        parameters.picture_threshold_pe,
        int(weights.sum()),
        len(windows),
    )


def plot_nsb_diagnostics(
    dl1_path, png_path, tel_id, cleaner=None, min_pedestal_events=FEW_PEDESTAL_EVENTS
):
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
    min_pedestal_events : int
        With fewer pedestal events the title says that the maps come from only
        that many (default: `FEW_PEDESTAL_EVENTS`).
    """
    geometry = SubarrayDescription.from_hdf(dl1_path).tel[tel_id].camera.geometry
    pedestals = pedestal_thresholds(dl1_path, tel_id, cleaner)
    raised = np.mean(pedestals.threshold > pedestals.nominal_threshold)

    nsb = read_table(dl1_path, f"{EVENT_NSB_GROUP}/tel_{tel_id:03d}")
    trigger = read_table(dl1_path, "/dl1/event/telescope/trigger")
    trigger = trigger[trigger["tel_id"] == tel_id]
    times = dict(zip(np.asarray(trigger["event_id"]), trigger["time"].tai.unix_tai))
    shown = np.isin(nsb["event_id"], list(times))
    event_times = np.array([times[e] for e in np.asarray(nsb["event_id"])[shown]])

    fig = Figure(figsize=(12, 10), layout="constrained")
    axes = fig.subplots(2, 2)
    for ax, values, title in (
        (axes[0, 0], pedestals.mean, "pedestal charge mean [p.e.]"),
        (axes[0, 1], pedestals.std, "pedestal charge std [p.e.]"),
        (
            axes[1, 0],
            pedestals.threshold,
            f"picture threshold [p.e.] ({raised:.1%} raised)",
        ),
    ):
        camera_display(ax, geometry, values, title=title, label="")
    ax = axes[1, 1]
    if event_times.size:
        ax.plot(
            event_times - event_times.min(),
            np.asarray(nsb["nsb_level_pe"])[shown],
            ".",
            ms=3,
        )
    ax.set_xlabel("time since first event [s]")
    ax.set_ylabel("NSB level: mean pedestal charge [p.e.]")
    n_pedestals = pedestals.n_pedestal_events
    ax.set_title(f"{n_pedestals} pedestal events in {pedestals.n_windows} time windows")
    title = f"tel {tel_id}: NSB diagnostics of {Path(dl1_path).name}"
    few = n_pedestals < min_pedestal_events
    if few:
        title += (
            f"\nthe maps come from only {n_pedestals} pedestal events (fewer than"
            f" {min_pedestal_events}): rough estimates of the pedestal mean, std and thresholds"
        )
    fig.suptitle(title, color="C3" if few else "black")
    fig.savefig(png_path, dpi=80)


def plot_simulation_overview(
    dl1_path, card_path, png_path, n_images=4, crab_index=-2.6
):
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

    from .simulation.source import SST1MSimulationSource

    distribution = read_table(dl1_path, "/simulation/service/shower_distribution")[0]
    config = read_table(dl1_path, "/configuration/simulation/run")[0]
    edges = np.asarray(distribution["bins_energy"])
    thrown = np.asarray(distribution["histogram"]).sum(axis=1)
    showers = read_table(dl1_path, "/simulation/event/subarray/shower")
    triggered, _ = np.histogram(np.asarray(showers["true_energy"]), edges)
    with TableLoader(dl1_path) as loader:
        events = loader.read_telescope_events(
            dl1_parameters=True, simulated=True, dl2=False, pointing=False
        )

    fig = Figure(figsize=(4 * n_images, 9), layout="constrained")
    grid = fig.add_gridspec(2, n_images)
    centers = np.sqrt(edges[:-1] * edges[1:])
    ax = fig.add_subplot(grid[0, : n_images // 2])
    ax.stairs(thrown, edges, label="thrown")
    ax.stairs(triggered, edges, label="triggered")
    weight = centers ** (crab_index - config["spectral_index"])
    rate = triggered * weight
    ax.stairs(
        rate / rate.max() * triggered.max(),
        edges,
        label=f"triggered × E^{crab_index - config['spectral_index']:.1f} (rate, a.u.)",
    )
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
        ".",
        ms=2,
    )
    ax.set_xlabel("true energy [TeV]")
    ax.set_ylabel("image intensity [p.e.]")
    ax.set_title(f"{len(events)} telescope events of {len(showers)} triggered showers")

    with SST1MSimulationSource(card_path, max_events=n_images) as source:
        for column, event in enumerate(source):
            tel_id = event.trigger.tels_with_trigger[0]
            ax = fig.add_subplot(grid[1, column])
            geometry = source.subarray.tel[tel_id].camera.geometry
            camera_display(
                ax, geometry, event.simulation.tel[tel_id].true_image, label="true p.e."
            )
            shower = event.simulation.shower
            ax.set_title(
                f"tel {tel_id}: {shower.energy.to_value('TeV'):.2f} TeV,"
                f" impact {event.simulation.tel[tel_id].impact.distance.to_value('m'):.0f} m"
            )
    fig.suptitle(
        f"{config['n_showers']} simulated {'gamma' if showers['true_shower_primary_id'][0] == 0 else 'proton'} showers"
    )
    fig.savefig(png_path, dpi=70)


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
    fig = Figure(figsize=(5 * len(models), 0.35 * len(importances) + 1.5))
    axes = fig.subplots(1, len(models), squeeze=False)
    y = np.arange(len(importances))
    for ax, model in zip(axes[0], models):
        ax.barh(y, importances[model])
        ax.set_yticks(y, importances["feature"])
        ax.invert_yaxis()
        ax.set_xlabel(f"importance ({model})")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(png_path, dpi=100)
