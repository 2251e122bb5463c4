"""
Model sets of random forests per pointing node, and the record of which set made a DL2 file.

A *model set* is one directory written by ``sst1m-train-models``::

    <models_dir>/ze20_az180_nsb080/
        mono_regressor.pkl  mono_disp.pkl  mono_classifier.pkl
        stereo_regressor.pkl  stereo_disp.pkl  stereo_classifier.pkl
        training.yaml       # what made them: node, inputs, config, features, cuts, counts
        report/             # feature importances, cross-validation

A *models directory* holds one set directly or several sets in sub-directories, one per
pointing node (zenith, azimuth, NSB rate). ``choose_model_set`` picks the node closest to a
run's pointing (angular distance on the sky), then the closest NSB rate among the nodes
at that pointing.
"""

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tables
import yaml

from ..coordinates import angular_distance_deg

__all__ = [
    "MODEL_KINDS",
    "TRAINING_RECORD",
    "ModelSet",
    "ModelSetError",
    "node_name",
    "find_model_sets",
    "choose_model_set",
    "nearest_node",
    "reconstructor_prefix",
    "write_models_record",
    "read_models_record",
    "MODELS_ID_ATTR",
    "MODELS_RECORD_NODE",
]

#: the three reconstructors of a variant, in the order they must be applied
MODEL_KINDS = ("regressor", "disp", "classifier")
#: file name of the training record inside a model set
TRAINING_RECORD = "training.yaml"
#: HDF5 root attribute of DL2 files: identity of the model set that produced them
MODELS_ID_ATTR = "SST1M_MODELS_ID"
#: HDF5 node of the models record in DL2 files
MODELS_RECORD_NODE = "/configuration/sst1m/models"


class ModelSetError(Exception):
    """A model set or models directory is missing, incomplete or inconsistent."""


def reconstructor_prefix(variant, kind):
    """ctapipe prefix of a reconstructor, e.g. ``stereo_regressor``."""
    return f"{variant}_{kind}"


def node_name(zenith_deg, azimuth_deg, nsb_rate_mhz):
    """Directory name of a pointing node, e.g. ``ze20_az180_nsb080``."""
    return f"ze{zenith_deg:02.0f}_az{azimuth_deg % 360:03.0f}_nsb{nsb_rate_mhz:03.0f}"


@dataclass
class ModelSet:
    """One trained model set (a directory with a training record)."""

    path: Path
    record: dict

    @classmethod
    def read(cls, path):
        """Read a model set directory; raises ModelSetError when it is not one."""
        path = Path(path)
        record_path = path / TRAINING_RECORD
        if not record_path.is_file():
            raise ModelSetError(f"{path} is not a model set: no {TRAINING_RECORD}")
        with record_path.open() as f:
            record = yaml.safe_load(f)
        return cls(path=path, record=record)

    @property
    def name(self):
        return self.path.name

    @property
    def zenith_deg(self):
        return float(self.record["node"]["zenith_deg"])

    @property
    def azimuth_deg(self):
        return float(self.record["node"]["azimuth_deg"])

    @property
    def nsb_rate_mhz(self):
        return float(self.record["node"]["nsb_rate_mhz"])

    @property
    def variants(self):
        return sorted(self.record["variants"])

    def model_paths(self, variant):
        """Pickle paths of a variant in application order (energy, disp, classifier)."""
        if variant not in self.record["variants"]:
            raise ModelSetError(
                f"model set {self.path} has no {variant!r} models"
                f" (it has {', '.join(self.variants)})"
            )
        paths = []
        for kind in MODEL_KINDS:
            entry = self.record["variants"][variant].get(kind)
            if entry is None:
                continue
            path = self.path / entry["file"]
            if not path.is_file():
                raise ModelSetError(f"model set {self.path}: {path.name} is missing")
            paths.append(path)
        return paths

    def models_id(self, variant):
        """Identity of the models of a variant: sha256 over the model files."""
        digest = hashlib.sha256()
        for path in self.model_paths(variant):
            digest.update(path.name.encode())
            digest.update(hashlib.sha256(path.read_bytes()).digest())
        return digest.hexdigest()


def find_model_sets(models_dir):
    """All model sets in ``models_dir`` (itself one, or its sub-directories)."""
    models_dir = Path(models_dir)
    if not models_dir.is_dir():
        raise ModelSetError(f"models directory {models_dir} does not exist")
    if (models_dir / TRAINING_RECORD).is_file():
        return [ModelSet.read(models_dir)]
    sets = [
        ModelSet.read(path)
        for path in sorted(models_dir.iterdir())
        if (path / TRAINING_RECORD).is_file()
    ]
    if not sets:
        raise ModelSetError(
            f"{models_dir} holds no model set (no {TRAINING_RECORD} in it"
            " or in its sub-directories); train with sst1m-train-models"
        )
    return sets


def nearest_node(nodes, zenith_deg, azimuth_deg, nsb_rate_mhz=None):
    """
    The node closest to a pointing: the smallest angular distance of zenith and
    azimuth; among nodes at that pointing (to 0.01 deg), the closest NSB rate.

    Parameters
    ----------
    nodes : list
        Objects with ``zenith_deg``, ``azimuth_deg`` and ``nsb_rate_mhz`` (model sets,
        IRF files).
    zenith_deg, azimuth_deg : float
        The pointing.
    nsb_rate_mhz : float or None
        NSB rate (None or NaN: not used).

    Returns
    -------
    node
    distance_deg : float
        angular distance between the pointing and the node's pointing
    """
    distances = np.array(
        [
            angular_distance_deg(zenith_deg, azimuth_deg, n.zenith_deg, n.azimuth_deg)
            for n in nodes
        ]
    )
    closest = [n for n, d in zip(nodes, distances) if d <= distances.min() + 0.01]
    if nsb_rate_mhz is not None and np.isfinite(nsb_rate_mhz):
        closest.sort(key=lambda n: abs(n.nsb_rate_mhz - nsb_rate_mhz))
    chosen = closest[0]
    return chosen, float(distances[nodes.index(chosen)])


def choose_model_set(models_dir, zenith_deg, azimuth_deg, nsb_rate_mhz=None):
    """
    The model set closest to a pointing (`nearest_node` of the sets in ``models_dir``).

    Returns
    -------
    model_set : ModelSet
    distance_deg : float
        angular distance between the run's pointing and the node's pointing
    """
    return nearest_node(
        find_model_sets(models_dir), zenith_deg, azimuth_deg, nsb_rate_mhz
    )


def write_models_record(h5file, record):
    """Store the models record (a dict) in a DL2 file and its id as a root attribute."""
    group, name = MODELS_RECORD_NODE.rsplit("/", 1)
    if MODELS_RECORD_NODE in h5file:
        h5file.remove_node(MODELS_RECORD_NODE)
    text = json.dumps(record, indent=1, sort_keys=True, default=str)
    h5file.create_array(
        group,
        name,
        obj=np.frombuffer(text.encode(), dtype=np.uint8),
        createparents=True,
    )
    h5file.root._v_attrs[MODELS_ID_ATTR] = record["models_id"]


def read_models_record(path):
    """The models record of a DL2 file, or None if it was not made by sst1m-apply-models."""
    with tables.open_file(path, mode="r") as h5file:
        if MODELS_RECORD_NODE not in h5file:
            return None
        return json.loads(h5file.get_node(MODELS_RECORD_NODE).read().tobytes().decode())
