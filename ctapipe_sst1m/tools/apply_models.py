"""sst1m-apply-models: DL1 -> DL2 with the model set closest to the run's pointing."""

import itertools
from pathlib import Path

import astropy.units as u
import numpy as np
import tables
from astropy.table import vstack
from ctapipe.containers import CoordinateFrameType
from ctapipe.core import ToolConfigurationError
from ctapipe.core.traits import CaselessStrEnum, List, Unicode, flag
from ctapipe.core.traits import Path as PathTrait
from ctapipe.io import TableLoader, read_table, write_table
from ctapipe.io.hdf5dataformat import (
    DL0_TEL_POINTING_GROUP,
    DL1_SUBARRAY_TRIGGER_TABLE,
    DL2_SUBARRAY_GROUP,
    DL2_TEL_GROUP,
    OBSERVATION_BLOCK_TABLE,
    SIMULATION_SHOWER_TABLE,
)
from ctapipe.reco import DispReconstructor, Reconstructor
from ctapipe.tools.apply_models import ApplyModels

from ..event_index import row_index
from ..io.atomic_output import AtomicOutput, check_not_an_input
from ..io.dl1_monitoring import SUMMARY_TABLE
from ..io.model_sets import (
    MODELS_ID_ATTR,
    ModelSetError,
    choose_model_set,
    write_models_record,
)
from ..io.sky_coordinates import add_radec_columns, read_pointing_tracks
from ..version import __version__
from .failures import reports_full_disk
from .summary import print_summary

__all__ = ["ApplyModelsTool"]

#: DL2 tables are compressed like the DL1 tables of sst1m.yaml (level 1)
DL2_FILTERS = tables.Filters(complevel=1, complib="blosc:zstd", fletcher32=True)
STEREO_GEOMETRY_TABLE = "/dl2/event/subarray/geometry/HillasReconstructor"


