"""Where a sweep may write: output paths confined, checked and never mistaken for someone else's.

A spec names only a local path under the working directory (a spec may come from someone
else); ``--output`` may name any ``.zarr`` path or fsspec URL, but never an existing
folder or object tokensweep did not write. ``--overwrite`` deletes only a store tokensweep
wrote: its root metadata and its arrays, nothing else.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from engine.errors import UserError
from engine.sweep.location import is_remote, location, remove_tree
from engine.sweep.plan import Plan
from engine.sweep.state import state_dir

OUTPUTS = Path("outputs")


def default_output(plan: Plan) -> Path:
    """The spec's ``output`` (or ``outputs/<name>.zarr``), confined to the working directory
    after resolving symlinks: a spec may come from someone else."""
    if plan.spec.output and "://" in plan.spec.output:
        raise UserError(
            f"output: {plan.spec.output} is a URL; a spec names only a local path under the working directory "
            "(a spec may come from someone else): give --output to write there"
        )
    path = Path(plan.spec.output) if plan.spec.output else OUTPUTS / f"{plan.spec.name}.zarr"
    here = Path.cwd().resolve()
    if not (here / path).resolve().is_relative_to(here):
        raise UserError(
            f"output: {path} resolves to {(here / path).resolve()}, outside the working directory "
            "(through a symlink); give --output to write there"
        )
    return path


def check_output(path: str | Path, probe: bool = False):
    """Resolve and confine an output: a ``.zarr`` directory (or fsspec URL) that is ours or does not exist.

    With ``probe``, a remote output is proven writable first (an object written and removed
    beside it): a missing bucket or missing credentials are one line, before anything runs.
    """
    path = location(path)
    if not str(path).endswith(".zarr"):
        raise UserError(f"--output: {path} must end in .zarr (a Zarr v3 store directory)")
    if is_remote(path):
        try:
            taken = path.exists() and any(True for _ in path.iterdir()) and not state_dir(path).exists()
            if probe and not taken:
                marker = state_dir(path) / f".probe-{os.getpid()}-{time.monotonic_ns()}"
                marker.write_text("tokensweep can write here")
                marker.unlink()
        except Exception as exc:  # the backend's own errors (botocore, gcsfs, ...) are not OSErrors
            raise UserError(f"--output: cannot write to {path} ({type(exc).__name__}: {str(exc)[:200]})") from None
        if taken:
            raise UserError(f"--output: {path} exists and was not written by tokensweep; refusing to touch it")
        return path
    resolved = path.resolve()
    if resolved.exists() and not resolved.is_dir():
        raise UserError(f"--output: {path} exists and is a file, not a store directory")
    if resolved.exists() and any(resolved.iterdir()) and not state_dir(resolved).exists():
        raise UserError(f"--output: {path} exists and was not written by tokensweep; refusing to touch it")
    parent = resolved.parent
    while not parent.exists():
        parent = parent.parent
    if not _writable(parent):
        raise UserError(f"--output: cannot write in {parent} (read-only or no permission)")
    return resolved


def free_space(path) -> int | None:
    """Bytes free where a local output would go (the nearest existing folder); None if remote."""
    path = location(path)
    if is_remote(path):
        return None
    folder = path.resolve()
    while not folder.exists():
        folder = folder.parent
    return shutil.disk_usage(folder).free


def space_note(path, needed: int) -> str:
    """A line when a cube of ``needed`` bytes (before compression) may not fit, else ''."""
    free = free_space(path)
    if free is None or needed <= free:
        return ""
    from engine.units import format_bytes

    return (
        f"the cube takes up to {format_bytes(needed)} before compression and {format_bytes(free)} is free where "
        f"{path} goes; compression usually saves 2-10x, but it may not fit (a full disk stops the run, which resumes)"
    )


def _writable(folder: Path) -> bool:
    """Probe by creating and removing a file: os.access says yes to root on read-only folders."""
    import tempfile

    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".tokensweep-probe-"):
            return True
    except OSError:
        return False


def remove_own_store(path: Path) -> None:
    """Delete a store tokensweep wrote: its root metadata and its arrays, nothing else.

    Anything else inside (another cube, a file someone put there, a symlink) means the
    folder is not only ours: refuse rather than delete it.
    """
    if is_remote(path):  # objects: only the root metadata and folders of arrays may be there
        for child in path.iterdir():
            if child.name == "zarr.json" or (child / "zarr.json").exists():
                continue
            raise UserError(
                f"--overwrite: {path} holds {child.name}, which is not one of its arrays (another cube or a foreign "
                "object?); move it away or choose another --output"
            )
        remove_tree(path)
        return
    for child in path.iterdir():
        if child.name == "zarr.json" and child.is_file() and not child.is_symlink():
            continue
        metadata = child / "zarr.json"
        if child.is_dir() and not child.is_symlink() and metadata.is_file():
            try:
                if json.loads(metadata.read_text()).get("node_type") == "array" and not any(
                    p.is_symlink() or (p.name == "zarr.json" and p.parent != child) for p in child.rglob("*")
                ):
                    continue
            except (ValueError, OSError, AttributeError):
                pass
        raise UserError(
            f"--overwrite: {path} holds {child.name}, which is not one of its arrays (another cube or a foreign "
            "file?); move it away or choose another --output"
        )
    shutil.rmtree(path)


def check_derived_store(output, inputs, mark: str) -> Path:
    """A local ``.zarr`` a command derives from cubes (``diff --output``): not one of its
    inputs nor inside or around one, not a symlink, and either new or a store the same command
    wrote (its root attributes carry ``mark``); anything else is refused in one line."""
    if "://" in str(output):
        raise UserError(f"--output: {output} must be a local .zarr path")
    path = Path(output)
    if not str(path).endswith(".zarr"):
        raise UserError(f"--output: {path} must end in .zarr")
    if path.is_symlink():
        raise UserError(f"--output: {path} is a symlink; give the store's own path")
    resolved = path.resolve()
    for given in inputs:
        if "://" in str(given):
            continue
        other = Path(given).resolve()
        if resolved == other or resolved.is_relative_to(other) or other.is_relative_to(resolved):
            raise UserError(f"--output: {path} is (or holds, or is inside) the input cube {given}; write elsewhere")
    for folder in resolved.parents:
        if (folder / "zarr.json").is_file() or folder.suffix == ".zarr":
            raise UserError(f"--output: {path} is inside the Zarr store {folder}; write the output outside it")
    if resolved.exists():
        metadata = resolved / "zarr.json"
        try:
            marked = resolved.is_dir() and json.loads(metadata.read_text()).get("attributes", {}).get(mark) == 1
        except (OSError, ValueError, AttributeError):
            marked = False
        if not marked:
            raise UserError(f"--output: {path} exists and was not written by this command; refusing to replace it")
    elif not resolved.parent.is_dir():
        raise UserError(f"--output: folder {resolved.parent} does not exist")
    return resolved


@contextmanager
def replace_derived_store(output, mark: str) -> Iterator[str]:
    """A temporary store beside ``output``, put in its place only once written whole: a
    command killed mid-write leaves the old store (or none), never half of one."""
    target = Path(output).resolve()
    temporary = target.with_name(f".{target.name}.tmp{os.getpid()}.zarr")
    try:
        yield str(temporary)
        if target.exists():
            check_derived_store(target, (), mark)
            shutil.rmtree(target)
        os.replace(temporary, target)
    finally:
        if temporary.exists():
            shutil.rmtree(temporary, ignore_errors=True)
