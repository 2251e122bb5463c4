"""
R0 -> DL1 throughput, start-up and peak memory of ``ctapipe-process`` and ``sst1m-process``.

Runs the commands of an environment with the ``ctapipe_sst1m`` data
configuration (``ctapipe_sst1m/resources/sst1m.yaml``) in subprocesses, in the
variants (``--variants``)

* ``ctapipe-process``: the stock command;
* ``ctapipe-process (parameters only)``: with
  ``--DataWriter.write_dl1_images=False`` (not run by default);
* ``sst1m-process``: the project's command (pointing and SST-1M monitoring
  tables, atomic output), ``--no-progress``, with its default image parameters
  (``NumbaImageProcessor`` where the version has it);
* ``sst1m-process (ImageProcessor)``: with
  ``--SST1MProcessorTool.numba_image_parameters=False`` (ctapipe's
  ImageProcessor), measured in the running environment only: earlier versions
  do not know the option,

on these inputs (`r0_dl1_inputs`; sizes by option):

* the real DigiCam example files of protozfits (32 and 100 events);
* a shower-rich run: telescope 21 of a simulated run of point gammas from 2 TeV
  (``--n-showers`` 2,200: 1,835 shower events and 183 pedestals, all but one
  image survive cleaning);
* a proton run: telescope 21 of a simulated run of diffuse protons from 1 TeV
  with an E^-2.7 spectrum (``--n-proton-showers`` 8,000: 1,700 shower events,
  98 % with small images after cleaning (median 9 pixels, 130 p.e.), and 170
  pedestals);
* the synthetic run of ``ctapipe_sst1m.testing`` (``--n-events`` 3,000,
  Gaussian images in every shower event, larger than those of the simulation;
  the input of the earlier figures of ``docs/performance.md``).

The realistic mix of a night is not a file: a night's triggers are mostly
cosmic-ray protons, so the "night mix" rows combine the per-event times of the
proton run and the shower-rich run, ``--gamma-fraction`` (0.1) of the events
from the latter: ``rate = 1 / (f / rate_gammas + (1 - f) / rate_protons)``, with
the larger peak RSS of the two. Triggers by the night-sky background alone,
whose images do not survive cleaning (like 28 of the 30 shower triggers of the
2018 example file), are not simulated and would be cheaper.

Events/s exclude the start-up (imports, numba cache loading, instrument and
component set-up, and the finish: monitoring tables, closing the file): the
same command is run with ``--max-events n0`` and with all events, and
``rate = (N - n0) / (t_N - t_n0)`` with the best (shortest) wall time of
``--repeat`` repetitions of each; N counts all camera events of the file
(shower triggers and pedestals). The start-up is the wall time extrapolated to
zero events, ``t_n0 - n0 / rate``; the wall time of ``--max-events n0`` itself
(n0 = 1 by default: the command's time for one event) is shown too. Rates
from ``t_N - t_n0`` under 2 s (the real files, small inputs) are flagged: the
start-up jitter (a few 0.1 s) dominates them. Peak memory
is the maximum resident set size of the child process (``os.wait4`` resource
usage of that child only, started by a small launcher process: a child of the
benchmark's process would count the benchmark's own memory), the largest over
the repetitions of the full run.
Every variant is run once with ``--max-events n0`` on the shower-rich run first
(warm numba caches and file cache); a variant that fails there (e.g. an option
that environment does not know) is skipped with a note.

Per-stage times (`r0_dl1_stages`; ``--no-stages`` to skip) are measured in this
process, for the running environment only, on the proton and shower-rich runs
and for the night mix, for each ``sst1m-process`` variant: decode (protozfits
iteration), R0 -> R1 + NSB + event building (the rest of the event source,
with the cProfile shares of R0 -> R1 and of the NSB calibrator, medians of
``--repeat`` profiled passes), calibration (CameraCalibrator), image
processing, writing (DataWriter) and the rest of the event loop, in ms per
camera event and % of the event loop; set-up and finish in seconds. A short
run in this process comes first (astropy's IERS table, numba caches).

With ``--baseline PYTHON`` (the python of another environment, e.g. one with
the previous release) every subprocess measurement is made for both
environments in the same run: each runs its own commands (next to its python)
with its own packaged ``sst1m.yaml`` (so that changes of the configuration are
part of the comparison) on the same inputs (written once, by the running
environment), warmed up alike, with the repetitions interleaved (new, baseline,
new, baseline, ...) so that a drift of the machine load hits both. The table
shows both side by side with the ratios new / baseline of events/s (> 1: the
new environment is faster) and of peak RSS (> 1: it needs more memory).

The printed conditions are those of the measurement: date, load averages at
the start and the end, CPUs, the versions and commit of each environment, the
commands and the inputs (with how many images survive cleaning). Both
environments share the machine with whatever else runs: the ratio of two
interleaved runs is more stable than either rate.

The default run takes about 8 minutes on 2 CPUs (1 of it writing the inputs;
``--workdir DIR --reuse-inputs`` keeps them for the next run), about 12.5 with
``--baseline``. ``--quick`` (smaller inputs, one repetition: about 3.5 and 5
minutes) is a smoke test: most of its rates are flagged imprecise, its
start-up, memory and stage times are fine.

Usage::

    python benchmarks/r0_dl1.py [--quick] [--workdir DIR [--reuse-inputs]]
    python benchmarks/r0_dl1.py --baseline /path/to/other/env/bin/python
"""

