"""sst1m-dl3-index: the hdu and observation index files of DL3 files, for gammapy."""

from pathlib import Path

from astropy.io import fits
from ctapipe.core import Provenance, Tool, ToolConfigurationError
from ctapipe.core.traits import Bool, List
from ctapipe.core.traits import Path as PathTrait

from ..dl3.validation import check_data_store
from ..io.gadf import write_index_files
from .failures import reports_full_disk
from .summary import print_summary

__all__ = ["DL3IndexTool", "find_dl3_files", "main"]


def find_dl3_files(paths):
    """
    The DL3 files among paths and in directories (recursively).

    A DL3 file is a ``*.fits`` or ``*.fits.gz`` with an ``EVENTS`` HDU.
    """
    found = []
    for path in map(Path, paths):
        candidates = (
            sorted(p for p in path.rglob("*.fits*") if not p.name.endswith(".part"))
            if path.is_dir()
            else [path]
        )
        for candidate in candidates:
            try:
                with fits.open(candidate) as hdul:
                    if "EVENTS" in hdul:
                        found.append(candidate)
            except OSError:
                continue
    return found


class DL3IndexTool(Tool):
    """
    Write hdu-index.fits.gz and obs-index.fits.gz for DL3 files of one night or many
    (directories are searched recursively; paths in the index are relative to the
    output directory), then run gammapy's checks of the data store.
    """

    name = "sst1m-dl3-index"
    description = __doc__
    examples = """
    sst1m-dl3-index --input dl3/ --output-dir dl3/
    sst1m-dl3-index --input nights/2026-11-*/dl3 --output-dir crab_all_nights/
    """

    input_paths = List(
        PathTrait(exists=True),
        default_value=[],
        help="DL3 files or directories (searched recursively), repeat the option.",
    ).tag(config=True)
    output_dir = PathTrait(
        default_value=None,
        allow_none=True,
        file_ok=False,
        help="Where the index files go; default: the input directory when there is one.",
    ).tag(config=True)
    check = Bool(
        default_value=True,
        help="Run gammapy's data-store checks and fail on errors.",
    ).tag(config=True)

    aliases = {
        ("i", "input"): "DL3IndexTool.input_paths",
        ("o", "output-dir"): "DL3IndexTool.output_dir",
    }
    flags = {
        "no-check": ({"DL3IndexTool": {"check": False}}, "Skip gammapy's checks."),
    }

    def setup(self):
        if not self.input_paths:
            raise ToolConfigurationError("give --input")
        if self.output_dir is None:
            if len(self.input_paths) == 1 and Path(self.input_paths[0]).is_dir():
                self.output_dir = Path(self.input_paths[0])
            else:
                raise ToolConfigurationError("give --output-dir")
        self.output_dir = Path(self.output_dir)
        self.dl3_files = find_dl3_files(self.input_paths)
        if not self.dl3_files:
            raise ToolConfigurationError(
                f"no DL3 file (FITS with an EVENTS HDU) in {', '.join(map(str, self.input_paths))}"
            )
        self.output_dir.mkdir(parents=True, exist_ok=True)

    @reports_full_disk
    def start(self):
        self.index_files = write_index_files(self.dl3_files, self.output_dir)
        self.problems = check_data_store(self.output_dir) if self.check else []

    @reports_full_disk
    def finish(self):
        for path in self.index_files:
            Provenance().add_output_file(path, role="DL3 index", add_meta=False)
        lines = [f"{len(self.dl3_files)} DL3 files indexed"]
        if self.check:
            lines.append(
                f"gammapy checks: {len(self.problems)} problems"
                if self.problems
                else "gammapy checks: no problem"
            )
            lines += [f"{p.get('obs_id', '')} {p['msg']}" for p in self.problems]
        print_summary(self, lines, self.index_files)
        if any(p["level"] == "error" for p in self.problems):
            self.log.critical("the data store in %s has errors", self.output_dir)
            self.exit(1)


def main():
    """Run the tool."""
    DL3IndexTool().run()


if __name__ == "__main__":
    main()
