"""
Image parameters of one cleaned image in a single compiled call.

The numbers are those of ctapipe's ``hillas_parameters``, ``leakage_parameters``,
``concentration_parameters`` and ``morphology_parameters`` (ctapipe 0.32): the same
formulas, evaluated in the same precision (the Hillas moments in float64 from the
float32 image, the leakage and concentration sums in the precision of the image), so
that they agree to the rounding of the summation order. What ctapipe spends per image
on slicing a ``CameraGeometry``, astropy quantities and small numpy calls is left out:
`image_parameters` takes plain arrays prepared once per camera (`PixelArrays`).

The timing fit and the descriptive statistics are not here: `NumbaImageProcessor`
calls ctapipe's own functions for them, so that the least-trimmed-squares fit draws
the same random samples from ctapipe's generator.
"""

from dataclasses import dataclass

import numpy as np
from numba import njit

__all__ = [
    "HILLAS_FIELDS",
    "PixelArrays",
    "image_parameters",
    "pixel_arrays",
]

#: eigenvalues of the covariance closer to 0 than this are 0 (ctapipe's HILLAS_ATOL)
EIGENVALUE_ATOL = np.finfo(np.float64).eps

#: the float64 results of `image_parameters`, in order
HILLAS_FIELDS = (
    "x",
    "y",
    "r",
    "phi",
    "intensity",
    "length",
    "length_uncertainty",
    "width",
    "width_uncertainty",
    "psi",
    "psi_uncertainty",
    "transverse_cog_uncertainty",
    "skewness",
    "kurtosis",
    "concentration_cog",
    "concentration_core",
    "concentration_pixel",
)

#: islands of at most this many pixels are small, of more than LARGE_ISLAND large
SMALL_ISLAND = 2
LARGE_ISLAND = 50


@dataclass(frozen=True)
class PixelArrays:
    """The pixel description of one camera that `image_parameters` needs."""

    #: pixel positions (float64, in ``unit``)
    x: np.ndarray
    y: np.ndarray
    #: pixel areas (float64, ``unit`` squared)
    area: np.ndarray
    #: pixel widths (float64, ``unit``)
    width: np.ndarray
    #: pixels on the border (width 1) and within 2 pixels of it
    border_1: np.ndarray
    border_2: np.ndarray
    #: neighbours as a sparse matrix in CSR form
    neighbor_indices: np.ndarray
    neighbor_indptr: np.ndarray
    #: unit of positions and widths (astropy unit)
    unit: object


def pixel_arrays(geometry):
    """
    The `PixelArrays` of a camera geometry (camera or telescope frame).

    Parameters
    ----------
    geometry : ctapipe.instrument.CameraGeometry

    Returns
    -------
    PixelArrays
    """
    unit = geometry.pix_x.unit
    neighbors = geometry.neighbor_matrix_sparse
    return PixelArrays(
        x=geometry.pix_x.to_value(unit).astype(np.float64),
        y=geometry.pix_y.to_value(unit).astype(np.float64),
        area=geometry.pix_area.to_value(unit**2).astype(np.float64),
        width=geometry.pixel_width.to_value(unit).astype(np.float64),
        border_1=geometry.get_border_pixel_mask(1),
        border_2=geometry.get_border_pixel_mask(2),
        neighbor_indices=neighbors.indices.astype(np.int64),
        neighbor_indptr=neighbors.indptr.astype(np.int64),
        unit=unit,
    )


def image_parameters(pixels, image, mask):
    """
    Hillas, concentration, leakage and morphology parameters of a cleaned image.

    Parameters
    ----------
    pixels : PixelArrays
        The camera (its telescope-frame geometry for telescope-frame parameters).
    image : numpy.ndarray
        Pixel charges of the whole camera (float32 or float64); the charges of the
        pixels in ``mask`` must sum to more than 0 and at least two must be in it.
    mask : numpy.ndarray
        The cleaning mask (bool).

    Returns
    -------
    hillas : numpy.ndarray
        float64 values of `HILLAS_FIELDS` (angles in rad, lengths in ``pixels.unit``).
    leaked_pixels : numpy.ndarray
        Leakage ``pixels_width_1, pixels_width_2`` (float64).
    leaked_intensity : numpy.ndarray
        Leakage ``intensity_width_1, intensity_width_2``, in the image's precision
        (float32 for a float32 image) as in ctapipe.
    morphology : numpy.ndarray
        int64 ``n_pixels, n_islands, n_small_islands, n_medium_islands,
        n_large_islands``.
    longitudinal : numpy.ndarray
        Coordinate along the shower axis of each pixel in the mask (``pixels.unit``),
        the abscissa of the timing fit.
    """
    selected = np.flatnonzero(mask)
    return _image_parameters(
        pixels.x,
        pixels.y,
        pixels.area,
        pixels.width,
        pixels.border_1,
        pixels.border_2,
        pixels.neighbor_indices,
        pixels.neighbor_indptr,
        image,
        mask,
        selected,
    )


