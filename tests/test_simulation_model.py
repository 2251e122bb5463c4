"""The fast SST-1M shower + detector model: documented relations (docs/simulation-model.md)."""

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import AltAz, SkyCoord
from ctapipe.coordinates import CameraFrame
from scipy.optimize import minimize_scalar

from ctapipe_sst1m.instrument import N_PIXELS, N_SAMPLES, sst1m_subarray
from ctapipe_sst1m.simulation.camera import CameraSimulator, pulse_table
from ctapipe_sst1m.simulation.images import ShowerImager, altaz_to_camera
from ctapipe_sst1m.simulation.showers import (
    SHOWER_PARTICLES,
    Shower,
    ShowerSampler,
    direction_vector,
    height_of_slant_depth,
)

ALT = np.deg2rad(70.0)
AZ = np.deg2rad(180.0)
F = 5.69705


@pytest.fixture(scope="module")
def subarray():
    return sst1m_subarray((1, 2))


def showers_at_impact(
    subarray, impacts, energy=1.0, particle="gamma", tel_id=1, offset_deg=0.4
):
    """Showers from the wobble source whose axis passes at `impacts` (m) from a telescope."""
    impacts = np.atleast_1d(np.asarray(impacts, dtype=float))
    n = impacts.size
    alt, az = ALT + np.deg2rad(offset_deg), AZ
    d = direction_vector(alt, az)
    u_perp = np.cross(d, [0, 0, 1.0])
    u_perp /= np.linalg.norm(u_perp)
    tel = subarray.positions[tel_id].to_value(u.m)
    points = tel + impacts[:, None] * u_perp
    core = points - d * (points[:, 2:3] / d[2])
    zenith = np.pi / 2 - alt
    x_max = np.full(n, 300.0 + 85 * np.log10(energy) if particle == "gamma" else 380.0)
    return Shower(
        energy_tev=np.full(n, float(energy)),
        alt_rad=np.full(n, alt),
        az_rad=np.full(n, az),
        core_x_m=core[:, 0],
        core_y_m=core[:, 1],
        h_first_int_m=np.full(n, 25000.0),
        x_max_gcm2=x_max,
        h_max_m=height_of_slant_depth(x_max, zenith),
        primary_id=np.full(n, SHOWER_PARTICLES[particle], dtype=np.int32),
        light_yield_factor=np.ones(n),
    )


# ------------------------------------------------------------------ primaries
def test_power_law_index():
    sampler = ShowerSampler(
        energy_min_tev=0.2,
        energy_max_tev=300.0,
        spectral_index=-2.0,
        rng=np.random.default_rng(1),
    )
    e = sampler.sample(20000).energy_tev
    assert e.min() >= 0.2 and e.max() <= 300.0
    lo, hi = 0.2, 300.0

    def nll(index):
        g = index + 1
        norm = g / (hi**g - lo**g)
        return -(np.log(norm) * e.size + index * np.log(e).sum())

    fit = minimize_scalar(nll, bounds=(-3.5, -1.2), method="bounded").x
    sigma = 1.0 / np.sqrt(e.size)  # (index+1)/sqrt(n) for index -2
    assert abs(fit + 2.0) < 4 * sigma


def test_point_and_diffuse_directions():
    rng = np.random.default_rng(2)
    p = direction_vector(ALT, AZ)
    point = ShowerSampler(spectrum="point", source_offset_deg=0.4, rng=rng).sample(100)
    offsets = np.rad2deg(np.arccos(np.clip(point.direction @ p, -1, 1)))
    np.testing.assert_allclose(offsets, 0.4, atol=1e-6)
    assert np.ptp(point.alt_rad) == 0 and np.ptp(point.az_rad) == 0
    np.testing.assert_allclose(point.alt_rad, ALT + np.deg2rad(0.4), atol=1e-9)

    diffuse = ShowerSampler(
        particle="proton", spectrum="diffuse", viewcone_deg=10.0, rng=rng
    )
    s = diffuse.sample(20000)
    theta = np.arccos(np.clip(s.direction @ p, -1, 1))
    assert np.rad2deg(theta.max()) <= 10.0 + 1e-9
    # uniform in solid angle: P(theta < 5 deg) = (1 - cos 5)/(1 - cos 10) ~ 0.25
    expected = (1 - np.cos(np.deg2rad(5))) / (1 - np.cos(np.deg2rad(10)))
    assert abs(np.mean(theta < np.deg2rad(5)) - expected) < 0.015
    assert np.all(s.primary_id == 101)


