"""sst1m-dl3: DL2 of real data to GADF DL3 (events, GTI, pointing, IRFs) and index files."""

from pathlib import Path

import astropy.units as u
import numpy as np
import tables
from astropy.io import fits
from astropy.table import QTable, Table, vstack
from ctapipe.core import Provenance, Tool, ToolConfigurationError
from ctapipe.core.traits import (
    AstroQuantity,
    CaselessStrEnum,
    Float,
    List,
    Unicode,
)
from ctapipe.core.traits import Path as PathTrait
from ctapipe.io.hdf5dataformat import DL1_TEL_TRIGGER_TABLE

from ..dl3.dead_time import DeadTimeModel
from ..dl3.events import SELECTION_STEPS, read_observed_events
from ..dl3.irf_choice import IrfChoiceError, choose_irf
from ..dl3.observations import read_recorded_events, split_observations
from ..dl3.validation import check_data_store
from ..io.atomic_output import write_fits
from ..io.gadf import (
    events_hdu,
    gti_hdu,
    pointing_hdu,
    seconds_since_mjdref,
    write_index_files,
)
from ..io.irf_files import CUT_KINDS, IRF_KINDS, IrfFileError, find_irf_files
from ..io.irf_setups import SETUPS, setup_by_name
from ..io.model_sets import read_models_record
from ..time import tai_time
from .failures import reports_full_disk
from .summary import print_summary

__all__ = ["DL3Tool", "dl3_file_name", "main"]


def dl3_file_name(setup, obs_id):
    """File name of the DL3 file of an observation."""
    return f"sst1m_{setup}_{obs_id:08d}.fits.gz"


