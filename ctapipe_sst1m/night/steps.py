"""
Running one step of a night on a worker: the sst1m Tool in-process (its console output
and log go to ``<product>.log``), its command beside the product (``<product>.step.yaml``),
the output under a temporary name until complete, and a result for the manifest.
"""

import importlib
import logging
import re
import socket
import time
import traceback
from contextlib import redirect_stderr, redirect_stdout
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import yaml
from ctapipe import fitting
from ctapipe.core import Provenance
from ctapipe.core.tool import run_tool
from threadpoolctl import threadpool_limits

from ..io.atomic_output import AtomicOutput
from .manifest import file_fingerprint, software_versions

#: colour codes of ctapipe's console log format
_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")

#: status of an up-to-date product whose re-run inputs all failed again
UNCHANGED = "unchanged"

__all__ = [
    "TOOLS",
    "UNCHANGED",
    "tool_class",
    "execute_step",
    "log_path",
    "command_path",
]

#: the Tool behind each command of a night (imported on the worker that runs it)
TOOLS = {
    "sst1m-process": "ctapipe_sst1m.tools.process:SST1MProcessorTool",
    "sst1m-stereo-match": "ctapipe_sst1m.tools.stereo_match:StereoMatchTool",
    "sst1m-apply-models": "ctapipe_sst1m.tools.apply_models:ApplyModelsTool",
    "sst1m-dl3": "ctapipe_sst1m.tools.dl3:DL3Tool",
}


def tool_class(command):
    """The Tool class of a command (``sst1m-process``...)."""
    module_name, class_name = TOOLS[command].split(":")
    return getattr(importlib.import_module(module_name), class_name)


def log_path(product):
    """The log of a product's step."""
    return Path(f"{product}.log")


def command_path(product):
    """The command (and configuration hash) of a product's step."""
    return Path(f"{product}.step.yaml")


def _argv(step, inputs, output):
    """The command line of a step with the inputs that were made."""
    first, *others = [str(path) for path in inputs]
    if step.command == "sst1m-process":
        io = [f"--input={first}", f"--output={output}"]
    elif step.command == "sst1m-stereo-match":
        io = [f"--input-tel1={first}", *(f"--input-tel2={p}" for p in others)]
        io.append(f"--output={output}")
    elif step.command == "sst1m-apply-models":
        io = [f"--input={first}", f"--output={output}"]
    elif step.command == "sst1m-dl3":
        io = [*(f"--input={p}" for p in [first, *others]), f"--output-dir={output}"]
    else:
        raise ValueError(f"no command line for {step.command}")
    progress = [] if step.command == "sst1m-dl3" else ["--no-progress"]
    return [*io, *step.options, *progress, "--overwrite", "--log-level=INFO"]


def _available_inputs(step, upstream_results):
    """The inputs that exist, or the reason the step cannot run."""
    made = {r["key"] for r in upstream_results if r["status"] in ("done", UNCHANGED)}
    inputs = [path for path, key in step.inputs if key is None or key in made]
    missing = [path for path, key in step.inputs if key is not None and key not in made]
    first_missing = step.inputs and step.inputs[0][0] in missing
    if not inputs or first_missing or (missing and step.needs_all_inputs):
        names = ", ".join(Path(p).name for p in missing)
        return None, f"not run: its input was not made ({names})"
    return inputs, None


def _run_tool(step, inputs, log):
    """Run the step's Tool in this process; a DL3 directory under a temporary name."""
    if step.kind != "dl3":  # the other tools write their output atomically
        return _run_in_process(step, _argv(step, inputs, step.product), log)
    with AtomicOutput(step.product, overwrite=True, directory=True) as output:
        code = _run_in_process(step, _argv(step, inputs, output.temporary), log)
        if code == 0:
            output.commit()
    return code


def _run_in_process(step, argv, log):
    """Run a Tool with its console output in the log; its command beside the product."""
    argv += [f"--provenance-log={step.product}.provenance.log"]
    command_path(step.product).write_text(
        yaml.safe_dump(
            {"command": step.command, "argv": argv, "config_hash": step.config_hash}
        )
    )
    return run_tool(
        tool_class(step.command)(), argv=argv, cwd=step.product.parent, raises=False
    )


def _reset_fit_generator():
    """
    Put ctapipe's random generator of the timing fits (``ctapipe.fitting.FIT_RNG``,
    seeded with 0 at import, the default of ``lts_linear_regression``) back to its
    state at import: the timing parameters of an image depend on the fits the process
    made before, so without this a product would depend on the steps its worker ran
    before it; with it, it is the product of the tool in a process of its own.
    """
    fitting.FIT_RNG.bit_generator.state = np.random.default_rng(0).bit_generator.state


