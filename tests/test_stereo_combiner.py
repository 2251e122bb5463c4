"""SST1MStereoCombiner: weighted means, head-tail disambiguation of disp solutions."""

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import angular_separation
from astropy.table import Table, hstack
from ctapipe.containers import (
    ArrayEventContainer,
    DispContainer,
    HillasParametersContainer,
    ImageParametersContainer,
    ParticleClassificationContainer,
    ReconstructedEnergyContainer,
    ReconstructedGeometryContainer,
)
from ctapipe.reco import DispReconstructor, EnergyRegressor
from ctapipe.reco.preprocessing import telescope_to_horizontal
from ctapipe.reco.reconstructor import ReconstructionProperty
from ctapipe.reco.stereo_combination import StereoCombiner, StereoMeanCombiner
from traitlets.config import Config

from ctapipe_sst1m.coordinates import altaz_to_unit, unit_to_altaz
from ctapipe_sst1m.instrument import sst1m_subarray
from ctapipe_sst1m.stereo.combiner import SST1MStereoCombiner, choose_head_tail

GEOM = ReconstructionProperty.GEOMETRY
ENERGY = ReconstructionProperty.ENERGY
CLS = ReconstructionProperty.PARTICLE_TYPE
POINTING = (70.0, 10.0)  # alt, az in deg


def sep_deg(alt1, az1, alt2, az2):
    """Angular separation in degrees of alt/az given in degrees."""
    return np.rad2deg(
        angular_separation(
            np.deg2rad(az1), np.deg2rad(alt1), np.deg2rad(az2), np.deg2rad(alt2)
        )
    )


def geom_sep(geom, true_altaz):
    """Separation (deg) of a ReconstructedGeometryContainer from true alt/az."""
    return sep_deg(geom.alt.to_value(u.deg), geom.az.to_value(u.deg), *true_altaz)


def table_sep(stereo, true_altaz, prefix="disp"):
    alt = stereo[f"{prefix}_alt"].quantity.to_value(u.deg)
    az = stereo[f"{prefix}_az"].quantity.to_value(u.deg)
    return sep_deg(alt, az, *true_altaz)


def values(column, unit):
    return column.quantity.to_value(unit)


def combine_geometry(table, **kwargs):
    return SST1MStereoCombiner(prefix="disp", property=GEOM, **kwargs).predict_table(
        table
    )


def to_altaz(lon, lat, pointing=POINTING):
    alt, az = telescope_to_horizontal(
        lon=u.Quantity(lon, u.deg),
        lat=u.Quantity(lat, u.deg),
        pointing_alt=u.Quantity(np.full(np.shape(lon), pointing[0]), u.deg),
        pointing_az=u.Quantity(np.full(np.shape(lon), pointing[1]), u.deg),
    )
    return alt.to_value(u.deg), az.to_value(u.deg)


def mono(src, psi, dist, sign, pointing=POINTING):
    """
    One telescope image: the true source ``src`` (fov lon, lat in deg) lies at
    ``cog + dist * (cos psi, sin psi)``; the predicted signed disp is
    ``sign * dist`` and the predicted alt/az is computed as the
    DispReconstructor does.
    """
    psi_rad = np.deg2rad(psi)
    cog = (src[0] - dist * np.cos(psi_rad), src[1] - dist * np.sin(psi_rad))
    disp = sign * dist
    pred = (cog[0] + disp * np.cos(psi_rad), cog[1] + disp * np.sin(psi_rad))
    alt, az = to_altaz(pred[0], pred[1], pointing)
    return dict(
        hillas_fov_lon=cog[0],
        hillas_fov_lat=cog[1],
        hillas_psi=psi,
        disp_tel_parameter=disp,
        disp_tel_alt=float(alt),
        disp_tel_az=float(az),
        telescope_pointing_altitude=pointing[0],
        telescope_pointing_azimuth=pointing[1],
    )


