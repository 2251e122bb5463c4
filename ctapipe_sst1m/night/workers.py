"""
The Dask workers of a night: an embedded LocalCluster (default), an existing
scheduler, or batch jobs started by dask-jobqueue (SLURM, HTCondor, PBS, SGE, LSF).
"""

import importlib.util
from contextlib import contextmanager

__all__ = ["CLUSTER_KINDS", "dashboard_link", "start_client"]

#: ``cluster`` option -> dask-jobqueue class (None: LocalCluster)
JOBQUEUE_CLASSES = {
    "local": None,
    "slurm": "SLURMCluster",
    "htcondor": "HTCondorCluster",
    "pbs": "PBSCluster",
    "sge": "SGECluster",
    "lsf": "LSFCluster",
}
CLUSTER_KINDS = list(JOBQUEUE_CLASSES)


def _local_cluster(n_workers):
    from distributed import LocalCluster

    # the dashboard needs bokeh; without it Dask starts none
    dashboard = ":0" if importlib.util.find_spec("bokeh") else None
    # one single-threaded process per worker: the tools run in-process, one at a time
    return LocalCluster(
        n_workers=n_workers,
        threads_per_worker=1,
        processes=True,
        dashboard_address=dashboard,
    )


def _jobqueue_cluster(kind, n_workers, options):
    try:
        import dask_jobqueue
    except ImportError as err:
        raise ImportError(
            f"--cluster {kind} needs dask-jobqueue: pip install 'ctapipe_sst1m[cluster]'"
        ) from err
    cluster = getattr(dask_jobqueue, JOBQUEUE_CLASSES[kind])(**options)
    cluster.scale(jobs=n_workers)
    return cluster


@contextmanager
def start_client(tool):
    """
    A Dask client for the night tool's options: ``scheduler_address``, else
    ``cluster`` with ``n_workers`` (and ``jobqueue_options`` for batch systems).
    The cluster it starts is closed on exit.
    """
    from distributed import Client

    if tool.scheduler_address:
        with Client(tool.scheduler_address) as client:
            yield client
        return
    if tool.cluster == "local":
        cluster = _local_cluster(tool.n_workers)
    else:
        cluster = _jobqueue_cluster(tool.cluster, tool.n_workers, tool.jobqueue_options)
    with cluster, Client(cluster) as client:
        yield client


def dashboard_link(client):
    """The address of the Dask dashboard, or why there is none."""
    if "dashboard" in client.scheduler_info().get("services", {}):
        return client.dashboard_link
    return "none (the scheduler runs without one; it needs bokeh: pip install bokeh)"