import argparse
import importlib.resources
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from r0_dl1_inputs import (
    image_summary,
    proton_input,
    real_inputs,
    shower_rich_input,
    synthetic_input,
)
from r0_dl1_report import (
    MIN_SPAN_S,
    MIX_LABEL,
    Measurement,
    format_comparison_table,
    format_table,
    mix_rows,
    print_stages,
    ratio_summary_lines,
)

#: sizes of ``--quick`` (explicit options still win)
QUICK = {"n_showers": 600, "n_proton_showers": 2000, "n_events": 1000, "repeat": 1}


@dataclass(frozen=True)
class Variant:
    """A command line measured by the benchmark."""

    #: name in ``--variants``
    key: str
    #: label in the tables
    label: str
    #: console script of the environment
    tool: str
    #: variant-specific arguments
    args: tuple = ()
    #: measured in the running environment only (an option the baseline does not know)
    new_only: bool = False


VARIANTS = (
    Variant("ctapipe", "ctapipe-process", "ctapipe-process"),
    Variant(
        "ctapipe-parameters",
        "ctapipe-process (parameters only)",
        "ctapipe-process",
        ("--DataWriter.write_dl1_images=False",),
    ),
    Variant("sst1m", "sst1m-process", "sst1m-process", ("--no-progress",)),
    Variant(
        "sst1m-imageprocessor",
        "sst1m-process (ImageProcessor)",
        "sst1m-process",
        ("--no-progress", "--SST1MProcessorTool.numba_image_parameters=False"),
        new_only=True,
    ),
)

DEFAULT_VARIANTS = ("ctapipe", "sst1m", "sst1m-imageprocessor")

#: run with ``python -S -c LAUNCHER RESULT_JSON COMMAND...``: runs COMMAND as its child
#: and writes the child's wall time, exit code and peak RSS (``os.wait4``) to RESULT_JSON
LAUNCHER = """
import json, os, sys, time
result_path, *command = sys.argv[1:]
start = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execv(command[0], command)
    except OSError as err:
        print(f"{command[0]}: {err}", file=sys.stderr)
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - start
with open(result_path, "w") as f:
    json.dump(
        {
            "wall_s": wall,
            "exit_code": os.waitstatus_to_exitcode(status),
            "max_rss_kb": usage.ru_maxrss,
        },
        f,
    )
"""

#: run with an environment's python (``-c``): what the benchmark needs of that environment
ENVIRONMENT_QUERY = """
import importlib.resources, json, os, platform
import ctapipe, ctapipe_sst1m, numba, numpy, protozfits
resources = importlib.resources.files("ctapipe_sst1m") / "resources"
print(json.dumps({
    "ctapipe_sst1m": ctapipe_sst1m.__version__,
    "package_dir": os.path.dirname(os.path.abspath(ctapipe_sst1m.__file__)),
    "python": platform.python_version(),
    "ctapipe": ctapipe.__version__,
    "numpy": numpy.__version__,
    "numba": numba.__version__,
    "protozfits": getattr(protozfits, "__version__", "?"),
    "config": str(resources / "sst1m.yaml"),
}))
"""


