"""Mappings (FEATURES M1-M5): how the source's codes name things in QuickBooks.

| kind                 | source key        | QuickBooks target        | used by                          |
|----------------------|-------------------|--------------------------|----------------------------------|
| `billing_codes`      | billing code (M1) | income account           | summarized journal entries       |
| `expense_categories` | category (M2)     | expense account          | expense reports                  |
| `lines_of_business`  | line of business  | class (M3)               | invoices, journal entries, time  |
| `resources`          | resource id (M4)  | employee or vendor       | timesheets, expense reports, POs |
| `payroll_categories` | category (M5)     | payroll item (wage)      | timesheets                       |

A kind is stored and replaced as a whole (``PUT /v1/mappings/{kind}``). Targets are QuickBooks *names* (Desktop
FullName, QBO Name): QuickBooks is the master of its lists, so a name that QuickBooks does not know (never imported,
renamed, deleted) is found when a transfer uses it and reported there as a configuration issue
(:class:`MissingMapping` before sending; QuickBooks' "invalid reference" after), never as a crash or a lost record.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Literal, get_args

from pydantic import AfterValidator, Field, StringConstraints, model_validator

from qbsync.clock import Clock, SystemClock, iso
from qbsync.errors import FieldError, NotFound, ValidationFailed
from qbsync.models import QbName, StrictModel, no_control_chars, validate_model
from qbsync.store.ports import MappingSet, Store, Tenant
from qbsync.sync.mapping import MappingConfigurationError

MappingKind = Literal["billing_codes", "expense_categories", "lines_of_business", "resources", "payroll_categories"]
MAPPING_KINDS: tuple[MappingKind, ...] = get_args(MappingKind)
#: What each kind's targets are, in words (problem messages, OpenAPI, the console).
TARGET_OF: dict[MappingKind, str] = {
    "billing_codes": "income account",
    "expense_categories": "expense account",
    "lines_of_business": "class",
    "resources": "employee or vendor",
    "payroll_categories": "payroll item",
}
#: QuickBooks Desktop name limits (the tighter of the two products): employee/vendor names 41, payroll items 31,
#: account and class full names 159 (``Parent:Child`` paths).
NAME_LIMIT: dict[MappingKind, int] = {
    "billing_codes": 159,
    "expense_categories": 159,
    "lines_of_business": 159,
    "resources": 41,
    "payroll_categories": 31,
}
MAX_ENTRIES = 500  # one DynamoDB item per kind (400 KB); 500 entries of the longest names stay well under it

SourceKey = Annotated[str, StringConstraints(min_length=1, max_length=100), AfterValidator(no_control_chars)]


class MappingTarget(StrictModel):
    """The QuickBooks record a source key maps to: its name, and for ``resources`` whether it is an employee or a
    vendor (QuickBooks keeps them in separate lists)."""

    name: QbName
    type: Literal["employee", "vendor"] | None = Field(None, description="Only for resources (M4).")


class MappingPut(StrictModel):
    """A kind's whole mapping set: source key → QuickBooks target (replaces what was there)."""

    entries: dict[SourceKey, MappingTarget] = Field(max_length=MAX_ENTRIES)

    @model_validator(mode="after")
    def _unique_keys(self) -> MappingPut:
        folded: dict[str, str] = {}
        for key in self.entries:
            other = folded.setdefault(key.casefold(), key)
            if other != key:
                raise ValueError(f"source keys {other!r} and {key!r} differ only in case")
        return self


class MappingSetView(StrictModel):
    kind: MappingKind
    target: str = Field(description="What the entries point at in QuickBooks.")
    entries: dict[str, MappingTarget]
    updated_at: str | None = Field(None, description="None until the kind is first set.")


class MappingList(StrictModel):
    items: list[MappingSetView]


