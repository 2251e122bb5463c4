"""
astropy's Earth-orientation table, read from a binary cache instead of its text files.

The first transformation to or from AltAz in a process makes astropy build its default
Earth-orientation table, `~astropy.utils.iers.IERS_Auto`: it parses the IERS-A file
``finals2000A.all`` and the IERS-B file of ``astropy-iers-data`` with its CDS text
reader, 0.8 to 1.5 s of CPU and 90 MB of peak memory in every R0 -> DL1 process. The
table depends only on those files (and on the astropy code that combines them), so it
is the same in every process of an installation.

Design
------
- The cache holds the whole table astropy builds, every column in its order, dtype,
  unit and mask, and its ``meta`` (``predictive_index``, ``predictive_mjd``, file
  paths), in one uncompressed ``.npz`` (5 MB, read in 50 ms, no pickle). A table
  of only the interpolated columns would be smaller, but astropy's automatic refresh
  (a download when the predictions are older than ``conf.auto_max_age`` and a time
  beyond them is requested) assigns rows of the downloaded table to the columns of the
  loaded one *by position*: only the complete table refreshes correctly.
- The table read back is an `~astropy.utils.iers.IERS_Auto` equal to astropy's, so
  astropy's own code does everything that depends on the time and on
  ``astropy.utils.iers.conf`` (``auto_download``, ``auto_max_age``, the URLs,
  ``iers_degraded_accuracy``), when the transformation is computed: the
  interpolation, the status of each value, the warnings, the refresh and its errors.
  Interpolated values are therefore bit-identical to astropy's, and the age of the
  predictions needs no part in the cache key. No ``conf`` setting changes the table
  astropy reads from the files.
- The file name carries a hash of what the table is built from: the cache layout, the
  versions of astropy and astropy-iers-data, and the path, size and modification time
  of the four IERS files. Another installation or an updated package gets a new file
  (the old one stays, unused, like a ``.part`` file of a process killed while writing).
- The cache lives in ``$CTAPIPE_SST1M_CACHE_DIR`` or else in ``ctapipe_sst1m/`` in
  astropy's cache directory. It is written under a unique temporary name in that
  directory and renamed (``os.replace``), so concurrent processes never read a
  half-written file; concurrent builders each write a complete file and the last
  rename wins. (`ctapipe_sst1m.io.AtomicOutput` does the same for outputs, but this
  module is in the core layer, below ``io``.) A file that cannot be read (truncated:
  no zip directory; corrupt: zip CRC; another layout or key) is rebuilt.
- astropy's own path is used, silently, when the cache cannot be read and its directory
  cannot be written, and whenever astropy would not build its table from the bundled
  files: a table set with ``earth_orientation_table.set``, an ``IERS_Auto`` table
  already loaded (and maybe refreshed) in the process, an IERS-B table opened from
  another file, or a ``finals2000A.all`` in the working directory.
- `cached_earth_orientation` sets the table only around a transformation: astropy's
  global state is unchanged outside it. A process keeps the table it loaded.
"""

import hashlib
import json
import os
import tempfile
import threading
import zipfile
from contextlib import contextmanager
from pathlib import Path

import astropy
import astropy.units as u
import astropy_iers_data
import numpy as np
from astropy.config import get_cache_dir
from astropy.table import Column, MaskedColumn
from astropy.utils import iers

__all__ = [
    "CACHE_DIR_ENV",
    "UNREADABLE",
    "cache_directory",
    "cache_path",
    "cached_earth_orientation",
    "cached_iers_table",
    "load_or_build_table",
    "read_table",
    "write_table",
]

#: environment variable naming the cache directory (default: astropy's cache directory)
CACHE_DIR_ENV = "CTAPIPE_SST1M_CACHE_DIR"
#: layout of the cache file; a new layout gets new file names
CACHE_FORMAT = 1
#: the files astropy builds its IERS_Auto table from
SOURCE_FILES = (
    iers.IERS_A_FILE,
    iers.IERS_A_README,
    iers.IERS_B_FILE,
    iers.IERS_B_README,
)
#: what a cache file that cannot be used raises when read
UNREADABLE = (OSError, EOFError, KeyError, TypeError, ValueError, zipfile.BadZipFile)

#: tables loaded in this process, by cache path
_tables = {}
#: astropy's table choice is global: one transformation with the cached table at a time
_state_lock = threading.Lock()


def cache_directory():
    """
    The directory of the cache, created if needed.

    Returns
    -------
    pathlib.Path or None
        ``$CTAPIPE_SST1M_CACHE_DIR`` if set, else ``ctapipe_sst1m`` in astropy's cache
        directory; None if it cannot be created.
    """
    try:
        configured = os.environ.get(CACHE_DIR_ENV)
        directory = Path(configured or Path(get_cache_dir()) / "ctapipe_sst1m")
        directory.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return directory


def source_key():
    """Hash of what astropy's table is built from (code versions and IERS files)."""
    files = []
    for path in SOURCE_FILES:
        status = os.stat(path)
        files.append([os.fspath(path), status.st_size, status.st_mtime_ns])
    sources = {
        "format": CACHE_FORMAT,
        "astropy": astropy.__version__,
        "astropy_iers_data": astropy_iers_data.__version__,
        "files": files,
    }
    return hashlib.sha256(json.dumps(sources).encode()).hexdigest()[:24]


