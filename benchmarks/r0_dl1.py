"""
R0 -> DL1 throughput and peak memory of ``ctapipe-process`` on SST-1M raw data.

Runs the stock ``ctapipe-process`` command line with the ``ctapipe_sst1m``
data configuration (``ctapipe_sst1m/resources/sst1m.yaml``) in a subprocess on

* the real DigiCam example files shipped with protozfits
  (``example_SST1M_20180822.fits.fz``, ``example_100evts.fits.fz``);
* synthetic runs of ``--n-events`` (default 5,000) and ``--n-events-small``
  (default 1,000) events written with :mod:`ctapipe_sst1m.testing`,

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

With ``--baseline PYTHON`` (the python of another environment, e.g. one with
the previous release) every ``ctapipe-process`` measurement is made for both
environments in the same run: each runs its own ``ctapipe-process`` (the one
next to its python) with its own packaged ``sst1m.yaml`` (so that changes of
the configuration are part of the comparison) on the same inputs (the
synthetic runs are written once, by the running environment), warmed up
alike, with the repetitions interleaved (new, baseline, new, baseline, ...) so
that a drift of the machine load hits both. The table shows both side by side
with the ratios new / baseline of events/s (> 1: the new environment is
faster) and of peak RSS (> 1: it needs more memory); the environment lines
name the ctapipe_sst1m version and commit, Python and ctapipe of each. The
in-process reference rows are measured in the running environment only. Both
environments share the machine: results are comparable only if nothing else
changes the load much during the run (the ratio of two interleaved runs is more
stable than either rate).

Usage::

    python benchmarks/r0_dl1.py [--n-events 5000] [--workdir DIR]
    python benchmarks/r0_dl1.py --baseline /path/to/other/env/bin/python
"""

import argparse
import importlib.resources
import json
import os
import platform
import shutil
import statistics
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

