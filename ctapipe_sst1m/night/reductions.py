"""The steps of a night over all its runs: the data-quality table and the report."""

import re
from pathlib import Path

from astropy.table import Table

from .engine import StepOutcome
from .expected_rate import expected_proton_rate
from .plan import STEREO
from .quality import quality_table, run_quality, write_quality_table
from .quality_cuts import QualityCuts
from .report import write_night_report
from .steps import execute_step

__all__ = ["NightReductions"]

_PRODUCT_NAME = re.compile(r"SST1M(?P<camera>[12]?)_(?P<date>\d{8})_(?P<run>\d{4})")


def _run_of(path):
    """Run number of a DL1 product (from its name)."""
    return int(_PRODUCT_NAME.match(Path(path).name)["run"])


class NightReductions:
    """
    The quality table (a Dask task: picklable, it holds no Tool) and the report (made
    by the client at the end, from the outcome of every step).

    Parameters
    ----------
    night_runs : ctapipe_sst1m.night.runs.NightRuns
    cuts : ctapipe_sst1m.night.quality.QualityCuts
    proton_mc : Path or None
        Simulated proton DL1 for the expected rates.
    night_dir : Path
    """

    def __init__(self, night_runs, cuts, proton_mc, night_dir):
        self.night_runs = night_runs
        self.cut_values = {
            name: getattr(cuts, name) for name in cuts.class_trait_names(config=True)
        }
        self.proton_mc = proton_mc
        self.night_dir = Path(night_dir)

    def _telescope_runs(self, paths):
        """
        ``(run, tel_id, DL1 files, stereo DL1 files)`` of every run and telescope among
        DL1 products, in run order.
        """
        by_run = {}
        for path in sorted(map(Path, paths)):
            target, setup = path.relative_to(self.night_dir).parts[:2]
            by_run.setdefault(_run_of(path), {}).setdefault(setup, []).append(path)
        for run, products in sorted(by_run.items()):
            stereo = products.pop(STEREO, [])
            for setup, dl1 in sorted(products.items()):
                yield run, int(setup.removeprefix("tel_")), dl1, stereo

    def quality(self, step, inputs, log):
        """Write the quality table of the DL1 products that were made (a step function)."""
        expected = None
        if self.proton_mc is not None:
            expected = expected_proton_rate(self.proton_mc)
        rows = [
            run_quality(dl1, tel_id, stereo, expected)
            for _, tel_id, dl1, stereo in self._telescope_runs(inputs)
        ]
        print(f"quality of {len(rows)} runs and telescopes", file=log)
        table = quality_table(rows, QualityCuts(**self.cut_values))
        write_quality_table(table, step.product)

    def report(self, step, outcomes, manifest, previous_status):
        """
        Write the report (in this process) unless it is up to date: no product was made
        and no step has another status than before (``previous_status``: key -> status).

        Returns
        -------
        list of StepOutcome
            The report's outcome.
        """
        reason = manifest.why_redo(step.key, step.product, step.config_hash)
        made = [o for o in outcomes if o.reason is not None and o.status == "done"]
        changed = [
            o for o in outcomes if o.entry["status"] != previous_status.get(o.step.key)
        ]
        if reason is None and not made and not changed:
            return [StepOutcome(step, manifest.entries[step.key], None)]
        upstream = [o.entry for o in outcomes if o.step.key in step.upstream]

        def write(step, inputs, log):
            self._write_report(step, outcomes)

        entry = execute_step(step, *upstream, function=write)
        manifest.record(step.key, entry)
        return [StepOutcome(step, entry, reason or "products made")]

    def _write_report(self, step, outcomes):
        dl1 = [o.step.product for o in outcomes if o.step.kind in ("dl1", "stereo")]
        runs = [
            {
                "target": dl1[0].relative_to(self.night_dir).parts[0],
                "run": run,
                "tel_id": tel_id,
                "dl1": dl1,
                "stereo": stereo,
            }
            for run, tel_id, dl1, stereo in self._telescope_runs(
                p for p in dl1 if p.exists()
            )
        ]
        quality_path = self.night_dir / "quality.ecsv"
        quality = Table.read(quality_path) if quality_path.exists() else None
        dl3_dirs = {}
        for outcome in outcomes:
            if outcome.step.kind == "dl3" and outcome.step.product.is_dir():
                target, setup = outcome.step.product.relative_to(self.night_dir).parts[
                    :2
                ]
                dl3_dirs.setdefault(target, {})[setup] = outcome.step.product
        steps = [
            {
                "step": o.step.kind,
                "product": o.step.key,
                "status": "failed" if o.status == "blocked" else o.status,
                "duration_s": o.entry.get("duration_s", 0.0),
                "log": Path(o.entry["log"]) if o.entry.get("log") else None,
                "message": o.entry.get("message", ""),
            }
            for o in outcomes
        ]
        skipped = [
            {
                "path": s.files[0] if s.files else None,
                "target": s.target,
                "reason": s.reason,
            }
            for s in self.night_runs.skipped
        ]
        write_night_report(
            step.product, self.night_runs.night, runs, skipped, quality, steps, dl3_dirs
        )
