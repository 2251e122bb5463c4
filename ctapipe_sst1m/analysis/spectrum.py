"""
1D spectrum of the target with reflected OFF regions, its fit and flux points.

Two recipes, chosen by the IRF kind of the DataStore:

* point-like (RAD_MAX): the ON region is a `regions.PointSkyRegion` at the target, which
  makes gammapy count the events within the energy-dependent RAD_MAX;
  `SpectrumDatasetMaker(containment_correction=False)`; OFF regions from
  `WobbleRegionsFinder(n_off_regions=N)` (gammapy's `ReflectedRegionsFinder` does not
  handle point regions);
* full-enclosure: a `regions.CircleSkyRegion` of fixed radius, the PSF containment
  correction of the exposure, OFF regions from the default `ReflectedRegionsFinder`.

Each observation gets a `SafeMaskMaker` ``aeff-max`` mask; the datasets are stacked and
fitted with a power law or a log-parabola (W statistic), and flux points come from
`gammapy.estimators.FluxPointsEstimator`.
"""

import astropy.units as u
import numpy as np
from gammapy.datasets import Datasets, SpectrumDataset
from gammapy.estimators import FluxPointsEstimator
from gammapy.makers import (
    ReflectedRegionsBackgroundMaker,
    SafeMaskMaker,
    SpectrumDatasetMaker,
    WobbleRegionsFinder,
)
from gammapy.maps import MapAxis, RegionGeom
from gammapy.modeling import Fit
from gammapy.modeling.models import (
    LogParabolaSpectralModel,
    PowerLawSpectralModel,
    SkyModel,
)
from gammapy.stats import WStatCountsStatistic
from regions import CircleSkyRegion, PointSkyRegion

from .observations import POINT_LIKE, AnalysisInputError
from .regions import OverlappingRegionsError, overlap_message

__all__ = [
    "SPECTRAL_MODELS",
    "SOURCE_NAME",
    "energy_axes",
    "reduce_spectra",
    "stack_spectra",
    "safe_energy_range",
    "fit_spectrum",
    "spectrum_summary",
    "estimate_flux_points",
    "expected_significance",
]

#: spectral models of the fit
SPECTRAL_MODELS = ("power-law", "log-parabola")
#: name of the fitted model (and of the flux points' source)
SOURCE_NAME = "target"
#: the true-energy axis extends the reconstructed one by this factor at both ends
TRUE_ENERGY_MARGIN = 3.0
TRUE_ENERGY_BINS_PER_DECADE = 10
#: start values of the fit
START_INDEX = 2.5
START_AMPLITUDE = 1e-11 * u.Unit("cm-2 s-1 TeV-1")
START_BETA = 0.1
#: bounds of the index (power law) or alpha (log-parabola) and of beta: without them,
#: a fit to a dataset without signal wanders off to overflowing indices
INDEX_BOUNDS = (0.5, 6.0)
BETA_BOUNDS = (-1.0, 2.0)


def energy_axes(energy_min, energy_max, bins_per_decade):
    """
    The reconstructed and the true energy axes of the spectrum.

    Parameters
    ----------
    energy_min, energy_max : astropy.units.Quantity
        Range of the reconstructed energy.
    bins_per_decade : int
        Logarithmic bins per decade of the reconstructed energy.

    Returns
    -------
    energy_axis, energy_axis_true : gammapy.maps.MapAxis
        The true axis spans the reconstructed range extended by `TRUE_ENERGY_MARGIN`,
        with `TRUE_ENERGY_BINS_PER_DECADE`.
    """
    energy_axis = MapAxis.from_energy_bounds(
        energy_min, energy_max, nbin=bins_per_decade, per_decade=True, name="energy"
    )
    energy_axis_true = MapAxis.from_energy_bounds(
        energy_min / TRUE_ENERGY_MARGIN,
        energy_max * TRUE_ENERGY_MARGIN,
        nbin=TRUE_ENERGY_BINS_PER_DECADE,
        per_decade=True,
        name="energy_true",
    )
    return energy_axis, energy_axis_true


