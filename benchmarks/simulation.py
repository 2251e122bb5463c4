"""
Throughput of the SST-1M fast simulation.

1. the simulation alone (SST1MSimulationSource iteration: sampling, images of both
   telescopes, waveforms, trigger), in this process;
2. the whole ``sst1m-simulate`` command (simulation + ctapipe-process with
   sst1m_mc.yaml + DL1 writing) for diffuse gammas and diffuse protons.

Usage: python benchmarks/simulation.py [--n-showers 20000] [--workdir DIR]
"""

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def simulation_only(directory, particle, n_showers):
    """Showers per second of the simulation source alone."""
    from ctapipe_sst1m.io.simulation_card import SimulationCard, write_card
    from ctapipe_sst1m.io.simulation_source import SST1MSimulationSource
    from ctapipe_sst1m.tools.simulate import PRODUCTION_DEFAULTS

    max_impact, viewcone, energy_min = PRODUCTION_DEFAULTS[(particle, "diffuse")]
    card = directory / f"{particle}_only.simcard.yaml"
    write_card(card, SimulationCard(
        particle=particle, spectrum="diffuse", n_showers=n_showers, seed=1,
        energy_min_tev=energy_min, max_impact_m=max_impact, viewcone_deg=viewcone,
    ))
    with SST1MSimulationSource(card) as source:
        start = time.perf_counter()
        n_triggered = sum(1 for _ in source)
        elapsed = time.perf_counter() - start
    return n_showers / elapsed, n_triggered


def whole_command(directory, particle, n_showers):
    """Wall time of sst1m-simulate (including start-up) and the number of DL1 events."""
    output = directory / f"{particle}_diffuse.dl1.h5"
    command = [
        str(Path(sys.executable).parent / "sst1m-simulate"), "--particle", particle,
        "--spectrum", "diffuse", "--n-showers", str(n_showers), "--seed", "1",
        "--output", str(output), "--overwrite", "--SimulateTool.progress_bar=False",
    ]
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, cwd=directory)
    elapsed = time.perf_counter() - start
    from ctapipe.io import read_table

    n_events = len(read_table(output, "/dl1/event/subarray/trigger"))
    return elapsed, n_events


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--n-showers", type=int, default=20000)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        directory = args.workdir or Path(scratch)
        directory.mkdir(parents=True, exist_ok=True)
        print(f"{'particle':<8} {'showers':>8} {'simulation showers/s':>22} {'triggered':>10}"
              f" {'sst1m-simulate s':>17} {'showers/s':>10} {'DL1 events':>11}")
        for particle in ("gamma", "proton"):
            rate, n_triggered = simulation_only(directory, particle, args.n_showers)
            elapsed, n_events = whole_command(directory, particle, args.n_showers)
            print(f"{particle:<8} {args.n_showers:>8} {rate:>22.0f} {n_triggered:>10}"
                  f" {elapsed:>17.1f} {args.n_showers / elapsed:>10.0f} {n_events:>11}")


if __name__ == "__main__":
    main()