class ApplyModelsTool(ApplyModels):
    """
    Reconstruct energy, direction and gammaness of SST-1M DL1 files (real data or
    simulations, one telescope or stereo) with the random forests of ``sst1m-train-models``.

    ``--models-dir`` is a model set or a directory of model sets, one per pointing node;
    the node closest to the run's pointing (then NSB rate) is used. The variant is
    ``mono`` and ``stereo`` for files with the stereo geometry (``sst1m-stereo-match``,
    simulations) and ``mono`` otherwise, unless ``--variant`` says. The DL2 file records the model set,
    its features and event selection (``/configuration/sst1m/models``); real data gets
    RA/Dec of every reconstructed direction and needs the telescope pointing table that
    ``sst1m-process`` and ``sst1m-stereo-match`` write. Written to a temporary name and
    renamed when complete.
    """

    name = "sst1m-apply-models"
    description = __doc__
    examples = """
    sst1m-apply-models --input run.dl1.h5 --models-dir models/ --output run.dl2.h5
    sst1m-apply-models --input stereo.dl1.h5 --models-dir models/ --variant stereo --output stereo.dl2.h5
    """

    models_dir = PathTrait(
        default_value=None,
        allow_none=True,
        exists=True,
        file_ok=False,
        help="Model set, or directory of model sets per pointing node (sst1m-train-models --output-dir).",
    ).tag(config=True)
    variants = List(
        CaselessStrEnum(["auto", "mono", "stereo"]),
        default_value=["auto"],
        help=(
            "Models to apply: mono (per telescope, combined over the telescopes), stereo (needs"
            " the HillasReconstructor geometry); auto = both when the input has the stereo"
            " geometry, else mono."
        ),
    ).tag(config=True)
    node = Unicode(
        default_value=None,
        allow_none=True,
        help="Use this model set (sub-directory name) instead of the closest one.",
    ).tag(config=True)

    aliases = {
        **ApplyModels.aliases,
        "models-dir": "ApplyModelsTool.models_dir",
        "variant": "ApplyModelsTool.variants",
        "node": "ApplyModelsTool.node",
    }
    flags = {
        **ApplyModels.flags,
        # ctapipe's own --progress flag (0.28 to 0.32) sets ProcessorTool.progress_bar
        **flag(
            "progress",
            "ApplyModelsTool.progress_bar",
            "show a progress bar while applying the models",
            "no progress bar",
        ),
        "overwrite": (
            {"HDF5Merger": {"overwrite": True}, "ApplyModelsTool": {"overwrite": True}},
            "Overwrite output file if it exists",
        ),
    }

    def setup(self):
        if self.input_url is None or self.output_path is None:
            raise ToolConfigurationError(
                f"{self.name}: --input and --output are required"
            )
        if self.models_dir is None and not self.reconstructor_paths:
            raise ToolConfigurationError(f"{self.name}: --models-dir is required")
        self.final_output = Path(self.output_path)
        check_not_an_input(self.final_output, [self.input_url])
        if self.final_output.exists() and not self.overwrite:
            raise ToolConfigurationError(
                f"{self.final_output} exists; use --overwrite to replace it"
            )
        self._inspect_input()
        if self.models_dir is not None:
            self._choose_models()
        self._check_features()
        # discarded by the tool's exit stack unless finish() commits it (after the
        # output file, opened later by ApplyModels.setup, is closed)
        self.output = self.enter_context(
            AtomicOutput(self.final_output, overwrite=True)
        )
        self.output_path = self.output.temporary
        super().setup()

    # ------------------------------------------------------------------ #
    def _inspect_input(self):
        with tables.open_file(self.input_url) as h5file:
            self.is_simulation = SIMULATION_SHOWER_TABLE in h5file
            has_stereo_geometry = STEREO_GEOMETRY_TABLE in h5file
            has_pointing_table = DL0_TEL_POINTING_GROUP in h5file
            if not any(
                p in h5file
                for p in ("/dl1/event/telescope/parameters", "/dl2/event/telescope")
            ):
                raise ToolConfigurationError(
                    f"{self.input_url}: no DL1 parameters to reconstruct from"
                )
            previous = (
                h5file.root._v_attrs[MODELS_ID_ATTR]
                if MODELS_ID_ATTR in h5file.root._v_attrs
                else None
            )
        if previous is not None:
            raise ToolConfigurationError(
                f"{self.input_url} already has DL2 of model set {previous[:12]}…; apply models to DL1 files"
            )
        if "auto" in self.variants:
            self.variants = ["mono", "stereo"] if has_stereo_geometry else ["mono"]
        elif "stereo" in self.variants and not has_stereo_geometry:
            raise ToolConfigurationError(
                f"{self.input_url} has no stereo geometry ({STEREO_GEOMETRY_TABLE}):"
                " stereo models need sst1m-stereo-match output or simulations"
            )

        block = read_table(self.input_url, OBSERVATION_BLOCK_TABLE)
        frame = CoordinateFrameType(block["subarray_pointing_frame"][0])
        if frame == CoordinateFrameType.ALTAZ:
            self.pointing_alt_az = (
                float(np.mean(block["subarray_pointing_lat"].quantity.to_value(u.deg))),
                float(np.mean(block["subarray_pointing_lon"].quantity.to_value(u.deg))),
            )
        elif has_pointing_table:
            self.pointing_alt_az = _mean_pointing(self.input_url)
        else:
            raise ToolConfigurationError(
                f"{self.input_url}: real data without telescope pointing"
                f" ({DL0_TEL_POINTING_GROUP}); directions and the model node need it."
                " Process the raw data with sst1m-process (or sst1m-stereo-match), which writes it."
            )
        self.nsb_rate_mhz = _mean_nsb_rate(self.input_url)

    def _choose_models(self):
        zenith, azimuth = 90 - self.pointing_alt_az[0], self.pointing_alt_az[1]
        try:
            if self.node is not None:
                model_set, distance = choose_model_set(
                    self.models_dir / self.node, zenith, azimuth
                )
            else:
                model_set, distance = choose_model_set(
                    self.models_dir, zenith, azimuth, self.nsb_rate_mhz
                )
            self.reconstructor_paths = [
                path
                for variant in self.variants
                for path in model_set.model_paths(variant)
            ]
            variant_ids = {
                variant: model_set.models_id(variant) for variant in self.variants
            }
        except ModelSetError as err:
            raise ToolConfigurationError(str(err)) from err
        self.models_record = {
            "models_id": "+".join(variant_ids[v] for v in self.variants),
            "model_set": str(model_set.path.resolve()),
            "node": model_set.record["node"],
            "pointing_alt_az_deg": list(self.pointing_alt_az),
            "nsb_rate_mhz": self.nsb_rate_mhz,
            "node_distance_deg": distance,
            "variants": {
                variant: {
                    "models_id": variant_ids[variant],
                    **model_set.record["variants"][variant],
                }
                for variant in self.variants
            },
            "training_inputs": model_set.record["inputs"],
            "ctapipe_sst1m_version": __version__,
        }
        self.log.info(
            "Model set %s (%s), %.2f deg from the pointing alt %.2f az %.2f",
            model_set.name,
            ", ".join(self.variants),
            distance,
            *self.pointing_alt_az,
        )

    def _check_features(self):
        """Every model input must be in the file: ctapipe would skip the model silently."""
        with TableLoader(self.input_url, parent=self) as loader:
            # a few events: ctapipe fails on a stop beyond the last one
            n_events = loader.h5file.get_node(DL1_SUBARRAY_TRIGGER_TABLE).nrows
            sample = loader.read_telescope_events(
                start=0,
                stop=min(5, n_events),
                true_parameters=False,
                observation_info=True,
                instrument=True,
            )
            subarray = loader.subarray
        available = set(sample.colnames)
        for path in self.reconstructor_paths:
            try:
                reconstructor = Reconstructor.read(path, subarray=subarray)
            except Exception as err:
                raise ToolConfigurationError(
                    f"model file {path} cannot be read ({type(err).__name__}: {err}):"
                    " retrain the model set or copy the file again"
                ) from err
            available |= {name for name, _ in reconstructor.feature_generator.features}
            available |= _prediction_columns(reconstructor)
            missing = [f for f in reconstructor.features if f not in available]
            if missing:
                raise ToolConfigurationError(
                    f"{self.input_url} lacks the features {missing} of {Path(path).name}"
                )

    # ------------------------------------------------------------------ #
    # prediction: ctapipe's steps, with array indexing instead of table joins
    # ------------------------------------------------------------------ #
    def _apply(self, reconstructor, tel_tables, start, stop):
        """Telescope-wise predictions of one reconstructor, then the stereo combination."""
        prefix = reconstructor.prefix
        for tel_id, table in tel_tables.items():
            if len(table) == 0:
                continue
            predictions = reconstructor.predict_table(
                self.loader.subarray.tel[tel_id], table
            )
            for prop, prediction in predictions.items():
                for column in prediction.colnames:
                    table[column] = prediction[column]
                write_table(
                    table[["obs_id", "event_id", "tel_id", *prediction.colnames]],
                    self.output_path,
                    f"{DL2_TEL_GROUP}/{prop}/{prefix}/tel_{tel_id:03d}",
                    append=True,
                    filters=DL2_FILTERS,
                )
        self._combine(reconstructor, tel_tables, start=start, stop=stop)

    def _combine(self, reconstructor, tel_tables, start, stop):
        """Array-event predictions, in the order of the trigger table, added to the telescope tables."""
        trigger = read_table(
            self.h5file, DL1_SUBARRAY_TRIGGER_TABLE, start=start, stop=stop
        )
        combiner = reconstructor.stereo_combiner
        stacked = vstack(
            [
                table[_combiner_columns(table, combiner.prefix)]
                for table in tel_tables.values()
                if len(table) > 0
            ]
        )
        order = np.argsort(row_index(trigger, stacked), kind="stable")
        stereo = combiner.predict_table(stacked[order])
        for column in [c for c in stereo.colnames if c.endswith("telescopes")]:
            description = stereo[column].description
            stereo[column] = _telescope_masks(self.loader.subarray, stereo[column])
            stereo[column].description = description
        write_table(
            stereo,
            self.output_path,
            f"{DL2_SUBARRAY_GROUP}/{combiner.property}/{combiner.prefix}",
            append=True,
            filters=DL2_FILTERS,
        )
        new_columns = [c for c in stereo.colnames if c not in ("obs_id", "event_id")]
        for table in tel_tables.values():
            if len(table) == 0:
                continue
            rows = row_index(stereo, table)
            for column in new_columns:
                table[column] = stereo[column][rows]

    @reports_full_disk
    def start(self):
        super().start()

    @reports_full_disk
    def finish(self):
        super().finish()
        self.h5file.close()
        if not self.is_simulation:
            location = self.loader.subarray.reference_location
            for reconstructor in self._reconstructors:
                if isinstance(reconstructor, DispReconstructor):
                    n = add_radec_columns(
                        self.output_path, reconstructor.prefix, location
                    )
                    self.log.info("RA/Dec of %d %s directions", n, reconstructor.prefix)
        with tables.open_file(self.output_path, mode="r+") as h5file:
            _carry_sst1m_tables(self.input_url, h5file)
            if self.models_dir is not None:
                write_models_record(h5file, self.models_record)
        self.output.commit()
        self.log.info("DL2 written to %s", self.final_output)
        print_summary(self, self._console_summary(), [self.final_output])

    def _console_summary(self):
        """The input and model set, and per model the events with a valid prediction."""
        with tables.open_file(self.final_output) as h5file:
            n_events = h5file.get_node(DL1_SUBARRAY_TRIGGER_TABLE).nrows
            line = f"{Path(self.input_url).name}: {n_events:,} events"
            if self.models_dir is not None:
                record = self.models_record
                line += (
                    f", model set {record['node']['name']} ({', '.join(self.variants)}),"
                    f" {record['node_distance_deg']:.2f} deg from the pointing"
                )
            lines = [line]
            for reconstructor in self._reconstructors:
                combiner = reconstructor.stereo_combiner
                table = h5file.get_node(
                    f"{DL2_SUBARRAY_GROUP}/{combiner.property}/{combiner.prefix}"
                )
                n_valid = np.count_nonzero(table.col(f"{combiner.prefix}_is_valid"))
                lines.append(
                    f"{combiner.prefix}: valid {combiner.property} for {n_valid:,} events"
                )
        return lines


