"""The journal against a model: any order of deliveries gives the outcomes the journal rules promise."""

from __future__ import annotations

import uuid

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.model import EntityType, Side
from engine.state import AppendResult, RecordKey
from engine.store import SqlStateStore
from tests.support.samples import at, customer_event

deliveries = st.lists(st.tuples(st.sampled_from(["a", "b"]), st.integers(1, 4)), max_size=8)
# One store serves every example; each example journals under a connection of its own.
per_store = settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])


@per_store
@given(deliveries=deliveries, processed_up_to=st.integers(0, 4))
def test_deliveries_follow_the_journal_rules(
    store: SqlStateStore, deliveries: list[tuple[str, int]], processed_up_to: int
) -> None:
    connection = uuid.uuid4().hex
    seen: dict[str, set[int]] = {}
    expected: list[AppendResult] = []
    for external_id, seq in deliveries:
        versions = seen.setdefault(external_id, set())
        if seq in versions:
            expected.append(AppendResult.DUPLICATE)
        elif versions and max(versions) > seq:
            expected.append(AppendResult.STALE)
        else:
            expected.append(AppendResult.NEW)
        versions.add(seq)

    with store.session() as s:
        outcomes = [
            s.append_event(customer_event(external_id, seq, connection=connection), at(i))
            for i, (external_id, seq) in enumerate(deliveries)
        ]
    assert outcomes == expected

    new_seqs = {
        external_id: [
            seq
            for (e, seq), o in zip(deliveries, outcomes, strict=True)
            if e == external_id and o is AppendResult.NEW
        ]
        for external_id in seen
    }
    with store.session() as s:
        for external_id in seen:
            key = RecordKey(
                connection=connection,
                side=Side.QUICKBOOKS,
                entity=EntityType.CUSTOMER,
                external_id=external_id,
            )
            latest = s.latest_event(key)
            assert latest is not None
            assert latest.event.version.seq == max(new_seqs[external_id])
            s.mark_processed(key, processed_up_to)
        pending = {k.external_id for k in s.pending_records(connection)}
    assert pending == {e for e, seqs in new_seqs.items() if max(seqs) > processed_up_to}
