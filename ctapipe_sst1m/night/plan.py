"""
The steps of a night and their dependencies: DL1 per raw file, stereo per telescope-21
file, DL2 per DL1 file, DL3 per target and set-up, the quality table and the report.

Products (relative to ``{output_dir}/{night}``)::

    {target}/{tel_021,tel_022}/dl1/SST1M{1,2}_{night}_{run}_{file}.dl1.h5
    {target}/stereo/dl1/SST1M_{night}_{run}_{file}.dl1.h5
    {target}/{tel_021,tel_022,stereo}/dl2/<name of the DL1>.dl2.h5
    {target}/{tel_021,tel_022,stereo}/dl3/         (DL3 files + hdu/obs index)
    quality.ecsv, report.html, manifest.json

Every product has its log (``<product>.log``) and its command (``<product>.step.yaml``)
beside it.
"""

from dataclasses import dataclass, field
from pathlib import Path

from ..instrument import DATA_TEL_IDS
from .manifest import stable_hash

__all__ = ["Step", "NightSettings", "plan_night", "setup_name", "STEP_KINDS"]

#: the kinds of steps, in the order of the data flow (names of --force)
STEP_KINDS = ("dl1", "stereo", "dl2", "dl3", "quality", "report")
STEREO = "stereo"


def setup_name(tel_id):
    """Directory (and IRF set-up) name of a telescope: ``tel_021``."""
    return f"tel_{tel_id:03d}"


@dataclass(frozen=True)
class Step:
    """
    One product of the night and how it is made.

    ``inputs`` are ``(path, key of the step making it or None)``; a step runs when the
    steps it depends on are finished: with all its inputs when ``needs_all_inputs``,
    otherwise with those that were made (at least one; the first one always).
    """

    #: unique name: the product's path relative to the night directory
    key: str
    #: one of STEP_KINDS
    kind: str
    #: the sst1m command that makes it (``sst1m-process``...) or ``quality``/``report``
    command: str
    product: Path
    inputs: tuple
    #: command-line options other than the inputs and the output
    options: tuple = ()
    needs_all_inputs: bool = True
    #: what the product depends on besides its inputs (hashed into config_hash)
    settings: dict = field(default_factory=dict, hash=False)

    @property
    def upstream(self):
        """Keys of the steps this one depends on."""
        return tuple(dict.fromkeys(key for _, key in self.inputs if key is not None))

    @property
    def config_hash(self):
        """Hash of the command, its options and settings."""
        return stable_hash(
            {
                "command": self.command,
                "options": self.options,
                "settings": self.settings,
            }
        )


@dataclass(frozen=True)
class NightSettings:
    """What the steps of a night need besides the raw files."""

    output_dir: Path
    process_config: Path
    models_dir: Path | None
    irf_dir: Path | None
    dl3_options: tuple
    process_options: tuple = ()
    stereo: bool = True
    #: fingerprints of configuration files and directories, by name
    fingerprints: dict = field(default_factory=dict, hash=False)
    #: ``{target: (ra_deg, dec_deg)}`` for OBJECT/RA_OBJ/DEC_OBJ of the DL3 files
    target_positions: dict = field(default_factory=dict, hash=False)


def _dl1_steps(run, directory, settings):
    steps = {}
    for tel_id, paths in run.files.items():
        for path in paths:
            name = path.name.removesuffix(".fits.fz")
            product = (
                directory / run.target / setup_name(tel_id) / "dl1" / f"{name}.dl1.h5"
            )
            steps[path] = Step(
                key=str(product.relative_to(directory)),
                kind="dl1",
                command="sst1m-process",
                product=product,
                inputs=((path, None),),
                options=(
                    f"--config={settings.process_config}",
                    *settings.process_options,
                ),
                settings={
                    "process_config": settings.fingerprints.get("process_config")
                },
            )
    return steps


