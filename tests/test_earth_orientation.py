"""The cached Earth-orientation table: the pointing astropy gives, without its text files."""

import json
import multiprocessing
import os
import subprocess
import sys
import warnings
from contextlib import contextmanager

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import EarthLocation
from astropy.table import MaskedColumn
from astropy.time import Time
from astropy.utils import iers

from ctapipe_sst1m import earth_orientation
from ctapipe_sst1m.coordinates import TrackingPointing, horizontal_to_icrs
from ctapipe_sst1m.earth_orientation import (
    CACHE_DIR_ENV,
    UNREADABLE,
    cache_path,
    cached_iers_table,
    load_or_build_table,
    read_table,
    write_table,
)
from ctapipe_sst1m.time import tai_ns

#: telescope 21 of sst1m.yaml
LOCATION = EarthLocation(lon=14.782924 * u.deg, lat=49.9118 * u.deg, height=510 * u.m)
#: the Crab
RA_DEG, DEC_DEG = 83.6333, 22.0145
#: nights of the 2018 test file and of the simulated 2024 run, and one beyond the
#: predictions of any IERS-A table of astropy-iers-data 2026
NIGHTS = {
    "2018": "2018-08-22T23:00:00",
    "2024": "2024-03-04T22:00:00",
    "beyond": "2029-01-10T22:00:00",
}


@pytest.fixture(scope="module")
def astropy_table():
    """The table astropy reads by default (IERS_Auto.open reads it like this)."""
    return iers.IERS_Auto.read()


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    """An empty cache directory, no table loaded by astropy or by this process."""
    directory = tmp_path / "cache"
    monkeypatch.setenv(CACHE_DIR_ENV, str(directory))
    monkeypatch.setattr(earth_orientation, "_tables", {})
    monkeypatch.setattr(iers.IERS_Auto, "iers_table", None)
    return directory


@contextmanager
def astropy_default(table):
    """astropy's default path, with its memoized table being ``table``."""
    saved = iers.IERS_Auto.iers_table
    iers.IERS_Auto.iers_table = table
    try:
        assert cached_iers_table() is None
        yield
    finally:
        iers.IERS_Auto.iers_table = saved


def night_ns(night):
    """TAI ns of 1200 s of a night, every 0.37 s (two blocks of the pointing grid)."""
    start = int(tai_ns(Time(NIGHTS[night], scale="utc")))
    return start + np.arange(0, 1200 * 10**9, 370_000_000, dtype=np.int64)