def mono_table(rows):
    """rows: dicts of obs_id, event_id, tel_id, intensity, is_valid and mono()."""
    names = list(rows[0])
    table = Table({name: [row[name] for row in rows] for name in names})
    units = {
        "hillas_fov_lon": u.deg,
        "hillas_fov_lat": u.deg,
        "hillas_psi": u.deg,
        "disp_tel_parameter": u.deg,
        "disp_tel_alt": u.deg,
        "disp_tel_az": u.deg,
        "telescope_pointing_altitude": u.deg,
        "telescope_pointing_azimuth": u.deg,
        "hillas_length": u.deg,
        "hillas_width": u.deg,
    }
    for name, unit in units.items():
        if name in table.colnames:
            table[name].unit = unit
    return table


def row(event_id, tel_id, intensity=100.0, is_valid=True, **kwargs):
    return dict(
        obs_id=1,
        event_id=event_id,
        tel_id=tel_id,
        hillas_intensity=intensity,
        disp_tel_is_valid=is_valid,
        **kwargs,
    )


SRC = (0.8, -0.5)  # true source in the telescope frame (deg)


@pytest.fixture(scope="module")
def true_altaz():
    alt, az = to_altaz(SRC[0], SRC[1])
    return float(alt), float(az)


@pytest.fixture
def wrong_sign_table():
    """
    event 1: tel 1 right, tel 2 wrong head-tail sign;
    event 2: tel 1 wrong, tel 2 right, different intensities;
    event 3: both right;
    event 4: only tel 2 valid (tel 1 failed the quality cuts), right sign.
    """
    rows = [
        row(1, 1, 200.0, **mono(SRC, 30.0, 1.0, +1)),
        row(1, 2, 100.0, **mono(SRC, 110.0, 0.7, -1)),
        row(2, 1, 300.0, **mono(SRC, -20.0, 0.9, -1)),
        row(2, 2, 50.0, **mono(SRC, 75.0, 1.2, +1)),
        row(3, 1, 80.0, **mono(SRC, 160.0, 0.6, +1)),
        row(3, 2, 90.0, **mono(SRC, 45.0, 1.1, +1)),
        row(4, 1, 10.0, is_valid=False, **mono(SRC, 10.0, 0.5, -1)),
        row(4, 2, 120.0, **mono(SRC, 60.0, 0.8, +1)),
    ]
    return mono_table(rows)


def test_selectable_by_name():
    assert "SST1MStereoCombiner" in StereoCombiner.non_abstract_subclasses()
    combiner = StereoCombiner.from_name(
        "SST1MStereoCombiner", prefix="disp", property=GEOM
    )
    assert isinstance(combiner, SST1MStereoCombiner)
    assert combiner.weights == "intensity"

    sub = sst1m_subarray((1, 2))
    disp = DispReconstructor(
        sub,
        norm_cls="KNeighborsRegressor",
        sign_cls="KNeighborsClassifier",
        stereo_combiner_cls="SST1MStereoCombiner",
    )
    assert isinstance(disp.stereo_combiner, SST1MStereoCombiner)
    assert disp.stereo_combiner.property is GEOM
    energy = EnergyRegressor(
        sub, model_cls="KNeighborsRegressor", stereo_combiner_cls="SST1MStereoCombiner"
    )
    assert isinstance(energy.stereo_combiner, SST1MStereoCombiner)
    assert energy.stereo_combiner.property is ENERGY


def test_table_recovers_wrong_sign(wrong_sign_table, true_altaz):
    combiner = SST1MStereoCombiner(prefix="disp", property=GEOM)
    stereo = combiner.predict_table(wrong_sign_table)
    plain = StereoMeanCombiner(prefix="disp", property=GEOM, weights="intensity")
    plain_stereo = plain.predict_table(wrong_sign_table)

    assert list(stereo["event_id"]) == [1, 2, 3, 4]
    assert stereo["disp_alt"].unit == u.deg and stereo["disp_az"].unit == u.deg
    assert np.all(stereo["disp_is_valid"])
    sep = sep_deg(stereo["disp_alt"].value, stereo["disp_az"].value, *true_altaz)
    np.testing.assert_array_less(sep, 1e-6)
    # all chosen solutions coincide -> no spread
    uncert = values(stereo["disp_ang_distance_uncert"], u.deg)
    np.testing.assert_allclose(uncert, 0, atol=1e-5)

    # the plain mean is pulled away by the wrong-sign telescope
    plain_sep = table_sep(plain_stereo, true_altaz)
    assert plain_sep[0] > 0.2 and plain_sep[1] > 0.2
    assert plain_sep[2] < 1e-6 and plain_sep[3] < 1e-6

    assert [list(t) for t in stereo["disp_telescopes"]] == [[1, 2], [1, 2], [1, 2], [2]]
    # same columns as the stock combiner
    assert set(stereo.colnames) == set(plain_stereo.colnames)