#: run with the baseline python (``-c``): what the benchmark needs of that environment
ENVIRONMENT_QUERY = """
import importlib.resources, json, os, platform
import ctapipe, ctapipe_sst1m, protozfits
resources = importlib.resources.files("ctapipe_sst1m") / "resources"
print(json.dumps({
    "ctapipe_sst1m": ctapipe_sst1m.__version__,
    "package_dir": os.path.dirname(os.path.abspath(ctapipe_sst1m.__file__)),
    "python": platform.python_version(),
    "ctapipe": ctapipe.__version__,
    "protozfits": getattr(protozfits, "__version__", "?"),
    "config": str(resources / "sst1m.yaml"),
}))
"""


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
class Environment:
    """A Python environment whose ``ctapipe-process`` is measured."""

    #: label in the table ("new": the running environment, "baseline")
    name: str
    #: its ``ctapipe-process`` script
    ctapipe_process: str
    #: its packaged ``sst1m.yaml``
    config: Path
    #: ctapipe_sst1m version and commit, Python, ctapipe and protozfits versions
    software: str


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
    parser.add_argument(
        "--baseline",
        metavar="PYTHON",
        default=None,
        help=(
            "python executable of another environment (e.g. the previous release):"
            " measure its ctapipe-process too, interleaved, and compare"
        ),
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
    from ctapipe_sst1m.testing import SyntheticRun, write_synthetic_run

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


def process_command(environment, input_path, output_path, extra_args, max_events=None):
    """
    The ``ctapipe-process`` command line.

    Parameters
    ----------
    environment : Environment
        Gives ``ctapipe-process`` and ``sst1m.yaml``.
    input_path, output_path : pathlib.Path
    extra_args : list of str
        Variant-specific arguments.
    max_events : int or None

    Returns
    -------
    list of str
    """
    command = [
        environment.ctapipe_process,
        "--input",
        str(input_path),
        "--output",
        str(output_path),
        "--overwrite",
        "--config",
        str(environment.config),
        *extra_args,
    ]
    if max_events is not None:
        command.append(f"--max-events={max_events}")
    return command


def best_runs(runs, repeat):
    """
    Run commands ``repeat`` times each, interleaved (A, B, A, B, ...).

    Parameters
    ----------
    runs : list of (list of str, pathlib.Path, pathlib.Path)
        Command, working directory and log file (of the last repetition).
    repeat : int

    Returns
    -------
    list of (float, float)
        Per command, the shortest wall time (s) and the largest peak RSS (MB).
    """
    results = [[] for _ in runs]
    for _ in range(repeat):
        for command_results, (command, cwd, log_path) in zip(results, runs):
            command_results.append(run_and_measure(command, cwd, log_path))
    return [
        (min(r.wall_s for r in rs), max(r.peak_rss_mb for r in rs)) for rs in results
    ]


def measure_process(input_path, n_events, variant, environments, workdirs, n0, repeat):
    """
    Throughput, start-up time and peak RSS of ctapipe-process for one input and variant.

    Parameters
    ----------
    input_path : pathlib.Path
    n_events : int
        Events in the input.
    variant : str
        Key of `VARIANTS`.
    environments : list of Environment
        Measured interleaved.
    workdirs : list of pathlib.Path
        Working directory (outputs, logs) of each environment.
    n0 : int
        Events of the start-up reference run.
    repeat : int

    Returns
    -------
    list of Measurement
        One per environment.
    """
    stem = input_path.name.removesuffix(".fits.fz")
    tag = f"{stem}_{n_events}_{variant.replace(' ', '_').replace('+', '_')}"
    extra = VARIANTS[variant]
    n0 = min(n0, n_events - 1)
    if n_events < SHORT_INPUT:
        repeat += 1

    def runs(max_events, log_name):
        return [
            (
                process_command(
                    env, input_path, wd / f"{tag}.dl1.h5", extra, max_events
                ),
                wd,
                wd / log_name,
            )
            for env, wd in zip(environments, workdirs)
        ]

    startup_runs = best_runs(runs(n0, f"{tag}_n0.log"), repeat)
    full_runs = best_runs(runs(None, f"{tag}.log"), repeat)
    measurements = []
    for (t0, _), (t_full, peak) in zip(startup_runs, full_runs):
        span = t_full - t0
        rate = (n_events - n0) / span if span > 0 else float("nan")
        measurements.append(
            Measurement(
                input=input_path.name,
                n_events=n_events,
                variant=variant,
                rate_hz=rate,
                startup_s=t0 - n0 / rate if span > 0 else t0,
                peak_rss_mb=peak,
                precise=span >= MIN_SPAN_S,
            )
        )
    return measurements


def warm_up(environment, input_path, workdir, n0):
    """
    Run ctapipe-process once so that numba caches and the file cache are warm.

    Parameters
    ----------
    environment : Environment
    input_path : pathlib.Path
    workdir : pathlib.Path
    n0 : int
    """
    run_and_measure(
        process_command(
            environment, input_path, workdir / "warm_up.dl1.h5", [], max_events=n0
        ),
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
    from ctapipe_sst1m.event_source import SST1MEventSource

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


def format_rate(measurement):
    """
    Events/s of a measurement, ``*`` if imprecise.

    Parameters
    ----------
    measurement : Measurement

    Returns
    -------
    str
    """
    rate = measurement.rate_hz
    text = "n/a" if rate != rate else f"{rate:.0f}"
    return text + ("" if measurement.precise else " *")


def format_peak_rss(measurement):
    """
    Peak RSS of a measurement in MB, ``-`` if not measured.

    Parameters
    ----------
    measurement : Measurement

    Returns
    -------
    str
    """
    rss = measurement.peak_rss_mb
    return "-" if rss is None else f"{rss:.0f}"


def render_table(header, cells, align):
    """
    Columns aligned under a header and a rule.

    Parameters
    ----------
    header : tuple of str
    cells : list of tuple of str
    align : list of str
        Format alignment of each column (``<`` or ``>``).

    Returns
    -------
    str
    """
    widths = [max(len(c[i]) for c in [header, *cells]) for i in range(len(header))]

    def line(values):
        return "  ".join(f"{v:{a}{w}}" for v, a, w in zip(values, align, widths))

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), rule, *(line(c) for c in cells)])


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
            format_rate(r),
            f"{r.startup_s:.2f}",
            format_peak_rss(r),
        )
        for r in rows
    ]
    return render_table(header, cells, ["<", ">", "<", ">", ">", ">"])


def row_key(measurement):
    """The input, its number of events and the variant: what a row measures."""
    return measurement.input, measurement.n_events, measurement.variant


def ratio(new, baseline):
    """
    ``new / baseline`` as text, ``-`` if either is missing or not a number.

    Parameters
    ----------
    new, baseline : float or None

    Returns
    -------
    str
    """
    if not new or not baseline or new != new or baseline != baseline:
        return "-"
    return f"{new / baseline:.2f}"