class MissingMapping(MappingConfigurationError):
    """A record uses a source key that has no mapping: fixed in the mappings, then the record is re-synced."""

    code, title = "mapping_missing", "Mapping missing"

    def __init__(self, kind: MappingKind, key: str, *, field: str) -> None:
        super().__init__(
            field,
            f"{key!r} has no {kind} mapping: map it to a QuickBooks {TARGET_OF[kind]} "
            f"(PUT /v1/mappings/{kind}), then re-sync",
        )
        self.kind = kind
        self.key = key
        self.extra.update({"mapping_kind": kind, "mapping_key": key})


def mapping_kind(kind: str) -> MappingKind:
    if kind not in MAPPING_KINDS:
        raise NotFound(f"Unknown mapping kind {kind!r}; kinds: {', '.join(MAPPING_KINDS)}")
    return kind  # type: ignore[return-value]  # checked just above


class Mappings:
    """One tenant's mappings, loaded with one read for the length of a use case."""

    def __init__(self, sets: Mapping[str, Mapping[str, MappingTarget]]) -> None:
        self._sets = {kind: dict(entries) for kind, entries in sets.items()}

    @classmethod
    def load(cls, store: Store, tenant_id: str) -> Mappings:
        return cls({kind: _targets(found) for kind, found in store.mappings.get_all(tenant_id).items()})

    def get(self, kind: MappingKind, key: str) -> MappingTarget | None:
        return self._sets.get(kind, {}).get(key)

    def target(self, kind: MappingKind, key: str, *, field: str) -> MappingTarget:
        """The target of ``key``, or :class:`MissingMapping` naming the record's ``field``."""
        found = self.get(kind, key)
        if found is None:
            raise MissingMapping(kind, key, field=field)
        return found


class MappingService:
    def __init__(self, store: Store, clock: Clock | None = None) -> None:
        self.store = store
        self.clock = clock or SystemClock()

    def list(self, tenant: Tenant) -> MappingList:
        found = self.store.mappings.get_all(tenant.tenant_id)
        return MappingList(items=[_view(kind, found.get(kind)) for kind in MAPPING_KINDS])

    def get(self, tenant: Tenant, kind: str) -> MappingSetView:
        checked = mapping_kind(kind)
        return _view(checked, self.store.mappings.get(tenant.tenant_id, checked))

    def put(self, tenant: Tenant, kind: str, request: MappingPut) -> MappingSetView:
        checked = mapping_kind(kind)
        _check_targets(checked, request.entries)
        mapping_set = MappingSet(
            kind=checked,
            entries={key: target.model_dump(exclude_none=True) for key, target in sorted(request.entries.items())},
            updated_at=iso(self.clock.now()),
        )
        self.store.mappings.put(tenant.tenant_id, mapping_set)
        return _view(checked, mapping_set)


def _check_targets(kind: MappingKind, entries: Mapping[str, MappingTarget]) -> None:
    """What the body model cannot know: the rules that depend on the kind. Every bad entry is named at once."""
    limit = NAME_LIMIT[kind]
    problems: list[FieldError] = []
    for key, target in entries.items():
        if kind == "resources" and target.type is None:
            problems.append(FieldError(f"entries.{key}.type", "a resource maps to an 'employee' or a 'vendor'"))
        if kind != "resources" and target.type is not None:
            problems.append(FieldError(f"entries.{key}.type", "only resources have a type"))
        if len(target.name) > limit:
            message = f"a QuickBooks {TARGET_OF[kind]} name has at most {limit} characters"
            problems.append(FieldError(f"entries.{key}.name", message))
    if problems:
        raise ValidationFailed(problems)


def _targets(mapping_set: MappingSet) -> dict[str, MappingTarget]:
    return {key: validate_model(MappingTarget, raw) for key, raw in mapping_set.entries.items()}


def _view(kind: MappingKind, mapping_set: MappingSet | None) -> MappingSetView:
    return MappingSetView(
        kind=kind,
        target=TARGET_OF[kind],
        entries={} if mapping_set is None else _targets(mapping_set),
        updated_at=None if mapping_set is None else mapping_set.updated_at,
    )