def test_table_mirror_without_disp_parameter(wrong_sign_table, true_altaz):
    """Only alt/az per telescope: the mirror is built through the cog."""
    table = wrong_sign_table.copy()
    table.remove_column("disp_tel_parameter")
    table.remove_column("hillas_psi")
    stereo = SST1MStereoCombiner(prefix="disp", property=GEOM).predict_table(table)
    sep = sep_deg(stereo["disp_alt"].value, stereo["disp_az"].value, *true_altaz)
    np.testing.assert_array_less(sep, 1e-5)


def test_table_subarray_pointing_fallback(wrong_sign_table, true_altaz):
    table = wrong_sign_table.copy()
    table.rename_columns(
        ["telescope_pointing_altitude", "telescope_pointing_azimuth"],
        ["subarray_pointing_lat", "subarray_pointing_lon"],
    )
    table["subarray_pointing_frame"] = 0  # CoordinateFrameType.ALTAZ
    stereo = SST1MStereoCombiner(prefix="disp", property=GEOM).predict_table(table)
    sep = sep_deg(stereo["disp_alt"].value, stereo["disp_az"].value, *true_altaz)
    np.testing.assert_array_less(sep, 1e-6)


def test_single_telescope_keeps_predicted_sign(true_altaz):
    wrong = mono_table([row(1, 1, **mono(SRC, 30.0, 1.0, -1))])
    stereo = SST1MStereoCombiner(prefix="disp", property=GEOM).predict_table(wrong)
    assert stereo["disp_is_valid"][0]
    np.testing.assert_allclose(stereo["disp_alt"], wrong["disp_tel_alt"], atol=1e-9)
    np.testing.assert_allclose(stereo["disp_az"].value, wrong["disp_tel_az"], atol=1e-9)
    assert stereo["disp_ang_distance_uncert"][0] == 0


def test_no_valid_telescope():
    table = mono_table([row(1, 1, is_valid=False, **mono(SRC, 30.0, 1.0, 1))])
    stereo = SST1MStereoCombiner(prefix="disp", property=GEOM).predict_table(table)
    assert not stereo["disp_is_valid"][0]
    assert np.isnan(stereo["disp_alt"][0])
    assert list(stereo["disp_telescopes"][0]) == []


def test_weighted_spherical_mean():
    """Both solutions right but different: intensity-weighted unit-vector mean."""
    alt1, az1 = 70.3, 10.2
    alt2, az2 = 69.8, 9.5
    table = mono_table(
        [
            row(1, 1, 300.0, disp_tel_alt=alt1, disp_tel_az=az1),
            row(1, 2, 100.0, disp_tel_alt=alt2, disp_tel_az=az2),
        ]
    )
    stereo = SST1MStereoCombiner(prefix="disp", property=GEOM).predict_table(table)
    vec = 0.75 * altaz_to_unit(*np.deg2rad([alt1, az1])) + 0.25 * altaz_to_unit(
        *np.deg2rad([alt2, az2])
    )
    alt, az = np.rad2deg(unit_to_altaz(vec))
    np.testing.assert_allclose(stereo["disp_alt"][0], alt, atol=1e-10)
    np.testing.assert_allclose(stereo["disp_az"][0], az, atol=1e-10)
    r = np.linalg.norm(vec)
    np.testing.assert_allclose(
        stereo["disp_ang_distance_uncert"][0],
        np.rad2deg(np.sqrt(-2 * np.log(r))),
        rtol=1e-8,
    )
    # weights = none: plain mean
    stereo = combine_geometry(table, weights="none")
    vec = altaz_to_unit(*np.deg2rad([alt1, az1])) + altaz_to_unit(
        *np.deg2rad([alt2, az2])
    )
    np.testing.assert_allclose(stereo["disp_alt"][0], np.rad2deg(unit_to_altaz(vec)[0]))


