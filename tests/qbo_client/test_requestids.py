"""Deterministic requestids: same write, same id; within Intuit's length limits."""

from __future__ import annotations

import pytest

from qbsync.qbo.requestids import (
    batch_item_id,
    batch_request_id,
    check_request_id,
    content_hash,
    derive,
    request_id,
)


def test_same_parts_same_id_and_different_parts_different_id() -> None:
    a = request_id("tenant-1", "9130", "Customer", "src-1", content_hash({"DisplayName": "A", "Notes": "n"}))
    b = request_id("tenant-1", "9130", "Customer", "src-1", content_hash({"Notes": "n", "DisplayName": "A"}))
    assert a == b  # key order does not change the content hash
    assert a != request_id("tenant-1", "9130", "Customer", "src-1", content_hash({"DisplayName": "B"}))
    assert request_id("ab", "c") != request_id("a", "bc")  # parts are length-prefixed
    assert request_id("x") == "akhq35nylfx3zuims4qlpjdyj6hh4bhwfg6vuyv7xxytsz4lmy"  # stable across releases


def test_lengths_and_alphabet() -> None:
    assert len(request_id("x")) == 50
    assert len(batch_request_id("tenant", "realm", 1)) == 36
    assert len(batch_item_id("line", 7)) == 10
    assert len(request_id("x", length=20)) == 20
    for value in (request_id("x"), batch_request_id("y"), batch_item_id("z")):
        assert set(value) <= set("abcdefghijklmnopqrstuvwxyz234567")
        check_request_id(value, batch=len(value) <= 36)
    with pytest.raises(ValueError):
        request_id("x", length=51)
    with pytest.raises(ValueError):
        request_id()


def test_derive_is_deterministic_and_keeps_the_length() -> None:
    parent = request_id("write")
    assert derive(parent, "stale", "4") == derive(parent, "stale", "4") != derive(parent, "stale", "5")
    assert len(derive(parent, "stale", "4")) == 50
    assert len(derive(batch_request_id("b"), "again")) == 36


def test_check_request_id() -> None:
    assert check_request_id("a" * 50) == "a" * 50
    assert check_request_id("550e8400-e29b-41d4-a716-446655440000", batch=True)
    for bad, batch in (("a" * 51, False), ("a" * 37, True), ("", False), ("has space", False), ("é", False)):
        with pytest.raises(ValueError):
            check_request_id(bad, batch=batch)
