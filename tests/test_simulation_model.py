"""The fast SST-1M shower + detector model: documented relations (docs/simulation-model.md)."""

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import AltAz, SkyCoord
from ctapipe.coordinates import CameraFrame
from scipy.optimize import minimize_scalar

from ctapipe_sst1m.instrument import N_PIXELS, N_SAMPLES, sst1m_subarray
from ctapipe_sst1m.simulation.camera import CameraSimulator, pulse_table
from ctapipe_sst1m.simulation.images import (
    ShowerImager,
    altaz_to_camera,
)
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

# published air-shower relations (docs/simulation-model.md), independent of the model code
#: radiation length (g/cm^2) and critical energy (TeV) of air: Heitler X_max = X0 ln(E/E_c)
X0_AIR = 36.7
E_CRITICAL_TEV = 85e-6


def heitler_gamma_x_max(energy_tev):
    return X0_AIR * np.log(energy_tev / E_CRITICAL_TEV)


def matthews_proton_x_max(energy_tev):
    """J. Matthews 2005, Astropart. Phys. 22, 387: 470 + 58 log10(E / 1 PeV) g/cm^2."""
    return 470.0 + 58.0 * np.log10(energy_tev / 1000.0)


@pytest.fixture(scope="module")
def subarray():
    return sst1m_subarray((1, 2))


def showers_at_impact(
    subarray,
    impacts,
    energy=1.0,
    particle="gamma",
    tel_id=1,
    offset_deg=0.4,
    x_max=None,
):
    """Showers from the wobble source whose axis passes at `impacts` (m) from a telescope,
    with their maximum at `x_max` (default: the published mean at this energy)."""
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
    if x_max is None:
        x_max = (
            heitler_gamma_x_max(energy)
            if particle == "gamma"
            else matthews_proton_x_max(energy)
        )
    x_max = np.broadcast_to(np.asarray(x_max, dtype=float), (n,))
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
    """X_max against the Heitler (gamma) and Heitler-Matthews (proton) relations."""
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
    # means at 1 TeV: 344 g/cm^2 (gamma), 296 g/cm^2 (proton); statistical error ~1.3
    assert abs(g.x_max_gcm2.mean() - heitler_gamma_x_max(1.0)) < 5
    assert abs(p.x_max_gcm2.mean() - matthews_proton_x_max(1.0)) < 8
    # protons shallower: Heitler-Matthews X_max^p - X_max^gamma = lambda_I ln 2 - X0 ln(3 N_ch),
    # N_ch = 41.2 (E / 1 PeV)^(1/5) = 10.4 at 1 TeV, lambda_I = 80-113 g/cm^2: -71 ... -48
    n_charged = 41.2 * (1.0 / 1000.0) ** 0.2
    difference = p.x_max_gcm2.mean() - g.x_max_gcm2.mean()
    assert 80.0 * np.log(2) - X0_AIR * np.log(3 * n_charged) - 8 < difference
    assert difference < 113.0 * np.log(2) - X0_AIR * np.log(3 * n_charged) + 8
    # shower-to-shower rms: gammas first interaction 9/7 X0 = 47 g/cm^2 plus development;
    # protons 60-100 g/cm^2 at TeV energies
    assert 47.0 < g.x_max_gcm2.std() < 60.0
    assert 60.0 < p.x_max_gcm2.std() < 100.0
    # exponential atmosphere, 8.4 km scale height, 1030 g/cm^2 at sea level
    zenith = np.pi / 2 - g.alt_rad
    np.testing.assert_allclose(
        g.h_max_m, -8400.0 * np.log(g.x_max_gcm2 * np.cos(zenith) / 1030.0), rtol=1e-9
    )
    assert np.all(g.h_first_int_m > g.h_max_m)
    assert np.median(p.h_max_m) > np.median(g.h_max_m) + 1000.0


@pytest.mark.parametrize(
    "particle, elongation, tolerance",
    # gamma: X0 ln 10 = 84.5 g/cm^2/decade (Heitler); proton: 58 (Matthews 2005)
    [("gamma", X0_AIR * np.log(10), 4.0), ("proton", 58.0, 6.0)],
)
def test_elongation_rate(particle, elongation, tolerance):
    """Slope of X_max vs log10 E fitted over 0.3-30 TeV."""
    s = ShowerSampler(
        particle=particle,
        energy_min_tev=0.3,
        energy_max_tev=30.0,
        spectral_index=-1.0,
        rng=np.random.default_rng(40),
    ).sample(20000)
    slope = np.polyfit(np.log10(s.energy_tev), s.x_max_gcm2, 1)[0]
    assert abs(slope - elongation) < tolerance


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
def test_yield_proportional_to_energy_inside_the_pool(subarray):
    imager = ShowerImager(subarray, np.random.default_rng(8))
    impacts = np.array([20.0, 40.0, 60.0, 80.0])
    g1 = imager.shower_geometry(showers_at_impact(subarray, impacts, 1.0), 1, ALT, AZ)
    np.testing.assert_allclose(g1["impact"], impacts, rtol=1e-6)
    # ~100 p.e./TeV inside the pool of a 1 TeV gamma at ~20 deg zenith (19.6 deg here)
    np.testing.assert_allclose(g1["mean_pe_nominal"], 100.0, rtol=0.02)
    # same X_max: yield proportional to E
    g10 = imager.shower_geometry(
        showers_at_impact(subarray, impacts, 10.0, x_max=heitler_gamma_x_max(1.0)),
        1,
        ALT,
        AZ,
    )
    np.testing.assert_allclose(
        g10["mean_pe_nominal"] / g1["mean_pe_nominal"], 10.0, rtol=1e-9
    )
    # sampled images (fluctuations, Poisson): mean intensity ~100 p.e. at 1 TeV, and
    # proportional to E at fixed X_max
    s1 = showers_at_impact(subarray, np.full(300, 60.0), 1.0)
    s10 = showers_at_impact(
        subarray, np.full(300, 60.0), 10.0, x_max=heitler_gamma_x_max(1.0)
    )
    n1 = np.mean([im.intensity for im in imager.images(s1, 1, ALT, AZ)])
    n10 = np.mean([im.intensity for im in imager.images(s10, 1, ALT, AZ)])
    assert 90 < n1 < 108
    assert 9.3 < n10 / n1 < 10.7