@pytest.mark.parametrize(
    "alts, azs, expected_alt",
    [
        ((60.0, 60.0), (359.9, 0.1), 60.0),
        ((89.9, 89.9), (0.0, 180.0), 90.0),
        ((89.95, 89.95), (90.0, 270.0), 90.0),
    ],
)
def test_wrap_and_zenith(alts, azs, expected_alt):
    table = mono_table(
        [
            row(1, 1, disp_tel_alt=alts[0], disp_tel_az=azs[0]),
            row(1, 2, disp_tel_alt=alts[1], disp_tel_az=azs[1]),
        ]
    )
    stereo = SST1MStereoCombiner(prefix="disp", property=GEOM).predict_table(table)
    alt, az = stereo["disp_alt"][0], stereo["disp_az"][0]
    # great-circle midpoint: slightly above the common altitude
    vec = altaz_to_unit(*np.deg2rad([alts[0], azs[0]])) + altaz_to_unit(
        *np.deg2rad([alts[1], azs[1]])
    )
    np.testing.assert_allclose(alt, np.rad2deg(unit_to_altaz(vec)[0]), atol=1e-9)
    np.testing.assert_allclose(alt, expected_alt, atol=1e-4)
    if expected_alt < 90:
        assert 0 <= az < 360
        assert min(az, 360 - az) < 1e-6  # 0, not 180
    # spread: half of the separation for two equally weighted directions
    half = sep_deg(alts[0], azs[0], alts[1], azs[1]) / 2
    np.testing.assert_allclose(stereo["disp_ang_distance_uncert"][0], half, rtol=1e-3)


def test_head_tail_near_zenith():
    """Pointing 0.3 deg from the zenith, source beyond the zenith (az flips)."""
    pointing = (89.7, 0.0)
    src = (0.0, 0.5)
    true = to_altaz(src[0], src[1], pointing)
    rows = [
        row(1, 1, 100.0, **mono(src, 20.0, 1.0, -1, pointing)),
        row(1, 2, 100.0, **mono(src, 100.0, 0.8, +1, pointing)),
    ]
    stereo = combine_geometry(mono_table(rows))
    assert sep_deg(stereo["disp_alt"][0], stereo["disp_az"][0], *true) < 1e-6


def make_event(table):
    """ArrayEventContainer of one array event from a mono_table."""
    event = ArrayEventContainer()
    for r in table:
        tel_id = int(r["tel_id"])
        event.dl1.tel[tel_id].parameters = ImageParametersContainer()
        event.dl1.tel[tel_id].parameters.hillas = HillasParametersContainer(
            fov_lon=r["hillas_fov_lon"] * u.deg,
            fov_lat=r["hillas_fov_lat"] * u.deg,
            psi=r["hillas_psi"] * u.deg,
            intensity=r["hillas_intensity"],
            length=0.2 * u.deg,
            width=0.05 * u.deg,
        )
        pointing = event.monitoring.tel[tel_id].pointing
        pointing.altitude = r["telescope_pointing_altitude"] * u.deg
        pointing.azimuth = r["telescope_pointing_azimuth"] * u.deg
        valid = bool(r["disp_tel_is_valid"])
        event.dl2.tel[tel_id].disp["disp"] = DispContainer(
            parameter=r["disp_tel_parameter"] * u.deg, sign_score=0.5
        )
        event.dl2.tel[tel_id].geometry["disp"] = ReconstructedGeometryContainer(
            alt=r["disp_tel_alt"] * u.deg, az=r["disp_tel_az"] * u.deg, is_valid=valid
        )
    return event


