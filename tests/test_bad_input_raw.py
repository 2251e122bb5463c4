"""
Bad raw-data input of ``ctapipe-process --config sst1m.yaml`` and ``sst1m-process``.

Three tables, each case run through the command line of both tools:

* corrupt raw files: a clear error naming the file, exit status 1 (ctapipe-process)
  or 2 (sst1m-process), never a signal, and no output. They run in a process of their
  own, because protozfits crashed on them (exit 139) before the zfits check;
* configuration errors that used to surface only at the first event: refused in
  setup, exit status 2, the option and the file named, no output (not even the
  empty DL1 file of stock ctapipe-process);
* unusual but valid input: a run of pedestal events only.

The zfits check itself (which part of the layout a damage breaks) has a table of its
own, in this process: the check never decodes.
"""

import numpy as np
import pytest
import tables
from conftest import run_cli, run_subprocess
from ctapipe.io import read_table

from ctapipe_sst1m.io.zfits_check import (
    ZFitsError,
    check_events_table,
    read_events_table,
)
from ctapipe_sst1m.testing import SyntheticRun, write_synthetic_run

#: exit status of each tool for a corrupt raw file (an OSError in stock ctapipe's
#: setup; sst1m-process reports it as a bad input)
CORRUPT_FILE_STATUS = {"ctapipe-process": 1, "sst1m-process": 2}
TOOL_NAMES = list(CORRUPT_FILE_STATUS)
CHECKSUM_MESSAGE = "corrupt Events table: its data do not match their checksum"
CRASH_MESSAGE = "corrupt Events table: protozfits crashed (SIGSEGV)"


def flip(data, start, n_bytes):
    """Invert ``n_bytes`` bytes from ``start``."""
    for i in range(start, start + n_bytes):
        data[i] ^= 0xFF


def randomise(data, start, n_bytes):
    """Replace ``n_bytes`` bytes from ``start`` by random ones."""
    data[start : start + n_bytes] = np.random.default_rng(16).bytes(n_bytes)


def remove_datasum(data):
    """Blank the DATASUM card of the Events header (a file without checksums)."""
    card = data.index(b"DATASUM = '1031358986'")
    data[card + 10 : card + 22] = b"''".ljust(12)


def same(message):
    """The message of both tools."""
    return dict.fromkeys(TOOL_NAMES, message)


def middle(data):
    return len(data) // 2


#: damage in the middle of the 2018 file (in the compressed waveforms of its one tile)
CORRUPT_FILES = [
    pytest.param(
        lambda d: flip(d, middle(d), 1), [], CHECKSUM_MESSAGE, id="one flipped byte"
    ),
    pytest.param(
        lambda d: randomise(d, middle(d), 4096),
        [],
        CHECKSUM_MESSAGE,
        id="4 KiB random bytes",
    ),
    pytest.param(
        lambda d: flip(d, middle(d), 16), [], CHECKSUM_MESSAGE, id="16 flipped bytes"
    ),
    pytest.param(
        lambda d: (remove_datasum(d), flip(d, middle(d), 16)),
        [],
        CRASH_MESSAGE,
        id="16 flipped bytes, no DATASUM",
    ),
    pytest.param(
        lambda d: flip(d, middle(d), 16),
        ["--SST1MEventSource.verify_checksums=False"],
        CRASH_MESSAGE,
        id="16 flipped bytes, checksums not verified",
    ),
]


@pytest.mark.parametrize("tool", TOOL_NAMES)
@pytest.mark.parametrize(("damage", "options", "message"), CORRUPT_FILES)
def test_corrupt_raw_file(
    tool, damage, options, message, raw_2018, data_config, tmp_path
):
    data = bytearray(raw_2018.read_bytes())
    damage(data)
    corrupt = tmp_path / "SST1M2_20180822_0001.fits.fz"
    corrupt.write_bytes(bytes(data))
    output = tmp_path / "dl1.h5"
    result = run_subprocess(
        tool, "-i", corrupt, "-o", output, "--config", data_config, *options
    )
    assert result.returncode == CORRUPT_FILE_STATUS[tool], result.stderr
    assert f"{corrupt}: {message}" in result.stderr
    assert not output.exists()
    assert not list(tmp_path.glob("*.part"))


#: where in the Events HDU of the 2018 file (header at 2880, data at 14400, heap at
#: 14608) a damage is, and what the check says
EVENTS_DATA, HEAP = 14400, 14608
LAYOUT_DAMAGES = [
    pytest.param(
        lambda d: flip(d, EVENTS_DATA + 5, 1),
        "tile 0: block of telescopeID (16711708 bytes at heap offset 16) outside"
        " the heap of 1726295 bytes",
        id="catalog entry",
    ),
    pytest.param(
        lambda d: flip(d, HEAP, 1),
        "tile 0: header starts with b'\\xabILE', not b'TILE'",
        id="tile header",
    ),
    pytest.param(
        lambda d: flip(d, HEAP + 134, 1),
        "tile 0, block of hiGain_waveforms_samples: header says 1094599 bytes,"
        " the catalog 1094456",
        id="block header",
    ),
    pytest.param(
        lambda d: d.__setitem__(
            slice(d.index(b"ZNAXIS2 =") + 29, d.index(b"ZNAXIS2 =") + 30), b"4"
        ),
        "tile 0: 32 rows, expected 34",
        id="ZNAXIS2 card",
    ),
    pytest.param(
        lambda d: d.__setitem__(
            slice(d.index(b"ORIGIN  = 'CTA'") + 11, d.index(b"ORIGIN  = 'CTA'") + 12),
            b"X",
        ),
        "its header does not match its CHECKSUM: header cards are damaged",
        id="ORIGIN card",
    ),
]


