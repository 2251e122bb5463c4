"""sst1m-stereo-match: find the coincident events of the two SST-1M telescopes."""

from collections import Counter
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.coordinates import EarthLocation
from astropy.table import Table
from ctapipe.containers import (
    EventIndexContainer,
    EventType,
    TelescopePointingContainer,
)
from ctapipe.core import Tool
from ctapipe.core.traits import Bool, Dict, Float, Int, List, flag
from ctapipe.core.traits import Path as PathTrait
from ctapipe.instrument import SubarrayDescription
from ctapipe.io import DataWriter, HDF5EventSource, read_table, write_table
from ctapipe.reco import ShowerProcessor
from tqdm.auto import tqdm

from ..coordinates import TrackingPointing
from ..instrument import DEFAULT_TELESCOPE_LOCATIONS
from ..io.atomic_output import AtomicOutput
from ..io.mono_dl1 import expand_inputs, read_mono_index
from ..io.pointing_table import add_pointing_tables
from ..stereo.coincidence import CoincidenceMatcher
from ..time import tai_ns, tai_time
from .summary import print_step, print_summary

__all__ = ["StereoMatchTool"]

TEL_1, TEL_2 = 21, 22
COINCIDENCE_TABLE = "/dl1/event/subarray/coincidence"
COINCIDENCE_SUMMARY = "/dl1/service/coincidence"
OFFSET_SCAN_TABLE = "/dl1/service/coincidence_offset_scan"


class NoCoincidence(Exception):
    """Nothing to match; not an error (e.g. runs that do not overlap in time)."""


