"""Writer of DigiCam "protobuf-in-zfits" raw data files.

The SST-1M camera server (DigiCam) stores its events as ``DataModel.CameraEvent``
protobuf messages, flattened into the columns of a compressed FITS binary table
(zfits). ``protozfits.FlatProtobufZOFits`` cannot write this message type, so this
module writes the format itself, for tests and for simulated raw runs.

Layout of the ``Events`` table written here (as in the real files):

* the table data is a *catalog* with one row per tile and, per column, a
  big-endian ``int64`` pair (block size, block offset relative to the heap);
* the heap holds the tiles: ``b"TILE"``, ``uint32`` number of rows, ``uint64``
  size of the tile's blocks, then one block per column: ``uint64`` block size,
  ``b"C"``, ``uint8`` number of processings, ``uint16`` processing ids, payload;
* the payload is the little-endian values of the tile's rows (scalars) or, per
  row, a ``uint32`` byte count followed by the array bytes (``AnyArray``),
  compressed with zlib (processing 7) or stored raw (processing 0);
* ``TPBIDn`` is the protobuf field path of column ``n`` (``6.1.1`` for
  ``hiGain.waveforms.samples``), which is what protozfits maps the column by;
  ``ZFORMn`` and ``TZEROn`` give the element type of the arrays.

The module is long because the format's parts (tiles, heap, catalog, checksums,
header cards) are written by hand and only make sense together.
"""

import logging
import operator
import os
import re
import shutil
import struct
import tempfile
import time
import zlib
from collections import Counter
from dataclasses import dataclass

import numpy as np
from astropy.io import fits

from .atomic_output import AtomicOutput

__all__ = ["DigiCamZFitsWriter"]

log = logging.getLogger(__name__)

#: Processing ids of the zfits compression chain.
PROCESSING_IDS = {"raw": 0, "zlib": 7}

#: zlib level of the column blocks (level 1 is ~8 times faster than 6 and
#: compresses waveforms as well).
ZLIB_LEVEL = 1

#: Trigger bytes per waveform sample: 3 sectors x 192 inputs, 3 x 18 output bytes.
TRIGGER_INPUT_BYTES_PER_SAMPLE = 576
TRIGGER_OUTPUT_BYTES_PER_SAMPLE = 54

FITS_BLOCK = 2880
CARD_LENGTH = 80

_TILE_HEADER = struct.Struct("<4sIQ")
_BLOCK_HEADER = struct.Struct("<QcB")
_ROW_SIZE = struct.Struct("<I")

#: TZERO and its comment per unsigned type, with the values of the real files
#: (32678 and 2**63 - 1 are not the FITS offsets but what DigiCam writes;
#: protozfits reads an ``I`` array as uint16 if TZERO is present, whatever its value).
_TZERO = {
    "<u1": (-128, "signed chars"),
    "<u2": (32678, "uint16"),
    "<u4": (2**31, "uint32"),
    "<u8": (2**63 - 1, "uint64"),
}

#: ZFORM letter and comment per item size ("BOOL" for bytes as in the real files).
_ZFORM_CODE = {
    1: ("B", "1-byte BOOL"),
    2: ("I", "2-byte INT"),
    4: ("J", "4-byte INT"),
    8: ("K", "8-byte INT"),
}

#: Keywords that describe the table layout; a user header must not set them.
_LAYOUT_KEYWORDS = re.compile(
    r"^(XTENSION|BITPIX|NAXIS\d*|PCOUNT|GCOUNT|TFIELDS|EXTNAME|CHECKSUM|DATASUM"
    r"|ZTABLE|ZNAXIS\d+|ZPCOUNT|ZHEAPPTR|ZTILELEN|THEAP|PBFHEAD"
    r"|(TFORM|TTYPE|TZERO|ZFORM|ZCTYP|TPBID)\d+)$"
)

_PRIMARY_CARDS = (
    ("SIMPLE", True, "file does conform to FITS standard"),
    ("BITPIX", 8, "number of bits per data pixel"),
    ("NAXIS", 0, "number of data axes"),
    ("EXTEND", True, "FITS dataset may contain extensions"),
    ("CHECKSUM", "", "Checksum for the whole HDU"),
    ("DATASUM", "", "Checksum for the data block"),
    (
        "COMMENT",
        "  FITS (Flexible Image Transport System) format is defined in 'Astronomy",
    ),
    (
        "COMMENT",
        "  and Astrophysics', volume 376, page 359; bibcode: 2001A&A...376..359H",
    ),
)


