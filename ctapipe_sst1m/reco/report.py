"""
The record and report of a model training: cross-validation metrics, feature importances.

``sst1m-train-models`` writes, per model set, ``training.yaml`` (the record: inputs,
configuration, per model its features and event selection) and a ``report/`` directory
(``cross_validation.ecsv`` and ``feature_importances_<prefix>.ecsv``). The energy and
disp norm resolutions of the cross-validation are those of `ctapipe_sst1m.statistics`
(the same definition as the performance benchmarks).
"""

import hashlib
from pathlib import Path
from typing import NamedTuple

import astropy.units as u
import numpy as np
import tables
from astropy.table import Table
from ctapipe.io import read_table
from sklearn.metrics import roc_auc_score

from ..statistics import bias, resolution

__all__ = [
    "CrossValidationMetric",
    "cross_validation_metrics",
    "feature_importances",
    "file_record",
    "model_entry",
    "plain_config",
    "training_summary_lines",
    "write_cross_validation",
    "write_feature_importances",
]


class CrossValidationMetric(NamedTuple):
    """One metric of one model over the cross-validation folds (a row of the report)."""

    variant: str
    model: str
    metric: str
    mean: float
    std: float
    n_folds: int


def _fold_metrics(fold, prefix, kind):
    """The metrics of one fold's predictions, by name."""
    if kind == "regressor":
        relative_error = (
            fold[f"{prefix}_energy"].quantity / fold["truth"].quantity
        ).to_value(u.one) - 1
        return {
            "energy_bias": bias(relative_error),
            "energy_resolution": resolution(relative_error),
        }
    if kind == "classifier":
        truth = np.asarray(fold["truth"]) == 1  # CrossValidator: 1 = gamma (positive)
        return {"auc": roc_auc_score(truth, fold[f"{prefix}_prediction"])}
    predicted = fold[f"{prefix}_parameter"].quantity.to_value(u.deg)
    truth = fold["truth"].quantity.to_value(u.deg)
    return {
        "sign_accuracy": np.mean(np.sign(predicted) == np.sign(truth)),
        "norm_resolution": resolution(np.abs(predicted) / np.abs(truth) - 1),
    }


def cross_validation_metrics(cv_path, prefix, kind, variant):
    """
    Metrics of the cross-validation predictions written by ctapipe's ``CrossValidator``.

    Parameters
    ----------
    cv_path : path-like
        HDF5 file of the ``CrossValidator`` (one table under ``/cv_predictions``).
    prefix : str
        Prefix of the reconstructor, e.g. ``stereo_regressor``.
    kind : {"regressor", "disp", "classifier"}
        Its kind: energy bias and resolution, disp sign accuracy and norm resolution,
        or the AUC.
    variant : str
        Model variant, recorded in the rows.

    Returns
    -------
    list of CrossValidationMetric
        Per metric, its mean and standard deviation over the folds.
    """
    with tables.open_file(cv_path) as f:
        (node,) = list(f.walk_nodes("/cv_predictions", "Table"))
        path = node._v_pathname
    table = read_table(cv_path, path)
    metrics = {}
    for fold in np.unique(table["cv_fold"]):
        in_fold = table[table["cv_fold"] == fold]
        for name, value in _fold_metrics(in_fold, prefix, kind).items():
            metrics.setdefault(name, []).append(value)
    return [
        CrossValidationMetric(
            variant,
            kind,
            name,
            float(np.mean(values)),
            float(np.std(values)),
            len(values),
        )
        for name, values in metrics.items()
    ]


def write_cross_validation(rows, report_dir):
    """
    Write ``cross_validation.ecsv``.

    Parameters
    ----------
    rows : list of CrossValidationMetric
        Of every model.
    report_dir : Path
        The report directory of the model set.

    Returns
    -------
    astropy.table.Table
        The table written.
    """
    table = Table(rows=rows, names=CrossValidationMetric._fields)
    table.write(Path(report_dir) / "cross_validation.ecsv")
    return table


