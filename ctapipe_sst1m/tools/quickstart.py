"""Write the SST-1M configuration files (data and simulation) into a directory."""

import shutil
from importlib.resources import files
from pathlib import Path

from ctapipe.core import Tool
from ctapipe.core.traits import Path as PathTrait

__all__ = ["QuickStartTool", "CONFIG_FILES"]

#: configuration files shipped with the package
CONFIG_FILES = ("sst1m.yaml", "sst1m_mc.yaml", "sst1m_models.yaml", "sst1m_irf.yaml")


class QuickStartTool(Tool):
    """
    Write sst1m.yaml (real data), sst1m_mc.yaml (simulations), sst1m_models.yaml
    (random forests, DL2, performance) and sst1m_irf.yaml (IRFs) into a directory,
    ready for ``ctapipe-process --config sst1m.yaml``,
    ``sst1m-train-models -c sst1m_models.yaml`` and ``sst1m-make-irfs -c sst1m_irf.yaml``.
    Existing files are kept unless --overwrite is given.
    """

    name = "sst1m-quickstart"
    description = __doc__
    examples = """
    sst1m-quickstart            # into the current directory
    sst1m-quickstart my_analysis
    """

    workdir = PathTrait(
        default_value=Path("."),
        directory_ok=True,
        file_ok=False,
        help="Directory to write the configuration files into (created if missing).",
    ).tag(config=True)

    aliases = {("d", "workdir"): "QuickStartTool.workdir"}

    def parse_command_line(self, argv=None):
        """Accept the directory as a positional argument too."""
        super().parse_command_line(argv)
        if self.extra_args:
            self.workdir = Path(self.extra_args[0])

    def start(self):
        self.workdir.mkdir(parents=True, exist_ok=True)
        resources = files("ctapipe_sst1m") / "resources"
        for name in CONFIG_FILES:
            target = self.workdir / name
            if target.exists() and not self.overwrite:
                self.log.warning(
                    "%s exists, keeping it (use --overwrite to replace)", target
                )
                continue
            with (resources / name).open("rb") as source, target.open("wb") as out:
                shutil.copyfileobj(source, out)
            self.log.info("wrote %s", target)
            print(f"wrote {target}")


def main():
    """Run the tool."""
    QuickStartTool().run()


if __name__ == "__main__":
    main()
