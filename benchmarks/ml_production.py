"""
The whole random-forest chain on a simulated production, timed step by step.

Runs the documented commands (docs/models.md):

1. ``sst1m-simulate``: diffuse gammas and protons for training, point gammas and protons
   for testing;
2. ``sst1m-train-models`` (mono and stereo model set);
3. ``sst1m-apply-models`` on the test files;
4. ``sst1m-performance``;

and prints the wall time of every step, the events of every file and the performance
summary (energy bias and resolution, 68 % angular resolution, AUC above the threshold).

Usage: python benchmarks/ml_production.py [--scale 1.0] [--workdir DIR]
(scale 1: 200 000 simulated showers in all)
"""

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: showers at scale 1 and the options of each production
PRODUCTION = {
    "gamma_diffuse": (
        100_000,
        [
            "--particle",
            "gamma",
            "--spectrum",
            "diffuse",
            "--seed",
            "2",
            "--SimulateTool.viewcone_deg=3",
        ],
    ),
    "proton_train": (
        40_000,
        [
            "--particle",
            "proton",
            "--spectrum",
            "diffuse",
            "--seed",
            "3",
            "--SimulateTool.viewcone_deg=5",
            "--SimulateTool.max_impact_m=500",
        ],
    ),
    "gamma_point": (
        30_000,
        ["--particle", "gamma", "--spectrum", "point", "--seed", "1"],
    ),
    "proton_test": (
        30_000,
        [
            "--particle",
            "proton",
            "--spectrum",
            "diffuse",
            "--seed",
            "4",
            "--SimulateTool.viewcone_deg=5",
            "--SimulateTool.max_impact_m=500",
        ],
    ),
}


def run(step, command, directory, timings):
    """Run a console script of this environment, record its wall time."""
    executable = str(Path(sys.executable).parent / command[0])
    start = time.perf_counter()
    result = subprocess.run(
        [executable, *map(str, command[1:])],
        cwd=directory,
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"{step} failed:\n{result.stderr[-3000:]}")
    timings.append((step, elapsed))
    print(f"{step:<28s} {elapsed:8.1f} s", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="fraction of the 200k-shower production",
    )
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    directory = args.workdir or Path(tempfile.mkdtemp(prefix="sst1m_ml_"))
    directory.mkdir(parents=True, exist_ok=True)
    timings = []
    n_total = 0
    for name, (n_showers, options) in PRODUCTION.items():
        n = max(int(n_showers * args.scale), 100)
        n_total += n
        run(
            f"simulate {name} ({n})",
            [
                "sst1m-simulate",
                *options,
                "--n-showers",
                n,
                "--output",
                f"{name}.dl1.h5",
                "--overwrite",
                "--SimulateTool.progress_bar=False",
            ],
            directory,
            timings,
        )
    run(
        "train models",
        [
            "sst1m-train-models",
            "--gamma",
            "gamma_diffuse.dl1.h5",
            "--proton",
            "proton_train.dl1.h5",
            "--output-dir",
            "models",
            "--overwrite",
        ],
        directory,
        timings,
    )
    for name in ("gamma_point", "proton_test"):
        run(
            f"apply models {name}",
            [
                "sst1m-apply-models",
                "--input",
                f"{name}.dl1.h5",
                "--models-dir",
                "models",
                "--output",
                f"{name}.dl2.h5",
                "--overwrite",
                "--no-progress",
            ],
            directory,
            timings,
        )
    run(
        "performance",
        [
            "sst1m-performance",
            "--gamma",
            "gamma_point.dl2.h5",
            "--proton",
            "proton_test.dl2.h5",
            "--output-dir",
            "performance",
            "--overwrite",
        ],
        directory,
        timings,
    )

    from astropy.table import Table
    from ctapipe.io import read_table

    print(
        f"\n{n_total} simulated showers, total {sum(t for _, t in timings) / 60:.1f} min"
    )
    for name in PRODUCTION:
        events = read_table(directory / f"{name}.dl1.h5", "/dl1/event/subarray/trigger")
        print(f"{name:<16s} {len(events):7d} triggered array events")
    summary = Table.read(directory / "performance" / "summary.ecsv")
    for column in summary.colnames:
        if summary[column].dtype.kind == "f":
            summary[column].format = ".3f"
    print()
    summary.pprint(max_width=-1)
    print(f"\noutputs in {directory}")


if __name__ == "__main__":
    main()
