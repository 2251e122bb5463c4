"""
IRFs and DL3 on a simulated production: time and peak memory of `sst1m-make-irfs` and
`sst1m-dl3`, and the resulting sensitivity.

Usage: python benchmarks/irf_dl3.py WORKDIR [--showers 2000]

WORKDIR is the work directory of `benchmarks/ml_production.py` (models/, gamma_point.dl2.h5,
proton_test.dl2.h5, gamma_diffuse.dl1.h5). The script applies the models to the diffuse
gammas (if not done), makes every IRF of the node, simulates a raw run of both telescopes
(point gammas) and takes it through sst1m-process, sst1m-stereo-match, sst1m-apply-models
and sst1m-dl3.
"""

import argparse
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

from astropy.table import QTable

BIN = Path(sys.executable).parent
CONFIG = Path(__file__).resolve().parent.parent / "ctapipe_sst1m/resources/sst1m.yaml"


def run(command, directory):
    """Run a console script; returns (wall s, peak RSS MB of the children so far)."""
    start = time.perf_counter()
    result = subprocess.run(
        [str(BIN / command[0]), *map(str, command[1:])],
        cwd=directory,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"{command[0]} failed:\n{result.stderr[-3000:]}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return wall, peak


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("workdir", type=Path)
    parser.add_argument("--showers", type=int, default=2000)
    args = parser.parse_args()
    work = args.workdir.resolve()
    print(
        f"conditions: {platform.processor() or platform.machine()}, Python"
        f" {platform.python_version()}, one process per step, workdir {work}"
    )
    timings = {}
    if not (work / "gamma_diffuse.dl2.h5").exists():
        timings["apply models (diffuse gammas)"] = run(
            [
                "sst1m-apply-models",
                "--input",
                "gamma_diffuse.dl1.h5",
                "--models-dir",
                "models",
                "--output",
                "gamma_diffuse.dl2.h5",
            ],
            work,
        )
    timings["sst1m-make-irfs (all set-ups, cuts, kinds)"] = run(
        [
            "sst1m-make-irfs",
            "--gamma-point",
            "gamma_point.dl2.h5",
            "--gamma-diffuse",
            "gamma_diffuse.dl2.h5",
            "--proton",
            "proton_test.dl2.h5",
            "-o",
            "irfs",
            "--overwrite",
        ],
        work,
    )
    run_dir = work / "raw_run"
    timings["sst1m-simulate --raw-dir"] = run(
        [
            "sst1m-simulate",
            "--particle",
            "gamma",
            "--spectrum",
            "point",
            "--n-showers",
            args.showers,
            "--seed",
            "11",
            "--raw-dir",
            run_dir / "raw",
            "--overwrite",
        ],
        work,
    )
    for tel in (1, 2):
        (run_dir / f"tel{tel}").mkdir(parents=True, exist_ok=True)
        files = sorted((run_dir / "raw").glob(f"SST1M{tel}_*.fits.fz"))
        timings[f"sst1m-process tel 2{tel}"] = run(
            [
                "sst1m-process",
                "--input",
                files[0],
                "--SST1MEventSource.all_subruns=True",
                "--output",
                run_dir / f"tel{tel}/run.dl1.h5",
                "--config",
                CONFIG,
                "--overwrite",
                "--no-progress",
            ],
            work,
        )
    timings["sst1m-stereo-match"] = run(
        [
            "sst1m-stereo-match",
            "--input-tel1",
            run_dir / "tel1/run.dl1.h5",
            "--input-tel2",
            run_dir / "tel2",
            "--output",
            run_dir / "stereo.dl1.h5",
            "--overwrite",
        ],
        work,
    )
    timings["sst1m-apply-models (stereo run)"] = run(
        [
            "sst1m-apply-models",
            "--input",
            run_dir / "stereo.dl1.h5",
            "--models-dir",
            "models",
            "--output",
            run_dir / "stereo.dl2.h5",
            "--overwrite",
        ],
        work,
    )
    timings["sst1m-dl3 (stereo, point-like)"] = run(
        [
            "sst1m-dl3",
            "--input",
            run_dir / "stereo.dl2.h5",
            "--irf-dir",
            "irfs",
            "-o",
            run_dir / "dl3",
            "--overwrite",
        ],
        work,
    )
    for step, (wall, peak) in timings.items():
        print(f"{step:45s} {wall:7.1f} s   peak RSS so far {peak:6.0f} MB")
    for path in sorted((work / "irfs").glob("*/stereo/*/sensitivity_point-like.ecsv")):
        table = QTable.read(path)
        valid = table[table["valid"]]
        print(f"\n{path.parent.name} cuts, stereo, 50 h: {len(valid)} valid bins")
        for row in valid:
            print(
                f"  {row['energy_min'].value:7.2f}-{row['energy_max'].value:7.2f} TeV:"
                f" {row['crab_percent']:6.1f} ± {row['crab_percent_err']:5.1f} % Crab"
            )


if __name__ == "__main__":
    main()