@dataclass(frozen=True)
class _Column:
    """One protobuf field stored as a column of the ``Events`` table.

    Attributes
    ----------
    name : str
        ``TTYPE``: protobuf field path with ``_`` between message levels.
    pbid : str
        ``TPBID``: protobuf field numbers joined by ``.``.
    dtype : str
        Little-endian numpy type of the stored values.
    is_array : bool
        True for ``AnyArray`` fields (one array per row), False for scalars.
    """

    name: str
    pbid: str
    dtype: str
    is_array: bool = False

    @property
    def itemsize(self):
        """Bytes per element."""
        return np.dtype(self.dtype).itemsize

    def row(self, value):
        """Validate one event's value and return what the tile buffer keeps.

        Parameters
        ----------
        value : int or array-like
            Scalar or array value of the field.

        Returns
        -------
        int or bytes
            The integer (scalars) or the ``AnyArray`` row: ``uint32`` byte count
            followed by the little-endian array bytes.
        """
        if not self.is_array:
            return _checked_integer(value, self.dtype, self.name)
        data = _checked_array(value, self.dtype, self.name).tobytes()
        return _ROW_SIZE.pack(len(data)) + data

    def payload(self, rows):
        """Return the uncompressed payload of one tile of this column."""
        if self.is_array:
            return b"".join(rows)
        return np.array(rows, dtype=self.dtype).tobytes()

    def cards(self, index, n_elements):
        """Return the header cards of the column.

        Parameters
        ----------
        index : int
            1-based column number.
        n_elements : int
            Largest number of elements in a row (1 for scalars).

        Returns
        -------
        list of tuple
            ``(keyword, value[, comment])`` tuples.
        """
        code, size_text = _ZFORM_CODE[self.itemsize]
        cards = [
            _card(f"TFORM{index}", "1QB", f"format of {self.name} [var. Length]"),
            (f"TTYPE{index}", self.name),
        ]
        if self.dtype in _TZERO:
            tzero, type_name = _TZERO[self.dtype]
            cards.append((f"TZERO{index}", tzero, f"Offset for {type_name}"))
        zform_comment = f"format of {self.name} [{size_text}]"
        cards += [
            _card(f"ZFORM{index}", f"{n_elements}{code}", zform_comment),
            (f"ZCTYP{index}", "CTA", "Custom CTA compression"),
            (f"TPBID{index}", self.pbid, "Protobuf ID"),
        ]
        return cards


#: All columns the writer knows, in protobuf field order (that of the real files).
_COLUMNS = (
    _Column("telescopeID", "1", "<i4"),
    _Column("eventType", "3", "<i4"),
    _Column("eventNumber", "4", "<u4"),
    _Column("arrayEvtNum", "5", "<u4"),
    _Column("hiGain_waveforms_samples", "6.1.1", "<i2", is_array=True),
    _Column("hiGain_waveforms_pixelsIndices", "6.1.2", "<u2", is_array=True),
    _Column("hiGain_waveforms_baselines", "6.1.5", "<i2", is_array=True),
    _Column("trig_timeSec", "8.2", "<i8"),
    _Column("trig_timeNanoSec", "8.3", "<i8"),
    _Column("local_time_nanosec", "30", "<u8"),
    _Column("local_time_sec", "31", "<u8"),
    _Column("pixels_flags", "32", "<u2", is_array=True),
    _Column("event_type", "34", "<u4"),
    _Column("trigger_input_traces", "35", "<u1", is_array=True),
    _Column("trigger_output_patch7", "36", "<u1", is_array=True),
    _Column("trigger_output_patch19", "37", "<u1", is_array=True),
    _Column("trigger_output_muon", "38", "<u1", is_array=True),
)

#: Columns written only if the first event provides them.
_OPTIONAL_COLUMNS = frozenset(
    {
        "eventType",
        "arrayEvtNum",
        "trig_timeSec",
        "trig_timeNanoSec",
        "trigger_output_muon",
    }
)


def _checked_integer(value, dtype, name):
    """Return ``value`` as a Python int after checking it fits into ``dtype``."""
    info = np.iinfo(dtype)
    try:
        value = operator.index(value)
    except TypeError:
        raise ValueError(f"{name} must be an integer, got {value!r}") from None
    if not info.min <= value <= info.max:
        raise ValueError(f"{name} must be in [{info.min}, {info.max}], got {value}")
    return value