class _output_to:
    """
    Send a step's console output and log records to its log file: stdout and stderr
    (the tools' console handlers are made on them), and the package loggers for steps
    that are functions. Handlers left on the file by a tool are removed after, so that
    the next step of the worker does not write to a closed file; the provenance of the
    worker's earlier steps is dropped (in a worker, where no Tool is active), so each
    step records only its own. Numerical libraries (BLAS, OpenMP) use one thread, like a
    worker of a LocalCluster: a worker runs one step per core, and the sums of threaded
    BLAS differ in the last bits with the number of threads.
    """

    def __init__(self, log):
        self.log = log
        self.handler = logging.StreamHandler(log)
        self.redirects = (redirect_stdout(log), redirect_stderr(log))

    def __enter__(self):
        if not Provenance().active_activity_names:  # a worker between two steps
            Provenance().clear()
        _reset_fit_generator()
        self.threads = threadpool_limits(limits=1)
        for redirect in self.redirects:
            redirect.__enter__()
        logger = logging.getLogger("ctapipe_sst1m")
        logger.addHandler(self.handler)
        self.level = logger.level
        logger.setLevel(min(logger.getEffectiveLevel(), logging.INFO))
        return self

    def __exit__(self, *exc_info):
        self.threads.restore_original_limits()
        for redirect in reversed(self.redirects):
            redirect.__exit__(*exc_info)
        logging.getLogger("ctapipe_sst1m").setLevel(self.level)
        loggers = [logging.getLogger(), *logging.root.manager.loggerDict.values()]
        for logger in loggers:
            for handler in getattr(logger, "handlers", [])[:]:
                if (
                    handler is self.handler
                    or getattr(handler, "stream", None) is self.log
                ):
                    logger.removeHandler(handler)


def execute_step(step, *upstream_results, function=None, redone_inputs=None):
    """
    Make the product of a step (on a Dask worker).

    Parameters
    ----------
    step : ctapipe_sst1m.night.plan.Step
    *upstream_results : dict
        The results of the steps it depends on.
    function : callable, optional
        For steps that are not Tools: ``function(step, inputs, log)`` makes the product.
    redone_inputs : set of str, optional
        For a product that is up to date but depends on steps run again: their keys.
        If none of them made its product, the step returns the status ``unchanged``.

    Returns
    -------
    dict
        The manifest entry: ``key``, ``status`` (done, failed or blocked), ``message``,
        ``inputs`` (fingerprints), ``config_hash``, ``versions``, ``duration_s``,
        ``started``, ``log``, ``worker``.
    """
    started = time.monotonic()
    result = {
        "key": step.key,
        "kind": step.kind,
        "product": str(step.product),
        "config_hash": step.config_hash,
        "versions": software_versions(),
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "worker": socket.gethostname(),
        "log": str(log_path(step.product)),
        "inputs": [],
        "message": "",
    }
    if redone_inputs and not any(
        r["key"] in redone_inputs and r["status"] == "done" for r in upstream_results
    ):
        return {"key": step.key, "status": UNCHANGED}
    inputs, reason = _available_inputs(step, upstream_results)
    if inputs is None:
        return {**result, "status": "blocked", "message": reason, "duration_s": 0.0}
    step.product.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path(step.product), "w") as log, _output_to(log):
        try:
            if function is None:
                code = _run_tool(step, inputs, log)
            else:
                function(step, inputs, log)
                code = 0
        except Exception:
            traceback.print_exc(file=log)
            code = 1
    status = "done" if code == 0 and step.product.exists() else "failed"
    result.update(status=status, duration_s=round(time.monotonic() - started, 3))
    if status == "done":
        result["inputs"] = [file_fingerprint(path) for path in inputs]
        result["message"] = f"{len(inputs)} of {len(step.inputs)} inputs"
    else:
        result["message"] = _last_error(log_path(step.product), code)
    return result


def _last_error(log, code):
    """
    Why a step failed, from its log: the message of its last critical or error record
    (not ctapipe's usage hint), else its last line.
    """
    lines = [
        _ANSI_ESCAPE.sub("", line).strip()
        for line in log.read_text(errors="replace").splitlines()
    ]
    lines = [line for line in lines if line and not line.endswith("for more info")]
    for level in ("CRITICAL", "ERROR"):
        found = [
            line for line in lines if f" {level} " in line and "SystemExit" not in line
        ]
        if found:
            return found[-1].split("): ", 1)[-1][:300]
    return f"exit status {code}" + (f": {lines[-1][:300]}" if lines else "")
