"""
Running the steps of a night on Dask: each step a task on a worker, after the steps it
depends on (futures), skipped when its manifest entry still matches; the manifest is
updated as the tasks finish; a lock keeps two runs off the same night.
"""

import os
import socket
from dataclasses import dataclass
from pathlib import Path

from distributed import as_completed
from tqdm.auto import tqdm

from ..io.atomic_output import TEMPORARY_SUFFIX
from .steps import UNCHANGED, execute_step

__all__ = ["NightLock", "NightLockedError", "StepOutcome", "run_steps"]

LOCK_NAME = ".sst1m-night.lock"


class NightLockedError(RuntimeError):
    """Another sst1m-night is processing this night."""


class NightLock:
    """
    The lock file of a night directory (host and process id of the holder). A lock of
    a process of this host that no longer exists is taken over.
    """

    def __init__(self, directory):
        self.path = Path(directory) / LOCK_NAME
        self.held = False

    def __enter__(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        holder = f"{socket.gethostname()} {os.getpid()}"
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                if not self._stale():
                    raise NightLockedError(
                        f"{self.path}: held by {self.path.read_text().strip()!r}; another"
                        " sst1m-night processes this night (delete the file if it is"
                        " not running any more)"
                    ) from None
                self.path.unlink(missing_ok=True)
                continue
            with os.fdopen(fd, "w") as f:
                f.write(holder)
            self.held = True
            return self
        raise NightLockedError(f"{self.path}: could not be taken")

    def _stale(self):
        try:
            host, pid = self.path.read_text().split()
        except (OSError, ValueError):
            return False
        if host != socket.gethostname():
            return False
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False

    def __exit__(self, *exc_info):
        if self.held:
            self.path.unlink(missing_ok=True)


@dataclass
class StepOutcome:
    """What happened to a step in this run: its manifest entry and why it ran."""

    step: object
    entry: dict
    #: why it was (re)made, None if it was up to date and skipped
    reason: str | None

    @property
    def status(self):
        return "skipped" if self.reason is None else self.entry["status"]


def _why_run(steps, manifest, force):
    """
    Why each step must run (None: up to date), and for the steps that are up to date
    but depend on steps that run, those steps: they run only if one of them makes its
    product (a step that fails again changes nothing downstream).
    """
    reasons, redone_inputs = {}, {}
    for step in steps:
        if step.kind in force:
            reason = "forced"
        else:
            reason = manifest.why_redo(step.key, step.product, step.config_hash)
        if reason is None:
            redone = [key for key in step.upstream if reasons.get(key)]
            if redone:
                reason = f"input {Path(redone[0]).name} redone"
                redone_inputs[step.key] = frozenset(redone)
        reasons[step.key] = reason
    return reasons, redone_inputs


def remove_temporary_outputs(directory):
    """
    Delete what killed tasks left under temporary names (``*.part``) in a night
    directory; only while its lock is held, when no task writes there.
    """
    removed = []
    for path in sorted(Path(directory).rglob(f"*{TEMPORARY_SUFFIX}")):
        if path.is_dir():
            for member in sorted(path.rglob("*"), reverse=True):
                member.rmdir() if member.is_dir() else member.unlink()
            path.rmdir()
        else:
            path.unlink(missing_ok=True)
        removed.append(path)
    return removed


def run_steps(client, steps, manifest, force=(), functions=None, progress_bar=True):
    """
    Run the steps of a night that are not up to date on the Dask cluster of ``client``.

    Parameters
    ----------
    client : distributed.Client
    steps : list of ctapipe_sst1m.night.plan.Step
        Each after the steps it depends on.
    manifest : ctapipe_sst1m.night.manifest.Manifest
        Read to skip steps, updated as steps finish.
    force : iterable of str
        Step kinds to redo (and what depends on them).
    functions : dict
        ``{kind: callable}`` for the steps that are not Tools (see `execute_step`).
    progress_bar : bool
        Show tasks done and failed, and the estimated time left.

    Returns
    -------
    list of StepOutcome
        In the order of ``steps``.
    """
    functions = functions or {}
    reasons, redone_inputs = _why_run(steps, manifest, set(force))
    futures, outcomes = {}, {}
    for step in steps:
        if reasons[step.key] is None:
            entry = manifest.entries[step.key]
            outcomes[step.key] = StepOutcome(step, entry, None)
            continue
        upstream = [
            futures.get(key) or {"key": key, "status": manifest.entries[key]["status"]}
            for key in step.upstream
        ]
        futures[step.key] = client.submit(
            execute_step,
            step,
            *upstream,
            function=functions.get(step.kind),
            redone_inputs=redone_inputs.get(step.key),
            key=f"{step.kind}:{step.key}",
            pure=False,
        )
    keys = {future.key: key for key, future in futures.items()}
    by_key = {step.key: step for step in steps}
    bar = tqdm(total=len(futures), unit="step", disable=not progress_bar or not futures)
    failed = 0
    with bar:
        for future in as_completed(list(futures.values())):
            step_key = keys[future.key]
            step = by_key[step_key]
            try:
                entry = future.result()
            except (
                Exception
            ) as err:  # a task that crashed its workers (KilledWorker...)
                entry = _crashed(step, err)
            if entry["status"] == UNCHANGED:
                outcomes[step_key] = StepOutcome(step, manifest.entries[step_key], None)
            else:
                manifest.record(step_key, entry)
                outcomes[step_key] = StepOutcome(step, entry, reasons[step_key])
            failed += entry["status"] not in ("done", UNCHANGED)
            bar.set_postfix_str(f"{failed} failed" if failed else "", refresh=False)
            bar.update()
    return [outcomes[step.key] for step in steps]


def _crashed(step, error):
    """The manifest entry of a task that raised instead of returning a result."""
    return {
        "key": step.key,
        "kind": step.kind,
        "product": str(step.product),
        "status": "failed",
        "message": f"{type(error).__name__}: {error}",
        "inputs": [],
        "config_hash": step.config_hash,
        "duration_s": 0.0,
        "log": None,
    }
