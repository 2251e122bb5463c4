"""
Stereo combination of SST-1M telescope-wise ML predictions, head-tail disambiguation.

``SST1MStereoCombiner`` is a drop-in replacement of ctapipe's ``StereoMeanCombiner``
(``stereo_combiner_cls`` of ``EnergyRegressor``, ``ParticleClassifier`` and
``DispReconstructor``):

* energy and gammaness: weighted mean over the valid telescopes (``weights``:
  ``intensity`` by default, ``none`` or ``konrad`` as in ctapipe) with the
  weighted (population) standard deviation as uncertainty, identical in the
  event-wise and the table-wise path; the energy may instead be weighted with
  the inverse variance of each telescope's estimate (``energy_weights``);
* direction: every telescope has two candidate source positions on its image
  axis, ``cog + disp`` (the one the DispReconstructor chose with its sign
  classifier) and ``cog - disp`` (the head-tail mirror). For ``n`` telescopes
  the ``2**n`` sign combinations are tried (greedy iteration above
  ``max_brute_force_telescopes``) and the one with the smallest sum of pairwise
  angular distances wins; ties keep the predicted signs. The chosen solutions
  are averaged as weighted unit vectors, renormalised (mean direction on the
  sphere), and ``ang_distance_uncert = sqrt(-2 ln R)`` with ``R`` the length of
  the weighted mean resultant vector (as in ctapipe). One telescope keeps its
  own sign prediction.

The module is long because the combiner has two paths, event-wise (``ctapipe-process``)
and table-wise (``ctapipe-apply-models``), that must give identical results and share
their helpers.

The mirrored solution is computed in the ``TelescopeFrame`` of each telescope as
``cog - disp * (cos psi, sin psi)`` from the DL1 Hillas parameters
(``hillas_fov_lon/lat``, ``hillas_psi``), the signed disp prediction
(``<prefix>_tel_parameter`` / ``event.dl2.tel[i].disp[prefix].parameter``) and
the telescope pointing, with the same transformation the DispReconstructor uses.
Without the disp parameter the chosen alt/az is transformed into the telescope
frame and mirrored through the cog (``2 cog - chosen``). Without cog or pointing
no mirror is available for that telescope and only its predicted solution is used.
See ``docs/stereo-combiner.md``.
"""

from itertools import combinations

import astropy.units as u
import numpy as np
from astropy.table import Table
from ctapipe.containers import (
    ArrayEventContainer,
    CoordinateFrameType,
    ParticleClassificationContainer,
    ReconstructedEnergyContainer,
    ReconstructedGeometryContainer,
)
from ctapipe.core import Container
from ctapipe.core.traits import CaselessStrEnum, Int
from ctapipe.reco.preprocessing import horizontal_to_telescope, telescope_to_horizontal
from ctapipe.reco.reconstructor import ReconstructionProperty
from ctapipe.reco.stereo_combination import StereoMeanCombiner
from ctapipe.reco.telescope_event_handling import get_subarray_index
from ctapipe.reco.utils import add_defaults_and_meta

from ..coordinates import altaz_to_unit, unit_to_altaz

__all__ = [
    "SST1MStereoCombiner",
    "choose_head_tail",
    "mean_direction",
]


def _az_deg(az_rad):
    """Azimuth in degrees in [0, 360)."""
    az = np.mod(np.rad2deg(az_rad), 360.0)
    return np.where(az >= 360.0, 0.0, az)


def _angle(a, b):
    """Angular distance (rad) between unit vectors, numerically stable everywhere."""
    cross = np.linalg.norm(np.cross(a, b), axis=-1)
    dot = np.sum(a * b, axis=-1)
    return np.arctan2(cross, dot)


