"""The runs of a night: raw files of both telescopes grouped by run and target."""

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from astropy.io import fits
from ctapipe.core import Component
from ctapipe.core.traits import List, Unicode

from ..instrument import DATA_TEL_IDS
from ..io.raw_layout import REFERENCE_RAW_LAYOUT, parse_raw_file_name, raw_directory
from ..io.target import NoPointingTarget, parse_target

__all__ = ["NightRun", "SkippedRun", "NightRuns", "RunFinder"]

#: the raw files hold their camera events in this extension
EVENTS_EXTENSION = "Events"


@dataclass(frozen=True)
class NightRun:
    """A run of the night with a sky target: its raw files per telescope."""

    #: date of the night, YYYYMMDD
    night: str
    #: run number
    run: int
    #: obs_id of the run, YYYYMMDDNNNN (as SST1MEventSource gives it)
    obs_id: int
    #: target name without the wobble label (directory name of its products)
    target: str
    #: wobble label (W1, W2...) or UNDEF
    wobble: str
    #: raw files of each telescope, in file order: ``{21: [Path], 22: [Path]}``
    files: dict = field(hash=False)


@dataclass(frozen=True)
class SkippedRun:
    """Raw files that are not processed, and why (dark run, unreadable header...)."""

    run: int
    target: str
    reason: str
    files: tuple


@dataclass(frozen=True)
class NightRuns:
    """What a night holds: the runs to process and the files skipped."""

    night: str
    runs: tuple
    skipped: tuple

    def targets(self):
        """The targets of the night, sorted."""
        return sorted({run.target for run in self.runs})


class RunFinder(Component):
    """
    Find the raw files of a night (both telescopes), group them by run, and read the
    run's target from the ``TARGET`` keyword of its first file. Runs of the targets in
    ``skipped_targets`` (dark, transition, bias, test runs) and files whose header
    cannot be read are listed as skipped, with the reason.
    """

    raw_layout = Unicode(
        default_value=REFERENCE_RAW_LAYOUT,
        help=(
            "Directory of the raw files of a telescope for a night, relative to the raw"
            " root, with the fields {camera} (1, 2), {year}, {month}, {day}, {night}."
        ),
    ).tag(config=True)
    skipped_targets = List(
        Unicode(),
        default_value=[
            "dark",
            "transition",
            "unknown",
            "bias",
            "wrtest",
            "test",
        ],
        help=(
            "TARGET names (case-insensitive, without the wobble label) of runs that are"
            " listed and not processed; dark and transition runs are always skipped."
        ),
    ).tag(config=True)

    def find(self, raw_root, night):
        """
        The runs of a night.

        Parameters
        ----------
        raw_root : str or Path
            Root of the raw-data tree.
        night : str
            YYYYMMDD.

        Returns
        -------
        NightRuns
        """
        files = defaultdict(lambda: defaultdict(list))
        skipped = []
        for tel_id in DATA_TEL_IDS:
            directory = raw_directory(raw_root, night, tel_id, self.raw_layout)
            if not directory.is_dir():
                self.log.warning(
                    "no raw directory %s for telescope %d", directory, tel_id
                )
                continue
            for path in sorted(directory.glob("*.fits.fz")):
                name = parse_raw_file_name(path)
                if name is None or name["date"] != night:
                    skipped.append(
                        SkippedRun(-1, "", "not a raw file name of this night", (path,))
                    )
                    continue
                files[name["run"]][tel_id].append(path)

        runs = []
        for run, run_files in sorted(files.items()):
            first = next(iter(run_files.values()))[0]
            all_files = tuple(p for paths in run_files.values() for p in paths)
            try:
                target = parse_target(_target_keyword(first))
            except NoPointingTarget as err:
                skipped.append(
                    SkippedRun(run, _target_keyword(first), str(err), all_files)
                )
                continue
            except (OSError, KeyError, ValueError) as err:
                skipped.append(
                    SkippedRun(
                        run, "", f"{first.name}: no usable TARGET ({err})", all_files
                    )
                )
                continue
            if target.name.lower() in {t.lower() for t in self.skipped_targets}:
                skipped.append(
                    SkippedRun(
                        run, target.name, "target listed in skipped_targets", all_files
                    )
                )
                continue
            runs.append(
                NightRun(
                    night=night,
                    run=run,
                    obs_id=int(night) * 10_000 + run,
                    target=target.name,
                    wobble=target.wobble,
                    files={
                        tel: list(paths) for tel, paths in sorted(run_files.items())
                    },
                )
            )
        return NightRuns(night=night, runs=tuple(runs), skipped=tuple(skipped))


def _target_keyword(path):
    """The TARGET keyword of a raw file (KeyError if it has none)."""
    return fits.getheader(Path(path), EVENTS_EXTENSION)["TARGET"]