def format_comparison_table(rows, baseline_rows):
    """
    The result table of two environments side by side, with ratios new / baseline.

    Parameters
    ----------
    rows : list of Measurement
        Of the running ("new") environment; in-process rows have no baseline.
    baseline_rows : list of Measurement

    Returns
    -------
    str
    """
    baseline_by_key = {row_key(r): r for r in baseline_rows}
    header = (
        "input",
        "events",
        "variant",
        "events/s new",
        "baseline",
        "ratio",
        "start-up s new",
        "baseline",
        "peak RSS MB new",
        "baseline",
        "ratio",
    )
    cells = []
    for r in rows:
        base = baseline_by_key.get(row_key(r))
        cells.append(
            (
                r.input,
                str(r.n_events),
                r.variant,
                format_rate(r),
                "-" if base is None else format_rate(base),
                "-" if base is None else ratio(r.rate_hz, base.rate_hz),
                f"{r.startup_s:.2f}",
                "-" if base is None else f"{base.startup_s:.2f}",
                format_peak_rss(r),
                "-" if base is None else format_peak_rss(base),
                "-" if base is None else ratio(r.peak_rss_mb, base.peak_rss_mb),
            )
        )
    align = ["<", ">", "<", ">", ">", ">", ">", ">", ">", ">", ">"]
    return render_table(header, cells, align)


def ratio_summary_lines(rows, baseline_rows):
    """
    Median and range of the ratios new / baseline of events/s and of peak RSS.

    Only rows whose rates are precise in both environments enter the events/s
    summary.

    Parameters
    ----------
    rows, baseline_rows : list of Measurement

    Returns
    -------
    list of str
    """
    baseline_by_key = {row_key(r): r for r in baseline_rows}
    pairs = [
        (r, baseline_by_key[row_key(r)]) for r in rows if row_key(r) in baseline_by_key
    ]
    rate_ratios = [
        new.rate_hz / base.rate_hz
        for new, base in pairs
        if new.precise and base.precise
    ]
    rss_ratios = [new.peak_rss_mb / base.peak_rss_mb for new, base in pairs]
    lines = []
    for label, ratios in (
        (f"events/s (rows with t_N - t_n0 >= {MIN_SPAN_S} s)", rate_ratios),
        ("peak RSS (all rows)", rss_ratios),
    ):
        if ratios:
            lines.append(
                f"new / baseline {label}: median {statistics.median(ratios):.2f},"
                f" {min(ratios):.2f} to {max(ratios):.2f} over {len(ratios)} rows"
            )
    return lines


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


