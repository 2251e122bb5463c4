"""
Demo: real SST-1M raw data and a short simulated stereo run through the SST-1M chain.

1. ``sst1m-quickstart`` writes sst1m.yaml, sst1m_mc.yaml and sst1m_models.yaml;
2. the real raw files shipped with protozfits (2018 telescope-22 file; 2017 camera
   file) go through stock ``ctapipe-process --config sst1m.yaml`` and through
   ``sst1m-process`` (plus pointing, pedestal and NSB monitoring); the demo says what
   they hold and plots the brightest images after cleaning and the NSB diagnostics;
3. ``sst1m-simulate --raw-dir`` writes raw runs of both telescopes, which go through
   the same chain: ``ctapipe-process`` per telescope, ``sst1m-stereo-match``, and a
   picture of the brightest stereo events;
4. a synthetic night (two targets, a dark run, a corrupt file) through ``sst1m-night`` on
   two Dask workers: DL1, stereo, the data-quality table and the HTML report; the
   corrupt file is reported and the night completes;
5. a summary of every step: input, events in and out, time, files written.

Run with ``make demo`` or ``python examples/demo.py --output-dir demo_output``.
"""

import argparse
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

import numpy as np
import tables
from astropy.io import fits
from astropy.table import Table
from ctapipe.instrument import SubarrayDescription
from ctapipe.io import read_table
from matplotlib.figure import Figure

from ctapipe_sst1m.io.dl1_monitoring import SUMMARY_TABLE
from ctapipe_sst1m.plotting import (
    FEW_PEDESTAL_EVENTS,
    camera_display,
    pedestal_thresholds,
    plot_nsb_diagnostics,
)
from ctapipe_sst1m.simulation.night import write_synthetic_night
from ctapipe_sst1m.tools.summary import format_size, path_size

RAW_FILES = {
    # renamed to the SST-1M convention so that obs_id = date + run: (file, telescope, what)
    "SST1M2_20180822_0001": (
        "example_SST1M_20180822.fits.fz",
        22,
        "telescope 22, 2018",
    ),
    "SST1M1_20171031_0010": (
        "example_100evts.fits.fz",
        21,
        "2017 camera, telescope 21",
    ),
}
#: the example files carry no TARGET keyword: the Crab, as in the reference's processing
CRAB = [
    "--SST1MEventSource.pointing_ra_deg=83.6333",
    "--SST1MEventSource.pointing_dec_deg=22.0145",
]
#: the simulated run: ~10 s, some 60 stereo events
SIMULATION = {
    "particle": "gamma",
    "spectrum": "diffuse",
    "n-showers": 800,
    "seed": 1,
    "SimulateTool.energy_min_tev": 1.0,
}
#: hot pixels: the pedestals raise their picture threshold to this many times the nominal
HOT_THRESHOLD_FACTOR = 2
TRIGGER_TABLE = "/dl1/event/subarray/trigger"


@dataclass
class Step:
    """One step of the demo, for the summary at the end."""

    name: str
    input: str
    events: str
    seconds: float
    outputs: list


def announce(message):
    """Say what the next step does."""
    print(f"\n=== {message}", flush=True)


def run(*command, cwd):
    """Run a console script of this environment in ``cwd``, stop on failure; its time (s)."""
    executable = Path(sys.executable).parent / command[0]
    print("$", " ".join(map(str, command)), flush=True)
    start = time.perf_counter()
    subprocess.run([str(executable), *map(str, command[1:])], check=True, cwd=cwd)
    return time.perf_counter() - start


def raw_events(paths):
    """Camera events (all types) in raw files, from their headers."""
    return sum(fits.getheader(path, "Events")["ZNAXIS2"] for path in paths)


def n_rows(path, table):
    """Rows of a table of an HDF5 file."""
    with tables.open_file(path) as h5file:
        return h5file.get_node(table).nrows


