"""
Per-stage times of ``sst1m-process`` in this process (R0 -> DL1 benchmark, `r0_dl1.py`).

`StageTimedProcessorTool` is ``sst1m-process`` (`SST1MProcessorTool`, run with
``ctapipe.core.run_tool`` and the same command line) whose event loop is
timed piece by piece with ``time.perf_counter``: the event source's iteration,
the ``CameraCalibrator``, the image processing (cleaning and parameters:
ctapipe's ``ImageProcessor`` or ``NumbaImageProcessor``) and the
``DataWriter``, each wrapped (`TimedCall`) after ``setup``; the rest of the
loop (event-type filter, software trigger) is the loop's wall time minus
those. The event source's time is split further:

* decode: plain protozfits iteration over the same file, timed in a pass of
  its own (the best of ``repeat``), per camera event;
* R0 -> R1 + NSB + event building: the rest of the source's time (DigiCam
  sample decoding and pixel order, R0 -> R1, the NSB calibrator, containers,
  trigger times and pointing); of it, R0 -> R1 and NSB are the shares of the
  cumulative cProfile times of the functions of
  ``ctapipe_sst1m.calibration.r0_r1`` and ``ctapipe_sst1m.calibration.nsb``
  (with what they call) in profiled iterations of the event source alone,
  configured like the tool (the medians of ``repeat``), applied to the
  source's unprofiled time.

Times are per camera event read (shower triggers and pedestals, which the
source calibrates but ``sst1m.yaml``'s event-type filter does not process
further), the unit of the events/s of the whole-command table.
"""

import cProfile
import pstats
import statistics
import time
from dataclasses import dataclass, field

import yaml
from traitlets.config import Config

from ctapipe_sst1m.tools.process import SST1MProcessorTool

#: rows of the stage table: key, label
STAGES = (
    ("decode", "decode (protozfits iteration)"),
    ("source_rest", "R0->R1 + NSB + event building (source - decode)"),
    ("r0_r1", "  of which R0->R1 (cProfile share)"),
    ("nsb", "  of which NSB (cProfile share)"),
    ("calibration", "calibration (CameraCalibrator)"),
    ("image_processing", "image processing (cleaning, parameters)"),
    ("writing", "writing (DataWriter)"),
    ("loop_rest", "rest of the event loop (filters)"),
    ("loop", "event loop"),
)

#: stages that add up to the event loop
LOOP_PARTS = (
    "decode",
    "source_rest",
    "calibration",
    "image_processing",
    "writing",
    "loop_rest",
)


class TimedCall:
    """
    A callable component whose calls are timed; its other attributes pass through.

    Parameters
    ----------
    component : callable
    """

    def __init__(self, component):
        object.__setattr__(self, "_component", component)
        object.__setattr__(self, "timed_seconds", 0.0)

    def __call__(self, *args, **kwargs):
        start = time.perf_counter()
        try:
            return self._component(*args, **kwargs)
        finally:
            elapsed = time.perf_counter() - start
            object.__setattr__(self, "timed_seconds", self.timed_seconds + elapsed)

    def __getattr__(self, name):
        return getattr(self._component, name)

    def __setattr__(self, name, value):
        setattr(self._component, name, value)


class TimedIteration:
    """
    A generator function whose iteration is timed, counting the items.

    Parameters
    ----------
    generator_function : callable
        Returns an iterator (an event source's ``_generator``).
    """

    def __init__(self, generator_function):
        self.generator_function = generator_function
        self.timed_seconds = 0.0
        self.n_items = 0

    def __call__(self):
        items = self.generator_function()
        while True:
            start = time.perf_counter()
            try:
                item = next(items)
            except StopIteration:
                return
            finally:
                self.timed_seconds += time.perf_counter() - start
            self.n_items += 1
            yield item


class StageTimedProcessorTool(SST1MProcessorTool):
    """``sst1m-process`` timing its set-up, event-loop stages and finish."""

    def setup(self):
        start = time.perf_counter()
        super().setup()
        self.setup_seconds = time.perf_counter() - start
        self.calibrate = TimedCall(self.calibrate)
        self.process_images = TimedCall(self.process_images)
        self.write = TimedCall(self.write)
        # shadows the class's _generator, which EventSource.__iter__ calls
        self.source_iteration = TimedIteration(self.event_source._generator)
        self.event_source._generator = self.source_iteration

    def start(self):
        start = time.perf_counter()
        super().start()
        self.loop_seconds = time.perf_counter() - start

    def finish(self):
        start = time.perf_counter()
        super().finish()
        self.finish_seconds = time.perf_counter() - start


