"""sst1m-make-irfs: IRFs of one model node for every telescope set-up, cuts and IRF kind."""

import tempfile
import warnings
from importlib.resources import files
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.io import fits
from ctapipe.core import Provenance, Tool, ToolConfigurationError, run_tool
from ctapipe.core.provenance import MissingReferenceMetadata
from ctapipe.core.traits import AstroQuantity, CaselessStrEnum, Float, Int, List
from ctapipe.core.traits import Path as PathTrait
from ctapipe.io import TableLoader
from ctapipe.irf import OptimizationResult
from ctapipe.irf.binning import DefaultRecoEnergyBins
from ctapipe.tools.compute_irf import IrfTool
from ctapipe.tools.optimize_event_selection import EventSelectionOptimizer
from traitlets.config import Config

from ..io.atomic_output import AtomicOutput, write_fits
from ..io.irf_files import CUT_KINDS, IRF_KINDS, irf_path, write_irf_file
from ..io.irf_setups import SETUPS, setup_by_name
from ..io.model_sets import node_name, read_models_record
from ..irf.cuts import global_cuts
from ..performance.inputs import (
    PerformanceInputError,
    check_primaries,
    check_same_models,
    check_simulated,
    read_simulation_info,
)
from ..performance.sensitivity import (
    plot_sensitivity,
    sensitivity_table,
    theta_cut_table,
)
from .failures import reports_full_disk
from .summary import print_step, print_summary

__all__ = ["IrfStepError", "MakeIrfsTool", "main"]

DEFAULT_CONFIG = Path(str(files("ctapipe_sst1m") / "resources" / "sst1m_irf.yaml"))
#: sections of the configuration that belong to this tool, not to ctapipe's IRF tools
_OWN_SECTIONS = ("MakeIrfsTool",)


class IrfStepError(RuntimeError):
    """A ctapipe IRF tool run by sst1m-make-irfs failed."""


