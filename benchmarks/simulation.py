"""
Throughput of the SST-1M fast simulation.

For each particle (diffuse gammas and diffuse protons with the ``sst1m-simulate``
defaults: E^-2 from 0.2 TeV within 6 deg and 500 m for gammas, from 0.4 TeV
within 8 deg and 800 m for protons, up to 300 TeV, pointing 70 deg altitude;
``--n-showers`` showers, seed 1):

1. the simulation alone: iteration of ``SST1MSimulationSource`` in this process
   (sampling, images of both telescopes, waveforms, trigger), excluding the
   construction of the source;
2. the whole ``sst1m-simulate`` command in a subprocess: start-up, the
   simulation, ``ctapipe-process`` with ``sst1m_mc.yaml`` on the triggered
   events, DL1 writing and the overview plot, without progress bar.

Rates count thrown (simulated) showers, not triggered events, per second of
wall time and per second of CPU time (user + system: of this process for 1, of
the child for 2). Both run on one core: on an idle machine CPU and wall time
agree, on a loaded one the wall rates drop and the CPU rates are the ones to
compare. The whole command has costs that do not grow with the number of
showers (start-up, overview plot; "other CPU s" is its CPU time minus that of
the simulation alone), so its rate depends on ``--n-showers``. The printed
conditions (simulation card, software versions, CPUs, load average) are those of
the measurement.

Usage::

    python benchmarks/simulation.py [--n-showers 20000] [--workdir DIR]
"""

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

#: particles of the benchmark, each simulated with a diffuse spectrum
PARTICLES = ("gamma", "proton")

#: random seed of every simulation
SEED = 1


@dataclass
class Timing:
    """Wall and CPU time of simulating a number of showers."""

    n_showers: int
    wall_s: float
    cpu_s: float

    @property
    def rate_wall(self):
        """Thrown showers per second of wall time."""
        return self.n_showers / self.wall_s

    @property
    def rate_cpu(self):
        """Thrown showers per second of CPU time."""
        return self.n_showers / self.cpu_s


def production_card(particle, n_showers):
    """
    The simulation card that ``sst1m-simulate`` writes for a diffuse production.

    Parameters
    ----------
    particle : str
    n_showers : int

    Returns
    -------
    ctapipe_sst1m.io.simulation_card.SimulationCard
    """
    from ctapipe_sst1m.tools.simulate import SimulateTool

    tool = SimulateTool(
        particle=particle, spectrum="diffuse", n_showers=n_showers, seed=SEED
    )
    return tool.card()


def describe_card(card):
    """
    The conditions of a simulation card in one line.

    Parameters
    ----------
    card : ctapipe_sst1m.io.simulation_card.SimulationCard

    Returns
    -------
    str
    """
    return (
        f"{card.particle}: {card.n_showers * card.shower_reuse:,} showers"
        f" (shower reuse {card.shower_reuse}), {card.spectrum},"
        f" E^{card.spectral_index:g} from {card.energy_min_tev:g}"
        f" to {card.energy_max_tev:g} TeV, viewcone {card.viewcone_deg:g} deg,"
        f" core within {card.max_impact_m:g} m, pointing alt"
        f" {card.pointing_alt_deg:g} deg az {card.pointing_az_deg:g} deg,"
        f" seed {card.seed}"
    )


def simulation_only(directory, card):
    """
    Time the iteration of SST1MSimulationSource over a card.

    Parameters
    ----------
    directory : pathlib.Path
        Receives the card.
    card : ctapipe_sst1m.io.simulation_card.SimulationCard

    Returns
    -------
    timing : Timing
    n_triggered : int
        Events where at least one camera triggered.
    """
    from ctapipe_sst1m.io.simulation_card import write_card
    from ctapipe_sst1m.simulation.source import SST1MSimulationSource

    card_path = directory / f"{card.particle}_only.simcard.yaml"
    write_card(card_path, card)
    with SST1MSimulationSource(card_path) as source:
        wall_start, cpu_start = time.perf_counter(), time.process_time()
        n_triggered = sum(1 for _ in source)
        wall = time.perf_counter() - wall_start
        cpu = time.process_time() - cpu_start
    return Timing(card.n_showers * card.shower_reuse, wall, cpu), n_triggered


