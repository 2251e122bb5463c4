"""
R0 -> DL1 throughput and peak memory of ``ctapipe-process`` on SST-1M raw data.

Runs the stock ``ctapipe-process`` command line with the ``ctapipe_sst1m``
data configuration (``ctapipe_sst1m/resources/sst1m.yaml``) in a subprocess on

* the real DigiCam example files shipped with protozfits
  (``example_SST1M_20180822.fits.fz``, ``example_100evts.fits.fz``);
* synthetic runs of ``--n-events`` (default 5,000) and ``--n-events-small``
  (default 1,000) events written with :mod:`ctapipe_sst1m.io.synthetic_run`,

each with the default configuration (images + parameters) and with
``--DataWriter.write_dl1_images=False`` (parameters only).

Events/s exclude the start-up (imports, numba cache loading, instrument and
component set-up): the same command is run with ``--max-events n0`` and with
all events, and ``rate = (N - n0) / (t_N - t_n0)`` with the best (shortest)
wall time of ``--repeat`` repetitions of each (one more for short inputs). The
start-up time is the wall time extrapolated to zero events,
``t_n0 - n0 / rate``. Peak memory is the maximum resident set size of the child
process (``os.wait4`` resource usage of that child only), the largest over the
repetitions of the full run.

For reference, the decoding floor is measured in this process: plain
protozfits iteration over the synthetic run, and iteration of
``SST1MEventSource`` (decoding + R0 -> R1 calibration + pointing), both
excluding the construction of the reader.

Usage::

    python benchmarks/r0_dl1.py [--n-events 5000] [--workdir DIR]
"""

import argparse
import importlib.resources
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

#: the real DigiCam example files of the protozfits wheel
REAL_FILES = ("example_SST1M_20180822.fits.fz", "example_100evts.fits.fz")

#: inputs with fewer events get one more repetition
SHORT_INPUT = 500

#: t_N - t_n0 below this (s): rate dominated by start-up jitter, flagged in the table
MIN_SPAN_S = 0.5

#: ctapipe-process variants: label -> extra command line arguments
VARIANTS = {
    "images+parameters": [],
    "parameters only": ["--DataWriter.write_dl1_images=False"],
}


@dataclass
class Measurement:
    """One row of the result table."""

    input: str
    n_events: int
    variant: str
    rate_hz: float
    startup_s: float
    peak_rss_mb: float | None
    #: False if the rate comes from a time difference too short to be precise
    precise: bool = True


@dataclass
class RunResult:
    """Wall time and peak RSS of one subprocess run."""

    wall_s: float
    peak_rss_mb: float


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
        "--n-events", type=int, default=5000, help="events of the large synthetic run"
    )
    parser.add_argument(
        "--n-events-small",
        type=int,
        default=1000,
        help="events of the small synthetic run (peak memory vs run length)",
    )
    parser.add_argument(
        "--n0",
        type=int,
        default=1,
        help="events of the start-up reference run (--max-events n0)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=2,
        help=(
            "repetitions per command, best is kept (one more for inputs of fewer than"
            f" {SHORT_INPUT} events, where start-up jitter dominates)"
        ),
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="keep inputs, outputs and logs here (default: a temporary directory)",
    )
    return parser.parse_args(argv)


def config_path():
    """
    Path of the ctapipe_sst1m data configuration.

    Returns
    -------
    pathlib.Path
    """
    resources = importlib.resources.files("ctapipe_sst1m") / "resources"
    return Path(str(resources / "sst1m.yaml"))


def real_files():
    """
    The real SST-1M example files shipped in the protozfits wheel.

    Returns
    -------
    list of pathlib.Path
    """
    resources = importlib.resources.files("protozfits") / "tests" / "resources"
    return [Path(str(resources / name)) for name in REAL_FILES]


