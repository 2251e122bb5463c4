"""The HTML night report of sst1m-night."""

import base64
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import AltAz, SkyCoord
from astropy.table import Table
from conftest import run_cli
from ctapipe.io import read_table

from ctapipe_sst1m.instrument import ARRAY_REFERENCE_LOCATION
from ctapipe_sst1m.night.expected_rate import expected_proton_rate
from ctapipe_sst1m.night.quality import (
    quality_table,
    run_quality,
    write_quality_table,
)
from ctapipe_sst1m.night.quality_cuts import QualityCuts
from ctapipe_sst1m.night.report import write_night_report

pytestmark = pytest.mark.slow

#: elements without end tag
VOID_ELEMENTS = {"meta", "img", "br", "hr", "link", "input"}
SECTIONS = (
    "summary",
    "runs",
    "skipped",
    "quality",
    "rates",
    "stereo",
    "theta2",
    "failed",
)


class _Page(HTMLParser):
    """Checks that every element is closed in order; collects ids, images and links."""

    def __init__(self):
        super().__init__()
        self.open, self.errors = [], []
        self.ids, self.images, self.links = [], [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.append(attrs["id"])
        if tag == "img":
            self.images.append(attrs["src"])
        if tag == "a":
            self.links.append(attrs["href"])
        if tag not in VOID_ELEMENTS:
            self.open.append(tag)

    def handle_endtag(self, tag):
        if not self.open or self.open.pop() != tag:
            self.errors.append(f"unexpected </{tag}>")


def _parse(path):
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    page.close()
    assert page.errors == [] and page.open == []
    return page


@pytest.fixture(scope="module")
def night(simulated_stereo_run, irf_tree, small_production, tmp_path_factory):
    """
    The products of a night of the simulated run: its DL1 files, a DL3 DataStore of
    the stereo DL2 (global cuts, the simulated source), the quality table, a failed
    step with its log.
    """
    directory = tmp_path_factory.mktemp("night") / "20240304"
    stereo_dl1 = simulated_stereo_run["stereo_dl1"]
    time = read_table(stereo_dl1, "/dl1/event/subarray/trigger")["time"][0]
    # the point gammas of the simulation come from altitude 70.4, azimuth 180 deg
    source = SkyCoord(
        alt=70.4 * u.deg,
        az=180 * u.deg,
        frame=AltAz(obstime=time, location=ARRAY_REFERENCE_LOCATION),
    ).icrs
    dl3 = directory / "Simulation" / "stereo" / "dl3"
    result = run_cli(
        "sst1m-dl3",
        "--input",
        simulated_stereo_run["dl2"],
        "--irf-dir",
        irf_tree,
        "--output-dir",
        dl3,
        "--cuts",
        "global",
        "--source-name",
        "Simulation",
        "--source-ra",
        source.ra.deg,
        "--source-dec",
        source.dec.deg,
    )
    assert result.returncode == 0, result.stderr
    runs = [
        {
            "target": "Simulation",
            "run": 1,
            "tel_id": tel_id,
            "dl1": [simulated_stereo_run[tel_id]],
            "stereo": [stereo_dl1],
        }
        for tel_id in (21, 22)
    ]
    expected = expected_proton_rate(small_production["proton"])
    rows = [run_quality(r["dl1"], r["tel_id"], r["stereo"], expected) for r in runs]
    # as sst1m-night does: the quality step writes the table, the report reads it
    quality_path = directory / "quality.ecsv"
    write_quality_table(quality_table(rows, QualityCuts()), quality_path)
    log = (
        directory / "Simulation" / "tel_021" / "dl2" / "SST1M1_20240304_0001.dl2.h5.log"
    )
    log.parent.mkdir(parents=True)
    log.write_text("Traceback: the models are missing\n")
    steps = [
        {
            "step": "dl1",
            "product": "Simulation/tel_021/dl1/SST1M1_20240304_0001_000.dl1.h5",
            "status": "done",
            "duration_s": 12.5,
            "log": None,
            "message": "",
        },
        {
            "step": "dl2",
            "product": "Simulation/tel_021/dl2/SST1M1_20240304_0001.dl2.h5",
            "status": "failed",
            "duration_s": 3.25,
            "log": log,
            "message": "sst1m-apply-models exited with status 1",
        },
        {
            "step": "dl3",
            "product": "Simulation/tel_021/dl3",
            "status": "failed",
            "duration_s": 0.0,
            "log": None,
            "message": "blocked: its DL2 failed",
        },
    ]
    skipped = [
        {
            "path": Path("/raw/SST1M1_20240304_0002_000.fits.fz"),
            "target": "DARK",
            "reason": "dark run: no sky pointing",
        }
    ]
    return {
        "directory": directory,
        "runs": runs,
        "skipped": skipped,
        "quality": Table.read(quality_path),
        "steps": steps,
        "dl3": dl3,
    }


def test_report_of_a_night(night):
    directory = night["directory"]
    path = directory / "report.html"
    dl3_dirs = {
        "Simulation": {"stereo": night["dl3"], "tel_021": directory / "absent" / "dl3"}
    }
    write_night_report(
        path,
        "20240304",
        night["runs"],
        night["skipped"],
        night["quality"],
        night["steps"],
        dl3_dirs,
    )
    assert not list(directory.glob("*.part"))
    page = _parse(path)
    text = path.read_text(encoding="utf-8")
    assert "could not be made" not in text
    assert set(SECTIONS) <= set(page.ids)
    assert "SST-1M night 20240304" in text
    assert "steps done / skipped (up to date) / failed: <b>1 / 0 / 2</b>" in text
    assert "SST1M1_20240304_0002_000.fits.fz" in text and "dark run" in text

    # self-contained: every image is an embedded PNG, nothing is loaded from elsewhere
    assert len(page.images) >= 4  # rates of two telescopes, stereo Δt, θ²
    for source in page.images:
        assert source.startswith("data:image/png;base64,")
        png = base64.b64decode(source.removeprefix("data:image/png;base64,"))
        assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert not re.search(r"""(src|href)=["']?(https?:|//)""", text)

    # the quality rows: the gamma run fails the comparison with protons, marked
    assert text.count('<tr class="bad">') == 2
    assert text.count('<td class="failed">') == 4  # the ratio and failed_cuts, twice

    # θ² of the stereo DataStore with its significance; a line for the absent one
    row = re.search(r"<td[^>]*>Simulation</td><td[^>]*>stereo</td>(.*?)</tr>", text)
    values = [float(v) for v in re.findall(r"<td[^>]*>([^<]*)</td>", row.group(1))]
    n_observations, n_on, significance = values[0], values[3], values[-1]
    assert n_observations == 1 and n_on > 10 and significance > 5
    assert 'alt="θ² of Simulation, stereo"' in text
    assert (
        f"θ² of Simulation, tel_021 not made: DataStore directory {directory / 'absent' / 'dl3'} does not exist"
        in text
    )

    # the failed steps: a link to the log that exists, a note for the one without
    assert page.links == ["Simulation/tel_021/dl2/SST1M1_20240304_0001.dl2.h5.log"]
    for link in page.links:
        assert (directory / unquote(link)).resolve() == night["steps"][1][
            "log"
        ].resolve()
    assert "blocked: its DL2 failed" in text and "no log" in text


def test_report_in_another_directory_links_back(night, tmp_path):
    path = tmp_path / "reports" / "night.html"
    path.parent.mkdir()
    write_night_report(path, "20240304", [], [], None, night["steps"], {})
    (link,) = _parse(path).links  # from another directory
    assert link.startswith("../")
    assert (path.parent / link).resolve() == night["steps"][1]["log"].resolve()


def test_report_with_missing_products(night, tmp_path):
    """
    No quality table, DL1 and stereo files gone or not HDF5, a directory that is no
    DataStore: each section says what is missing, the others are made.
    """
    broken = tmp_path / "broken.dl1.h5"
    broken.write_text("not HDF5")
    runs = [
        dict(run, dl1=[tmp_path / "gone.dl1.h5"], stereo=[tmp_path / "gone_stereo.h5"])
        for run in night["runs"]
    ]
    runs.append(dict(night["runs"][0], run=2, dl1=[broken], stereo=[broken]))
    empty_store = tmp_path / "empty_dl3"
    empty_store.mkdir()
    path = tmp_path / "report.html"
    write_night_report(
        path, "20240304", runs, [], None, [], {"Simulation": {"stereo": empty_store}}
    )
    page = _parse(path)
    text = path.read_text(encoding="utf-8")
    assert set(SECTIONS) <= set(page.ids)
    assert "could not be made" not in text
    assert "no quality table" in text
    assert f"missing DL1 files: {tmp_path / 'gone.dl1.h5'}" in text
    assert f"missing stereo files: {tmp_path / 'gone_stereo.h5'}" in text
    assert f"run 2: {broken}: not a readable ctapipe DL1 file" in text
    assert text.count("run 2: ") == 2  # the rates and the stereo time differences
    assert "θ² of Simulation, stereo not made" in text and "hdu-index.fits.gz" in text
    assert "Failed steps</h2><p>none</p>" in text


def test_report_of_an_empty_night(night, tmp_path):
    quality = night["quality"][:0]
    path = tmp_path / "report.html"
    write_night_report(path, "20240304", [], [], quality, [], {})
    text = path.read_text(encoding="utf-8")
    assert "the quality table has no rows" in text and "no DL3 products" in text
    assert np.count_nonzero([s in text for s in SECTIONS]) == len(SECTIONS)
