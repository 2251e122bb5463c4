"""
Checks of a zfits ``Events`` table before protozfits decodes it.

protozfits trusts the file: a corrupt tile makes its C++ decoder read out of bounds
and kill the process with a segmentation fault, or raise an error that names no
file. These checks look at what the zfits layout allows to check without decoding
(the layout is described in `ctapipe_sst1m.io.zfits_writer`):

* the header: the table is no shorter than its header says, one catalog entry
  (block size and heap offset, two ``int64``) per column, ``ZTILELEN`` and
  ``ZHEAPPTR`` in range;
* the catalog and the heap: every tile starts with ``TILE``, its number of rows
  and byte count agree with the header and the catalog, the column blocks follow
  one another inside the heap, each block header repeats its catalog size, has
  the ``C`` marker and room for its processing ids;
* the checksums: ``DATASUM`` (ones' complement sum of the table data, catalog and
  heap) and ``CHECKSUM`` (the whole HDU, header included). ``RAWSUM`` is ``'0'`` in
  the files of the DigiCam camera server and is not used.

Damage inside a compressed block that leaves the layout intact is found only by
the checksum. A file without ``DATASUM`` (or with ``verify_checksums=False``) is
decoded once in a separate Python process (`trial_decode`), which a crash of the
decoder cannot take down.
"""

import signal
import struct
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import numpy as np
from astropy.io import fits

from .zfits_writer import FITS_BLOCK, _OnesComplementSum

__all__ = [
    "EventsTable",
    "ZFitsError",
    "check_events_table",
    "read_events_table",
    "trial_decode",
]

#: bytes of one catalog entry (block size, heap offset) per column and tile
CATALOG_ENTRY = 16
#: tile header: b"TILE", uint32 number of rows, uint64 bytes of the tile's blocks
TILE_HEADER = struct.Struct("<4sIQ")
#: block header: uint64 block size (header included), b"C", uint8 number of processings
BLOCK_HEADER = struct.Struct("<QcB")
#: bytes of one processing id (uint16) after the block header
PROCESSING_ID = 2
#: bytes read at a time when summing the data
CHUNK_BYTES = 1 << 24
#: ones' complement sum of a correct HDU (-0)
HDU_SUM = 0xFFFFFFFF


class ZFitsError(OSError):
    """A zfits raw data file that cannot be read (safely); the message names it."""


class EventsTable(NamedTuple):
    """The ``Events`` HDU of a zfits file: header and where it lies in the file."""

    header: fits.Header
    #: bytes from the start of the file to the header and to the data
    header_offset: int
    data_offset: int

    @property
    def data_size(self):
        """Bytes of the table data: catalog plus heap (``NAXIS1 * NAXIS2 + PCOUNT``)."""
        header = self.header
        return header["NAXIS1"] * header["NAXIS2"] + header.get("PCOUNT", 0)


def read_events_table(path):
    """
    The ``Events`` HDU of a FITS file, or None if the file has none.

    Only the headers are read.
    """
    with open(path, "rb") as f:
        if f.read(6) != b"SIMPLE":
            return None
    with fits.open(path, memmap=False, lazy_load_hdus=True) as hdul:
        for hdu in hdul:
            if hdu.header.get("EXTNAME") == "Events":
                info = hdu.fileinfo()
                return EventsTable(hdu.header.copy(), info["hdrLoc"], info["datLoc"])
    return None


