"""
The HTML report of a night: one self-contained file (the plots are PNGs embedded as
base64 data URIs, the style inline), written under its name only once complete.

Sections: summary, runs and targets, skipped runs, the data-quality table (rows and
values that fail a cut highlighted), rates and NSB over time per telescope, the time
differences of the stereo pairs, θ² and Li & Ma significance per target and set-up
(`ctapipe_sst1m.analysis`, with the defaults of sst1m-analysis), and the failed steps
with links to their logs. A product that is missing or cannot be read does not stop the
report: its section says what is missing and why.
"""

import base64
import html
import io
import logging
import os
from pathlib import Path
from urllib.parse import quote

import astropy.units as u
import numpy as np
import tables
from matplotlib.dates import DateFormatter
from matplotlib.figure import Figure

from ..analysis.observations import (
    POINT_LIKE,
    irf_kind,
    open_datastore,
    resolve_target,
    select_observations,
    total_livetime,
    wobble_offsets,
)
from ..analysis.plots import plot_theta2
from ..analysis.theta2 import (
    rad_max_theta_cut,
    theta2_axis,
    theta2_significance,
    theta2_table,
    usable_theta2_max,
)
from ..io.atomic_output import AtomicOutput
from ..time import tai_time
from .quality import COLUMNS
from .quality_cuts import CUT_COLUMNS
from .time_series import RATE_BIN_S, event_rate, nsb_levels, stereo_delta_t_ns

__all__ = ["write_night_report"]

log = logging.getLogger(__name__)

#: θ² analysis: the defaults of sst1m-analysis (OFF regions, θ² axis, θ cut: RAD_MAX
#: at 1 TeV for point-like IRFs, the ON radius for full-enclosure IRFs)
N_OFF_REGIONS = 3
THETA2_MAX = 0.3 * u.deg**2
THETA2_BIN_WIDTH = 0.01 * u.deg**2
RAD_MAX_ENERGY = 1 * u.TeV
ON_RADIUS = 0.2 * u.deg

#: the columns of the θ² table: key of the result, header
THETA2_COLUMNS = (
    ("n_observations", "observations"),
    ("livetime_h", "live time [h]"),
    ("theta_cut_deg", "θ cut [deg]"),
    ("n_on", "N on"),
    ("n_off", "N off"),
    ("alpha", "α"),
    ("excess", "excess"),
    ("significance", "Li & Ma significance [σ]"),
)
#: errors of a product that cannot be read (not HDF5, not a DL1 of the telescope...)
UNREADABLE = (OSError, ValueError, LookupError, tables.HDF5ExtError)

STYLE = """
body { font-family: sans-serif; margin: 2em; }
table { border-collapse: collapse; font-size: 0.85em; }
th, td { border: 1px solid #bbb; padding: 2px 6px; text-align: right; }
th { background: #eee; }
tr.bad td { background: #fde8e8; }
td.failed { background: #f4a3a3; font-weight: bold; }
.scroll { overflow-x: auto; }
.note { color: #a33; }
img { max-width: 100%; }
"""


def _text(value):
    return html.escape(str(value))


def _note(text):
    return f'<p class="note">{_text(text)}</p>'


def _table(header, rows, row_classes=None, cell_classes=None, titles=None):
    """An HTML table; ``rows`` are lists of HTML cell contents."""
    titles = titles or [""] * len(header)
    head = "".join(
        f'<th title="{_text(title)}">{_text(name)}</th>'
        for name, title in zip(header, titles)
    )
    body = []
    for i, row in enumerate(rows):
        cells = "".join(
            f'<td class="{cell_classes[i][j] if cell_classes else ""}">{cell}</td>'
            for j, cell in enumerate(row)
        )
        body.append(f'<tr class="{row_classes[i] if row_classes else ""}">{cells}</tr>')
    return f'<div class="scroll"><table><tr>{head}</tr>{"".join(body)}</table></div>'


def _section(anchor, title, content):
    return f'<section id="{anchor}"><h2>{_text(title)}</h2>{content}</section>'


def _image(figure_or_png, alt):
    """An <img> of a matplotlib Figure (or of PNG bytes) as a base64 data URI."""
    png = figure_or_png
    if isinstance(figure_or_png, Figure):
        buffer = io.BytesIO()
        figure_or_png.savefig(buffer, format="png", dpi=80)
        png = buffer.getvalue()
    data = base64.b64encode(png).decode("ascii")
    return f'<p><img alt="{_text(alt)}" src="data:image/png;base64,{data}"></p>'