@njit(cache=True)
def _weighted_mean(values, weights, weight_sum):
    total = 0.0
    for i in range(values.size):
        total += values[i] * weights[i]
    return total / weight_sum


@njit(cache=True)
def _hillas(x, y, area, width, image, values):
    """Hillas parameters and concentration of the selected pixels (x, y, image)."""
    n = image.size
    weights = image.astype(np.float64)
    size = np.sum(weights)
    cog_x = _weighted_mean(x, weights, size)
    cog_y = _weighted_mean(y, weights, size)
    delta_x = x - cog_x
    delta_y = y - cog_y
    # the covariance as numpy.cov(aweights=image, ddof=0) computes it: centred again
    centre_x = _weighted_mean(delta_x, weights, size)
    centre_y = _weighted_mean(delta_y, weights, size)
    cov_xx = cov_yy = cov_xy = 0.0
    for i in range(n):
        dx = delta_x[i] - centre_x
        dy = delta_y[i] - centre_y
        cov_xx += dx * dx * weights[i]
        cov_yy += dy * dy * weights[i]
        cov_xy += dx * dy * weights[i]
    cov = np.array([[cov_xx, cov_xy], [cov_xy, cov_yy]]) / size
    eigenvalues, eigenvectors = np.linalg.eigh(cov)
    for k in range(2):
        if abs(eigenvalues[k]) <= EIGENVALUE_ATOL:
            eigenvalues[k] = 0.0
    hillas_width = np.sqrt(eigenvalues[0])
    length = np.sqrt(eigenvalues[1])
    vx, vy = eigenvectors[0, 1], eigenvectors[1, 1]

    psi = psi_uncertainty = transverse_uncertainty = np.nan
    skewness = kurtosis = np.nan
    if length != 0:
        psi = np.arctan(vy / vx) if vx != 0 else np.pi / 2
        cos_psi, sin_psi = np.cos(psi), np.sin(psi)
        longi = delta_x * cos_psi + delta_y * sin_psi
        trans = delta_x * -sin_psi + delta_y * cos_psi
        skewness = _weighted_mean(longi**3, weights, size) / length**3
        kurtosis = _weighted_mean(longi**4, weights, size) / length**4
        # weighted least squares of trans against (longi, 1): uncertainty of psi
        w = weights / area
        s_ll = np.sum(w * longi * longi)
        s_l = np.sum(w * longi)
        s_1 = np.sum(w)
        lsq_cov = np.linalg.inv(np.array([[s_ll, s_l], [s_l, s_1]]))
        rhs = np.array([np.sum(w * longi * trans), np.sum(w * trans)])
        p = lsq_cov @ rhs
        psi_uncertainty = np.sqrt(lsq_cov[0, 0] + p[0] * p[0]) * (
            1.0 + np.tan(hillas_width / length * np.pi / 2.0) ** 2
        )
        sin_p0 = np.sin(p[0])
        transverse_uncertainty = np.sqrt(lsq_cov[1, 1] * (1.0 + sin_p0 * sin_p0))

    cos_2psi = np.cos(2 * psi)
    a = (1 + cos_2psi) / 2
    b = (1 - cos_2psi) / 2
    c = np.sin(2 * psi)
    moment_a = (delta_x**2 - cov[0, 0]) / size
    moment_b = (delta_y**2 - cov[1, 1]) / size
    moment_c = (delta_x * delta_y - cov[0, 1]) / size
    length_uncertainty = np.nan
    if length != 0:
        terms = (a * moment_a + b * moment_b + c * moment_c) ** 2
        length_uncertainty = np.sqrt(np.sum(terms * weights)) / (2 * length)
    width_uncertainty = np.nan
    if hillas_width != 0:
        terms = (b * moment_a + a * moment_b - c * moment_c) ** 2
        width_uncertainty = np.sqrt(np.sum(terms * weights)) / (2 * hillas_width)

    # concentration: sums in the image's precision, divided by the float64 intensity
    near_cog = image[:1] * 0
    core = image[:1] * 0
    for i in range(n):
        if delta_x[i] ** 2 + delta_y[i] ** 2 < width[i] ** 2:
            near_cog[0] += image[i]
    if hillas_width != 0:
        cos_psi, sin_psi = np.cos(psi), np.sin(psi)
        for i in range(n):
            longi_i = delta_x[i] * cos_psi + delta_y[i] * sin_psi
            trans_i = delta_x[i] * -sin_psi + delta_y[i] * cos_psi
            if longi_i**2 / length**2 + trans_i**2 / hillas_width**2 <= 1.0:
                core[0] += image[i]

    values[0] = cog_x
    values[1] = cog_y
    values[2] = np.sqrt(cog_x**2 + cog_y**2)
    values[3] = np.arctan2(cog_y, cog_x)
    values[4] = size
    values[5] = length
    values[6] = length_uncertainty
    values[7] = hillas_width
    values[8] = width_uncertainty
    values[9] = psi
    values[10] = psi_uncertainty
    values[11] = transverse_uncertainty
    values[12] = skewness
    values[13] = kurtosis
    values[14] = near_cog[0] / size
    values[15] = core[0] / size if hillas_width != 0 else 0.0
    values[16] = np.max(image) / size