def _stereo_steps(run, dl1, directory):
    tel_1, tel_2 = DATA_TEL_IDS
    if not (run.files.get(tel_1) and run.files.get(tel_2)):
        return []
    tel_2_inputs = tuple((dl1[p].product, dl1[p].key) for p in run.files[tel_2])
    steps = []
    for path in run.files[tel_1]:
        name = dl1[path].product.name.replace("SST1M1_", "SST1M_", 1)
        product = directory / run.target / STEREO / "dl1" / name
        steps.append(
            Step(
                key=str(product.relative_to(directory)),
                kind="stereo",
                command="sst1m-stereo-match",
                product=product,
                inputs=((dl1[path].product, dl1[path].key), *tel_2_inputs),
                needs_all_inputs=False,
            )
        )
    return steps


def _dl2_step(dl1_step, setup, directory, settings):
    name = dl1_step.product.name.removesuffix(".dl1.h5") + ".dl2.h5"
    target = dl1_step.product.relative_to(directory).parts[0]
    product = directory / target / setup / "dl2" / name
    return Step(
        key=str(product.relative_to(directory)),
        kind="dl2",
        command="sst1m-apply-models",
        product=product,
        inputs=((dl1_step.product, dl1_step.key),),
        options=(f"--models-dir={settings.models_dir}",),
        settings={"models": settings.fingerprints.get("models_dir")},
    )


def _dl3_step(target, setup, dl2_steps, directory, settings):
    product = directory / target / setup / "dl3"
    options = [
        f"--irf-dir={settings.irf_dir}",
        f"--setup={setup}",
        *settings.dl3_options,
    ]
    position = settings.target_positions.get(target)
    options.append(f"--source-name={target}")
    if position is not None:
        options += [f"--source-ra={position[0]}", f"--source-dec={position[1]}"]
    return Step(
        key=str(product.relative_to(directory)),
        kind="dl3",
        command="sst1m-dl3",
        product=product,
        inputs=tuple((s.product, s.key) for s in dl2_steps),
        options=tuple(options),
        needs_all_inputs=False,
        settings={"irfs": settings.fingerprints.get("irf_dir")},
    )


def plan_night(night_runs, settings):
    """
    The steps of a night, each after the steps it depends on.

    Parameters
    ----------
    night_runs : ctapipe_sst1m.night.runs.NightRuns
    settings : NightSettings

    Returns
    -------
    list of Step
    """
    directory = Path(settings.output_dir) / night_runs.night
    dl1_steps, stereo_steps = [], []
    for run in night_runs.runs:
        dl1 = _dl1_steps(run, directory, settings)
        dl1_steps += dl1.values()
        if settings.stereo:
            stereo_steps += _stereo_steps(run, dl1, directory)

    dl2_steps, dl3_steps = [], []
    if settings.models_dir is not None:
        by_setup = {}
        for step in dl1_steps:
            setup = step.product.parent.parent.name
            by_setup.setdefault((step.key.split("/")[0], setup), []).append(step)
        for step in stereo_steps:
            by_setup.setdefault((step.key.split("/")[0], STEREO), []).append(step)
        for (target, setup), steps in sorted(by_setup.items()):
            made = [_dl2_step(s, setup, directory, settings) for s in steps]
            dl2_steps += made
            if settings.irf_dir is not None:
                dl3_steps.append(_dl3_step(target, setup, made, directory, settings))

    quality = Step(
        key="quality.ecsv",
        kind="quality",
        command="quality",
        product=directory / "quality.ecsv",
        inputs=tuple((s.product, s.key) for s in [*dl1_steps, *stereo_steps]),
        needs_all_inputs=False,
        settings={"proton_mc": settings.fingerprints.get("proton_mc")},
    )
    report = Step(
        key="report.html",
        kind="report",
        command="report",
        product=directory / "report.html",
        inputs=(
            (quality.product, quality.key),
            *((s.product, s.key) for s in dl3_steps),
        ),
        needs_all_inputs=False,
    )
    return [*dl1_steps, *stereo_steps, *dl2_steps, *dl3_steps, quality, report]
