"""Where blocks run: local threads, local processes, or a Dask distributed cluster.

The engine only ever sees a :class:`Runner`; which one is resolved here at the edge from
``--scheduler`` (``threads``, ``processes``, ``tcp://HOST:PORT``) or from a named cluster
in a YAML file (``--cluster NAME --clusters FILE``)::

    clusters:
      laptop: {scheduler: threads, workers: 2}
      lab:    {scheduler: "tcp://10.0.0.5:8786"}
      hpc:    {scheduler: slurm, jobs: 8, cores: 32, memory: 64GB, walltime: "02:00:00", queue: normal}

``slurm`` needs the optional ``dask-jobqueue`` extra (``pip install tokensweep[slurm]``).

Parallelism has one owner, Dask: kernels are single-threaded and release the GIL, so
``threads`` with one thread per core uses the machine without Numba's threading layer.
Distributed workers must see the store's filesystem (a shared disk, or 127.0.0.1).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from engine.errors import UserError, did_you_mean
from engine.yamlio import read_yaml

LOCAL = ("threads", "processes", "sync")


@dataclass(frozen=True)
class ClusterProfile:
    scheduler: str = "threads"
    workers: int | None = None
    options: tuple[tuple[str, object], ...] = ()

    def describe(self) -> str:
        if self.scheduler in LOCAL:
            return f"{self.scheduler} x {self.workers or os.cpu_count()}"
        return self.scheduler


def load_cluster(name: str, path: str | Path) -> ClusterProfile:
    """A named cluster (execution profile) from a clusters file (``clusters: {NAME: {...}}``)."""
    data = read_yaml(Path(path), f"--clusters {path}", "clusters file") or {}
    clusters = data.get("clusters", {}) if isinstance(data, dict) else {}
    if name not in clusters:
        raise UserError(f"--cluster: unknown cluster '{name}' in {path} ({did_you_mean(name, clusters)})")
    entry = dict(clusters[name] or {})
    scheduler = str(entry.pop("scheduler", "threads"))
    workers = entry.pop("workers", None)
    return resolve(scheduler, workers, tuple(sorted(entry.items())))


ADDRESS = re.compile(r"^(?:(tcp|tls)://)?(\[[0-9a-fA-F:]+\]|[A-Za-z0-9_.-]+):(\d{1,5})$")


def from_dask_config() -> str | None:
    """The scheduler address Dask's own configuration names (``DASK_SCHEDULER_ADDRESS`` or
    ``scheduler-address`` in a Dask config file), if any."""
    import dask

    address = dask.config.get("scheduler-address", None)
    return str(address) if address else None


def resolve(scheduler: str | None, workers: int | None = None, options=()) -> ClusterProfile:
    scheduler = scheduler or "threads"
    if scheduler == "scheduler-file":
        return ClusterProfile(scheduler, workers, tuple(options))
    if scheduler not in LOCAL and scheduler not in JOBQUEUE:
        match = ADDRESS.match(scheduler)
        if not match or not 0 < int(match.group(3)) < 65536:
            raise UserError(
                f"--scheduler: '{scheduler}' is not known (allowed: threads, processes, sync, {', '.join(JOBQUEUE)}, "
                "or a Dask scheduler address tcp://HOST:PORT, tls://HOST:PORT or HOST:PORT)"
            )
        scheduler = f"{match.group(1) or 'tcp'}://{match.group(2)}:{match.group(3)}"
    if workers is not None and (not isinstance(workers, int) or workers < 1):
        raise UserError(f"--workers: must be a whole number >= 1, got {workers!r}")
    return ClusterProfile(scheduler, workers, tuple(options))


class Runner:
    """Runs zero-argument tasks and reports each result as it completes."""

    def __init__(self, profile: ClusterProfile, client=None):
        self.profile = profile
        self.client = client

    def run(self, tasks: Sequence[Callable[[], int]], on_done: Callable[[int], None], names=None) -> None:
        """Run independent tasks (each returns the points it wrote); ``names`` become their Dask keys
        (what the dashboard and logs show), else Dask names them."""
        import dask

        keys = list(names) if names is not None else [None] * len(tasks)
        delayed = [
            dask.delayed(task, pure=False)(**({"dask_key_name": key} if key else {})) for task, key in zip(tasks, keys)
        ]
        self.run_graph(delayed, on_done)

    def run_graph(self, outputs: Sequence, on_done: Callable[[int], None]) -> None:
        """Compute Dask delayed objects whose results are the points they wrote.

        ``on_done`` is called with every integer result as it completes (intermediate
        results of other types, such as a reduction's partials, are not reported).
        """
        if not outputs:
            return
        if self.client is not None:
            from distributed import as_completed

            # This client is not the default one (set_as_default=False): give as_completed its loop.
            for future in as_completed(self.client.compute(list(outputs)), loop=self.client.loop):
                on_done(future.result())
            return
        import dask
        from dask.callbacks import Callback

        class _Progress(Callback):
            def _posttask(self, key, result, dsk, state, worker_id):
                if isinstance(result, int):
                    on_done(result)

        options = {"initializer": die_with_parent} if self.profile.scheduler == "processes" else {}
        with _Progress():
            dask.compute(
                *outputs,
                scheduler=self.profile.scheduler,
                num_workers=self.profile.workers or os.cpu_count(),
                **options,
            )


def die_with_parent() -> None:
    """Worker-process initialiser: the kernel kills this process when its parent dies (Linux
    ``PR_SET_PDEATHSIG``), so a killed run leaves no worker writing queued blocks."""
    import ctypes
    import signal
    import sys

    if not sys.platform.startswith("linux"):
        return  # elsewhere the run token alone fences stale writers
    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_pdeathsig = 1
    libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
    if os.getppid() == 1:  # the parent died before the call: nothing to serve
        os._exit(1)


#: Batch systems dask-jobqueue drives, by the name a profile gives as its scheduler.
JOBQUEUE = {"slurm": "SLURMCluster", "pbs": "PBSCluster", "sge": "SGECluster", "lsf": "LSFCluster",
            "htcondor": "HTCondorCluster", "oar": "OARCluster", "moab": "MoabCluster"}  # fmt: skip


@contextmanager
def jobqueue_cluster(profile: ClusterProfile):
    """A dask-jobqueue cluster configured the dask-jobqueue way, and the jobs to scale it to.

    Everything the profile does not say comes from dask-jobqueue's own configuration
    (``jobqueue.<system>.*`` in ``~/.config/dask/jobqueue.yaml`` or ``DASK_JOBQUEUE__...``
    variables): a profile may be just ``{scheduler: slurm}``. What it does say (``cores``,
    ``memory``, ``queue``, ...) is passed to the cluster class and wins; ``jobs`` (default 1)
    is how many batch jobs to start.
    """
    try:
        import dask_jobqueue
    except ImportError:
        raise UserError(
            f"--profile: '{profile.scheduler}' needs dask-jobqueue (pip install tokensweep[slurm])"
        ) from None
    options = dict(profile.options)
    jobs = int(options.pop("jobs", 1))
    cluster_class = getattr(dask_jobqueue, JOBQUEUE[profile.scheduler])
    try:
        cluster = cluster_class(**options)
    except (TypeError, ValueError) as exc:
        raise UserError(f"--profile: {profile.scheduler}: {exc}") from None
    with cluster:
        yield cluster, jobs


def jobqueue_threads(profile: ClusterProfile) -> int:
    """Worker threads a batch-system profile will get: jobs x cores per job (profile, else jobqueue config)."""
    import dask

    options = dict(profile.options)
    cores = options.get("cores") or dask.config.get(f"jobqueue.{profile.scheduler}.cores", None) or 1
    return int(options.get("jobs", 1)) * int(cores)


#: Seconds to reach a scheduler and complete Dask's handshake (a server that is not a Dask
#: scheduler may accept the connection and then say nothing, or send anything).
CONNECT_TIMEOUT_S = 10.0


def _client_within(client_class, address: str | None, seconds: float, **options):
    """A connected Client, or a one-line UserError after ``seconds`` whatever the server does."""
    import threading

    outcome: dict = {}
    where = address or options.get("scheduler_file")

    def attempt():
        try:
            # Not the default client: a half-open attempt must never capture dask.compute elsewhere.
            outcome["client"] = client_class(address, timeout=f"{seconds}s", set_as_default=False, **options)
        except BaseException as exc:
            outcome["error"] = exc

    worker = threading.Thread(target=attempt, name="tokensweep-connect", daemon=True)
    worker.start()
    worker.join(seconds + 2.0)
    if "client" in outcome:
        return outcome["client"]
    error = outcome.get("error")
    if error is None:
        reason = f"no Dask handshake within {seconds:g} s"
    elif isinstance(error, OSError):
        reason = str(error) or type(error).__name__
    else:
        reason = f"not a Dask scheduler? {type(error).__name__}: {str(error)[:120]}"
    raise UserError(f"--scheduler: cannot reach the Dask scheduler at {where} ({reason})")


@contextmanager
def connect(profile: ClusterProfile) -> Iterator[Runner]:
    """A Runner for the profile; connects to (or starts) a cluster and closes it afterwards."""
    if profile.scheduler in LOCAL:
        yield Runner(profile)
        return
    try:
        from distributed import Client
    except ImportError:
        raise UserError(
            "--scheduler: a Dask cluster needs the 'distributed' package (pip install tokensweep[distributed])"
        ) from None
    if profile.scheduler in JOBQUEUE:
        with jobqueue_cluster(profile) as (cluster, jobs):  # pragma: no cover - needs a batch system
            cluster.scale(jobs=jobs)
            with Client(cluster) as client:
                yield Runner(profile, client)
        return
    options = dict(profile.options)
    if profile.scheduler == "scheduler-file":
        target = options["scheduler_file"]
        if not Path(target).is_file():
            raise UserError(f"--scheduler-file: {target} does not exist")
        client = _client_within(Client, None, CONNECT_TIMEOUT_S, scheduler_file=str(target))
    else:
        client = _client_within(Client, profile.scheduler, CONNECT_TIMEOUT_S)
    link = getattr(client, "dashboard_link", None)
    if link:
        import sys

        print(f"tokensweep: Dask dashboard at {link}", file=sys.stderr)
    try:
        yield Runner(profile, client)
    finally:
        client.close()
