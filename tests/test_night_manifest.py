"""The manifest of sst1m-night (what a rerun keeps) and the lock of a night directory."""

import json
import socket
import subprocess
import sys

import pytest

from ctapipe_sst1m.night.engine import NightLock, NightLockedError
from ctapipe_sst1m.night.manifest import Manifest, file_fingerprint, software_versions


@pytest.fixture
def done_entry(tmp_path):
    """A product made from one input, recorded as done."""
    source = tmp_path / "input.dat"
    source.write_bytes(b"raw data")
    product = tmp_path / "product.h5"
    product.write_bytes(b"product")
    manifest = Manifest(tmp_path / "manifest.json")
    manifest.record(
        "product.h5",
        {
            "status": "done",
            "config_hash": "abc",
            "versions": software_versions(),
            "inputs": [file_fingerprint(source)],
        },
    )
    return manifest, source, product


def test_an_unchanged_product_is_kept(done_entry, tmp_path):
    manifest, _, product = done_entry
    assert Manifest(manifest.path).why_redo("product.h5", product, "abc") is None


def test_what_makes_a_product_redone(done_entry):
    manifest, source, product = done_entry
    assert manifest.why_redo("other.h5", product, "abc") == "not in the manifest"
    assert manifest.why_redo("product.h5", product, "xyz") == "configuration changed"
    # same size, new content and time: the checksum is recomputed and differs
    source.write_bytes(b"raw DATA")
    assert manifest.why_redo("product.h5", product, "abc") == "input input.dat changed"
    # the same content again, with a new modification time: kept
    source.write_bytes(b"raw data")
    assert manifest.why_redo("product.h5", product, "abc") is None
    product.unlink()
    assert manifest.why_redo("product.h5", product, "abc") == "product missing"


def test_other_software_versions_redo(done_entry):
    manifest, _, product = done_entry
    manifest.entries["product.h5"]["versions"]["ctapipe"] = "0.28.0"
    assert manifest.why_redo("product.h5", product, "abc").startswith("ctapipe 0.28.0")


def test_failed_products_are_redone(done_entry):
    manifest, _, product = done_entry
    manifest.entries["product.h5"]["status"] = "failed"
    assert manifest.why_redo("product.h5", product, "abc") == "failed before"


def test_manifest_is_json_and_refuses_other_files(done_entry, tmp_path):
    manifest, _, _ = done_entry
    assert "product.h5" in json.loads(manifest.path.read_text())["products"]
    other = tmp_path / "other.json"
    other.write_text('{"something": 1}')
    with pytest.raises(ValueError, match="not a manifest of sst1m-night"):
        Manifest(other)


def test_directory_fingerprint_follows_its_files(tmp_path):
    (tmp_path / "a").write_text("1")
    before = file_fingerprint(tmp_path)["sha256"]
    (tmp_path / "b").write_text("2")
    assert file_fingerprint(tmp_path)["sha256"] != before


def test_night_lock(tmp_path):
    with NightLock(tmp_path):
        with pytest.raises(NightLockedError, match="another sst1m-night"):
            NightLock(tmp_path).__enter__()
    assert not (tmp_path / ".sst1m-night.lock").exists()
    # a lock left by a process of this host that has ended is taken over
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    (tmp_path / ".sst1m-night.lock").write_text(f"{socket.gethostname()} {ended.pid}")
    with NightLock(tmp_path) as lock:
        assert lock.held
