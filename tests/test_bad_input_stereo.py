"""
sst1m-stereo-match on bad or unusual inputs, through the command line: one table of cases.

Exit status: 0 when every run was matched, also with 0 stereo events (no output then,
a message with the counts); 1 when a run failed while running (an offset scan that is
refused), after the other runs; 2 for inputs refused in setup, before any output.
"""

import shutil

import numpy as np
import pytest
import tables
from conftest import run_cli
from ctapipe.io import read_table

from ctapipe_sst1m.testing import (
    SyntheticRun,
    SyntheticStereoRun,
    write_synthetic_run,
    write_synthetic_stereo_run,
)
from ctapipe_sst1m.time import NS_PER_S

START_NS = 1_709_590_000 * NS_PER_S  # 2024-03-04T22:06 UTC: the night of 2024-03-04


def ctapipe_process(raw, dl1, data_config):
    result = run_cli("ctapipe-process", "-i", raw, "-o", dl1, "--config", data_config)
    assert result.returncode == 0, result.stderr
    return dl1


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, data_config):
    """The DL1 files of the cases, by name."""
    directory = tmp_path_factory.mktemp("bad_input_stereo")
    paths = {}
    # a stereo run of both telescopes (SWAT ids, White Rabbit)
    raw, _ = write_synthetic_stereo_run(
        directory / "raw", SyntheticStereoRun(n_stereo=60, seed=31)
    )
    for tel_id in (21, 22):
        paths[f"stereo{tel_id}"] = ctapipe_process(
            raw[tel_id][0], directory / f"stereo{tel_id}.h5", data_config
        )
    # telescope 22 at the same time, other showers: no common SWAT id, no coincidence
    runs = {
        "other22": SyntheticRun(
            tel_id=22,
            n_events=80,
            first_array_event_number=5_000_000,
            white_rabbit_offset_ns=1_000,
            seed=32,
        ),
        # telescope 22 two nights later
        "night22": SyntheticRun(
            tel_id=22,
            date="20240306",
            n_events=30,
            start_time_ns=START_NS + 2 * 86_400 * NS_PER_S,
            seed=33,
        ),
    }
    for name, run in runs.items():
        (raw_file,) = write_synthetic_run(directory / name, run)[0]
        paths[name] = ctapipe_process(raw_file, directory / f"{name}.h5", data_config)
    # a DL1 file without events, as ctapipe-process writes for a run of pedestals only
    paths["empty"] = directory / "empty.h5"
    shutil.copy(paths["stereo21"], paths["empty"])
    with tables.open_file(paths["empty"], "a") as h5:
        h5.remove_node("/dl1/event", recursive=True)
    paths["notes"] = directory / "notes.h5"
    paths["notes"].write_text("not an HDF5 file")
    return paths


#: (telescope-21 input, telescope-22 inputs, options, exit status, output written,
#: what stdout + stderr must say)
CASES = [
    pytest.param(
        "empty",
        ["stereo22"],
        [],
        0,
        False,
        [
            "empty.h5: a DL1 file without events",
            "empty.h5: 0 stereo events, no output: the telescope-21 file has no shower",
        ],
        id="tel21-dl1-without-events",
    ),
    pytest.param(
        "stereo21",
        ["empty"],
        [],
        0,
        False,
        [
            "empty.h5: a DL1 file without events",
            "stereo21.h5: 0 stereo events, no output: no telescope-22 file overlaps",
        ],
        id="tel22-dl1-without-events",
    ),
    pytest.param(
        "stereo21",
        ["other22"],
        ["--method", "SWATEventIDs"],
        0,
        False,
        [
            "stereo21.h5: 0 stereo events, no output: no pair (SWATEventIDs) among 100"
            " telescope-21 and 72 telescope-22 shower events",
            "tel 22 {'matched': 0, 'ambiguous': 0, 'rejected': 0, 'unmatched': 72}",
        ],
        id="zero-stereo-pairs",
    ),
    pytest.param(
        "stereo21",
        ["other22"],
        ["--method", "SWATEventIDs", "--keep-mono"],
        0,
        True,
        [
            "100 + 72 events in",
            "0 stereo events out (SWATEventIDs) and 172 mono events",
        ],
        id="zero-stereo-pairs-keep-mono",
    ),
    pytest.param(
        "stereo21",
        ["other22"],
        ["--method", "SlidingWindow"],
        1,
        False,
        [
            "the peak of the clock-offset scan is not significant",
            "chance level",
            "refuse_ambiguous_offset=False",
            "1 of 1 run(s) failed",
        ],
        id="offset-scan-without-significant-peak",
    ),
    pytest.param(
        "stereo21",
        ["other22"],
        [
            "--method",
            "SlidingWindow",
            "--CoincidenceMatcher.refuse_ambiguous_offset=False",
        ],
        0,
        True,
        ["not significant", "used anyway"],
        id="offset-scan-accepted-on-request",
    ),
    pytest.param(
        "stereo21",
        ["night22"],
        [],
        2,
        False,
        [
            "stereo21.h5 is of the night 2024-03-04, the telescope-22 inputs are of the"
            " night(s) 2024-03-06 (night22.h5)"
        ],
        id="tel22-of-another-night",
    ),
    pytest.param(
        "notes",
        ["stereo22"],
        [],
        2,
        False,
        ["notes.h5: not a readable ctapipe DL1 file"],
        id="tel21-not-an-hdf5-file",
    ),
    pytest.param(
        "stereo22",
        ["stereo22"],
        [],
        2,
        False,
        ["stereo22.h5: holds events of telescope(s) [22], expected telescope 21"],
        id="tel21-file-of-telescope-22",
    ),
]


@pytest.mark.parametrize("tel1, tel2, options, status, written, messages", CASES)
def test_bad_input(inputs, tmp_path, tel1, tel2, options, status, written, messages):
    output = tmp_path / "stereo.h5"
    tel2_options = [arg for name in tel2 for arg in ("--input-tel2", inputs[name])]
    result = run_cli(
        "sst1m-stereo-match",
        "--input-tel1",
        inputs[tel1],
        *tel2_options,
        "--output",
        output,
        "--no-progress",
        *options,
    )
    said = result.stdout + result.stderr
    assert result.returncode == status, said
    for message in messages:
        assert message in said
    assert "Traceback" not in said
    assert output.exists() == written
    assert not list(tmp_path.glob("*.part"))


def test_zero_pairs_keep_mono_output(inputs, tmp_path):
    """With --keep-mono a run without pairs is still useful: its mono events, no pair."""
    output = tmp_path / "stereo.h5"
    result = run_cli(
        "sst1m-stereo-match",
        "--input-tel1",
        inputs["stereo21"],
        "--input-tel2",
        inputs["other22"],
        "--output",
        output,
        "--method",
        "SWATEventIDs",
        "--keep-mono",
    )
    assert result.returncode == 0, result.stderr
    assert len(read_table(output, "/dl1/event/subarray/coincidence")) == 0
    summary = read_table(output, "/dl1/service/coincidence")
    assert summary["n_stereo"][0] == 0
    trigger = read_table(output, "/dl1/event/telescope/trigger")
    assert np.count_nonzero(trigger["tel_id"] == 21) == 100
    assert np.count_nonzero(trigger["tel_id"] == 22) == 72