@dataclass
class RealRun:
    """What a real raw file holds, from its DL1 file of sst1m-process."""

    name: str
    what: str
    n_pedestal: int
    n_shower: int
    n_cleaned: int
    nsb_level_pe: float
    n_map_pedestals: int
    #: pixels whose picture threshold the pedestals raise HOT_THRESHOLD_FACTOR times
    hot: np.ndarray
    hot_center_m: tuple
    max_pedestal_charge_pe: float
    #: shower events keeping pixels of the hot region, and those keeping only such pixels
    n_hot_kept: int
    n_only_hot_kept: int

    @classmethod
    def read(cls, name, what, dl1_path, tel_id):
        summary = read_table(dl1_path, SUMMARY_TABLE)[0]
        images = read_table(dl1_path, f"/dl1/event/telescope/images/tel_{tel_id:03d}")
        masks = np.asarray(images["image_mask"])
        pedestals = pedestal_thresholds(dl1_path, tel_id)
        hot = pedestals.threshold >= HOT_THRESHOLD_FACTOR * pedestals.nominal_threshold
        geometry = SubarrayDescription.from_hdf(dl1_path).tel[tel_id].camera.geometry
        kept = masks.any(axis=1)
        hot_kept = (masks & hot).any(axis=1)
        return cls(
            name=name,
            what=what,
            n_pedestal=int(summary["n_pedestal_events"]),
            n_shower=len(images),
            n_cleaned=int(np.count_nonzero(kept)),
            nsb_level_pe=float(summary["mean_nsb_level_pe"]),
            n_map_pedestals=pedestals.n_pedestal_events,
            hot=hot,
            hot_center_m=(
                float(np.mean(geometry.pix_x.to_value("m")[hot]))
                if hot.any()
                else np.nan,
                float(np.mean(geometry.pix_y.to_value("m")[hot]))
                if hot.any()
                else np.nan,
            ),
            max_pedestal_charge_pe=float(pedestals.mean.max()),
            n_hot_kept=int(np.count_nonzero(hot_kept)),
            n_only_hot_kept=int(
                np.count_nonzero(hot_kept & ~(masks & ~hot).any(axis=1))
            ),
        )

    def lines(self):
        """What the file holds, in a few lines."""
        lines = [
            f"{self.name} ({self.what}): {self.n_pedestal + self.n_shower} events read,"
            f" {self.n_pedestal} pedestal and {self.n_shower} shower events",
            f"  images keeping pixels after cleaning: {self.n_cleaned} of {self.n_shower};"
            f" NSB level {self.nsb_level_pe:.2f} p.e.",
            f"  the NSB maps and the raised thresholds come from"
            f" {'only ' if self.n_map_pedestals < FEW_PEDESTAL_EVENTS else ''}"
            f"{self.n_map_pedestals} pedestal events",
        ]
        if self.hot.any():
            x, y = self.hot_center_m
            lines += [
                f"  the bright spot at x = {x:.2f} m, y = {y:.2f} m ({np.count_nonzero(self.hot)}"
                f" pixels, pedestal charge up to {self.max_pedestal_charge_pe:.0f} p.e.) is in"
                " every event, pedestal events too:",
                "  a hot, saturated region; the thresholds raised by the pedestal noise"
                f" keep none of its pixels in {self.n_shower - self.n_hot_kept} of"
                f" {self.n_shower} shower events",
            ]
            if self.n_hot_kept:
                only = (
                    " (and nothing else)"
                    if self.n_only_hot_kept == self.n_hot_kept
                    else ""
                )
                lines.append(
                    f"  {self.n_hot_kept} events keep pixels of the spot{only}"
                )
        return lines


