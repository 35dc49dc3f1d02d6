"""QuickBooks JSON <-> canonical records, both ways: pure functions, no I/O.

Reading: `to_canonical(entity, qbo, ctx)` gives canonical fields (python form, as
`engine.model.record_fields` returns them) and the Version (SyncToken, LastUpdatedTime); references come
back as Ref dicts in QuickBooks ids (side "quickbooks"). Unknown keys are ignored.

Writing: `to_qbo_create`, `to_qbo_sparse_update`, `to_qbo_inactivate`, `to_qbo_delete` and `to_qbo_void`
build request bodies; refs must already be QuickBooks ids. What QuickBooks would refuse is filled from the
`MappingContext` or rejected before sending (RecordRejectedError naming the field). Computed fields are
never sent. Money is Decimal here and a JSON number (float, at most 15 digits) in bodies.
"""

from connectors.quickbooks.mapping.api import (
    NAME_LISTS,
    TRANSACTIONS,
    to_canonical,
    to_qbo_create,
    to_qbo_delete,
    to_qbo_inactivate,
    to_qbo_sparse_update,
    to_qbo_void,
)
from connectors.quickbooks.mapping.context import MappingContext, TaxMode
from connectors.quickbooks.mapping.item import UNSUPPORTED_TYPE
from connectors.quickbooks.mapping.names import (
    DISPLAY_NAME_MAX,
    DOC_NUMBER_MAX,
    ITEM_NAME_MAX,
    clean_name,
    suffixed_name,
)
from connectors.quickbooks.mapping.values import is_deleted, version_of

__all__ = [
    "DISPLAY_NAME_MAX",
    "DOC_NUMBER_MAX",
    "ITEM_NAME_MAX",
    "NAME_LISTS",
    "TRANSACTIONS",
    "UNSUPPORTED_TYPE",
    "MappingContext",
    "TaxMode",
    "clean_name",
    "is_deleted",
    "suffixed_name",
    "to_canonical",
    "to_qbo_create",
    "to_qbo_delete",
    "to_qbo_inactivate",
    "to_qbo_sparse_update",
    "to_qbo_void",
    "version_of",
]