@pytest.mark.parametrize(("damage", "message"), LAYOUT_DAMAGES)
def test_zfits_check_names_the_damage(damage, message, raw_2018, tmp_path):
    data = bytearray(raw_2018.read_bytes())
    damage(data)
    corrupt = tmp_path / "corrupt.fits.fz"
    corrupt.write_bytes(bytes(data))
    with pytest.raises(ZFitsError) as error:
        check_events_table(corrupt, read_events_table(corrupt))
    assert str(error.value) == f"{corrupt}: corrupt Events table: {message}"


@pytest.mark.parametrize(
    "name",
    ["example_SST1M_20180822.fits.fz", "example_100evts.fits.fz"],
)
def test_zfits_check_passes_real_files(name, raw_2018):
    path = raw_2018.parent / name
    check_events_table(path, read_events_table(path))


def test_zfits_check_without_datasum_decodes_aside(raw_2018, tmp_path):
    """No DATASUM and intact data: decoded once in a separate process, accepted."""
    data = bytearray(raw_2018.read_bytes())
    remove_datasum(data)
    path = tmp_path / "no_datasum.fits.fz"
    path.write_bytes(bytes(data))
    check_events_table(path, read_events_table(path))


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory):
    """Configuration files that are wrong in the ways of the table below."""
    directory = tmp_path_factory.mktemp("bad_configuration")
    files = {"dir": directory}
    files["no_calibration"] = directory / "no_calibration_table.h5"
    with tables.open_file(files["no_calibration"], "w") as h5:
        h5.create_array("/", "image", np.zeros(1296))
    # a DataFrame written by pandas with format="table": a table node, no blocks
    files["pandas_table"] = directory / "calibration_table_format.h5"
    with tables.open_file(files["pandas_table"], "w") as h5:
        group = h5.create_group("/", "df_param")
        group._v_attrs.pandas_type = "frame_table"
        group._v_attrs.table_type = "appendable_frame"
        rows = np.zeros(1296, dtype=[("index", "<i8"), ("values_block_0", "<f8", 2)])
        rows["index"] = np.arange(1296)
        rows["values_block_0"] = [25.0, 1.0]
        h5.create_table(group, "table", rows)
    files["window"] = directory / "window.txt"
    files["window"].write_text("pixel_id correction_factor\n0 1.0\n1 abc\n")
    cleaning = (
        "ImageProcessor:\n  ImageCleanerSST:\n    telescope_defaults:\n"
        '      - ["type", "*", [{{min_nsb_level: {level}, stdev_scaling: 2.5,'
        " picture_threshold_pe: 8, boundary_threshold_pe: 4, min_picture_neighbors: 2,"
        " keep_isolated: false, min_time_neighbors: 1, time_limit_ns: 8,"
        " only_main_island: false}}]]\n"
    )
    files["nsb_level_zero"] = directory / "nsb_level_zero.yaml"
    files["nsb_level_zero"].write_text(cleaning.format(level='"zero"'))
    files["defaults_string"] = directory / "defaults_string.yaml"
    files["defaults_string"].write_text(
        'ImageProcessor:\n  ImageCleanerSST:\n    telescope_defaults: "strict"\n'
    )
    files["bad_pixel"] = directory / "bad_pixel.yaml"
    files["bad_pixel"].write_text(
        "SST1MEventSource:\n  SST1MR0Corrections:\n"
        '    bad_pixels: [["id", 21, []], ["id", 22, [5000]]]\n'
    )
    return files


