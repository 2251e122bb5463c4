"""sst1m-simulate: a fast SST-1M simulation to DL1 (or to raw zfits runs)."""

from importlib.resources import files
from pathlib import Path

import numpy as np
from ctapipe.core import Tool
from ctapipe.core.tool import run_tool
from ctapipe.core.traits import Bool, flag
from ctapipe.core.traits import Path as PathTrait
from ctapipe.tools.process import ProcessorTool
from traitlets.config import Config

from ..instrument import SIMULATION_TEL_IDS, sst1m_subarray
from ..io.atomic_output import AtomicOutput
from ..io.simulation_card import SimulationCard, SimulationCardOptions, write_card
from ..plotting import plot_simulation_overview
from ..simulation.camera import CameraSimulator
from ..simulation.images import ShowerImager
from ..simulation.observation import ObservationSimulator
from ..simulation.schedule import ObservationSchedule
from ..simulation.source import SST1MSimulationSource
from .failures import reports_full_disk
from .summary import print_summary

__all__ = ["SimulateTool"]

#: the components of the simulation, configured from the tool's configuration
SIMULATION_CLASSES = (SST1MSimulationSource, ShowerImager, CameraSimulator)


class SimulateTool(Tool, SimulationCardOptions):
    """
    Simulate gamma or proton showers for the two SST-1M telescopes and process them
    to DL1 exactly like ``ctapipe-process --config sst1m_mc.yaml`` (the simulation
    card is written next to the output and can be processed again with any ctapipe
    tool). Deterministic for a seed and a configuration.

    The options of the card (``--SimulateTool.energy_min_tev`` ...) are those of
    `~ctapipe_sst1m.io.simulation_card.SimulationCardOptions`; the detector is
    configured through its components (``--CameraSimulator.nsb_rate_mhz=120`` ...).
    """

    name = "sst1m-simulate"
    description = __doc__
    examples = """
    sst1m-simulate --particle gamma --spectrum point --n-showers 20000 --seed 1 --output gamma_point.dl1.h5
    sst1m-simulate --particle proton --spectrum diffuse --n-showers 20000 --seed 2 --output proton.dl1.h5
    sst1m-simulate --particle gamma --spectrum diffuse --n-showers 20000 --seed 3 --CameraSimulator.nsb_rate_mhz=120 --output gamma_nsb120.dl1.h5
    """

    classes = [*SIMULATION_CLASSES, ObservationSimulator, ObservationSchedule]

    output = PathTrait(
        default_value=None, allow_none=True, directory_ok=False, help="DL1 output file."
    ).tag(config=True)
    raw_dir = PathTrait(
        default_value=None,
        allow_none=True,
        directory_ok=True,
        file_ok=False,
        help=(
            "Instead of DL1, write raw zfits runs of telescopes 21 and 22 (White Rabbit and"
            " camera clocks, SWAT numbers, TARGET, interleaved pedestals, several files per"
            " run) and a truth table of the true pairs into this directory."
        ),
    ).tag(config=True)
    observation = Bool(
        default_value=False,
        help=(
            "With --raw-dir: simulate an observation (ObservationSimulator: a source"
            " tracked in wobble mode with cosmic-ray background; ObservationSchedule:"
            " the runs) instead of the card's production."
        ),
    ).tag(config=True)
    progress_bar = Bool(
        default_value=True, help="Show a progress bar over the thrown showers."
    ).tag(config=True)

    aliases = {
        "particle": "SimulateTool.particle",
        "spectrum": "SimulateTool.spectrum",
        "n-showers": "SimulateTool.n_showers",
        "seed": "SimulateTool.seed",
        ("o", "output"): "SimulateTool.output",
        "raw-dir": "SimulateTool.raw_dir",
        "obs-id": "SimulateTool.obs_id",
    }
    flags = {
        **flag(
            "progress",
            "SimulateTool.progress_bar",
            "Show a progress bar over the thrown showers.",
            "No progress bar.",
        ),
        "observation": (
            {"SimulateTool": {"observation": True}},
            "Simulate an observation (with --raw-dir).",
        ),
    }

    def card(self):
        """The simulation card of the configured production."""
        return SimulationCard(**self.card_values())

    def _simulation_config(self):
        """The configuration of the simulation components, for the processing tool."""
        return Config(
            {
                cls.__name__: self.config[cls.__name__]
                for cls in SIMULATION_CLASSES
                if cls.__name__ in self.config
            }
        )

    @reports_full_disk
    def start(self):
        if self.observation:
            if self.raw_dir is None:
                raise ValueError("--observation writes raw runs: give --raw-dir")
            self._write_observation()
            return
        if self.raw_dir is not None:
            self._write_raw_runs()
            return
        if self.output is None:
            raise ValueError("Give --output or --raw-dir")
        output = Path(self.output)
        stem = output.name.removesuffix(".h5").removesuffix(".dl1")
        card_path = output.with_name(stem + ".simcard.yaml")
        write_card(card_path, self.card())
        config = Path(str(files("ctapipe_sst1m") / "resources" / "sst1m_mc.yaml"))
        # the bar of the source counts thrown showers; that of ProcessorTool, triggered
        # events, whose number is unknown
        with AtomicOutput(output, overwrite=self.overwrite) as dl1:
            argv = [
                f"--input={card_path}",
                f"--output={dl1.temporary}",
                f"--config={config}",
                f"--SST1MSimulationSource.progress_bar={self.progress_bar}",
                "--no-progress",
            ]
            if self.quiet:
                argv.append("--quiet")
            # ctapipe-process exactly: the same DL1 as from the card on the command line
            # (raises on failure)
            run_tool(
                ProcessorTool(config=self._simulation_config()), argv=argv, raises=True
            )
            dl1.commit()
        overview = output.with_name(stem + "_overview.png")
        plot_simulation_overview(output, card_path, overview)
        self.log.info("wrote %s (card %s, overview %s)", output, card_path, overview)
        print_summary(self, [self._production()], [card_path, output, overview])

    def _production(self):
        """The simulated production in a few words."""
        card = self.card()
        return (
            f"{card.n_showers * card.shower_reuse:,} {card.particle} showers ({card.spectrum},"
            f" {card.energy_min_tev:g}-{card.energy_max_tev:g} TeV, seed {card.seed})"
        )

    def _write_raw_runs(self):
        from ..simulation.raw_runs import write_simulated_raw_runs

        directory = Path(self.raw_dir)
        directory.mkdir(parents=True, exist_ok=True)
        card_path = directory / f"{self.particle}_{self.spectrum}.simcard.yaml"
        write_card(card_path, self.card())
        paths, truth = write_simulated_raw_runs(
            card_path,
            directory,
            run=self.obs_id,
            progress_bar=self.progress_bar,
            parent=self,
        )
        triggered = {
            tel_id: truth[f"tel_{tel_id:03d}_event_number"] > 0 for tel_id in paths
        }
        in_both = np.logical_and.reduce(list(triggered.values()))
        lines = [
            f"{self._production()}: {len(truth):,} triggered, {np.count_nonzero(in_both):,} in both telescopes"
        ]
        lines += [
            f"telescope {tel_id}: {np.count_nonzero(triggered[tel_id]):,} events in {len(tel_paths)} raw file(s)"
            for tel_id, tel_paths in paths.items()
        ]
        lines.append(
            f"simulation card {card_path.name} and truth table of the pairs next to them"
        )
        print_summary(self, lines, [directory])

    def _write_observation(self):
        from ..simulation.raw_runs import write_observation_run
        from ..simulation.readout import DigiCamReadout

        directory = Path(self.raw_dir)
        subarray = sst1m_subarray(SIMULATION_TEL_IDS)
        # one camera (pixel gains) for the whole observation; each run its own
        # random stream, so that runs simulated separately are the same files
        camera = CameraSimulator(
            subarray, np.random.default_rng([self.seed, 0]), parent=self
        )
        readout = DigiCamReadout(camera)
        imager = ShowerImager(subarray, parent=self)
        simulator = ObservationSimulator(imager, camera, None, parent=self)
        schedule = ObservationSchedule(parent=self)
        lines = []
        for run in schedule.runs(simulator.target, simulator.location):
            rng = np.random.default_rng([self.seed, run.run])
            simulator.rng = imager.rng = camera.rng = rng
            paths, truth = write_observation_run(
                simulator,
                readout,
                directory,
                run.run,
                run.start,
                run.duration_s,
                wobble=run.wobble,
                wobble_offset_deg=run.wobble_offset_deg,
                wobble_angle_deg=run.wobble_angle_deg,
            )
            particles = (
                dict(zip(*np.unique(truth["particle"], return_counts=True)))
                if len(truth)
                else {}
            )
            lines.append(
                f"run {run.run} ({run.wobble}, {run.start.utc.isot[:19]} UTC,"
                f" {run.duration_s:g} s): {len(truth):,} triggered events"
                f" ({', '.join(f'{n:,} {p}' for p, n in particles.items())})"
            )
        lines.append(f"thrown / not imaged / triggered: {simulator.counts}")
        print_summary(self, lines, [directory])


def main():
    """Run the tool."""
    SimulateTool().run()


if __name__ == "__main__":
    main()
