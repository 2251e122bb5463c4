"""sst1m-night: a night of raw data to DL1, stereo, DL2, DL3, quality table and report, on Dask."""

import os
from datetime import UTC, datetime, timedelta
from importlib.resources import files
from pathlib import Path

from ctapipe.core import Tool, ToolConfigurationError
from ctapipe.core.traits import (
    Bool,
    CaselessStrEnum,
    Dict,
    Int,
    List,
    Unicode,
    flag,
)
from ctapipe.core.traits import Path as PathTrait

from ..io.irf_files import CUT_KINDS, IRF_KINDS
from ..night.engine import NightLock, remove_temporary_outputs, run_steps
from ..night.manifest import (
    MANIFEST_NAME,
    Manifest,
    file_fingerprint,
    listing_fingerprint,
)
from ..night.plan import STEP_KINDS, NightSettings, plan_night
from ..night.quality_cuts import QualityCuts
from ..night.reductions import NightReductions
from ..night.runs import RunFinder
from ..night.workers import CLUSTER_KINDS, dashboard_link, start_client
from .failures import reports_full_disk
from .summary import print_summary

__all__ = ["NightTool", "main"]


def _last_night():
    """The night that ended this morning (UTC): yesterday's date, YYYYMMDD."""
    return (datetime.now(UTC) - timedelta(hours=12)).strftime("%Y%m%d")


