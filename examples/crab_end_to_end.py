"""
End to end: a simulated Crab observed at raw level, and the Crab back out of gammapy.

1. productions at the observation's node (the Crab's culmination at Ondrejov, zenith 28°,
   azimuth 180°): diffuse gammas and protons for the training, point gammas at the wobble
   offset for the point-like IRFs (``sst1m-simulate``);
2. ``sst1m-train-models``, ``sst1m-apply-models`` on the productions, ``sst1m-make-irfs``;
3. the observation (``sst1m-simulate --observation``): wobble runs of the Crab (HEGRA
   spectrum) around its culmination with protons and electrons, raw zfits runs of both
   telescopes; and the same runs of an empty field (no source);
4. per run: ``sst1m-process`` of each telescope's raw files (``sst1m.yaml``),
   ``sst1m-stereo-match``, ``sst1m-apply-models`` (mono per telescope, stereo);
5. ``sst1m-dl3`` (point-like and full-enclosure) per set-up (``tel_021``, ``tel_022``,
   ``stereo``) and ``sst1m-analysis`` (θ², Li & Ma, spectrum, flux points, sky map);
6. the table "injected vs recovered" (flux at 3 TeV, index, position, significance) and
   the time and peak memory of every step, in ``{output}/crab_end_to_end.md``.

Run with ``make crab`` or ``python examples/crab_end_to_end.py --output-dir crab_output``;
``--quick`` makes a small version (the size of the test, a few minutes).
"""

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path

import yaml
from astropy.coordinates import SkyCoord

import ctapipe_sst1m
from ctapipe_sst1m.analysis.recovery import CRAB_HEGRA_MODEL, injected_vs_recovered
from ctapipe_sst1m.simulation.schedule import ObservationSchedule, array_location

#: the Crab (ICRS, deg)
TARGET = SkyCoord(83.6331, 22.0145, unit="deg")
#: reference energy of the spectral fit and of the injected-vs-recovered table (TeV)
REFERENCE_ENERGY_TEV = 3.0
SETUPS = ("tel_021", "tel_022", "stereo")
SIZES = {
    # showers thrown per production, runs, run length (s)
    "full": dict(
        gamma_diffuse=40000, proton=120000, gamma_point=20000, runs=4, run_s=1200
    ),
    "quick": dict(
        gamma_diffuse=8000, proton=20000, gamma_point=5000, runs=2, run_s=300
    ),
}


@dataclass
class Step:
    """A command line of the job, its wall time and the peak memory of its process."""

    name: str
    command: list
    seconds: float = 0.0
    peak_rss_mb: float = 0.0
    log: Path = field(default=None)


#: starts a command and writes its exit code and peak RSS (``os.wait4`` of that child
#: alone) to a JSON file: a command forked from this script directly would report this
#: script's memory, which Linux carries over into the child's peak
_LAUNCHER = """
import json, os, sys
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
code = os.waitstatus_to_exitcode(status)
with open(sys.argv[1], "w") as f:
    json.dump({"exit_code": code, "peak_rss_kb": usage.ru_maxrss}, f)
sys.exit(code)
"""


def run_steps(steps, workdir, parallel=2):
    """
    Run the commands, at most ``parallel`` at a time; each step's wall time and peak
    RSS (of its own process). Stops at the first failure.
    """
    pending = list(steps)
    running = {}
    while pending or running:
        while pending and len(running) < parallel:
            step = pending.pop(0)
            step.log = workdir / "logs" / f"{step.name}.log"
            step.log.parent.mkdir(parents=True, exist_ok=True)
            for option, value in zip(step.command, step.command[1:]):
                if option == "--output":
                    Path(value).parent.mkdir(parents=True, exist_ok=True)
            usage = step.log.with_suffix(".json")
            with open(step.log, "w") as log:
                log.write(shlex.join(map(str, step.command)) + "\n")
                log.flush()
                # the command lines of this environment (next to its interpreter)
                program = Path(sys.executable).parent / step.command[0]
                process = subprocess.Popen(
                    [sys.executable, "-c", _LAUNCHER, str(usage), str(program)]
                    + [str(c) for c in step.command[1:]],
                    stdout=log,
                    stderr=log,
                )
            running[process.pid] = (step, process, usage, time.perf_counter())
        pid, status = os.wait()
        if pid not in running:
            continue
        step, _, usage, started = running.pop(pid)
        step.seconds = time.perf_counter() - started
        code = os.waitstatus_to_exitcode(status)
        if usage.exists():
            step.peak_rss_mb = json.loads(usage.read_text())["peak_rss_kb"] / 1024
        print(
            f"  {step.name}: {step.seconds:.0f} s, {step.peak_rss_mb:.0f} MB",
            flush=True,
        )
        if code != 0:
            for _, other, _, _ in running.values():
                other.terminate()
            sys.exit(f"step {step.name} failed (exit {code}), see {step.log}")