@njit(cache=True)
def _islands(neighbor_indices, neighbor_indptr, mask, selected, morphology):
    """Islands of the mask (connected pixels) counted by size."""
    labels = np.zeros(mask.size, dtype=np.int64)
    stack = np.empty(selected.size, dtype=np.int64)
    n_islands = n_small = n_medium = n_large = 0
    for start in selected:
        if labels[start]:
            continue
        n_islands += 1
        labels[start] = n_islands
        stack[0] = start
        depth = 1
        n_island_pixels = 0
        while depth:
            depth -= 1
            pixel = stack[depth]
            n_island_pixels += 1
            for k in range(neighbor_indptr[pixel], neighbor_indptr[pixel + 1]):
                neighbor = neighbor_indices[k]
                if mask[neighbor] and not labels[neighbor]:
                    labels[neighbor] = n_islands
                    stack[depth] = neighbor
                    depth += 1
        if n_island_pixels <= SMALL_ISLAND:
            n_small += 1
        elif n_island_pixels > LARGE_ISLAND:
            n_large += 1
        else:
            n_medium += 1
    morphology[0] = selected.size
    morphology[1] = n_islands
    morphology[2] = n_small
    morphology[3] = n_medium
    morphology[4] = n_large


@njit(cache=True)
def _image_parameters(
    pix_x,
    pix_y,
    pix_area,
    pix_width,
    border_1,
    border_2,
    neighbor_indices,
    neighbor_indptr,
    image,
    mask,
    selected,
):
    x = pix_x[selected]
    y = pix_y[selected]
    values = np.empty(len(HILLAS_FIELDS))
    _hillas(x, y, pix_area[selected], pix_width[selected], image[selected], values)

    n_pixels = selected.size
    # sums in the image's precision: [border 1, border 2, all]
    intensities = np.zeros(3, dtype=image.dtype)
    n_leaked_1 = n_leaked_2 = 0
    for i in selected:
        intensities[2] += image[i]
        if border_1[i]:
            n_leaked_1 += 1
            intensities[0] += image[i]
        if border_2[i]:
            n_leaked_2 += 1
            intensities[1] += image[i]
    leaked_pixels = np.array([n_leaked_1 / n_pixels, n_leaked_2 / n_pixels])
    leaked_intensity = intensities[:2] / intensities[2]

    morphology = np.empty(5, dtype=np.int64)
    _islands(neighbor_indices, neighbor_indptr, mask, selected, morphology)

    psi = values[9]
    if np.isnan(psi):
        longitudinal = np.full(n_pixels, np.nan)
    else:
        longitudinal = (x - values[0]) * np.cos(psi) + (y - values[1]) * np.sin(psi)
    return values, leaked_pixels, leaked_intensity, morphology, longitudinal