def _guarded(anchor, title, build, *args):
    """The section made by ``build(*args)``, or a note saying why it could not be made."""
    try:
        content = build(*args)
    except Exception as error:  # a product that cannot be read must not stop the report
        log.exception("report section %r", title)
        content = _note(f"this section could not be made: {error}")
    return _section(anchor, title, content)


def _existing(paths, notes, what):
    """The paths that exist; a note in ``notes`` for those that do not."""
    paths = [Path(p) for p in paths]
    absent = [p for p in paths if not p.exists()]
    if absent:
        notes.append(f"missing {what}: {', '.join(map(str, absent))}")
    return [p for p in paths if p.exists()]


def _summary(night, runs, skipped, quality, steps):
    targets = sorted({r["target"] for r in runs})
    statuses = [step["status"] for step in steps]
    counts = [statuses.count(status) for status in ("done", "skipped", "failed")]
    items = [
        ("night", night),
        ("targets", ", ".join(targets) or "none"),
        ("runs", len({r["run"] for r in runs})),
        ("runs and telescopes", len(runs)),
        ("skipped runs (no sky target)", len(skipped)),
        ("steps done / skipped (up to date) / failed", " / ".join(map(str, counts))),
    ]
    if quality is not None:
        good = int(np.count_nonzero(quality["good"]))
        items.append(("quality rows good / all", f"{good} / {len(quality)}"))
    return (
        "<ul>"
        + "".join(
            f"<li>{_text(name)}: <b>{_text(value)}</b></li>" for name, value in items
        )
        + "</ul>"
    )


def _runs(runs):
    if not runs:
        return _note("no run with DL1 products")
    rows = [
        [
            _text(r["target"]),
            _text(r["run"]),
            _text(r["tel_id"]),
            _text(len(r["dl1"])),
            _text(", ".join(Path(p).name for p in r["dl1"])),
            _text(len(r["stereo"])),
        ]
        for r in sorted(runs, key=lambda r: (r["run"], r["tel_id"]))
    ]
    header = ["target", "run", "telescope", "DL1 files", "names", "stereo files"]
    return _table(header, rows)


def _skipped(skipped):
    if not skipped:
        return "<p>none</p>"
    rows = [
        [
            _text(Path(s["path"]).name if s["path"] else "-"),
            _text(s["target"]),
            _text(s["reason"]),
        ]
        for s in skipped
    ]
    return _table(["raw file", "target", "reason"], rows)


def _cell(column, index):
    """A value of a quality column as text ("-": masked or NaN)."""
    value = column[index]
    if np.ndim(getattr(column, "mask", False)) and column.mask[index]:
        return "-"
    if hasattr(value, "isot"):  # astropy Time
        return value.utc.isot[:19]
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (float, np.floating)):
        return "-" if not np.isfinite(value) else f"{value:.4g}"
    return str(value)


def _quality(quality):
    if quality is None:
        return _note("no quality table: the quality step failed or did not run")
    if len(quality) == 0:
        return _note("the quality table has no rows")
    names = [name for name, *_ in COLUMNS if name in quality.colnames]
    names += ["good", "failed_cuts"]
    header = [
        f"{name} [{quality[name].unit}]"
        if getattr(quality[name], "unit", None)
        else name
        for name in names
    ]
    titles = [getattr(quality[name].info, "description", "") or "" for name in names]
    rows, row_classes, cell_classes = [], [], []
    # an empty failed_cuts is masked once the table was read back from ECSV
    failed_cuts = np.ma.filled(np.ma.asarray(quality["failed_cuts"]), "")
    for i in range(len(quality)):
        failed = {CUT_COLUMNS[cut][0] for cut in str(failed_cuts[i]).split(",") if cut}
        failed |= {"failed_cuts"} if failed else set()
        rows.append([_text(_cell(quality[name], i)) for name in names])
        row_classes.append("" if quality["good"][i] else "bad")
        cell_classes.append(["failed" if name in failed else "" for name in names])
    cuts = quality.meta.get("cuts", {})
    ranges = ", ".join(f"{name} {low:g}-{high:g}" for name, (low, high) in cuts.items())
    return (
        f"<p>Cuts: {_text(ranges)}. Rows failing a cut are shaded, the failed values"
        " marked; a value not measured (-) is not judged.</p>"
        + _table(header, rows, row_classes, cell_classes, titles)
    )