def resource(name):
    """A configuration file shipped with ctapipe_sst1m."""
    return Path(str(files("ctapipe_sst1m") / "resources" / name))


def production_steps(out, size, pointing_alt_deg):
    """sst1m-simulate of the three productions at the observation's node."""
    common = [
        f"--SimulateTool.pointing_alt_deg={pointing_alt_deg:.2f}",
        "--SimulateTool.pointing_az_deg=180",
        "--no-progress",
    ]
    productions = {
        "gamma_diffuse": [
            "--particle",
            "gamma",
            "--spectrum",
            "diffuse",
            "--seed",
            "11",
        ],
        "proton": ["--particle", "proton", "--spectrum", "diffuse", "--seed", "12"],
        "gamma_point": ["--particle", "gamma", "--spectrum", "point", "--seed", "13"],
    }
    return [
        Step(
            f"simulate_{name}",
            ["sst1m-simulate", *options, "--n-showers", size[name], *common]
            + ["--output", out / "productions" / f"{name}.dl1.h5"],
        )
        for name, options in productions.items()
    ]


def observation_steps(out, size, field_name, seed, spectrum, first_run):
    """sst1m-simulate --observation, one process per run (each run has its own seed)."""
    schedule = ObservationSchedule(
        n_runs=size["runs"], run_duration_s=size["run_s"], first_run=first_run
    )
    steps = []
    for run in schedule.runs(TARGET, array_location()):
        steps.append(
            Step(
                f"observe_{field_name}_run{run.run}",
                [
                    "sst1m-simulate",
                    "--observation",
                    "--raw-dir",
                    out / field_name / "raw",
                    "--seed",
                    seed,
                    "--no-progress",
                    f"--ObservationSimulator.source_spectrum={spectrum}",
                    f"--ObservationSchedule.start_time={run.start.utc.isot}",
                    f"--ObservationSchedule.first_run={run.run}",
                    "--ObservationSchedule.n_runs=1",
                    f"--ObservationSchedule.run_duration_s={run.duration_s}",
                ],
            )
        )
    return steps, schedule.runs(TARGET, array_location())


def run_data_steps(out, field_name, run, models):
    """raw → DL1 per telescope → stereo → DL2 (mono per telescope and stereo) of one run."""
    raw = out / field_name / "raw"
    base = out / field_name / f"run{run.run:04d}"
    steps = []
    for tel, camera in ((21, 1), (22, 2)):
        first = sorted(raw.glob(f"SST1M{camera}_*_{run.run:04d}_000.fits.fz"))[0]
        steps.append(
            Step(
                f"{field_name}_run{run.run}_dl1_tel{tel}",
                [
                    "sst1m-process",
                    "--input",
                    first,
                    "--output",
                    base / f"tel{tel}" / "dl1.h5",
                    "--config",
                    resource("sst1m.yaml"),
                    "--SST1MEventSource.all_subruns=True",
                ],
            )
        )
    return steps


def stereo_and_dl2_steps(out, field_name, run, models):
    base = out / field_name / f"run{run.run:04d}"
    steps = [
        Step(
            f"{field_name}_run{run.run}_stereo",
            [
                "sst1m-stereo-match",
                "--input-tel1",
                base / "tel21" / "dl1.h5",
                "--input-tel2",
                base / "tel22" / "dl1.h5",
                "--output",
                base / "stereo" / "dl1.h5",
            ],
        )
    ]
    return steps


def dl2_steps(out, field_name, run, models):
    base = out / field_name / f"run{run.run:04d}"
    steps = []
    for name, variant in (("tel21", "mono"), ("tel22", "mono"), ("stereo", "stereo")):
        steps.append(
            Step(
                f"{field_name}_run{run.run}_dl2_{name}",
                [
                    "sst1m-apply-models",
                    "--input",
                    base / name / "dl1.h5",
                    "--models-dir",
                    models,
                    "--variant",
                    variant,
                    "--output",
                    out / field_name / "dl2" / name / f"run{run.run:04d}.dl2.h5",
                ],
            )
        )
    return steps


