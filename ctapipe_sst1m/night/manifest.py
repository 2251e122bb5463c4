"""
The manifest of a night: every product with its inputs, their checksums, the
configuration hash, the software versions, the duration and the status.

A rerun of ``sst1m-night`` keeps a product whose entry still matches: the product
exists, it was completed, its configuration hash is the same, and every input has the
checksum recorded (an input whose size and modification time are unchanged is not read
again; otherwise its SHA-256 is recomputed and compared).
"""

import hashlib
import json
import os
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from ..io.atomic_output import AtomicOutput

__all__ = [
    "MANIFEST_NAME",
    "Manifest",
    "file_fingerprint",
    "listing_fingerprint",
    "software_versions",
    "stable_hash",
]

MANIFEST_NAME = "manifest.json"
#: packages whose versions are recorded; a product of other versions of the first two is redone
RECORDED_PACKAGES = ("ctapipe_sst1m", "ctapipe", "pyirf", "gammapy", "numpy", "dask")
VERSION_KEYS = ("ctapipe_sst1m", "ctapipe")
#: files are read in blocks of this size for their checksum
BLOCK_BYTES = 4 * 1024 * 1024


def software_versions():
    """The versions of the packages a product depends on."""
    versions = {}
    for package in RECORDED_PACKAGES:
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = None
    return versions


def stable_hash(value):
    """SHA-256 of a JSON-serialisable value (keys sorted): a configuration hash."""
    text = json.dumps(value, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(BLOCK_BYTES):
            digest.update(block)
    return digest.hexdigest()


def file_fingerprint(path):
    """
    Size, modification time and SHA-256 of a file; of every file for a directory
    (the names, relative to it, with their checksums, hashed together).
    """
    path = Path(path)
    if path.is_dir():
        members = sorted(p for p in path.rglob("*") if p.is_file())
        parts = {str(p.relative_to(path)): _sha256(p) for p in members}
        stat = path.stat()
        return {
            "path": str(path),
            "size": sum(p.stat().st_size for p in members),
            "mtime_ns": max(
                [p.stat().st_mtime_ns for p in members] or [stat.st_mtime_ns]
            ),
            "sha256": stable_hash(parts),
        }
    stat = path.stat()
    return {
        "path": str(path),
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "sha256": _sha256(path),
    }


def listing_fingerprint(directory):
    """
    Hash of the names, sizes and modification times of the files of a directory (cheap:
    no file is read), or None for no directory.
    """
    if directory is None:
        return None
    return stable_hash(
        sorted(
            (str(p.relative_to(directory)), p.stat().st_size, p.stat().st_mtime_ns)
            for p in Path(directory).rglob("*")
            if p.is_file()
        )
    )


def _unchanged(recorded):
    """True if a file (or directory) still has the checksum recorded for it."""
    path = Path(recorded["path"])
    if not path.exists():
        return False
    if path.is_file():
        stat = path.stat()
        if (stat.st_size, stat.st_mtime_ns) == (recorded["size"], recorded["mtime_ns"]):
            return True
    return file_fingerprint(path)["sha256"] == recorded["sha256"]


class Manifest:
    """
    The manifest of a night (a JSON file), written by one process: the client of
    ``sst1m-night``. Every update rewrites it atomically.

    Parameters
    ----------
    path : Path
        The JSON file; read if it exists.
    """

    def __init__(self, path):
        self.path = Path(path)
        self.entries = {}
        if self.path.exists():
            try:
                self.entries = json.loads(self.path.read_text())["products"]
            except (ValueError, KeyError) as err:
                raise ValueError(
                    f"{self.path}: not a manifest of sst1m-night ({err}); move it away"
                    " to process the night again from scratch"
                ) from err

    def why_redo(self, key, product, config_hash):
        """
        Why a product must be made (again), or None if its entry still matches.

        Parameters
        ----------
        key : str
            The step's key in the manifest.
        product : Path
            The product's path.
        config_hash : str
            Hash of everything but the inputs the product depends on.

        Returns
        -------
        str or None
        """
        entry = self.entries.get(key)
        if entry is None:
            return "not in the manifest"
        if entry["status"] != "done":
            return f"{entry['status']} before"
        if not Path(product).exists():
            return "product missing"
        if entry["config_hash"] != config_hash:
            return "configuration changed"
        versions = entry.get("versions", {})
        current = software_versions()
        for package in VERSION_KEYS:
            if versions.get(package) != current[package]:
                return f"{package} {versions.get(package)} -> {current[package]}"
        for recorded in entry["inputs"]:
            if not _unchanged(recorded):
                return f"input {Path(recorded['path']).name} changed"
        return None

    def record(self, key, entry):
        """Record a step's entry and rewrite the manifest."""
        self.entries[key] = entry
        self.write()

    def write(self):
        """Write the manifest atomically."""
        content = {
            "updated": datetime.now(UTC).isoformat(timespec="seconds"),
            "products": self.entries,
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with AtomicOutput(self.path, overwrite=True) as output:
            with open(output.temporary, "w") as f:
                json.dump(content, f, indent=1, sort_keys=True)
                f.flush()
                os.fsync(f.fileno())
            output.commit()
