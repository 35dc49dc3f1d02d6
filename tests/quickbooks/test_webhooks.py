"""Webhook signatures and payload parsing, against Intuit's own test vector and sample bodies."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from connectors.quickbooks.webhooks import Notification, parse_webhook, sign, verify_signature

# Intuit's .NET SDK test vector (WebhooksServiceTest.cs + AppSettings.json), copied from
# qbo-sample-payloads.json "webhook_legacy_notification": the exact bytes, token and signature.
VECTOR_TOKEN = "00faeec4-08d0-4996-bb37-698ae19f0149"
VECTOR_SIGNATURE = "6q+xGyMirJupwKTh2/WBl2NcdxzxqdIbk3sneKTxLWM="
VECTOR_BODY = (
    b'{"eventNotifications":[{"realmId":"1269959970","dataChangeEvent":{"entities":['
    b'{"name":"Vendor","id":"40","operation":"Update","lastUpdated":"2016-10-05T03:09:04.000Z"},'
    b'{"name":"Customer","id":"43","operation":"Create","lastUpdated":"2016-10-05T03:07:04.000Z"}]}}]}'
)

# The blog sample of 2025-11-12 ("webhook_cloudevents_notification") and the documented variants.
CLOUDEVENT = {
    "specversion": "1.0",
    "id": "88cd52aa-33b6-4351-9aa4-47572edbd068",
    "source": "intuit.dsnBgbseACLLRZNxo2dfc4evmEJdxde58xeeYcZliOU=",
    "type": "qbo.invoice.created.v1",
    "datacontenttype": "application/json",
    "time": "2025-09-10T21:31:25.179851517Z",
    "intuitentityid": "1234",
    "intuitaccountid": "310687",
    "data": {},
}


def body_of(payload: object) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


class TestSignature:
    def test_intuits_test_vector_verifies(self) -> None:
        assert sign(VECTOR_BODY, VECTOR_TOKEN) == VECTOR_SIGNATURE
        assert verify_signature(VECTOR_BODY, VECTOR_SIGNATURE, VECTOR_TOKEN)

    @pytest.mark.parametrize("position", [0, 17, len(VECTOR_BODY) // 2, len(VECTOR_BODY) - 1])
    def test_a_body_with_one_changed_byte_is_rejected(self, position: int) -> None:
        changed = bytearray(VECTOR_BODY)
        changed[position] ^= 0x01
        assert not verify_signature(bytes(changed), VECTOR_SIGNATURE, VECTOR_TOKEN)

    def test_reserialized_json_is_rejected_because_only_the_raw_bytes_count(self) -> None:
        pretty = json.dumps(json.loads(VECTOR_BODY)).encode()  # same data, different spacing
        assert not verify_signature(pretty, VECTOR_SIGNATURE, VECTOR_TOKEN)

    @pytest.mark.parametrize(
        "signature",
        [
            None,
            "",
            "not base64 at all!",
            sign(VECTOR_BODY, "another-apps-verifier-token"),
            VECTOR_SIGNATURE[:-4] + "AAA=",
            "6q+xGyMirJupwKTh2/WBl2NcdxzxqdIbk3sneKTxLWM",  # padding stripped
        ],
    )
    def test_forged_missing_or_mangled_signatures_are_rejected(self, signature: str | None) -> None:
        assert not verify_signature(VECTOR_BODY, signature, VECTOR_TOKEN)

    def test_an_empty_verifier_token_verifies_nothing(self) -> None:
        assert not verify_signature(VECTOR_BODY, sign(VECTOR_BODY, ""), "")


class TestParsing:
    def test_the_legacy_vector_gives_one_notification_per_entity(self) -> None:
        parsed = parse_webhook(VECTOR_BODY)
        assert parsed.problems == ()
        assert parsed.notifications == (
            Notification("1269959970", "Vendor", "40", "Update", datetime(2016, 10, 5, 3, 9, 4, tzinfo=UTC)),
            Notification(
                "1269959970", "Customer", "43", "Create", datetime(2016, 10, 5, 3, 7, 4, tzinfo=UTC)
            ),
        )

    def test_a_cloudevent_gives_realm_entity_id_operation_and_time(self) -> None:
        (note,) = parse_webhook(body_of([CLOUDEVENT])).notifications
        assert note.realm_id == "310687"
        assert note.entity == "Invoice"
        assert note.entity_id == "1234"
        assert note.operation == "Create"
        assert note.last_updated == datetime(2025, 9, 10, 21, 31, 25, 179851, tzinfo=UTC)
        assert note.event_id == CLOUDEVENT["id"]

    def test_cloudevent_variants_merge_void_voided_and_missing_data(self) -> None:
        merged = {**CLOUDEVENT, "type": "qbo.customer.merged.v1", "data": {"deletedid": "27"}}
        void = {**CLOUDEVENT, "type": "qbo.invoice.void.v1"}
        voided = {**CLOUDEVENT, "type": "qbo.payment.voided.v1"}
        bare = {k: v for k, v in CLOUDEVENT.items() if k not in ("data", "datacontenttype")}
        bare["type"] = "qbo.salesreceipt.updated.v1"
        notes = parse_webhook(body_of([merged, void, voided, bare])).notifications
        assert [(n.entity, n.operation, n.deleted_id) for n in notes] == [
            ("Customer", "Merge", "27"),
            ("Invoice", "Void", None),
            ("Payment", "Void", None),
            ("SalesReceipt", "Update", None),
        ]

    def test_a_legacy_merge_carries_the_merged_away_id(self) -> None:
        entity = {"name": "Customer", "id": "12", "operation": "Merge", "deletedId": "27"}
        body = body_of({"eventNotifications": [{"realmId": "1", "dataChangeEvent": {"entities": [entity]}}]})
        (note,) = parse_webhook(body).notifications
        assert (note.entity_id, note.deleted_id, note.last_updated) == ("12", "27", None)

    def test_events_of_several_realms_keep_their_own_realm(self) -> None:
        other = {**CLOUDEVENT, "intuitaccountid": "999", "intuitentityid": "7"}
        notes = parse_webhook(body_of([CLOUDEVENT, other])).notifications
        assert [(n.realm_id, n.entity_id) for n in notes] == [("310687", "1234"), ("999", "7")]

    @pytest.mark.parametrize(
        "body",
        [
            b"",
            b"not json",
            b"\xff\xfe\x00",
            b'{"something": "else"}',
            b"42",
            b'{"eventNotifications": "nope"}',
            body_of([{"type": "qbo.invoice.created.v1"}]),
            body_of([{**CLOUDEVENT, "type": "com.example.thing"}]),
            body_of([{**CLOUDEVENT, "type": "qbo.invoice.exploded.v1"}]),
            body_of([17]),
        ],
    )
    def test_malformed_bodies_come_back_as_a_clear_error_value(self, body: bytes) -> None:
        parsed = parse_webhook(body)
        assert parsed.malformed
        assert parsed.notifications == ()
        assert parsed.error

    def test_one_bad_event_does_not_hide_the_good_ones(self) -> None:
        parsed = parse_webhook(body_of([{"type": "garbage"}, CLOUDEVENT]))
        assert not parsed.malformed
        assert [n.entity_id for n in parsed.notifications] == ["1234"]
        assert parsed.problems == ("event 0: type 'garbage' is not qbo.<entity>.<operation>.v1",)

    def test_an_empty_array_is_well_formed_and_empty(self) -> None:
        parsed = parse_webhook(b"[]")
        assert not parsed.malformed
        assert parsed.notifications == ()
        assert parsed.error is None

    def test_an_unreadable_time_is_dropped_not_fatal(self) -> None:
        (note,) = parse_webhook(body_of([{**CLOUDEVENT, "time": "yesterday"}])).notifications
        assert note.last_updated is None