#: SST-1M tables of DL1 files that ctapipe's ApplyModels does not copy; DL3 needs them
#: (target of the run, the telescopes' recorded events of a stereo run)
CARRIED_TABLES = (
    "/dl1/service/sst1m_processing",
    "/dl1/service/coincidence",
    "/dl1/event/subarray/coincidence",
)


def _carry_sst1m_tables(input_path, output):
    """Copy the `CARRIED_TABLES` of the input DL1 file into the open DL2 file."""
    with tables.open_file(input_path) as source:
        for path in CARRIED_TABLES:
            if path in source and path not in output:
                group, name = path.rsplit("/", 1)
                if group not in output:
                    parent, child = group.rsplit("/", 1)
                    output.create_group(parent or "/", child, createparents=True)
                source.copy_node(path, newparent=output.get_node(group), newname=name)


def _telescope_masks(subarray, tel_id_lists):
    """Boolean masks (n_events, n_tels) of lists of telescope ids."""
    masks = np.zeros((len(tel_id_lists), subarray.n_tels), dtype=bool)
    counts = np.fromiter(
        (len(tel_ids) for tel_ids in tel_id_lists), dtype=int, count=len(tel_id_lists)
    )
    if counts.sum():
        tel_ids = np.fromiter(
            itertools.chain.from_iterable(tel_id_lists), dtype=int, count=counts.sum()
        )
        masks[
            np.repeat(np.arange(len(tel_id_lists)), counts),
            subarray.tel_index_array[tel_ids],
        ] = True
    return masks


