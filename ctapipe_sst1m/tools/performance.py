"""sst1m-performance: energy and angular resolution, ROC, gammaness cuts, effective area of simulated DL2."""

from pathlib import Path

import astropy.units as u
import numpy as np
from ctapipe.core import Provenance, QualityQuery, Tool, ToolConfigurationError
from ctapipe.core.traits import (
    CaselessStrEnum,
    Float,
    Int,
    List,
    Tuple,
    Unicode,
    UseEnum,
)
from ctapipe.core.traits import Path as PathTrait
from ctapipe.irf.spectra import SPECTRA, Spectra

from ..io.atomic_output import AtomicOutput
from ..performance.effective_area import effective_area_table, is_point_like
from ..performance.inputs import (
    VARIANTS,
    PerformanceInputError,
    available_variants,
    check_primaries,
    check_same_models,
    check_simulated,
    event_weights,
    read_shower_reuse,
    read_tag_events,
)
from ..performance.metrics import evaluate_tag
from ..performance.output import summary_table, write_performance
from ..performance.plots import plot_performance
from .failures import reports_full_disk
from .summary import print_summary

__all__ = ["PerformanceQualityQuery", "PerformanceTool", "main"]


class PerformanceQualityQuery(QualityQuery):
    """Selection on the DL1 telescope parameters of the evaluated events (none by default)."""

    quality_criteria = List(
        Tuple(Unicode(), Unicode()),
        default_value=[],
        help=(
            "(name, expression) pairs on the DL1 telescope parameters, e.g."
            " [('intensity', 'hillas_intensity > 50'),"
            " ('leakage', 'leakage_intensity_width_2 < 0.7')]. Telescope events must pass"
            " them; subarray events need every contributing telescope to pass them."
        ),
    ).tag(config=True)


