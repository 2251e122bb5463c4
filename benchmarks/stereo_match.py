"""
Run time and peak memory of the stereo coincidence matcher on long synthetic runs.

For each matching method, a fresh subprocess builds two synthetic time series
of about ``--n-events`` events each with
:func:`ctapipe_sst1m.testing.simulate_stereo_times` (stereo
showers at 150 Hz, 40 % extra single-telescope triggers and 20 Hz interleaved
pedestals per telescope; 5 ns White Rabbit jitter, or for SlidingWindow a
3.217 ms camera-clock offset with 200 ns spread), calls the matcher once on
small data (numba compilation / cache loading), then times the call on the
full data (best of ``--repeat``, data generation excluded).

Memory: ``call peak`` is the tracemalloc peak of one more call (every array of
the matcher is allocated by numpy, so tracemalloc sees them all); ``max RSS``
is the maximum resident set size of the whole subprocess (Python, ctapipe,
numba, the input data and the call).

SlidingWindow is also run with a ±50 µs window: with the default ±1 ms window,
single-telescope triggers and pedestals form accidental pairs with each other
(about ``n_single * rate_single * 2 ms``), which limits the precision.

Usage::

    python benchmarks/stereo_match.py [--n-events 1000000] [--repeat 3]
"""

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
import tracemalloc

import numpy as np

#: (label, method, extra traits, simulation keywords)
CASES = [
    ("SWATEventIDs", "SWATEventIDs", {}, {}),
    ("WhiteRabbitClosest", "WhiteRabbitClosest", {}, {}),
    (
        "SlidingWindow",
        "SlidingWindow",
        {},
        {"clock_offset_ns": 3_217_000, "delay_sigma_ns": 200.0},
    ),
    (
        "SlidingWindow ±50µs",
        "SlidingWindow",
        {"sliding_window_half_width_ns": 50_000},
        {"clock_offset_ns": 3_217_000, "delay_sigma_ns": 200.0},
    ),
]

STEREO_RATE_HZ = 150.0
SINGLE_FRACTION = 0.4
PEDESTAL_RATE_HZ = 20.0


def parse_args(argv=None):
    """
    Parse the command line.

    Parameters
    ----------
    argv : list of str or None
        Arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    argparse.Namespace
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].strip())
    parser.add_argument(
        "--n-events", type=int, default=1_000_000, help="events per telescope"
    )
    parser.add_argument(
        "--repeat", type=int, default=3, help="timed calls, the best is kept"
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the synthetic data"
    )
    parser.add_argument("--case", type=int, default=None, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def run_case(case_index, n_events, repeat, seed):
    """
    Benchmark one case in this process.

    Parameters
    ----------
    case_index : int
        Index in `CASES`.
    n_events : int
        Events per telescope.
    repeat : int
        Timed calls.
    seed : int

    Returns
    -------
    dict
        One row of the table.
    """
    from ctapipe_sst1m.stereo.coincidence import CoincidenceMatcher
    from ctapipe_sst1m.testing import simulate_stereo_times

    label, method, traits, simulation = CASES[case_index]
    rng = np.random.default_rng(seed)
    events_per_stereo = 1 + SINGLE_FRACTION + PEDESTAL_RATE_HZ / STEREO_RATE_HZ
    sim = simulate_stereo_times(
        int(round(n_events / events_per_stereo)),
        rng,
        stereo_rate_hz=STEREO_RATE_HZ,
        single_fraction=SINGLE_FRACTION,
        pedestal_rate_hz=PEDESTAL_RATE_HZ,
        **simulation,
    )
    matcher = CoincidenceMatcher(method=method, **traits)
    arguments = (sim.times_1_ns, sim.times_2_ns, sim.event_ids_1, sim.event_ids_2)

    warm_up = simulate_stereo_times(200, rng, **simulation)
    matcher(
        warm_up.times_1_ns, warm_up.times_2_ns, warm_up.event_ids_1, warm_up.event_ids_2
    )

    seconds = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = matcher(*arguments)
        seconds.append(time.perf_counter() - start)

    tracemalloc.start()
    matcher(*arguments)
    call_peak_bytes = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()

    precision, recall = sim.precision_recall(result)
    return {
        "case": label,
        "n1": len(sim.times_1_ns),
        "n2": len(sim.times_2_ns),
        "pairs": len(result.index_1),
        "seconds": min(seconds),
        "call_peak_mb": call_peak_bytes / 1e6,
        # ru_maxrss is in kB on Linux
        "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3,
        "precision": precision,
        "recall": recall,
        "offset_ns": result.offset_ns,
        "true_offset_ns": simulation.get("clock_offset_ns", 0),
    }


def print_table(rows):
    """Print the result rows as a Markdown table."""
    print(
        "| method | n1 | n2 | pairs | seconds | call peak MB | max RSS MB"
        " | precision | recall | offset found (ns) | true offset (ns) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        print(
            f"| {row['case']} | {row['n1']:,} | {row['n2']:,} | {row['pairs']:,}"
            f" | {row['seconds']:.2f} | {row['call_peak_mb']:.0f}"
            f" | {row['max_rss_mb']:.0f}"
            f" | {row['precision']:.5f} | {row['recall']:.5f}"
            f" | {row['offset_ns']:,} | {row['true_offset_ns']:,} |"
        )


def main(argv=None):
    """Run every case in a fresh subprocess and print the table."""
    args = parse_args(argv)
    if args.case is not None:
        print(json.dumps(run_case(args.case, args.n_events, args.repeat, args.seed)))
        return

    print(
        f"# stereo matching, {platform.processor() or platform.machine()},"
        f" {os.cpu_count()} CPUs, Python {platform.python_version()},"
        f" numpy {np.__version__}"
    )
    rows = []
    for case_index in range(len(CASES)):
        command = [
            sys.executable,
            __file__,
            "--case",
            str(case_index),
            "--n-events",
            str(args.n_events),
            "--repeat",
            str(args.repeat),
            "--seed",
            str(args.seed),
        ]
        output = subprocess.run(
            command, check=True, capture_output=True, text=True
        ).stdout
        rows.append(json.loads(output.strip().splitlines()[-1]))
    print_table(rows)


if __name__ == "__main__":
    main()
