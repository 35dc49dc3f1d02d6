"""The fault table: every QuickBooks fault and status lands on the error that tells the runner what to do."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from connectors.quickbooks.faults import (
    DEFAULT_RETRY_AFTER,
    AuthenticationFailedError,
    error_from_fault,
    error_from_response,
    retry_after,
)
from engine.errors import (
    ConfigurationError,
    DuplicateNameError,
    NeedsReauthorizationError,
    RateLimitedError,
    RecordRejectedError,
    UpstreamUnavailableError,
    VersionConflictError,
)

SAMPLES: dict[str, Any] = json.loads((Path(__file__).parent / "payloads" / "qbo-samples.json").read_text())
TID = "1-5ebb4fc0-a1d1103a01a5ef86671f0dbe"


def recorded(name: str) -> tuple[int, dict[str, Any], dict[str, str]]:
    entry = copy.deepcopy(SAMPLES[name])
    return entry["http"]["status"], entry["body"], entry["http"].get("headers", {})


def fault_body(
    code: str, message: str = "Msg", detail: str = "Detail", fault_type: str = "ValidationFault"
) -> bytes:
    error = {"Message": message, "Detail": detail, "code": code, "element": ""}
    return json.dumps(
        {"Fault": {"Error": [error], "type": fault_type}, "time": "2026-11-25T08:00:00.000-08:00"}
    ).encode()


def test_stale_sync_token_is_a_version_conflict():
    status, body, headers = recorded("fault_stale_object_5010")
    error = error_from_response(status, body, headers, "tid-5010")
    assert type(error) is VersionConflictError
    assert error.tid == "tid-5010"
    assert "You and root were working on this at the same time" in error.message


def test_duplicate_name_carries_the_existing_id_from_the_detail():
    status, body, headers = recorded("fault_duplicate_name_6240")
    error = error_from_response(status, json.dumps(body).encode(), headers, None)
    assert isinstance(error, DuplicateNameError)
    assert (error.existing_id, error.code) == ("58", "6240")
    assert "The name supplied already exists." in error.message


def test_duplicate_name_with_the_documented_detail_has_no_existing_id():
    detail = SAMPLES["fault_duplicate_name_6240"]["documented_detail_variant"]
    error = error_from_response(400, fault_body("6240", "Duplicate Name Exists Error", detail), {}, None)
    assert isinstance(error, DuplicateNameError)
    assert error.existing_id is None


@pytest.mark.parametrize(
    ("sample", "code", "words"),
    [
        ("fault_required_param_2020", "2020", "Required parameter Line is missing in the request"),
        ("fault_object_not_found_610", "610", "Something you're trying to use has been made inactive"),
        ("fault_business_validation_6000", "6000", "You must set a transaction amount"),
    ],
)
def test_validation_faults_are_rejections_in_quickbooks_own_words(sample, code, words):
    status, body, headers = recorded(sample)
    error = error_from_response(status, body, headers, TID)
    assert type(error) is RecordRejectedError
    assert error.code == code
    assert words in error.message
    assert error.tid == TID


def test_rejection_message_joins_message_and_detail_and_names_the_element():
    status, body, headers = recorded("fault_required_param_2020")
    error = error_from_response(status, body, headers, None)
    assert error.message == (
        "Required param missing, need to supply the required value for the API: "
        "Required parameter Line is missing in the request"
    )
    assert error.detail == "element=Line"


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("2500", "Invalid Reference Id"),
        ("6140", "Duplicate Doc Num Error"),
        ("6100", "Invalid line tax code"),
        ("2050", "String length specified does not match the supported length"),
        ("6210", "Account Period Closed"),
        ("6540", "Deposited Transaction cannot be changed"),
    ],
)
def test_other_validation_codes_are_rejections_with_their_code(code, message):
    error = error_from_response(400, fault_body(code, message), {"intuit_tid": TID}, None)
    assert type(error) is RecordRejectedError
    assert (error.code, error.tid) == (code, TID)
    assert error.message.startswith(message)


def test_several_errors_are_all_reported_and_the_most_specific_decides():
    body = {
        "Fault": {
            "Error": [
                {"Message": "Duplicate Doc Num Error", "Detail": "DocNumber used", "code": "6140"},
                {"Message": "Stale Object Error", "Detail": "Stale Object Error : changed", "code": "5010"},
            ],
            "type": "ValidationFault",
        }
    }
    error = error_from_response(400, body, {}, None)
    assert isinstance(error, VersionConflictError)
    assert error.message == "Duplicate Doc Num Error: DocNumber used | Stale Object Error : changed"


def test_throttle_429_waits_sixty_seconds_unless_told_otherwise():
    status, body, _ = recorded("fault_throttle_429")
    error = error_from_response(status, body, {}, TID)
    assert isinstance(error, RateLimitedError)
    assert error.retry_after == DEFAULT_RETRY_AFTER == 60
    assert error_from_response(status, body, {"Retry-After": "7"}, TID).retry_after == 7


@pytest.mark.parametrize("code", ["3001", "003001"])
def test_throttle_fault_is_recognised_under_any_status(code):
    body = fault_body(
        code, "message=ThrottleExceeded; errorCode=003001; statusCode=429", fault_type="SERVICE"
    )
    assert isinstance(error_from_response(400, body, {}, None), RateLimitedError)
    assert isinstance(error_from_response(503, body, {}, None), RateLimitedError)
    assert isinstance(error_from_fault(json.loads(body)["Fault"], None), RateLimitedError)


def test_bare_429_without_a_body_is_rate_limited():
    error = error_from_response(429, None, {"retry-after": "12.5"}, None)
    assert isinstance(error, RateLimitedError)
    assert error.retry_after == 12.5


def test_retry_after_as_http_date_is_measured_against_the_response_date():
    headers = {"Retry-After": "Wed, 25 Nov 2026 16:01:30 GMT", "Date": "Wed, 25 Nov 2026 16:00:00 GMT"}
    assert retry_after(headers) == 90
    assert retry_after({"Retry-After": "Wed, 25 Nov 2026 16:01:30 GMT"}) == DEFAULT_RETRY_AFTER
    assert retry_after({"Retry-After": "soon"}) == DEFAULT_RETRY_AFTER


def test_expired_token_401_with_lowercase_body_asks_for_a_refresh():
    status, body, headers = recorded("fault_401_expired_token")
    error = error_from_response(status, json.dumps(body).encode(), headers, None)
    assert isinstance(error, AuthenticationFailedError)
    assert isinstance(error, NeedsReauthorizationError)  # if the refresh fails too, the ops park
    assert error.tid == TID  # taken from the intuit_tid header
    assert "AuthenticationFailed" in error.message
    assert error.detail == 'Bearer realm="Intuit", error="invalid_token"'


def test_legacy_xml_401_is_an_authentication_failure():
    xml = SAMPLES["fault_401_expired_token"]["legacy_xml_variant"]
    error = error_from_response(401, xml.encode(), {}, None)
    assert isinstance(error, AuthenticationFailedError)
    assert "ApplicationAuthenticationFailed" in error.message


def test_authentication_fault_type_decides_without_status():
    body = fault_body(
        "100", "General Authentication Error", "AuthenticationErrorGeneral", "AuthenticationFault"
    )
    assert isinstance(error_from_response(400, body, {}, None), AuthenticationFailedError)


@pytest.mark.parametrize(
    ("status", "code", "message"),
    [
        (403, "3100", "message=ApplicationAuthorizationFailed; errorCode=003100; statusCode=403"),
        (400, "120", "Authorization Failure"),
    ],
)
def test_lost_authorization_needs_reauthorization_not_a_refresh(status, code, message):
    error = error_from_response(status, fault_body(code, message, fault_type="AuthorizationFault"), {}, None)
    assert type(error) is NeedsReauthorizationError


def test_token_endpoint_errors():
    status, body, headers = recorded("token_error_invalid_grant")
    error = error_from_response(status, body, headers, None)
    assert type(error) is NeedsReauthorizationError
    assert "invalid_grant: Token invalid" in error.message
    assert error.tid == "1234-1234-1234-123"
    status, body, _ = recorded("token_error_invalid_client")
    assert isinstance(error_from_response(status, body, {}, None), ConfigurationError)


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_are_retriable(status):
    error = error_from_response(status, b"<html><body>Bad Gateway</body></html>", {"intuit_tid": TID}, None)
    assert isinstance(error, UpstreamUnavailableError)
    assert error.tid == TID
    assert "Bad Gateway" in error.message


def test_system_fault_is_retriable():
    body = fault_body(
        "10000", "An application error has occurred while processing your request", "", "SystemFault"
    )
    assert isinstance(error_from_response(400, body, {}, None), UpstreamUnavailableError)


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (404, b"<html>Not Found</html>"),
        (413, b"<html><h1>413 Request Entity Too Large</h1></html>"),
        (400, b""),
        (400, b"\xff\xfe not utf-8"),
        (400, json.dumps([1, 2]).encode()),
        (400, json.dumps({"Fault": {"Error": "nonsense"}}).encode()),
    ],
)
def test_unknown_client_errors_are_rejections(status, body):
    error = error_from_response(status, body, {}, None)
    assert type(error) is RecordRejectedError
    assert error.code == f"http_{status}"
    assert str(status) in error.message


def test_batch_item_faults_map_like_top_level_faults():
    items = {item["bId"]: item for item in SAMPLES["batch_response"]["body"]["BatchItemResponse"]}
    duplicate = error_from_fault(items["bid1"]["Fault"], TID)
    assert isinstance(duplicate, DuplicateNameError)
    assert duplicate.existing_id is None  # the documented detail names no holder
    assert duplicate.tid == TID
    assert type(error_from_fault(items["bid2"]["Fault"], None)) is RecordRejectedError
    assert isinstance(error_from_fault(items["bid3"]["Fault"], None), VersionConflictError)


def test_a_fault_without_errors_is_still_a_rejection():
    error = error_from_fault({"type": "ValidationFault"}, None)
    assert type(error) is RecordRejectedError
    assert error.code == "unknown"
