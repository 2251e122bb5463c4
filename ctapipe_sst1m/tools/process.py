"""sst1m-process: ctapipe-process for SST-1M data, with pointing and an atomic output."""

from contextlib import contextmanager
from pathlib import Path

import numpy as np
import tables
from ctapipe.core import ToolConfigurationError
from ctapipe.core.traits import Bool, Float, TelescopeParameter
from ctapipe.io.hdf5dataformat import (
    DL1_SUBARRAY_TRIGGER_TABLE,
    DL1_TEL_PARAMETERS_GROUP,
)
from ctapipe.tools.process import ProcessorTool
from traitlets import TraitError, TraitType

from ..calibration.nsb import NsbCalibrator
from ..event_source import SST1MEventSource
from ..image.cleaning import ImageCleanerSST
from ..image.processor import NumbaImageProcessor
from ..io.atomic_output import AtomicOutput
from ..io.dl1_monitoring import write_nsb_monitoring
from ..io.pointing_table import add_pointing_tables
from ..io.zfits_check import ZFitsError
from ..simulation.source import SST1MSimulationSource
from .failures import reports_full_disk
from .summary import print_summary

__all__ = ["SST1MProcessorTool"]

#: bytes per MB (PyTables' unit)
MB = 2**20


class SST1MProcessorTool(ProcessorTool):
    """
    Process SST-1M data to DL1 (and DL2) exactly like ctapipe-process, and in addition:

    * write the telescope pointing time series (``/dl0/monitoring/telescope/pointing``)
      of real data, which ctapipe-process leaves out for observed data;
    * write the SST-1M monitoring of real data: pedestal statistics per time
      window (``/dl1/monitoring/telescope/pedestal``), the pedestal pixel-charge
      histogram (``/dl1/monitoring/telescope/pixel_charge_histogram``), the NSB
      level and voltage drop of every event (``/dl1/event/telescope/nsb``) and a
      processing summary per telescope (``/dl1/service/sst1m_processing``);
    * ``--reclean FIRST_PASS.h5``: clean with the pedestal statistics of the time
      windows of a first pass instead of the sliding buffer;
    * write to a temporary name unique to the run (``<output>.<pid>.<random>.part``)
      and rename it to the output only when everything succeeded, so that a failed
      run leaves no half-written file and two runs never share a temporary file;
    * refuse a corrupt raw file or a bad option in setup, naming the file or the
      option (also for a bad element of a per-telescope option), with exit status 2;
    * compute the image parameters with `NumbaImageProcessor` (equal to ctapipe's
      ImageProcessor to float precision, several times faster;
      ``--SST1MProcessorTool.numba_image_parameters=False`` for ImageProcessor);
    * show a progress bar (``--no-progress`` for batch jobs) and print a summary at
      the end: events read and written, images with pixels after cleaning, NSB level
      (``--quiet`` for none).

    Options and configuration files are those of ctapipe-process.
    """

    name = "sst1m-process"
    description = __doc__
    examples = """
    sst1m-process --input SST1M1_20240304_0012.fits.fz --output dl1.h5 --config sst1m.yaml
    sst1m-process --input SST1M1_20240304_0012.fits.fz --output dl1_recleaned.h5 \\
        --config sst1m.yaml --reclean dl1.h5
    """

    aliases = {
        **ProcessorTool.aliases,
        "reclean": "NsbCalibrator.recleaning_statistics_path",
    }
    classes = ProcessorTool.classes + [NsbCalibrator]

    progress_bar = Bool(
        default_value=True,
        help="Show a progress bar during event processing (--no-progress: none).",
    ).tag(config=True)

    numba_image_parameters = Bool(
        default_value=True,
        help=(
            "Compute the image parameters with NumbaImageProcessor (one compiled call per"
            " image, the same parameters as ImageProcessor to float precision) instead of"
            " ctapipe's ImageProcessor; both take the ImageProcessor options."
        ),
    ).tag(config=True)

    hdf5_io_buffer_mb = Float(
        default_value=1.0,
        min=0.0625,
        help=(
            "Write buffer of each table of the output file (MB; PyTables' IO_BUFFER_SIZE)."
            " PyTables' default, 16 MB, holds about 1,400 rows of the image table before"
            " writing them; 1 MB keeps the memory flat (30 MB less at the peak) at the"
            " same speed."
        ),
    ).tag(config=True)

    def setup(self):
        source_config = self.config.SST1MEventSource
        self.output = AtomicOutput(
            self.config.DataWriter.output_path,
            overwrite=self.overwrite or self.config.DataWriter.get("overwrite", False),
            inputs=[
                self.config.EventSource.get("input_url"),
                source_config.get("input_url"),
                *source_config.get("input_urls", []),
            ],
        )
        self.config.DataWriter.output_path = str(self.output.temporary)
        try:
            # the output file takes PyTables' parameters when the DataWriter opens it
            with _pytables_parameter(
                "IO_BUFFER_SIZE", int(self.hdf5_io_buffer_mb * MB)
            ):
                super().setup()
            if self.numba_image_parameters:
                self.process_images = NumbaImageProcessor(
                    subarray=self.event_source.subarray, parent=self
                )
        except ZFitsError as err:
            self.output.discard()
            raise ToolConfigurationError(str(err)) from err
        except TraitError as err:
            self.output.discard()
            raise _naming_the_option(err, self.classes) from err
        except BaseException:
            self.output.discard()
            raise

    @reports_full_disk
    def start(self):
        try:
            super().start()
        except BaseException:
            self._discard_output()
            raise

    @reports_full_disk
    def finish(self):
        try:
            super().finish()
            summary = []
            if isinstance(self.event_source, SST1MEventSource):
                self.event_source.nsb_calibrator.finish()
                summary = [
                    self._summary_row(tel_id)
                    for tel_id in self.event_source.subarray.tel
                    if self.event_source.nsb_calibrator.counts[tel_id]
                ]
                self.write.context_metadata = _context_metadata(summary)
            # close the event source and the DataWriter before post-processing
            self._exit_stack.close()
            if isinstance(self.event_source, SST1MEventSource):
                self._write_sst1m_outputs(summary)
        except BaseException:
            self._discard_output()
            raise
        self.output.commit()
        self.log.info("wrote %s", self.output.path)
        print_summary(self, self._console_summary(summary), [self.output.path])

    def _write_sst1m_outputs(self, summary):
        source = self.event_source
        if _written_counts(self.output.temporary)[0]:
            tel_ids = add_pointing_tables(
                self.output.temporary, source.telescope_locations
            )
            self.log.info("pointing written for telescopes %s", tel_ids)
        else:
            self.log.warning("no events written, so no pointing table")
        for row in summary:
            self.log.info(
                "tel %d: %d pedestal events, average fraction of pixels with raised picture"
                " threshold %.4f, NSB level %.3f p.e.",
                row["tel_id"],
                row["n_pedestal_events"],
                row["mean_raised_threshold_fraction"],
                row["mean_nsb_level_pe"],
            )
        write_nsb_monitoring(self.output.temporary, source.nsb_calibrator, summary)

    def _summary_row(self, tel_id):
        """Counts and settings of one telescope for /dl1/service/sst1m_processing."""
        source = self.event_source
        nsb = source.nsb_calibrator
        counts = nsb.counts[tel_id]
        cleaner = self.process_images.clean
        raised = np.nan
        if isinstance(cleaner, ImageCleanerSST) and cleaner.n_images[tel_id]:
            raised = cleaner.raised_fraction_sum[tel_id] / cleaner.n_images[tel_id]
        levels = [
            record.nsb_level_pe
            for record in nsb.event_records
            if record.tel_id == tel_id and np.isfinite(record.nsb_level_pe)
        ]
        target = source.target
        return {
            "tel_id": tel_id,
            "n_shower_events": source.event_counts["SUBARRAY"],
            "n_pedestal_events": counts["pedestal events"],
            "n_unknown_events": source.event_counts["UNKNOWN"],
            "n_events_without_pedestal_statistics": counts[
                "events without pedestal statistics"
            ],
            "n_events_with_dead_pixels": counts["events with dead pixels"],
            "n_events_with_interpolated_pixels": counts[
                "events with interpolated pixels"
            ],
            "n_interpolated_pixels": counts["interpolated pixels"],
            "n_events_with_saturated_pixels": counts["events with saturated pixels"],
            "n_saturated_pixels": counts["saturated pixels"],
            "mean_raised_threshold_fraction": raised,
            "mean_nsb_level_pe": float(np.mean(levels)) if levels else np.nan,
            "nsb_rate_mhz": nsb.nsb_rate(tel_id) or np.nan,
            "calibration_file": source.r0_r1.calibration_files.get(tel_id, ""),
            "window_transmittance_file": str(
                nsb.window_transmittance_path.tel[tel_id] or ""
            ),
            "target": target.name if target else "",
            "wobble": target.wobble if target else "",
            "pointing_ra_deg": target.ra_deg if target else np.nan,
            "pointing_dec_deg": target.dec_deg if target else np.nan,
            "swat_event_ids": source.uses_swat,
            "camera_clock_scale": "TAI" if source.camera_clock_is_tai else "UTC",
            "voltage_drop_correction": nsb.voltage_drop_mode,
        }

    def _console_summary(self, summary):
        """The lines of the final summary: events read and written, images, NSB level."""
        source = self.event_source
        line = Path(source.input_url).name
        if isinstance(source, SST1MEventSource):
            if len(source.file_paths) > 1:
                line += f" and {len(source.file_paths) - 1} more files"
            counts = ", ".join(
                f"{n:,} {kind}" for kind, n in sorted(source.event_counts.items())
            )
            line += f": read {counts} events"
        elif isinstance(source, SST1MSimulationSource):
            line += f": {source.n_thrown:,} showers simulated, {source.n_triggered:,} triggered"
        n_events, images = _written_counts(self.output.path)
        lines = [f"{line}; {n_events:,} events written"]
        nsb = {row["tel_id"]: row for row in summary}
        for tel_id, (n_images, n_cleaned) in images.items():
            line = f"tel {tel_id}: {n_cleaned:,} of {n_images:,} images with pixels after cleaning"
            if tel_id in nsb:
                row = nsb[tel_id]
                line += (
                    f"; NSB level {row['mean_nsb_level_pe']:.2f} p.e."
                    f" from {row['n_pedestal_events']:,} pedestal events"
                )
            lines.append(line)
        return lines

    def _discard_output(self):
        self._exit_stack.close()
        self.output.discard()