@dataclass
class StageTimes:
    """Where the time of one ``sst1m-process`` run goes."""

    #: input label
    input: str
    #: image processing variant label
    variant: str
    #: camera events read by the source
    n_events: int
    #: seconds of the whole run per key of `STAGES`
    seconds: dict = field(default_factory=dict)
    setup_s: float = 0.0
    finish_s: float = 0.0

    def ms_per_event(self, stage):
        """Milliseconds per camera event of a stage (None if not measured)."""
        seconds = self.seconds.get(stage)
        return None if seconds is None else 1e3 * seconds / self.n_events


def decode_seconds_per_event(path, repeat):
    """
    Plain protozfits iteration over the Events table, the best of ``repeat``.

    Parameters
    ----------
    path : pathlib.Path
    repeat : int

    Returns
    -------
    float
        Seconds per event, excluding opening the file.
    """
    import protozfits

    best = float("inf")
    for _ in range(repeat):
        with protozfits.File(str(path)) as f:
            table = f.Events
            start = time.perf_counter()
            n = sum(1 for _event in table)
            best = min(best, (time.perf_counter() - start) / n)
    return best


def module_cumulative_seconds(stats, module_file):
    """
    Cumulative profiled time of the functions of a module, entered from outside it.

    Parameters
    ----------
    stats : pstats.Stats
    module_file : str
        The module's ``__file__``.

    Returns
    -------
    float
    """
    total = 0.0
    for function, (*_, callers) in stats.stats.items():
        if function[0] != module_file:
            continue
        for caller, caller_times in callers.items():
            if caller[0] != module_file:
                # (primitive calls, calls, own time, cumulative time) from this caller
                total += caller_times[3]
    return total


def calibration_shares(path, config):
    """
    Shares of R0 -> R1 and of the NSB calibrator in a profiled event-source iteration.

    Parameters
    ----------
    path : pathlib.Path
    config : traitlets.config.Config
        The event source's and NsbCalibrator's options.

    Returns
    -------
    dict
        ``{"r0_r1": share, "nsb": share}`` of the iteration's wall time.
    """
    from ctapipe.io import EventSource

    from ctapipe_sst1m.calibration import nsb, r0_r1

    profile = cProfile.Profile()
    with EventSource(input_url=path, config=config) as source:
        start = time.perf_counter()
        profile.enable()
        for _event in source:
            pass
        profile.disable()
        elapsed = time.perf_counter() - start
    stats = pstats.Stats(profile)
    return {
        key: module_cumulative_seconds(stats, module.__file__) / elapsed
        for key, module in (("r0_r1", r0_r1), ("nsb", nsb))
    }


@dataclass
class SourceProfile:
    """Decoding time and calibration shares of the event source on one input."""

    #: plain protozfits iteration, seconds per event
    decode_s: float
    #: shares of the event source's time taken by R0 -> R1 and by the NSB calibrator
    r0_r1_share: float
    nsb_share: float


def profile_source(path, config_path, repeat):
    """
    Decoding time and the medians of the calibration shares of ``repeat`` passes.

    Parameters
    ----------
    path : pathlib.Path
        The input.
    config_path : pathlib.Path
        ``sst1m.yaml`` (the event source is configured like the tool's).
    repeat : int

    Returns
    -------
    SourceProfile
    """
    with open(config_path) as f:
        config = Config(yaml.safe_load(f))
    shares = [calibration_shares(path, config) for _ in range(repeat)]
    return SourceProfile(
        decode_s=decode_seconds_per_event(path, repeat),
        r0_r1_share=statistics.median(s["r0_r1"] for s in shares),
        nsb_share=statistics.median(s["nsb"] for s in shares),
    )


def tool_argv(benchmark_input, output, config, tool_args):
    """
    The ``sst1m-process`` command line (absolute paths) of an in-process run.

    Parameters
    ----------
    benchmark_input : r0_dl1_inputs.BenchmarkInput
    output, config : pathlib.Path
    tool_args : sequence of str
        Further arguments.

    Returns
    -------
    list of str
    """
    return [
        f"--input={benchmark_input.path.resolve()}",
        f"--output={output.resolve()}",
        "--overwrite",
        f"--config={config.resolve()}",
        "--no-progress",
        "--quiet",
        *tool_args,
    ]


