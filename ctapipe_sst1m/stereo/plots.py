"""
Plot of a stereo matching: coincidences versus clock offset, or the Δt of the pairs.

The figure is a `matplotlib.figure.Figure`, not pyplot's: no backend is chosen and no
global figure state is kept.
"""

from matplotlib.figure import Figure

__all__ = ["plot_coincidences"]


def plot_coincidences(result):
    """
    The coincidences per scanned offset (SlidingWindow) or the Δt of the matched pairs.

    Parameters
    ----------
    result : ctapipe_sst1m.stereo.coincidence.MatchResult
        The matching.

    Returns
    -------
    matplotlib.figure.Figure
        Save it with ``fig.savefig(path, dpi=80)``.
    """
    fig = Figure(figsize=(7, 4.5), layout="constrained")
    ax = fig.subplots()
    if result.scan_offsets_ns is not None:
        ax.plot(
            result.scan_offsets_ns / 1e6,
            result.scan_coincidences,
            drawstyle="steps-mid",
        )
        ax.axvline(
            result.offset_ns / 1e6,
            color="C1",
            label=f"offset {result.offset_ns / 1e6:.3f} ms",
        )
        if result.offset_peak is not None:
            ax.axhline(
                result.offset_peak.chance_level,
                color="C2",
                linestyle=":",
                label="chance level",
            )
        ax.set_xlabel("telescope 22 − telescope 21 clock offset [ms]")
        ax.set_ylabel("coincidences")
        ax.legend()
    else:
        ax.hist(result.delta_t_ns, bins=50)
        ax.set_xlabel("Δt of matched pairs [ns]")
        ax.set_ylabel("pairs")
    ax.set_title(f"{result.method}: {len(result.index_1)} matched pairs")
    return fig