class DL3Tool(Tool):
    """
    DL2 files of real data (one telescope, or stereo from sst1m-stereo-match) to one
    GADF DL3 file per observation: the gamma-ray candidates selected with the cuts of
    the IRFs, the good time interval, the pointing and the IRFs of the observation's
    node (nearest, or interpolated in cos(zenith)); then the index files of the
    output directory, for gammapy's DataStore.
    """

    name = "sst1m-dl3"
    description = __doc__
    examples = """
    sst1m-dl3 --input dl2/ --irf-dir irfs --output-dir dl3 --source-name Crab \\
        --source-ra 83.633 --source-dec 22.0145
    sst1m-dl3 --input run.dl2.h5 --irf-dir irfs -o dl3 --setup tel_021 --cuts global \\
        --kind full-enclosure
    """

    input_paths = List(
        PathTrait(exists=True),
        default_value=[],
        help="DL2 files or directories of them (*.h5), repeat the option.",
    ).tag(config=True)
    irf_dir = PathTrait(
        default_value=None,
        allow_none=True,
        exists=True,
        help="IRF tree of sst1m-make-irfs (or one IRF file).",
    ).tag(config=True)
    output_dir = PathTrait(
        default_value=None,
        allow_none=True,
        file_ok=False,
        help="Directory of the DL3 files and index files (created if missing).",
    ).tag(config=True)
    setup_name = CaselessStrEnum(
        list(SETUPS),
        default_value=None,
        allow_none=True,
        help="Telescope set-up; default: stereo for stereo DL2, else the file's telescope.",
    ).tag(config=True)
    cuts = CaselessStrEnum(
        CUT_KINDS, default_value="efficiency", help="Cuts of the IRFs to use."
    ).tag(config=True)
    irf_kind = CaselessStrEnum(
        IRF_KINDS, default_value="point-like", help="IRF kind to use."
    ).tag(config=True)
    irf_choice = CaselessStrEnum(
        ["nearest", "interpolate"],
        default_value="nearest",
        help="IRF of an observation: nearest node, or interpolated in cos(zenith) where nodes bracket it.",
    ).tag(config=True)
    max_node_distance = Float(
        default_value=10.0,
        min=0,
        help="Refuse observations farther than this (deg) from every IRF node.",
    ).tag(config=True)
    source_name = Unicode(
        default_value=None,
        allow_none=True,
        help="OBJECT; default: the target name of the runs.",
    ).tag(config=True)
    source_ra = Float(
        default_value=None, allow_none=True, help="RA_OBJ (deg, ICRS)."
    ).tag(config=True)
    source_dec = Float(
        default_value=None, allow_none=True, help="DEC_OBJ (deg, ICRS)."
    ).tag(config=True)
    max_gap = AstroQuantity(
        default_value=5 * u.s,
        physical_type=u.physical.time,
        help="A longer interval between consecutive events starts a new observation.",
    ).tag(config=True)
    max_pointing_change = AstroQuantity(
        default_value=0.2 * u.deg,
        physical_type=u.physical.angle,
        help="A larger change of the pointing starts a new observation.",
    ).tag(config=True)
    pointing_interval = AstroQuantity(
        default_value=10 * u.s,
        physical_type=u.physical.time,
        help="Spacing of the rows of the POINTING table.",
    ).tag(config=True)

    aliases = {
        ("i", "input"): "DL3Tool.input_paths",
        "irf-dir": "DL3Tool.irf_dir",
        ("o", "output-dir"): "DL3Tool.output_dir",
        "setup": "DL3Tool.setup_name",
        "cuts": "DL3Tool.cuts",
        "kind": "DL3Tool.irf_kind",
        "irf-choice": "DL3Tool.irf_choice",
        "source-name": "DL3Tool.source_name",
        "source-ra": "DL3Tool.source_ra",
        "source-dec": "DL3Tool.source_dec",
    }
    classes = [DeadTimeModel]

    def setup(self):
        for value, option in (
            (self.input_paths, "--input"),
            (self.irf_dir, "--irf-dir"),
            (self.output_dir, "--output-dir"),
        ):
            if not value:
                raise ToolConfigurationError(f"give {option}")
        if (self.source_ra is None) != (self.source_dec is None):
            raise ToolConfigurationError("give both --source-ra and --source-dec")
        self.output_dir = Path(self.output_dir)
        self.dl2_paths = self._dl2_paths()
        self.dead_time_model = DeadTimeModel(parent=self)
        records = {path: read_models_record(path) for path in self.dl2_paths}
        without = [str(p) for p, record in records.items() if record is None]
        if without:
            raise ToolConfigurationError(
                f"{without[0]} has no DL2 of sst1m-apply-models (no models record)"
            )
        self.irf_setup = (
            setup_by_name(self.setup_name)
            if self.setup_name
            else self._default_setup(records)
        )
        self.models_ids = self._models_ids(records)
        try:
            self.candidates = find_irf_files(
                self.irf_dir, self.irf_setup.name, self.cuts, self.irf_kind
            )
        except IrfFileError as err:
            raise ToolConfigurationError(str(err)) from err
        if not self.candidates:
            raise ToolConfigurationError(
                f"{self.irf_dir} holds no {self.irf_kind} IRF of set-up"
                f" {self.irf_setup.name} with {self.cuts} cuts: run sst1m-make-irfs"
            )
        matching = [c for c in self.candidates if c.models_id in self.models_ids]
        if not matching:
            raise ToolConfigurationError(
                f"the IRFs in {self.irf_dir} ({', '.join(sorted({c.node for c in self.candidates}))})"
                f" were made with other {self.irf_setup.variant} models than the DL2 files"
                f" ({', '.join(sorted(self.models_ids))}); make IRFs from simulations"
                " processed with the same models"
            )
        self.candidates = matching
        try:
            self.recorded = [
                read_recorded_events(path, self.irf_setup) for path in self.dl2_paths
            ]
        except ValueError as err:
            raise ToolConfigurationError(str(err)) from err
        self.output_dir.mkdir(parents=True, exist_ok=True)

    def _dl2_paths(self):
        paths = []
        for path in map(Path, self.input_paths):
            paths += sorted(path.glob("*.h5")) if path.is_dir() else [path]
        if not paths:
            raise ToolConfigurationError(
                f"no DL2 file (*.h5) in {', '.join(map(str, self.input_paths))}"
            )
        return paths

    def _default_setup(self, records):
        variants = {tuple(sorted(r["variants"])) for r in records.values()}
        if all("stereo" in v for v in variants):
            return SETUPS["stereo"]
        tel_ids = set()
        for path in self.dl2_paths:
            with tables.open_file(path) as h5file:
                trigger = h5file.get_node(DL1_TEL_TRIGGER_TABLE)
                tel_ids |= {int(t) for t in np.unique(trigger.col("tel_id"))}
        if len(tel_ids) != 1:
            raise ToolConfigurationError(
                f"the DL2 files hold telescopes {sorted(tel_ids)}: choose --setup"
            )
        return setup_by_name(f"tel_{tel_ids.pop():03d}")

    def _models_ids(self, records):
        ids = set()
        for path, record in records.items():
            variant = record["variants"].get(self.irf_setup.variant)
            if variant is None:
                raise ToolConfigurationError(
                    f"{path} has no {self.irf_setup.variant} predictions"
                    f" (set-up {self.irf_setup.name})"
                )
            ids.add(variant["models_id"])
        return ids

    @reports_full_disk
    def start(self):
        observations = split_observations(
            self.recorded, self.max_gap, self.max_pointing_change
        )
        events, self.counts = self._read_events()
        self.written, self.skipped = [], []
        for observation in observations:
            selected = events[
                (events["obs_id"] == observation.run_obs_id)
                & (events["time_ns"] >= observation.start_ns)
                & (events["time_ns"] <= observation.stop_ns)
            ]
            if len(selected) == 0:
                reason = f"observation {observation.obs_id}: no event passes the cuts"
                self.log.warning("%s, no DL3 file written", reason)
                self.skipped.append(reason)
                continue
            try:
                self._write_observation(observation, selected)
            except IrfChoiceError as err:
                reason = f"observation {observation.obs_id}: {err}"
                self.log.error("%s, no DL3 file written", reason)
                self.skipped.append(reason)

    def _read_events(self):
        counts = dict.fromkeys(SELECTION_STEPS, 0)
        tables = []
        reference = self.candidates[0]
        for path in self.dl2_paths:
            table, file_counts = read_observed_events(path, reference)
            for step, n in file_counts.items():
                counts[step] += n
            self.log.info(
                "%s: %s",
                path,
                ", ".join(f"{n} after {step}" for step, n in file_counts.items()),
            )
            if len(table):
                tables.append(table)
        if not tables:
            return QTable({"obs_id": [], "time_ns": []}), counts
        return vstack(tables), counts

    def _write_observation(self, observation, events):
        setup = self.irf_setup
        tel_ids = (
            [setup.data_tel_id]
            if setup.telescope_level
            else sorted(observation.telescope_times_ns)
        )
        start_s = float(seconds_since_mjdref(observation.start_ns))
        stop_s = float(seconds_since_mjdref(observation.stop_ns))
        elapsed = stop_s - start_s
        deadc = 1.0
        for tel_id in tel_ids:
            tau = self.dead_time_model.dead_time(
                observation.telescope_times_ns[tel_id],
                f"observation {observation.obs_id}, telescope {tel_id}",
            )
            deadc *= self.dead_time_model.live_fraction(
                observation.n_recorded[tel_id], tau, elapsed
            )
        pointing_times, alt, az = observation.pointing[tel_ids[0]]
        zenith = 90.0 - float(np.mean(alt))
        azimuth = float(np.rad2deg(np.angle(np.mean(np.exp(1j * np.deg2rad(az))))))
        azimuth %= 360
        choice = choose_irf(
            self.candidates,
            zenith,
            azimuth,
            None,
            self.irf_choice,
            self.max_node_distance,
        )
        keywords = self._keywords(observation, tel_ids, start_s, stop_s, deadc)
        keywords.update(
            {
                "ALT_PNT": (90.0 - zenith, "[deg] mean pointing altitude"),
                "AZ_PNT": (azimuth, "[deg] mean pointing azimuth"),
                "ZEN_PNT": (zenith, "[deg] mean pointing zenith angle"),
                "EV_COUNT": len(events),
                "IRF_NODE": (",".join(choice.nodes), "IRF node(s)"),
                "IRF_CHOI": (choice.method, "nearest or interpolated"),
                "IRF_DIST": (
                    round(choice.distance_deg, 3),
                    "[deg] to the nearest node",
                ),
                "IRF_FILE": Path(choice.reference.path).name,
                "CUTS": self.cuts,
                "MODELSID": choice.reference.models_id,
            }
        )
        table = Table()
        table["EVENT_ID"] = np.asarray(events["event_id"], dtype=np.int64)
        table["TIME"] = seconds_since_mjdref(events["time_ns"]) * u.s
        for column, name in (("RA", "ra"), ("DEC", "dec")):
            table[column] = events[name].to(u.deg)
        table["ENERGY"] = events["energy"].to(u.TeV)
        table["GAMMANESS"] = np.asarray(events["gammaness"], dtype=np.float32)
        table["MULTIP"] = np.asarray(events["multiplicity"], dtype=np.int16)
        table["ALT"] = events["alt"].to(u.deg)
        table["AZ"] = events["az"].to(u.deg)
        order = np.argsort(table["TIME"])
        table = table[order]
        sampled = _sample_pointing(
            pointing_times, alt, az, self.pointing_interval.to_value(u.ns)
        )
        pointing_time_s = seconds_since_mjdref(sampled[0])
        hdus = [
            fits.PrimaryHDU(),
            events_hdu(table, keywords),
            gti_hdu(start_s, stop_s),
            pointing_hdu(
                pointing_time_s,
                np.full(len(sampled[0]), observation.ra_deg),
                np.full(len(sampled[0]), observation.dec_deg),
                sampled[1],
                sampled[2],
                {"OBS_ID": observation.obs_id},
            ),
            *choice.hdus,
        ]
        path = self.output_dir / dl3_file_name(setup.name, observation.obs_id)
        write_fits(fits.HDUList(hdus), path, overwrite=self.overwrite)
        self.written.append(path)

    def _keywords(self, observation, tel_ids, start_s, stop_s, deadc):
        start, stop = tai_time(observation.start_ns), tai_time(observation.stop_ns)
        elapsed = stop_s - start_s
        name = self.source_name or observation.target or "UNKNOWN"
        keywords = {
            "OBS_ID": observation.obs_id,
            "RUN_ID": (observation.run_obs_id, "obs_id of the run"),
            "DATE-OBS": start.utc.strftime("%Y-%m-%d"),
            "TIME-OBS": start.utc.strftime("%H:%M:%S.%f"),
            "DATE-END": stop.utc.strftime("%Y-%m-%d"),
            "TIME-END": stop.utc.strftime("%H:%M:%S.%f"),
            "TSTART": (start_s, "[s] first event, TAI since MJDREF"),
            "TSTOP": (stop_s, "[s] last event, TAI since MJDREF"),
            "TELAPSE": (elapsed, "[s] TSTOP - TSTART"),
            "ONTIME": (elapsed, "[s] GTI duration"),
            "LIVETIME": (elapsed * deadc, "[s] ONTIME x DEADC"),
            "DEADC": (deadc, "live fraction (dead time per recorded event)"),
            "OBS_MODE": "POINTING",
            "RA_PNT": (observation.ra_deg, "[deg] pointing RA (ICRS)"),
            "DEC_PNT": (observation.dec_deg, "[deg] pointing Dec (ICRS)"),
            "RADESYS": "ICRS",
            "OBJECT": name,
            "TELESCOP": "SST1M",
            "INSTRUME": self.irf_setup.name,
            "N_TELS": len(tel_ids),
            "TELLIST": ",".join(str(t) for t in tel_ids),
        }
        if self.source_ra is not None:
            keywords["RA_OBJ"] = (self.source_ra, "[deg] source RA (ICRS)")
            keywords["DEC_OBJ"] = (self.source_dec, "[deg] source Dec (ICRS)")
        return keywords

    @reports_full_disk
    def finish(self):
        all_dl3 = sorted(self.output_dir.glob("sst1m_*.fits.gz"))
        index_files, problems = [], []
        if all_dl3:
            index_files = write_index_files(all_dl3, self.output_dir)
            problems = check_data_store(self.output_dir)
        for path in self.written:
            Provenance().add_output_file(path, role="DL3", add_meta=False)
        counts = ", ".join(f"{n:,} after {step}" for step, n in self.counts.items())
        lines = [
            f"{len(self.dl2_paths)} DL2 files, set-up {self.irf_setup.name},"
            f" {self.cuts} cuts, {self.irf_kind} IRFs: {counts}",
            f"{len(self.written)} observations written, {len(self.skipped)} skipped",
            *self.skipped,
            f"gammapy checks of {self.output_dir}: "
            + ("; ".join(p["msg"] for p in problems) if problems else "no problem"),
        ]
        print_summary(self, lines, [*self.written, *index_files])
        if any(p["level"] == "error" for p in problems):
            self.log.critical("the data store in %s has errors", self.output_dir)
            self.exit(1)
        if not self.written:
            self.log.critical(
                "no DL3 file written: %s", "; ".join(self.skipped) or "no observation"
            )
            self.exit(1)


def _sample_pointing(times_ns, alt, az, interval_ns):
    """The pointing every ``interval_ns`` (and the last sample)."""
    if len(times_ns) == 0:
        return times_ns, alt, az
    order = np.argsort(times_ns)
    times_ns, alt, az = times_ns[order], alt[order], az[order]
    bins = (times_ns - times_ns[0]) // int(interval_ns)
    keep = np.flatnonzero(np.diff(bins, prepend=-1) > 0)
    keep = np.union1d(keep, [len(times_ns) - 1])
    return times_ns[keep], alt[keep], az[keep]


def main():
    """Run the tool."""
    DL3Tool().run()


if __name__ == "__main__":
    main()