def warm_up_in_process(benchmark_input, config, workdir, n_events=20):
    """
    Run ``sst1m-process`` on the first events of an input, in this process.

    The first events of a process read astropy's IERS table, load numba caches
    and fill other caches: costs of a process, not of a stage.

    Parameters
    ----------
    benchmark_input : r0_dl1_inputs.BenchmarkInput
    config : pathlib.Path
        ``sst1m.yaml``.
    workdir : pathlib.Path
        Receives the output.
    n_events : int
    """
    from ctapipe.core import run_tool

    argv = tool_argv(
        benchmark_input,
        workdir / "warm_up.dl1.h5",
        config,
        [f"--max-events={n_events}"],
    )
    run_tool(SST1MProcessorTool(), argv, cwd=workdir, raises=True)


def measure_stages(benchmark_input, variant, tool_args, config, workdir, source):
    """
    Stage times of one ``sst1m-process`` run on one input, in this process.

    Parameters
    ----------
    benchmark_input : r0_dl1_inputs.BenchmarkInput
    variant : str
        Label of the image processing variant.
    tool_args : list of str
        Variant-specific command line arguments.
    config : pathlib.Path
        ``sst1m.yaml``.
    workdir : pathlib.Path
        Receives the output (absolute paths are passed to the tool).
    source : SourceProfile
        Of the input: splits the event source's time.

    Returns
    -------
    StageTimes
    """
    from ctapipe.core import run_tool

    tag = variant.replace(" ", "_").replace("(", "").replace(")", "")
    output = workdir / f"stages_{benchmark_input.path.stem}_{tag}.dl1.h5"
    tool = StageTimedProcessorTool()
    argv = tool_argv(benchmark_input, output, config, tool_args)
    run_tool(tool, argv, cwd=workdir, raises=True)

    n_events = tool.source_iteration.n_items
    source_seconds = tool.source_iteration.timed_seconds
    decode = source.decode_s * n_events
    seconds = {
        "decode": decode,
        "source_rest": source_seconds - decode,
        "r0_r1": source.r0_r1_share * source_seconds,
        "nsb": source.nsb_share * source_seconds,
        "calibration": tool.calibrate.timed_seconds,
        "image_processing": tool.process_images.timed_seconds,
        "writing": tool.write.timed_seconds,
        "loop": tool.loop_seconds,
    }
    seconds["loop_rest"] = tool.loop_seconds - sum(
        seconds[key] for key in LOOP_PARTS if key != "loop_rest"
    )
    return StageTimes(
        input=benchmark_input.label,
        variant=variant,
        n_events=n_events,
        seconds=seconds,
        setup_s=tool.setup_seconds,
        finish_s=tool.finish_seconds,
    )


def mixed_stages(stage_times, weights, label):
    """
    Stage times of a mix of inputs, weighted per event.

    Parameters
    ----------
    stage_times : list of StageTimes
        Of the same variant.
    weights : list of float
        Fraction of the mix's events from each (summing to 1).
    label : str
        Input label of the mix.

    Returns
    -------
    StageTimes
        Per-event times of the mix, for one event (``n_events`` 1); set-up and
        finish are not defined for a mix (0).
    """
    seconds = {
        key: sum(w * t.seconds[key] / t.n_events for t, w in zip(stage_times, weights))
        for key, _ in STAGES
    }
    return StageTimes(
        input=label, variant=stage_times[0].variant, n_events=1, seconds=seconds
    )


def stage_table(stage_times):
    """
    Stage times of several inputs (same variant) side by side: ms per event and %.

    Parameters
    ----------
    stage_times : list of StageTimes

    Returns
    -------
    header : tuple of str
    cells : list of tuple of str
    align : list of str
        Column alignments (``<``, ``>``).
    """
    header = (
        "stage",
        *(f"{t.input} {unit}" for t in stage_times for unit in ("ms/ev", "%")),
    )
    cells = []
    for key, label in STAGES:
        row = [label]
        for t in stage_times:
            ms = t.ms_per_event(key)
            row += [f"{ms:.3f}", f"{100 * ms / t.ms_per_event('loop'):.1f}"]
        cells.append(tuple(row))
    rates = [(f"{1e3 / t.ms_per_event('loop'):.0f}", "") for t in stage_times]
    cells.append(("events/s of the event loop", *(text for r in rates for text in r)))
    return header, cells, ["<"] + [">"] * (len(header) - 1)
