"""
Inputs of the R0 -> DL1 benchmark (`r0_dl1.py`): real, simulated and synthetic raw runs.

* the real DigiCam example files of the protozfits wheel: 32 events of
  telescope 22 (2018-08-22, 2 of 30 shower-trigger images survive cleaning) and
  100 events of telescope 21 (89 of 92);
* a shower-rich run: telescope 21 of a simulated raw run of point gammas
  (`ctapipe_sst1m.simulation.night.RUN_CARD_ENTRIES`: E^-2 from 2 TeV, cores
  within 250 m, seed 7), with an interleaved pedestal after every 10 events;
  2,200 showers give 1,835 shower events and 183 pedestals, and all but one
  image survive cleaning (about 16 s to write);
* a proton run: telescope 21 of a simulated raw run of diffuse protons
  (`PROTON_CARD_ENTRIES`: E^-2.7 from 1 TeV, within 3 deg and 250 m, seed 8),
  the bulk of a night's triggers; 8,000 showers give 1,700 shower events (98 %
  of the images survive cleaning, small: median 9 pixels and 130 p.e.) and 170
  pedestals. The ranges are narrower than those of
  ``sst1m-simulate`` (from 0.4 TeV, within 8 deg and 800 m), where only about
  1 % of the showers trigger, so that the run takes seconds to write (about
  35 s for 8,000 showers);
* a synthetic run of :mod:`ctapipe_sst1m.testing`: Gaussian images of 100 to
  2,000 p.e. (median 28 pixels after cleaning) in every non-pedestal event;
  the earlier figures of ``docs/performance.md`` were measured on it.

The simulated runs are written with
`ctapipe_sst1m.simulation.raw_runs.write_simulated_raw_runs`, which writes
both telescopes (telescope 22 is not used), one file per telescope.
"""

import importlib.resources
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: the real DigiCam example files of the protozfits wheel
REAL_FILES = ("example_SST1M_20180822.fits.fz", "example_100evts.fits.fz")

#: card entries of the proton run (with ``n_showers`` and ``seed``): triggers of
#: telescope 21 for about 21 % of the showers, near-threshold images
PROTON_CARD_ENTRIES = {
    "particle": "proton",
    "spectrum": "diffuse",
    "energy_min_tev": 1.0,
    "spectral_index": -2.7,
    "max_impact_m": 250.0,
    "viewcone_deg": 3.0,
}

#: card seeds of the shower-rich (gamma) and proton runs
GAMMA_SEED = 7
PROTON_SEED = 8

#: telescope whose files are measured, and the other one of the simulated runs
TEL_ID = 21
OTHER_TEL_ID = 22

#: one file per telescope, whatever the number of events
ONE_FILE = 10**9


@dataclass
class BenchmarkInput:
    """A raw run measured by the benchmark."""

    #: its (single) DigiCam file
    path: Path
    #: short name in the tables
    label: str
    #: camera events in the file (shower triggers and pedestals)
    n_events: int
    #: what it is, for the printed conditions
    description: str


def count_events(path):
    """
    Number of events in the Events table of a DigiCam file.

    Parameters
    ----------
    path : pathlib.Path

    Returns
    -------
    int
    """
    from astropy.io import fits

    with fits.open(path, memmap=False, lazy_load_hdus=True) as hdul:
        return int(hdul["Events"].header["ZNAXIS2"])


def real_inputs():
    """
    The real SST-1M example files shipped in the protozfits wheel.

    Returns
    -------
    list of BenchmarkInput
    """
    resources = importlib.resources.files("protozfits") / "tests" / "resources"
    inputs = []
    for name in REAL_FILES:
        path = Path(str(resources / name))
        inputs.append(
            BenchmarkInput(
                path=path,
                label=name,
                n_events=count_events(path),
                description="real data (protozfits example file)",
            )
        )
    return inputs


def simulated_run(directory, card_entries, n_showers, seed, reuse=False):
    """
    The telescope-21 file of a simulated raw run, written unless reused.

    Parameters
    ----------
    directory : pathlib.Path
        Directory of the run (created); the file of telescope 22 is deleted.
    card_entries : dict
        Simulation card entries besides ``n_showers`` and ``seed``.
    n_showers, seed : int
    reuse : bool
        Keep a run already in ``directory`` written from the same card.

    Returns
    -------
    pathlib.Path
    """
    from ctapipe_sst1m.io.simulation_card import SimulationCard, write_card
    from ctapipe_sst1m.simulation.raw_runs import write_simulated_raw_runs

    directory.mkdir(parents=True, exist_ok=True)
    card_path = directory / "card.yaml"
    new_card = directory / "card.yaml.new"
    write_card(new_card, SimulationCard(**card_entries, n_showers=n_showers, seed=seed))
    existing = sorted(directory.glob("SST1M*.fits.fz"))
    if (
        reuse
        and existing
        and card_path.exists()
        and card_path.read_text() == new_card.read_text()
    ):
        new_card.unlink()
        return existing[0]
    new_card.replace(card_path)
    for path in existing:
        path.unlink()
    paths, _ = write_simulated_raw_runs(
        card_path,
        directory,
        events_per_file=ONE_FILE,
        directories={OTHER_TEL_ID: directory / "other_telescope"},
    )
    # the other telescope's file is not measured
    for path in paths[OTHER_TEL_ID]:
        path.unlink()
    (path,) = paths[TEL_ID]
    return path