def whole_command(directory, card):
    """
    Time ``sst1m-simulate`` for the production of a card.

    Parameters
    ----------
    directory : pathlib.Path
        Working directory of the command, receives its outputs.
    card : ctapipe_sst1m.io.simulation_card.SimulationCard
        As returned by `production_card`; checked against the card the command
        writes.

    Returns
    -------
    timing : Timing
        Wall time and CPU time of the child process, start-up included.
    n_events : int
        Subarray events in the DL1 file.

    Raises
    ------
    RuntimeError
        If the command fails or simulates another card.
    """
    from ctapipe.io import read_table

    from ctapipe_sst1m.io.simulation_card import read_card

    output = directory / f"{card.particle}_diffuse.dl1.h5"
    command = [
        str(Path(sys.executable).parent / "sst1m-simulate"),
        f"--particle={card.particle}",
        f"--spectrum={card.spectrum}",
        f"--n-showers={card.n_showers}",
        f"--seed={card.seed}",
        f"--output={output}",
        "--overwrite",
        "--SimulateTool.progress_bar=False",
    ]
    log_path = directory / f"{card.particle}_diffuse.log"
    with open(log_path, "wb") as log:
        start = time.perf_counter()
        process = subprocess.Popen(
            command, cwd=directory, stdout=log, stderr=subprocess.STDOUT
        )
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        tail = log_path.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"{' '.join(command)} failed:\n{tail}")
    if read_card(directory / f"{card.particle}_diffuse.simcard.yaml") != card:
        raise RuntimeError(f"sst1m-simulate simulated another card than {card}")
    n_events = len(read_table(output, "/dl1/event/subarray/trigger"))
    timing = Timing(
        card.n_showers * card.shower_reuse, wall, usage.ru_utime + usage.ru_stime
    )
    return timing, n_events


def environment_line():
    """
    Software versions and machine in one line.

    Returns
    -------
    str
    """
    import ctapipe
    import numba
    import numpy as np

    import ctapipe_sst1m

    return (
        f"ctapipe_sst1m {ctapipe_sst1m.__version__}, Python"
        f" {platform.python_version()}, ctapipe {ctapipe.__version__}, numba"
        f" {numba.__version__}, numpy {np.__version__}; {os.cpu_count()} CPUs,"
        f" {platform.machine()}"
    )


def load_average():
    """The 1-minute load average of the machine, as text."""
    return f"{os.getloadavg()[0]:.2f}"


def format_table(rows):
    """
    The result table as text.

    Parameters
    ----------
    rows : list of (str, int, Timing, Timing, int)
        Particle, triggered events, simulation alone, whole command, DL1 events.

    Returns
    -------
    str
    """
    header = (
        "particle",
        "showers",
        "triggered",
        "alone wall s",
        "CPU s",
        "showers/s wall",
        "per CPU s",
        "sst1m-simulate wall s",
        "CPU s",
        "showers/s wall",
        "per CPU s",
        "other CPU s",
        "DL1 events",
    )
    cells = [
        (
            particle,
            f"{alone.n_showers:,}",
            f"{n_triggered:,}",
            f"{alone.wall_s:.1f}",
            f"{alone.cpu_s:.1f}",
            f"{alone.rate_wall:.0f}",
            f"{alone.rate_cpu:.0f}",
            f"{whole.wall_s:.1f}",
            f"{whole.cpu_s:.1f}",
            f"{whole.rate_wall:.0f}",
            f"{whole.rate_cpu:.0f}",
            f"{whole.cpu_s - alone.cpu_s:.1f}",
            f"{n_events:,}",
        )
        for particle, n_triggered, alone, whole, n_events in rows
    ]
    widths = [max(len(c[i]) for c in [header, *cells]) for i in range(len(header))]

    def line(values):
        return "  ".join(
            f"{v:<{w}}" if i == 0 else f"{v:>{w}}"
            for i, (v, w) in enumerate(zip(values, widths))
        )

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), rule, *(line(c) for c in cells)])


def run_benchmark(directory, n_showers):
    """
    Simulate every particle alone and with the whole command.

    Parameters
    ----------
    directory : pathlib.Path
    n_showers : int

    Returns
    -------
    cards : list of SimulationCard
    rows : list of (str, int, Timing, Timing, int)
        As `format_table` takes them.
    """
    cards, rows = [], []
    for particle in PARTICLES:
        card = production_card(particle, n_showers)
        alone, n_triggered = simulation_only(directory, card)
        whole, n_events = whole_command(directory, card)
        cards.append(card)
        rows.append((particle, n_triggered, alone, whole, n_events))
        print(f"  done: {particle}", file=sys.stderr)
    return cards, rows


def main(argv=None):
    """Entry point: run the benchmark and print its conditions and table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].strip())
    parser.add_argument(
        "--n-showers",
        type=int,
        default=20000,
        help="thrown showers per particle (default: 20,000)",
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="keep cards, outputs and logs here (default: a temporary directory)",
    )
    args = parser.parse_args(argv)
    load_start = load_average()
    start = time.perf_counter()
    if args.workdir is None:
        with tempfile.TemporaryDirectory(prefix="sst1m_simulation_") as tmp:
            cards, rows = run_benchmark(Path(tmp), args.n_showers)
    else:
        args.workdir.mkdir(parents=True, exist_ok=True)
        cards, rows = run_benchmark(args.workdir.resolve(), args.n_showers)

    print(environment_line())
    print(f"load average (1 min): {load_start} at start, {load_average()} at end")
    for card in cards:
        print(describe_card(card))
    print(
        "showers/s: thrown showers per second (wall) and per CPU second (user +"
        " system); alone: SST1MSimulationSource iteration in this process;"
        " sst1m-simulate: the whole command (start-up, DL1 processing, writing,"
        " overview plot); other CPU s: its CPU time minus that of the simulation"
        " alone"
    )
    print()
    print(format_table(rows))
    print(f"(benchmark wall time {time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