def _checked_array(values, dtype, name):
    """Return ``values`` as a flat array of ``dtype``, refusing lossy conversions."""
    array = np.asarray(values)
    if array.dtype.kind not in "biu":
        raise ValueError(f"{name} must hold integers, got dtype {array.dtype}")
    info = np.iinfo(dtype)
    out_of_range = array.size and (array.min() < info.min or array.max() > info.max)
    if array.dtype != np.dtype(dtype) and out_of_range:
        raise ValueError(f"{name} values must be in [{info.min}, {info.max}]")
    return np.ascontiguousarray(array, dtype=dtype).ravel()


def _card(keyword, value, comment):
    """Return a card tuple, without the comment if the card would exceed 80 chars."""
    value_width = max(len(fits.Card(keyword, value).image.rstrip()), 30)
    if value_width + len(" / ") + len(comment) <= CARD_LENGTH:
        return (keyword, value, comment)
    return (keyword, value)


def _fold(total):
    """Fold the carries of a sum into 32 bits (ones' complement addition)."""
    while total >> 32:
        total = (total & 0xFFFFFFFF) + (total >> 32)
    return total


class _OnesComplementSum:
    """Running FITS checksum (32-bit ones' complement sum) of a byte stream.

    The stream may be fed in pieces of any length; the words are big-endian
    ``uint32`` counted from the start of the stream, a final partial word is
    padded with zeros.
    """

    def __init__(self):
        self.total = 0
        self._tail = b""

    def update(self, data):
        """Add the bytes of ``data`` to the sum."""
        data = memoryview(data).cast("B")
        if self._tail:
            needed = 4 - len(self._tail)
            self._tail += bytes(data[:needed])
            data = data[needed:]
            if len(self._tail) < 4:
                return
            self._add_words(self._tail)
            self._tail = b""
        n_aligned = len(data) - len(data) % 4
        self._add_words(data[:n_aligned])
        self._tail = bytes(data[n_aligned:])

    @property
    def value(self):
        """The sum of the stream so far, a partial last word padded with zeros."""
        return _fold(self.total + int.from_bytes(self._tail.ljust(4, b"\0"), "big"))

    def _add_words(self, data):
        words = np.frombuffer(data, dtype=">u4")
        self.total = _fold(self.total + int(words.sum(dtype=np.uint64)))


_CHECKSUM_EXCLUDED = frozenset(b":;<=>?@[\\]^_`")


def _encode_checksum(total):
    """Encode the complement of a 32-bit sum as the 16 characters of CHECKSUM.

    Each byte of the complement is spread over four characters (offset ``'0'``);
    characters in the excluded punctuation range are avoided by moving one unit
    between the two characters of a pair; the string is rotated right by one.
    """
    characters = [0] * 16
    complement = ~total & 0xFFFFFFFF
    for byte_index, byte in enumerate(complement.to_bytes(4, "big")):
        quotient, remainder = divmod(byte, 4)
        group = [quotient + ord("0")] * 4
        group[0] += remainder
        for first in (0, 2):
            while {group[first], group[first + 1]} & _CHECKSUM_EXCLUDED:
                group[first] += 1
                group[first + 1] -= 1
        for position, character in enumerate(group):
            characters[4 * position + byte_index] = character
    return bytes(characters[-1:] + characters[:-1]).decode("ascii")


def _header_bytes(cards, datasum):
    """Serialise a header with DATASUM and a CHECKSUM making the HDU sum to -0.

    Parameters
    ----------
    cards : list of tuple
        Cards, including ``CHECKSUM`` and ``DATASUM`` placeholders.
    datasum : int
        Ones' complement sum of the HDU data (including its padding).

    Returns
    -------
    bytes
        The header, padded to a multiple of 2880 bytes.
    """
    header = fits.Header(cards)
    header["DATASUM"] = f"{datasum:10d}"
    header["CHECKSUM"] = "0" * 16
    checksum = _OnesComplementSum()
    checksum.update(header.tostring().encode("ascii"))
    header["CHECKSUM"] = _encode_checksum(_fold(checksum.value + datasum))
    return header.tostring().encode("ascii")