def choose_head_tail(candidates, max_brute_force=10, max_iterations=20):
    """
    Choose one of the two solutions per telescope.

    Parameters
    ----------
    candidates : ndarray, shape (n_events, n_tel, 2, 3)
        unit vectors; ``[:, :, 0]`` is the predicted solution, ``[:, :, 1]`` the
        head-tail mirror (set it equal to ``[:, :, 0]`` when unknown).
    max_brute_force : int
        up to this many telescopes all ``2**n_tel`` combinations are tried,
        above a greedy coordinate descent starting at the predicted signs is used.

    Returns
    -------
    choice : ndarray of int, shape (n_events, n_tel)
        0 (predicted solution kept) or 1 (flipped) per telescope;
        among equally good combinations the one with fewest flips of the
        lowest-index telescopes (the predicted signs first) wins.
    """
    candidates = np.asarray(candidates, dtype=np.float64)
    n_events, n_tel = candidates.shape[:2]
    choice = np.zeros((n_events, n_tel), dtype=np.int64)
    if n_tel < 2 or n_events == 0:
        return choice

    # pairwise angular distance of all candidate pairs: dist[e, i, si, j, sj]
    a = candidates[:, :, :, None, None, :]
    b = candidates[:, None, None, :, :, :]
    dist = _angle(a, b)
    # a missing mirror (NaN) must never be chosen
    dist = np.where(np.isfinite(dist), dist, np.inf)
    pairs = list(combinations(range(n_tel), 2))
    ev = np.arange(n_events)

    if n_tel <= max_brute_force:
        # combination c flips telescope k if bit k of c is set; c = 0 is the
        # prediction, argmin returns the first minimum -> predicted signs on ties
        flips = (np.arange(2**n_tel)[:, None] >> np.arange(n_tel)[None, :]) & 1
        cost = np.zeros((n_events, len(flips)))
        for i, j in pairs:
            cost += dist[:, i, flips[:, i], j, flips[:, j]]
        return flips[np.argmin(cost, axis=1)]

    for _ in range(max_iterations):
        changed = False
        for i in range(n_tel):
            cost = np.zeros((n_events, 2))
            for j in range(n_tel):
                if j != i:
                    cost += dist[ev, i, :, j, choice[:, j]].reshape(n_events, 2)
            # keep the current sign unless the other one is strictly better
            current = cost[ev, choice[:, i]]
            other = cost[ev, 1 - choice[:, i]]
            better = other < current
            if np.any(better):
                choice[better, i] = 1 - choice[better, i]
                changed = True
        if not changed:
            break
    return choice