def test_cores_uniform_on_ground_disk():
    s = ShowerSampler(max_impact_m=500.0, rng=np.random.default_rng(3)).sample(20000)
    r2 = s.core_x_m**2 + s.core_y_m**2
    assert r2.max() <= 500.0**2
    assert abs(r2.mean() / 500.0**2 - 0.5) < 0.01


def test_shower_maximum():
    rng = np.random.default_rng(4)
    g = ShowerSampler(energy_min_tev=0.99, energy_max_tev=1.01, rng=rng).sample(5000)
    p = ShowerSampler(
        particle="proton",
        spectrum="diffuse",
        viewcone_deg=5,
        energy_min_tev=0.99,
        energy_max_tev=1.01,
        rng=rng,
    ).sample(5000)
    assert abs(g.x_max_gcm2.mean() - 300.0) < 5
    assert p.x_max_gcm2.mean() > g.x_max_gcm2.mean() + 40
    assert p.x_max_gcm2.std() > g.x_max_gcm2.std()
    # exponential atmosphere, 8.4 km scale height, 1030 g/cm^2 at sea level
    zenith = np.pi / 2 - g.alt_rad
    np.testing.assert_allclose(
        g.h_max_m, -8400.0 * np.log(g.x_max_gcm2 * np.cos(zenith) / 1030.0), rtol=1e-9
    )
    assert np.all(g.h_first_int_m > g.h_max_m)
    hi = ShowerSampler(energy_min_tev=9.9, energy_max_tev=10.1, rng=rng).sample(5000)
    assert abs(hi.x_max_gcm2.mean() - g.x_max_gcm2.mean() - 85.0) < 8


def test_determinism(subarray):
    def run(seed):
        rng = np.random.default_rng(seed)
        s = ShowerSampler(rng=rng, energy_min_tev=2.0, max_impact_m=100).sample(3)
        img = ShowerImager(subarray, rng).image(s[0], 1, ALT, AZ)
        r1 = CameraSimulator(subarray, rng).r1_waveform(1, img.n_pe, img.peak_time_ns)
        return s, img, r1

    (s1, i1, r1), (s2, i2, r2), (_, _, r3) = run(7), run(7), run(8)
    for k, v in s1.as_dict().items():
        np.testing.assert_array_equal(v, s2.as_dict()[k])
    np.testing.assert_array_equal(i1.n_pe, i2.n_pe)
    np.testing.assert_array_equal(r1, r2)
    assert not np.array_equal(r1, r3)


# ------------------------------------------------------------------ camera geometry
def test_projection_matches_ctapipe_camera_frame():
    rng = np.random.default_rng(5)
    alt = 70.0 + rng.uniform(-4, 4, 200)
    az = 180.0 + rng.uniform(-10, 10, 200)
    frame = AltAz()
    pointing = SkyCoord(alt=70 * u.deg, az=180 * u.deg, frame=frame)
    cam = SkyCoord(alt=alt * u.deg, az=az * u.deg, frame=frame).transform_to(
        CameraFrame(focal_length=F * u.m, telescope_pointing=pointing)
    )
    x, y = altaz_to_camera(np.deg2rad(alt), np.deg2rad(az), ALT, AZ, F)
    assert np.abs(cam.x.to_value(u.m) - x).max() < 1e-3
    assert np.abs(cam.y.to_value(u.m) - y).max() < 1e-3
    # orientation: higher altitude -> +x, higher azimuth -> +y
    x, y = altaz_to_camera(ALT + np.deg2rad(1), AZ, ALT, AZ, F)
    assert x > 0.09 and abs(y) < 1e-12
    x, y = altaz_to_camera(ALT, AZ + np.deg2rad(1), ALT, AZ, F)
    assert y > 0 and abs(x) < 1e-3