#: a bad option: the options given and the message of each tool (exit status 2 and
#: no output for all); ``{name}`` stands for a file of the bad_files fixture. Stock
#: ctapipe-process prints traitlets' unnamed tuple for a bad element of a
#: TelescopeParameter; sst1m-process names the option
BAD_OPTIONS = [
    pytest.param(
        ["--SST1MEventSource.calibration_path={no_calibration}"],
        same(
            "SST1MEventSource.calibration_path of telescope 21: {no_calibration}: no"
            " calibration table"
        ),
        id="calibration file of the wrong kind",
    ),
    pytest.param(
        ["--SST1MEventSource.calibration_path={pandas_table}"],
        same(
            "SST1MEventSource.calibration_path of telescope 21: {pandas_table} is a"
            " pandas HDF5 file whose /df_param is a 'frame_table' object, expected a"
            " DataFrame in pandas' fixed format"
        ),
        id="calibration file in pandas table format",
    ),
    pytest.param(
        ["--NsbCalibrator.window_transmittance_path={window}"],
        same(
            "NsbCalibrator.window_transmittance_path of telescope 21: {window}: not a"
            " window transmittance table"
        ),
        id="bad window-factor file",
    ),
    pytest.param(
        ["--config={defaults_string}"],
        {
            "ctapipe-process": "('strict', 'a list', <traitlets.traitlets.List",
            "sst1m-process": (
                "ImageCleanerSST.telescope_defaults: expected a list, not 'strict'"
            ),
        },
        id="string in telescope_defaults",
    ),
    pytest.param(
        ["--config={nsb_level_zero}"],
        {
            "ctapipe-process": (
                "must be a float, but a value of 'zero' <class 'str'> was specified"
            ),
            "sst1m-process": (
                "ImageCleanerSST.telescope_defaults: Values of the 'None' trait of an"
                " ImageCleanerSST instance must be a float, but a value of 'zero'"
            ),
        },
        id="min_nsb_level zero",
    ),
    pytest.param(
        ["--config={bad_pixel}"],
        same(
            "SST1MR0Corrections.bad_pixels of telescope 22: pixel ids [5000] do not"
            " exist (the camera has 1296 pixels)"
        ),
        id="bad pixel id 5000",
    ),
    pytest.param(
        [
            "--SST1MEventSource.pointing_ra_deg=nan",
            "--SST1MEventSource.pointing_dec_deg=22",
        ],
        same(
            "SST1MEventSource.pointing_ra_deg must be a finite angle in degrees,"
            " got nan"
        ),
        id="pointing_ra_deg nan",
    ),
    pytest.param(
        [
            "--SST1MEventSource.pointing_ra_deg=83",
            "--SST1MEventSource.pointing_dec_deg=nan",
        ],
        same(
            "SST1MEventSource.pointing_dec_deg must be a finite angle in degrees,"
            " got nan"
        ),
        id="pointing_dec_deg nan",
    ),
    pytest.param(
        ["--SST1MEventSource.obs_id=seven"],
        same(
            "The 'obs_id' trait of a SST1MEventSource instance expected an int, not"
            " the str 'seven'"
        ),
        id="int option seven",
    ),
    pytest.param(
        ["--NsbCalibrator.intensity_correction=abc"],
        {
            "ctapipe-process": "('c', 'a float', <traitlets.traitlets.Float",
            "sst1m-process": (
                "NsbCalibrator.intensity_correction: expected a float, not 'c' (give"
                " one value for every telescope or rules ['type', pattern, value] /"
                " ['id', tel_id, value])"
            ),
        },
        id="float telescope parameter abc",
    ),
]


@pytest.mark.parametrize("tool", TOOL_NAMES)
@pytest.mark.parametrize(("options", "messages"), BAD_OPTIONS)
def test_bad_option_refused_in_setup(
    tool, options, messages, bad_files, raw_2018, data_config, tmp_path
):
    output = tmp_path / "dl1.h5"
    result = run_cli(
        tool,
        "-i",
        raw_2018,
        "-o",
        output,
        "--config",
        data_config,
        *(option.format(**bad_files) for option in options),
    )
    assert result.returncode == 2, result.stderr
    message = messages[tool].format(**bad_files)
    assert message in result.stderr
    assert not output.exists()
    assert not list(tmp_path.glob("*.part"))


@pytest.fixture(scope="module")
def pedestal_run(tmp_path_factory):
    """A raw run of 30 interleaved pedestal events and no shower."""
    run = SyntheticRun(n_events=30, pedestal_interval=1, seed=16)
    paths, _ = write_synthetic_run(tmp_path_factory.mktemp("pedestals"), run)
    return paths[0]


@pytest.mark.parametrize("tool", TOOL_NAMES)
def test_pedestal_only_run(tool, pedestal_run, data_config, tmp_path):
    """A DL1 file without shower events, a warning; sst1m-process: NSB monitoring."""
    output = tmp_path / "dl1.h5"
    result = run_cli(tool, "-i", pedestal_run, "-o", output, "--config", data_config)
    assert result.returncode == 0, result.stderr
    assert f"{pedestal_run}: no shower events, read only 30 SKY_PEDESTAL" in (
        result.stderr
    )
    with tables.open_file(output) as h5:
        assert "/dl1/event/telescope/trigger" not in h5
        assert "/configuration/observation/observation_block" in h5
    if tool == "sst1m-process":
        summary = read_table(output, "/dl1/service/sst1m_processing")
        assert summary["n_pedestal_events"][0] == 30
        assert summary["n_shower_events"][0] == 0
        nsb = read_table(output, "/dl1/event/telescope/nsb/tel_021")
        assert len(nsb) == 30
        assert np.isfinite(nsb["nsb_level_pe"][-1])
        windows = read_table(output, "/dl1/monitoring/telescope/pedestal/tel_021")
        assert windows["n_events"].sum() == 30