def test_event_wise_matches_table(wrong_sign_table, true_altaz):
    combiner = SST1MStereoCombiner(prefix="disp", property=GEOM)
    stereo = combiner.predict_table(wrong_sign_table)
    for i, event_id in enumerate([1, 2, 3, 4]):
        sub_table = wrong_sign_table[wrong_sign_table["event_id"] == event_id]
        event = make_event(sub_table)
        combiner(event)
        geom = event.dl2.stereo.geometry["disp"]
        assert geom.is_valid
        assert geom_sep(geom, true_altaz) < 1e-6
        alt = geom.alt.to_value(u.deg)
        np.testing.assert_allclose(alt, stereo["disp_alt"][i], atol=1e-9)
        assert list(geom.telescopes) == list(stereo["disp_telescopes"][i])

    # plain stock combiner is wrong on event 1
    event = make_event(wrong_sign_table[wrong_sign_table["event_id"] == 1])
    StereoMeanCombiner(prefix="disp", property=GEOM)(event)
    geom = event.dl2.stereo.geometry["disp"]
    assert sep_deg(geom.alt.to_value(u.deg), geom.az.to_value(u.deg), *true_altaz) > 0.2


def test_event_wise_without_disp_container(wrong_sign_table, true_altaz):
    """Mirror through the cog when only the geometry is known."""
    event = make_event(wrong_sign_table[wrong_sign_table["event_id"] == 2])
    for tel in event.dl2.tel.values():
        tel.disp.clear()
    SST1MStereoCombiner(prefix="disp", property=GEOM)(event)
    geom = event.dl2.stereo.geometry["disp"]
    assert geom_sep(geom, true_altaz) < 1e-5


def energy_inputs():
    energies = np.array([1.0, 2.0, 4.0, 3.0])
    intensities = np.array([100.0, 300.0, 50.0, 70.0])
    valid = np.array([True, True, True, False])
    table = Table(
        {
            "obs_id": [1, 1, 2, 2],
            "event_id": [1, 1, 1, 1],
            "tel_id": [1, 2, 1, 2],
            "hillas_intensity": intensities,
            "hillas_length": [0.2, 0.3, 0.2, 0.2] * u.deg,
            "hillas_width": [0.05, 0.05, 0.1, 0.1] * u.deg,
            "energy_tel_energy": energies * u.TeV,
            "energy_tel_is_valid": valid,
            "cls_tel_prediction": [0.9, 0.5, 0.2, 0.1],
            "cls_tel_is_valid": valid,
        }
    )
    return table


def expected_mean_std(values, weights):
    mean = np.sum(weights * values) / np.sum(weights)
    std = np.sqrt(np.sum(weights * (values - mean) ** 2) / np.sum(weights))
    return mean, std


def test_energy_and_classification_table():
    table = energy_inputs()
    combiner = SST1MStereoCombiner(prefix="energy", property=ENERGY)
    stereo = combiner.predict_table(table)
    mean, std = expected_mean_std(np.array([1.0, 2.0]), np.array([100.0, 300.0]))
    assert stereo["energy_energy"].unit == u.TeV
    np.testing.assert_allclose(values(stereo["energy_energy"], u.TeV), [mean, 4.0])
    uncert = values(stereo["energy_energy_uncert"], u.TeV)
    np.testing.assert_allclose(uncert, [std, 0.0])
    assert list(stereo["energy_is_valid"]) == [True, True]
    assert [list(t) for t in stereo["energy_telescopes"]] == [[1, 2], [1]]

    cls = SST1MStereoCombiner(prefix="cls", property=CLS)
    stereo = cls.predict_table(table)
    expected = [(0.9 * 100 + 0.5 * 300) / 400, 0.2]
    np.testing.assert_allclose(stereo["cls_prediction"], expected)

    unweighted = SST1MStereoCombiner(
        prefix="energy", property=ENERGY, weights="none"
    ).predict_table(table)
    np.testing.assert_allclose(values(unweighted["energy_energy"], u.TeV), [1.5, 4.0])

    konrad = SST1MStereoCombiner(
        prefix="energy", property=ENERGY, weights="konrad"
    ).predict_table(table)
    w = np.array([100.0 * 0.2 / 0.05, 300.0 * 0.3 / 0.05])
    np.testing.assert_allclose(
        konrad["energy_energy"].quantity.to_value(u.TeV)[0],
        expected_mean_std(np.array([1.0, 2.0]), w)[0],
    )


def test_energy_camera_frame_weights():
    table = energy_inputs()
    table.rename_column("hillas_intensity", "camera_frame_hillas_intensity")
    stereo = SST1MStereoCombiner(prefix="energy", property=ENERGY).predict_table(table)
    mean, _ = expected_mean_std(np.array([1.0, 2.0]), np.array([100.0, 300.0]))
    np.testing.assert_allclose(values(stereo["energy_energy"], u.TeV)[0], mean)