#: telescope-table columns a stereo combiner reads besides the ids and its predictions
COMBINER_INPUT_PREFIXES = (
    "hillas_",
    "camera_frame_hillas_",
    "telescope_pointing_",
    "subarray_pointing_",
)


def _combiner_columns(table, prefix):
    """The columns of a telescope table that the stereo combiner of ``prefix`` needs."""
    return [
        name
        for name in table.colnames
        if name in ("obs_id", "event_id", "tel_id")
        or name.startswith(f"{prefix}_tel_")
        or name.startswith(COMBINER_INPUT_PREFIXES)
    ]


def _prediction_columns(reconstructor):
    prefix = reconstructor.prefix
    return {
        f"{prefix}_tel_energy",
        f"{prefix}_tel_parameter",
        f"{prefix}_tel_prediction",
    }


def _mean_pointing(path):
    """Mean alt/az (deg) of the telescope pointing time series of a real-data file."""
    tracks = read_pointing_tracks(path).values()
    alt = np.concatenate([alt for _, alt, _ in tracks])
    az = np.concatenate([az for _, _, az in tracks])
    mean_az = np.rad2deg(np.arctan2(np.mean(np.sin(az)), np.mean(np.cos(az)))) % 360
    return float(np.rad2deg(np.mean(alt))), float(mean_az)


def _mean_nsb_rate(path):
    """Mean NSB rate (MHz) of the processing summary of sst1m-process, or None."""
    try:
        summary = read_table(path, SUMMARY_TABLE)
    except tables.NoSuchNodeError:
        return None
    if "nsb_rate_mhz" not in summary.colnames:
        return None
    rates = np.asarray(summary["nsb_rate_mhz"], dtype=float)
    rates = rates[np.isfinite(rates)]
    return float(np.mean(rates)) if len(rates) else None


def main():
    ApplyModelsTool().run()


if __name__ == "__main__":
    main()