def _run_colours(runs):
    numbers = sorted({r["run"] for r in runs})
    return {run: f"C{i % 10}" for i, run in enumerate(numbers)}


def _time_series(runs):
    if not runs:
        return _note("no DL1 products")
    colours = _run_colours(runs)
    parts = []
    for tel_id in sorted({r["tel_id"] for r in runs}):
        figure = Figure(figsize=(10, 6), layout="constrained")
        rate_ax, nsb_ax = figure.subplots(2, 1, sharex=True)
        notes = []
        for run in sorted(runs, key=lambda r: r["run"]):
            if run["tel_id"] != tel_id:
                continue
            paths = _existing(run["dl1"], notes, "DL1 files")
            try:
                rates = event_rate(paths, tel_id)
                levels = nsb_levels(paths, tel_id)
            except UNREADABLE as error:
                notes.append(f"run {run['run']}: {error}")
                continue
            style = {
                "color": colours[run["run"]],
                "label": f"run {run['run']} ({run['target']})",
            }
            rate_ax.plot(tai_time(rates[0]).utc.datetime, rates[1], ".-", **style)
            nsb_ax.plot(tai_time(levels[0]).utc.datetime, levels[1], "o", **style)
        rate_ax.set_ylabel(f"shower events [Hz] ({RATE_BIN_S:g} s bins)")
        nsb_ax.set_ylabel("NSB level: mean pedestal charge [p.e.]")
        nsb_ax.set_xlabel("time [UTC]")
        nsb_ax.xaxis.set_major_formatter(DateFormatter("%H:%M:%S"))
        if rate_ax.get_legend_handles_labels()[0]:
            rate_ax.legend(fontsize="small")
        rate_ax.set_title(f"telescope {tel_id}")
        parts.append(f"<h3>telescope {tel_id}</h3>")
        parts += [_note(note) for note in notes]
        parts.append(_image(figure, f"rates and NSB of telescope {tel_id}"))
    return "".join(parts)


def _stereo(runs):
    stereo = {}
    for run in runs:
        for path in run["stereo"]:
            stereo.setdefault(run["run"], set()).add(Path(path))
    if not stereo:
        return _note("no stereo DL1 products")
    notes, delta_t = [], {}
    for run, paths in sorted(stereo.items()):
        paths = _existing(sorted(paths), notes, "stereo files")
        try:
            delta_t[run] = stereo_delta_t_ns(paths)
        except UNREADABLE as error:
            notes.append(f"run {run}: {error}")
    lines = [
        f"run {run}: {len(values)} pairs"
        + (
            f", median {np.median(values):.0f} ns, std {np.std(values):.0f} ns"
            if len(values)
            else ""
        )
        for run, values in delta_t.items()
    ]
    content = "<ul>" + "".join(f"<li>{_text(line)}</li>" for line in lines) + "</ul>"
    content += "".join(_note(note) for note in notes)
    pairs = [values for values in delta_t.values() if len(values)]
    if not pairs:
        return content
    colours = _run_colours(runs)
    edges = np.histogram_bin_edges(np.concatenate(pairs), bins=50)
    figure = Figure(figsize=(8, 4.5), layout="constrained")
    ax = figure.subplots()
    for run, values in delta_t.items():
        if len(values):
            ax.hist(
                values, edges, histtype="step", color=colours[run], label=f"run {run}"
            )
    ax.set_xlabel("Δt of the stereo pairs after the clock model [ns]")
    ax.set_ylabel("pairs")
    ax.legend(fontsize="small")
    return content + _image(figure, "stereo time differences")