def _utc_string(seconds):
    """Return Unix ``seconds`` as a FITS date string (``YYYY-MM-DDThh:mm:ss``)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))


def _user_cards(header):
    """Validate the user's keywords and return them as card tuples.

    Parameters
    ----------
    header : dict
        Keyword to value or to ``(value, comment)``.

    Returns
    -------
    list of tuple

    Raises
    ------
    ValueError
        If a keyword describes the table layout.
    """
    cards = []
    for keyword, value in header.items():
        keyword = keyword.upper()
        if _LAYOUT_KEYWORDS.match(keyword):
            raise ValueError(f"Header keyword {keyword} is set by the writer")
        card = (keyword, *value) if isinstance(value, tuple) else (keyword, value)
        fits.Card(*card).verify("exception")
        cards.append(card)
    return cards


def _merge_cards(cards, user_cards):
    """Replace the value of existing keywords by the user's, append the others."""
    positions = {card[0]: index for index, card in enumerate(cards)}
    merged = list(cards)
    for card in user_cards:
        if card[0] in positions:
            merged[positions[card[0]]] = card
        else:
            merged.append(card)
    return merged


def _block(payload, compression):
    """Return one column block: header, processing ids and (compressed) payload."""
    if compression == "zlib":
        payload = zlib.compress(payload, ZLIB_LEVEL)
    processing = struct.pack("<H", PROCESSING_IDS[compression])
    size = _BLOCK_HEADER.size + len(processing) + len(payload)
    return _BLOCK_HEADER.pack(size, b"C", 1) + processing + payload


class _Heap:
    """Tiles of compressed column blocks, streamed to an anonymous temporary file.

    Parameters
    ----------
    directory : str
        Directory of the temporary file (that of the output file).
    """

    def __init__(self, directory):
        self._file = tempfile.TemporaryFile(dir=directory)
        self._catalog = []
        self.size = 0
        self.checksum = _OnesComplementSum()

    @property
    def n_tiles(self):
        """Number of tiles written."""
        return len(self._catalog)

    def add_tile(self, blocks, n_rows):
        """Append one tile, given its column blocks in column order."""
        sizes = np.array([len(block) for block in blocks], dtype=np.int64)
        offsets = self.size + _TILE_HEADER.size + np.cumsum(sizes) - sizes
        self._catalog.append(np.column_stack([sizes, offsets]))
        self._write(_TILE_HEADER.pack(b"TILE", n_rows, int(sizes.sum())))
        for block in blocks:
            self._write(block)

    def catalog_bytes(self):
        """Return the catalog: per tile and column, big-endian (size, offset)."""
        return np.array(self._catalog, dtype=">i8").tobytes()

    def copy_to(self, output):
        """Copy the heap to the binary file object ``output``."""
        self._file.seek(0)
        shutil.copyfileobj(self._file, output)

    def close(self):
        """Close (and so delete) the temporary file."""
        self._file.close()

    def _write(self, data):
        self._file.write(data)
        self.checksum.update(data)
        self.size += len(data)


