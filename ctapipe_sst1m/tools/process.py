"""sst1m-process: ctapipe-process for SST-1M data, with pointing and an atomic output."""

import os
from pathlib import Path

from ctapipe.tools.process import ProcessorTool

from ..io.event_source import SST1MEventSource
from ..io.pointing_table import add_pointing_tables

__all__ = ["SST1MProcessorTool"]

PART_SUFFIX = ".part"


class SST1MProcessorTool(ProcessorTool):
    """
    Process SST-1M data to DL1 (and DL2) exactly like ctapipe-process, and in addition:

    * write the telescope pointing time series (``/dl0/monitoring/telescope/pointing``)
      of real data, which ctapipe-process leaves out for observed data;
    * write to ``<output>.part`` and rename to the output only when everything
      succeeded, so that a failed run leaves no half-written file.

    Options and configuration files are those of ctapipe-process.
    """

    name = "sst1m-process"
    description = __doc__
    examples = """
    sst1m-process --input SST1M1_20240304_0012.fits.fz --output dl1.h5 --config sst1m.yaml
    """

    def setup(self):
        self.output_path = Path(self.config.DataWriter.output_path)
        if self.output_path.exists() and not (self.overwrite or self.config.DataWriter.get("overwrite")):
            raise FileExistsError(f"{self.output_path} exists, use --overwrite to replace it")
        self.part_path = self.output_path.with_name(self.output_path.name + PART_SUFFIX)
        self.part_path.unlink(missing_ok=True)
        self.config.DataWriter.output_path = str(self.part_path)
        self.config.DataWriter.overwrite = True
        try:
            super().setup()
        except BaseException:
            self.part_path.unlink(missing_ok=True)
            raise

    def start(self):
        try:
            super().start()
        except BaseException:
            self._discard_output()
            raise

    def finish(self):
        try:
            super().finish()
            # close the event source and the DataWriter before post-processing
            self._exit_stack.close()
            if isinstance(self.event_source, SST1MEventSource):
                tel_ids = add_pointing_tables(
                    self.part_path, self.event_source.telescope_locations
                )
                self.log.info("pointing written for telescopes %s", tel_ids)
        except BaseException:
            self._discard_output()
            raise
        os.replace(self.part_path, self.output_path)
        self.log.info("wrote %s", self.output_path)

    def _discard_output(self):
        self._exit_stack.close()
        self.part_path.unlink(missing_ok=True)


def main():
    """Run the tool."""
    SST1MProcessorTool().run()


if __name__ == "__main__":
    main()
