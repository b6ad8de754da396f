"""Mappings (M1-M5) on both adapters: one item per kind, replaced whole, isolated per tenant."""

from __future__ import annotations

from qbsync.store.ports import MappingSet, Store


def test_a_kind_round_trips_and_is_replaced_whole(store: Store) -> None:
    assert store.mappings.get("t1", "billing_codes") is None
    assert store.mappings.get_all("t1") == {}
    first = MappingSet("billing_codes", {"CONS": {"name": "Consulting Income"}, "HW": {"name": "Sales:Hardware"}}, "a")
    store.mappings.put("t1", first)
    assert store.mappings.get("t1", "billing_codes") == first
    replaced = MappingSet("billing_codes", {"HW": {"name": "Hardware"}}, "b")
    store.mappings.put("t1", replaced)
    assert store.mappings.get("t1", "billing_codes") == replaced  # CONS is gone: a put replaces the kind


def test_get_all_reads_every_kind_of_one_tenant_only(store: Store) -> None:
    resources = MappingSet("resources", {"R-1": {"name": "Ann Lee", "type": "employee"}}, "x")
    classes = MappingSet("lines_of_business", {"MSP": {"name": "Managed Services"}}, "y")
    store.mappings.put("t1", resources)
    store.mappings.put("t1", classes)
    store.mappings.put("t2", MappingSet("resources", {"R-9": {"name": "Other Co", "type": "vendor"}}, "z"))
    store.reconcile.put("t1", "qbo:1", {"since": "s"})  # another item in the same partition is not a mapping
    assert store.mappings.get_all("t1") == {"lines_of_business": classes, "resources": resources}
    assert list(store.mappings.get_all("t2")) == ["resources"]
