"""The catalog: models, hardware and workload mixes loaded from YAML into validated records.

The engine ships its own catalog files (``engine/data/*.yaml``, with the sources of every
figure); users add theirs with ``--catalog PATH`` (same schema). Every entry is checked on
load; a bad one fails with one line naming the file, the entry, the field and what is
allowed.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path

from pydantic import BaseModel, ValidationError

from engine.errors import UserError, describe_validation_error, did_you_mean
from engine.model.assumptions import parse_assumptions
from engine.model.records import Hardware, Model, Profile, Workload
from engine.yamlio import read_yaml

_SECTIONS = {"models": Model, "hardware": Hardware, "workloads": Workload, "profiles": Profile}
#: The profile `tokensweep point` and sweeps start from unless told otherwise.
DEFAULT_PROFILE = "calibrated"


@dataclass(frozen=True)
class Catalog:
    """All known models, hardware and workloads, plus a fingerprint of their content."""

    models: dict[str, Model]
    hardware: dict[str, Hardware]
    workloads: dict[str, Workload]
    profiles: dict[str, Profile] = field(default_factory=dict)
    files: tuple[str, ...] = field(default=())

    def __repr__(self) -> str:
        return (f"<Catalog {self.fingerprint}: {len(self.models)} models, {len(self.hardware)} hardware, "
                f"{len(self.workloads)} workloads, {len(self.profiles)} profiles>")  # fmt: skip

    @property
    def fingerprint(self) -> str:
        payload = {
            section: {name: rec.model_dump(mode="json") for name, rec in sorted(getattr(self, section).items())}
            for section in _SECTIONS
        }
        blob = json.dumps(payload, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def _entry(self, section: str, name: str, kind: str):
        entries = getattr(self, section)
        try:
            return entries[name]
        except KeyError:
            raise UserError(f"{kind}: unknown {kind} '{name}' ({did_you_mean(name, entries)})") from None

    def model(self, name: str) -> Model:
        return self._entry("models", name, "model")

    def get_hardware(self, name: str) -> Hardware:
        """The hardware record of that name (``catalog.hardware`` is the mapping of them all)."""
        return self._entry("hardware", name, "hardware")

    def profile(self, name: str) -> Profile:
        return self._entry("profiles", name, "profile")

    def assumptions(self, profile: str, values: dict, prefix: str):
        """The serving profile's values, then ``values`` over them (human units, one-line errors
        under ``prefix``)."""
        assumptions = parse_assumptions({**self.profile(profile).parameters, **values}, prefix)
        self.check_pool_unit(assumptions.prefill_hardware, f"{prefix}prefill_hardware")
        return assumptions

    def check_pool_unit(self, name: str, field: str) -> None:
        """A one-line UserError where this catalog redefines the prefill pool's unit: a pool runs
        on the shipped record (:func:`pool_unit`), so a redefined one would be read two ways."""
        if name != "same" and name in self.hardware and self.get_hardware(name) != pool_unit(name):
            raise UserError(
                f"{field}: '{name}' is redefined by a catalog file, but a prefill pool runs on the shipped "
                f"'{name}' (allowed: same, or a unit the catalog files leave as shipped)"
            )

    def workload(self, name: str) -> Workload:
        return self._entry("workloads", name, "workload")


def _describe(err: ValidationError, record: type[BaseModel]) -> str:
    allowed = [f for f in record.model_fields if f != "name"]
    return describe_validation_error(err, allowed=allowed, field="field '{loc}'")


def _read_yaml(path: Path, label: str) -> dict:
    data = read_yaml(path, f"catalog {label}")
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"catalog {label}: top level must be a mapping with keys {', '.join(_SECTIONS)}")
    return data


def _parse_entries(data: dict, label: str, known: dict[str, dict]) -> dict[str, dict[str, object]]:
    """Validate the raw entries of one file; ``known`` holds earlier raw entries for ``inherits``."""
    parsed: dict[str, dict[str, object]] = {s: {} for s in _SECTIONS}
    for section, entries in data.items():
        if section not in _SECTIONS:
            raise UserError(f"catalog {label}: unknown section '{section}' ({did_you_mean(section, _SECTIONS)})")
        if entries is None:
            continue
        if not isinstance(entries, dict):
            raise UserError(f"catalog {label}: section '{section}' must map names to entries")
        kind = section.rstrip("s") if section != "hardware" else "hardware"
        for name, raw in entries.items():
            if not isinstance(raw, dict):
                raise UserError(f"catalog {label}: {kind} '{name}': entry must be a mapping of fields")
            if not re.fullmatch(NAME_RULE, str(name)):
                from engine.escape import terminal

                raise UserError(
                    f"catalog {label}: {kind} name '{terminal(str(name))[:120]}' must be 1-100 letters, digits, "
                    "'_', '-' or '.', starting with a letter or digit (the rule of a spec's name)"
                )
            raw = dict(raw)
            parent = raw.pop("inherits", None)
            if parent is not None:
                base = known[section].get(parent)
                if base is None:
                    raise UserError(
                        f"catalog {label}: {kind} '{name}': field 'inherits': "
                        f"unknown entry '{parent}' ({did_you_mean(str(parent), known[section])})"
                    )
                raw = {**base, **raw}
                if section == "models" and "attention" in raw and raw["attention"] != base.get("attention"):
                    raw.pop("kv_groups", None)
            known[section][name] = raw
            try:
                parsed[section][name] = _SECTIONS[section](name=str(name), **raw)
            except ValidationError as err:
                raise UserError(f"catalog {label}: {kind} '{name}': {_describe(err, _SECTIONS[section])}") from None
            except TypeError as err:
                raise UserError(f"catalog {label}: {kind} '{name}': {err}") from None
    return parsed


#: What a catalog entry (and a spec's name) may be called: safe in a path, a terminal, a cell.
NAME_RULE = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}"


def _builtin_files() -> list[tuple[str, Path]]:
    root = resources.files("engine") / "data"
    names = ("models.yaml", "hardware.yaml", "workloads.yaml", "profiles.yaml", "calibrated.yaml")
    return [(f"engine/data/{n}", Path(str(root / n))) for n in names]


def load_catalog(extra: tuple[str | Path, ...] | list[str | Path] = ()) -> Catalog:
    """Load the built-in catalog plus any user files (later entries override earlier ones).

    >>> cat = load_catalog()
    >>> cat.model("qwen3-32b").kv_groups[0].elements
    2048.0
    """
    return _load(tuple(str(p) for p in extra))


@lru_cache(maxsize=8)
def _load(extra: tuple[str, ...]) -> Catalog:
    known: dict[str, dict] = {s: {} for s in _SECTIONS}
    merged: dict[str, dict] = {s: {} for s in _SECTIONS}
    files = _builtin_files() + [(p, Path(p)) for p in extra]
    for label, path in files:
        parsed = _parse_entries(_read_yaml(path, label), label, known)
        for section in _SECTIONS:
            merged[section].update(parsed[section])
    return Catalog(files=tuple(label for label, _ in files), **merged)


def pool_unit(name: str) -> Hardware:
    """The unit a disaggregated prefill pool of ``prefill_hardware: name`` runs on: the shipped
    catalog's entry, whichever units a sweep or block holds (a user catalog that redefines it is
    refused by :meth:`Catalog.check_pool_unit`, so no record of that name disagrees with it)."""
    return load_catalog().get_hardware(name)