def ctapipe_process_executable():
    """
    The ``ctapipe-process`` script of the running Python environment.

    Returns
    -------
    str
    """
    candidate = Path(sys.executable).parent / "ctapipe-process"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("ctapipe-process")
    if found is None:
        raise RuntimeError("ctapipe-process not found")
    return found


def count_events(path):
    """
    Number of events in the Events table of a DigiCam file.

    Parameters
    ----------
    path : pathlib.Path

    Returns
    -------
    int
    """
    from astropy.io import fits

    with fits.open(path, memmap=False, lazy_load_hdus=True) as hdul:
        return int(hdul["Events"].header["ZNAXIS2"])


def write_synthetic(directory, n_events):
    """
    Write a one-file synthetic run of ``n_events`` events.

    Parameters
    ----------
    directory : pathlib.Path
        Output directory (created).
    n_events : int

    Returns
    -------
    pathlib.Path
        The written ``SST1M1_20240304_0012.fits.fz``.
    """
    from ctapipe_sst1m.io.synthetic_run import SyntheticRun, write_synthetic_run

    directory.mkdir(parents=True, exist_ok=True)
    run = SyntheticRun(n_events=n_events, n_files=1, seed=1)
    paths, _ = write_synthetic_run(directory, run)
    return paths[0]


def run_and_measure(command, cwd, log_path):
    """
    Run a command, returning its wall time and the peak RSS of that child.

    Parameters
    ----------
    command : list of str
    cwd : pathlib.Path
        Working directory (ctapipe writes its provenance log there).
    log_path : pathlib.Path
        File receiving stdout and stderr.

    Returns
    -------
    RunResult

    Raises
    ------
    RuntimeError
        If the command fails (the end of its log is in the message).
    """
    with open(log_path, "wb") as log:
        start = time.perf_counter()
        process = subprocess.Popen(
            command, cwd=cwd, stdout=log, stderr=subprocess.STDOUT
        )
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        tail = Path(log_path).read_text(errors="replace")[-3000:]
        raise RuntimeError(
            f"{' '.join(command)} failed ({process.returncode}):\n{tail}"
        )
    # ru_maxrss is in kB on Linux
    return RunResult(wall_s=wall, peak_rss_mb=usage.ru_maxrss / 1024)


def process_command(input_path, output_path, extra_args, max_events=None):
    """
    The ``ctapipe-process`` command line.

    Parameters
    ----------
    input_path, output_path : pathlib.Path
    extra_args : list of str
        Variant-specific arguments.
    max_events : int or None

    Returns
    -------
    list of str
    """
    command = [
        ctapipe_process_executable(),
        "--input",
        str(input_path),
        "--output",
        str(output_path),
        "--overwrite",
        "--config",
        str(config_path()),
        *extra_args,
    ]
    if max_events is not None:
        command.append(f"--max-events={max_events}")
    return command


def best_run(command, cwd, log_path, repeat):
    """
    Run a command ``repeat`` times.

    Parameters
    ----------
    command : list of str
    cwd : pathlib.Path
    log_path : pathlib.Path
        Log of the last repetition.
    repeat : int

    Returns
    -------
    wall_s : float
        Shortest wall time.
    peak_rss_mb : float
        Largest peak RSS.
    """
    runs = [run_and_measure(command, cwd, log_path) for _ in range(repeat)]
    return min(r.wall_s for r in runs), max(r.peak_rss_mb for r in runs)