def shower_rich_input(directory, n_showers, reuse=False):
    """
    The shower-rich run: simulated point gammas from 2 TeV, telescope 21.

    Parameters
    ----------
    directory : pathlib.Path
    n_showers : int
        Thrown showers (2,200: 1,835 shower events and 183 pedestals).
    reuse : bool
        Keep a run written earlier from the same card.

    Returns
    -------
    BenchmarkInput
    """
    from ctapipe_sst1m.simulation.night import RUN_CARD_ENTRIES

    return _simulated_input(
        directory,
        "shower-rich (gammas)",
        "point gammas",
        RUN_CARD_ENTRIES,
        n_showers,
        GAMMA_SEED,
        reuse,
    )


def proton_input(directory, n_showers, reuse=False):
    """
    The proton run: simulated diffuse protons from 1 TeV, telescope 21.

    Parameters
    ----------
    directory : pathlib.Path
    n_showers : int
        Thrown showers (8,000: 1,700 shower events and 170 pedestals).
    reuse : bool
        Keep a run written earlier from the same card.

    Returns
    -------
    BenchmarkInput
    """
    return _simulated_input(
        directory,
        "protons",
        "diffuse protons",
        PROTON_CARD_ENTRIES,
        n_showers,
        PROTON_SEED,
        reuse,
    )


def _simulated_input(directory, label, particles, card_entries, n_showers, seed, reuse):
    """The `BenchmarkInput` of a `simulated_run` (``particles``: its description)."""
    path = simulated_run(directory, card_entries, n_showers, seed, reuse)
    return BenchmarkInput(
        path=path,
        label=label,
        n_events=count_events(path),
        description=(
            f"simulated {particles}, {n_showers:,} showers"
            f" ({_card_text(card_entries)}, seed {seed})"
        ),
    )


def synthetic_input(directory, n_events, reuse=False):
    """
    A one-file synthetic run of :mod:`ctapipe_sst1m.testing` (seed 1).

    Parameters
    ----------
    directory : pathlib.Path
        Output directory (created).
    n_events : int
    reuse : bool
        Keep a run already in ``directory`` (its name holds the number of events).

    Returns
    -------
    BenchmarkInput
    """
    from ctapipe_sst1m.testing import SyntheticRun, write_synthetic_run

    run = SyntheticRun(n_events=n_events, n_files=1, seed=1)
    (path,) = run.file_paths(directory)
    if not (reuse and path.exists()):
        directory.mkdir(parents=True, exist_ok=True)
        write_synthetic_run(directory, run)
    return BenchmarkInput(
        path=path,
        label=f"synthetic {n_events}",
        n_events=n_events,
        description=(
            "ctapipe_sst1m.testing synthetic run (Gaussian images of 100-2,000 p.e."
            " in every non-pedestal event, a pedestal every 10 events, seed 1)"
        ),
    )


def _card_text(entries):
    """Card entries as ``key value`` text."""
    return ", ".join(f"{key} {value}" for key, value in entries.items())


def image_summary(dl1_path):
    """
    What survived cleaning in a DL1 file written with parameters.

    Parameters
    ----------
    dl1_path : pathlib.Path

    Returns
    -------
    str
        Images with pixels after cleaning out of all, and their median number of
        pixels and intensity (p.e.); empty if the file has no parameters.
    """
    import tables
    from ctapipe.io.hdf5dataformat import DL1_TEL_PARAMETERS_GROUP

    n_images, n_pixels, intensity = 0, [], []
    with tables.open_file(dl1_path) as h5file:
        if DL1_TEL_PARAMETERS_GROUP not in h5file:
            return ""
        for table in h5file.iter_nodes(DL1_TEL_PARAMETERS_GROUP, classname="Table"):
            pixels = table.col("morphology_n_pixels")
            cleaned = pixels > 0
            n_images += len(pixels)
            n_pixels.append(pixels[cleaned])
            intensity.append(table.col("hillas_intensity")[cleaned])
    n_pixels = np.concatenate(n_pixels) if n_pixels else np.array([])
    if not n_pixels.size:
        return f"0 of {n_images:,} images survive cleaning"
    return (
        f"{n_pixels.size:,} of {n_images:,} images survive cleaning (median"
        f" {np.median(n_pixels):.0f} pixels, {np.median(np.concatenate(intensity)):.0f}"
        " p.e.)"
    )