def test_source_and_axis_in_camera(subarray):
    imager = ShowerImager(subarray, np.random.default_rng(6))
    s = showers_at_impact(subarray, [150.0], energy=5.0)
    img = imager.image(s[0], 1, ALT, AZ)
    np.testing.assert_allclose(
        [img.source_x_m, img.source_y_m], [F * np.deg2rad(0.4), 0], atol=1e-6
    )
    dx, dy = img.cog_x_m - img.source_x_m, img.cog_y_m - img.source_y_m
    np.testing.assert_allclose(np.arctan2(dy, dx), img.psi_rad, atol=1e-9)
    # the light is where the model puts it
    lit = img.n_pe > 0
    geom = subarray.tel[1].camera.geometry
    cx = np.average(geom.pix_x.to_value(u.m)[lit], weights=img.n_pe[lit])
    cy = np.average(geom.pix_y.to_value(u.m)[lit], weights=img.n_pe[lit])
    assert np.hypot(cx - img.cog_x_m, cy - img.cog_y_m) < 0.02


# ------------------------------------------------------------------ light model
def test_yield_proportional_to_energy_and_light_pool(subarray):
    imager = ShowerImager(subarray, np.random.default_rng(8))
    impacts = np.array([20.0, 60.0, 100.0, 120.0, 200.0, 300.0])
    g1 = imager.shower_geometry(showers_at_impact(subarray, impacts, 1.0), 1, ALT, AZ)
    g10 = imager.shower_geometry(showers_at_impact(subarray, impacts, 10.0), 1, ALT, AZ)
    np.testing.assert_allclose(g1["impact"], impacts, rtol=1e-6)
    mean1 = g1["mean_pe_nominal"]
    # ~100 p.e./TeV inside the pool (plateau), falling beyond
    np.testing.assert_allclose(mean1[:4], 100.0, rtol=1e-9)
    assert mean1[4] < 0.5 * mean1[3] and mean1[5] < 0.5 * mean1[4]
    # same x_max-independent plateau at 10 TeV: yield proportional to E inside the pool
    np.testing.assert_allclose(g10["mean_pe_nominal"][:3] / mean1[:3], 10.0, rtol=1e-9)
    # sampled images (fluctuations, Poisson): mean intensity proportional to E
    s1 = showers_at_impact(subarray, np.full(300, 60.0), 1.0)
    s10 = showers_at_impact(subarray, np.full(300, 60.0), 10.0)
    n1 = np.mean([im.intensity for im in imager.images(s1, 1, ALT, AZ)])
    n10 = np.mean([im.intensity for im in imager.images(s10, 1, ALT, AZ)])
    assert 80 < n1 < 110
    assert 9.0 < n10 / n1 < 11.0


def test_disp_grows_with_impact(subarray):
    imager = ShowerImager(subarray, np.random.default_rng(9))
    impacts = np.array([25.0, 50.0, 100.0, 200.0, 300.0, 400.0])
    g = imager.shower_geometry(showers_at_impact(subarray, impacts, 1.0), 1, ALT, AZ)
    assert np.all(np.diff(g["disp_deg"]) > 0)
    # disp ~ impact / distance to the shower maximum
    np.testing.assert_allclose(
        np.deg2rad(g["disp_deg"]), impacts / g["distance"], rtol=0.05
    )


def test_width_gamma_vs_proton(subarray):
    rng = np.random.default_rng(10)
    imager = ShowerImager(subarray, rng)
    kw = dict(energy_min_tev=1.0, energy_max_tev=10.0, max_impact_m=200.0, rng=rng)
    g = ShowerSampler(particle="gamma", **kw).sample(300)
    p = ShowerSampler(
        particle="proton", spectrum="diffuse", viewcone_deg=3.0, **kw
    ).sample(300)
    wg = [im.width_deg for im in imager.images(g, 1, ALT, AZ)]
    images_p = imager.images(p, 1, ALT, AZ)
    wp = [im.width_deg for im in images_p]
    assert 0.04 < np.median(wg) < 0.1
    assert np.median(wp) / np.median(wg) > 1.5
    assert np.std(np.log(wp)) > 2 * np.std(np.log(wg))
    assert np.mean([im.n_subshowers > 0 for im in images_p]) > 0.3