def test_energy_and_classification_event_wise():
    event = ArrayEventContainer()
    inputs = [(1, 1.0, 100.0, 0.9), (2, 2.0, 300.0, 0.5)]
    for tel_id, energy, intensity, score in inputs:
        event.dl1.tel[tel_id].parameters = ImageParametersContainer(
            hillas=HillasParametersContainer(intensity=intensity)
        )
        event.dl2.tel[tel_id].energy["energy"] = ReconstructedEnergyContainer(
            energy=energy * u.TeV, is_valid=True
        )
        event.dl2.tel[tel_id].particle_type["cls"] = ParticleClassificationContainer(
            prediction=score, is_valid=True
        )
    SST1MStereoCombiner(prefix="energy", property=ENERGY)(event)
    SST1MStereoCombiner(prefix="cls", property=CLS)(event)
    mean, std = expected_mean_std(np.array([1.0, 2.0]), np.array([100.0, 300.0]))
    result = event.dl2.stereo.energy["energy"]
    assert result.is_valid and result.telescopes == [1, 2]
    np.testing.assert_allclose(result.energy.to_value(u.TeV), mean)
    np.testing.assert_allclose(result.energy_uncert.to_value(u.TeV), std)
    np.testing.assert_allclose(
        event.dl2.stereo.particle_type["cls"].prediction, (0.9 * 100 + 0.5 * 300) / 400
    )

    # single telescope: zero spread (stock event-wise path would give NaN)
    single = ArrayEventContainer()
    single.dl1.tel[1].parameters = ImageParametersContainer(
        hillas=HillasParametersContainer(intensity=100.0)
    )
    single.dl2.tel[1].energy["energy"] = ReconstructedEnergyContainer(
        energy=3 * u.TeV, is_valid=True
    )
    SST1MStereoCombiner(prefix="energy", property=ENERGY)(single)
    assert single.dl2.stereo.energy["energy"].energy == 3 * u.TeV
    assert single.dl2.stereo.energy["energy"].energy_uncert == 0 * u.TeV


def inverse_variance_inputs():
    """Three array events of two telescopes; the last one lacks telescope 2's uncertainty."""
    return Table(
        {
            "obs_id": [1, 1, 1, 1, 1, 1],
            "event_id": [1, 1, 2, 2, 3, 3],
            "tel_id": [1, 2, 1, 2, 1, 2],
            "hillas_intensity": [100.0, 300.0, 100.0, 300.0, 100.0, 300.0],
            "iv_tel_energy": [1.0, 2.0, 4.0, 2.0, 1.0, 2.0] * u.TeV,
            "iv_tel_energy_uncert": [0.1, 0.4, 0.8, 0.2, 0.1, np.nan] * u.TeV,
            "iv_tel_is_valid": [True] * 6,
        }
    )


def test_energy_inverse_variance_table():
    table = inverse_variance_inputs()
    combiner = SST1MStereoCombiner(
        prefix="iv", property=ENERGY, log_target=True, energy_weights="inverse_variance"
    )
    stereo = combiner.predict_table(table)
    energy = values(stereo["iv_energy"], u.TeV)
    # relative uncertainties 0.1 and 0.2: weights 100 and 25 on log(E)
    expected_1 = np.exp((100 * np.log(1.0) + 25 * np.log(2.0)) / 125)
    # 0.2 and 0.1: the second telescope dominates
    expected_2 = np.exp((25 * np.log(4.0) + 100 * np.log(2.0)) / 125)
    # missing uncertainty: the event falls back to the intensity weights
    expected_3 = np.exp((100 * np.log(1.0) + 300 * np.log(2.0)) / 400)
    np.testing.assert_allclose(energy, [expected_1, expected_2, expected_3])

    # the default combines with the configured weights, whatever the uncertainties
    default = SST1MStereoCombiner(prefix="iv", property=ENERGY, log_target=True)
    np.testing.assert_allclose(
        values(default.predict_table(table)["iv_energy"], u.TeV)[:2],
        [
            np.exp((100 * np.log(1.0) + 300 * np.log(2.0)) / 400),
            np.exp((100 * np.log(4.0) + 300 * np.log(2.0)) / 400),
        ],
    )

    # gammaness and direction ignore energy_weights
    table["iv_tel_prediction"] = [0.9, 0.5, 0.9, 0.5, 0.9, 0.5]
    cls = SST1MStereoCombiner(
        prefix="iv", property=CLS, energy_weights="inverse_variance"
    )
    np.testing.assert_allclose(
        cls.predict_table(table)["iv_prediction"], (0.9 * 100 + 0.5 * 300) / 400
    )


