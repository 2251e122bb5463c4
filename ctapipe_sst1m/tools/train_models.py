"""sst1m-train-models: the random forests of one pointing node, mono and stereo, in one command."""

import sys
import warnings
from importlib.resources import files
from pathlib import Path

import numpy as np
import yaml
from astropy.table import vstack
from ctapipe.core import FeatureGenerator, Tool, ToolConfigurationError
from ctapipe.core.provenance import MissingReferenceMetadata
from ctapipe.core.traits import Bool, CaselessStrEnum, Float, Int, List, Unicode, flag
from ctapipe.core.traits import Path as PathTrait
from ctapipe.io import TableLoader
from ctapipe.reco import CrossValidator, DispReconstructor, ParticleClassifier
from ctapipe.reco.disp import compute_true_disp
from ctapipe.reco.sklearn import MLQualityQuery

from ..io.atomic_output import AtomicOutput
from ..io.model_sets import TRAINING_RECORD, node_name, reconstructor_prefix
from ..plotting import plot_feature_importances
from ..reco.energy_regressor import SST1MEnergyRegressor
from ..reco.report import (
    cross_validation_metrics,
    feature_importances,
    file_record,
    model_entry,
    plain_config,
    training_summary_lines,
    write_cross_validation,
    write_feature_importances,
)
from ..reco.training import (
    classifier_sample_sizes,
    read_training_table,
    sample_rows,
    simulated_pointing,
    split_rows,
)
from ..version import __version__
from .failures import reports_full_disk
from .summary import print_step, print_summary

__all__ = ["TrainModelsTool", "DEFAULT_CONFIG", "RECO_FEATURES"]

DEFAULT_CONFIG = Path(str(files("ctapipe_sst1m") / "resources" / "sst1m_models.yaml"))

#: derived features of the classifier from the energy and disp predictions of its variant
RECO_FEATURES = {
    "log_reco_energy": "log10({regressor}_tel_energy.to_value(u.TeV))",
    "reco_disp_norm": "abs({disp}_tel_parameter.to_value(u.deg))",
}