def cache_path(directory):
    """
    The cache file of this installation's table in ``directory``.

    Parameters
    ----------
    directory : str or os.PathLike

    Returns
    -------
    pathlib.Path
    """
    return Path(directory) / f"iers_auto_{source_key()}.npz"


def write_table(table, path):
    """
    Write an IERS table to a cache file, atomically (temporary name, then rename).

    Parameters
    ----------
    table : astropy.utils.iers.IERS
        Its columns are Quantity, Column or MaskedColumn.
    path : str or os.PathLike
        The cache file (`cache_path`).

    Raises
    ------
    OSError
        If the file cannot be written; nothing is left under a temporary name.
    TypeError
        If a column or ``meta`` value would be stored as Python objects (pickle).
    """
    path = Path(path)
    columns = []
    arrays = {}
    for index, name in enumerate(table.colnames):
        column = table[name]
        if isinstance(column, u.Quantity):
            columns.append([name, "quantity", column.unit.to_string()])
            arrays[f"data_{index}"] = column.value
        elif isinstance(column, MaskedColumn):
            columns.append([name, "masked", None])
            arrays[f"data_{index}"] = column.data.data
            arrays[f"mask_{index}"] = np.ma.getmaskarray(column)
        else:
            columns.append([name, "column", None])
            arrays[f"data_{index}"] = np.asarray(column)
    for name, value in table.meta.items():
        arrays[f"meta_{name}"] = np.asarray(value)
    stored_as_objects = [
        name for name, array in arrays.items() if array.dtype.hasobject
    ]
    if stored_as_objects:
        raise TypeError(f"{stored_as_objects} would need pickle: not cached")
    header = {"key": path.stem, "columns": columns, "meta": list(table.meta)}
    arrays["header"] = np.asarray(json.dumps(header))
    descriptor, temporary = tempfile.mkstemp(
        dir=path.parent, prefix=f"{path.name}.", suffix=".part"
    )
    try:
        with os.fdopen(descriptor, "wb") as file:
            # readable by all like other cache files (mkstemp makes it private)
            os.fchmod(file.fileno(), 0o644)
            np.savez(file, **arrays)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def read_table(path):
    """
    Read an IERS_Auto table from a cache file written by `write_table`.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    astropy.utils.iers.IERS_Auto

    Raises
    ------
    OSError, EOFError, KeyError, TypeError, ValueError, zipfile.BadZipFile
        (`UNREADABLE`) if the file is missing, truncated or corrupt, or is the cache
        of other IERS files.
    """
    path = Path(path)
    with np.load(path, allow_pickle=False) as content:
        header = json.loads(content["header"].item())
        if header["key"] != path.stem:
            raise ValueError(f"{path} holds the table of other IERS files")
        columns = []
        for index, (_, kind, unit) in enumerate(header["columns"]):
            data = content[f"data_{index}"]
            if kind == "quantity":
                columns.append(u.Quantity(data, unit, copy=False))
            elif kind == "masked":
                columns.append(MaskedColumn(data, mask=content[f"mask_{index}"]))
            else:
                columns.append(Column(data))
        meta = {}
        for name in header["meta"]:
            value = content[f"meta_{name}"]
            meta[name] = value.item() if value.dtype.kind == "U" else value[()]
    names = [name for name, _, _ in header["columns"]]
    return iers.IERS_Auto(columns, names=names, meta=meta, copy=False)


def load_or_build_table(path):
    """
    astropy's default table from the cache file, built and cached if it is unusable.

    Parameters
    ----------
    path : pathlib.Path
        The cache file (`cache_path`).

    Returns
    -------
    astropy.utils.iers.IERS_Auto or None
        None if the file cannot be read and its directory cannot be written.
    """
    try:
        return read_table(path)
    except UNREADABLE:
        pass
    if not os.access(path.parent, os.W_OK):
        return None
    table = iers.IERS_Auto.read()
    try:
        write_table(table, path)
    except (OSError, TypeError):
        pass  # the next process parses the files again
    return table


def _astropy_reads_bundled_files():
    """Whether astropy's default table would now be read from the bundled files."""
    iers_b = iers.IERS_B.iers_table
    return (
        # a table set by the user (earth_orientation_table keeps it in _value)
        iers.earth_orientation_table._value is None
        and iers.IERS_Auto.iers_table is None
        and (
            iers_b is None
            or os.fspath(iers_b.meta.get("data_path", ""))
            == os.fspath(iers.IERS_B_FILE)
        )
        and not os.path.exists("finals2000A.all")
    )


def cached_iers_table():
    """
    The table astropy would use by default, from the cache.

    Returns
    -------
    astropy.utils.iers.IERS_Auto or None
        None when astropy's own table is to be used: astropy would not build it from
        the bundled files now, or there is no usable cache and no writable directory.
    """
    if not _astropy_reads_bundled_files():
        return None
    directory = cache_directory()
    if directory is None:
        return None
    path = cache_path(directory)
    if path not in _tables:
        table = load_or_build_table(path)
        if table is None:
            return None
        _tables[path] = table
    return _tables[path]


@contextmanager
def cached_earth_orientation():
    """
    Context in which astropy uses the cached Earth-orientation table.

    Outside it astropy's state is unchanged; when `cached_iers_table` gives None the
    context changes nothing.

    Yields
    ------
    astropy.utils.iers.IERS_Auto or None
        The table in use, None for astropy's own.
    """
    table = cached_iers_table()
    if table is None:
        yield None
        return
    with _state_lock, iers.earth_orientation_table.set(table):
        yield table