def test_energy_inverse_variance_event_wise_matches_table():
    table = inverse_variance_inputs()
    combiner = SST1MStereoCombiner(
        prefix="iv", property=ENERGY, log_target=True, energy_weights="inverse_variance"
    )
    expected = values(combiner.predict_table(table)["iv_energy"], u.TeV)
    for event_id, energy in zip([1, 2, 3], expected):
        event = ArrayEventContainer()
        for row in table[table["event_id"] == event_id]:
            tel_id = int(row["tel_id"])
            event.dl1.tel[tel_id].parameters = ImageParametersContainer(
                hillas=HillasParametersContainer(intensity=row["hillas_intensity"])
            )
            event.dl2.tel[tel_id].energy["iv"] = ReconstructedEnergyContainer(
                energy=row["iv_tel_energy"] * u.TeV,
                energy_uncert=row["iv_tel_energy_uncert"] * u.TeV,
                is_valid=True,
            )
        combiner(event)
        np.testing.assert_allclose(
            event.dl2.stereo.energy["iv"].energy.to_value(u.TeV), energy
        )


def test_choose_head_tail_many_telescopes():
    rng = np.random.default_rng(1)
    true = altaz_to_unit(np.deg2rad(70.0), np.deg2rad(10.0))
    n_events, n_tel = 50, 5
    candidates = np.empty((n_events, n_tel, 2, 3))
    wrong = rng.random((n_events, n_tel)) < 0.4
    for e in range(n_events):
        for t in range(n_tel):
            other = altaz_to_unit(
                np.deg2rad(70.0 + rng.uniform(-2, 2)),
                np.deg2rad(10.0 + rng.uniform(-5, 5)),
            )
            right = true + rng.normal(0, 1e-4, 3)
            pair = (other, right) if wrong[e, t] else (right, other)
            candidates[e, t] = pair
    candidates /= np.linalg.norm(candidates, axis=-1, keepdims=True)
    brute = choose_head_tail(candidates)
    greedy = choose_head_tail(candidates, max_brute_force=0)
    np.testing.assert_array_equal(brute, wrong.astype(int))
    np.testing.assert_array_equal(greedy, wrong.astype(int))


class _Norm:
    """Fake |disp| regressor: feature 0 (hillas_width) is |disp| in deg."""

    def predict(self, X):
        return X[:, 0].astype(float)


class _Sign:
    """Fake sign classifier: feature 1 (hillas_skewness) is P(sign = +1)."""

    def predict_proba(self, X):
        p = X[:, 1].astype(float)
        return np.column_stack([1 - p, p])


@pytest.fixture
def disp_reconstructor():
    sub = sst1m_subarray((1, 2))
    reco = DispReconstructor(
        sub,
        norm_cls="KNeighborsRegressor",
        sign_cls="KNeighborsClassifier",
        features=["hillas_width", "hillas_skewness"],
        stereo_combiner_cls="SST1MStereoCombiner",
        models={sub.tel[1]: (_Norm(), _Sign())},
        config=Config({"MLQualityQuery": {"quality_criteria": []}}),
    )
    reco.unit = u.deg
    return reco


def _dl1_for_reconstructor(wrong_sign_table):
    """DL1 table with the fake features: |disp| as width, sign proba as skewness."""
    table = wrong_sign_table[wrong_sign_table["event_id"] != 4].copy()
    table["hillas_width"] = np.abs(table["disp_tel_parameter"]) * u.deg
    table["hillas_skewness"] = np.where(table["disp_tel_parameter"] > 0, 0.9, 0.1)
    table["hillas_length"] = 0.3 * u.deg
    keep = [c for c in table.colnames if not c.startswith("disp_")]
    return table[keep]