class NightTool(Tool):
    """
    Process a night of SST-1M raw data of both telescopes: R0 -> DL1 per file
    (sst1m-process), stereo matching per telescope-21 file (sst1m-stereo-match), DL2
    with the model node closest to each run (sst1m-apply-models), DL3 and index files
    per target and set-up (sst1m-dl3), the data-quality table and an HTML report.

    Runs are grouped by their TARGET keyword; dark, transition, bias and test runs are
    listed and skipped. The steps run as Dask tasks, on an embedded LocalCluster (one
    worker per core), an existing scheduler (--scheduler-address) or a batch system
    (dask-jobqueue). Every product is written under a temporary name and renamed when
    complete; the manifest (manifest.json) records its inputs and their checksums, the
    configuration hash, the software versions, duration and status, and a rerun redoes
    only what is missing, failed or out of date (--force STEP redoes a step). A failed
    file does not stop the night: it is reported, and the tool exits with status 1.
    """

    name = "sst1m-night"
    description = __doc__
    examples = """
    sst1m-night --raw-dir /net --night 20240304 --output-dir analysis \\
        --models-dir models --irf-dir irfs
    sst1m-night --config night.yaml --scheduler-address tcp://10.0.0.1:8786
    sst1m-night --config night.yaml --force dl2
    """

    raw_dir = PathTrait(
        default_value=None,
        allow_none=True,
        exists=True,
        file_ok=False,
        help="Root of the raw-data tree (RunFinder.raw_layout below it).",
    ).tag(config=True)
    night = Unicode(
        default_value=None,
        allow_none=True,
        help="The night, YYYYMMDD (the date it starts); default: last night.",
    ).tag(config=True)
    output_dir = PathTrait(
        default_value=None,
        allow_none=True,
        file_ok=False,
        help="Products go to {output_dir}/{night}/{target}/{tel_021,tel_022,stereo}/{dl1,dl2,dl3}.",
    ).tag(config=True)
    process_config = PathTrait(
        default_value=Path(str(files("ctapipe_sst1m") / "resources" / "sst1m.yaml")),
        exists=True,
        directory_ok=False,
        help="Configuration of R0 -> DL1 (sst1m-process --config).",
    ).tag(config=True)
    process_options = List(
        Unicode(),
        default_value=[],
        help="More sst1m-process options, e.g. --SST1MEventSource.calibration_path=...",
    ).tag(config=True)
    models_dir = PathTrait(
        default_value=None,
        allow_none=True,
        exists=True,
        file_ok=False,
        help="Model sets (sst1m-train-models); without: no DL2, DL3.",
    ).tag(config=True)
    irf_dir = PathTrait(
        default_value=None,
        allow_none=True,
        exists=True,
        help="IRF tree (sst1m-make-irfs) of the models; without: no DL3.",
    ).tag(config=True)
    stereo = Bool(
        default_value=True, help="Match the telescopes (stereo DL1, DL2, DL3)."
    ).tag(config=True)
    dl3_cuts = CaselessStrEnum(
        CUT_KINDS, default_value="efficiency", help="Cuts of the IRFs for DL3."
    ).tag(config=True)
    dl3_irf_kind = CaselessStrEnum(
        IRF_KINDS, default_value="point-like", help="IRF kind for DL3."
    ).tag(config=True)
    target_positions = Dict(
        default_value={},
        help="Source positions {target: [ra_deg, dec_deg]} (ICRS) for the DL3 headers.",
    ).tag(config=True)
    proton_mc = PathTrait(
        default_value=None,
        allow_none=True,
        exists=True,
        directory_ok=False,
        help="Simulated proton DL1 (sst1m-simulate) of the node: the expected rate of the quality table.",
    ).tag(config=True)
    force = List(
        CaselessStrEnum([*STEP_KINDS, "all"]),
        default_value=[],
        help="Redo these steps (and what depends on them) even if up to date.",
    ).tag(config=True)
    cluster = CaselessStrEnum(
        CLUSTER_KINDS,
        default_value="local",
        help="Where the tasks run: an embedded LocalCluster, or batch jobs (dask-jobqueue).",
    ).tag(config=True)
    n_workers = Int(
        default_value=os.cpu_count() or 1,
        min=1,
        help="Workers (one task each at a time): LocalCluster processes or batch jobs.",
    ).tag(config=True)
    scheduler_address = Unicode(
        default_value=None,
        allow_none=True,
        help="Run on this existing Dask scheduler (tcp://host:8786) instead.",
    ).tag(config=True)
    jobqueue_options = Dict(
        default_value={},
        help="Keyword arguments of the dask-jobqueue cluster (queue, cores, memory, walltime...).",
    ).tag(config=True)
    progress_bar = Bool(
        default_value=True, help="Show the steps done and failed, and the time left."
    ).tag(config=True)

    aliases = {
        "raw-dir": "NightTool.raw_dir",
        "night": "NightTool.night",
        ("o", "output-dir"): "NightTool.output_dir",
        "models-dir": "NightTool.models_dir",
        "irf-dir": "NightTool.irf_dir",
        "proton-mc": "NightTool.proton_mc",
        "force": "NightTool.force",
        "workers": "NightTool.n_workers",
        "scheduler-address": "NightTool.scheduler_address",
        "cluster": "NightTool.cluster",
    }
    flags = {
        **flag(
            "progress",
            "NightTool.progress_bar",
            "Show the steps done and failed.",
            "No progress bar.",
        ),
        **flag(
            "stereo",
            "NightTool.stereo",
            "Match the telescopes.",
            "Only the single-telescope chain.",
        ),
    }
    classes = [RunFinder, QualityCuts]

    def setup(self):
        for name in ("raw_dir", "output_dir"):
            if getattr(self, name) is None:
                raise ToolConfigurationError(f"give --{name.replace('_', '-')}")
        self.night = self.night or _last_night()
        if not (len(self.night) == 8 and self.night.isdigit()):
            raise ToolConfigurationError(f"--night {self.night!r} is not YYYYMMDD")
        if self.irf_dir is not None and self.models_dir is None:
            raise ToolConfigurationError(
                "--irf-dir needs --models-dir (DL3 is made from DL2)"
            )
        run_finder = RunFinder(parent=self)
        self.night_runs = run_finder.find(self.raw_dir, self.night)
        if not self.night_runs.runs and not self.night_runs.skipped:
            raise ToolConfigurationError(
                f"no raw files of night {self.night} under {self.raw_dir}"
                f" (layout {run_finder.raw_layout!r})"
            )
        self.night_dir = Path(self.output_dir) / self.night
        self.cuts = QualityCuts(parent=self)
        settings = NightSettings(
            output_dir=Path(self.output_dir),
            process_config=Path(self.process_config),
            process_options=tuple(self.process_options),
            models_dir=self.models_dir,
            irf_dir=self.irf_dir,
            dl3_options=(f"--cuts={self.dl3_cuts}", f"--kind={self.dl3_irf_kind}"),
            stereo=self.stereo,
            fingerprints={
                "process_config": file_fingerprint(self.process_config)["sha256"],
                "models_dir": listing_fingerprint(self.models_dir),
                "irf_dir": listing_fingerprint(self.irf_dir),
                "proton_mc": self.proton_mc
                and file_fingerprint(self.proton_mc)["sha256"],
            },
            target_positions={k: tuple(v) for k, v in self.target_positions.items()},
        )
        self.steps = plan_night(self.night_runs, settings)
        self.reductions = NightReductions(
            self.night_runs, self.cuts, self.proton_mc, self.night_dir
        )
        self.force_kinds = STEP_KINDS if "all" in self.force else self.force

    @reports_full_disk
    def start(self):
        with NightLock(self.night_dir):
            remove_temporary_outputs(self.night_dir)
            manifest = Manifest(self.night_dir / MANIFEST_NAME)
            previous_status = {k: e["status"] for k, e in manifest.entries.items()}
            with start_client(self) as client:
                dashboard = dashboard_link(client)
                self.log.info("Dask dashboard: %s", dashboard)
                if not self.quiet:
                    print(
                        f"sst1m-night {self.night}: {len(self.steps)} steps on {client}"
                    )
                    print(f"  Dask dashboard: {dashboard}")
                outcomes = run_steps(
                    client,
                    self.steps[:-1],
                    manifest,
                    force=self.force_kinds,
                    functions={"quality": self.reductions.quality},
                    progress_bar=self.progress_bar and not self.quiet,
                )
            outcomes += self.reductions.report(
                self.steps[-1], outcomes, manifest, previous_status
            )
            remove_temporary_outputs(self.night_dir)
        self._summarise(outcomes)

    def _summarise(self, outcomes):
        counts = {}
        for outcome in outcomes:
            counts[outcome.status] = counts.get(outcome.status, 0) + 1
        failed = [o for o in outcomes if o.status in ("failed", "blocked")]
        lines = [
            f"{len(self.night_runs.runs)} runs of {len(self.night_runs.targets())} targets,"
            f" {len(self.night_runs.skipped)} skipped",
            ", ".join(f"{n} {status}" for status, n in sorted(counts.items())),
        ]
        lines += [
            f"{o.status}: {o.step.key}: {o.entry['message']} (log {o.entry.get('log')})"
            for o in failed
        ]
        print_summary(
            self, lines, [self.night_dir / MANIFEST_NAME, self.steps[-1].product]
        )
        if failed:
            self.log.error(
                "%d of %d steps failed or could not run", len(failed), len(outcomes)
            )
            self.exit(1)


def main():
    """Run the tool."""
    NightTool().run()


if __name__ == "__main__":
    main()