@dataclass
class Environment:
    """A Python environment whose commands are measured."""

    #: label in the table ("new": the running environment, "baseline")
    name: str
    #: directory of its console scripts
    bin_dir: Path
    #: its packaged ``sst1m.yaml``
    config: Path
    #: ctapipe_sst1m version and commit, Python, ctapipe, numpy, numba, protozfits
    software: str

    def executable(self, tool):
        """
        A console script of the environment.

        Parameters
        ----------
        tool : str

        Returns
        -------
        str

        Raises
        ------
        RuntimeError
            If the environment has no such script.
        """
        path = self.bin_dir / tool
        if not path.exists():
            raise RuntimeError(f"no {tool} in {self.bin_dir}")
        return str(path)


@dataclass
class RunResult:
    """Wall time and peak RSS of one subprocess run."""

    wall_s: float
    peak_rss_mb: float


@dataclass
class Results:
    """Everything the benchmark measured."""

    #: the measured inputs, in order
    inputs: list
    #: rows per environment name
    rows: dict
    #: image summary per input label (from the running environment's output)
    image_summaries: dict = field(default_factory=dict)
    #: stage times per sst1m-process variant label (`r0_dl1_stages.StageTimes` lists)
    stages: dict = field(default_factory=dict)
    #: variants skipped, and why
    notes: list = field(default_factory=list)


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
        "--n-showers",
        type=int,
        default=2200,
        help="point gammas of the shower-rich run (2,200: 2,018 camera events)",
    )
    parser.add_argument(
        "--n-proton-showers",
        type=int,
        default=8000,
        help="diffuse protons of the proton run (8,000: 1,870 camera events)",
    )
    parser.add_argument(
        "--n-events",
        type=int,
        default=3000,
        help="events of the synthetic run of ctapipe_sst1m.testing (0: none)",
    )
    parser.add_argument(
        "--gamma-fraction",
        type=float,
        default=0.1,
        help="fraction of the night mix's events like those of the shower-rich run",
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
        help="repetitions per command, the best is kept",
    )
    parser.add_argument(
        "--variants",
        nargs="+",
        choices=[v.key for v in VARIANTS],
        default=list(DEFAULT_VARIANTS),
        help="command lines to measure",
    )
    parser.add_argument(
        "--no-stages",
        action="store_true",
        help="skip the in-process per-stage times",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=(
            "smaller inputs and one repetition: "
            + ", ".join(f"--{k.replace('_', '-')} {v}" for k, v in QUICK.items())
        ),
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="keep inputs, outputs and logs here (default: a temporary directory)",
    )
    parser.add_argument(
        "--reuse-inputs",
        action="store_true",
        help="use the inputs an earlier run wrote into --workdir with the same sizes",
    )
    parser.add_argument(
        "--baseline",
        metavar="PYTHON",
        default=None,
        help=(
            "python executable of another environment (e.g. the previous release):"
            " measure its commands too, interleaved, and compare"
        ),
    )
    args = parser.parse_args(argv)
    if args.quick:
        parser.set_defaults(**QUICK)
        args = parser.parse_args(argv)
    return args


def config_path():
    """
    Path of the ctapipe_sst1m data configuration of the running environment.

    Returns
    -------
    pathlib.Path
    """
    resources = importlib.resources.files("ctapipe_sst1m") / "resources"
    return Path(str(resources / "sst1m.yaml"))


