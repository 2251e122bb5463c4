"""Interrupted runs: Ctrl-C, SIGTERM and SIGKILL never leave a partial output under its name.

| signal  | sst1m-process                                  | rerun              |
|---------|------------------------------------------------|--------------------|
| SIGINT  | exit 130, no output, no temporary file          | works              |
| SIGTERM | exit ≠ 0, no output (temporary file removed)    | works              |
| SIGKILL | killed, no output, its ``*.part`` file remains  | works (new name)   |
"""

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import run_cli

from ctapipe_sst1m.testing import SyntheticRun, write_synthetic_run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def long_run(tmp_path_factory):
    """A synthetic run long enough (1,500 events) to be interrupted in the middle."""
    directory = tmp_path_factory.mktemp("long_run")
    paths, _ = write_synthetic_run(directory, SyntheticRun(n_events=1500, seed=9))
    return paths[0]


def _start(raw, output, config):
    executable = Path(sys.executable).parent / "sst1m-process"
    return subprocess.Popen(
        [executable, "--input", raw, "--output", output, "--config", config],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_events(process, output):
    """Wait until the run writes events (its temporary file grows), at most 60 s."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        parts = list(output.parent.glob(f"{output.name}.*.part"))
        if parts and parts[0].stat().st_size > 200_000:
            return
        assert process.poll() is None, process.communicate()
        time.sleep(0.2)
    raise AssertionError("the run wrote no events within 60 s")


@pytest.mark.parametrize(
    "signal_number, temporary_left",
    [
        pytest.param(signal.SIGINT, False, id="SIGINT"),
        pytest.param(signal.SIGTERM, False, id="SIGTERM"),
        pytest.param(signal.SIGKILL, True, id="SIGKILL"),
    ],
)
def test_interrupted_process(
    long_run, data_config, tmp_path, signal_number, temporary_left
):
    output = tmp_path / "run.dl1.h5"
    process = _start(long_run, output, data_config)
    _wait_for_events(process, output)
    process.send_signal(signal_number)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode != 0
    if signal_number == signal.SIGINT:
        assert process.returncode == 130, stderr
    assert not output.exists()
    assert bool(list(tmp_path.glob("*.part"))) == temporary_left
    # a rerun is not blocked by what the interrupted one left
    result = run_cli(
        "sst1m-process",
        "--input",
        long_run,
        "--output",
        output,
        "--config",
        data_config,
        "--SST1MEventSource.max_events=50",
        "--no-progress",
    )
    assert result.returncode == 0, result.stderr
    assert output.exists()