def _theta2_of(directory, title):
    """θ² plot and significance of one DataStore (raises what prevents them)."""
    observations = select_observations(open_datastore(directory))
    kind = irf_kind(observations)
    target = resolve_target(observations)
    offsets = wobble_offsets(observations, target.position)
    if kind == POINT_LIKE:
        theta_cut = rad_max_theta_cut(observations, offsets, RAD_MAX_ENERGY)
    else:
        theta_cut = ON_RADIUS
    result = theta2_significance(
        observations, target.position, offsets, theta_cut, N_OFF_REGIONS
    )
    theta2_max = usable_theta2_max(offsets, N_OFF_REGIONS, THETA2_MAX, THETA2_BIN_WIDTH)
    table = theta2_table(
        observations,
        target.position,
        theta2_axis(theta2_max, THETA2_BIN_WIDTH),
        N_OFF_REGIONS,
    )
    png = io.BytesIO()
    plot_theta2(table, theta_cut, title, png)
    result["livetime_h"] = total_livetime(observations).to_value(u.h)
    result["n_observations"] = len(observations)
    return result, png.getvalue()


def _theta2(dl3_dirs):
    if not dl3_dirs:
        return _note("no DL3 products")
    header = ["target", "set-up", *(name for _, name in THETA2_COLUMNS)]
    rows, notes, images = [], [], []
    for target, setups in sorted(dl3_dirs.items()):
        for setup, directory in sorted(setups.items()):
            title = f"{target}, {setup}"
            try:
                result, png = _theta2_of(directory, title)
            except Exception as error:  # too few events, missing files: say so, go on
                notes.append(_note(f"θ² of {title} not made: {error}"))
                continue
            rows.append(
                [_text(target), _text(setup)]
                + [_text(f"{result[key]:.4g}") for key, _ in THETA2_COLUMNS]
            )
            images.append(_image(png, f"θ² of {title}"))
    table = _table(header, rows) if rows else ""
    return table + "".join(notes) + "".join(images)


def _failed_steps(steps, report_dir):
    failed = [s for s in steps if s["status"] == "failed"]
    if not failed:
        return "<p>none</p>"
    rows = []
    for step in failed:
        log_path = step.get("log")
        if log_path is not None and Path(log_path).exists():
            relative = os.path.relpath(Path(log_path).resolve(), report_dir.resolve())
            href = html.escape(quote(Path(relative).as_posix()), quote=True)
            link = f'<a href="{href}">{_text(Path(log_path).name)}</a>'
        else:
            link = _text("no log" if log_path is None else f"log missing: {log_path}")
        rows.append(
            [
                _text(step["step"]),
                _text(step["product"]),
                _text(f"{step['duration_s']:.1f}"),
                _text(step.get("message", "")),
                link,
            ]
        )
    return _table(["step", "product", "duration [s]", "message", "log"], rows)


def write_night_report(path, night, runs, skipped, quality, steps, dl3_dirs):
    """
    Write the HTML report of a night (one file, replaced atomically).

    Parameters
    ----------
    path : str or Path
        The HTML file.
    night : str
        YYYYMMDD.
    runs : list of dict
        ``{"target": str, "run": int, "tel_id": int, "dl1": [Path], "stereo": [Path]}``
        per run and telescope.
    skipped : list of dict
        ``{"path": Path or None, "target": str, "reason": str}`` per run without sky
        target (dark, transition, bias).
    quality : astropy.table.Table or None
        From `ctapipe_sst1m.night.quality.quality_table` (None: not made).
    steps : list of dict
        ``{"step", "product", "status" ("done", "skipped" or "failed"), "duration_s",
        "log" (Path or None), "message"}`` per step.
    dl3_dirs : dict
        ``{target: {setup: Path}}`` DataStore directories (hdu and obs index).
    """
    path = Path(path)
    sections = [
        _guarded("summary", "Summary", _summary, night, runs, skipped, quality, steps),
        _guarded("runs", "Runs and targets", _runs, runs),
        _guarded("skipped", "Skipped runs", _skipped, skipped),
        _guarded("quality", "Data quality", _quality, quality),
        _guarded("rates", "Rates and NSB over time", _time_series, runs),
        _guarded("stereo", "Stereo time differences", _stereo, runs),
        _guarded("theta2", "θ² and significance", _theta2, dl3_dirs),
        _guarded("failed", "Failed steps", _failed_steps, steps, path.parent),
    ]
    title = f"SST-1M night {night}"
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{_text(title)}</title><style>{STYLE}</style></head>"
        f"<body><h1>{_text(title)}</h1>{''.join(sections)}</body></html>\n"
    )
    with AtomicOutput(path, overwrite=True) as output:
        output.temporary.write_text(page, encoding="utf-8")
        output.commit()