def check_events_table(path, table, verify_checksums=True):
    """
    Make sure protozfits can decode the ``Events`` table of a file.

    Parameters
    ----------
    path : str or Path
        zfits file.
    table : EventsTable
        Its ``Events`` HDU (`read_events_table`).
    verify_checksums : bool
        Compare the data with ``DATASUM`` and ``CHECKSUM``; if False, or if the
        file has no ``DATASUM``, decode the table once in a separate process.

    Raises
    ------
    ZFitsError
        If the file is truncated, its layout is inconsistent, its data do not
        match their checksum or decoding them crashed; the message names the file
        and the problem.
    """
    path = Path(path)
    size = path.stat().st_size
    needed = table.data_offset + table.data_size
    if size < needed:
        raise ZFitsError(
            f"{path}: truncated file, {size} bytes but its Events table needs {needed}"
        )
    with open(path, "rb") as f:
        try:
            _check_layout(f, table)
        except ValueError as err:
            raise ZFitsError(f"{path}: corrupt Events table: {err}") from None
        has_datasum = str(table.header.get("DATASUM", "")).strip() != ""
        if verify_checksums and has_datasum:
            problem = _checksum_problem(f, table)
            if problem:
                raise ZFitsError(f"{path}: corrupt Events table: {problem}")
            return
    trial_decode(path, table.header["ZNAXIS2"])