def measure_process(input_path, n_events, variant, workdir, n0, repeat):
    """
    Throughput, start-up time and peak RSS of ctapipe-process for one input and variant.

    Parameters
    ----------
    input_path : pathlib.Path
    n_events : int
        Events in the input.
    variant : str
        Key of `VARIANTS`.
    workdir : pathlib.Path
    n0 : int
        Events of the start-up reference run.
    repeat : int

    Returns
    -------
    Measurement
    """
    stem = input_path.name.removesuffix(".fits.fz")
    tag = f"{stem}_{n_events}_{variant.replace(' ', '_').replace('+', '_')}"
    output = workdir / f"{tag}.dl1.h5"
    extra = VARIANTS[variant]
    n0 = min(n0, n_events - 1)
    if n_events < SHORT_INPUT:
        repeat += 1
    t0, _ = best_run(
        process_command(input_path, output, extra, max_events=n0),
        workdir,
        workdir / f"{tag}_n0.log",
        repeat,
    )
    t_full, peak = best_run(
        process_command(input_path, output, extra),
        workdir,
        workdir / f"{tag}.log",
        repeat,
    )
    span = t_full - t0
    rate = (n_events - n0) / span if span > 0 else float("nan")
    return Measurement(
        input=input_path.name,
        n_events=n_events,
        variant=variant,
        rate_hz=rate,
        startup_s=t0 - n0 / rate if span > 0 else t0,
        peak_rss_mb=peak,
        precise=span >= MIN_SPAN_S,
    )


def warm_up(input_path, workdir, n0):
    """
    Run ctapipe-process once so that numba caches and the file cache are warm.

    Parameters
    ----------
    input_path : pathlib.Path
    workdir : pathlib.Path
    n0 : int
    """
    run_and_measure(
        process_command(input_path, workdir / "warm_up.dl1.h5", [], max_events=n0),
        workdir,
        workdir / "warm_up.log",
    )


def measure_protozfits(path, repeat):
    """
    Plain protozfits iteration over the Events table (the decoding floor).

    Parameters
    ----------
    path : pathlib.Path
    repeat : int

    Returns
    -------
    Measurement
    """
    import protozfits

    best_rate, best_open = 0.0, 0.0
    for _ in range(repeat):
        start = time.perf_counter()
        with protozfits.File(str(path)) as f:
            table = f.Events
            opened = time.perf_counter()
            n = 0
            for _event in table:
                n += 1
            elapsed = time.perf_counter() - opened
        if n / elapsed > best_rate:
            best_rate, best_open = n / elapsed, opened - start
    variant = "protozfits iteration (in-process)"
    return Measurement(path.name, n, variant, best_rate, best_open, None)


def measure_event_source(path, repeat):
    """
    SST1MEventSource iteration (decoding, R0 -> R1, pointing), excluding construction.

    Parameters
    ----------
    path : pathlib.Path
    repeat : int

    Returns
    -------
    Measurement
    """
    from ctapipe_sst1m.io.event_source import SST1MEventSource

    best_rate, best_setup = 0.0, 0.0
    for _ in range(repeat):
        start = time.perf_counter()
        source = SST1MEventSource(path)
        constructed = time.perf_counter()
        n = 0
        for _event in source:
            n += 1
        elapsed = time.perf_counter() - constructed
        source.close()
        if n / elapsed > best_rate:
            best_rate, best_setup = n / elapsed, constructed - start
    variant = "SST1MEventSource (in-process)"
    return Measurement(path.name, n, variant, best_rate, best_setup, None)


def format_table(rows):
    """
    The result table as text.

    Parameters
    ----------
    rows : list of Measurement

    Returns
    -------
    str
    """
    header = ("input", "events", "variant", "events/s", "start-up s", "peak RSS MB")
    cells = [
        (
            r.input,
            str(r.n_events),
            r.variant,
            ("n/a" if r.rate_hz != r.rate_hz else f"{r.rate_hz:.0f}")
            + ("" if r.precise else " *"),
            f"{r.startup_s:.2f}",
            "-" if r.peak_rss_mb is None else f"{r.peak_rss_mb:.0f}",
        )
        for r in rows
    ]
    widths = [max(len(c[i]) for c in [header, *cells]) for i in range(len(header))]
    align = ["<", ">", "<", ">", ">", ">"]

    def line(values):
        return "  ".join(f"{v:{a}{w}}" for v, a, w in zip(values, align, widths))

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), rule, *(line(c) for c in cells)])