def run_and_measure(command, cwd, log_path):
    """
    Run a command, returning its wall time and the peak RSS of that child.

    The command is started by a small launcher process (`LAUNCHER`): a child
    forked from this process would count this process's resident memory at the
    fork in its peak.

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
    result_path = Path(log_path).with_suffix(".launcher.json")
    with open(log_path, "wb") as log:
        subprocess.run(
            [sys.executable, "-S", "-c", LAUNCHER, str(result_path), *command],
            cwd=cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
            check=True,
        )
    result = json.loads(result_path.read_text())
    if result["exit_code"] != 0:
        tail = Path(log_path).read_text(errors="replace")[-3000:]
        raise RuntimeError(
            f"{' '.join(command)} failed ({result['exit_code']}):\n{tail}"
        )
    # ru_maxrss is in kB on Linux
    return RunResult(wall_s=result["wall_s"], peak_rss_mb=result["max_rss_kb"] / 1024)


def process_command(environment, variant, input_path, output, max_events=None):
    """
    The command line of a variant in an environment.

    Parameters
    ----------
    environment : Environment
        Gives the console script and ``sst1m.yaml``.
    variant : Variant
    input_path, output : pathlib.Path
    max_events : int or None

    Returns
    -------
    list of str
    """
    command = [
        environment.executable(variant.tool),
        "--input",
        str(input_path),
        "--output",
        str(output),
        "--overwrite",
        "--config",
        str(environment.config),
        *variant.args,
    ]
    if max_events is not None:
        command.append(f"--max-events={max_events}")
    return command


def output_path(workdir, benchmark_input, variant):
    """
    The DL1 output of a variant on an input.

    Parameters
    ----------
    workdir : pathlib.Path
        The environment's working directory.
    benchmark_input : r0_dl1_inputs.BenchmarkInput
    variant : Variant

    Returns
    -------
    pathlib.Path
    """
    stem = benchmark_input.path.name.removesuffix(".fits.fz")
    return workdir / f"{stem}_{variant.key}.dl1.h5"


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


def measure_process(benchmark_input, variant, environments, workdirs, n0, repeat):
    """
    Throughput, start-up time and peak RSS of one variant on one input.

    Parameters
    ----------
    benchmark_input : r0_dl1_inputs.BenchmarkInput
    variant : Variant
    environments : list of Environment
        Measured interleaved.
    workdirs : dict
        Working directory (outputs, logs) per environment name.
    n0 : int
        Events of the start-up reference run.
    repeat : int

    Returns
    -------
    dict
        Measurement per environment name.
    """
    n_events = benchmark_input.n_events
    n0 = min(n0, n_events - 1)

    def runs(max_events, suffix):
        commands = []
        for env in environments:
            output = output_path(workdirs[env.name], benchmark_input, variant)
            log = output.with_name(output.name.removesuffix(".dl1.h5") + suffix)
            command = process_command(
                env, variant, benchmark_input.path, output, max_events
            )
            commands.append((command, workdirs[env.name], log))
        return commands

    startup_runs = best_runs(runs(n0, "_n0.log"), repeat)
    full_runs = best_runs(runs(None, ".log"), repeat)
    measurements = {}
    for env, (t0, _), (t_full, peak) in zip(environments, startup_runs, full_runs):
        span = t_full - t0
        rate = (n_events - n0) / span if span > 0 else float("nan")
        measurements[env.name] = Measurement(
            input=benchmark_input.label,
            n_events=n_events,
            variant=variant.label,
            rate_hz=rate,
            startup_s=t0 - n0 / rate if span > 0 else t0,
            n0_wall_s=t0,
            peak_rss_mb=peak,
            precise=span >= MIN_SPAN_S,
        )
    return measurements


def warm_up(environments, variants, benchmark_input, workdirs, n0):
    """
    Run every variant once with ``--max-events n0`` in every environment.

    Warms numba caches and the file cache, and finds the variants an environment
    cannot run (e.g. an option it does not know).

    Parameters
    ----------
    environments : list of Environment
        The running one first.
    variants : list of Variant
    benchmark_input : r0_dl1_inputs.BenchmarkInput
    workdirs : dict
        Working directory per environment name.
    n0 : int

    Returns
    -------
    runnable : dict
        Per variant key, the environments that ran it.
    notes : list of str
        The variants skipped in an environment, and why.
    """
    runnable, notes = {}, []
    for variant in variants:
        runnable[variant.key] = []
        for env in environments:
            if variant.new_only and env is not environments[0]:
                notes.append(
                    f"{variant.label}: not run in {env.name} (an option of the new"
                    " version)"
                )
                continue
            workdir = workdirs[env.name]
            command = process_command(
                env,
                variant,
                benchmark_input.path,
                workdir / f"warm_up_{variant.key}.dl1.h5",
                max_events=n0,
            )
            try:
                run_and_measure(
                    command, workdir, workdir / f"warm_up_{variant.key}.log"
                )
            except RuntimeError as err:
                reason = str(err).strip().splitlines()[-1]
                notes.append(
                    f"{variant.label}: skipped in {env.name}, it fails: {reason}"
                )
                print(f"  note: {notes[-1]}", file=sys.stderr)
                continue
            runnable[variant.key].append(env)
    return runnable, notes


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
        f" ctapipe {versions['ctapipe']}, numpy {versions['numpy']},"
        f" numba {versions['numba']}, protozfits {versions['protozfits']}"
    )


def environment_from_query(name, python):
    """
    An environment described by its own python (`ENVIRONMENT_QUERY`).

    Parameters
    ----------
    name : str
        Its label in the tables.
    python : str
        Its python executable; its commands are those next to it.

    Returns
    -------
    Environment

    Raises
    ------
    RuntimeError
        If it cannot import ctapipe_sst1m.
    """
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
        name=name,
        bin_dir=Path(python).parent,
        config=Path(versions["config"]),
        software=software_description(versions),
    )


def machine_description():
    """Number of CPUs and architecture of this machine."""
    return f"{os.cpu_count()} CPUs, {platform.machine()}"


def load_averages():
    """The 1-, 5- and 15-minute load averages, as text."""
    return " / ".join(f"{load:.2f}" for load in os.getloadavg())


def prepare_inputs(args, workdir):
    """
    The inputs of the benchmark, written into ``workdir`` (or reused).

    Parameters
    ----------
    args : argparse.Namespace
    workdir : pathlib.Path

    Returns
    -------
    inputs : list of r0_dl1_inputs.BenchmarkInput
        Real files, shower-rich run, proton run, synthetic run (if any).
    gammas, protons : r0_dl1_inputs.BenchmarkInput
        The shower-rich and proton runs.
    """
    print("  writing the inputs", file=sys.stderr)
    gammas = shower_rich_input(workdir / "gammas", args.n_showers, args.reuse_inputs)
    protons = proton_input(
        workdir / "protons", args.n_proton_showers, args.reuse_inputs
    )
    inputs = [*real_inputs(), gammas, protons]
    if args.n_events:
        inputs.append(
            synthetic_input(
                workdir / f"synthetic_{args.n_events}", args.n_events, args.reuse_inputs
            )
        )
    return inputs, gammas, protons


def measure_all_stages(args, inputs, variants, workdir):
    """
    Stage times of the running environment's ``sst1m-process`` variants.

    Parameters
    ----------
    args : argparse.Namespace
    inputs : tuple of r0_dl1_inputs.BenchmarkInput
        The shower-rich and proton runs.
    variants : list of Variant
        The ``sst1m-process`` variants the running environment runs.
    workdir : pathlib.Path

    Returns
    -------
    dict
        Per variant label: the `r0_dl1_stages.StageTimes` of each input and of
        the night mix.
    """
    from r0_dl1_stages import (
        measure_stages,
        mixed_stages,
        profile_source,
        warm_up_in_process,
    )

    gammas, protons = inputs
    stage_dir = workdir / "stages"
    stage_dir.mkdir(exist_ok=True)
    config = config_path()
    warm_up_in_process(gammas, config, stage_dir)
    sources = {b.label: profile_source(b.path, config, args.repeat) for b in inputs}
    stages = {}
    for variant in variants:
        times = [
            measure_stages(
                b, variant.label, variant.args, config, stage_dir, sources[b.label]
            )
            for b in (protons, gammas)
        ]
        weights = (1 - args.gamma_fraction, args.gamma_fraction)
        stages[variant.label] = [*times, mixed_stages(times, weights, MIX_LABEL)]
        print(f"  stages done: {variant.label}", file=sys.stderr)
    return stages


def run_benchmark(args, workdir, environments):
    """
    Run all measurements.

    Parameters
    ----------
    args : argparse.Namespace
    workdir : pathlib.Path
    environments : list of Environment
        The running one first; each works in its own sub-directory of ``workdir``.

    Returns
    -------
    Results
    """
    inputs, gammas, protons = prepare_inputs(args, workdir)
    workdirs = {env.name: workdir / env.name for env in environments}
    for env_workdir in workdirs.values():
        env_workdir.mkdir(exist_ok=True)
    variants = [v for v in VARIANTS if v.key in args.variants]
    runnable, notes = warm_up(environments, variants, gammas, workdirs, args.n0)
    results = Results(
        inputs=inputs, rows={env.name: [] for env in environments}, notes=notes
    )
    new = environments[0]
    for benchmark_input in inputs:
        for variant in variants:
            if not runnable[variant.key]:
                continue
            measurements = measure_process(
                benchmark_input,
                variant,
                runnable[variant.key],
                workdirs,
                args.n0,
                args.repeat,
            )
            for name, measurement in measurements.items():
                results.rows[name].append(measurement)
            output = output_path(workdirs[new.name], benchmark_input, variant)
            if benchmark_input.label not in results.image_summaries and output.exists():
                summary = image_summary(output)
                if summary:
                    results.image_summaries[benchmark_input.label] = summary
            print(f"  done: {benchmark_input.label}, {variant.label}", file=sys.stderr)
    for rows in results.rows.values():
        rows.extend(mix_rows(rows, gammas.label, protons.label, args.gamma_fraction))

    if not args.no_stages:
        stage_variants = [
            v for v in variants if v.tool == "sst1m-process" and new in runnable[v.key]
        ]
        results.stages = measure_all_stages(
            args, (gammas, protons), stage_variants, workdir
        )
    return results


def print_conditions(args, environments, results, started, load_start):
    """
    Print the conditions of the measurement.

    Parameters
    ----------
    args : argparse.Namespace
    environments : list of Environment
    results : Results
    started : str
        Date and time of the start (UTC).
    load_start : str
        Load averages at the start.
    """
    print(f"R0 -> DL1 benchmark, started {started}")
    print(
        f"{machine_description()}; load average (1/5/15 min) {load_start} at the start,"
        f" {load_averages()} at the end"
    )
    for env in environments:
        print(f"{env.name}: {env.software}")
        print(
            f"  {env.bin_dir}/COMMAND --input INPUT --output OUTPUT --overwrite"
            f" --config {env.config} [--max-events {args.n0}] ARGS"
        )
    for variant in VARIANTS:
        if variant.key in args.variants:
            print(
                f"  {variant.label}: {variant.tool} {' '.join(variant.args)}".rstrip()
            )
    if len(environments) > 1:
        print("repetitions interleaved new, baseline")
    print(
        f"events/s exclude start-up: (N - {args.n0}) / (t_N - t_{args.n0}), best of"
        f" {args.repeat}, N = camera events (shower triggers + pedestals);"
        f" start-up = wall time extrapolated to 0 events; --max-events {args.n0} s ="
        " its best wall time; peak RSS of the child process"
    )
    print("inputs:")
    for benchmark_input in results.inputs:
        summary = results.image_summaries.get(benchmark_input.label, "")
        print(
            f"  {benchmark_input.label}: {benchmark_input.path.name},"
            f" {benchmark_input.n_events:,} camera events, {benchmark_input.description}"
            + (f"; {summary}" if summary else "")
        )
    print(
        f"  {MIX_LABEL}: computed, {args.gamma_fraction:.0%} of the events like the"
        f" shower-rich run, {1 - args.gamma_fraction:.0%} like the proton run"
        " (per-event times weighted)"
    )


def main(argv=None):
    """Entry point: run the benchmark and print the tables."""
    args = parse_args(argv)
    start = time.perf_counter()
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    load_start = load_averages()
    environments = [environment_from_query("new", sys.executable)]
    comparison = args.baseline is not None
    if comparison:
        environments.append(environment_from_query("baseline", args.baseline))
    if args.workdir is None:
        with tempfile.TemporaryDirectory(prefix="sst1m_r0_dl1_") as tmp:
            results = run_benchmark(args, Path(tmp), environments)
    else:
        args.workdir.mkdir(parents=True, exist_ok=True)
        results = run_benchmark(args, args.workdir.resolve(), environments)

    print_conditions(args, environments, results, started, load_start)
    print()
    rows = [results.rows[env.name] for env in environments]
    if comparison:
        print(format_comparison_table(*rows, args.n0))
        print("ratio: new / baseline (events/s > 1: new faster; peak RSS > 1: larger)")
    else:
        print(format_table(rows[0], args.n0))
    if not all(r.precise for env_rows in rows for r in env_rows):
        print(
            f"* t_N - t_n0 < {MIN_SPAN_S} s: rate dominated by start-up jitter,"
            " indicative only"
        )
    for note in results.notes:
        print(f"note: {note}")
    print()
    if comparison:
        for line in ratio_summary_lines(*rows):
            print(line)
        print()
    print_stages(results.stages)
    print(f"(benchmark wall time {time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