def pointing_outcome(times_ns):
    """Alt/Az (or the error) and the warnings of a fresh TrackingPointing."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            tracking = TrackingPointing(RA_DEG, DEC_DEG, LOCATION)
            result = tracking.altaz_rad_sequence(times_ns)
        except Exception as error:  # the outcome compared, whatever astropy raises
            result = (type(error), str(error))
    return result, [(w.category, str(w.message)) for w in caught]


def assert_same_outcome(outcome, expected):
    """The same warnings and the same error, or bit-identical alt/az."""
    (result, caught), (expected_result, expected_caught) = outcome, expected
    assert caught == expected_caught
    if isinstance(expected_result[0], type):
        assert result == expected_result
    else:
        assert np.array_equal(result[0], expected_result[0])
        assert np.array_equal(result[1], expected_result[1])


def assert_same_table(table, expected):
    assert type(table) is iers.IERS_Auto
    assert table.colnames == expected.colnames
    for name in expected.colnames:
        column, reference = table[name], expected[name]
        assert type(column) is type(reference), name
        assert column.dtype == reference.dtype, name
        assert getattr(column, "unit", None) == getattr(reference, "unit", None), name
        assert np.array_equal(
            np.asarray(column),
            np.asarray(reference),
            equal_nan=column.dtype.kind == "f",
        ), name
        if isinstance(reference, MaskedColumn):
            assert np.array_equal(column.mask, reference.mask), name
    assert table.meta == expected.meta
    assert [type(v) for v in table.meta.values()] == [
        type(v) for v in expected.meta.values()
    ]


def test_table_round_trip(tmp_path, astropy_table):
    path = cache_path(tmp_path)
    write_table(astropy_table, path)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]
    assert path.stat().st_size < 6e6
    assert_same_table(read_table(path), astropy_table)


@pytest.mark.parametrize("night", ["2018", "2024"])
def test_pointing_is_astropy_s(cache_dir, astropy_table, night):
    times_ns = night_ns(night)
    cold = pointing_outcome(times_ns)
    assert len(list(cache_dir.iterdir())) == 1
    earth_orientation._tables.clear()
    warm = pointing_outcome(times_ns)
    with astropy_default(astropy_table):
        expected = pointing_outcome(times_ns)
    assert expected[1] == []
    assert_same_outcome(warm, expected)
    assert_same_outcome(cold, expected)
    assert iers.IERS_Auto.iers_table is None  # astropy's own table never read


@pytest.mark.filterwarnings("ignore:ERFA function:erfa.ErfaWarning")  # year 2029
@pytest.mark.parametrize("max_age", [None, 30.0], ids=["no_max_age", "max_age_30"])
def test_beyond_predictions_as_astropy(cache_dir, astropy_table, max_age):
    """Same values, warnings or error as astropy where its table has no prediction."""
    times_ns = night_ns("beyond")
    # offline and deterministic: no download of a newer table
    with iers.conf.set_temp("auto_download", False):
        with iers.conf.set_temp("auto_max_age", max_age):
            cached = pointing_outcome(times_ns)
            assert cached_iers_table() is not None
            with astropy_default(astropy_table):
                expected = pointing_outcome(times_ns)
    assert_same_outcome(cached, expected)
    if max_age is None:  # astropy warns and uses the mean polar motion
        assert any("polar motions for times after" in m for _, m in cached[1])


def test_sky_coordinates_are_astropy_s(cache_dir, astropy_table):
    times = Time(NIGHTS["2024"], scale="utc") + np.linspace(0, 60, 50) * u.s
    rng = np.random.default_rng(1)
    alt = (60 + rng.uniform(-3, 3, 50)) * u.deg
    az = (180 + rng.uniform(-3, 3, 50)) * u.deg
    args = (alt, az, times, LOCATION, np.full(50, 60) * u.deg, np.full(50, 180) * u.deg)
    cached = horizontal_to_icrs(*args)
    assert cached_iers_table() is not None
    with astropy_default(astropy_table):
        expected = horizontal_to_icrs(*args)
    assert np.array_equal(cached[0], expected[0])
    assert np.array_equal(cached[1], expected[1])


def test_a_table_set_by_the_user_is_used(cache_dir, astropy_table):
    user_table = astropy_table.copy()
    user_table["UT1_UTC"] += 0.1 * u.s
    times_ns = night_ns("2024")
    with iers.earth_orientation_table.set(user_table):
        assert cached_iers_table() is None
        (alt, az), _ = pointing_outcome(times_ns)
    (alt_cached, az_cached), _ = pointing_outcome(times_ns)
    # 0.1 s of Earth rotation: 1.5 arcsec along the equator
    shift_arcsec = np.rad2deg(np.abs(az - az_cached) * np.cos(alt)) * 3600
    assert np.all((shift_arcsec > 0.5) & (shift_arcsec < 1.6))


#: a process computing the pointing of a 2024 night; prints what it found and computed
POINTING_PROCESS = """
import json, os
import astropy.units as u
import numpy as np
from astropy.coordinates import EarthLocation
from astropy.time import Time
from astropy.utils import iers
from ctapipe_sst1m.coordinates import TrackingPointing
from ctapipe_sst1m.earth_orientation import cache_directory, cache_path
from ctapipe_sst1m.time import tai_ns
path = cache_path(cache_directory())
existed = path.exists()
location = EarthLocation(lon=14.782924 * u.deg, lat=49.9118 * u.deg, height=510 * u.m)
start = int(tai_ns(Time("2024-03-04T22:00:00", scale="utc")))
times_ns = start + np.arange(0, 1200 * 10**9, 370_000_000, dtype=np.int64)
alt, az = TrackingPointing(83.6333, 22.0145, location).altaz_rad_sequence(times_ns)
parsed = iers.IERS_B.iers_table is not None or iers.IERS_Auto.iers_table is not None
print(json.dumps({
    "existed": existed,
    "inode": os.stat(path).st_ino,
    "parsed": parsed,
    "alt": [float(x).hex() for x in alt],
    "az": [float(x).hex() for x in az],
}))
"""


def run_pointing_process(cache_dir):
    environment = {**os.environ, CACHE_DIR_ENV: str(cache_dir)}
    result = subprocess.run(
        [sys.executable, "-c", POINTING_PROCESS],
        env=environment,
        capture_output=True,
        text=True,
        check=True,
        cwd=cache_dir,
    )
    return json.loads(result.stdout.splitlines()[-1])


def test_cache_is_built_once_and_reused_by_other_processes(tmp_path):
    first = run_pointing_process(tmp_path)
    second = run_pointing_process(tmp_path)
    assert not first["existed"] and first["parsed"]
    assert second["existed"] and not second["parsed"]
    assert second["inode"] == first["inode"]  # not rewritten
    assert second["alt"] == first["alt"] and second["az"] == first["az"]


def truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def flip_a_byte(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def empty(path):
    path.write_bytes(b"")


@pytest.mark.parametrize("damage", [truncate, flip_a_byte, empty])
def test_a_damaged_cache_is_rebuilt(tmp_path, astropy_table, damage):
    path = cache_path(tmp_path)
    write_table(astropy_table, path)
    damage(path)
    with pytest.raises(UNREADABLE):
        read_table(path)
    assert_same_table(load_or_build_table(path), astropy_table)
    assert_same_table(read_table(path), astropy_table)


def test_the_cache_of_other_files_is_rebuilt(tmp_path, astropy_table):
    path = cache_path(tmp_path)
    write_table(astropy_table, path.with_name("iers_auto_other.npz"))
    path.with_name("iers_auto_other.npz").rename(path)
    with pytest.raises(ValueError, match="other IERS files"):
        read_table(path)
    assert_same_table(load_or_build_table(path), astropy_table)
    assert_same_table(read_table(path), astropy_table)


def build_at_the_same_time(path, barrier):
    """A builder process: cold cache, all builders start together."""
    barrier.wait()
    table = load_or_build_table(path)
    sys.exit(0 if table is not None else 1)


def read_while_built(path, barrier, n_reads):
    """A reader process: every file it finds under the final name is complete."""
    barrier.wait()
    while n_reads.value < 20:
        if path.exists():
            read_table(path)  # raises (exit code 1) if half-written
            n_reads.value += 1


# the children only read files and parse text (BLAS threads of the parent are idle)
@pytest.mark.filterwarnings(
    "ignore:This process .* is multi-threaded:DeprecationWarning"
)
def test_concurrent_builders_write_one_complete_file(tmp_path, astropy_table):
    path = cache_path(tmp_path)
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(5)
    n_reads = context.Value("i", 0)
    processes = [
        context.Process(target=build_at_the_same_time, args=(path, barrier))
        for _ in range(4)
    ]
    processes.append(
        context.Process(target=read_while_built, args=(path, barrier, n_reads))
    )
    for process in processes:
        process.start()
    for process in processes:
        process.join(120)
    assert [process.exitcode for process in processes] == [0] * 5
    assert n_reads.value == 20
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no .part left
    assert_same_table(read_table(path), astropy_table)


def test_unusable_cache_directory_falls_back_to_astropy(
    tmp_path, monkeypatch, cache_dir, astropy_table
):
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    monkeypatch.setenv(CACHE_DIR_ENV, str(a_file / "cache"))
    assert cached_iers_table() is None
    times_ns = night_ns("2024")
    (alt, az), _ = pointing_outcome(times_ns)
    with astropy_default(astropy_table):
        (expected_alt, expected_az), _ = pointing_outcome(times_ns)
    assert np.array_equal(alt, expected_alt) and np.array_equal(az, expected_az)


def test_a_table_that_needs_pickle_is_not_cached(tmp_path, astropy_table):
    table = astropy_table.copy()
    table.meta["data_url"] = None
    path = cache_path(tmp_path)
    with pytest.raises(TypeError, match="meta_data_url"):
        write_table(table, path)
    assert list(tmp_path.iterdir()) == []


def test_unwritable_cache_file_is_built_but_not_kept(tmp_path, astropy_table):
    path = cache_path(tmp_path)
    path.mkdir()  # the final name cannot be replaced
    assert_same_table(load_or_build_table(path), astropy_table)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no .part left


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to read-only directories")
def test_read_only_cache_directory_falls_back_to_astropy(cache_dir):
    cache_dir.mkdir()
    cache_dir.chmod(0o555)
    try:
        assert cached_iers_table() is None
    finally:
        cache_dir.chmod(0o755)
    assert list(cache_dir.iterdir()) == []
