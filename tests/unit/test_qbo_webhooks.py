"""POST /qbo/webhooks: Intuit's signature vectors, both payload formats, dedupe, and forged or replayed
notifications that change nothing."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from qbsync.api.services import Services, use_services
from qbsync.errors import BadRequest
from qbsync.qbo.webhooks import parse_notification, signature_of, verify_signature
from qbsync.queue import MemoryTransferQueue
from qbsync.settings import Settings
from qbsync.store.memory import MemoryStore
from qbsync.transfers import PoisonMessage
from tests.conftest import Api
from tests.support import REFERENCE
from tests.unit.test_api_records import connect_qbo

WEBHOOKS = REFERENCE / "qbo" / "webhooks"
TOKEN = "local-verifier-token"


def vectors() -> list[dict[str, Any]]:
    path = WEBHOOKS / "signature_test_vectors.json"
    if not path.exists():
        pytest.skip(f"reference vectors not found at {path}")
    return list(json.loads(path.read_text())["vectors"])


def samples() -> dict[str, Any]:
    path = WEBHOOKS / "payload_samples_legacy_and_cloudevents.json"
    if not path.exists():
        pytest.skip(f"reference payloads not found at {path}")
    return dict(json.loads(path.read_text()))


def test_intuit_signature_vectors() -> None:
    found = vectors()
    assert len(found) >= 3
    for vector in found:
        raw = vector["raw_body"].encode("utf-8")
        assert verify_signature(raw, vector["intuit_signature"], vector["verifier_token"]) is vector["expect_valid"]
        if vector["expect_valid"]:
            assert signature_of(raw, vector["verifier_token"]) == vector["intuit_signature"]
            assert not verify_signature(raw + b" ", vector["intuit_signature"], vector["verifier_token"])
            assert not verify_signature(raw, vector["intuit_signature"], vector["verifier_token"] + "x")
    assert not verify_signature(b"{}", None, "token") and not verify_signature(b"{}", "", "token")
    assert not verify_signature(b"{}", signature_of(b"{}", "token"), "")


def test_both_payload_formats_parse_to_the_same_changes() -> None:
    legacy = parse_notification(json.dumps(samples()["legacy_eventNotifications"]["payload"]).encode())
    cloud = parse_notification(json.dumps(samples()["cloudevents_v1"]["payload"]).encode())
    expected = [("310687", "Account", "1234", "Create")]
    assert [(c.realm_id, c.entity, c.entity_id, c.operation) for c in legacy] == expected
    assert [(c.realm_id, c.entity, c.entity_id, c.operation) for c in cloud] == expected
    assert cloud[0].event_id == "ce:88cd52aa-33b6-4351-9aa4-47572edbd068"
    assert legacy[0].event_id.startswith("legacy:") and legacy[0].event_id != cloud[0].event_id
    voided = parse_notification(
        json.dumps([{**samples()["cloudevents_v1"]["payload"][0], "type": "qbo.invoice.voided.v1"}]).encode()
    )
    assert (voided[0].entity, voided[0].operation) == ("Invoice", "Void")
    for bad in (b"nope", b"{}", b'{"eventNotifications": [{"realmId": "1"}]}', b'[{"id": "x"}]', b"[1]"):
        with pytest.raises(BadRequest):
            parse_notification(bad)


@pytest.fixture
def webhook_env(memory_store: MemoryStore) -> tuple[MemoryStore, MemoryTransferQueue]:
    queue = MemoryTransferQueue()
    settings = Settings(stage="test", admin_key="admin", qbo_webhook_verifier_token=TOKEN)
    use_services(Services.build(settings, memory_store, queue=queue))
    connect_qbo(memory_store, "t_one", "9130")
    return memory_store, queue


def legacy(realm: str, *entities: tuple[str, str, str]) -> bytes:
    body = {
        "eventNotifications": [
            {
                "realmId": realm,
                "dataChangeEvent": {
                    "entities": [
                        {"name": n, "id": i, "operation": op, "lastUpdated": "2026-11-21T08:00:00.000Z"}
                        for n, i, op in entities
                    ]
                },
            }
        ]
    }
    return json.dumps(body).encode()


def cloud(realm: str, event_id: str, entity_type: str, entity_id: str) -> bytes:
    return json.dumps(
        [
            {
                "specversion": "1.0",
                "id": event_id,
                "source": "intuit.x",
                "type": entity_type,
                "datacontenttype": "application/json",
                "time": "2026-11-21T08:00:00Z",
                "intuitentityid": entity_id,
                "intuitaccountid": realm,
                "data": {},
            }
        ]
    ).encode()


def post(api: Api, raw: bytes, signature: str | None) -> Any:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["intuit-signature"] = signature
    return api.request("POST", "/qbo/webhooks", body=raw, headers=headers)


def test_a_signed_notification_queues_one_targeted_reconcile(
    api: Api, webhook_env: tuple[MemoryStore, MemoryTransferQueue]
) -> None:
    _, queue = webhook_env
    raw = legacy("9130", ("Invoice", "17", "Update"), ("Payment", "4", "Create"), ("Customer", "2", "Update"))
    answer = post(api, raw, signature_of(raw, TOKEN))
    assert answer.status_code == 200, answer.body
    assert json.loads(answer.body) == {"received": 3, "duplicates": 0, "queued": 1}
    [(message, group, _)] = queue.sent
    assert message.kind == "reconcile.qbo" and message.tenant_id == "t_one" and group == "t_one:qbo:9130"
    assert message.payload == {
        "realm_id": "9130",
        "entities": [
            {"name": "Invoice", "id": "17", "operation": "Update"},
            {"name": "Payment", "id": "4", "operation": "Create"},
        ],
    }

    replayed = post(api, raw, signature_of(raw, TOKEN))  # Intuit retries, or someone replays a captured request
    assert replayed.status_code == 200
    assert json.loads(replayed.body) == {"received": 3, "duplicates": 2, "queued": 0}
    assert len(queue.sent) == 1

    event = cloud("9130", "ce-1", "qbo.invoice.deleted.v1", "17")
    assert json.loads(post(api, event, signature_of(event, TOKEN)).body)["queued"] == 1
    assert json.loads(post(api, event, signature_of(event, TOKEN)).body)["duplicates"] == 1
    assert queue.sent[-1][0].payload["entities"] == [{"name": "Invoice", "id": "17", "operation": "Delete"}]
    assert len(queue.sent) == 2

    unknown_realm = legacy("5555", ("Invoice", "1", "Update"))
    answer = post(api, unknown_realm, signature_of(unknown_realm, TOKEN))
    assert answer.status_code == 200 and json.loads(answer.body)["queued"] == 0  # nobody connected to it


def test_forged_notifications_change_nothing(api: Api, webhook_env: tuple[MemoryStore, MemoryTransferQueue]) -> None:
    store, queue = webhook_env
    raw = legacy("9130", ("Invoice", "17", "Update"))
    for signature in (None, "", "1234", signature_of(raw, "wrong-token"), signature_of(raw + b" ", TOKEN)):
        answer = post(api, raw, signature)
        assert answer.status_code == 401 and json.loads(answer.body)["code"] == "unauthorized"
    assert queue.sent == [] and store._tables.webhook_events == {}
    # A forged signature over a body never claims its event id: the genuine notification still counts.
    assert post(api, raw, signature_of(raw, TOKEN)).status_code == 200 and len(queue.sent) == 1

    garbage = b"not json"
    answer = post(api, garbage, signature_of(garbage, TOKEN))
    assert answer.status_code == 400 and len(queue.sent) == 1


def test_without_a_verifier_token_every_notification_is_refused(api: Api, memory_store: MemoryStore) -> None:
    queue = MemoryTransferQueue()
    use_services(Services.build(Settings(stage="test", admin_key="admin"), memory_store, queue=queue))
    raw = legacy("9130", ("Invoice", "17", "Update"))
    answer = post(api, raw, signature_of(raw, ""))
    assert answer.status_code == 503 and json.loads(answer.body)["code"] == "not_configured"
    assert queue.sent == []


def test_a_failed_enqueue_releases_the_event_ids_so_intuits_retry_counts(
    api: Api, webhook_env: tuple[MemoryStore, MemoryTransferQueue], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, queue = webhook_env
    raw = legacy("9130", ("Invoice", "17", "Update"))

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("SQS is down")

    monkeypatch.setattr(queue, "send", refuse)
    assert post(api, raw, signature_of(raw, TOKEN)).status_code == 500
    monkeypatch.undo()
    answer = post(api, raw, signature_of(raw, TOKEN))
    assert answer.status_code == 200 and json.loads(answer.body)["queued"] == 1


def test_the_queued_reconcile_skips_inactive_tenants_and_waits_for_a_reconnect(memory_store: MemoryStore) -> None:
    from qbsync.tenancy import TenantService
    from qbsync.transfers import MessageMeta, TransferMessage, get_dispatcher, use_dispatcher

    use_services(Services.build(Settings(stage="test", admin_key="admin"), memory_store, queue=MemoryTransferQueue()))
    use_dispatcher(None)
    tenant = TenantService(memory_store.tenants).create("Webhooked").tenant
    message = TransferMessage(
        tenant_id=tenant.tenant_id,
        transfer_id="wh-1",
        kind="reconcile.qbo",
        target="qbo",
        payload={"realm_id": "9130", "entities": [{"name": "Invoice", "id": "1", "operation": "Update"}]},
    )
    meta = MessageMeta("m", "g", 1)
    assert get_dispatcher().dispatch(message.model_dump_json(), meta) == {"skipped": "reconnect"}  # not connected
    memory_store.tenants.update(replace(tenant, status="inactive"))
    assert get_dispatcher().dispatch(message.model_dump_json(), meta) == {"skipped": "tenant inactive"}
    bad = message.model_copy(update={"payload": {"entities": "nope"}})
    with pytest.raises(PoisonMessage):
        get_dispatcher().dispatch(bad.model_dump_json(), meta)
    use_dispatcher(None)