def test_time_gradient_grows_with_impact(subarray):
    imager = ShowerImager(subarray, np.random.default_rng(11))
    impacts = [50.0, 150.0, 250.0, 350.0]
    images = imager.images(showers_at_impact(subarray, impacts, 20.0), 1, ALT, AZ)
    gradients = [im.time_gradient_ns_per_deg for im in images]
    assert np.all(np.diff(gradients) > 0)
    assert gradients[0] < 0 < gradients[2]
    assert 3 < gradients[2] < 10
    # measured on the pixels: fit of time vs position along the axis
    geom = subarray.tel[1].camera.geometry
    im = images[3]
    lit = im.n_pe > 5
    along = (
        (geom.pix_x.to_value(u.m)[lit] - im.cog_x_m) * np.cos(im.psi_rad)
        + (geom.pix_y.to_value(u.m)[lit] - im.cog_y_m) * np.sin(im.psi_rad)
    ) / (F * np.deg2rad(1))
    slope = np.polyfit(along, im.peak_time_ns[lit], 1)[0]
    assert abs(slope - im.time_gradient_ns_per_deg) < 0.2 * im.time_gradient_ns_per_deg
    assert np.all(np.isnan(im.peak_time_ns[im.n_pe == 0]))


# ------------------------------------------------------------------ detector
def test_single_pe_pulse_sums_to_one(subarray):
    cam = CameraSimulator(
        subarray,
        np.random.default_rng(12),
        nsb_rate_mhz=0.0,
        electronic_noise_pe=0.0,
        gain_spread=0.0,
        spe_resolution=0.0,
    )
    np.testing.assert_allclose(pulse_table().sum(axis=1), 1.0, rtol=1e-12)
    for t in (40.0, 61.3, 80.0, 97.75):
        n_pe = np.zeros(N_PIXELS, dtype=int)
        n_pe[100] = 1
        r1 = cam.r1_waveform(1, n_pe, np.full(N_PIXELS, t))
        assert r1.shape == (1, N_PIXELS, N_SAMPLES) and r1.dtype == np.float32
        assert abs(r1[0, 100].sum() - 1.0) < 1e-5
        assert np.count_nonzero(r1[0, np.arange(N_PIXELS) != 100]) == 0
        assert abs(4.0 * np.argmax(r1[0, 100]) - t) <= 2.5


def test_pedestal_statistics_match_nsb_rate(subarray):
    rate_mhz = 80.0
    cam = CameraSimulator(subarray, np.random.default_rng(13), nsb_rate_mhz=rate_mhz)
    r1 = np.concatenate([cam.r1_waveform(1, None, None)[0] for _ in range(40)])
    # central samples (the whole support of earlier pulses is inside the simulated span)
    assert abs(r1.mean()) < 0.005
    table = pulse_table()
    gain2 = np.mean(cam.gain[1] ** 2)
    shot = (
        rate_mhz
        * 1e-3
        * 4.0
        * (1 + cam.spe_resolution**2)
        * np.mean((table**2).sum(axis=1))
    )
    expected_var = shot * gain2 + cam.electronic_noise_pe**2
    assert abs(r1.var() / expected_var - 1) < 0.03
    # twice the rate: larger std
    cam2 = CameraSimulator(
        subarray, np.random.default_rng(13), nsb_rate_mhz=2 * rate_mhz
    )
    assert cam2.r1_waveform(1, None, None).std() > 1.3 * r1.std()
    # pedestals do not trigger
    assert not any(cam.triggers(1, cam.r1_waveform(1, None, None)) for _ in range(100))


def test_trigger_efficiency_rises_with_energy(subarray):
    rng = np.random.default_rng(14)
    imager = ShowerImager(subarray, rng)
    cam = CameraSimulator(subarray, rng)
    efficiency = {}
    for energy in (0.1, 1.0, 10.0):
        s = ShowerSampler(
            energy_min_tev=0.98 * energy,
            energy_max_tev=1.02 * energy,
            max_impact_m=60.0,
            rng=rng,
        ).sample(150)
        trig = [
            cam.triggers(1, cam.r1_waveform(1, im.n_pe, im.peak_time_ns))
            for im in imager.images(s, 1, ALT, AZ)
        ]
        efficiency[energy] = np.mean(trig)
    assert efficiency[0.1] < 0.1
    assert efficiency[10.0] > 0.9
    assert efficiency[0.1] <= efficiency[1.0] <= efficiency[10.0]