@contextmanager
def _pytables_parameter(name, value):
    """Set one of PyTables' default file parameters (``tables.parameters``) for a while."""
    previous = getattr(tables.parameters, name)
    setattr(tables.parameters, name, value)
    try:
        yield
    finally:
        setattr(tables.parameters, name, previous)


def _naming_the_option(error, classes):
    """
    A TraitError that names the option, for one raised by an element of a
    TelescopeParameter.

    traitlets reports a bad element of a container trait without the name of the
    option: ``('abc', 'a float', <Float>, ...)``, or a message followed by the
    traits. The last trait of that chain is the element trait of one
    TelescopeParameter of one of ``classes``; the error is returned unchanged if
    none is found.
    """
    chain = [arg for arg in error.args[1:] if isinstance(arg, TraitType)]
    if not chain:
        return error
    for cls in classes:
        for name, trait in cls.class_traits(config=True).items():
            # ctapipe's TelescopeParameter keeps its element trait in ``_trait``
            if isinstance(trait, TelescopeParameter) and trait._trait is chain[-1]:
                option = f"{cls.__name__}.{name}"
                if len(error.args) == 1 + len(chain):  # (message, *chain)
                    problem = error.args[0]
                else:
                    value, expected = error.args[:2]
                    problem = f"expected {expected}, not {value!r}"
                return TraitError(
                    f"{option}: {problem} (give one value for every telescope or"
                    " rules ['type', pattern, value] / ['id', tel_id, value])"
                )
    return error