def memory_growth_lines(rows, n_small, n_large):
    """
    Lines comparing the peak RSS of the small and large synthetic runs per variant.

    Parameters
    ----------
    rows : list of Measurement
    n_small, n_large : int

    Returns
    -------
    list of str
    """
    lines = []
    for variant in VARIANTS:
        by_n = {
            r.n_events: r.peak_rss_mb
            for r in rows
            if r.variant == variant and r.input.startswith("SST1M1_") and r.peak_rss_mb
        }
        if n_small in by_n and n_large in by_n:
            small, large = by_n[n_small], by_n[n_large]
            lines.append(
                f"Peak RSS {n_large:,} vs {n_small:,} events ({variant}):"
                f" {large:.0f} MB vs {small:.0f} MB, {large - small:+.0f} MB"
                f" ({100 * (large - small) / small:+.1f} %)"
            )
    return lines


def code_version():
    """
    ctapipe_sst1m version and, in a git checkout, the commit (``+dirty`` if modified).

    Returns
    -------
    str
    """
    import ctapipe_sst1m

    version = ctapipe_sst1m.__version__
    repo = Path(ctapipe_sst1m.__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "describe", "--always", "--dirty=+dirty"],
            cwd=repo,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return version
    return f"{version} ({commit})"


def environment_line():
    """One line describing the software and machine."""
    import ctapipe
    import protozfits

    return (
        f"ctapipe_sst1m {code_version()}, Python {platform.python_version()},"
        f" ctapipe {ctapipe.__version__},"
        f" protozfits {getattr(protozfits, '__version__', '?')},"
        f" {os.cpu_count()} CPUs, {platform.machine()}"
    )


def run_benchmark(workdir, n_events, n_events_small, n0, repeat):
    """
    Run all measurements.

    Parameters
    ----------
    workdir : pathlib.Path
    n_events, n_events_small : int
        Events of the large and small synthetic runs.
    n0 : int
        Events of the start-up reference runs.
    repeat : int

    Returns
    -------
    list of Measurement
    """
    inputs = [(path, count_events(path)) for path in real_files()]
    for n in (n_events_small, n_events):
        inputs.append((write_synthetic(workdir / f"synthetic_{n}", n), n))

    warm_up(inputs[-1][0], workdir, n0)
    rows = []
    for path, n in inputs:
        for variant in VARIANTS:
            rows.append(measure_process(path, n, variant, workdir, n0, repeat))
            print(f"  done: {path.name} ({n} events), {variant}", file=sys.stderr)

    large = inputs[-1][0]
    rows.append(measure_protozfits(large, repeat))
    rows.append(measure_event_source(large, repeat))
    return rows


def main(argv=None):
    """Entry point: run the benchmark and print the table."""
    args = parse_args(argv)
    start = time.perf_counter()
    sizes = (args.n_events, args.n_events_small, args.n0, args.repeat)
    if args.workdir is None:
        with tempfile.TemporaryDirectory(prefix="sst1m_r0_dl1_") as tmp:
            rows = run_benchmark(Path(tmp), *sizes)
    else:
        args.workdir.mkdir(parents=True, exist_ok=True)
        rows = run_benchmark(args.workdir.resolve(), *sizes)

    print(environment_line())
    print(f"ctapipe-process --config {config_path()}")
    print(
        f"events/s exclude start-up: (N - {args.n0}) / (t_N - t_{args.n0}),"
        f" best of {args.repeat} ({args.repeat + 1} below {SHORT_INPUT} events);"
        " start-up = wall time extrapolated to 0 events"
    )
    print()
    print(format_table(rows))
    if not all(r.precise for r in rows):
        print(
            f"* t_N - t_n0 < {MIN_SPAN_S} s: rate dominated by start-up jitter,"
            " indicative only"
        )
    print()
    for line in memory_growth_lines(rows, args.n_events_small, args.n_events):
        print(line)
    print(f"(benchmark wall time {time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