def dl3_steps(out, field_name, irfs):
    steps = []
    for setup, dl2 in (
        ("tel_021", "tel21"),
        ("tel_022", "tel22"),
        ("stereo", "stereo"),
    ):
        for kind in ("point-like", "full-enclosure"):
            steps.append(
                Step(
                    f"{field_name}_dl3_{setup}_{kind}",
                    [
                        "sst1m-dl3",
                        "--input",
                        out / field_name / "dl2" / dl2,
                        "--irf-dir",
                        irfs,
                        "--output-dir",
                        out / field_name / "dl3" / setup / kind,
                        "--setup",
                        setup,
                        "--kind",
                        kind,
                        "--source-name",
                        "Crab",
                        "--source-ra",
                        TARGET.ra.deg,
                        "--source-dec",
                        TARGET.dec.deg,
                        # the thinned background gives stereo rates of ~1 Hz: gaps of
                        # more than the default 5 s would split the runs
                        "--DL3Tool.max_gap=60 s",
                    ],
                )
            )
    return steps


def analysis_steps(out, field_name):
    return [
        Step(
            f"{field_name}_analysis_{setup}",
            [
                "sst1m-analysis",
                "--datastore",
                out / field_name / "dl3" / setup / "point-like",
                "--datastore-full-enclosure",
                out / field_name / "dl3" / setup / "full-enclosure",
                "--output-dir",
                out / field_name / "analysis" / setup,
                f"--AnalysisTool.reference_energy_tev={REFERENCE_ENERGY_TEV}",
            ],
        )
        for setup in SETUPS
    ]


def recovered(out):
    """The injected-vs-recovered numbers of every set-up, and the empty field's."""
    rows = []
    for setup in SETUPS:
        row = injected_vs_recovered(
            out / "crab" / "analysis" / setup,
            out / "crab" / "dl3" / setup / "point-like",
            CRAB_HEGRA_MODEL,
            TARGET,
        )
        source, empty = (
            yaml.safe_load(
                (out / field / "analysis" / setup / "results.yaml").read_text()
            )
            for field in ("crab", "empty")
        )
        row["setup"] = setup
        row["map_significance"] = source["sky_map"]["significance_at_target"]
        row["map_acceptance"] = source["sky_map"]["acceptance"]
        row["empty_significance"] = empty["theta2"]["significance"]
        row["empty_max_significance"] = empty["sky_map"]["max_significance"]
        rows.append(row)
    return rows


def conditions():
    """Where the job ran."""
    return (
        f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]},"
        f" ctapipe_sst1m {ctapipe_sst1m.__version__}, {time.strftime('%Y-%m-%d %H:%M')}"
    )