def reduce_spectra(
    observations,
    position,
    offsets,
    kind,
    energy_axis,
    energy_axis_true,
    n_off_regions,
    on_radius,
    aeff_percent,
):
    """
    One ON/OFF spectrum dataset per observation, with its safe mask.

    Parameters
    ----------
    observations : gammapy.data.Observations
    position : astropy.coordinates.SkyCoord
        The target.
    offsets : astropy.units.Quantity
        Wobble offsets of the observations (for the messages).
    kind : str
        ``"point-like"`` or ``"full-enclosure"``.
    energy_axis, energy_axis_true : gammapy.maps.MapAxis
        From `energy_axes`.
    n_off_regions : int
        Number of OFF regions (point-like only).
    on_radius : astropy.units.Quantity
        Radius of the ON region (full-enclosure only).
    aeff_percent : float
        Safe energy range: effective area above this percentage of its maximum.

    Returns
    -------
    gammapy.datasets.Datasets
        Of `gammapy.datasets.SpectrumDatasetOnOff`, named ``obs_<id>``.

    Raises
    ------
    OverlappingRegionsError
        If no OFF region fits (the regions overlap) for an observation.
    """
    point_like = kind == POINT_LIKE
    if point_like:
        region = PointSkyRegion(position)
        finder = WobbleRegionsFinder(n_off_regions=n_off_regions)
        background_maker = ReflectedRegionsBackgroundMaker(region_finder=finder)
    else:
        region = CircleSkyRegion(position, radius=on_radius)
        background_maker = ReflectedRegionsBackgroundMaker()
    geom = RegionGeom.create(region=region, axes=[energy_axis])
    empty = SpectrumDataset.create(geom, energy_axis_true=energy_axis_true)
    maker = SpectrumDatasetMaker(
        containment_correction=not point_like,
        selection=["counts", "exposure", "edisp"],
    )
    safe_mask_maker = SafeMaskMaker(methods=["aeff-max"], aeff_percent=aeff_percent)
    datasets = Datasets()
    for obs, offset in zip(observations, offsets):
        dataset = maker.run(empty.copy(name=f"obs_{obs.obs_id}"), obs)
        dataset = background_maker.run(dataset, obs)
        if dataset.counts_off is None:
            if point_like:
                radius = obs.rad_max.evaluate(
                    energy=energy_axis.center, offset=offset, method="nearest"
                ).max()
                what = (
                    f"largest RAD_MAX between {energy_axis.edges[0]:.3g} and"
                    f" {energy_axis.edges[-1]:.3g}"
                )
                message = overlap_message(
                    obs.obs_id, offset, radius, n_off_regions, what
                )
            else:
                message = overlap_message(
                    obs.obs_id, offset, on_radius, None, "--on-radius-deg"
                )
            raise OverlappingRegionsError(message)
        datasets.append(safe_mask_maker.run(dataset, obs))
    return datasets


def stack_spectra(datasets):
    """
    The stacked dataset of the observations.

    Parameters
    ----------
    datasets : gammapy.datasets.Datasets
        From `reduce_spectra`.

    Returns
    -------
    gammapy.datasets.SpectrumDatasetOnOff
        Named ``stacked``.

    Raises
    ------
    AnalysisInputError
        If no energy bin passes the safe mask.
    """
    stacked = datasets.stack_reduce(name="stacked")
    _restore_off_acceptance(stacked, datasets)
    if not stacked.mask_safe.data.any():
        raise AnalysisInputError(
            "no reconstructed-energy bin passes the safe mask of any observation"
            " (effective area above --aeff-percent of its maximum): check the energy"
            " range and the IRFs"
        )
    return stacked


def _restore_off_acceptance(stacked, datasets):
    """
    The OFF acceptance of energy bins without any OFF count.

    gammapy stacks α weighted by the OFF counts, which gives 0/0 (NaN α and OFF
    acceptance, and a fit that cannot converge) in bins where no observation has an OFF
    count — rare background, e.g. stereo events after the cuts. There the ratio of OFF
    to ON acceptance is that of the observations (the number of OFF regions).
    """
    missing = ~np.isfinite(stacked.acceptance_off.data)
    if not missing.any():
        return
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = [
            np.where(
                d.acceptance.data > 0, d.acceptance_off.data / d.acceptance.data, np.nan
            )
            for d in datasets
        ]
        ratio = np.nanmean(ratios, axis=0)
    restored = stacked.acceptance.data * ratio
    stacked.acceptance_off.data[missing] = np.nan_to_num(restored[missing])


def safe_energy_range(dataset):
    """
    Lowest and highest edge of the energy bins in the safe mask of a dataset.

    Parameters
    ----------
    dataset : gammapy.datasets.SpectrumDataset

    Returns
    -------
    astropy.units.Quantity
        Two values, in TeV.
    """
    edges = dataset.counts.geom.axes["energy"].edges.to(u.TeV)
    mask = dataset.mask_safe.data.squeeze()
    return u.Quantity([edges[:-1][mask].min(), edges[1:][mask].max()])


def fit_spectrum(stacked, model_name, reference_energy):
    """
    Fit a spectral model to the stacked dataset (the model is attached to it).

    Parameters
    ----------
    stacked : gammapy.datasets.SpectrumDatasetOnOff
    model_name : str
        One of `SPECTRAL_MODELS`.
    reference_energy : astropy.units.Quantity
        Reference (pivot) energy of the model.

    Returns
    -------
    model : gammapy.modeling.models.SkyModel
        Named `SOURCE_NAME`, with the fitted parameters and their covariance; the
        index (alpha) and beta are bounded by `INDEX_BOUNDS` and `BETA_BOUNDS`.
    result : gammapy.modeling.FitResult
    """
    if model_name == "power-law":
        spectral_model = PowerLawSpectralModel(
            index=START_INDEX, amplitude=START_AMPLITUDE, reference=reference_energy
        )
        index = spectral_model.index
    else:
        spectral_model = LogParabolaSpectralModel(
            alpha=START_INDEX,
            beta=START_BETA,
            amplitude=START_AMPLITUDE,
            reference=reference_energy,
        )
        index = spectral_model.alpha
        spectral_model.beta.min, spectral_model.beta.max = BETA_BOUNDS
    index.min, index.max = INDEX_BOUNDS
    model = SkyModel(spectral_model=spectral_model, name=SOURCE_NAME)
    stacked.models = [model]
    result = Fit().run(datasets=[stacked])
    return model, result


