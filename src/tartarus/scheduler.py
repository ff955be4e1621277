"""Running chunks of work on a Dask cluster (``dask.distributed``) instead of local processes.

A command given ``--scheduler ADDRESS`` (or the environment variable ``TARTARUS_SCHEDULER``) sends
its chunks of work to the Dask scheduler at that address; without one it runs locally as before.
Nothing here starts a server: the user starts the cluster (``dask scheduler`` on one machine,
``dask worker ADDRESS --nworkers N --nthreads 1`` on each machine), and every worker must see the
data root at the same path (a shared filesystem), because workers read inputs and write outputs
themselves, and must have the same tartarus installed.

The CLI reads the environment (:func:`scheduler_address`); library functions take the address (or
a ``distributed.Client`` already connected) as an argument, None meaning local.

``dask.distributed`` is imported only when a scheduler is used.
"""

from __future__ import annotations

import os
import socket
from contextlib import contextmanager
from itertools import islice

from .errors import ClusterError, ConfigError

__all__ = ["SCHEDULER_ENV", "scheduler_address", "connect", "check_has_workers", "check_workers_see",
           "map_unordered", "n_worker_threads", "on_cluster"]

SCHEDULER_ENV = "TARTARUS_SCHEDULER"


def scheduler_address(address=None):
    """The scheduler to use: ``address`` if given, else ``$TARTARUS_SCHEDULER``, else None (local).

    An address is ``host:port`` or ``tcp://host:port`` (``dask scheduler`` prints it).
    """
    if address is None:
        address = os.environ.get(SCHEDULER_ENV, "")
    address = str(address).strip()
    return address or None


def _is_client(obj):
    return hasattr(obj, "submit") and hasattr(obj, "scheduler")


def _unreachable(address, reason):
    return ConfigError(
        f"cannot reach the Dask scheduler at {address!r} ({reason}); start one with `dask scheduler` "
        f"and its workers with `dask worker ADDRESS`, or run without --scheduler (and without "
        f"${SCHEDULER_ENV})")


_HANDSHAKE_MAX = 1 << 26  # a Dask handshake frame is a few hundred bytes; far more: another protocol


def _probe_tcp(address, timeout):
    """Fail at once on a TCP address where nothing listens (a refused connection, an unknown host)
    or where something else than a Dask scheduler answers, instead of waiting for the client's whole
    connect timeout (or worse: the client reads an HTTP reply as a frame length). A Dask server
    speaks first, at once: the length of its handshake as 8 little-endian bytes; a server that says
    nothing for ``timeout`` seconds, or something else, is not one. Protocols other than tcp are not
    probed (tls: connect only).
    """
    text, scheme = address, "tcp"
    if "://" in text:
        scheme, text = text.split("://", 1)
        if scheme not in ("tcp", "tls"):
            return
    host, sep, port = text.rstrip("/").rpartition(":")
    if not sep:
        raise _unreachable(address, "no port: expected host:port or tcp://host:port")
    host = host.strip("[]")  # an IPv6 literal
    try:
        port = int(port)
    except ValueError:
        raise _unreachable(address, f"port {port!r} is not a number") from None
    try:
        sock = socket.create_connection((host or "localhost", port), timeout=timeout)
    except socket.timeout:
        return  # slow, not refused: the client's own timeout decides
    except OSError as exc:
        raise _unreachable(address, exc.strerror or type(exc).__name__) from None
    with sock:
        if scheme != "tcp":
            return
        head, said = b"", None
        try:
            while len(head) < 8:
                more = sock.recv(8 - len(head))
                if not more:
                    said = "it closed the connection"
                    break
                head += more
        except socket.timeout:
            said = f"it said nothing for {timeout:g} s"
        except OSError as exc:
            said = f"the connection failed: {exc.strerror or type(exc).__name__}"
    if said is None and int.from_bytes(head, "little") <= _HANDSHAKE_MAX:
        return
    said = said or f"it answered {head!r}"
    raise _unreachable(address, f"{said}, unlike a Dask scheduler: is this the scheduler's port "
                                f"(8786 by default; the dashboard is on 8787)?")


@contextmanager
def connect(address, timeout=10):
    """A ``distributed.Client`` on ``address``, closed on exit (the cluster itself keeps running).

    ``address`` may also be a ``distributed.Client`` already connected: it is yielded as it is and
    left open. An unreachable scheduler is one ConfigError naming the address and how to start
    one; a refused connection fails at once, a silent host after ``timeout`` seconds.
    """
    if _is_client(address):
        yield address
        return
    try:
        from distributed import Client
    except ImportError:  # pragma: no cover - a dependency of setup.cfg
        raise ConfigError("--scheduler needs dask.distributed: pip install 'dask[distributed]'") from None
    address = str(address).strip()
    _probe_tcp(address, timeout)
    try:
        client = Client(address, timeout=timeout, set_as_default=False)
    except Exception as exc:  # OSError, TimeoutError, a bad address's ValueError, a garbled reply's ...
        raise _unreachable(address, f"{type(exc).__name__}: {exc}") from None
    try:
        yield client
    finally:
        client.close()