def test_with_disp_reconstructor_table(
    disp_reconstructor, wrong_sign_table, true_altaz
):
    """ctapipe-apply-models flow: predict_table per telescope, then the combiner."""
    dl1 = _dl1_for_reconstructor(wrong_sign_table)
    key = disp_reconstructor.subarray.tel[1]
    predictions = disp_reconstructor.predict_table(key, dl1)
    mono_predictions = hstack(
        [dl1, predictions[ReconstructionProperty.DISP], predictions[GEOM]]
    )
    stereo = disp_reconstructor.stereo_combiner.predict_table(mono_predictions)
    sep = sep_deg(stereo["disp_alt"].value, stereo["disp_az"].value, *true_altaz)
    np.testing.assert_array_less(sep, 1e-4)


def test_with_disp_reconstructor_event(
    disp_reconstructor, wrong_sign_table, true_altaz
):
    """ctapipe-process flow: DispReconstructor.__call__ calls the combiner."""
    dl1 = _dl1_for_reconstructor(wrong_sign_table)
    for event_id in (1, 2, 3):
        rows = dl1[dl1["event_id"] == event_id]
        event = ArrayEventContainer()
        event.trigger.tels_with_trigger = np.array(rows["tel_id"])
        for r in rows:
            tel_id = int(r["tel_id"])
            event.dl1.tel[tel_id].parameters = ImageParametersContainer()
            event.dl1.tel[tel_id].parameters.hillas = HillasParametersContainer(
                fov_lon=r["hillas_fov_lon"] * u.deg,
                fov_lat=r["hillas_fov_lat"] * u.deg,
                psi=r["hillas_psi"] * u.deg,
                intensity=r["hillas_intensity"],
                width=r["hillas_width"] * u.deg,
                length=r["hillas_length"] * u.deg,
                skewness=r["hillas_skewness"],
            )
            pointing = event.monitoring.tel[tel_id].pointing
            pointing.altitude = r["telescope_pointing_altitude"] * u.deg
            pointing.azimuth = r["telescope_pointing_azimuth"] * u.deg
        disp_reconstructor(event)
        geom = event.dl2.stereo.geometry["disp"]
        assert geom.is_valid
        assert geom_sep(geom, true_altaz) < 1e-4


def test_python_config_registers_plugin_for_training_tools(tmp_path):
    """
    The documented recipe: ctapipe's training tools do not import plugins, a
    Python config file importing the module (``-c plugins.py``) registers the
    combiner before the YAML config selects it; the pickled model keeps it.
    """
    import subprocess
    import sys

    (tmp_path / "plugins.py").write_text(
        "import ctapipe_sst1m.stereo.combiner  # noqa: F401\n"
    )
    (tmp_path / "cfg.yaml").write_text(
        "DispReconstructor:\n"
        "  norm_cls: KNeighborsRegressor\n"
        "  sign_cls: KNeighborsClassifier\n"
        "  stereo_combiner_cls: SST1MStereoCombiner\n"
        "SST1MStereoCombiner:\n"
        "  weights: konrad\n"
    )
    script = (
        "import io, sys, joblib\n"
        "from ctapipe.tools.train_disp_reconstructor import TrainDispReconstructor\n"
        "from ctapipe.reco import DispReconstructor\n"
        "from ctapipe_sst1m.instrument import sst1m_subarray\n"
        "tool = TrainDispReconstructor()\n"
        "for path in sys.argv[1:]:\n"
        "    tool.load_config_file(path)\n"
        "reco = DispReconstructor(sst1m_subarray((1, 2)), parent=tool)\n"
        "buf = io.BytesIO(); joblib.dump(reco, buf); buf.seek(0)\n"
        "combiner = joblib.load(buf).stereo_combiner\n"
        "print(type(combiner).__name__, combiner.weights)\n"
    )
    run = [sys.executable, "-c", script]
    ok = subprocess.run(
        run + [str(tmp_path / "plugins.py"), str(tmp_path / "cfg.yaml")],
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.split() == ["SST1MStereoCombiner", "konrad"]