def test_light_density_rises_for_deeper_showers(subarray):
    """Same light spread over a smaller pool: density ∝ 1 / r_pool^2."""
    imager = ShowerImager(subarray, np.random.default_rng(16))
    x_max = np.array([250.0, 300.0, 350.0, 400.0, 450.0])
    s = showers_at_impact(subarray, np.full(5, 30.0), 1.0, x_max=x_max)
    g = imager.shower_geometry(s, 1, ALT, AZ)
    assert np.all(np.diff(g["pool_radius"]) < 0)
    assert np.all(np.diff(g["mean_pe_nominal"]) > 0)
    np.testing.assert_allclose(
        g["mean_pe_nominal"] * g["pool_radius"] ** 2,
        g["mean_pe_nominal"][0] * g["pool_radius"][0] ** 2,
        rtol=1e-3,  # the foot of the hump at 30 m
    )
    # ~2.4e-3 per g/cm^2 around 1 TeV: +-50 g/cm^2 of X_max is +-12 % of light
    slope = np.polyfit(x_max, np.log(g["mean_pe_nominal"]), 1)[0]
    assert 1.5e-3 < slope < 3.5e-3


def test_lateral_distribution(subarray):
    """Flat pool, hump at the pool radius, power-law tail (gammas); no hump (protons)."""
    imager = ShowerImager(subarray, np.random.default_rng(17))
    impacts = np.arange(0.0, 600.0, 1.0)
    g = imager.shower_geometry(showers_at_impact(subarray, impacts, 1.0), 1, ALT, AZ)
    pool = g["pool_radius"][0]
    assert 120.0 < pool < 145.0  # 1 TeV gamma, 511 m a.s.l., ~20 deg zenith
    density = g["mean_pe_nominal"] / g["mean_pe_nominal"][0]
    # flat pool: within 1 % up to 60 % of the pool radius
    assert np.all(np.abs(density[impacts < 0.6 * pool] - 1.0) < 0.01)
    # hump at the pool radius, 1.2-1.5 times the pool density
    assert abs(impacts[np.argmax(density)] - pool) < 5.0
    assert 1.2 < density.max() < 1.5
    # tail beyond the hump: power law b^-k, k = 2.5-3; ~ a decade below the pool at 300 m
    tail = impacts > 250.0
    k = -np.polyfit(np.log(impacts[tail]), np.log(density[tail]), 1)[0]
    assert 2.3 < k < 3.0
    assert 0.05 < np.interp(300.0, impacts, density) < 0.2
    p = imager.shower_geometry(
        showers_at_impact(subarray, impacts, 1.0, particle="proton"), 1, ALT, AZ
    )
    proton = p["mean_pe_nominal"] / p["mean_pe_nominal"][0]
    assert np.all(np.diff(proton) <= 1e-12)  # no hump
    assert np.interp(400.0, impacts, proton) > np.interp(400.0, impacts, density)


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


def test_light_yield_fluctuation_follows_x_max(subarray):
    """The shower's yield fluctuation comes from its X_max (common to the telescopes and
    recoverable from X_max); each telescope adds a smaller local one."""
    rng = np.random.default_rng(13)
    showers = ShowerSampler(
        particle="gamma",
        energy_min_tev=5.0,
        energy_max_tev=5.001,
        max_impact_m=1.0,
        rng=rng,
    ).sample(400)
    imager = ShowerImager(subarray, rng)
    images_1 = imager.images(showers, 1, ALT, AZ)
    images_2 = imager.images(showers, 2, ALT, AZ)
    mean_1 = np.array([im.mean_pe for im in images_1])
    mean_2 = np.array([im.mean_pe for im in images_2])
    nominal_1 = imager.shower_geometry(showers, 1, ALT, AZ)["mean_pe_nominal"]
    nominal_2 = imager.shower_geometry(showers, 2, ALT, AZ)["mean_pe_nominal"]
    # both telescopes ~77 m from the core, inside the pool: the X_max part is common
    assert np.corrcoef(np.log(mean_1), np.log(mean_2))[0, 1] > 0.6
    # image intensity at fixed energy and impact correlated with X_max (deeper: brighter)
    intensity = np.array([im.intensity for im in images_1])
    assert np.corrcoef(showers.x_max_gcm2, np.log(intensity))[0, 1] > 0.7
    # shower part: 2.5-3e-3 per g/cm^2 at 5 TeV times the X_max rms (51 g/cm^2), plus
    # the tail of deep (late-starting) showers
    assert 0.1 < np.std(np.log(nominal_1)) < 0.25
    # local part, independent per telescope: sigma = 0.08 (E / TeV)^-0.25
    local_1 = np.log(mean_1 / nominal_1)
    local_2 = np.log(mean_2 / nominal_2)
    assert np.std(local_1) == pytest.approx(0.08 * 5**-0.25, rel=0.15)
    assert abs(np.corrcoef(local_1, local_2)[0, 1]) < 0.15