def _check_layout(f, table):
    """Raise ValueError at the first inconsistency of header, catalog, tiles, blocks."""
    header = table.header
    n_columns = header["TFIELDS"]
    n_tiles = header["NAXIS2"]
    n_rows = header["ZNAXIS2"]
    tile_length = header.get("ZTILELEN", 0)
    if header["NAXIS1"] != CATALOG_ENTRY * n_columns:
        raise ValueError(
            f"NAXIS1={header['NAXIS1']}, expected {CATALOG_ENTRY} bytes for each of"
            f" the TFIELDS={n_columns} columns"
        )
    if header.get("ZSHRINK", 1) != 1:
        raise ValueError(f"catalog shrink factor ZSHRINK={header['ZSHRINK']} is not 1")
    if tile_length < 1 or -(-n_rows // tile_length) != n_tiles:
        raise ValueError(
            f"{n_tiles} tiles (NAXIS2) cannot hold ZNAXIS2={n_rows} rows of"
            f" ZTILELEN={tile_length}"
        )
    catalog_size = header["NAXIS1"] * n_tiles
    heap_start = header.get("ZHEAPPTR", catalog_size)
    if not catalog_size <= heap_start <= table.data_size:
        raise ValueError(
            f"heap pointer ZHEAPPTR={heap_start} outside"
            f" [{catalog_size}, {table.data_size}]"
        )
    heap_size = table.data_size - heap_start
    f.seek(table.data_offset)
    catalog = np.frombuffer(f.read(catalog_size), dtype=">i8").reshape(
        n_tiles, n_columns, 2
    )
    names = [header.get(f"TTYPE{i}", str(i)) for i in range(1, n_columns + 1)]
    previous_end = 0
    for tile, entries in enumerate(catalog):
        sizes, offsets = entries[:, 0], entries[:, 1]
        tile_start = int(offsets[0]) - TILE_HEADER.size
        if tile_start < previous_end:
            raise ValueError(
                f"tile {tile}: its header at heap offset {tile_start} is before the"
                f" end of the previous tile or of the heap start ({previous_end})"
            )
        # Python integers: a damaged entry must not overflow int64
        for column, (block_size, offset) in enumerate(entries.tolist()):
            if block_size < BLOCK_HEADER.size or offset + block_size > heap_size:
                raise ValueError(
                    f"tile {tile}: block of {names[column]} ({block_size} bytes at heap"
                    f" offset {offset}) outside the heap of {heap_size} bytes"
                )
        gaps = offsets[1:] != offsets[:-1] + sizes[:-1]
        if gaps.any():
            column = int(np.argmax(gaps)) + 1
            raise ValueError(
                f"tile {tile}: block of {names[column]} at heap offset"
                f" {offsets[column]} does not follow the previous block"
            )
        expected_rows = min(tile_length, n_rows - tile * tile_length)
        _check_tile(f, table.data_offset + heap_start, tile, entries, expected_rows)
        _check_blocks(f, table.data_offset + heap_start, tile, entries, names)
        previous_end = int(offsets[-1] + sizes[-1])


def _check_tile(f, heap_offset, tile, entries, expected_rows):
    """Compare the header of one tile with the catalog and the expected rows."""
    f.seek(heap_offset + int(entries[0, 1]) - TILE_HEADER.size)
    magic, rows, tile_bytes = TILE_HEADER.unpack(f.read(TILE_HEADER.size))
    if magic != b"TILE":
        raise ValueError(f"tile {tile}: header starts with {magic!r}, not b'TILE'")
    if rows != expected_rows:
        raise ValueError(f"tile {tile}: {rows} rows, expected {expected_rows}")
    if tile_bytes != int(entries[:, 0].sum()):
        raise ValueError(
            f"tile {tile}: header says {tile_bytes} bytes, the catalog"
            f" {int(entries[:, 0].sum())}"
        )


def _check_blocks(f, heap_offset, tile, entries, names):
    """Compare the header of every column block of one tile with the catalog."""
    for column, (block_size, offset) in enumerate(entries):
        f.seek(heap_offset + int(offset))
        size, marker, n_processings = BLOCK_HEADER.unpack(f.read(BLOCK_HEADER.size))
        where = f"tile {tile}, block of {names[column]}"
        if size != block_size:
            raise ValueError(
                f"{where}: header says {size} bytes, the catalog {block_size}"
            )
        if marker != b"C":
            raise ValueError(f"{where}: compression marker {marker!r}, not b'C'")
        if BLOCK_HEADER.size + PROCESSING_ID * n_processings > size:
            raise ValueError(
                f"{where}: {n_processings} processing ids do not fit into {size} bytes"
            )


def _checksum_problem(f, table):
    """Why the data or the HDU do not match DATASUM / CHECKSUM, or None."""
    header = table.header
    data = _OnesComplementSum()
    # the data and the fill of their last FITS block (zeros in a correct file)
    padded = -(-table.data_size // FITS_BLOCK) * FITS_BLOCK
    remaining = min(padded, f.seek(0, 2) - table.data_offset)
    f.seek(table.data_offset)
    while remaining:
        chunk = f.read(min(CHUNK_BYTES, remaining))
        data.update(chunk)
        remaining -= len(chunk)
    try:
        expected = int(header["DATASUM"])
    except ValueError:
        return f"DATASUM {header['DATASUM']!r} is not a number"
    if data.value != expected:
        return (
            f"its data do not match their checksum (DATASUM={expected}, the data"
            f" sum to {data.value}): bytes of the catalog or of the compressed"
            " events are damaged"
        )
    if str(header.get("CHECKSUM", "")).strip():
        hdu = _OnesComplementSum()
        f.seek(table.header_offset)
        hdu.update(f.read(table.data_offset - table.header_offset))
        hdu.update(data.value.to_bytes(4, "big"))
        if hdu.value != HDU_SUM:
            return "its header does not match its CHECKSUM: header cards are damaged"
    return None


#: program of `trial_decode`'s process: decompress every row of the Events table
#: (protozfits' low-level reader only, ~0.4 s to start)
_DECODE_ALL = """
import sys
from protozfits.rawzfits import ProtobufIFits
table = ProtobufIFits(sys.argv[1], "Events")
for row in range(1, int(sys.argv[2]) + 1):
    table.read_serialized_message(row)
"""


def trial_decode(path, n_rows):
    """
    Decompress every event of a zfits file in a separate Python process.

    Parameters
    ----------
    path : str or Path
        zfits file.
    n_rows : int
        Number of events of its Events table (``ZNAXIS2``).

    Raises
    ------
    ZFitsError
        If the decoder crashed or raised an error.
    """
    result = subprocess.run(
        [sys.executable, "-c", _DECODE_ALL, str(path), str(n_rows)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode < 0:
        name = signal.Signals(-result.returncode).name
        raise ZFitsError(
            f"{path}: corrupt Events table: protozfits crashed ({name}) decoding it"
            " in a separate process (the file has no checksum to test first)"
        )
    if result.returncode:
        lines = result.stderr.strip().splitlines() or ["no message"]
        raise ZFitsError(f"{path}: corrupt Events table: {lines[-1]}")