class StereoMatchTool(Tool):
    """
    Match the events of SST-1M telescopes 21 and 22 and write stereo DL1.

    Inputs are DL1 files of each telescope (ctapipe-process or sst1m-process with
    sst1m.yaml). For every telescope-21 file the telescope-22 files overlapping it in
    time are matched with the CoincidenceMatcher (SWATEventIDs, WhiteRabbitClosest or
    SlidingWindow), the matched events are written with both telescopes under the
    telescope-21 (obs_id, event_id), ShowerProcessor adds the stereo geometry, and the
    pointing of both telescopes, the original per-telescope ids and times and the match
    statistics are stored. Output files are written under a temporary name and renamed
    when complete.
    """

    name = "sst1m-stereo-match"
    description = __doc__
    examples = """
    sst1m-stereo-match --input-tel1 SST1M1_20240304_0012_dl1.h5 \\
        --input-tel2 cs2/dl1/ --output SST1M_20240304_0012_dl1_stereo.h5

    sst1m-stereo-match --input-tel1 tel21.h5 --input-tel2 tel22.h5 --output stereo.h5 \\
        --method SlidingWindow --keep-mono
    """

    input_tel1 = List(
        PathTrait(exists=True, directory_ok=False),
        help="DL1 file(s) of telescope 21; several files need --output to be a directory.",
    ).tag(config=True)

    input_tel2 = List(
        PathTrait(exists=True, directory_ok=True),
        help="DL1 files of telescope 22 or directories holding them (all *.h5).",
    ).tag(config=True)

    output = PathTrait(
        directory_ok=True,
        help="Stereo DL1 file, or a directory for several telescope-21 inputs.",
    ).tag(config=True)

    keep_mono = Bool(
        default_value=False,
        help="Keep unmatched events as single-telescope events instead of dropping them.",
    ).tag(config=True)

    write_images = Bool(
        default_value=True,
        help="Copy the DL1 images of the matched events (if the inputs have them).",
    ).tag(config=True)

    overlap_margin_s = Float(
        default_value=1.0,
        help="Telescope-22 files overlapping the run within this margin (s) are used.",
    ).tag(config=True)

    mono_event_id_offset = Int(
        default_value=10_000_000_000,
        help=(
            "Without SWAT ids, unmatched telescope-22 events kept with --keep-mono get"
            " their event id plus this offset, so that ids stay unique."
        ),
    ).tag(config=True)

    telescope_locations = Dict(
        default_value=DEFAULT_TELESCOPE_LOCATIONS,
        help="Geodetic position [lon_deg, lat_deg, height_m] per telescope, for Alt/Az of the pointing.",
    ).tag(config=True)

    progress_bar = Bool(
        default_value=True,
        help="Show a progress bar while the stereo events are written.",
    ).tag(config=True)

    aliases = {
        "input-tel1": "StereoMatchTool.input_tel1",
        "input-tel2": "StereoMatchTool.input_tel2",
        ("o", "output"): "StereoMatchTool.output",
        "method": "CoincidenceMatcher.method",
    }
    flags = {
        **flag(
            "progress",
            "StereoMatchTool.progress_bar",
            "Show a progress bar.",
            "No progress bar.",
        ),
        "keep-mono": (
            {"StereoMatchTool": {"keep_mono": True}},
            "Keep unmatched events as mono events.",
        ),
        "overwrite": (
            {"StereoMatchTool": {"overwrite": True}},
            "Overwrite existing outputs.",
        ),
    }
    classes = [CoincidenceMatcher, ShowerProcessor]

    def setup(self):
        if not self.input_tel1 or not self.input_tel2 or self.output is None:
            raise ValueError("Give --input-tel1, --input-tel2 and --output")
        self.tel2_indices = [
            read_mono_index(path, TEL_2) for path in expand_inputs(self.input_tel2)
        ]
        if not self.tel2_indices:
            raise ValueError(f"No telescope-22 DL1 files in {self.input_tel2}")
        self.matcher = CoincidenceMatcher(parent=self)
        several = len(self.input_tel1) > 1
        if several and not Path(self.output).is_dir():
            raise ValueError(
                f"{self.output}: several --input-tel1 files need an existing output directory"
            )
        self.outputs = {
            Path(path): (
                Path(self.output) / f"{Path(path).stem}_stereo.h5"
                if several
                else Path(self.output)
            )
            for path in self.input_tel1
        }
        for output in self.outputs.values():
            if output.exists() and not self.overwrite:
                raise FileExistsError(f"{output} exists, use --overwrite to replace it")
        #: events of telescope 21 and 22 matched, stereo events and all events written
        self.totals = Counter()
        self.not_matched = []
        self.written = []

    def start(self):
        for tel1_path, output in self.outputs.items():
            index_1 = read_mono_index(tel1_path, TEL_1)
            try:
                self._match_run(index_1, output)
            except NoCoincidence as reason:
                self.log.warning("%s: no stereo events written: %s", tel1_path, reason)
                self.not_matched.append(f"{tel1_path}: no stereo events: {reason}")

    def finish(self):
        totals = self.totals
        lines = list(self.not_matched)
        n_runs = len(self.outputs) - len(self.not_matched)
        if n_runs:
            line = (
                f"{n_runs} run(s): {totals['tel 21']:,} + {totals['tel 22']:,} events in"
                f" (telescope 21 + 22), {totals['stereo']:,} stereo events out"
                f" ({self.matcher.method})"
            )
            if self.keep_mono:
                line += f" and {totals['written'] - totals['stereo']:,} mono events"
            lines.insert(0, line)
        several = len(self.outputs) > 1
        print_summary(
            self, lines, [self.output] if several and self.written else self.written
        )

    # --------------------------------------------------------------- one run
    def _overlapping(self, index_1):
        if index_1.time_range_ns is None:
            raise NoCoincidence("the telescope-21 file has no shower events")
        margin = int(self.overlap_margin_s * 1e9) + abs(
            self.matcher.offset_scan_start_ns
        )
        start, stop = index_1.time_range_ns
        chosen = [
            index
            for index in self.tel2_indices
            if index.time_range_ns is not None
            and index.time_range_ns[0] <= stop + margin
            and index.time_range_ns[1] >= start - margin
        ]
        if not chosen:
            ranges = ", ".join(
                f"{i.path.name} {_span(i.time_range_ns)}" for i in self.tel2_indices
            )
            raise NoCoincidence(
                f"no telescope-22 file overlaps {_span(index_1.time_range_ns)} (files: {ranges})"
            )
        return chosen

    def _match_run(self, index_1, output):
        tel2 = self._overlapping(index_1)
        method = self.matcher.method
        if method == "WhiteRabbitClosest":
            for index in [index_1, *tel2]:
                if not index.has_white_rabbit:
                    raise ValueError(
                        f"{index.path}: no White Rabbit times (array and camera times are equal);"
                        " use --method SlidingWindow"
                    )
        if method == "SWATEventIDs":
            for index in [index_1, *tel2]:
                if index.swat_event_ids is False:
                    raise ValueError(
                        f"{index.path}: event ids are not SWAT numbers; use another --method"
                    )

        file_of = np.concatenate(
            [np.full(len(i.event_id), n) for n, i in enumerate(tel2)]
        )
        row_of = np.concatenate([np.arange(len(i.event_id)) for i in tel2])
        times_2 = np.concatenate(
            [i.time_ns if method != "SlidingWindow" else i.camera_time_ns for i in tel2]
        )
        times_1 = (
            index_1.time_ns if method != "SlidingWindow" else index_1.camera_time_ns
        )
        ids_2 = np.concatenate([i.event_id for i in tel2])
        result = self.matcher(
            times_1, times_2, event_ids_1=index_1.event_id, event_ids_2=ids_2
        )

        self.log.info(
            "%s: %s matched %d pairs; tel 21 %s; tel 22 %s; offset %d ns",
            index_1.path.name,
            method,
            len(result.index_1),
            result.counts_1,
            result.counts_2,
            result.offset_ns,
        )
        print_step(
            self,
            f"{index_1.path.name}: {len(result.index_1)} stereo events ({method}, offset"
            f" {result.offset_ns} ns); tel 21 {dict(result.counts_1)}; tel 22 {dict(result.counts_2)}",
        )
        self.totals.update(
            {
                "tel 21": len(times_1),
                "tel 22": len(times_2),
                "stereo": len(result.index_1),
            }
        )

        partners = {
            int(i1): (
                int(file_of[i2]),
                int(row_of[i2]),
                int(times_1[i1]),
                int(times_2[i2]),
                int(dt),
            )
            for i1, i2, dt in zip(result.index_1, result.index_2, result.delta_t_ns)
        }
        with AtomicOutput(output, overwrite=True) as part:
            pairs = self._write(index_1, tel2, partners, result, part.temporary)
            self._write_coincidence_tables(part.temporary, pairs, result)
            part.commit()
        png = output.with_name(output.stem + "_coincidences.png")
        self._plot(result, png)
        self.written += [output, png]
        self.log.info("wrote %s", output)

    def _write(self, index_1, tel2, partners, result, part):
        """Stereo events through ShowerProcessor and ctapipe's DataWriter; returns the pairs written."""
        tel2_events = self._load_tel2_events(tel2, partners)
        pointing = self._pointing(index_1.path)
        shower_processor = ShowerProcessor(
            subarray=SubarrayDescription.from_hdf(index_1.path), parent=self
        )
        counts = Counter()
        pairs = []
        with HDF5EventSource(index_1.path) as source:
            has_images = self.write_images and "DL1_IMAGES" in {
                d.name for d in source.datalevels
            }
            writer = DataWriter(
                event_source=source,
                output_path=part,
                parent=self,
                overwrite=True,
                write_dl1_parameters=True,
                write_dl1_images=has_images,
                write_dl2=True,
            )
            writer.context_metadata = _context_metadata(result)
            with writer:
                row = 0
                for event in tqdm(
                    source,
                    desc=index_1.path.name,
                    unit=" events",
                    disable=not self.progress_bar,
                ):
                    if event.trigger.event_type != EventType.SUBARRAY:
                        continue
                    partner = partners.get(row)
                    row += 1
                    if partner is None:
                        counts["tel 21 mono"] += 1
                        if not self.keep_mono:
                            continue
                    else:
                        other = tel2_events[partner[:2]]
                        self._add_telescope(event, other)
                        pairs.append(
                            {
                                "obs_id": event.index.obs_id,
                                "event_id": event.index.event_id,
                                "obs_id_2": other.index.obs_id,
                                "event_id_2": other.index.event_id,
                                "time_1": partner[2],
                                "time_2": partner[3],
                                "delta_t": partner[4],
                            }
                        )
                    self._finish_event(event, pointing, shower_processor, writer)
                if self.keep_mono:
                    for n, index in enumerate(tel2):
                        matched_rows = {p[1] for p in partners.values() if p[0] == n}
                        self._write_tel2_monos(
                            index,
                            matched_rows,
                            index_1,
                            pointing,
                            shower_processor,
                            writer,
                        )
        self.log.info("written: %d stereo events, %s", len(pairs), dict(counts))
        return pairs

    def _load_tel2_events(self, tel2, partners):
        wanted = {}
        for file_number, row, *_ in partners.values():
            wanted.setdefault(file_number, set()).add(row)
        events = {}
        for file_number, rows in wanted.items():
            with HDF5EventSource(tel2[file_number].path) as source:
                row = 0
                for event in source:
                    if event.trigger.event_type != EventType.SUBARRAY:
                        continue
                    if row in rows:
                        events[(file_number, row)] = event
                    row += 1
        return events

    def _write_tel2_monos(
        self, index, matched_rows, index_1, pointing, shower_processor, writer
    ):
        swat = index.swat_event_ids
        with HDF5EventSource(index.path) as source:
            row = 0
            for event in source:
                if event.trigger.event_type != EventType.SUBARRAY:
                    continue
                if row not in matched_rows:
                    event_id = event.index.event_id + (
                        0 if swat else self.mono_event_id_offset
                    )
                    event.index = EventIndexContainer(
                        obs_id=index_1.obs_id, event_id=event_id
                    )
                    self._finish_event(event, pointing, shower_processor, writer)
                row += 1

    @staticmethod
    def _add_telescope(event, other):
        event.dl1.tel[TEL_2] = other.dl1.tel[TEL_2]
        event.trigger.tel[TEL_2] = other.trigger.tel[TEL_2]
        event.trigger.tels_with_trigger = np.array([TEL_1, TEL_2], dtype=np.int16)

    def _finish_event(self, event, pointing, shower_processor, writer):
        """Pointing of every telescope of the event, stereo geometry, write."""
        if pointing is not None:
            for tel_id in event.trigger.tels_with_trigger:
                time = event.trigger.tel[tel_id].time
                alt, az = pointing[tel_id].altaz_rad(int(tai_ns(time)))
                event.monitoring.tel[tel_id].pointing = TelescopePointingContainer(
                    altitude=alt * u.rad, azimuth=az * u.rad
                )
            first = event.monitoring.tel[event.trigger.tels_with_trigger[0]].pointing
            event.monitoring.pointing.array_altitude = first.altitude
            event.monitoring.pointing.array_azimuth = first.azimuth
        shower_processor(event)
        writer(event)
        self.totals["written"] += 1

    def _pointing(self, path):
        """TrackingPointing per telescope from the ICRS pointing of the observation block, or None."""
        block = read_table(path, "/configuration/observation/observation_block")
        ra = block["subarray_pointing_lon"].quantity[0].to_value(u.deg)
        dec = block["subarray_pointing_lat"].quantity[0].to_value(u.deg)
        if not (np.isfinite(ra) and np.isfinite(dec)):
            self.log.warning(
                "%s: no pointing, stereo geometry cannot be reconstructed", path
            )
            return None
        return {
            tel_id: TrackingPointing(
                ra,
                dec,
                EarthLocation(lon=lon * u.deg, lat=lat * u.deg, height=height * u.m),
            )
            for tel_id, (lon, lat, height) in self.telescope_locations.items()
        }

    def _write_coincidence_tables(self, part, pairs, result):
        """Pointing, the original ids and times of every pair, the match statistics."""
        add_pointing_tables(part, self.telescope_locations)
        pair_table = Table(
            {
                "obs_id": np.array([p["obs_id"] for p in pairs], dtype=np.int64),
                "event_id": np.array([p["event_id"] for p in pairs], dtype=np.int64),
                "tel_021_event_id": np.array(
                    [p["event_id"] for p in pairs], dtype=np.int64
                ),
                "tel_022_obs_id": np.array(
                    [p["obs_id_2"] for p in pairs], dtype=np.int64
                ),
                "tel_022_event_id": np.array(
                    [p["event_id_2"] for p in pairs], dtype=np.int64
                ),
                "tel_021_time_ns": np.array(
                    [p["time_1"] for p in pairs], dtype=np.int64
                ),
                "tel_022_time_ns": np.array(
                    [p["time_2"] for p in pairs], dtype=np.int64
                ),
                "delta_t_ns": np.array([p["delta_t"] for p in pairs], dtype=np.int64),
            }
        )
        pair_table.meta["time_scale"] = (
            "TAI ns since 1970-01-01 (times used for the matching)"
        )
        write_table(pair_table, part, COINCIDENCE_TABLE, overwrite=True)
        summary = Table(
            {
                "method": [result.method],
                "offset_ns": [result.offset_ns],
                "n_stereo": [len(pairs)],
                **{f"tel_021_{k}": [v] for k, v in result.counts_1.items()},
                **{f"tel_022_{k}": [v] for k, v in result.counts_2.items()},
            }
        )
        write_table(summary, part, COINCIDENCE_SUMMARY, overwrite=True)
        if result.scan_offsets_ns is not None:
            scan = Table(
                {
                    "offset_ns": result.scan_offsets_ns,
                    "n_coincidences": result.scan_coincidences,
                }
            )
            write_table(scan, part, OFFSET_SCAN_TABLE, overwrite=True)

    def _plot(self, result, png):
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(7, 4.5), layout="constrained")
        if result.scan_offsets_ns is not None:
            ax.plot(
                result.scan_offsets_ns / 1e6,
                result.scan_coincidences,
                drawstyle="steps-mid",
            )
            ax.axvline(
                result.offset_ns / 1e6,
                color="C1",
                label=f"offset {result.offset_ns / 1e6:.3f} ms",
            )
            ax.set_xlabel("telescope 22 − telescope 21 clock offset [ms]")
            ax.set_ylabel("coincidences")
            ax.legend()
        else:
            ax.hist(result.delta_t_ns, bins=50)
            ax.set_xlabel("Δt of matched pairs [ns]")
            ax.set_ylabel("pairs")
        ax.set_title(f"{result.method}: {len(result.index_1)} matched pairs")
        fig.savefig(png, dpi=80)
        plt.close(fig)


def _span(time_range_ns):
    if time_range_ns is None:
        return "(empty)"
    start, stop = (tai_time(t).utc.isot for t in time_range_ns)
    return f"[{start}, {stop}] UTC"


def _context_metadata(result):
    metadata = {
        "SST1M COINCIDENCE METHOD": result.method,
        "SST1M COINCIDENCE OFFSET_NS": float(result.offset_ns),
    }
    for tel_id, counts in ((21, result.counts_1), (22, result.counts_2)):
        for key, value in counts.items():
            metadata[f"SST1M COINCIDENCE TEL{tel_id:03d} {key.upper()}"] = float(value)
    return metadata


def main():
    """Run the tool."""
    StereoMatchTool().run()


if __name__ == "__main__":
    main()