def test_adc_waveform(subarray):
    cam = CameraSimulator(
        subarray,
        np.random.default_rng(15),
        nsb_rate_mhz=0.0,
        electronic_noise_pe=0.0,
        gain_spread=0.0,
        spe_resolution=0.0,
    )
    n_pe = np.zeros(N_PIXELS, dtype=int)
    n_pe[7] = 10
    r1 = cam.r1_waveform(1, n_pe, np.full(N_PIXELS, 60.0))
    adc = cam.adc_waveform(1, r1, dc_to_pe=26.8, baseline_adc=330)
    assert adc.shape == (N_PIXELS, N_SAMPLES) and adc.dtype == np.int16
    np.testing.assert_array_equal(
        adc, np.rint(330 + r1[0] * np.float32(26.8)).astype(np.int16)
    )
    assert abs((adc[7].astype(float) - 330).sum() - 268.0) < 3
    assert np.all(adc[0] == 330)
    saturated = cam.adc_waveform(1, r1 * 1000)
    assert saturated.max() == 4095


def test_image_skewness(subarray):
    """Gamma images are skewed away from the source (a longer tail), protons irregularly."""
    rng = np.random.default_rng(12)
    imager = ShowerImager(subarray, rng)
    kw = dict(energy_min_tev=2.0, energy_max_tev=20.0, max_impact_m=200.0, rng=rng)
    geom = subarray.tel[1].camera.geometry
    x, y = geom.pix_x.to_value(u.m), geom.pix_y.to_value(u.m)

    def skewness_away_from_source(images):
        values = []
        for im in images:
            if im.intensity < 200:
                continue
            along = (x - im.cog_x_m) * np.cos(im.psi_rad) + (y - im.cog_y_m) * np.sin(
                im.psi_rad
            )
            w = im.n_pe
            mean = np.average(along, weights=w)
            values.append(
                np.average((along - mean) ** 3, weights=w)
                / np.average((along - mean) ** 2, weights=w) ** 1.5
            )
        return np.array(values)

    gammas = skewness_away_from_source(
        imager.images(ShowerSampler(particle="gamma", **kw).sample(200), 1, ALT, AZ)
    )
    protons = skewness_away_from_source(
        imager.images(
            ShowerSampler(
                particle="proton", spectrum="diffuse", viewcone_deg=3.0, **kw
            ).sample(300),
            1,
            ALT,
            AZ,
        )
    )
    assert 0.2 < np.median(gammas) < 0.7
    assert np.mean(gammas > 0) > 0.85
    assert np.mean(protons > 0) < 0.8


def test_light_yield_fluctuation_shared_by_the_telescopes(subarray):
    """The shower's yield fluctuation is common; each telescope adds a smaller local one."""
    rng = np.random.default_rng(13)
    showers = ShowerSampler(
        particle="gamma",
        energy_min_tev=5.0,
        energy_max_tev=5.001,
        max_impact_m=1.0,
        rng=rng,
    ).sample(400)
    assert (
        0.05 < np.std(np.log(showers.light_yield_factor)) < 0.1
    )  # 0.12 * 5**-0.3 = 0.075
    imager = ShowerImager(subarray, rng)
    mean_1 = np.array([im.mean_pe for im in imager.images(showers, 1, ALT, AZ)])
    mean_2 = np.array([im.mean_pe for im in imager.images(showers, 2, ALT, AZ)])
    # near the core both telescopes are inside the light pool: same nominal yield
    ratio_1 = np.log(mean_1 / showers.light_yield_factor)
    ratio_2 = np.log(mean_2 / showers.light_yield_factor)
    correlation = np.corrcoef(np.log(mean_1), np.log(mean_2))[0, 1]
    assert correlation > 0.4
    assert np.std(ratio_1 - np.mean(ratio_1)) == pytest.approx(
        0.08 * 5**-0.25, rel=0.15
    )
    assert np.std(ratio_2 - np.mean(ratio_2)) == pytest.approx(
        0.08 * 5**-0.25, rel=0.15
    )
