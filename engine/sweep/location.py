"""Where a cube lives: a local folder, or any fsspec URL (``s3://``, ``gs://``, ``memory://`` ...).

A location is a :class:`pathlib.Path` for local stores and a :class:`upath.UPath` (the
pathlib API over fsspec) for remote ones, so the store's state (run record, block records,
token) is read and written with the same code on both. What differs is said here:

- **Atomic writes**: locally a temporary file renamed over the target; an object store's
  PUT is already all-or-nothing, so the object is written directly.
- **One writer**: locally an ``flock`` (released by the kernel when a run dies). Object
  stores have no locks: a *lease object* ``lock`` beside the cube names its holder and is
  renewed every :data:`LEASE_RENEW_S`; a lease older than :data:`LEASE_S` (its holder died
  without a word) or held by a dead process on this host is taken over. Two runs racing for
  a free lease both write it and read it back after :data:`LEASE_SETTLE_S`; the one not
  named steps back. The run token (:mod:`engine.sweep.integrity`) fences whatever slips
  through: a block is written only while the store's token is its run's.
- **Credentials and endpoints** come from fsspec's own configuration (for S3: the usual
  ``AWS_*`` variables, ``AWS_ENDPOINT_URL`` for S3-compatible servers, or
  ``FSSPEC_S3_*`` / an fsspec config file); tokensweep adds none of its own.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import threading
import time
import uuid
from contextlib import contextmanager, suppress
from pathlib import Path

from engine.errors import UserError

#: Seconds after which a lease nobody renewed is taken over.
LEASE_S = 60.0
LEASE_RENEW_S = 15.0
LEASE_SETTLE_S = 1.0

_LOCAL = ("file", "local")


def location(text, field: str = "--output"):
    """``text`` as a local Path or a remote UPath; an unknown or uninstalled scheme is one line."""
    if not isinstance(text, str):
        return text
    scheme, sep, rest = text.partition("://")
    if not sep:
        return Path(text).expanduser()
    if scheme in _LOCAL:
        return Path(rest)
    if "@" in rest.split("/", 1)[0]:  # user:password@host: would be recorded in attrs and shown
        from engine.escape import redact

        raise UserError(
            f"{field}: {redact(text)} carries credentials in the URL; give them to the storage backend instead "
            "(environment variables or its config file), so no cube, page or log records them"
        )
    if "?" in rest or "#" in rest:  # a store is many files: one URL's query (a signature) cannot open them
        from engine.escape import redact

        raise UserError(
            f"{field}: {redact(text)} has a query string or fragment; a Zarr store is many files, so a presigned "
            "or SAS URL cannot open it: give the credentials to the storage backend instead"
        )
    from fsspec.registry import known_implementations, registry

    if scheme not in known_implementations and scheme not in registry:
        raise UserError(
            f"{field}: {scheme}:// is not a storage scheme fsspec knows "
            "(use a local path, s3://, gs://, az://, memory:// or another fsspec protocol)"
        )
    import fsspec

    try:
        fsspec.get_filesystem_class(scheme)
    except ImportError as exc:
        raise UserError(f"{field}: {scheme}:// needs a package that is not installed ({exc})") from None
    from urllib.parse import urlsplit

    from upath import UPath

    try:
        urlsplit(text).port  # noqa: B018 (parses the authority: an unclosed IPv6 bracket, a bad port)
        return UPath(text)
    except ValueError as exc:
        from engine.escape import redact

        raise UserError(f"{field}: {redact(text)} is not a valid URL ({exc})") from None


def is_remote(path) -> bool:
    return not isinstance(path, Path)


def url(path) -> str:
    """What Zarr and xarray open: the local path, or the fsspec URL."""
    return str(path)


def beside(cube, suffix: str) -> Path:
    """A local file named after a cube: next to it, or in ``outputs/`` for a remote cube."""
    cube = location(str(cube)) if isinstance(cube, str) else cube
    if is_remote(cube):
        folder = Path("outputs")
        folder.mkdir(exist_ok=True)
        return folder / f"{cube.stem}{suffix}"
    return cube.with_name(f"{cube.stem}{suffix}")


def put_text(path, text: str) -> None:
    """Write a small text object all-or-nothing."""
    if is_remote(path):
        path.write_text(text)
        return
    temporary = path.with_name(f".{path.name}.tmp{os.getpid()}.{threading.get_ident()}")
    temporary.write_text(text)
    os.replace(temporary, path)


def remove_tree(path) -> None:
    if is_remote(path):
        if path.exists():
            path.fs.rm(path.path, recursive=True)
        return
    shutil.rmtree(path, ignore_errors=True)


def stored_bytes(path) -> int:
    if is_remote(path):
        return int(path.fs.du(path.path)) if path.exists() else 0
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


# ---------------------------------------------------------------------- the lease on object stores
def _holder_gone(held: dict) -> bool:
    if time.time() - float(held.get("renewed", 0)) > LEASE_S:
        return True
    if held.get("host") == socket.gethostname() and isinstance(held.get("pid"), int):
        try:
            os.kill(held["pid"], 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
    return False


@contextmanager
def lease(state):
    """Hold the lease object ``state/lock`` for the block (see the module's text)."""
    lock = state / "lock"
    me = {"owner": uuid.uuid4().hex, "host": socket.gethostname(), "pid": os.getpid()}

    def held() -> dict | None:
        try:
            value = json.loads(lock.read_text())
            return value if isinstance(value, dict) else {}
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return {}

    def refuse(holder: dict) -> UserError:
        who = f"pid {holder.get('pid')} on {holder.get('host')}" if holder else "another run"
        return UserError(
            f"store: {state.with_name(state.name.removesuffix('.tokensweep'))} is being written by {who} "
            f"(lease {lock}); wait for it, or up to {LEASE_S:.0f} s if that run died"
        )

    current = held()
    if current is not None and current and not _holder_gone(current):
        raise refuse(current)
    lock.write_text(json.dumps({**me, "renewed": time.time()}))
    time.sleep(LEASE_SETTLE_S)
    current = held()
    if not current or current.get("owner") != me["owner"]:
        raise refuse(current or {})
    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(LEASE_RENEW_S):
            with suppress(OSError):  # the next renewal tries again; the run token still fences writes
                lock.write_text(json.dumps({**me, "renewed": time.time()}))

    renewer = threading.Thread(target=renew, name="tokensweep-lease", daemon=True)
    renewer.start()
    try:
        yield
    finally:
        stop.set()
        renewer.join()
        if (held() or {}).get("owner") == me["owner"]:
            lock.unlink(missing_ok=True)