class PerformanceTool(Tool):
    """
    Performance of the SST-1M reconstruction on simulated DL2 gammas and protons of
    sst1m-apply-models: energy bias and resolution, angular resolution, ROC and AUC,
    gammaness cuts, energy threshold and a summary above it, the effective area
    (point-like gammas), per telescope (mono models), for the combined mono
    predictions and for stereo. Writes ECSV tables, performance.h5 and PNG plots to
    the output directory.
    """

    name = "sst1m-performance"
    description = __doc__
    examples = """
    sst1m-performance --gamma gamma_point.dl2.h5 --proton proton.dl2.h5 --output-dir performance
    sst1m-performance --gamma gamma_point.dl2.h5 --proton proton.dl2.h5 --output-dir perf_stereo \\
        --variant stereo --PerformanceQualityQuery.quality_criteria='[("intensity", "hillas_intensity > 50")]'
    """

    gamma_file = PathTrait(
        default_value=None,
        allow_none=True,
        exists=True,
        directory_ok=False,
        help="Simulated gamma DL2 file (point-like or diffuse).",
    ).tag(config=True)
    proton_file = PathTrait(
        default_value=None,
        allow_none=True,
        exists=True,
        directory_ok=False,
        help="Simulated proton DL2 file (diffuse).",
    ).tag(config=True)
    output_dir = PathTrait(
        default_value=None,
        allow_none=True,
        file_ok=False,
        help="Output directory; must not exist (unless --overwrite).",
    ).tag(config=True)
    variants = List(
        CaselessStrEnum(VARIANTS),
        default_value=[],
        help="Model variants to evaluate (repeat the option); default: every variant present in both files.",
    ).tag(config=True)
    log_energy_min = Float(
        default_value=-1.0, help="log10 of the lowest energy bin edge (TeV)."
    ).tag(config=True)
    log_energy_max = Float(
        default_value=3.0, help="log10 of the highest energy bin edge (TeV)."
    ).tag(config=True)
    n_energy_bins = Int(
        default_value=20, min=1, help="Number of logarithmic energy bins."
    ).tag(config=True)
    threshold_bins_per_decade = Int(
        default_value=10,
        min=1,
        help="Logarithmic bins per decade of the true-energy distribution whose peak is the threshold.",
    ).tag(config=True)
    gammaness_cut = Float(
        default_value=0.75,
        min=0.0,
        max=1.0,
        help="Global gammaness cut (events with gammaness >= cut pass).",
    ).tag(config=True)
    gamma_efficiency = Float(
        default_value=0.7,
        min=0.0,
        max=1.0,
        help="Target gamma efficiency of the energy-dependent gammaness cuts.",
    ).tag(config=True)
    min_events_per_bin = Int(
        default_value=10,
        min=1,
        help=(
            "Minimum events per energy bin: gammas for the resolutions and the cuts, each"
            " species for the AUC (sparser bins get NaN, or the overall cut)."
        ),
    ).tag(config=True)
    n_bootstrap_resamples = Int(
        default_value=200,
        min=0,
        help=(
            "Bootstrap resamples of the gammas for the statistical errors (*_err columns) of"
            " the energy bias, energy resolution and angular resolution, per bin and above"
            " the threshold; 0 skips them (NaN)."
        ),
    ).tag(config=True)
    bootstrap_seed = Int(
        default_value=0,
        min=0,
        help="Seed of the bootstrap resampling (the errors are reproducible).",
    ).tag(config=True)
    gamma_target_spectrum = UseEnum(
        Spectra,
        default_value=Spectra.CRAB_HEGRA,
        help="Spectrum the gammas are weighted to.",
    ).tag(config=True)
    proton_target_spectrum = UseEnum(
        Spectra,
        default_value=Spectra.IRFDOC_PROTON_SPECTRUM,
        help="Spectrum the protons are weighted to.",
    ).tag(config=True)

    aliases = {
        "gamma": "PerformanceTool.gamma_file",
        "proton": "PerformanceTool.proton_file",
        ("o", "output-dir"): "PerformanceTool.output_dir",
        "variant": "PerformanceTool.variants",
    }
    classes = [PerformanceQualityQuery]

    def setup(self):
        for value, option in (
            (self.gamma_file, "--gamma"),
            (self.proton_file, "--proton"),
            (self.output_dir, "--output-dir"),
        ):
            if value is None:
                raise ToolConfigurationError(f"give {option}")
        if self.log_energy_max <= self.log_energy_min:
            raise ToolConfigurationError(
                "log_energy_max must be larger than log_energy_min"
            )
        self.output_dir = Path(self.output_dir)
        self.check_output(self.output_dir)
        try:
            for path, particle in (
                (self.gamma_file, "gamma"),
                (self.proton_file, "proton"),
            ):
                check_simulated(path)
                check_primaries(path, particle)
            check_same_models([self.gamma_file, self.proton_file])
            self.variants = self._select_variants()
        except PerformanceInputError as err:
            self._fail(str(err))
        self.quality_query = PerformanceQualityQuery(parent=self)

    def _fail(self, message):
        self.log.critical(message)
        self.exit(1)

    def _select_variants(self):
        """The requested variants, checked against both files, or those in both."""
        present = {
            path: available_variants(path)
            for path in (self.gamma_file, self.proton_file)
        }
        for path, variants in present.items():
            if not variants:
                raise PerformanceInputError(
                    f"file {path} holds no DL2 predictions of the {' or '.join(VARIANTS)} models"
                    " (no /dl2/event/subarray/*/mono_* or stereo_* table): run sst1m-apply-models first"
                )
            for variant in self.variants:
                if variant not in variants:
                    raise PerformanceInputError(
                        f"file {path} has no {variant} predictions (it has {', '.join(variants)})"
                    )
        if self.variants:
            return list(self.variants)
        common = [
            v for v in VARIANTS if all(v in variants for variants in present.values())
        ]
        if not common:
            raise PerformanceInputError(
                f"{self.gamma_file} ({', '.join(present[self.gamma_file])}) and {self.proton_file}"
                f" ({', '.join(present[self.proton_file])}) have no model variant in common"
            )
        return common

    @reports_full_disk
    def start(self):
        energy_bins = (
            np.logspace(
                self.log_energy_min, self.log_energy_max, self.n_energy_bins + 1
            )
            * u.TeV
        )
        n_threshold_bins = round(
            self.threshold_bins_per_decade * (self.log_energy_max - self.log_energy_min)
        )
        threshold_bins = (
            np.logspace(self.log_energy_min, self.log_energy_max, n_threshold_bins + 1)
            * u.TeV
        )
        try:
            gammas, gamma_simulation = read_tag_events(
                self.gamma_file, self.variants, self.quality_query
            )
            protons, proton_simulation = read_tag_events(
                self.proton_file, self.variants, self.quality_query
            )
            for events, simulation, spectrum in (
                (gammas, gamma_simulation, self.gamma_target_spectrum),
                (protons, proton_simulation, self.proton_target_spectrum),
            ):
                for table in events.values():
                    table["weight"] = event_weights(
                        table["true_energy"], simulation, SPECTRA[spectrum]
                    )
        except PerformanceInputError as err:
            self._fail(str(err))

        point_like = is_point_like(gamma_simulation)
        if point_like:
            shower_reuse = read_shower_reuse(self.gamma_file)
        else:
            self.log.info(
                "no effective area: the gammas of %s are diffuse (viewcone %s to %s),"
                " it is computed for point-like gammas only",
                self.gamma_file,
                gamma_simulation.viewcone_min,
                gamma_simulation.viewcone_max,
            )
        rng = np.random.default_rng(self.bootstrap_seed)
        self.results = {}
        #: gammas and protons with valid predictions per tag
        self.n_events = {}
        for tag in gammas:
            n_gammas, n_protons = len(gammas[tag]), len(protons.get(tag, ()))
            self.n_events[tag] = (n_gammas, n_protons)
            self.log.info(
                "%s: %d gammas, %d protons with valid predictions",
                tag,
                n_gammas,
                n_protons,
            )
            if n_gammas == 0 or n_protons == 0:
                self.log.warning(
                    "%s skipped: it needs gammas and protons with valid predictions",
                    tag,
                )
                continue
            self.results[tag] = evaluate_tag(
                gammas[tag],
                protons[tag],
                energy_bins,
                threshold_bins,
                self.gammaness_cut,
                self.gamma_efficiency,
                self.min_events_per_bin,
                self.n_bootstrap_resamples,
                rng,
            )
            if point_like:
                self.results[tag].effective_area = effective_area_table(
                    gammas[tag],
                    gamma_simulation,
                    energy_bins,
                    self.gammaness_cut,
                    shower_reuse,
                )
        if not self.results:
            self._fail(
                f"no tag has both gammas and protons with valid predictions in {self.gamma_file} and {self.proton_file}"
            )

    @reports_full_disk
    def finish(self):
        summary = summary_table(
            self.results,
            {
                "GAMMA_FILE": str(self.gamma_file),
                "PROTON_FILE": str(self.proton_file),
                "VARIANTS": ",".join(self.variants),
                "GH_CUT": self.gammaness_cut,
                "GH_EFF": self.gamma_efficiency,
                "GAMMA_SPECTRUM": self.gamma_target_spectrum.name,
                "PROTON_SPECTRUM": self.proton_target_spectrum.name,
                "QUALITY": repr(self.quality_query.quality_criteria),
            },
        )
        with AtomicOutput(self.output_dir, overwrite=True, directory=True) as output:
            written = write_performance(output.temporary, self.results, summary)
            written += plot_performance(output.temporary, self.results)
            output.commit()
        for path in written:
            Provenance().add_output_file(
                self.output_dir / path.name, role="performance", add_meta=False
            )
        self.log.info("wrote %d files to %s", len(written), self.output_dir)
        formatted = summary.copy()
        for name in formatted.colnames[1:]:
            if formatted[name].dtype.kind == "f":
                formatted[name].info.format = ".3f"
        print("\n".join(formatted.pformat(max_lines=-1, max_width=-1)))
        events = ", ".join(
            f"{tag} {n_gammas:,} + {n_protons:,}"
            for tag, (n_gammas, n_protons) in self.n_events.items()
        )
        lines = [
            f"{Path(self.gamma_file).name} + {Path(self.proton_file).name}",
            f"gammas + protons with valid predictions: {events}",
        ]
        print_summary(self, lines, [self.output_dir])


def main():
    """Run the tool."""
    PerformanceTool().run()


if __name__ == "__main__":
    main()
