"""
The rows and tables of the R0 -> DL1 benchmark (`r0_dl1.py`).

A `Measurement` is one row: an input, a command line (variant), its events/s
excluding start-up, start-up, wall time of ``--max-events n0`` and peak RSS in
one environment; `mix_rows` adds the computed night-mix rows. The tables are
plain aligned text, one environment alone or two side by side with ratios.
"""

import statistics
from dataclasses import dataclass

#: t_N - t_n0 below this (s): rate dominated by start-up jitter, flagged in the table
MIN_SPAN_S = 2.0

#: input label of the computed night mix
MIX_LABEL = "night mix"


@dataclass
class Measurement:
    """One row of the result table."""

    input: str
    #: camera events of the input (None: computed row)
    n_events: int | None
    variant: str
    rate_hz: float
    #: extrapolated to zero events (None: computed row)
    startup_s: float | None
    #: best wall time of ``--max-events n0`` (None: computed row)
    n0_wall_s: float | None
    peak_rss_mb: float | None
    #: False if the rate comes from a time difference too short to be precise
    precise: bool = True


def mix_rows(rows, gamma_label, proton_label, gamma_fraction):
    """
    The night-mix rows of an environment, from its shower-rich and proton rows.

    Parameters
    ----------
    rows : list of Measurement
    gamma_label, proton_label : str
        Input labels of the shower-rich and proton runs.
    gamma_fraction : float
        Fraction of the mix's events like those of the shower-rich run.

    Returns
    -------
    list of Measurement
        One per variant measured on both: events/s of the per-event time
        ``f / rate_gammas + (1 - f) / rate_protons``, the larger peak RSS.
    """
    by_key = {(r.input, r.variant): r for r in rows}
    mixed = []
    for variant in dict.fromkeys(r.variant for r in rows):
        gammas = by_key.get((gamma_label, variant))
        protons = by_key.get((proton_label, variant))
        if gammas is None or protons is None:
            continue
        seconds = gamma_fraction / gammas.rate_hz
        seconds += (1 - gamma_fraction) / protons.rate_hz
        mixed.append(
            Measurement(
                input=MIX_LABEL,
                n_events=None,
                variant=variant,
                rate_hz=1 / seconds,
                startup_s=None,
                n0_wall_s=None,
                peak_rss_mb=max(gammas.peak_rss_mb, protons.peak_rss_mb),
                precise=gammas.precise and protons.precise,
            )
        )
    return mixed


def format_rate(measurement):
    """Events/s of a measurement, ``*`` if imprecise."""
    rate = measurement.rate_hz
    text = "n/a" if rate != rate else f"{rate:.0f}"
    return text + ("" if measurement.precise else " *")


def format_seconds(seconds):
    """Seconds with two decimals, ``-`` if not measured."""
    return "-" if seconds is None else f"{seconds:.2f}"


def format_peak_rss(measurement):
    """Peak RSS of a measurement in MB, ``-`` if not measured."""
    rss = measurement.peak_rss_mb
    return "-" if rss is None else f"{rss:.0f}"


def format_events(measurement):
    """Events of the input, ``-`` for a computed row."""
    n = measurement.n_events
    return "-" if n is None else f"{n:,}"


def render_table(header, cells, align):
    """
    Columns aligned under a header and a rule.

    Parameters
    ----------
    header : tuple of str
    cells : list of tuple of str
    align : list of str
        Format alignment of each column (``<`` or ``>``).

    Returns
    -------
    str
    """
    widths = [max(len(c[i]) for c in [header, *cells]) for i in range(len(header))]

    def line(values):
        return "  ".join(f"{v:{a}{w}}" for v, a, w in zip(values, align, widths))

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), rule, *(line(c) for c in cells)])


def format_table(rows, n0):
    """
    The result table of one environment as text.

    Parameters
    ----------
    rows : list of Measurement
    n0 : int

    Returns
    -------
    str
    """
    header = (
        "input",
        "events",
        "variant",
        "events/s",
        "start-up s",
        f"--max-events {n0} s",
        "peak RSS MB",
    )
    cells = [
        (
            r.input,
            format_events(r),
            r.variant,
            format_rate(r),
            format_seconds(r.startup_s),
            format_seconds(r.n0_wall_s),
            format_peak_rss(r),
        )
        for r in rows
    ]
    return render_table(header, cells, ["<", ">", "<", ">", ">", ">", ">"])