def plot_brightest_images(dl1_path, png_path, tel_id, run_facts, n_images=6):
    """
    The brightest images after cleaning (charge of the pixels kept) with their masks:
    one panel per image that keeps pixels, at most ``n_images``; if none keeps any,
    the brightest event before cleaning, said so.

    Returns
    -------
    int
        Images after cleaning shown.
    """
    geometry = SubarrayDescription.from_hdf(dl1_path).tel[tel_id].camera.geometry
    images = read_table(dl1_path, f"/dl1/event/telescope/images/tel_{tel_id:03d}")
    charge, masks = np.asarray(images["image"]), np.asarray(images["image_mask"])
    kept_charge = np.where(masks, charge, 0).sum(axis=1)
    cleaned = np.flatnonzero(masks.any(axis=1))
    shown = cleaned[np.argsort(-kept_charge[cleaned], kind="stable")][:n_images]
    if len(cleaned) == 0:
        shown = [int(np.argmax(charge.sum(axis=1)))]
    hot = run_facts.hot

    n_columns = min(3, len(shown))
    n_rows_ = -(-len(shown) // n_columns)
    fig = Figure(
        figsize=(
            max(5.2 * n_columns, 13),
            4.4 * n_rows_ + 0.3 * (5 + len(run_facts.lines())),
        ),
        layout="constrained",
    )
    axes = fig.subplots(n_rows_, n_columns, squeeze=False)
    for ax, row in zip(axes.flat, shown):
        mask = masks[row]
        display = camera_display(ax, geometry, charge[row], mask=mask)
        if hot.any():
            # the hot spot would set the colour scale
            display.set_limits_minmax(charge[row][~hot].min(), charge[row][~hot].max())
        title = f"event {images['event_id'][row]}: "
        if mask.any():
            title += (
                f"{np.count_nonzero(mask)} pixels, {kept_charge[row]:.0f} p.e. kept"
            )
            n_hot = np.count_nonzero(mask & hot)
            if n_hot:
                title += f"\n{'all' if n_hot == mask.sum() else n_hot} of them in the hot spot"
        else:
            title += "no pixel survives the cleaning\n(brightest event before cleaning)"
        ax.set_title(title, fontsize=10)

    if len(cleaned) == 0:
        shown_text = "no image keeps any pixel after cleaning"
    elif len(cleaned) < n_images:
        shown_text = f"only {len(cleaned)} image(s) keep pixels after cleaning, shown"
    else:
        shown_text = (
            f"the {len(shown)} brightest of the {len(cleaned)} images after cleaning"
        )
    lines = [
        f"{Path(dl1_path).name}: {shown_text} (cyan: pixels kept)",
        *run_facts.lines(),
    ]
    if hot.any():
        lines.append("colour scale: the pixels outside the hot spot")
    fig.suptitle("\n".join(line.strip() for line in lines), fontsize=10)
    fig.savefig(png_path, dpi=80)
    return len(cleaned[:n_images])


def plot_stereo_events(stereo_path, truth_path, png_path, n_events=4):
    """
    Both telescopes' cleaned images of the brightest stereo events (charge kept in
    both), side by side, with their masks, event id, intensity and true energy.

    Returns
    -------
    int
        Stereo events shown.
    """
    subarray = SubarrayDescription.from_hdf(stereo_path)
    truth = Table.read(truth_path)
    true_energy = dict(zip(truth["array_event_number"], truth["true_energy_tev"]))
    images = {}
    for tel_id in (21, 22):
        table = read_table(stereo_path, f"/dl1/event/telescope/images/tel_{tel_id:03d}")
        charge, masks = np.asarray(table["image"]), np.asarray(table["image_mask"])
        images[tel_id] = {
            event_id: (charge[i], masks[i], charge[i][masks[i]].sum())
            for i, event_id in enumerate(np.asarray(table["event_id"]))
        }
    pairs = sorted(set(images[21]) & set(images[22]))
    shown = sorted(pairs, key=lambda e: -(images[21][e][2] + images[22][e][2]))[
        :n_events
    ]

    n_rows_ = -(-len(shown) // 2)
    fig = Figure(figsize=(20.8, 4.6 * n_rows_ + 0.6), layout="constrained")
    axes = fig.subplots(n_rows_, 4, squeeze=False)
    for number, event_id in enumerate(shown):
        for column, tel_id in enumerate((21, 22)):
            ax = axes.flat[2 * number + column]
            charge, mask, intensity = images[tel_id][event_id]
            camera_display(ax, subarray.tel[tel_id].camera.geometry, charge, mask=mask)
            ax.set_title(
                f"event {event_id}, telescope {tel_id}"
                f" (true {true_energy.get(event_id, np.nan):.1f} TeV)\n"
                f"intensity {intensity:.0f} p.e. in {np.count_nonzero(mask)} pixels",
                fontsize=10,
            )
    for ax in axes.flat[2 * len(shown) :]:
        ax.set_axis_off()
    fig.suptitle(
        f"{Path(stereo_path).name}: the {len(shown)} brightest of {len(pairs)} stereo"
        " events (intensity after cleaning of both telescopes; cyan: pixels kept)"
    )
    fig.savefig(png_path, dpi=70)
    return len(shown)


def process_real_file(name, raw_name, tel_id, what, output_dir, config):
    """ctapipe-process and sst1m-process of one real file, what it holds, its PNGs."""
    resources = Path(str(files("protozfits") / "tests" / "resources"))
    raw = output_dir / f"{name}.fits.fz"
    raw.unlink(missing_ok=True)
    raw.symlink_to(resources / raw_name)
    n_raw = raw_events([raw])
    steps = []
    dl1 = output_dir / f"{name}_dl1.h5"
    monitored = output_dir / f"{name}_dl1_sst1m.h5"
    for tool, output in (("ctapipe-process", dl1), ("sst1m-process", monitored)):
        announce(f"processing {raw.name} ({n_raw} events, {what}) with {tool}")
        seconds = run(
            tool,
            "--input",
            raw,
            "--output",
            output,
            *config,
            "--progress",
            cwd=output_dir,
        )
        events = f"{n_raw} -> {n_rows(output, TRIGGER_TABLE)}"
        steps.append(Step(tool, raw.name, events, seconds, [output]))

    announce(
        f"what {raw.name} holds; its brightest images after cleaning, NSB diagnostics"
    )
    start = time.perf_counter()
    facts = RealRun.read(name, what, monitored, tel_id)
    print("\n".join(facts.lines()))
    images_png = output_dir / f"{name}_images.png"
    n_shown = plot_brightest_images(dl1, images_png, tel_id, facts)
    nsb_png = output_dir / f"{name}_nsb.png"
    plot_nsb_diagnostics(monitored, nsb_png, tel_id)
    events = f"{facts.n_cleaned} cleaned, {n_shown} shown"
    seconds = time.perf_counter() - start
    steps.append(
        Step("plots", "the two DL1 files", events, seconds, [images_png, nsb_png])
    )
    return steps, facts.lines()


def simulated_stereo_run(output_dir, config):
    """A short simulated raw run of both telescopes through the chain of real data."""
    steps = []
    raw_dir = output_dir / "sim_raw"
    shutil.rmtree(raw_dir, ignore_errors=True)
    n_showers = SIMULATION["n-showers"]
    announce(
        f"simulating {n_showers} gamma showers above {SIMULATION['SimulateTool.energy_min_tev']}"
        " TeV as raw runs of both telescopes with sst1m-simulate"
    )
    options = [f"--{key}={value}" for key, value in SIMULATION.items()]
    seconds = run("sst1m-simulate", *options, "--raw-dir", raw_dir, cwd=output_dir)
    (truth_path,) = raw_dir.glob("SST1M_*_truth.ecsv")
    truth = Table.read(truth_path)
    triggered = {
        t: np.asarray(truth[f"tel_{t:03d}_event_number"]) > 0 for t in (21, 22)
    }
    events = f"{n_showers} -> {len(truth)} triggered"
    steps.append(
        Step("sst1m-simulate", f"{n_showers} gamma showers", events, seconds, [raw_dir])
    )

    dl1 = {}
    for tel_id in (21, 22):
        raw_files = sorted(raw_dir.glob(f"SST1M{tel_id - 20}_*.fits.fz"))
        # SST1M1_20240304_0001_000.fits.fz: run SST1M1_20240304_0001
        run_name = "_".join(raw_files[0].name.split("_")[:3])
        dl1[tel_id] = output_dir / f"{run_name}_dl1.h5"
        n_raw = raw_events(raw_files)
        announce(
            f"processing the simulated run {run_name} ({len(raw_files)} file(s), {n_raw}"
            " events) with ctapipe-process"
        )
        seconds = run(
            "ctapipe-process",
            "--input",
            raw_files[0],
            "--output",
            dl1[tel_id],
            *config,
            "--SST1MEventSource.all_subruns=True",
            "--progress",
            cwd=output_dir,
        )
        events = f"{n_raw} -> {n_rows(dl1[tel_id], TRIGGER_TABLE)}"
        steps.append(
            Step(
                "ctapipe-process",
                f"sim_raw/{run_name}_*",
                events,
                seconds,
                [dl1[tel_id]],
            )
        )

    stereo = output_dir / truth_path.name.replace("_truth.ecsv", "_dl1_stereo.h5")
    announce(
        "matching the events of the two telescopes with sst1m-stereo-match (SWAT ids)"
    )
    seconds = run(
        "sst1m-stereo-match",
        "--input-tel1",
        dl1[21],
        "--input-tel2",
        dl1[22],
        "--output",
        stereo,
        "--method",
        "SWATEventIDs",
        "--overwrite",
        cwd=output_dir,
    )
    n_pairs = int(read_table(stereo, "/dl1/service/coincidence")["n_stereo"][0])
    coincidences = stereo.with_name(stereo.stem + "_coincidences.png")
    n_in = " + ".join(str(n_rows(dl1[t], TRIGGER_TABLE)) for t in (21, 22))
    events = f"{n_in} -> {n_pairs} pairs"
    outputs = [stereo, coincidences]
    steps.append(
        Step("sst1m-stereo-match", "the two DL1 files above", events, seconds, outputs)
    )

    announce("plotting the brightest stereo events")
    start = time.perf_counter()
    png = output_dir / stereo.name.replace("_dl1_stereo.h5", "_stereo_images.png")
    n_shown = plot_stereo_events(stereo, truth_path, png)
    seconds = time.perf_counter() - start
    steps.append(
        Step("plots", stereo.name, f"{n_pairs} pairs, {n_shown} shown", seconds, [png])
    )

    facts = [
        f"simulated run: {n_showers} gamma showers, {len(truth)} triggered"
        f" ({np.count_nonzero(triggered[21])} telescope 21, {np.count_nonzero(triggered[22])}"
        f" telescope 22, {np.count_nonzero(triggered[21] & triggered[22])} both);"
        f" sst1m-stereo-match: {n_pairs} stereo pairs",
    ]
    print("\n".join(facts))
    return steps, facts


def synthetic_night(output_dir):
    """A synthetic night of raw data through sst1m-night (no models: DL1, stereo, quality)."""
    announce(
        "writing a synthetic night (2 targets x 2 runs, both telescopes, a dark run, a"
        " corrupt file) and processing it with sst1m-night on 2 Dask workers"
    )
    raw_root, night_output = output_dir / "night_raw", output_dir / "night"
    shutil.rmtree(raw_root, ignore_errors=True)
    night = write_synthetic_night(raw_root)
    command = [
        Path(sys.executable).parent / "sst1m-night",
        f"--raw-dir={raw_root}",
        f"--night={night.night}",
        f"--output-dir={night_output}",
        "--workers=2",
        "--no-progress",
    ]
    print("$", " ".join(map(str, command)), flush=True)
    start = time.perf_counter()
    result = subprocess.run(list(map(str, command)), cwd=output_dir)
    seconds = time.perf_counter() - start
    # exit status 1: the corrupt file failed, as it should; anything else is an error
    if result.returncode != 1:
        sys.exit(f"sst1m-night ended with exit status {result.returncode}")
    night_dir = night_output / night.night
    quality = Table.read(night_dir / "quality.ecsv")
    n_files = sum(len(paths) for run in night.runs for paths in run.files.values())
    step = Step(
        "sst1m-night",
        f"{len(night.runs)} runs, {n_files} raw files",
        f"{int(np.sum(quality['n_shower_events']))} shower events",
        seconds,
        [
            night_dir / "report.html",
            night_dir / "quality.ecsv",
            night_dir / "manifest.json",
        ],
    )
    facts = [
        f"synthetic night: {len(quality)} runs x telescopes in the quality table, stereo"
        f" fractions {np.nanmin(quality['stereo_fraction']):.2f}-"
        f"{np.nanmax(quality['stereo_fraction']):.2f}; the corrupt file"
        f" {night.corrupt_file.name} is reported as failed (exit status 1), the rest done;"
        f" open {night_dir / 'report.html'}",
    ]
    print("\n".join(facts))
    return [step], facts


def print_summary(steps, facts, output_dir, seconds):
    """Per step: input, events in -> out, time and files written; then what the data hold."""
    print(
        f"\n=== Demo summary: {len(steps)} steps in {seconds:.0f} s, all files in {output_dir}/"
    )
    columns = ("step", "input", "events in -> out", "time")
    widths = [
        max(len(columns[0]), *(len(step.name) for step in steps)),
        max(len(columns[1]), *(len(step.input) for step in steps)),
        max(len(columns[2]), *(len(step.events) for step in steps)),
    ]
    print(
        f"    {columns[0]:<{widths[0]}}  {columns[1]:<{widths[1]}}  {columns[2]:<{widths[2]}}  time"
    )
    for number, step in enumerate(steps, 1):
        print(
            f"{number:2d}. {step.name:<{widths[0]}}  {step.input:<{widths[1]}}"
            f"  {step.events:<{widths[2]}}  {step.seconds:4.1f} s"
        )
        written = ", ".join(
            f"{path.name}{'/' if path.is_dir() else ''} ({format_size(path_size(path))})"
            for path in step.outputs
        )
        print(f"    {'':<{widths[0]}}  -> {written}")
    print("\nWhat the data hold:")
    for line in facts:
        print(f"  {line}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--output-dir", type=Path, default=Path("demo_output"))
    args = parser.parse_args()
    output_dir = args.output_dir.resolve()
    output_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()

    announce("writing the configuration files with sst1m-quickstart")
    seconds = run("sst1m-quickstart", output_dir, "--overwrite", cwd=output_dir)
    configs = [
        output_dir / f for f in ("sst1m.yaml", "sst1m_mc.yaml", "sst1m_models.yaml")
    ]
    steps = [Step("sst1m-quickstart", "-", "-", seconds, configs)]
    config = [
        "--config",
        output_dir / "sst1m.yaml",
        "--overwrite",
        "--log-level",
        "WARN",
    ]

    facts = []
    for name, (raw_name, tel_id, what) in RAW_FILES.items():
        run_steps, run_facts = process_real_file(
            name, raw_name, tel_id, what, output_dir, [*config, *CRAB]
        )
        steps += run_steps
        facts += run_facts
    sim_steps, sim_facts = simulated_stereo_run(output_dir, config)
    steps += sim_steps
    facts += sim_facts
    night_steps, night_facts = synthetic_night(output_dir)
    steps += night_steps
    facts += night_facts
    print_summary(steps, facts, output_dir, time.perf_counter() - start)


if __name__ == "__main__":
    main()