def code_version(version, package_dir):
    """
    ctapipe_sst1m version and, in a git checkout, the commit (``+dirty`` if modified).

    Parameters
    ----------
    version : str
        ``ctapipe_sst1m.__version__``.
    package_dir : pathlib.Path
        Directory of the ``ctapipe_sst1m`` package.

    Returns
    -------
    str
    """
    try:
        commit = subprocess.run(
            ["git", "describe", "--always", "--dirty=+dirty"],
            cwd=Path(package_dir).resolve().parent,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return version
    return f"{version} ({commit})"


def software_description(versions):
    """
    One line naming the versions of an environment.

    Parameters
    ----------
    versions : dict
        The keys printed by `ENVIRONMENT_QUERY`.

    Returns
    -------
    str
    """
    sst1m_version = code_version(versions["ctapipe_sst1m"], versions["package_dir"])
    return (
        f"ctapipe_sst1m {sst1m_version}, Python {versions['python']},"
        f" ctapipe {versions['ctapipe']}, protozfits {versions['protozfits']}"
    )


def running_environment():
    """
    The running Python environment.

    Returns
    -------
    Environment
    """
    import ctapipe
    import protozfits

    import ctapipe_sst1m

    versions = {
        "ctapipe_sst1m": ctapipe_sst1m.__version__,
        "package_dir": Path(ctapipe_sst1m.__file__).parent,
        "python": platform.python_version(),
        "ctapipe": ctapipe.__version__,
        "protozfits": getattr(protozfits, "__version__", "?"),
    }
    return Environment(
        name="new",
        ctapipe_process=ctapipe_process_executable(),
        config=config_path(),
        software=software_description(versions),
    )


def baseline_environment(python):
    """
    Another Python environment, asked for its versions and ``sst1m.yaml``.

    Parameters
    ----------
    python : str
        Its python executable; its ``ctapipe-process`` is the one next to it.

    Returns
    -------
    Environment

    Raises
    ------
    RuntimeError
        If it has no ``ctapipe-process`` or cannot import ctapipe_sst1m.
    """
    ctapipe_process = Path(python).parent / "ctapipe-process"
    if not ctapipe_process.exists():
        raise RuntimeError(f"no ctapipe-process next to {python}")
    # run in the python's own directory: -c puts the working directory first on
    # sys.path, where a source tree would shadow the installed ctapipe_sst1m
    query = subprocess.run(
        [python, "-c", ENVIRONMENT_QUERY],
        cwd=Path(python).parent,
        capture_output=True,
        text=True,
    )
    if query.returncode != 0:
        raise RuntimeError(f"{python} cannot describe its environment:\n{query.stderr}")
    versions = json.loads(query.stdout)
    return Environment(
        name="baseline",
        ctapipe_process=str(ctapipe_process),
        config=Path(versions["config"]),
        software=software_description(versions),
    )


def machine_description():
    """Number of CPUs and architecture of this machine."""
    return f"{os.cpu_count()} CPUs, {platform.machine()}"


def run_benchmark(workdir, environments, n_events, n_events_small, n0, repeat):
    """
    Run all measurements.

    Parameters
    ----------
    workdir : pathlib.Path
    environments : list of Environment
        The running one first; several are measured interleaved, each in its own
        sub-directory of ``workdir``.
    n_events, n_events_small : int
        Events of the large and small synthetic runs.
    n0 : int
        Events of the start-up reference runs.
    repeat : int

    Returns
    -------
    list of list of Measurement
        The rows of each environment; the in-process reference rows are in the
        first (running) environment's only.
    """
    inputs = [(path, count_events(path)) for path in real_files()]
    for n in (n_events_small, n_events):
        inputs.append((write_synthetic(workdir / f"synthetic_{n}", n), n))

    if len(environments) == 1:
        workdirs = [workdir]
    else:
        workdirs = [workdir / env.name for env in environments]
    for env, env_workdir in zip(environments, workdirs):
        env_workdir.mkdir(exist_ok=True)
        warm_up(env, inputs[-1][0], env_workdir, n0)
    rows = [[] for _ in environments]
    for path, n in inputs:
        for variant in VARIANTS:
            measurements = measure_process(
                path, n, variant, environments, workdirs, n0, repeat
            )
            for env_rows, measurement in zip(rows, measurements):
                env_rows.append(measurement)
            print(f"  done: {path.name} ({n} events), {variant}", file=sys.stderr)

    large = inputs[-1][0]
    rows[0].append(measure_protozfits(large, repeat))
    rows[0].append(measure_event_source(large, repeat))
    return rows


def main(argv=None):
    """Entry point: run the benchmark and print the table."""
    args = parse_args(argv)
    start = time.perf_counter()
    environments = [running_environment()]
    comparison = args.baseline is not None
    if comparison:
        environments.append(baseline_environment(args.baseline))
    sizes = (args.n_events, args.n_events_small, args.n0, args.repeat)
    if args.workdir is None:
        with tempfile.TemporaryDirectory(prefix="sst1m_r0_dl1_") as tmp:
            rows = run_benchmark(Path(tmp), environments, *sizes)
    else:
        args.workdir.mkdir(parents=True, exist_ok=True)
        rows = run_benchmark(args.workdir.resolve(), environments, *sizes)

    if comparison:
        for env in environments:
            print(f"{env.name}: {env.software}")
            print(f"  {env.ctapipe_process} --config {env.config}")
        print(f"{machine_description()}; repetitions interleaved new, baseline")
    else:
        print(f"{environments[0].software}, {machine_description()}")
        print(f"ctapipe-process --config {environments[0].config}")
    print(
        f"events/s exclude start-up: (N - {args.n0}) / (t_N - t_{args.n0}),"
        f" best of {args.repeat} ({args.repeat + 1} below {SHORT_INPUT} events);"
        " start-up = wall time extrapolated to 0 events"
    )
    print()
    if comparison:
        print(format_comparison_table(*rows))
        print("ratio: new / baseline (events/s > 1: new faster; peak RSS > 1: larger)")
    else:
        print(format_table(rows[0]))
    if not all(r.precise for env_rows in rows for r in env_rows):
        print(
            f"* t_N - t_n0 < {MIN_SPAN_S} s: rate dominated by start-up jitter,"
            " indicative only"
        )
    print()
    if comparison:
        for line in ratio_summary_lines(*rows):
            print(line)
    for env, env_rows in zip(environments, rows):
        prefix = f"{env.name}: " if comparison else ""
        for line in memory_growth_lines(env_rows, args.n_events_small, args.n_events):
            print(prefix + line)
    print(f"(benchmark wall time {time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