def spectrum_summary(stacked, model, result):
    """
    The numbers of the spectral analysis, for the results file.

    Parameters
    ----------
    stacked : gammapy.datasets.SpectrumDatasetOnOff
        With the fitted model.
    model : gammapy.modeling.models.SkyModel
    result : gammapy.modeling.FitResult

    Returns
    -------
    dict
        Counts in the safe range (``n_on``, ``n_off``, ``alpha``, ``excess``,
        ``li_ma_significance``), ``livetime_s``, ``energy_range_tev``, the fit
        (``fit_success``, ``fit_message``, ``parameters`` with value, error and unit,
        ``ts`` = W-statistic difference to no source, ``fit_significance`` = √TS with
        the sign of the amplitude).
    """
    info = stacked.info_dict()
    amplitude = model.spectral_model.amplitude
    with model.parameters.restore_status():
        amplitude.value = 0.0
        stat_null = stacked.stat_sum()
    ts = float(stat_null - result.total_stat)
    return {
        "n_on": int(info["counts"]),
        "n_off": int(info["counts_off"]),
        "alpha": float(info["alpha"]),
        "excess": float(info["excess"]),
        "li_ma_significance": float(info["sqrt_ts"]),
        "livetime_s": float(info["livetime"].to_value(u.s)),
        "energy_range_tev": [float(e) for e in safe_energy_range(stacked).value],
        "fit_success": bool(result.success),
        "fit_message": str(result.message),
        "parameters": {
            p.name: {
                "value": float(p.value),
                "error": float(p.error),
                "unit": p.unit.to_string(),
                "frozen": bool(p.frozen),
            }
            for p in model.spectral_model.parameters
        },
        "ts": ts,
        "fit_significance": float(np.sign(amplitude.value) * np.sqrt(max(ts, 0.0))),
    }


def estimate_flux_points(stacked, points_per_decade):
    """
    Flux points of the fitted model over the safe energy range.

    Parameters
    ----------
    stacked : gammapy.datasets.SpectrumDatasetOnOff
        With the fitted model named `SOURCE_NAME`.
    points_per_decade : float
        Flux points per decade (their edges snap to the dataset's energy bins).

    Returns
    -------
    gammapy.estimators.FluxPoints
        With asymmetric errors and upper limits (2 σ).
    """
    energy_min, energy_max = safe_energy_range(stacked)
    n_points = max(
        1, int(np.ceil(np.log10(energy_max / energy_min) * points_per_decade))
    )
    edges = np.geomspace(energy_min, energy_max, n_points + 1)
    estimator = FluxPointsEstimator(
        energy_edges=edges,
        source=SOURCE_NAME,
        selection_optional=["errn-errp", "ul"],
    )
    return estimator.run(datasets=[stacked])


def expected_significance(stacked, spectral_model):
    """
    The Li & Ma significance a source of this spectrum should have in these data, and
    the measured one, both in the safe energy range.

    The expected excess is the source's predicted counts in the ON region (the dataset's
    exposure, energy dispersion and, for a point-like dataset, RAD_MAX containment)
    within the safe energy range; the background is the measured OFF counts. The
    measured significance uses the ON counts of the same bins.

    Parameters
    ----------
    stacked : gammapy.datasets.SpectrumDatasetOnOff
    spectral_model : gammapy.modeling.models.SpectralModel
        E.g. the spectrum a simulation injected.

    Returns
    -------
    dict
        ``expected_excess``, ``n_on``, ``n_off``, ``alpha``, ``expected_significance``,
        ``measured_significance``.
    """
    dataset = stacked.copy()
    dataset.models = [SkyModel(spectral_model=spectral_model, name="expected")]
    mask = dataset.mask_safe.data
    expected_excess = float(dataset.npred_signal().data[mask].sum())
    n_on = float(dataset.counts.data[mask].sum())
    n_off = float(dataset.counts_off.data[mask].sum())
    # α of the bins (the same in every bin for reflected regions)
    alpha = float(np.nanmean(dataset.alpha.data[mask]))

    def significance(counts):
        return float(
            WStatCountsStatistic(n_on=counts, n_off=n_off, alpha=alpha).sqrt_ts
        )

    return {
        "expected_excess": expected_excess,
        "n_on": n_on,
        "n_off": n_off,
        "alpha": alpha,
        "expected_significance": significance(expected_excess + alpha * n_off),
        "measured_significance": significance(n_on),
    }
