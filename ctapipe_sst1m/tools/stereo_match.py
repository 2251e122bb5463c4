"""sst1m-stereo-match: find the coincident events of the two SST-1M telescopes."""

from collections import Counter
from datetime import timedelta
from pathlib import Path

from ctapipe.core import Tool, ToolConfigurationError
from ctapipe.core.traits import Bool, Float, Int, List, flag
from ctapipe.core.traits import Path as PathTrait
from ctapipe.reco import ShowerProcessor

from ..instrument import DATA_TEL_IDS, telescope_locations_trait
from ..io.atomic_output import AtomicOutput, check_not_an_input
from ..io.mono_dl1 import expand_inputs, read_mono_index
from ..stereo.coincidence import CoincidenceMatcher, OffsetNotFound
from ..stereo.merge import (
    NoCoincidence,
    check_method,
    match_run,
    overlapping_runs,
    write_stereo_events,
)
from ..stereo.plots import plot_coincidences
from ..stereo.tables import write_coincidence_tables
from ..time import tai_time
from .failures import reports_full_disk
from .summary import print_step, print_summary

__all__ = ["StereoMatchTool"]

TEL_1, TEL_2 = DATA_TEL_IDS


def _night(time_ns):
    """The night of a time: the UTC date 12 h earlier (as the obs_id of SST-1M runs)."""
    return (
        (tai_time(time_ns).utc.to_datetime() - timedelta(hours=12)).date().isoformat()
    )


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
        min=0.0,
        help="Telescope-22 files overlapping the run within this margin (s) are used.",
    ).tag(config=True)

    mono_event_id_offset = Int(
        default_value=10_000_000_000,
        min=0,
        help=(
            "Without SWAT ids, unmatched telescope-22 events kept with --keep-mono get"
            " their event id plus this offset, so that ids stay unique."
        ),
    ).tag(config=True)

    telescope_locations = telescope_locations_trait()

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
            raise ToolConfigurationError("Give --input-tel1, --input-tel2 and --output")
        several = len(self.input_tel1) > 1
        if several and not Path(self.output).is_dir():
            raise ToolConfigurationError(
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
        self.matcher = CoincidenceMatcher(parent=self)
        try:
            if self.matcher.method == "SlidingWindow":
                self.matcher.scan_offsets_ns()
            # a directory may hold the DL1 files of both telescopes
            tel2_paths = expand_inputs(self.input_tel2, tel_id=TEL_2)
            for output in self.outputs.values():
                check_not_an_input(output, [*self.input_tel1, *tel2_paths])
                if output.exists() and not self.overwrite:
                    raise ValueError(f"{output} exists, use --overwrite to replace it")
            self.tel2_indices = [read_mono_index(path, TEL_2) for path in tel2_paths]
            if not self.tel2_indices:
                raise ValueError(f"No telescope-22 DL1 files in {self.input_tel2}")
            self.tel1_indices = {
                path: read_mono_index(path, TEL_1) for path in self.outputs
            }
            self.runs_2 = self._choose_runs_2()
        except ValueError as err:
            raise ToolConfigurationError(str(err)) from None
        #: events of telescope 21 and 22 matched, stereo events and all events written
        self.totals = Counter()
        self.not_matched = []
        self.failed = []
        self.written = []

    def _choose_runs_2(self):
        """
        The telescope-22 runs of each telescope-21 run, or why there are none.

        Raises
        ------
        ValueError
            For a telescope-21 run of a night that no telescope-22 input is of, or
            runs the method cannot match.
        """
        nights_2 = {}
        for index in self.tel2_indices:
            if index.time_range_ns is not None:
                nights_2.setdefault(_night(index.time_range_ns[0]), []).append(index)
        margin_ns = int(self.overlap_margin_s * 1e9) + abs(
            self.matcher.offset_scan_start_ns
        )
        runs_2 = {}
        for path, index_1 in self.tel1_indices.items():
            if index_1.time_range_ns is not None and nights_2:
                night = _night(index_1.time_range_ns[0])
                if night not in nights_2:
                    others = ", ".join(
                        f"{night_2} ({', '.join(i.path.name for i in indices)})"
                        for night_2, indices in sorted(nights_2.items())
                    )
                    raise ValueError(
                        f"{path} is of the night {night}, the telescope-22 inputs are of"
                        f" the night(s) {others}: give the telescope-22 files of the"
                        " same night"
                    )
            try:
                runs_2[path] = overlapping_runs(index_1, self.tel2_indices, margin_ns)
            except NoCoincidence as reason:
                runs_2[path] = reason
                continue
            check_method(self.matcher.method, [index_1, *runs_2[path]])
        return runs_2

    @reports_full_disk
    def start(self):
        for tel1_path, output in self.outputs.items():
            runs_2 = self.runs_2[tel1_path]
            if isinstance(runs_2, NoCoincidence):
                self._not_matched(tel1_path, runs_2)
                continue
            try:
                self._match_run(self.tel1_indices[tel1_path], runs_2, output)
            except OffsetNotFound as err:
                self.log.error("%s: %s", tel1_path, err)
                self.failed.append(tel1_path)
            except NoCoincidence as reason:
                self._not_matched(tel1_path, reason)

    def _not_matched(self, tel1_path, reason):
        """A run without stereo events: no output, a warning and a summary line."""
        self.log.warning("%s: 0 stereo events, no output: %s", tel1_path, reason)
        self.not_matched.append(f"{tel1_path}: 0 stereo events, no output: {reason}")

    @reports_full_disk
    def finish(self):
        totals = self.totals
        lines = [
            *self.not_matched,
            *(f"{path}: offset scan refused, no output" for path in self.failed),
        ]
        n_runs = len(self.outputs) - len(lines)
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
        if self.failed:
            self.log.critical(
                "%d of %d run(s) failed (errors above), no output for them: %s",
                len(self.failed),
                len(self.outputs),
                ", ".join(map(str, self.failed)),
            )
            self.exit(1)

    # --------------------------------------------------------------- one run
    def _match_run(self, index_1, runs_2, output):
        run = match_run(self.matcher, index_1, runs_2)
        result = run.result
        method = self.matcher.method
        counts = f"tel 21 {dict(result.counts_1)}; tel 22 {dict(result.counts_2)}"
        print_step(
            self,
            f"{index_1.path.name}: {len(result.index_1)} stereo events ({method}, offset"
            f" {result.offset_ns} ns); {counts}",
        )
        if len(result.index_1) == 0 and not self.keep_mono:
            raise NoCoincidence(
                f"no pair ({method}) among {run.n_events_1:,} telescope-21 and"
                f" {run.n_events_2:,} telescope-22 shower events; {counts}"
            )
        self.totals.update(
            {
                "tel 21": run.n_events_1,
                "tel 22": run.n_events_2,
                "stereo": len(result.index_1),
            }
        )
        with AtomicOutput(output, overwrite=True) as part:
            merged = write_stereo_events(
                run,
                index_1,
                runs_2,
                part.temporary,
                parent=self,
                telescope_locations=self.telescope_locations,
                keep_mono=self.keep_mono,
                write_images=self.write_images,
                mono_event_id_offset=self.mono_event_id_offset,
                progress_bar=self.progress_bar,
            )
            self.totals["written"] += merged.n_written
            write_coincidence_tables(
                part.temporary, merged.pairs, result, self.telescope_locations
            )
            part.commit()
        png = output.with_name(output.stem + "_coincidences.png")
        plot_coincidences(result).savefig(png, dpi=80)
        self.written += [output, png]
        self.log.info("wrote %s", output)


def main():
    """Run the tool."""
    StereoMatchTool().run()


if __name__ == "__main__":
    main()
