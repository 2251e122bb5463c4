"""sst1m-analysis: θ², 1D spectrum and sky maps of a target from DL3 data with gammapy."""

from pathlib import Path

import astropy.units as u
import gammapy
from ctapipe.core import Provenance, Tool, ToolConfigurationError
from ctapipe.core.traits import CaselessStrEnum, Float, Int, List, Unicode
from ctapipe.core.traits import Path as PathTrait

from ..analysis.observations import (
    FULL_ENCLOSURE,
    INDEX_FILES,
    POINT_LIKE,
    AnalysisInputError,
    has_irf,
    irf_kind,
    open_datastore,
    resolve_target,
    select_observations,
    sky_map_observations,
    total_livetime,
    wobble_offsets,
)
from ..analysis.output import observation_records, summary_lines, write_analysis
from ..analysis.plots import plot_analysis
from ..analysis.skymap import ACCEPTANCES, make_sky_maps, sky_map_summary
from ..analysis.spectrum import (
    SPECTRAL_MODELS,
    energy_axes,
    estimate_flux_points,
    fit_spectrum,
    reduce_spectra,
    safe_energy_range,
    spectrum_summary,
    stack_spectra,
)
from ..analysis.theta2 import (
    rad_max_theta_cut,
    theta2_axis,
    theta2_significance,
    theta2_table,
    usable_theta2_max,
)
from ..io.atomic_output import AtomicOutput, check_not_an_input
from ..version import __version__
from .failures import reports_full_disk
from .summary import print_summary

__all__ = ["AnalysisTool", "main"]


