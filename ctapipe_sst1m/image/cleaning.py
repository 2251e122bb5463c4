"""SST-1M image cleaning: tail cuts with pedestal-noise dependent thresholds and time cleaning."""

from dataclasses import dataclass, fields

import numpy as np
from ctapipe.core.traits import Bool, Dict, Float, Int, List, TelescopeParameter
from ctapipe.image.cleaning import ImageCleaner
from ctapipe.image.morphology import number_of_islands
from numba import njit
from traitlets import default

__all__ = ["CleaningParameters", "ImageCleanerSST", "sst_clean"]


@dataclass(frozen=True)
class CleaningParameters:
    """One parameter set of ImageCleanerSST, valid from ``min_nsb_level`` (p.e.) upwards."""

    min_nsb_level: float
    stdev_scaling: float
    picture_threshold_pe: float
    boundary_threshold_pe: float
    min_picture_neighbors: int
    keep_isolated: bool
    min_time_neighbors: int
    time_limit_ns: float
    only_main_island: bool


def _parameter_set(nsb_level_low, picture, boundary):
    return {
        "min_nsb_level": nsb_level_low,
        "stdev_scaling": 2.5,
        "picture_threshold_pe": picture,
        "boundary_threshold_pe": boundary,
        "min_picture_neighbors": 2,
        "keep_isolated": False,
        "min_time_neighbors": 1,
        "time_limit_ns": 8,
        "only_main_island": False,
    }


#: defaults (a TelescopeParameter value) of the SST-1M data (21, 22) and simulation
#: (1, 2) configurations, and a fallback for other telescopes
DEFAULT_TELESCOPE_PARAMETERS = [
    ("type", "*", [_parameter_set(0, 8, 4)]),
    (
        "id",
        21,
        [
            _parameter_set(0, 7, 2.5),
            _parameter_set(2.3526, 8, 4),
            _parameter_set(2.8863, 8, 4),
        ],
    ),
    (
        "id",
        22,
        [
            _parameter_set(0, 8, 2.5),
            _parameter_set(2.5288, 8, 4),
            _parameter_set(3.2747, 8, 4),
        ],
    ),
    ("id", 1, [_parameter_set(0, 7, 2.5), _parameter_set(100000, 8, 4)]),
    ("id", 2, [_parameter_set(0, 8, 2.5), _parameter_set(100000, 8, 4)]),
]

#: the trait of each field of a parameter set (types and bounds)
_PARAMETER_TRAITS = {
    "min_nsb_level": Float(),
    "stdev_scaling": Float(min=0.0),
    "picture_threshold_pe": Float(min=0.0),
    "boundary_threshold_pe": Float(min=0.0),
    "min_picture_neighbors": Int(min=0),
    "keep_isolated": Bool(),
    "min_time_neighbors": Int(min=0),
    "time_limit_ns": Float(min=0.0),
    "only_main_island": Bool(),
}
assert set(_PARAMETER_TRAITS) == {field.name for field in fields(CleaningParameters)}


def _parameter_sets(key, sets):
    """The CleaningParameters of a telescope_defaults entry, highest NSB level first."""
    try:
        entries = [CleaningParameters(**entry) for entry in sets]
    except TypeError as err:
        raise ValueError(
            f"ImageCleanerSST.telescope_defaults[{key!r}]: {err}"
        ) from None
    if not entries:
        raise ValueError(f"ImageCleanerSST.telescope_defaults[{key!r}] is empty")
    return sorted(entries, key=lambda p: p.min_nsb_level, reverse=True)