class MakeIrfsTool(Tool):
    """
    IRFs of one model node from simulated DL2 gammas and protons: for every telescope
    set-up (tel_021, tel_022 mono, stereo), cuts (global, efficiency, optimised) and
    kind (point-like with RAD_MAX, full-enclosure with PSF), ctapipe's
    ctapipe-optimize-event-selection and ctapipe-compute-irf with the SST-1M event
    selection, into one GADF file each that also holds the cuts and the node.
    """

    name = "sst1m-make-irfs"
    description = __doc__
    examples = """
    sst1m-make-irfs --gamma-point gamma_point.dl2.h5 --gamma-diffuse gamma_diffuse.dl2.h5 \\
        --proton proton.dl2.h5 --output-dir irfs
    sst1m-make-irfs --gamma-point g.dl2.h5 --proton p.dl2.h5 -o irfs --setup stereo --cuts efficiency
    """

    config_files = List(
        default_value=[str(DEFAULT_CONFIG)],
        help="Configuration files; the packaged sst1m_irf.yaml when none is given.",
    ).tag(config=True)
    gamma_point_file = PathTrait(
        default_value=None,
        allow_none=True,
        exists=True,
        directory_ok=False,
        help="Simulated DL2 point-like gammas (point-like IRFs and the cuts).",
    ).tag(config=True)
    gamma_diffuse_file = PathTrait(
        default_value=None,
        allow_none=True,
        exists=True,
        directory_ok=False,
        help="Simulated DL2 diffuse gammas (full-enclosure IRFs in FoV offset bins).",
    ).tag(config=True)
    proton_file = PathTrait(
        default_value=None,
        allow_none=True,
        exists=True,
        directory_ok=False,
        help="Simulated DL2 diffuse protons (background, optimised cuts, sensitivity).",
    ).tag(config=True)
    output_dir = PathTrait(
        default_value=None,
        allow_none=True,
        file_ok=False,
        help="Root of the IRF tree: {output_dir}/{node}/{setup}/{cuts}/irf_{kind}.fits.gz",
    ).tag(config=True)
    setups = List(
        CaselessStrEnum(list(SETUPS)),
        default_value=[],
        help="Telescope set-ups (repeat the option); default: those the gamma file has events of.",
    ).tag(config=True)
    cut_kinds = List(
        CaselessStrEnum(CUT_KINDS),
        default_value=list(CUT_KINDS),
        help="Cuts: global (constant gammaness and theta), efficiency (fixed gamma efficiency per energy bin), optimised (best point-source sensitivity).",
    ).tag(config=True)
    irf_kinds = List(
        CaselessStrEnum(IRF_KINDS),
        default_value=list(IRF_KINDS),
        help="IRF kinds (repeat the option).",
    ).tag(config=True)
    global_gammaness_cut = Float(
        default_value=0.75, min=0, max=1, help="Gammaness cut of the global cuts."
    ).tag(config=True)
    global_theta_cut = AstroQuantity(
        default_value=0.2 * u.deg,
        physical_type=u.physical.angle,
        help="Theta cut (ON radius) of the global cuts.",
    ).tag(config=True)
    gamma_efficiency = Float(
        default_value=0.7,
        min=0.01,
        max=1,
        help="Fraction of the gammas kept by the gammaness cut in each reconstructed-energy bin (efficiency cuts).",
    ).tag(config=True)
    theta_containment = Float(
        default_value=0.68,
        min=0.01,
        max=1,
        help="Fraction of the gammas inside the theta cut in each bin (efficiency cuts).",
    ).tag(config=True)
    fov_offset_max = AstroQuantity(
        default_value=3 * u.deg,
        physical_type=u.physical.angle,
        help="Largest FoV offset of full-enclosure IRFs from diffuse gammas (bins start at 0).",
    ).tag(config=True)
    fov_offset_n_bins = Int(
        default_value=6,
        min=1,
        help="FoV offset bins of full-enclosure IRFs from diffuse gammas.",
    ).tag(config=True)

    aliases = {
        "gamma-point": "MakeIrfsTool.gamma_point_file",
        "gamma-diffuse": "MakeIrfsTool.gamma_diffuse_file",
        "proton": "MakeIrfsTool.proton_file",
        ("o", "output-dir"): "MakeIrfsTool.output_dir",
        "setup": "MakeIrfsTool.setups",
        "cuts": "MakeIrfsTool.cut_kinds",
        "kind": "MakeIrfsTool.irf_kinds",
        ("c", "config"): "MakeIrfsTool.config_files",
    }

    def setup(self):
        if self.gamma_point_file is None and self.gamma_diffuse_file is None:
            raise ToolConfigurationError("give --gamma-point and/or --gamma-diffuse")
        for value, option in (
            (self.proton_file, "--proton"),
            (self.output_dir, "--output-dir"),
        ):
            if value is None:
                raise ToolConfigurationError(f"give {option}")
        self.output_dir = Path(self.output_dir)
        gammas = [p for p in (self.gamma_point_file, self.gamma_diffuse_file) if p]
        try:
            for path in gammas:
                check_simulated(path)
                check_primaries(path, "gamma")
            check_simulated(self.proton_file)
            check_primaries(self.proton_file, "proton")
            check_same_models([*gammas, self.proton_file])
            self._check_point_like()
        except PerformanceInputError as err:
            raise ToolConfigurationError(str(err)) from err
        self.reference_gammas = self.gamma_point_file or self.gamma_diffuse_file
        self.node = self._node(self.reference_gammas)
        self.irf_setups = [
            setup_by_name(name) for name in self.setups
        ] or self._setups()
        self.models_ids = {
            setup.name: self._models_id(self.reference_gammas, setup)
            for setup in self.irf_setups
        }
        outputs = [
            irf_path(self.output_dir, self.node["name"], s.name, cuts, kind)
            for s in self.irf_setups
            for cuts in self.cut_kinds
            for kind in self.irf_kinds
        ]
        existing = [path for path in outputs if path.exists()]
        if existing and not self.overwrite:
            raise ToolConfigurationError(
                f"{existing[0]} exists ({len(existing)} of the IRF files exist),"
                " use --overwrite to replace them"
            )
        if "optimised" in self.cut_kinds and self.gamma_point_file is None:
            self.log.warning(
                "optimised cuts from diffuse gammas: the signal is every gamma within"
                " the FoV offset range, not a point source"
            )

    def _check_point_like(self):
        """The point-like and diffuse inputs are what their options say."""
        for path, point_like in (
            (self.gamma_point_file, True),
            (self.gamma_diffuse_file, False),
        ):
            if path is None:
                continue
            with TableLoader(path) as loader:
                simulation = read_simulation_info(loader)
            is_point = simulation.viewcone_max == simulation.viewcone_min
            if is_point != point_like:
                option = "--gamma-point" if point_like else "--gamma-diffuse"
                raise PerformanceInputError(
                    f"{path}, given as {option}, was simulated with a viewcone of"
                    f" {simulation.viewcone_min}-{simulation.viewcone_max}"
                )

    def _node(self, path):
        """Pointing (mean of the simulation runs) and NSB of the gamma simulation."""
        with TableLoader(path) as loader:
            blocks = loader.read_observation_information()
        alt = np.mean(u.Quantity(blocks["subarray_pointing_lat"]).to_value(u.deg))
        az = np.mean(u.Quantity(blocks["subarray_pointing_lon"]).to_value(u.deg))
        record = read_models_record(path)
        if record is None:
            raise ToolConfigurationError(
                f"{path} has no models record: make it with sst1m-apply-models"
            )
        nsb = float(record["node"]["nsb_rate_mhz"])
        zenith, azimuth = 90.0 - alt, az % 360
        return {
            "name": node_name(zenith, azimuth, nsb),
            "zenith_deg": round(zenith, 3),
            "azimuth_deg": round(azimuth, 3),
            "nsb_rate_mhz": nsb,
        }

    @staticmethod
    def _models_id(path, setup):
        record = read_models_record(path)
        variant = record["variants"].get(setup.variant)
        if variant is None:
            raise ToolConfigurationError(
                f"{path} has no {setup.variant} predictions for set-up {setup.name}"
            )
        return variant["models_id"]

    def _setups(self):
        """The set-ups with predictions in the gamma file."""
        record = read_models_record(self.reference_gammas)
        with TableLoader(self.reference_gammas) as loader:
            tel_ids = set(loader.subarray.tel_ids)
        found = []
        for setup in SETUPS.values():
            if setup.variant not in record["variants"]:
                continue
            if setup.telescope_level and setup.simulated_tel_id not in tel_ids:
                continue
            found.append(setup)
        if not found:
            raise ToolConfigurationError(
                f"{self.reference_gammas} has predictions for no telescope set-up"
            )
        return found

    def _ctapipe_config(self, setup, extra):
        """The configuration of a ctapipe IRF tool for a set-up."""
        config = Config(
            {
                key: value
                for key, value in self.config.items()
                if key not in _OWN_SECTIONS
            }
        )
        config.merge(Config(setup.loader_config(setup.simulated_tel_id)))
        config.merge(Config(extra))
        return config

    def _run(self, tool_class, config, argv, workdir):
        tool = tool_class(config=config)
        with warnings.catch_warnings():
            # the cuts file of the previous step has no CTAO reference metadata
            warnings.simplefilter("ignore", MissingReferenceMetadata)
            status = run_tool(
                tool, argv=[str(a) for a in argv], cwd=workdir, raises=False
            )
        if status != 0:
            raise IrfStepError(
                f"{tool.name} {' '.join(map(str, argv))} failed (exit status"
                f" {status}; its error is logged above)"
            )

    def _cuts_file(self, setup, cuts, workdir):
        """Make the cuts of one set-up; returns the OptimizationResult file."""
        path = workdir / f"cuts_{setup.name}_{cuts}.fits"
        gamma_file = self.gamma_point_file or self.gamma_diffuse_file
        if cuts == "global":
            # the reconstructed-energy bins the ctapipe tools use
            energy_bins = DefaultRecoEnergyBins(parent=self).reco_energy_bins
            global_cuts(
                self.global_gammaness_cut,
                self.global_theta_cut,
                energy_bins,
                self.fov_offset_max,
                setup.quality_criteria(),
                setup.prefix("classifier"),
            ).write(path)
            return path
        if cuts == "efficiency":
            extra = {
                "EventSelectionOptimizer": {"optimization_algorithm": "PercentileCuts"},
                "GhPercentileCutCalculator": {
                    "target_percentile": round(100 * self.gamma_efficiency)
                },
                "ThetaPercentileCutCalculator": {
                    "target_percentile": round(100 * self.theta_containment)
                },
            }
        else:
            extra = {
                "EventSelectionOptimizer": {
                    "optimization_algorithm": "PointSourceSensitivityOptimizer"
                },
                # the set-up's selection fixes the telescopes per event
                "PointSourceSensitivityOptimizer": {"multiplicity_cuts": [1]},
            }
        self._run(
            EventSelectionOptimizer,
            self._ctapipe_config(setup, extra),
            [
                "--gamma-file",
                gamma_file,
                "--proton-file",
                self.proton_file,
                "--output",
                path,
            ],
            workdir,
        )
        return path

    def _irf(self, setup, cuts, cuts_file, kind, workdir):
        """Run ctapipe-compute-irf; returns the paths of the IRF and benchmark files."""
        point_like = kind == "point-like"
        gamma_file = (
            (self.gamma_point_file or self.gamma_diffuse_file)
            if point_like
            else (self.gamma_diffuse_file or self.gamma_point_file)
        )
        # point gammas: one offset bin, 0 .. fov_offset_max, around the source offset
        n_fov_bins = (
            1 if gamma_file == self.gamma_point_file else self.fov_offset_n_bins
        )
        fov_max = self.fov_offset_max.to_value(u.deg)
        output = workdir / f"irf_{setup.name}_{cuts}_{kind}.fits"
        benchmarks = workdir / f"benchmarks_{setup.name}_{cuts}_{kind}.fits"
        extra = {
            "IrfTool": {"spatial_selection_applied": point_like},
            "DefaultFoVOffsetBins": {
                "fov_offset_min": "0 deg",
                "fov_offset_max": f"{fov_max} deg",
                "fov_offset_n_bins": n_fov_bins,
            },
            "Sensitivity2dMaker": {
                "fov_offset_min": "0 deg",
                "fov_offset_max": f"{fov_max} deg",
                "fov_offset_n_bins": 1,
            },
        }
        argv = [
            "--cuts",
            cuts_file,
            "--gamma-file",
            gamma_file,
            "--proton-file",
            self.proton_file,
            "--output",
            output,
        ]
        argv += ["--benchmark-output", benchmarks]
        self._run(IrfTool, self._ctapipe_config(setup, extra), argv, workdir)
        return output, benchmarks

    @reports_full_disk
    def start(self):
        self.written = []
        try:
            self._make_all()
        except IrfStepError as err:
            self.log.critical("%s", err)
            self.exit(1)

    def _make_all(self):
        with tempfile.TemporaryDirectory(prefix="sst1m-make-irfs-") as tmp:
            workdir = Path(tmp)
            for setup in self.irf_setups:
                for cuts in self.cut_kinds:
                    print_step(self, f"{setup.name}: {cuts} cuts")
                    cuts_file = self._cuts_file(setup, cuts, workdir)
                    for kind in self.irf_kinds:
                        print_step(self, f"{setup.name}: {cuts} cuts, {kind} IRFs")
                        irf_file, benchmarks = self._irf(
                            setup, cuts, cuts_file, kind, workdir
                        )
                        self._write(setup, cuts, kind, irf_file, cuts_file, benchmarks)

    def _write(self, setup, cuts, kind, irf_file, cuts_file, benchmarks):
        path = irf_path(self.output_dir, self.node["name"], setup.name, cuts, kind)
        keywords = {
            "SETUP": (setup.name, "telescope set-up"),
            "NODE": (self.node["name"], "model node"),
            "ZEN_PNT": (self.node["zenith_deg"], "[deg] zenith of the simulations"),
            "AZ_PNT": (self.node["azimuth_deg"], "[deg] azimuth of the simulations"),
            "NSB_MHZ": (self.node["nsb_rate_mhz"], "[MHz] NSB rate of the simulations"),
            "MODELSID": self.models_ids[setup.name],
            "CUTS": (cuts, "global, efficiency or optimised"),
            "IRFKIND": (kind.upper(), "POINT-LIKE or FULL-ENCLOSURE"),
            "E_PREFIX": setup.prefix("regressor"),
            "G_PREFIX": setup.prefix("disp"),
            "C_PREFIX": setup.prefix("classifier"),
            "TELLEVEL": (setup.telescope_level, "telescope-level mono predictions"),
        }
        if cuts == "global":
            keywords["GH_CUT"] = (self.global_gammaness_cut, "global gammaness cut")
            keywords["RAD_MAX"] = (
                self.global_theta_cut.to_value(u.deg),
                "[deg] global theta cut",
            )
        with fits.open(irf_file) as hdus:
            write_irf_file(path, hdus, cuts_file, keywords, overwrite=self.overwrite)
        self.written.append(path)
        self._write_benchmarks(path.parent, kind, benchmarks, cuts_file)

    def _write_benchmarks(self, directory, kind, benchmarks, cuts_file):
        """
        ctapipe's benchmarks (energy bias and resolution, angular resolution); for
        point-like IRFs also the sensitivity (table and plot) and the theta cuts.

        ctapipe computes a sensitivity for full-enclosure IRFs too, from gammas without
        a theta cut against the background inside it: it is left out.
        """
        theta_cuts = OptimizationResult.read(cuts_file).spatial_selection_table
        bench_path = directory / f"benchmarks_{kind}.fits.gz"
        with fits.open(benchmarks) as hdus:
            if kind != "point-like":
                del hdus["SENSITIVITY"]
            write_fits(hdus, bench_path, overwrite=self.overwrite)
            if kind != "point-like":
                self.written.append(bench_path)
                return
            table = sensitivity_table(hdus["SENSITIVITY"], theta_cuts)
        outputs = {
            directory / f"sensitivity_{kind}.ecsv": lambda p: table.write(
                p, format="ascii.ecsv"
            ),
            directory / f"sensitivity_{kind}.png": lambda p: plot_sensitivity(
                table
            ).savefig(p, format="png"),
            directory / "theta_cuts.ecsv": lambda p: theta_cut_table(theta_cuts).write(
                p, format="ascii.ecsv"
            ),
        }
        for path, write in outputs.items():
            with AtomicOutput(path, overwrite=True) as output:
                write(output.temporary)
                output.commit()
        self.written += [bench_path, *outputs]

    @reports_full_disk
    def finish(self):
        for path in self.written:
            Provenance().add_output_file(path, role="IRF", add_meta=False)
        lines = [
            f"node {self.node['name']}: {', '.join(s.name for s in self.irf_setups)};"
            f" cuts {', '.join(self.cut_kinds)}; {', '.join(self.irf_kinds)}",
        ]
        print_summary(self, lines, [self.output_dir])


def main():
    """Run the tool."""
    MakeIrfsTool().run()


if __name__ == "__main__":
    main()