def _probe_worker(path):
    """Worker side of :func:`check_workers_see`: ``(sees the folder, tartarus version)``."""
    from . import __version__
    return os.path.isdir(path), __version__


def check_workers_see(client, path):
    """Fail unless every worker of ``client`` sees the folder ``path`` (the data root) at that path.

    Workers read inputs and write outputs under the data root themselves, so it must be on a
    filesystem they share, mounted at the same path; and they run tartarus' own functions, so each
    needs the same tartarus version installed. A cluster without workers is also an error.
    """
    from . import __version__

    path = os.path.abspath(str(path))
    address = client.scheduler.address
    check_has_workers(client)
    try:
        seen = client.run(_probe_worker, path)
    except Exception as exc:  # the probe itself failed on a worker: most often, no tartarus there
        raise ConfigError(f"the Dask workers of {address} cannot run tartarus ({type(exc).__name__}: {exc}); "
                          f"install tartarus {__version__} where each worker runs") from None
    blind = sorted(worker for worker, (ok, _) in seen.items() if not ok)
    if blind:
        raise ConfigError(f"Dask worker(s) {', '.join(blind)} cannot see the data root {path}; every worker "
                          f"needs it at the same path (a shared filesystem)")
    other = sorted(f"{worker} ({version})" for worker, (_, version) in seen.items() if version != __version__)
    if other:
        raise ConfigError(f"Dask worker(s) {', '.join(other)} run another tartarus version than this client "
                          f"({__version__}); install the same one on every worker")


def check_has_workers(client):
    """Fail unless the cluster of ``client`` has a worker (a scheduler alone runs nothing)."""
    if not client.scheduler_info().get("workers"):
        address = client.scheduler.address
        raise ConfigError(f"the Dask scheduler at {address} has no workers; start some "
                          f"with `dask worker {address}`")


@contextmanager
def on_cluster(scheduler, data_root=None):
    """A client on ``scheduler`` (an address or a connected client) with workers, all of which see
    ``data_root`` (:func:`check_workers_see`; None: work that reads no file there, only a worker is
    needed); None when ``scheduler`` is None (run locally)."""
    if scheduler is None:
        yield None
        return
    with connect(scheduler) as client:
        if data_root is None:
            check_has_workers(client)
        else:
            check_workers_see(client, data_root)
        yield client


def n_worker_threads(client):
    """Tasks the cluster of ``client`` runs at once (the sum of its workers' threads; at least 1)."""
    return max(1, sum(client.nthreads().values()))


def map_unordered(client, fn, chunks, *shared, max_pending=None):
    """Yield ``fn(chunk, *shared)`` for every chunk, in the order they finish on the cluster.

    ``shared`` arguments (e.g. a filterbank, item factors) are sent to the workers once, not with
    every chunk, under keys of their own (never merged with an equal value of another call, whose
    end would release it). Tasks are impure (they write files), so Dask never merges two of them.
    At most ``max_pending`` chunks (default: twice the cluster's threads, at least 4) are on the
    cluster at a time, so the scheduler never holds every chunk's data at once. A task whose
    worker dies is run again on another worker, up to Dask's
    ``distributed.scheduler.allowed-failures``; then it is a :class:`~tartarus.errors.ClusterError`.
    The first task that raises cancels the rest and its exception is raised here, with its own
    type; so does closing the generator early (or an interrupt), so no task is left queued.
    """
    from distributed import as_completed
    from distributed.scheduler import KilledWorker

    if max_pending is None:
        max_pending = max(4, 2 * n_worker_threads(client))
    chunks = iter(chunks)
    head = list(islice(chunks, max_pending))
    if not head:
        return
    shared = [client.scatter([value], broadcast=True, hash=False)[0] for value in shared]  # a list: one future
    submitted = set()  # futures not yet yielded (a finished one is let go, so its result is freed)

    def submit(chunk):
        future = client.submit(fn, chunk, *shared, pure=False)
        submitted.add(future)
        return future

    # the client's own loop: it need not be the default client (connect() does not make it one)
    pending = as_completed([submit(chunk) for chunk in head], loop=client.loop, with_results=True)
    try:
        for future, result in pending:
            submitted.discard(future)
            following = next(chunks, None)
            if following is not None:
                pending.add(submit(following))
            yield result
    except KilledWorker as exc:
        raise ClusterError(f"the Dask cluster lost a task: its workers died running it ({exc}); often they "
                           f"ran out of memory. What finished is kept: run the command again to resume") from None
    finally:
        client.cancel(list(submitted) + shared)