class AnalysisTool(Tool):
    """
    High-level analysis of SST-1M DL3 data with gammapy: θ² distribution and Li & Ma
    significance with several OFF regions, the 1D spectrum of the target (reflected
    regions, power-law or log-parabola fit, flux points) and, with full-enclosure IRFs
    that have a background model, ring-background excess and significance maps. Reads
    a gammapy DataStore directory (hdu-index.fits.gz, obs-index.fits.gz); writes
    results.yaml, ECSV tables, FITS files and PNG plots to the output directory.
    """

    name = "sst1m-analysis"
    description = __doc__
    examples = """
    sst1m-analysis --datastore dl3/point-like --output-dir crab_analysis
    sst1m-analysis --datastore dl3/point-like --datastore-full-enclosure dl3/full-enclosure \\
        --obs-id 1234 --obs-id 1235 --output-dir crab_analysis --spectral-model log-parabola
    sst1m-analysis --datastore dl3/full-enclosure --target-ra 83.633 --target-dec 22.0145 \\
        --target-name Crab --output-dir crab_full
    """

    datastore = PathTrait(
        default_value=None,
        allow_none=True,
        help=(
            "gammapy DataStore directory (hdu-index.fits.gz, obs-index.fits.gz), point-like"
            " (RAD_MAX) or full-enclosure IRFs."
        ),
    ).tag(config=True)
    datastore_full_enclosure = PathTrait(
        default_value=None,
        allow_none=True,
        help=(
            "Full-enclosure DataStore with background IRFs of the same observations, for"
            " the sky maps when --datastore is point-like (else the maps are skipped)."
        ),
    ).tag(config=True)
    output_dir = PathTrait(
        default_value=None,
        allow_none=True,
        file_ok=False,
        help="Output directory; must not exist (unless --overwrite).",
    ).tag(config=True)
    obs_ids = List(
        Int(),
        default_value=[],
        help="Observation ids to analyse (repeat the option); default: all of the DataStore.",
    ).tag(config=True)
    target_ra = Float(
        default_value=None,
        allow_none=True,
        help="Target right ascension (ICRS, deg); default: RA_OBJ of the observations.",
    ).tag(config=True)
    target_dec = Float(
        default_value=None,
        allow_none=True,
        help="Target declination (ICRS, deg); default: DEC_OBJ of the observations.",
    ).tag(config=True)
    target_name = Unicode(
        default_value=None,
        allow_none=True,
        help="Target name; default: OBJECT of the observations.",
    ).tag(config=True)
    n_off_regions = Int(
        default_value=3,
        min=1,
        help=(
            "Number of OFF regions of the θ² table and, point-like, of the spectrum"
            " (WobbleRegionsFinder)."
        ),
    ).tag(config=True)
    theta2_max_deg2 = Float(
        default_value=0.3,
        help=(
            "End of the θ² axis (deg²); lowered, with a warning, to where the ON and OFF"
            " regions of every observation stay apart."
        ),
    ).tag(config=True)
    theta2_bin_width_deg2 = Float(
        default_value=0.01, help="Bin width of the θ² axis (deg²)."
    ).tag(config=True)
    theta_cut_deg = Float(
        default_value=None,
        allow_none=True,
        help=(
            "θ cut of the significance (deg); default: point-like, the RAD_MAX at"
            " rad_max_energy_tev; full-enclosure, on_radius_deg."
        ),
    ).tag(config=True)
    rad_max_energy_tev = Float(
        default_value=1.0,
        help="Reconstructed energy (TeV) at which RAD_MAX gives the default θ cut.",
    ).tag(config=True)
    on_radius_deg = Float(
        default_value=0.2,
        help=(
            "Radius of the ON region (deg) of the full-enclosure spectrum (with the PSF"
            " containment correction)."
        ),
    ).tag(config=True)
    energy_min_tev = Float(
        default_value=0.1, help="Lowest reconstructed energy of the spectrum (TeV)."
    ).tag(config=True)
    energy_max_tev = Float(
        default_value=100.0, help="Highest reconstructed energy of the spectrum (TeV)."
    ).tag(config=True)
    energy_bins_per_decade = Int(
        default_value=5, min=1, help="Reconstructed-energy bins per decade."
    ).tag(config=True)
    aeff_percent = Float(
        default_value=10.0,
        min=0.0,
        max=100.0,
        help=(
            "Safe energy range: bins where the effective area exceeds this percentage of"
            " its maximum (SafeMaskMaker aeff-max)."
        ),
    ).tag(config=True)
    spectral_model = CaselessStrEnum(
        SPECTRAL_MODELS, default_value="power-law", help="Spectral model of the fit."
    ).tag(config=True)
    reference_energy_tev = Float(
        default_value=1.0, help="Reference energy of the spectral model (TeV)."
    ).tag(config=True)
    flux_points_per_decade = Float(
        default_value=2.5,
        help="Flux points per decade (at most energy_bins_per_decade).",
    ).tag(config=True)
    map_width_deg = Float(
        default_value=3.0, help="Side of the square sky maps (deg)."
    ).tag(config=True)
    map_bin_size_deg = Float(
        default_value=0.02, help="Pixel size of the sky maps (deg)."
    ).tag(config=True)
    offset_max_deg = Float(
        default_value=2.0,
        help="Sky maps: pixels farther from the pointing are masked (deg).",
    ).tag(config=True)
    ring_inner_radius_deg = Float(
        default_value=0.5, help="Inner radius of the background ring (deg)."
    ).tag(config=True)
    ring_width_deg = Float(
        default_value=0.3, help="Width of the background ring (deg)."
    ).tag(config=True)
    exclusion_radius_deg = Float(
        default_value=0.3,
        help="Radius of the circle around the target left out of the rings (deg).",
    ).tag(config=True)
    correlation_radius_deg = Float(
        default_value=0.1,
        help="Radius within which the counts of a map pixel are summed (deg).",
    ).tag(config=True)
    map_acceptance = CaselessStrEnum(
        ACCEPTANCES,
        default_value="auto",
        help=(
            "Shape of the acceptance of the ring background across the field: the"
            " background IRF, the gamma exposure summed over true energy, or (auto) the"
            " background IRF if it predicts counts in every pixel within offset_max_deg"
            " of the pointings, else the exposure (few simulated protons)."
        ),
    ).tag(config=True)

    aliases = {
        "datastore": "AnalysisTool.datastore",
        "datastore-full-enclosure": "AnalysisTool.datastore_full_enclosure",
        ("o", "output-dir"): "AnalysisTool.output_dir",
        "obs-id": "AnalysisTool.obs_ids",
        "target-ra": "AnalysisTool.target_ra",
        "target-dec": "AnalysisTool.target_dec",
        "target-name": "AnalysisTool.target_name",
        "n-off-regions": "AnalysisTool.n_off_regions",
        "theta-cut-deg": "AnalysisTool.theta_cut_deg",
        "on-radius-deg": "AnalysisTool.on_radius_deg",
        "spectral-model": "AnalysisTool.spectral_model",
        "aeff-percent": "AnalysisTool.aeff_percent",
        "correlation-radius-deg": "AnalysisTool.correlation_radius_deg",
    }

    def setup(self):
        for value, option in (
            (self.datastore, "--datastore"),
            (self.output_dir, "--output-dir"),
        ):
            if value is None:
                raise ToolConfigurationError(f"give {option}")
        if (self.target_ra is None) != (self.target_dec is None):
            raise ToolConfigurationError("give both --target-ra and --target-dec")
        if self.energy_max_tev <= self.energy_min_tev:
            raise ToolConfigurationError("energy_max_tev must exceed energy_min_tev")
        if not 0 < self.theta2_bin_width_deg2 <= self.theta2_max_deg2:
            raise ToolConfigurationError(
                "theta2_bin_width_deg2 must be positive and at most theta2_max_deg2"
            )
        if not 0 < self.flux_points_per_decade <= self.energy_bins_per_decade:
            raise ToolConfigurationError(
                "flux_points_per_decade must be positive and at most energy_bins_per_decade"
            )
        self.output_dir = Path(self.output_dir)
        self.check_output(self.output_dir)
        try:
            check_not_an_input(
                self.output_dir, [self.datastore, self.datastore_full_enclosure]
            )
        except ValueError as err:
            raise ToolConfigurationError(str(err)) from err
        try:
            self.observations = select_observations(
                open_datastore(self.datastore), self.obs_ids
            )
            self.kind = irf_kind(self.observations)
            if self.kind == FULL_ENCLOSURE and not has_irf(self.observations, "psf"):
                raise AnalysisInputError(
                    f"the full-enclosure DataStore {self.datastore} has no PSF for the"
                    " containment correction of the spectrum"
                )
            if self.kind == FULL_ENCLOSURE and self.datastore_full_enclosure:
                raise AnalysisInputError(
                    f"--datastore {self.datastore} is full-enclosure already:"
                    " --datastore-full-enclosure is for a point-like --datastore"
                )
            self.target = resolve_target(
                self.observations, self.target_ra, self.target_dec, self.target_name
            )
            self.map_observations, self.no_map_reason = sky_map_observations(
                self.observations, self.kind, self.datastore_full_enclosure
            )
        except AnalysisInputError as err:
            self._fail(str(err))
        for directory in filter(None, (self.datastore, self.datastore_full_enclosure)):
            for name in INDEX_FILES:
                Provenance().add_input_file(
                    Path(directory) / name, role="DL3 index", add_meta=False
                )

    def _fail(self, message):
        self.log.critical(message)
        self.exit(1)

    @reports_full_disk
    def start(self):
        position = self.target.position
        self.offsets = wobble_offsets(self.observations, position)
        try:
            self._theta2(position)
            self._spectrum(position)
            self._sky_maps(position)
        except AnalysisInputError as err:
            self._fail(str(err))

    def _theta2(self, position):
        if self.theta_cut_deg is not None:
            theta_cut, source = self.theta_cut_deg * u.deg, "--theta-cut-deg"
        elif self.kind == POINT_LIKE:
            energy = self.rad_max_energy_tev * u.TeV
            theta_cut = rad_max_theta_cut(self.observations, self.offsets, energy)
            source = f"RAD_MAX at {energy:g}"
        else:
            theta_cut, source = self.on_radius_deg * u.deg, "--on-radius-deg"
        self.theta_cut = theta_cut
        significance = theta2_significance(
            self.observations,
            position,
            self.offsets,
            theta_cut,
            self.n_off_regions,
            cut_source=source,
        )
        bin_width = self.theta2_bin_width_deg2 * u.deg**2
        wanted = self.theta2_max_deg2 * u.deg**2
        theta2_max = usable_theta2_max(
            self.offsets, self.n_off_regions, wanted, bin_width
        )
        if theta2_max < wanted:
            self.log.warning(
                "θ² axis ends at %.3f deg² instead of %.3f deg²: beyond, the ON and %d OFF"
                " regions overlap at the smallest wobble offset %.3f deg",
                theta2_max.value,
                wanted.value,
                self.n_off_regions,
                self.offsets.min().to_value(u.deg),
            )
        self.theta2 = theta2_table(
            self.observations,
            position,
            theta2_axis(theta2_max, bin_width),
            self.n_off_regions,
        )
        self.theta2.meta.update(
            TARGET=self.target.name,
            THETA_CUT=theta_cut.to_value(u.deg),
            N_OFF=self.n_off_regions,
        )
        self.theta2_results = {
            "theta_cut_source": source,
            "n_off_regions": self.n_off_regions,
            "theta2_max_deg2": float(theta2_max.value),
            "theta2_bin_width_deg2": self.theta2_bin_width_deg2,
            **significance,
        }

    def _spectrum(self, position):
        energy_axis, self.energy_axis_true = energy_axes(
            self.energy_min_tev * u.TeV,
            self.energy_max_tev * u.TeV,
            self.energy_bins_per_decade,
        )
        self.datasets = reduce_spectra(
            self.observations,
            position,
            self.offsets,
            self.kind,
            energy_axis,
            self.energy_axis_true,
            self.n_off_regions,
            self.on_radius_deg * u.deg,
            self.aeff_percent,
        )
        self.stacked = stack_spectra(self.datasets)
        model, result = fit_spectrum(
            self.stacked, self.spectral_model, self.reference_energy_tev * u.TeV
        )
        if not result.success:
            self.log.warning("the spectral fit did not converge: %s", result.message)
        self.fit_success = result.success
        self.flux_points = estimate_flux_points(
            self.stacked, self.flux_points_per_decade
        )
        point_like = self.kind == POINT_LIKE
        self.spectrum_results = {
            "model": self.spectral_model,
            "on_region": "RAD_MAX"
            if point_like
            else f"circle of {self.on_radius_deg:g} deg",
            "containment_correction": not point_like,
            "off_regions": f"{self.n_off_regions} (WobbleRegionsFinder)"
            if point_like
            else "ReflectedRegionsFinder",
            "aeff_percent": self.aeff_percent,
            **spectrum_summary(self.stacked, model, result),
        }

    def _sky_maps(self, position):
        self.sky_maps = None
        if self.map_observations is None:
            self.log.warning("sky maps skipped: %s", self.no_map_reason)
            self.sky_map_results = {"made": False, "reason": self.no_map_reason}
            return
        self.sky_maps = make_sky_maps(
            self.map_observations,
            position,
            self.energy_axis_true,
            self.energy_min_tev * u.TeV,
            self.energy_max_tev * u.TeV,
            width=self.map_width_deg * u.deg,
            bin_size=self.map_bin_size_deg * u.deg,
            offset_max=self.offset_max_deg * u.deg,
            ring_inner_radius=self.ring_inner_radius_deg * u.deg,
            ring_width=self.ring_width_deg * u.deg,
            exclusion_radius=self.exclusion_radius_deg * u.deg,
            correlation_radius=self.correlation_radius_deg * u.deg,
            acceptance=self.map_acceptance,
        )
        self.sky_map_results = {
            "made": True,
            "datastore": str(self.datastore_full_enclosure or self.datastore),
            "correlation_radius_deg": self.correlation_radius_deg,
            "ring_inner_radius_deg": self.ring_inner_radius_deg,
            "ring_width_deg": self.ring_width_deg,
            "exclusion_radius_deg": self.exclusion_radius_deg,
            **sky_map_summary(self.sky_maps, position),
        }

    def _results(self):
        """The results document."""
        position = self.target.position
        return {
            "target": {
                "name": self.target.name,
                "ra_deg": float(position.ra.deg),
                "dec_deg": float(position.dec.deg),
            },
            "datastore": str(self.datastore),
            "irf_kind": self.kind,
            "observations": observation_records(self.observations, self.offsets),
            "livetime_s": float(total_livetime(self.observations).value),
            "theta2": self.theta2_results,
            "spectrum": self.spectrum_results,
            "sky_map": self.sky_map_results,
            "software": {"ctapipe_sst1m": __version__, "gammapy": gammapy.__version__},
        }

    @reports_full_disk
    def finish(self):
        inputs = [self.datastore, self.datastore_full_enclosure]
        with AtomicOutput(
            self.output_dir, overwrite=True, directory=True, inputs=inputs
        ) as output:
            self.results = self._results()
            written = write_analysis(
                output.temporary,
                self.results,
                self.theta2,
                self.datasets,
                self.stacked,
                self.flux_points,
                self.sky_maps,
            )
            written += plot_analysis(
                output.temporary,
                self.target.name,
                (self.theta2, self.theta_cut),
                (
                    self.stacked,
                    self.fit_success,
                    self.flux_points,
                    safe_energy_range(self.stacked),
                ),
                None
                if self.sky_maps is None
                else (self.sky_maps, self.target.position),
            )
            output.commit()
        for path in written:
            Provenance().add_output_file(
                self.output_dir / path.name, role="analysis", add_meta=False
            )
        print_summary(self, summary_lines(self.results), [self.output_dir])


def main():
    """Run the tool."""
    AnalysisTool().run()


if __name__ == "__main__":
    main()