class _RunStatistics:
    """Event times and trigger types summarised in the ``Events`` header."""

    def __init__(self):
        self.first = None
        self.last = None
        self.events_per_second = Counter()
        self.trigger_types = Counter()

    def add(self, local_time_sec, local_time_nanosec, event_type):
        """Account for one event."""
        self.first = self.first or (local_time_sec, local_time_nanosec)
        self.last = (local_time_sec, local_time_nanosec)
        self.events_per_second[local_time_sec] += 1
        self.trigger_types[event_type] += 1

    def cards(self):
        """Return the date, time, rate and trigger-count cards (zeros if empty).

        ``NTRIGEXT`` counts ``event_type == 8`` (pedestal) events, ``NTRIGINT``
        ``event_type == 1`` (shower) events, as in the real files; the rates are
        numbers of events per second of ``local_time_sec``.
        """
        start_s, start_ns = self.first or (0, 0)
        stop_s, stop_ns = self.last or (0, 0)
        rates = sorted(self.events_per_second.values()) or [0]
        n_external = self.trigger_types[8]
        n_internal = self.trigger_types[1]
        n_other = self.trigger_types.total() - n_external - n_internal
        exposure = (stop_s - start_s) + (stop_ns - start_ns) * 1e-9
        return [
            ("DATE", _utc_string(start_s + 1), "File creation date"),
            ("DATEEND", _utc_string(stop_s + 1), "File closing date"),
            ("ORIGIN", "CTA", "Institution that wrote the file"),
            ("RUNTYPE", "science", "Type of data in the table"),
            ("WORKPKG", "ACTL", "Workpackage that wrote the file"),
            ("TSTARTS", start_s, "Timestamp of first event"),
            ("TSTARTNS", start_ns, "Nanoseconds of the first event"),
            ("TSTOPS", stop_s, "Timestamp of last event"),
            ("TSTOPNS", stop_ns, "Nanoseconds of the last event"),
            ("MINRATE", rates[0], "Minimal trigger rate"),
            ("MAXRATE", rates[-1], "Maximum trigger rate"),
            ("MEDRATE", rates[(len(rates) - 1) // 2], "Median trigger rate"),
            ("EXPOSURE", exposure, "Duration of this data chunk"),
            ("NTRIGEXT", n_external, "Num. Evts. from external trigger"),
            ("NTRIGINT", n_internal, "Num. Evts. from internal trigger"),
            ("NOTHERTG", n_other, "Num. Evts. of unknown trigger type"),
        ]


class DigiCamZFitsWriter:
    """Write SST-1M DigiCam events to a zfits file of ``DataModel.CameraEvent``.

    Events are buffered per tile; each full tile is compressed and streamed to a
    temporary heap file. `close` writes the file under a temporary name (primary HDU
    and the compressed ``Events`` table) and renames it to ``path``. Leaving a ``with``
    block by an exception discards everything. Identical input gives
    byte-identical files.

    Parameters
    ----------
    path : str or os.PathLike
        Output file, usually ``*.fits.fz``; an existing file is replaced.
    header : dict, optional
        Extra ``Events`` keywords, ``{keyword: value}`` or
        ``{keyword: (value, comment)}``, e.g.
        ``{"TARGET": "Crab_W1,83.6331,22.0145"}``. They may replace descriptive
        keywords such as ``RUNTYPE``, not those of the table layout.
    compression : {"zlib", "raw"}
        Compression of the column blocks (processing 7 or 0).
    rows_per_tile : int
        Number of events per tile (``ZTILELEN``).
    """

    def __init__(self, path, header=None, compression="zlib", rows_per_tile=100):
        if compression not in PROCESSING_IDS:
            raise ValueError(
                f"compression must be one of {sorted(PROCESSING_IDS)},"
                f" got {compression!r}"
            )
        if rows_per_tile < 1:
            raise ValueError("rows_per_tile must be at least 1")
        self.path = os.fspath(path)
        self.compression = compression
        self.rows_per_tile = rows_per_tile
        self._user_cards = _user_cards(header or {})
        self._heap = _Heap(os.path.dirname(os.path.abspath(self.path)))
        self._statistics = _RunStatistics()
        self._columns = None
        self._tile = {}
        self._n_tile_rows = 0
        self._n_events = 0
        self._max_elements = Counter()
        self._closed = False

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc_value, traceback):
        if exc_type is None:
            self.close()
        else:
            self.discard()

    def write_event(
        self,
        telescope_id,
        event_number,
        samples,
        pixel_indices,
        baselines,
        local_time_sec,
        local_time_nanosec,
        event_type,
        pixels_flags=None,
        array_event_number=None,
        trig_time_sec=None,
        trig_time_nanosec=None,
        trigger_input_traces=None,
        trigger_output_patch7=None,
        trigger_output_patch19=None,
        array_event_type=None,
        trigger_output_muon=None,
    ):
        """Add one camera event.

        The optional columns (``array_event_number``, ``trig_time_sec``,
        ``trig_time_nanosec``, ``array_event_type``, ``trigger_output_muon``) are
        written if given for the first event; every later event must give the
        same ones.

        Parameters
        ----------
        telescope_id : int
            ``telescopeID``.
        event_number : int
            Camera event counter ``eventNumber`` (uint32).
        samples : array-like of int16
            Waveforms, shape ``(n_pixels * n_samples,)`` or
            ``(n_pixels, n_samples)``, row ``i`` being the pixel with software id
            ``pixel_indices[i]``.
        pixel_indices : array-like of uint16
            Software pixel id of each readout position, shape ``(n_pixels,)``.
        baselines : array-like of int16
            DigiCam baselines (16 x ADC), shape ``(n_pixels,)``.
        local_time_sec, local_time_nanosec : int
            Camera clock (uint64).
        event_type : int
            Camera trigger bit field (1 shower, 8 pedestal).
        pixels_flags : array-like of uint16, optional
            Shape ``(n_pixels,)``; default all ones.
        array_event_number : int, optional
            SWAT array event number ``arrayEvtNum``.
        trig_time_sec, trig_time_nanosec : int, optional
            White Rabbit time stamp ``trig.timeSec``, ``trig.timeNanoSec``.
        trigger_input_traces : array-like of uint8, optional
            Default zeros of ``576 * n_samples`` bytes.
        trigger_output_patch7, trigger_output_patch19 : array-like of uint8, optional
            Default zeros of ``54 * n_samples`` bytes.
        array_event_type : int, optional
            ``eventType`` enum (0 NONE, 1 PHYSICAL, 2 PEDESTAL, 3 LIGHT_PULSER).
        trigger_output_muon : array-like of uint8, optional
            Muon trigger output bits (``54 * n_samples`` bytes in the 2018 files).

        Raises
        ------
        ValueError
            For inconsistent shapes, out-of-range values or a set of optional
            columns different from that of the first event.
        """
        if self._closed:
            raise ValueError(f"Writer of {self.path} is closed")
        pixel_indices = np.asarray(pixel_indices)
        n_pixels = pixel_indices.size
        n_samples = _samples_per_pixel(samples, n_pixels)
        if pixels_flags is None:
            pixels_flags = np.ones(n_pixels, dtype=np.uint16)
        output_bytes = TRIGGER_OUTPUT_BYTES_PER_SAMPLE * n_samples
        values = {
            "telescopeID": telescope_id,
            "eventType": array_event_type,
            "eventNumber": event_number,
            "arrayEvtNum": array_event_number,
            "hiGain_waveforms_samples": samples,
            "hiGain_waveforms_pixelsIndices": pixel_indices,
            "hiGain_waveforms_baselines": _per_pixel(baselines, n_pixels, "baselines"),
            "trig_timeSec": trig_time_sec,
            "trig_timeNanoSec": trig_time_nanosec,
            "local_time_nanosec": local_time_nanosec,
            "local_time_sec": local_time_sec,
            "pixels_flags": _per_pixel(pixels_flags, n_pixels, "pixels_flags"),
            "event_type": event_type,
            "trigger_input_traces": _default_zeros(
                trigger_input_traces, TRIGGER_INPUT_BYTES_PER_SAMPLE * n_samples
            ),
            "trigger_output_patch7": _default_zeros(
                trigger_output_patch7, output_bytes
            ),
            "trigger_output_patch19": _default_zeros(
                trigger_output_patch19, output_bytes
            ),
            "trigger_output_muon": trigger_output_muon,
        }
        rows = self._rows(values)
        for name, row in rows.items():
            self._tile.setdefault(name, []).append(row)
        self._statistics.add(
            rows["local_time_sec"], rows["local_time_nanosec"], rows["event_type"]
        )
        self._n_tile_rows += 1
        self._n_events += 1
        if self._n_tile_rows == self.rows_per_tile:
            self._flush_tile()

    def close(self):
        """Write the file (via a temporary name) and release the temporary heap."""
        if self._closed:
            return
        self._closed = True
        try:
            self._flush_tile()
            with AtomicOutput(self.path, overwrite=True) as output:
                with open(output.temporary, "wb") as file:
                    self._write_file(file)
                output.commit()
        finally:
            self._heap.close()
        log.info(
            "Wrote %d events in %d tiles to %s",
            self._n_events,
            self._heap.n_tiles,
            self.path,
        )

    def discard(self):
        """Drop all buffered and streamed events without writing the file."""
        if not self._closed:
            self._closed = True
            self._heap.close()
            log.warning(
                "Discarded %d events, %s not written", self._n_events, self.path
            )

    def _rows(self, values):
        """Convert the event's values; the first event decides the file's columns."""
        present = tuple(c for c in _COLUMNS if values[c.name] is not None)
        if self._columns not in (None, present):
            given = sorted({column.name for column in present} & _OPTIONAL_COLUMNS)
            expected = sorted({c.name for c in self._columns} & _OPTIONAL_COLUMNS)
            raise ValueError(
                f"Optional columns {given} differ from those of the first event"
                f" {expected}"
            )
        rows = {column.name: column.row(values[column.name]) for column in present}
        self._columns = present
        for column in present:
            if column.is_array:
                n_bytes = len(rows[column.name]) - _ROW_SIZE.size
                n_elements = n_bytes // column.itemsize
                self._max_elements[column.name] = max(
                    self._max_elements[column.name], n_elements
                )
        return rows

    def _flush_tile(self):
        """Compress the buffered rows into one tile of the heap."""
        if not self._n_tile_rows:
            return
        blocks = [
            _block(column.payload(self._tile[column.name]), self.compression)
            for column in self._columns
        ]
        self._heap.add_tile(blocks, self._n_tile_rows)
        log.debug(
            "Tile %d: %d rows, %d bytes",
            self._heap.n_tiles,
            self._n_tile_rows,
            sum(map(len, blocks)),
        )
        self._tile = {}
        self._n_tile_rows = 0

    def _write_file(self, output):
        """Write the primary HDU, the ``Events`` header, the catalog and the heap."""
        output.write(_header_bytes(list(_PRIMARY_CARDS), 0))
        catalog = self._heap.catalog_bytes()
        catalog_checksum = _OnesComplementSum()
        catalog_checksum.update(catalog)
        datasum = _fold(catalog_checksum.value + self._heap.checksum.value)
        output.write(_header_bytes(self._events_cards(len(catalog)), datasum))
        output.write(catalog)
        self._heap.copy_to(output)
        output.write(bytes(-(len(catalog) + self._heap.size) % FITS_BLOCK))

    def _events_cards(self, catalog_size):
        """Return all cards of the ``Events`` header."""
        columns = self._columns or tuple(
            column for column in _COLUMNS if column.name not in _OPTIONAL_COLUMNS
        )
        n_elements = [
            self._max_elements[column.name] if column.is_array else 1
            for column in columns
        ]
        row_width = sum(n * column.itemsize for n, column in zip(n_elements, columns))
        stored_size = catalog_size + self._heap.size
        ratio = row_width * self._n_events / stored_size if stored_size else 0.0
        cards = [
            ("XTENSION", "BINTABLE", "binary table extension"),
            ("BITPIX", 8, "8-bit bytes"),
            ("NAXIS", 2, "2-dimensional binary table"),
            ("NAXIS1", 16 * len(columns), "width of table in bytes"),
            ("NAXIS2", self._heap.n_tiles, "number of rows in table"),
            ("PCOUNT", self._heap.size, "size of special data area"),
            ("GCOUNT", 1, "one data group (required keyword)"),
            ("TFIELDS", len(columns), "number of fields in each row"),
            ("EXTNAME", "Events", "name of extension table"),
            ("CHECKSUM", "", "Checksum for the whole HDU"),
            ("DATASUM", "", "Checksum for the data block"),
            ("ZTABLE", True, "Table is compressed"),
            ("ZNAXIS1", row_width, "Width of uncompressed rows"),
            ("ZNAXIS2", self._n_events, "Number of uncompressed rows"),
            ("ZPCOUNT", 0),
            ("ZHEAPPTR", catalog_size),
            ("ZTILELEN", self.rows_per_tile, "Number of rows per tile"),
            ("THEAP", catalog_size),
            ("RAWSUM", "0", "Checksum of raw little endian data"),
            ("ZRATIO", ratio, "Compression ratio"),
            ("ZSHRINK", 1, "Catalog shrink factor"),
            *self._statistics.cards(),
            ("PBFHEAD", "DataModel.CameraEvent", "Written message name"),
            ("CREATOR", "ctapipe_sst1m.io.zfits_writer", "Class that wrote this file"),
            ("TIMESYS", "UTC", "Time system"),
            ("REVISION", 0, "SVN revision"),
            ("MAJORV", 0, "Major ACTL release"),
            ("MINORV", 2, "Minor ACTL release"),
        ]
        for index, (column, n) in enumerate(zip(columns, n_elements), start=1):
            cards += column.cards(index, n)
        return _merge_cards(cards, self._user_cards)


def _samples_per_pixel(samples, n_pixels):
    """Return the number of samples per pixel, checking the size of ``samples``."""
    size = np.size(samples)
    if n_pixels == 0 or size % n_pixels:
        raise ValueError(
            f"samples has {size} values, not a multiple of {n_pixels} pixel indices"
        )
    return size // n_pixels


def _per_pixel(values, n_pixels, name):
    """Return per-pixel ``values`` after checking their number."""
    if np.size(values) != n_pixels:
        raise ValueError(f"{name} has {np.size(values)} values for {n_pixels} pixels")
    return values


def _default_zeros(values, size):
    """Return ``values``, or ``size`` zero bytes if None."""
    return np.zeros(size, dtype=np.uint8) if values is None else values
