"""
`sst1m-night` on a synthetic night: wall time with 1 and 2 workers (scaling), the
orchestration's overhead against the same steps run by hand, and a projection to a real
night on 16 cores.

Usage: python benchmarks/night.py WORKDIR [--showers 120] [--runs-per-target 2]

WORKDIR receives a small simulated production (models and IRFs of the node, made once),
the synthetic night (`ctapipe_sst1m.simulation.night`: two targets, both telescopes,
several files per run, a dark run, a corrupt file) and the outputs. "By hand" runs the
command of every step (recorded beside its product, `<product>.step.yaml`) one after the
other, each in its own process, as a shell script would; the quality table and the report
are functions of sst1m-night, not commands, and are not part of it.
"""

import argparse
import json
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

from ctapipe_sst1m.simulation.night import write_synthetic_night

BIN = Path(sys.executable).parent
#: a real night: two telescopes at ~300 Hz for 8 h (docs/performance.md)
REAL_NIGHT_EVENTS = 17e6
REAL_NIGHT_CORES = 16

PRODUCTION = {
    "gamma_diffuse": "--particle gamma --spectrum diffuse --n-showers 4000 --seed 2"
    " --SimulateTool.viewcone_deg=3 --SimulateTool.max_impact_m=400"
    " --SimulateTool.energy_min_tev=0.5",
    "proton": "--particle proton --spectrum diffuse --n-showers 2500 --seed 3"
    " --SimulateTool.viewcone_deg=3 --SimulateTool.max_impact_m=400"
    " --SimulateTool.energy_min_tev=1.0",
    "gamma_point": "--particle gamma --spectrum point --n-showers 500 --seed 1"
    " --SimulateTool.max_impact_m=400 --SimulateTool.energy_min_tev=0.5",
}


def run(*command, allowed=(0,)):
    """Run a console script of the environment; its wall time in seconds."""
    start = time.perf_counter()
    result = subprocess.run(
        [str(BIN / command[0]), *map(str, command[1:])], capture_output=True, text=True
    )
    if result.returncode not in allowed:
        sys.exit(f"{' '.join(map(str, command))} failed:\n{result.stderr[-3000:]}")
    return time.perf_counter() - start


def production(work):
    """Models and IRFs of the node of the synthetic night (made once in WORKDIR)."""
    models, irfs = work / "models", work / "irfs"
    if irfs.is_dir():
        return models, irfs
    for name, options in PRODUCTION.items():
        run(
            "sst1m-simulate",
            *options.split(),
            "--output",
            work / f"{name}.dl1.h5",
            "--overwrite",
        )
    run(
        "sst1m-train-models",
        "--gamma",
        work / "gamma_diffuse.dl1.h5",
        "--proton",
        work / "proton.dl1.h5",
        "--output-dir",
        models,
    )
    for name in PRODUCTION:
        run(
            "sst1m-apply-models",
            "--input",
            work / f"{name}.dl1.h5",
            "--models-dir",
            models,
            "--output",
            work / f"{name}.dl2.h5",
            "--overwrite",
        )
    run(
        "sst1m-make-irfs",
        "--gamma-point",
        work / "gamma_point.dl2.h5",
        "--gamma-diffuse",
        work / "gamma_diffuse.dl2.h5",
        "--proton",
        work / "proton.dl2.h5",
        "--output-dir",
        irfs,
        "--cuts",
        "efficiency",
    )
    return models, irfs


def night_run(night, output, models, irfs, workers):
    """sst1m-night from scratch with n workers: wall time (s); exit 1 for the corrupt file."""
    shutil.rmtree(output, ignore_errors=True)
    return run(
        "sst1m-night",
        f"--raw-dir={night.root}",
        f"--night={night.night}",
        f"--output-dir={output}",
        f"--models-dir={models}",
        f"--irf-dir={irfs}",
        f"--workers={workers}",
        "--no-progress",
        allowed=(0, 1),
    )


def by_hand(night_dir, manifest):
    """Every recorded step command again, one process each, in the night's order."""
    total = 0.0
    for entry in manifest.values():
        command_file = Path(f"{entry['product']}.step.yaml")
        if entry["status"] != "done" or not command_file.exists():
            continue
        command = yaml.safe_load(command_file.read_text())
        argv = command["argv"]
        if entry["kind"] == "dl3":  # recorded with the temporary directory of the step
            argv = [a for a in argv if not a.startswith("--output-dir=")]
            shutil.rmtree(entry["product"])
            argv.append(f"--output-dir={entry['product']}")
        total += run(command["command"], *argv)
    return total


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("workdir", type=Path)
    parser.add_argument("--showers", type=int, default=120, help="showers per run")
    parser.add_argument("--runs-per-target", type=int, default=2)
    args = parser.parse_args()
    work = args.workdir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    models, irfs = production(work)
    raw = work / f"raw_{args.showers}_{args.runs_per_target}"
    shutil.rmtree(raw, ignore_errors=True)
    night = write_synthetic_night(
        raw, n_showers=args.showers, runs_per_target=args.runs_per_target
    )
    n_files = sum(len(r.files[t]) for r in night.runs for t in r.files)
    print(
        f"conditions: {platform.processor() or platform.machine()}, Python"
        f" {platform.python_version()}, synthetic night of {len(night.runs)} runs,"
        f" {n_files} raw files, {args.showers} showers per run, LocalCluster"
    )

    walls = {}
    for workers in (1, 2):
        walls[workers] = night_run(
            night, work / f"out_{workers}", models, irfs, workers
        )
    night_dir = work / "out_1" / night.night
    manifest = json.loads((night_dir / "manifest.json").read_text())["products"]
    steps = sum(e["duration_s"] for e in manifest.values() if e["status"] == "done")
    events = _shower_events(night_dir)
    hand = by_hand(night_dir, manifest)

    print(f"shower events processed (DL1, both telescopes): {events}")
    print(f"sst1m-night, 1 worker : {walls[1]:7.1f} s wall")
    print(
        f"sst1m-night, 2 workers: {walls[2]:7.1f} s wall (speed-up {walls[1] / walls[2]:.2f})"
    )
    print(f"steps in the workers (sum of the manifest durations): {steps:7.1f} s")
    print(
        f"orchestration overhead with 1 worker: {walls[1] - steps:.1f} s"
        f" ({100 * (walls[1] - steps) / walls[1]:.0f} % of the wall time)"
    )
    print(f"the same steps by hand (one process each, sequential): {hand:7.1f} s")
    n_steps = sum(e["status"] == "done" for e in manifest.values())
    per_event = steps / events
    print(
        f"{n_steps} steps: {steps / n_steps:.2f} s per step in a worker against"
        f" {hand / n_steps:.2f} s as a process of its own"
    )
    print(
        f"upper bound: {per_event * 1e3:.1f} ms of steps per shower event (files of"
        f" ~{events // n_files} events: per-file costs dominate) ->"
        f" {REAL_NIGHT_EVENTS:.0e} events on {REAL_NIGHT_CORES} cores:"
        f" {REAL_NIGHT_EVENTS * per_event / REAL_NIGHT_CORES / 3600:.1f} h at most"
        " (docs/performance.md projects from the steady-state rates)"
    )


def _shower_events(night_dir):
    """Events in the single-telescope DL1 files of a night (from their trigger tables)."""
    import tables

    total = 0
    for path in night_dir.glob("*/tel_*/dl1/*.dl1.h5"):
        with tables.open_file(path) as f:
            total += f.root.dl1.event.subarray.trigger.nrows
    return total


if __name__ == "__main__":
    main()