def report(out, size, rows, steps, wall_s):
    """The tables of the job in ``{out}/crab_end_to_end.md``, also printed."""
    lines = [
        "# A simulated Crab, back out of gammapy",
        "",
        f"{size['runs']} runs of {size['run_s']:g} s around the Crab's culmination;"
        f" productions of {size['gamma_diffuse']:,} diffuse gammas,"
        f" {size['proton']:,} protons, {size['gamma_point']:,} point gammas; {conditions()}.",
        "",
        f"Flux at {REFERENCE_ENERGY_TEV:g} TeV in cm⁻² s⁻¹ TeV⁻¹; pulls in statistical σ;"
        " position: centroid of the excess (ON minus OFF events within the θ cut);"
        " spectrum significance: Li & Ma in the spectrum's safe energy range, expected:"
        " the injected spectrum through the same IRFs and OFF counts; map: the"
        " ring-background map's significance at the Crab and the acceptance of its ring.",
        "",
        "| set-up | flux injected | flux recovered | pull | index injected | index recovered"
        " | pull | excess | position − Crab (deg) | its σ (deg) | θ² significance (σ)"
        " | spectrum significance (σ) | expected (σ) | map at the Crab (σ)"
        " | empty field (σ) | empty field map max (σ) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['setup']} | {r['flux_injected']:.3e} | {r['flux']:.3e} ± {r['flux_error']:.1e}"
            f" | {r['flux_pull']:+.1f} | {r['index_injected']:.2f}"
            f" | {r['index']:.2f} ± {r['index_error']:.2f} | {r['index_pull']:+.1f}"
            f" | {r['excess']:.0f} | {r['offset_deg']:.3f} | {r['position_error_deg']:.3f}"
            f" | {r['significance']:.1f} | {r['spectrum_significance']:.1f}"
            f" | {r['expected_significance']:.1f}"
            f" | {r['map_significance']:.1f} ({r['map_acceptance']})"
            f" | {r['empty_significance']:+.1f} | {r['empty_max_significance']:.1f} |"
        )
    cpu_s = sum(s.seconds for s in steps)
    lines += [
        "",
        f"Whole job: {wall_s / 60:.1f} min of wall time ({cpu_s / 60:.1f} min summed over"
        " the steps, at most two at a time).",
        "",
        "| step | wall s | peak RSS MB |",
        "|---|---|---|",
    ]
    lines += [f"| {s.name} | {s.seconds:.0f} | {s.peak_rss_mb:.0f} |" for s in steps]
    text = "\n".join(lines) + "\n"
    (out / "crab_end_to_end.md").write_text(text)
    print(text)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output-dir", type=Path, default=Path("crab_output"))
    parser.add_argument("--quick", action="store_true", help="the small version")
    parser.add_argument("--parallel", type=int, default=2, help="processes at a time")
    args = parser.parse_args()
    out = args.output_dir.resolve()
    if out.exists():
        sys.exit(f"{out} exists; give another --output-dir or remove it")
    out.mkdir(parents=True)
    size = SIZES["quick" if args.quick else "full"]
    start = time.perf_counter()
    culmination_alt = 90.0 - abs(array_location().lat.deg - TARGET.dec.deg)
    steps = []

    def stage(name, new_steps):
        print(name, flush=True)
        run_steps(new_steps, out, args.parallel)
        steps.extend(new_steps)

    crab_steps, crab_runs = observation_steps(out, size, "crab", 14, "crab_hegra", 1)
    empty_steps, empty_runs = observation_steps(out, size, "empty", 15, "none", 101)
    stage(
        "simulations",
        production_steps(out, size, culmination_alt) + crab_steps + empty_steps,
    )
    productions = out / "productions"
    models = out / "models"
    stage(
        "training",
        [
            Step(
                "train",
                [
                    "sst1m-train-models",
                    "--gamma",
                    productions / "gamma_diffuse.dl1.h5",
                    "--proton",
                    productions / "proton.dl1.h5",
                    "--output-dir",
                    models,
                ],
            )
        ],
    )
    stage(
        "DL2 of the productions",
        [
            Step(
                f"dl2_{name}",
                [
                    "sst1m-apply-models",
                    "--input",
                    productions / f"{name}.dl1.h5",
                    "--models-dir",
                    models,
                    "--output",
                    productions / f"{name}.dl2.h5",
                ],
            )
            for name in ("gamma_point", "gamma_diffuse", "proton")
        ],
    )
    irfs = out / "irfs"
    data = [
        (name, run)
        for name, runs in (("crab", crab_runs), ("empty", empty_runs))
        for run in runs
    ]
    stage(
        "IRFs and DL1 of the runs",
        [
            Step(
                "irfs",
                [
                    "sst1m-make-irfs",
                    "--gamma-point",
                    productions / "gamma_point.dl2.h5",
                    "--gamma-diffuse",
                    productions / "gamma_diffuse.dl2.h5",
                    "--proton",
                    productions / "proton.dl2.h5",
                    "--cuts",
                    "efficiency",
                    "--output-dir",
                    irfs,
                ],
            )
        ]
        + [s for name, run in data for s in run_data_steps(out, name, run, models)],
    )
    stage(
        "stereo",
        [s for name, run in data for s in stereo_and_dl2_steps(out, name, run, models)],
    )
    stage(
        "DL2 of the runs",
        [s for name, run in data for s in dl2_steps(out, name, run, models)],
    )
    stage("DL3", dl3_steps(out, "crab", irfs) + dl3_steps(out, "empty", irfs))
    stage("analysis", analysis_steps(out, "crab") + analysis_steps(out, "empty"))
    report(out, size, recovered(out), steps, time.perf_counter() - start)


if __name__ == "__main__":
    main()
