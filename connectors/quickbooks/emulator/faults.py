"""QuickBooks' fault shapes: the `Fault` envelope, the lowercase 401 body, and the OAuth error bodies."""

from __future__ import annotations

from typing import Any

JsonDict = dict[str, Any]

INACTIVE_DETAIL = (
    "Something you're trying to use has been made inactive. "
    "Check the fields with accounts, customers, items, vendors or employees."
)
STALE_DETAIL = (
    "Stale Object Error : You and root were working on this at the same time. "
    "root finished before you did, so your work was not saved."
)
DOCUMENTED_DUPLICATE_DETAIL = (
    "The name supplied already exists. : Another customer, vendor or employee is already using this name. "
    "Please use a different name."
)


class QboFaultError(Exception):
    """Raised inside the emulator to answer with a QuickBooks `Fault` (HTTP 400 unless said otherwise)."""

    def __init__(
        self,
        code: str,
        message: str,
        detail: str,
        *,
        element: str = "",
        fault_type: str = "ValidationFault",
        status: int = 400,
    ) -> None:
        super().__init__(f"{code} {message}: {detail}")
        self.code = code
        self.message = message
        self.detail = detail
        self.element = element
        self.fault_type = fault_type
        self.status = status

    def fault(self) -> JsonDict:
        """The `Fault` object, as it appears at top level or inside a batch item."""
        error: JsonDict = {"Message": self.message, "Detail": self.detail, "code": self.code}
        if self.fault_type != "SERVICE":
            error["element"] = self.element
        return {"Error": [error], "type": self.fault_type}


def required(element: str, detail: str | None = None) -> QboFaultError:
    return QboFaultError(
        "2020",
        "Required param missing, need to supply the required value for the API",
        detail or f"Required parameter {element} is missing in the request",
        element=element,
    )


def not_found(deleted: bool = False) -> QboFaultError:
    reason = "Another user has deleted this transaction." if deleted else INACTIVE_DETAIL
    return QboFaultError("610", "Object Not Found", f"Object Not Found : {reason}")


def invalid_reference(entity: str, ref_id: str) -> QboFaultError:
    return QboFaultError(
        "2500",
        "Invalid Reference Id",
        f"Invalid Reference Id : {entity} assigned to this transaction has been deleted. "
        f"Before you can modify this transaction, you must restore {entity} {ref_id} (deleted).",
    )


def inactive_reference() -> QboFaultError:
    return QboFaultError("610", "Object Not Found", f"Object Not Found : {INACTIVE_DETAIL}")


def stale_object() -> QboFaultError:
    return QboFaultError("5010", "Stale Object Error", STALE_DETAIL)


def duplicate_name(existing_id: str, style: str) -> QboFaultError:
    detail = (
        f"The name supplied already exists. : Id={existing_id}"
        if style == "id"
        else DOCUMENTED_DUPLICATE_DETAIL
    )
    return QboFaultError("6240", "Duplicate Name Exists Error", detail)


def business(reason: str) -> QboFaultError:
    return QboFaultError(
        "6000",
        "A business validation error has occurred while processing your request",
        f"Business Validation Error: {reason}",
    )


def unsupported(detail: str) -> QboFaultError:
    return QboFaultError("500", "Unsupported Operation", detail)


def invalid_property(detail: str) -> QboFaultError:
    return QboFaultError("2010", "Request has invalid or unsupported property", detail)


def invalid_enum(value: str) -> QboFaultError:
    return QboFaultError("2170", "Invalid Enumeration", f"Invalid Enumeration : {value}")


def query_parse(detail: str) -> QboFaultError:
    return QboFaultError("4000", "Error parsing query", f"QueryParserError: {detail}")


def query_validation(detail: str) -> QboFaultError:
    return QboFaultError("4001", "Invalid query", f"QueryValidationError: {detail}")


def system_error(detail: str, status: int = 500) -> QboFaultError:
    return QboFaultError(
        "10000",
        "An application error has occurred while processing your request",
        f"System Failure Error: {detail}",
        fault_type="SystemFault",
        status=status,
    )


def no_resource(path: str) -> QboFaultError:
    """A URL (or, if so configured, a realm) QuickBooks has nothing at."""
    return QboFaultError(
        "10000",
        "An application error has occurred while processing your request",
        f"System Failure Error: no resource at {path}",
        fault_type="SystemFault",
        status=404,
    )


def throttled() -> QboFaultError:
    return QboFaultError(
        "3001",
        "message=ThrottleExceeded; errorCode=003001; statusCode=429",
        "The request limit was reached.  Try again later",
        fault_type="SERVICE",
        status=429,
    )


def forbidden() -> QboFaultError:
    return QboFaultError(
        "3100",
        "message=ApplicationAuthorizationFailed; errorCode=003100; statusCode=403",
        "",
        fault_type="AuthorizationFault",
        status=403,
    )


def authentication_body(detail: str, epoch_ms: int) -> JsonDict:
    """The 401 body: lowercase keys, not the usual `Fault` envelope, `time` as epoch milliseconds."""
    return {
        "warnings": None,
        "intuitObject": None,
        "fault": {
            "error": [
                {
                    "message": "message=AuthenticationFailed; errorCode=003200; statusCode=401",
                    "detail": detail,
                    "code": "3200",
                    "element": None,
                }
            ],
            "type": "AUTHENTICATION",
        },
        "report": None,
        "queryResponse": None,
        "batchItemResponse": [],
        "attachableResponse": [],
        "syncErrorResponse": None,
        "requestId": None,
        "time": epoch_ms,
        "status": None,
        "cdcresponse": [],
    }


WWW_AUTHENTICATE = 'Bearer realm="Intuit", error="invalid_token"'