def sst_clean(
    geom,
    image,
    peak_time,
    parameters,
    pedestal_mean_pe=None,
    pedestal_std_pe=None,
):
    """
    The SST-1M cleaning of one image.

    1. picture threshold per pixel:
       ``max(picture_threshold_pe, pedestal_mean + stdev_scaling * pedestal_std)``
       (the static threshold when no pedestal statistics are given);
    2. tail cuts with that threshold, the boundary threshold and the minimum
       number of picture neighbours;
    3. time cleaning: a pixel survives if at least ``min_time_neighbors``
       selected neighbours have ``|dt| < time_limit_ns``;
    4. optionally only the largest island is kept.

    Parameters
    ----------
    geom : ctapipe.instrument.CameraGeometry
        Camera geometry.
    image : numpy.ndarray
        Pixel charges (p.e.).
    peak_time : numpy.ndarray
        Pixel peak times (ns).
    parameters : CleaningParameters
        Thresholds.
    pedestal_mean_pe, pedestal_std_pe : numpy.ndarray or None
        Mean and standard deviation of the pedestal charge per pixel (p.e.).

    Returns
    -------
    mask : numpy.ndarray
        Selected pixels.
    n_raised : int
        Number of pixels whose picture threshold was raised above the static one.
    """
    picture = np.full(image.shape, np.float64(parameters.picture_threshold_pe))
    n_raised = 0
    if pedestal_mean_pe is not None and pedestal_std_pe is not None:
        noise_threshold = pedestal_mean_pe + parameters.stdev_scaling * pedestal_std_pe
        raised = noise_threshold > picture
        n_raised = int(np.count_nonzero(raised))
        picture[raised] = noise_threshold[raised]

    neighbors = geom.neighbor_matrix_sparse
    use_time = peak_time is not None and parameters.min_time_neighbors > 0
    mask = _tailcuts_and_time_mask(
        neighbors.indices,
        neighbors.indptr,
        image,
        peak_time if use_time else image,
        picture,
        parameters.boundary_threshold_pe,
        parameters.keep_isolated,
        parameters.min_picture_neighbors,
        parameters.min_time_neighbors if use_time else 0,
        parameters.time_limit_ns,
    )
    if parameters.only_main_island and mask.any():
        n_islands, labels = number_of_islands(geom, mask)
        if n_islands > 1:
            sizes = np.bincount(labels[mask])
            mask = labels == np.argmax(sizes)
    return mask, n_raised


@njit(cache=True)
def _count_neighbors_in(indices, indptr, selected):
    """Number of selected neighbours of every pixel."""
    counts = np.zeros(selected.size, dtype=np.int64)
    for pixel in range(selected.size):
        for k in range(indptr[pixel], indptr[pixel + 1]):
            counts[pixel] += selected[indices[k]]
    return counts


@njit(cache=True)
def _tailcuts_and_time_mask(
    indices,
    indptr,
    image,
    peak_time,
    picture,
    boundary,
    keep_isolated,
    min_picture_neighbors,
    min_time_neighbors,
    time_limit,
):
    """
    ctapipe's ``tailcuts_clean`` then ``apply_time_delta_cleaning`` (skipped if
    ``min_time_neighbors`` is 0), with the neighbours as a CSR sparse matrix: the
    same selection, without the sparse-matrix products and the dense pixel x pixel
    time differences.
    """
    above_picture = image >= picture
    above_boundary = image >= boundary
    in_picture = above_picture
    if not keep_isolated and min_picture_neighbors > 0:
        n_picture = _count_neighbors_in(indices, indptr, above_picture)
        in_picture = above_picture & (n_picture >= min_picture_neighbors)
    has_picture_neighbor = _count_neighbors_in(indices, indptr, in_picture) > 0
    if keep_isolated:
        mask = (above_boundary & has_picture_neighbor) | in_picture
    else:
        has_boundary_neighbor = _count_neighbors_in(indices, indptr, above_boundary) > 0
        mask = (above_boundary & has_picture_neighbor) | (
            in_picture & has_boundary_neighbor
        )
    if min_time_neighbors == 0:
        return mask
    # a pixel needs min_time_neighbors selected neighbours within time_limit of it,
    # both taken from the selection before this step
    timed = mask.copy()
    for pixel in np.flatnonzero(mask):
        n_close = 0
        for k in range(indptr[pixel], indptr[pixel + 1]):
            neighbor = indices[k]
            if (
                mask[neighbor]
                and abs(peak_time[pixel] - peak_time[neighbor]) < time_limit
            ):
                n_close += 1
        timed[pixel] = n_close >= min_time_neighbors
    return timed


