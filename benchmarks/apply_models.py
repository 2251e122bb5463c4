"""
Speed of sst1m-apply-models: DL1 -> DL2 of 10^5 array events (mono and stereo models).

A simulated DL1 file (sst1m-simulate) is repeated with new event ids until it holds
``--n-events`` array events, a model set is trained on a small production, and
``sst1m-apply-models`` is timed on the big file (start-up included). Prints events/s and
the peak memory of the apply command.

Usage: python benchmarks/apply_models.py [--n-events 100000] [--workdir DIR] [--repeat 3]
(the machine's speed varies by tens of per cent from run to run: the median is printed)
"""

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import tables
from astropy.table import vstack
from ctapipe.io import read_table, write_table

EVENT_GROUPS = ("/dl1/event", "/dl2/event", "/simulation/event")
DL1_FILTERS = tables.Filters(complevel=1, complib="blosc:zstd", fletcher32=True)


def command(name, *args, cwd):
    executable = str(Path(sys.executable).parent / name)
    result = subprocess.run(
        [executable, *map(str, args)], cwd=cwd, capture_output=True, text=True
    )
    if result.returncode != 0:
        sys.exit(f"{name} failed:\n{result.stderr[-3000:]}")


def repeat_events(source, output, n_events):
    """Copy ``source`` with its event tables repeated (event ids shifted) to >= ``n_events`` array events."""
    shutil.copy(source, output)
    trigger = read_table(source, "/dl1/event/subarray/trigger")
    copies = int(np.ceil(n_events / len(trigger)))
    offset = int(np.max(trigger["event_id"])) + 1
    with tables.open_file(source) as h5file:
        paths = [
            node._v_pathname
            for group in EVENT_GROUPS
            if group in h5file
            for node in h5file.walk_nodes(group, "Table")
        ]
    for path in paths:
        table = read_table(source, path)
        if "event_id" not in table.colnames:
            continue
        parts = []
        for copy in range(copies):
            part = table.copy()
            part["event_id"] = part["event_id"] + copy * offset
            parts.append(part)
        # as DataWriter writes with sst1m.yaml / sst1m_mc.yaml (compression level 1)
        write_table(vstack(parts), output, path, overwrite=True, filters=DL1_FILTERS)
    return len(read_table(output, "/dl1/event/subarray/trigger"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--n-events", type=int, default=100_000)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument(
        "--repeat", type=int, default=3, help="timed runs of the apply command"
    )
    args = parser.parse_args()
    directory = args.workdir or Path(tempfile.mkdtemp(prefix="sst1m_apply_"))
    directory.mkdir(parents=True, exist_ok=True)

    common = ["--SimulateTool.progress_bar=False", "--overwrite"]
    command(
        "sst1m-simulate",
        "--particle",
        "gamma",
        "--spectrum",
        "diffuse",
        "--n-showers",
        20000,
        "--seed",
        2,
        "--SimulateTool.viewcone_deg=3",
        "--output",
        "gamma.dl1.h5",
        *common,
        cwd=directory,
    )
    command(
        "sst1m-simulate",
        "--particle",
        "proton",
        "--spectrum",
        "diffuse",
        "--n-showers",
        20000,
        "--seed",
        3,
        "--SimulateTool.viewcone_deg=5",
        "--SimulateTool.max_impact_m=500",
        "--output",
        "proton.dl1.h5",
        *common,
        cwd=directory,
    )
    command(
        "sst1m-train-models",
        "--gamma",
        "gamma.dl1.h5",
        "--proton",
        "proton.dl1.h5",
        "--output-dir",
        "models",
        "--overwrite",
        cwd=directory,
    )

    n_events = repeat_events(
        directory / "gamma.dl1.h5", directory / "big.dl1.h5", args.n_events
    )
    n_telescope_events = len(
        read_table(directory / "big.dl1.h5", "/dl1/event/telescope/trigger")
    )

    # in its own process, so that its peak memory is not the simulation's
    apply = str(Path(sys.executable).parent / "sst1m-apply-models")
    wrapper = (
        "import resource, subprocess, sys, time; start = time.perf_counter();"
        f" subprocess.run([{apply!r}, '--input', 'big.dl1.h5', '--models-dir', 'models',"
        " '--output', 'big.dl2.h5', '--overwrite', '--no-progress'], check=True, capture_output=True);"
        " print(time.perf_counter() - start, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)"
    )
    runs = []
    for _ in range(args.repeat):
        result = subprocess.run(
            [sys.executable, "-c", wrapper],
            cwd=directory,
            capture_output=True,
            text=True,
            check=True,
        )
        runs.append(tuple(map(float, result.stdout.split())))
    times = np.array([elapsed for elapsed, _ in runs])
    peak_mb = max(peak for _, peak in runs)
    elapsed = float(np.median(times))

    print(
        f"sst1m-apply-models, mono + stereo models (6 forests) on {n_events} array events"
        f" ({n_telescope_events} telescope events)"
    )
    print(
        f"  wall time   {elapsed:8.1f} s median of {len(times)} runs (start-up included);"
        f" runs: {', '.join(f'{t:.1f}' for t in times)} s"
    )
    print(f"  throughput  {n_events / elapsed:8.0f} array events/s (median run)")
    print(f"  peak memory {peak_mb:8.0f} MB (max RSS of sst1m-apply-models)")
    print(f"outputs in {directory}")


if __name__ == "__main__":
    main()