def feature_importances(reconstructor, key):
    """
    Feature importances of the fitted forests as a table (one column per model).

    Parameters
    ----------
    reconstructor : ctapipe.reco.sklearn.SKLearnReconstructor
        Fitted reconstructor.
    key : ctapipe.instrument.TelescopeDescription
        The telescope type of its model.

    Returns
    -------
    astropy.table.Table
        ``feature`` and ``importance`` (``norm`` and ``sign`` for a
        ``DispReconstructor``), sorted by decreasing importance (of the first model).
    """
    models = reconstructor._models[key]
    if isinstance(
        models, tuple
    ):  # DispReconstructor: (norm regressor, sign classifier)
        columns = {
            "norm": models[0].feature_importances_,
            "sign": models[1].feature_importances_,
        }
    else:
        columns = {"importance": models.feature_importances_}
    table = Table({"feature": list(reconstructor.features), **columns})
    table.sort(list(columns)[0], reverse=True)
    return table


def write_feature_importances(importances, report_dir, prefix):
    """
    Write ``feature_importances_<prefix>.ecsv``.

    Parameters
    ----------
    importances : astropy.table.Table
        From `feature_importances`.
    report_dir : Path
        The report directory of the model set.
    prefix : str
        Prefix of the reconstructor.

    Returns
    -------
    Path
        The file written.
    """
    path = Path(report_dir) / f"feature_importances_{prefix}.ecsv"
    importances.write(path)
    return path


def model_entry(reconstructor, n_events, **counts):
    """
    The record of one trained model in ``training.yaml``.

    Parameters
    ----------
    reconstructor : ctapipe.reco.sklearn.SKLearnReconstructor
        Fitted reconstructor.
    n_events : int
        Its training events.
    **counts : int
        Further counts (``n_gamma``, ``n_proton`` of a classifier).

    Returns
    -------
    dict
    """
    return {
        "file": f"{reconstructor.prefix}.pkl",
        "prefix": reconstructor.prefix,
        "class": type(reconstructor).__name__,
        "features": list(reconstructor.features),
        "generated_features": [
            list(f) for f in reconstructor.feature_generator.features
        ],
        "event_selection": [
            list(c) for c in reconstructor.quality_query.quality_criteria
        ],
        "stereo_combiner": type(reconstructor.stereo_combiner).__name__,
        "n_training_events": n_events,
        **counts,
    }


def plain_config(config):
    """
    A traitlets ``Config`` as plain, YAML-safe python.

    Parameters
    ----------
    config : traitlets.config.Config or any value of it

    Returns
    -------
    dict, list, str, int, float, bool or None
        Values of other types as their ``str``.
    """
    if hasattr(config, "items"):
        return {str(k): plain_config(v) for k, v in config.items()}
    if isinstance(config, (list, tuple)):
        return [plain_config(v) for v in config]
    if isinstance(config, (str, int, float, bool)) or config is None:
        return config
    return str(config)


def file_record(path):
    """
    The record of an input file: absolute path and sha256.

    Parameters
    ----------
    path : path-like

    Returns
    -------
    dict
        ``path``, ``sha256`` (hex).
    """
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return {"path": str(Path(path).resolve()), "sha256": digest.hexdigest()}


def training_summary_lines(record, cv_rows):
    """
    Console summary of a training: per variant, the training events, then the
    cross-validation metrics.

    Parameters
    ----------
    record : dict
        The training record (``variants``: per variant its model entries).
    cv_rows : list of CrossValidationMetric
        Of every model.

    Returns
    -------
    list of str
    """
    lines = []
    for variant, entry in record["variants"].items():
        line = f"{variant}: energy and disp on {entry['regressor']['n_training_events']:,} gamma events"
        if "classifier" in entry:
            classifier = entry["classifier"]
            line += f", gammaness on {classifier['n_gamma']:,} gammas + {classifier['n_proton']:,} protons"
        metrics = [
            f"{row.metric} {row.mean:.3f}" for row in cv_rows if row.variant == variant
        ]
        lines += [line, f"{variant} cross-validation: {', '.join(metrics)}"]
    return lines