def row_key(measurement):
    """The input and the variant: what a row measures."""
    return measurement.input, measurement.variant


def ratio(new, baseline):
    """
    ``new / baseline`` as text, ``-`` if either is missing or not a number.

    Parameters
    ----------
    new, baseline : float or None

    Returns
    -------
    str
    """
    if not new or not baseline or new != new or baseline != baseline:
        return "-"
    return f"{new / baseline:.2f}"


def format_comparison_table(rows, baseline_rows, n0):
    """
    The result table of two environments side by side, with ratios new / baseline.

    Parameters
    ----------
    rows : list of Measurement
        Of the running ("new") environment.
    baseline_rows : list of Measurement
    n0 : int

    Returns
    -------
    str
    """
    baseline_by_key = {row_key(r): r for r in baseline_rows}
    header = (
        "input",
        "events",
        "variant",
        "events/s new",
        "baseline",
        "ratio",
        "start-up s new",
        "baseline",
        f"--max-events {n0} s new",
        "baseline",
        "peak RSS MB new",
        "baseline",
        "ratio",
    )
    cells = []
    for r in rows:
        base = baseline_by_key.get(row_key(r))
        if base is None:
            compared = ["-"] * 6
        else:
            compared = [
                format_rate(base),
                ratio(r.rate_hz, base.rate_hz),
                format_seconds(base.startup_s),
                format_seconds(base.n0_wall_s),
                format_peak_rss(base),
                ratio(r.peak_rss_mb, base.peak_rss_mb),
            ]
        cells.append(
            (
                r.input,
                format_events(r),
                r.variant,
                format_rate(r),
                *compared[:2],
                format_seconds(r.startup_s),
                compared[2],
                format_seconds(r.n0_wall_s),
                compared[3],
                format_peak_rss(r),
                *compared[4:6],
            )
        )
    align = ["<", ">", "<"] + [">"] * 10
    return render_table(header, cells, align)


def ratio_summary_lines(rows, baseline_rows):
    """
    Median and range of the ratios new / baseline of events/s and of peak RSS.

    Only measured rows whose rates are precise in both environments enter the
    events/s summary; computed (night mix) rows enter neither.

    Parameters
    ----------
    rows, baseline_rows : list of Measurement

    Returns
    -------
    list of str
    """
    baseline_by_key = {row_key(r): r for r in baseline_rows}
    pairs = [
        (r, baseline_by_key[row_key(r)])
        for r in rows
        if row_key(r) in baseline_by_key and r.n_events is not None
    ]
    rate_ratios = [
        new.rate_hz / base.rate_hz
        for new, base in pairs
        if new.precise and base.precise
    ]
    rss_ratios = [new.peak_rss_mb / base.peak_rss_mb for new, base in pairs]
    lines = []
    for label, ratios in (
        (f"events/s (rows with t_N - t_n0 >= {MIN_SPAN_S} s)", rate_ratios),
        ("peak RSS (all measured rows)", rss_ratios),
    ):
        if ratios:
            lines.append(
                f"new / baseline {label}: median {statistics.median(ratios):.2f},"
                f" {min(ratios):.2f} to {max(ratios):.2f} over {len(ratios)} rows"
            )
    return lines


def print_stages(stages):
    """
    Print the per-stage tables of the running environment.

    Parameters
    ----------
    stages : dict
        Per variant label, `r0_dl1_stages.StageTimes` of the inputs and the mix.
    """
    # imports sst1m-process, as late as the stages themselves
    from r0_dl1_stages import stage_table

    for variant, times in stages.items():
        print(
            f"Stages of {variant} in this process (ms per camera event, % of the"
            " event loop; R0->R1 and NSB: cProfile shares of the source's time):"
        )
        print(render_table(*stage_table(times)))
        for t in times:
            if t.input != MIX_LABEL:
                print(
                    f"  {t.input}: set-up {t.setup_s:.2f} s (components, after"
                    f" imports), finish {t.finish_s:.2f} s, {t.n_events:,} events"
                )
        print()