def mean_direction(vectors, weights):
    """
    Weighted mean direction on the sphere.

    Parameters
    ----------
    vectors : ndarray (n_events, n_tel, 3) unit vectors
    weights : ndarray (n_events, n_tel) non-negative weights

    Returns
    -------
    direction : ndarray (n_events, 3) unit vectors
    spread : ndarray (n_events,) ``sqrt(-2 ln R)`` in radians, ``R`` = length of
        the weighted mean resultant vector
    """
    weights = np.asarray(weights, dtype=np.float64)
    weights = np.where(np.isfinite(weights) & (weights > 0), weights, 0.0)
    total = weights.sum(axis=1, keepdims=True)
    # events without any positive weight: equal weights
    weights = np.where(total > 0, weights, 1.0)
    weights = weights / weights.sum(axis=1, keepdims=True)
    mean = np.einsum("et,etd->ed", weights, vectors)
    resultant = np.linalg.norm(mean, axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        direction = mean / resultant[:, None]
        spread = np.sqrt(-2 * np.log(np.clip(resultant, None, 1.0)))
    return direction, spread


def _mirror_solutions(alt, az, cog_lon, cog_lat, psi, disp, pointing_alt, pointing_az):
    """
    Head-tail mirror of the predicted solutions, all inputs arrays in degrees.

    ``cog - disp * (cos psi, sin psi)`` in the TelescopeFrame where the signed
    disp is finite, else ``2 cog - chosen`` (chosen = alt/az transformed into
    the telescope frame). Returns alt, az of the mirror in degrees (NaN where
    not computable).
    """
    alt, az, cog_lon, cog_lat, psi, disp, pointing_alt, pointing_az = (
        np.atleast_1d(np.asarray(v, dtype=np.float64))
        for v in (alt, az, cog_lon, cog_lat, psi, disp, pointing_alt, pointing_az)
    )
    n = len(alt)
    out_alt = np.full(n, np.nan)
    out_az = np.full(n, np.nan)
    ok = (
        np.isfinite(alt)
        & np.isfinite(az)
        & np.isfinite(cog_lon)
        & np.isfinite(cog_lat)
        & np.isfinite(pointing_alt)
        & np.isfinite(pointing_az)
    )
    if not np.any(ok):
        return out_alt, out_az

    lon = np.full(n, np.nan)
    lat = np.full(n, np.nan)
    use_disp = ok & np.isfinite(disp) & np.isfinite(psi)
    if np.any(use_disp):
        psi_rad = np.deg2rad(psi[use_disp])
        lon[use_disp] = cog_lon[use_disp] - disp[use_disp] * np.cos(psi_rad)
        lat[use_disp] = cog_lat[use_disp] - disp[use_disp] * np.sin(psi_rad)

    use_mirror = ok & ~use_disp
    if np.any(use_mirror):
        chosen_lon, chosen_lat = horizontal_to_telescope(
            alt=u.Quantity(alt[use_mirror], u.deg),
            az=u.Quantity(az[use_mirror], u.deg),
            pointing_alt=u.Quantity(pointing_alt[use_mirror], u.deg),
            pointing_az=u.Quantity(pointing_az[use_mirror], u.deg),
        )
        lon[use_mirror] = 2 * cog_lon[use_mirror] - chosen_lon.to_value(u.deg)
        lat[use_mirror] = 2 * cog_lat[use_mirror] - chosen_lat.to_value(u.deg)

    m_alt, m_az = telescope_to_horizontal(
        lon=u.Quantity(lon[ok], u.deg),
        lat=u.Quantity(lat[ok], u.deg),
        pointing_alt=u.Quantity(pointing_alt[ok], u.deg),
        pointing_az=u.Quantity(pointing_az[ok], u.deg),
    )
    out_alt[ok] = m_alt.to_value(u.deg)
    out_az[ok] = m_az.to_value(u.deg)
    return out_alt, out_az


def _column(table, name, unit=None, fill=np.nan):
    """Plain float ndarray of a (possibly masked / unit-carrying) column, or None."""
    if name not in table.colnames:
        return None
    col = table[name]
    if isinstance(col, u.Quantity):  # QTable column
        values = col.to_value(unit) if unit is not None else col.value
        return np.asarray(values, dtype=np.float64)
    values = np.ma.filled(np.ma.asarray(col).astype(np.float64), fill)
    if unit is not None and col.unit is not None:
        values = u.Quantity(values, col.unit).to_value(unit)
    return np.asarray(values, dtype=np.float64)


def _tel_parameters(event, tel_id):
    """DL1 ImageParametersContainer of a telescope or None (without creating it)."""
    if tel_id not in event.dl1.tel:
        return None
    return event.dl1.tel[tel_id].parameters


def _to_deg(value):
    """Scalar in degrees from a Quantity / Angle / None."""
    if value is None:
        return np.nan
    if isinstance(value, u.Quantity):
        return float(value.to_value(u.deg))
    return float(value)


class SST1MStereoCombiner(StereoMeanCombiner):
    """
    Weighted-mean stereo combination with head-tail disambiguation of the
    disp solutions (see ``docs/stereo-combiner.md``).

    Energy and particle classification are combined as in
    ``StereoMeanCombiner`` (weighted mean, weighted standard deviation), but
    with intensity weights by default and the same (population) weighted
    standard deviation in the event-wise and the table-wise paths.
    For the direction each telescope contributes the one of its two disp
    solutions (``cog +- |disp|`` along the image axis) that makes the
    telescopes agree best, and the chosen solutions are averaged on the sphere.
    """

    weights = CaselessStrEnum(
        ["none", "intensity", "konrad"],
        default_value="intensity",
        help=(
            "What kind of weights to use: ``none``, ``intensity``"
            " (hillas_intensity) or ``konrad`` (intensity * length / width)."
        ),
    ).tag(config=True)

    energy_weights = CaselessStrEnum(
        ["weights", "inverse_variance"],
        default_value="weights",
        help=(
            "Weights of the energy combination: ``weights`` (as for the other"
            " properties) or ``inverse_variance``, 1 / (energy_uncert / energy)**2 of"
            " each telescope's prediction (filled by SST1MEnergyRegressor from the"
            " spread of its forest). An array event with a telescope without a finite"
            " uncertainty is combined with ``weights``."
        ),
    ).tag(config=True)

    max_brute_force_telescopes = Int(
        10,
        min=1,
        help=(
            "Up to this many telescopes in an event all 2**n head-tail combinations"
            " are tried; above, a greedy iteration from the predicted signs is used."
        ),
    ).tag(config=True)

    # ------------------------------------------------------------------ #
    # weights
    # ------------------------------------------------------------------ #
    def _uses_inverse_variance(self):
        return (
            self.property is ReconstructionProperty.ENERGY
            and self.energy_weights == "inverse_variance"
        )

    def _calculate_weights(self, data):
        if isinstance(data, Table) and self._uses_inverse_variance():
            return self._inverse_variance_weights(data)
        return self._configured_weights(data)

    @staticmethod
    def _inverse_relative_variance(energy, uncert):
        """(energy / uncert)**2, NaN where the uncertainty is not finite and positive."""
        energy = np.asarray(energy, dtype=np.float64)
        uncert = np.asarray(uncert, dtype=np.float64)
        usable = np.isfinite(uncert) & (uncert > 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(usable, (energy / uncert) ** 2, np.nan)

    def _inverse_variance_weights(self, table):
        """1 / relative variance per row; events lacking one keep ``weights``."""
        fallback = self._configured_weights(table)
        energy = _column(table, f"{self.prefix}_tel_energy", u.TeV)
        uncert = _column(table, f"{self.prefix}_tel_energy_uncert", u.TeV)
        if energy is None or uncert is None or len(table) == 0:
            return fallback
        weights = self._inverse_relative_variance(energy, uncert)
        # rows of one array event are contiguous, as for StereoMeanCombiner
        *_, event_of_row = get_subarray_index(table)
        complete = np.bincount(event_of_row, weights=np.isnan(weights)) == 0
        return np.where(complete[event_of_row], weights, fallback)

    def _configured_weights(self, data):
        if isinstance(data, Table):
            cols = data.colnames
            if self.weights == "none":
                return np.ones(len(data))

            frame = "hillas_" if "hillas_intensity" in cols else "camera_frame_hillas_"
            if f"{frame}intensity" not in cols:
                raise KeyError(
                    f"weights={self.weights!r} needs hillas_intensity or"
                    " camera_frame_hillas_intensity in the telescope table"
                )
            weights = _column(data, f"{frame}intensity")
            if self.weights == "konrad":
                weights = (
                    weights
                    * _column(data, f"{frame}length")  # same unit: ratio only
                    / _column(data, f"{frame}width")
                )
            return weights

        if isinstance(data, Container):
            return super()._calculate_weights(data)

        raise TypeError(
            "Dl1 data needs to be provided in the form of a container"
            " or astropy.table.Table"
        )

    def _event_weight(self, event, tel_id):
        if self.weights == "none":
            return 1.0
        params = _tel_parameters(event, tel_id)
        if params is None:
            raise ValueError(f"No DL1 parameters of telescope {tel_id} for weighting")
        weight = self._calculate_weights(params)
        if isinstance(weight, u.Quantity):
            weight = weight.to_value(u.dimensionless_unscaled)
        return float(weight)

    @staticmethod
    def _mean_std(values, weights):
        values = np.asarray(values, dtype=np.float64)
        weights = np.asarray(weights, dtype=np.float64)
        weights = np.where(np.isfinite(weights) & (weights > 0), weights, 0.0)
        if weights.sum() <= 0:
            weights = np.ones_like(values)
        mean = np.average(values, weights=weights)
        std = np.sqrt(np.average((values - mean) ** 2, weights=weights))
        return mean, std

    # ------------------------------------------------------------------ #
    # event-wise path
    # ------------------------------------------------------------------ #
    def _combine_energy(self, event):
        ids, values, weights, uncerts = [], [], [], []
        for tel_id, dl2 in event.dl2.tel.items():
            mono = dl2.energy.get(self.prefix)
            if mono is not None and mono.is_valid:
                values.append(mono.energy.to_value(u.TeV))
                uncerts.append(mono.energy_uncert.to_value(u.TeV))
                weights.append(self._event_weight(event, tel_id))
                ids.append(tel_id)

        if self._uses_inverse_variance():
            inverse_variance = self._inverse_relative_variance(values, uncerts)
            if not np.any(np.isnan(inverse_variance)):
                weights = inverse_variance
        if values:
            if self.log_target:
                values = np.log(values)
            mean, std = self._mean_std(values, weights)
            if self.log_target:
                mean, std = np.exp(mean), np.exp(std)
            valid = bool(np.isfinite(mean))
        else:
            mean = std = np.nan
            valid = False

        event.dl2.stereo.energy[self.prefix] = ReconstructedEnergyContainer(
            energy=u.Quantity(mean, u.TeV),
            energy_uncert=u.Quantity(std, u.TeV),
            telescopes=ids,
            is_valid=valid,
            prefix=self.prefix,
        )

    def _combine_classification(self, event):
        ids, values, weights = [], [], []
        for tel_id, dl2 in event.dl2.tel.items():
            mono = dl2.particle_type.get(self.prefix)
            if mono is not None and mono.is_valid:
                values.append(mono.prediction)
                weights.append(self._event_weight(event, tel_id))
                ids.append(tel_id)

        if values:
            mean, _ = self._mean_std(values, weights)
            valid = bool(np.isfinite(mean))
        else:
            mean = np.nan
            valid = False

        event.dl2.stereo.particle_type[self.prefix] = ParticleClassificationContainer(
            prediction=mean, telescopes=ids, is_valid=valid, prefix=self.prefix
        )

    def _combine_altaz(self, event):
        ids, weights, rows = [], [], []
        for tel_id, dl2 in event.dl2.tel.items():
            mono = dl2.geometry.get(self.prefix)
            if mono is None or not mono.is_valid:
                continue
            alt, az = _to_deg(mono.alt), _to_deg(mono.az)
            if not (np.isfinite(alt) and np.isfinite(az)):
                continue

            disp = dl2.disp.get(self.prefix)
            disp = _to_deg(disp.parameter) if disp is not None else np.nan
            cog_lon = cog_lat = psi = np.nan
            hillas = getattr(_tel_parameters(event, tel_id), "hillas", None)
            # only the TelescopeFrame HillasParametersContainer has fov_lon/lat
            if hillas is not None and hasattr(hillas, "fov_lon"):
                cog_lon, cog_lat = _to_deg(hillas.fov_lon), _to_deg(hillas.fov_lat)
                psi = _to_deg(hillas.psi)
            pointing = event.monitoring.tel[tel_id].pointing
            pointing_alt = _to_deg(pointing.altitude)
            pointing_az = _to_deg(pointing.azimuth)
            rows.append(
                (alt, az, cog_lon, cog_lat, psi, disp, pointing_alt, pointing_az)
            )
            weights.append(self._event_weight(event, tel_id))
            ids.append(tel_id)

        if rows:
            cols = np.array(rows, dtype=np.float64).T
            m_alt, m_az = _mirror_solutions(*cols)
            direction, spread = self._combine_candidates(
                cols[0][None],
                cols[1][None],
                m_alt[None],
                m_az[None],
                np.asarray(weights)[None],
            )
            alt_rad, az_rad = unit_to_altaz(direction[0])
            alt, az = float(np.rad2deg(alt_rad)), float(_az_deg(az_rad))
            spread = float(np.rad2deg(spread[0]))
            valid = bool(np.isfinite(alt) and np.isfinite(az))
        else:
            alt = az = spread = np.nan
            valid = False

        event.dl2.stereo.geometry[self.prefix] = ReconstructedGeometryContainer(
            alt=u.Quantity(alt, u.deg),
            az=u.Quantity(az, u.deg),
            ang_distance_uncert=u.Quantity(spread, u.deg),
            telescopes=ids,
            is_valid=valid,
            prefix=self.prefix,
        )

    def __call__(self, event: ArrayEventContainer) -> None:
        """Fill ``event.dl2.stereo.<property>[prefix]`` for one array event."""
        for prop in ReconstructionProperty:
            if prop not in self.supported or prop not in self.property:
                continue
            if prop is ReconstructionProperty.ENERGY:
                self._combine_energy(event)
            elif prop is ReconstructionProperty.PARTICLE_TYPE:
                self._combine_classification(event)
            elif prop is ReconstructionProperty.GEOMETRY:
                self._combine_altaz(event)

    # ------------------------------------------------------------------ #
    # shared direction core
    # ------------------------------------------------------------------ #
    def _combine_candidates(self, alt, az, mirror_alt, mirror_az, weights):
        """
        All arrays (n_events, n_tel) in degrees; returns unit direction
        (n_events, 3) and spread (n_events,) in radians.
        """
        predicted = altaz_to_unit(np.deg2rad(alt), np.deg2rad(az))
        mirror = altaz_to_unit(np.deg2rad(mirror_alt), np.deg2rad(mirror_az))
        # unknown mirror: only the predicted solution is available
        missing = ~np.all(np.isfinite(mirror), axis=-1)
        mirror[missing] = predicted[missing]
        candidates = np.stack([predicted, mirror], axis=2)
        choice = choose_head_tail(candidates, self.max_brute_force_telescopes)
        n_events, n_tel = choice.shape
        chosen = candidates[
            np.arange(n_events)[:, None], np.arange(n_tel)[None, :], choice
        ]
        return mean_direction(chosen, weights)

    # ------------------------------------------------------------------ #
    # table-wise path
    # ------------------------------------------------------------------ #
    @staticmethod
    def _table_pointing(table):
        """Pointing alt, az (deg) per row, as the DispReconstructor reads it."""
        if "telescope_pointing_altitude" in table.colnames:
            return (
                _column(table, "telescope_pointing_altitude", u.deg),
                _column(table, "telescope_pointing_azimuth", u.deg),
            )
        if "subarray_pointing_lat" in table.colnames:
            frames = np.unique(np.asarray(table["subarray_pointing_frame"]))
            altaz = CoordinateFrameType.ALTAZ
            if len(frames) == 1 and CoordinateFrameType(frames[0]) is altaz:
                return (
                    _column(table, "subarray_pointing_lat", u.deg),
                    _column(table, "subarray_pointing_lon", u.deg),
                )
        return None, None

    def _predict_geometry_table(self, mono_predictions):
        prefix = f"{self.prefix}_tel"
        table = mono_predictions
        n_rows = len(table)

        obs_ids, event_ids, _, tel_to_array = get_subarray_index(table)
        n_events = len(obs_ids)
        stereo_table = Table({"obs_id": obs_ids, "event_id": event_ids})
        for colname in ("obs_id", "event_id"):
            stereo_table[colname].description = table[colname].description

        alt = _column(table, f"{prefix}_alt", u.deg)
        az = _column(table, f"{prefix}_az", u.deg)
        valid = np.ma.filled(np.ma.asarray(table[f"{prefix}_is_valid"]), False)
        valid = np.asarray(valid, dtype=bool) & np.isfinite(alt) & np.isfinite(az)

        nan = np.full(n_rows, np.nan)
        cog_lon = _column(table, "hillas_fov_lon", u.deg)
        cog_lat = _column(table, "hillas_fov_lat", u.deg)
        psi = _column(table, "hillas_psi", u.deg)
        disp = _column(table, f"{self.prefix}_tel_parameter", u.deg)
        pointing_alt, pointing_az = self._table_pointing(table)
        if cog_lon is None or cog_lat is None or pointing_alt is None:
            self.log.warning(
                "No hillas_fov_lon/lat or pointing in the telescope table:"
                " no head-tail disambiguation, plain spherical mean"
            )

        mirror_alt = np.full(n_rows, np.nan)
        mirror_az = np.full(n_rows, np.nan)
        if np.any(valid):
            inputs = [cog_lon, cog_lat, psi, disp, pointing_alt, pointing_az]
            inputs = [(nan if col is None else col)[valid] for col in inputs]
            mirror_alt[valid], mirror_az[valid] = _mirror_solutions(
                alt[valid], az[valid], *inputs
            )
            weights = np.zeros(n_rows)
            weights[valid] = self._calculate_weights(table[valid])

        stereo_alt = np.full(n_events, np.nan)
        stereo_az = np.full(n_events, np.nan)
        spread = np.full(n_events, np.nan)

        rows_valid = np.nonzero(valid)[0]
        event_of_row = tel_to_array[rows_valid]
        n_valid = np.bincount(event_of_row, minlength=n_events)
        for n_tel in np.unique(n_valid[n_valid > 0]):
            sel = n_valid[event_of_row] == n_tel
            order = np.argsort(event_of_row[sel], kind="stable")
            rows = rows_valid[sel][order].reshape(-1, n_tel)
            events = event_of_row[sel][order][::n_tel]
            direction, ev_spread = self._combine_candidates(
                alt[rows], az[rows], mirror_alt[rows], mirror_az[rows], weights[rows]
            )
            ev_alt, ev_az = unit_to_altaz(direction)
            stereo_alt[events] = np.rad2deg(ev_alt)
            stereo_az[events] = _az_deg(ev_az)
            spread[events] = np.rad2deg(ev_spread)

        stereo_table[f"{self.prefix}_alt"] = u.Quantity(stereo_alt, u.deg)
        stereo_table[f"{self.prefix}_az"] = u.Quantity(stereo_az, u.deg)
        stereo_table[f"{self.prefix}_ang_distance_uncert"] = u.Quantity(spread, u.deg)
        stereo_table[f"{self.prefix}_is_valid"] = np.isfinite(stereo_alt) & np.isfinite(
            stereo_az
        )
        stereo_table[f"{self.prefix}_goodness_of_fit"] = np.nan

        tel_ids = [[] for _ in range(n_events)]
        for index, tel_id in zip(tel_to_array[valid], table["tel_id"][valid]):
            tel_ids[index].append(tel_id)
        stereo_table[f"{self.prefix}_telescopes"] = tel_ids

        add_defaults_and_meta(stereo_table, ReconstructedGeometryContainer, self.prefix)
        return stereo_table

    def predict_table(self, mono_predictions: Table) -> Table:
        """
        Array-event-wise combination of a table of telescope events (rows of one
        array event contiguous, as in ``ctapipe-apply-models``).

        Energy and classification as ``StereoMeanCombiner.predict_table`` (with
        this class' weights); geometry with head-tail disambiguation.
        """
        if self.property is ReconstructionProperty.GEOMETRY:
            return self._predict_geometry_table(mono_predictions)
        return super().predict_table(mono_predictions)