class ImageCleanerSST(ImageCleaner):
    """
    SST-1M cleaning: tail cuts with picture thresholds raised by the pedestal
    noise of each pixel, time cleaning, optionally the main island only.

    The parameter set of a telescope is chosen by the NSB level, the mean
    pedestal charge over the camera (p.e.): the set with the highest
    ``min_nsb_level`` not above it. Pedestal statistics come from
    ``monitoring.pixel_statistics.pedestal_image`` (mean and std of the pedestal
    charge, p.e.), filled for real data by the NsbCalibrator. Without them the
    static thresholds of the lowest NSB set are used, and the cleaner says so
    once per telescope.
    """

    telescope_defaults = TelescopeParameter(
        trait=List(Dict(per_key_traits=_PARAMETER_TRAITS)),
        help=(
            "Cleaning parameter sets per telescope (TelescopeParameter: rules"
            " ['type', pattern, sets] and ['id', tel_id, sets], later rules win), one"
            " set per NSB level: a list of {min_nsb_level (p.e.), stdev_scaling,"
            " picture_threshold_pe, boundary_threshold_pe, min_picture_neighbors,"
            " keep_isolated, min_time_neighbors, time_limit_ns, only_main_island}."
            " Default: the reference sets of telescopes 21, 22, 1 and 2, picture 8 and"
            " boundary 4 p.e. for other telescopes."
        ),
    ).tag(config=True)

    @default("telescope_defaults")
    def _default_telescope_defaults(self):
        # a dynamic default: ctapipe validates a static default of a TelescopeParameter
        # without an owner, which fails for nested containers
        return DEFAULT_TELESCOPE_PARAMETERS

    use_pedestal_statistics = Bool(
        default_value=True,
        help=(
            "Raise picture thresholds with the pedestal statistics of the monitoring"
            " container. False for simulations: static thresholds, no warning."
        ),
    ).tag(config=True)

    def __init__(self, subarray, config=None, parent=None, **kwargs):
        super().__init__(subarray=subarray, config=config, parent=parent, **kwargs)
        # every rule is checked, also those of telescopes absent from the subarray
        for _, key, sets in self.telescope_defaults:
            _parameter_sets(key, sets)
        self.parameter_sets = {}
        for tel_id in subarray.tel:
            try:
                sets = self.telescope_defaults.tel[tel_id]
            except KeyError:
                raise ValueError(
                    f"ImageCleanerSST.telescope_defaults has no parameters for telescope {tel_id}"
                ) from None
            self.parameter_sets[tel_id] = _parameter_sets(tel_id, sets)
        self._warned_static = set()
        #: per telescope: number of cleaned images and sum of raised-threshold fractions
        self.n_images = dict.fromkeys(subarray.tel, 0)
        self.raised_fraction_sum = dict.fromkeys(subarray.tel, 0.0)

    def parameters_for(self, tel_id, nsb_level):
        """The parameter set of a telescope for an NSB level (mean pedestal charge, p.e.)."""
        sets = self.parameter_sets[tel_id]
        for parameters in sets:
            if nsb_level >= parameters.min_nsb_level:
                return parameters
        return sets[-1]

    def __call__(self, tel_id, image, arrival_times=None, *, monitoring=None):
        mean, std = None, None
        if self.use_pedestal_statistics:
            mean, std = _pedestal_statistics(monitoring)
        if mean is None:
            if self.use_pedestal_statistics and tel_id not in self._warned_static:
                self.log.warning(
                    "tel %d: no pedestal statistics, cleaning with the static thresholds",
                    tel_id,
                )
                self._warned_static.add(tel_id)
            nsb_level = 0.0
        else:
            nsb_level = float(np.nanmean(mean))
        parameters = self.parameters_for(tel_id, nsb_level)
        geom = self.subarray.tel[tel_id].camera.geometry
        mask, n_raised = sst_clean(geom, image, arrival_times, parameters, mean, std)
        self.n_images[tel_id] += 1
        self.raised_fraction_sum[tel_id] += n_raised / geom.n_pixels
        return mask


def _pedestal_statistics(monitoring):
    """Pedestal charge mean and std (p.e., first channel) from a CameraMonitoringContainer."""
    if monitoring is None:
        return None, None
    pedestal = monitoring.pixel_statistics.pedestal_image
    if pedestal.mean is None or pedestal.std is None:
        return None, None
    return np.asarray(pedestal.mean)[0], np.asarray(pedestal.std)[0]