class TrainModelsTool(Tool):
    """
    Train the random forests of the SST-1M analysis for one pointing node.

    For each variant (``mono``: image features only; ``stereo``: plus the stereo
    features ``HillasReconstructor_tel_impact_distance`` and ``HillasReconstructor_h_max``)
    three ctapipe reconstructors are trained on simulated DL1 telescope events, one model
    per telescope type (both SST-1M telescopes share one type; the energy one is
    ``SST1MEnergyRegressor``, configured in the ``EnergyRegressor`` section):
    energy (``<variant>_regressor``), direction (``<variant>_disp``, disp norm and sign)
    and gamma/hadron separation (``<variant>_classifier``). The model set directory holds
    the pickled reconstructors, ``training.yaml`` (inputs, configuration, features,
    event selection, event counts) and a report (feature importances, cross-validation).

    When the classifier uses ``log_reco_energy`` or ``reco_disp_norm``, the gammas are
    split: temporary energy and disp models are trained on one part and applied to the
    other part and to the protons, on which the classifier is trained; the final energy
    and disp models are trained on all gammas.
    """

    name = "sst1m-train-models"
    description = __doc__
    examples = """
    sst1m-train-models --gamma gamma_diffuse.dl1.h5 --proton proton.dl1.h5 --output-dir models/
    sst1m-train-models --gamma g.dl1.h5 --proton p.dl1.h5 --output-dir models/ --variant stereo -c my_models.yaml
    """

    config_files = List(
        default_value=[str(DEFAULT_CONFIG)],
        help="Configuration files; the packaged sst1m_models.yaml when none is given.",
    ).tag(config=True)

    gamma_input = PathTrait(
        default_value=None,
        allow_none=True,
        exists=True,
        directory_ok=False,
        help="Simulated DL1 file of diffuse gammas (sst1m-simulate or ctapipe-process with sst1m_mc.yaml).",
    ).tag(config=True)
    proton_input = PathTrait(
        default_value=None,
        allow_none=True,
        exists=True,
        directory_ok=False,
        help="Simulated DL1 file of diffuse protons; without it no classifier is trained.",
    ).tag(config=True)
    output_dir = PathTrait(
        default_value=None,
        allow_none=True,
        file_ok=False,
        help="Models directory; the set is written to <output_dir>/<node> (see node_name).",
    ).tag(config=True)
    node = Unicode(
        default_value=None,
        allow_none=True,
        help="Name of the model set directory; default ze<zenith>_az<azimuth>_nsb<nsb_rate_mhz> of the gamma input.",
    ).tag(config=True)
    nsb_rate_mhz = Float(
        default_value=80.0,
        min=0.0,
        help="NSB rate (MHz) of the simulation, recorded as the node's NSB.",
    ).tag(config=True)
    variants = List(
        CaselessStrEnum(["mono", "stereo"]),
        default_value=["mono", "stereo"],
        help="Model variants to train.",
    ).tag(config=True)
    stereo_features = List(
        Unicode(),
        default_value=[
            "HillasReconstructor_tel_impact_distance",
            "HillasReconstructor_h_max",
        ],
        help="Features added to every feature list for the stereo variant.",
    ).tag(config=True)
    n_training_events = Int(
        default_value=500000,
        allow_none=True,
        min=1,
        help="Gamma telescope events for energy and disp, and total events of the classifier (None: all).",
    ).tag(config=True)
    gamma_to_proton_training_ratio = Float(
        default_value=1.0,
        min=0.0,
        help="Gamma to proton ratio of the classifier training set.",
    ).tag(config=True)
    classifier_gamma_fraction = Float(
        default_value=0.33,
        min=0.0,
        max=1.0,
        help="Fraction of the gammas kept for the classifier when it uses log_reco_energy or reco_disp_norm.",
    ).tag(config=True)
    random_seed = Int(
        default_value=42, min=0, help="Seed of the event sampling and of the forests."
    ).tag(config=True)
    chunk_size = Int(
        default_value=100000, min=1, help="Telescope events read at once."
    ).tag(config=True)
    plot = Bool(
        default_value=True, help="Write feature-importance PNGs to the report."
    ).tag(config=True)

    aliases = {
        "gamma": "TrainModelsTool.gamma_input",
        "proton": "TrainModelsTool.proton_input",
        ("o", "output-dir"): "TrainModelsTool.output_dir",
        "node": "TrainModelsTool.node",
        "variant": "TrainModelsTool.variants",
        "n-events": "TrainModelsTool.n_training_events",
        "seed": "TrainModelsTool.random_seed",
        ("c", "config"): "TrainModelsTool.config_files",
    }
    flags = {
        **flag(
            "plot", "TrainModelsTool.plot", "Write feature-importance PNGs.", "No PNGs."
        ),
        "overwrite": (
            {"TrainModelsTool": {"overwrite": True}},
            "Replace an existing model set.",
        ),
    }
    classes = [
        SST1MEnergyRegressor,
        DispReconstructor,
        ParticleClassifier,
        CrossValidator,
        FeatureGenerator,
        MLQualityQuery,
    ]

    def setup(self):
        for name in ("gamma_input", "output_dir"):
            if getattr(self, name) is None:
                raise ToolConfigurationError(
                    f"{self.name}: --{name.split('_')[0]} is required"
                )
        self.rng = np.random.default_rng(self.random_seed)
        self.gamma_loader = self.enter_context(
            TableLoader(self.gamma_input, parent=self)
        )
        self.proton_loader = None
        if self.proton_input is not None:
            self.proton_loader = self.enter_context(
                TableLoader(self.proton_input, parent=self)
            )
            if self.proton_loader.subarray != self.gamma_loader.subarray:
                raise ToolConfigurationError(
                    f"{self.gamma_input} and {self.proton_input} have different telescopes"
                )
        else:
            self.log.warning("No --proton input: no gamma/hadron classifier is trained")
        self.subarray = self.gamma_loader.subarray
        if len(self.subarray.telescope_types) != 1:
            raise ToolConfigurationError(
                f"{self.gamma_input}: {len(self.subarray.telescope_types)} telescope types;"
                " SST-1M simulations have one (identical telescopes)"
            )
        self.tel_type = self.subarray.telescope_types[0]
        try:
            self.pointing = simulated_pointing(self.gamma_input)
        except ValueError as err:
            raise ToolConfigurationError(str(err)) from err
        node = self.node or node_name(
            90 - self.pointing[0], self.pointing[1], self.nsb_rate_mhz
        )
        self.set_dir = self.output_dir / node
        if self.set_dir.exists() and not self.overwrite:
            raise ToolConfigurationError(
                f"{self.set_dir} exists; use --overwrite to replace it"
            )
        # no half-written model set: discarded by the tool's exit stack unless committed
        self.output = self.enter_context(
            AtomicOutput(self.set_dir, overwrite=True, directory=True)
        )
        self.part_dir = self.output.temporary
        (self.part_dir / "report").mkdir()
        self.record = {
            "sst1m_models": 1,
            "ctapipe_sst1m_version": __version__,
            "node": {
                "name": node,
                "zenith_deg": round(90 - self.pointing[0], 4),
                "azimuth_deg": round(self.pointing[1], 4),
                "nsb_rate_mhz": self.nsb_rate_mhz,
            },
            "inputs": {
                "gamma": file_record(self.gamma_input),
                "proton": None
                if self.proton_input is None
                else file_record(self.proton_input),
            },
            "random_seed": self.random_seed,
            "telescope_types": [str(t) for t in self.subarray.telescope_types],
            "command_line": " ".join(sys.argv),
            "config": plain_config(self.config),
            "variants": {},
        }
        self.cv_rows = []

    # ------------------------------------------------------------------ #
    def _reconstructor(self, cls, variant, kind, extra_features=()):
        """A reconstructor of a variant: configured features plus the stereo ones, seeded forests."""
        base = cls(self.subarray, parent=self)
        features = list(base.features)
        if variant == "stereo":
            features += [f for f in self.stereo_features if f not in features]
        else:
            features = [f for f in features if f not in self.stereo_features]
        overrides = {
            "prefix": reconstructor_prefix(variant, kind),
            "features": features,
        }
        if cls is DispReconstructor:
            overrides["norm_config"] = {
                **base.norm_config,
                "random_state": self.random_seed,
            }
            overrides["sign_config"] = {
                **base.sign_config,
                "random_state": self.random_seed,
            }
        else:
            overrides["model_config"] = {
                **base.model_config,
                "random_state": self.random_seed,
            }
        reconstructor = cls(self.subarray, parent=self, **overrides)
        criteria = list(reconstructor.quality_query.quality_criteria)
        if variant == "stereo":
            criteria.append(("valid stereo geometry", "HillasReconstructor_is_valid"))
        else:
            criteria = [c for c in criteria if "HillasReconstructor" not in c[1]]
        reconstructor.quality_query = MLQualityQuery(
            parent=reconstructor, quality_criteria=criteria
        )
        if extra_features:
            generated = list(reconstructor.feature_generator.features) + list(
                extra_features
            )
            reconstructor.feature_generator = FeatureGenerator(
                parent=reconstructor, features=generated
            )
        return reconstructor

    def _read(self, loader, reconstructor, columns):
        print_step(self, f"reading the telescope events of {loader.input_url} ...")
        table, counts = read_training_table(
            loader,
            self.tel_type,
            reconstructor.quality_query,
            reconstructor.feature_generator,
            columns,
            self.chunk_size,
            self.log,
        )
        if table is None or len(table) == 0:
            raise ToolConfigurationError(
                f"{loader.input_url}: no telescope event passes the event selection"
            )
        return table, counts

    @reports_full_disk
    def start(self):
        for variant in self.variants:
            self._train_variant(variant)

    def _train_variant(self, variant):
        self.log.info("Training the %s models", variant)
        regressor = self._reconstructor(SST1MEnergyRegressor, variant, "regressor")
        disp = self._reconstructor(DispReconstructor, variant, "disp")
        reco_features = {
            name: expr.format(regressor=regressor.prefix, disp=disp.prefix)
            for name, expr in RECO_FEATURES.items()
        }
        classifier_features = ParticleClassifier(self.subarray, parent=self).features
        uses_reco = [f for f in classifier_features if f in reco_features]
        classifier = None
        if self.proton_loader is not None:
            classifier = self._reconstructor(
                ParticleClassifier,
                variant,
                "classifier",
                extra_features=[(name, reco_features[name]) for name in uses_reco],
            )

        truth = [
            "true_energy",
            "true_alt",
            "true_az",
            "true_shower_primary_id",
            "true_impact_distance",
        ]
        geometry = [
            "hillas_fov_lon",
            "hillas_fov_lat",
            "hillas_psi",
            "telescope_pointing_altitude",
            "telescope_pointing_azimuth",
        ]
        model_features = regressor.features + disp.features
        if classifier is not None:
            model_features += [f for f in classifier.features if f not in reco_features]
        base_features = _unique(model_features)
        if variant == "mono":
            base_features = [f for f in base_features if f not in self.stereo_features]
        columns = _unique(
            ["obs_id", "event_id", "tel_id"] + base_features + truth + geometry
        )
        gammas, gamma_counts = self._read(self.gamma_loader, regressor, columns)
        gammas = sample_rows(gammas, self.n_training_events, self.rng)
        # the distance from the cog to the true source, signed along the image axis
        gammas["true_disp"] = compute_true_disp(gammas, project_disp=False)
        gammas_for_classifier = gammas
        entry = {"event_counts": {"gamma": gamma_counts.as_dict()}}
        if classifier is not None and uses_reco:
            # the classifier's energy/disp features come from temporary models that never
            # saw its gammas; the final models below are trained on all gammas
            energy_part, gammas_for_classifier = split_rows(
                gammas, self.classifier_gamma_fraction, self.rng
            )
            feature_models = [
                self._reconstructor(SST1MEnergyRegressor, variant, "regressor"),
                self._reconstructor(DispReconstructor, variant, "disp"),
            ]
            print_step(
                self,
                f"{variant}: energy and disp models of the classifier features,"
                f" fit on {len(energy_part):,} gamma events ...",
            )
            for model in feature_models:
                model.fit(self.tel_type, energy_part)
            entry["classifier_feature_models_training_events"] = len(energy_part)

        for reconstructor in (regressor, disp):
            self._fit(reconstructor, gammas, variant)
            entry[_kind(reconstructor)] = model_entry(reconstructor, len(gammas))

        if classifier is not None:
            protons, proton_counts = self._read(self.proton_loader, regressor, columns)
            entry["event_counts"]["proton"] = proton_counts.as_dict()
            n_gamma, n_proton = classifier_sample_sizes(
                len(gammas_for_classifier),
                len(protons),
                self.n_training_events,
                self.gamma_to_proton_training_ratio,
            )
            sample = vstack(
                [
                    sample_rows(gammas_for_classifier, n_gamma, self.rng),
                    sample_rows(protons, n_proton, self.rng),
                ]
            )
            if uses_reco:
                # the sample holds the generated features already: predict on them directly
                feature_regressor, feature_disp = feature_models
                energy, _ = feature_regressor._predict(self.tel_type, sample)
                sample[f"{regressor.prefix}_tel_energy"] = energy
                disp_parameter, _, _ = feature_disp._predict(self.tel_type, sample)
                sample[f"{disp.prefix}_tel_parameter"] = disp_parameter
                sample = FeatureGenerator(
                    parent=classifier,
                    features=[(n, reco_features[n]) for n in uses_reco],
                )(sample)
            self.log.info("Classifier: %d gammas, %d protons", n_gamma, n_proton)
            self._fit(classifier, sample, variant)
            entry["classifier"] = model_entry(
                classifier, len(sample), n_gamma=n_gamma, n_proton=n_proton
            )
        self.record["variants"][variant] = entry

    def _fit(self, reconstructor, table, variant):
        kind = _kind(reconstructor)
        print_step(
            self,
            f"{reconstructor.prefix}: cross-validation and fit on {len(table):,} events ...",
        )
        cv_path = (
            self.part_dir / "report" / f"cross_validation_{reconstructor.prefix}.h5"
        )
        with CrossValidator(
            parent=self, model_component=reconstructor, output_path=cv_path
        ) as cv:
            cv(self.tel_type, table)
        self.cv_rows.extend(
            cross_validation_metrics(cv_path, reconstructor.prefix, kind, variant)
        )
        self.log.info("Final fit of %s on %d events", reconstructor.prefix, len(table))
        reconstructor.fit(self.tel_type, table)
        reconstructor.n_jobs = None
        path = self.part_dir / f"{reconstructor.prefix}.pkl"
        with warnings.catch_warnings():
            # ctapipe records the pickle as an output file and looks for reference
            # metadata in it, which a pickle does not have: one warning per model
            warnings.simplefilter("ignore", MissingReferenceMetadata)
            reconstructor.write(path)
        importances = feature_importances(reconstructor, self.tel_type)
        write_feature_importances(
            importances, self.part_dir / "report", reconstructor.prefix
        )
        if self.plot:
            plot_feature_importances(
                importances,
                self.part_dir
                / "report"
                / f"feature_importances_{reconstructor.prefix}.png",
                title=reconstructor.prefix,
            )

    @reports_full_disk
    def finish(self):
        cv_table = write_cross_validation(self.cv_rows, self.part_dir / "report")
        self.record["cross_validation"] = [row._asdict() for row in self.cv_rows]
        with (self.part_dir / TRAINING_RECORD).open("w") as f:
            yaml.safe_dump(self.record, f, sort_keys=False)
        self.output.commit()
        self.log.info("Model set written to %s", self.set_dir)
        for row in cv_table:
            self.log.info(
                "CV %s %s %s: %.4f ± %.4f",
                row["variant"],
                row["model"],
                row["metric"],
                row["mean"],
                row["std"],
            )
        print_summary(
            self, training_summary_lines(self.record, self.cv_rows), [self.set_dir]
        )


def _kind(reconstructor):
    return reconstructor.prefix.split("_", 1)[1]


def _unique(names):
    return list(dict.fromkeys(names))


def main():
    TrainModelsTool().run()


if __name__ == "__main__":
    main()