def _context_metadata(summary):
    """The processing summary as DataWriter context metadata (``CONTEXT SST1M TEL<id> <KEY>``)."""
    return {
        f"SST1M TEL{row['tel_id']:03d} {key.upper()}": value
        if isinstance(value, str)
        else float(value)
        for row in summary
        for key, value in row.items()
        if key != "tel_id"
    }


def _written_counts(path):
    """
    Subarray events of a DL1 file, and per telescope its images and those with
    pixels after cleaning: ``n_events, {tel_id: (n_images, n_cleaned)}``.
    """
    with tables.open_file(path) as h5file:
        n_events = (
            h5file.get_node(DL1_SUBARRAY_TRIGGER_TABLE).nrows
            if DL1_SUBARRAY_TRIGGER_TABLE in h5file
            else 0
        )
        images = {}
        if DL1_TEL_PARAMETERS_GROUP in h5file:
            for table in h5file.iter_nodes(DL1_TEL_PARAMETERS_GROUP, classname="Table"):
                # -1: no parameters (the image fails ImageProcessor's quality query)
                n_pixels = table.col("morphology_n_pixels")
                images[int(table.name.removeprefix("tel_"))] = (
                    len(n_pixels),
                    int(np.count_nonzero(n_pixels > 0)),
                )
    return n_events, images


def main():
    """Run the tool."""
    SST1MProcessorTool().run()


if __name__ == "__main__":
    main()
