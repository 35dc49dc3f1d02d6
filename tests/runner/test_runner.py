"""The journaling runner end to end over two fakes: creates, edits, conflicts, dependencies, faults."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from engine.clock import FakeClock
from engine.errors import RateLimitedError, UpstreamUnavailableError
from engine.model import EntityType, Side
from engine.plan import OpStatus
from engine.state import AppendResult, AuditAction
from tests.support.loop import InProcess
from tests.support.sample import CUSTOMERS, ITEMS, invoice_for
from tests.support.stores import linked_id

C, ITEM, INV, PAY = EntityType.CUSTOMER, EntityType.ITEM, EntityType.INVOICE, EntityType.PAYMENT


def qbo_id(loop: InProcess, entity: EntityType, app_id: str) -> str:
    return linked_id(loop.store, "default", entity, Side.APP, app_id)


def seed_app(loop: InProcess) -> dict[str, Any]:
    customers = [loop.app.create(C, dict(c)) for c in CUSTOMERS]
    items = [loop.app.create(ITEM, dict(i)) for i in ITEMS]
    invoice = loop.app.create(INV, invoice_for(customers[0], (items[0], items[1])))
    return {"customers": customers, "items": items, "invoice": invoice}


def test_app_records_reach_quickbooks_in_dependency_order_and_totals_come_back(loop: InProcess):
    ids = seed_app(loop)
    loop.runner.run_until_quiet()
    assert len(loop.quickbooks.all(C)) == 2 and len(loop.quickbooks.all(ITEM)) == 2
    qbo_invoice = loop.quickbooks.get(INV, qbo_id(loop, INV, ids["invoice"]))
    assert qbo_invoice is not None and qbo_invoice["total"] == Decimal("339.98")
    app_invoice = loop.app.get(INV, ids["invoice"])
    assert app_invoice is not None and app_invoice["total"] == Decimal("339.98")
    assert app_invoice["balance"] == Decimal("339.98")


def test_a_second_run_with_no_edits_writes_nothing(loop: InProcess):
    seed_app(loop)
    loop.runner.run_until_quiet()
    writes = loop.app.writes + loop.quickbooks.writes
    again = loop.runner.run_until_quiet()
    assert again.applied == 0 and loop.app.writes + loop.quickbooks.writes == writes


def test_an_accountant_edit_in_quickbooks_reaches_the_app(loop: InProcess):
    ids = seed_app(loop)
    loop.runner.run_until_quiet()
    loop.quickbooks.edit(C, qbo_id(loop, C, ids["customers"][0]), phone="555-010-9999")
    stats = loop.runner.run_until_quiet()
    assert stats.applied == 1
    assert loop.app.get(C, ids["customers"][0])["phone"] == "555-010-9999"  # type: ignore[index]


def test_concurrent_email_edits_open_one_manual_conflict_and_other_fields_still_sync(loop: InProcess):
    ids = seed_app(loop)
    loop.runner.run_until_quiet()
    app_id = ids["customers"][0]
    loop.app.edit(C, app_id, email="app@example.com", notes="prefers e-mail")
    loop.quickbooks.edit(C, qbo_id(loop, C, app_id), email="qbo@example.com")
    loop.runner.run_until_quiet()
    with loop.store.session() as s:
        conflicts = s.list_conflicts(open_only=True)
    assert [(c.field, c.app, c.quickbooks) for c in conflicts] == [
        ("email", "app@example.com", "qbo@example.com")
    ]
    assert loop.quickbooks.get(C, qbo_id(loop, C, app_id))["notes"] == "prefers e-mail"  # type: ignore[index]


def test_a_payment_in_quickbooks_marks_the_app_invoice_paid(loop: InProcess):
    ids = seed_app(loop)
    loop.runner.run_until_quiet()
    qbo_invoice = qbo_id(loop, INV, ids["invoice"])
    qbo_customer = qbo_id(loop, C, ids["customers"][0])
    loop.quickbooks.create(
        PAY,
        {
            "customer": {"entity": C, "id": qbo_customer},
            "total": "339.98",
            "applications": [{"invoice": {"entity": INV, "id": qbo_invoice}, "amount": "339.98"}],
        },
    )
    loop.runner.run_until_quiet()
    assert loop.app.get(INV, ids["invoice"])["balance"] == Decimal("0.00")  # type: ignore[index]
    (payment,) = loop.app.all(PAY).values()
    assert payment["applications"][0]["invoice"]["id"] == ids["invoice"]


def test_duplicate_and_stale_deliveries_change_nothing(loop: InProcess, clock: FakeClock):
    ids = seed_app(loop)
    loop.runner.run_until_quiet()
    app_id = ids["customers"][1]
    old = loop.app.fetch(C, app_id)
    clock.advance(60)
    loop.app.edit(C, app_id, phone="555-222-3333")
    loop.runner.run_until_quiet()
    assert loop.runner.ingest(loop.app.fetch(C, app_id)) is AppendResult.DUPLICATE
    assert loop.runner.ingest(old) in (AppendResult.STALE, AppendResult.DUPLICATE)
    writes = loop.quickbooks.writes
    loop.runner.run_until_quiet()
    assert loop.quickbooks.writes == writes
    assert loop.quickbooks.get(C, qbo_id(loop, C, app_id))["phone"] == "555-222-3333"  # type: ignore[index]


def test_rate_limits_and_5xx_end_with_every_op_applied_exactly_once(loop: InProcess):
    seed_app(loop)
    loop.quickbooks.fail_next(4, RateLimitedError)
    loop.quickbooks.fail_next(3, UpstreamUnavailableError)
    loop.runner.run_until_quiet()
    assert len(loop.quickbooks.all(C)) == 2 and len(loop.quickbooks.all(INV)) == 1
    with loop.store.session() as s:
        assert s.ops("default", [OpStatus.PENDING, OpStatus.PARKED, OpStatus.WAITING]) == []


def test_a_timeout_after_the_write_committed_does_not_duplicate(loop: InProcess):
    seed_app(loop)
    loop.quickbooks.fail_after_commit(3)
    loop.runner.run_until_quiet()
    assert len(loop.quickbooks.all(C)) == 2 and len(loop.quickbooks.all(ITEM)) == 2
    assert len(loop.quickbooks.all(INV)) == 1


def test_a_revoked_connection_parks_ops_and_resumes_after_reconnect(loop: InProcess):
    seed_app(loop)
    loop.quickbooks.revoke()
    loop.runner.apply_pending()  # nothing yet: ops are planned on the first pass
    for side in Side:
        if side is Side.APP:
            for entity in (C, ITEM, INV):
                loop.runner.poll(side, entity)
    loop.runner.decide_pending()
    loop.runner.apply_pending()
    with loop.store.session() as s:
        waiting = s.ops("default", [OpStatus.WAITING])
    assert waiting and loop.quickbooks.all(C) == {}
    loop.quickbooks.reconnect()
    assert loop.runner.resume_waiting() == len(waiting)
    loop.runner.run_until_quiet()
    assert len(loop.quickbooks.all(C)) == 2 and len(loop.quickbooks.all(INV)) == 1


def test_a_stale_synctoken_supersedes_the_op_and_the_record_is_replanned(loop: InProcess):
    ids = seed_app(loop)
    loop.runner.run_until_quiet()
    app_id = ids["customers"][1]
    qid = qbo_id(loop, C, app_id)
    loop.app.edit(C, app_id, phone="555-444-0000")
    loop.runner.poll(Side.APP, C)
    loop.runner.decide_pending()
    loop.quickbooks.edit(C, qid, notes="called on Monday")  # lands between plan and apply
    loop.runner.run_until_quiet()
    qbo = loop.quickbooks.get(C, qid)
    app = loop.app.get(C, app_id)
    assert qbo is not None and app is not None
    assert qbo["phone"] == app["phone"] == "555-444-0000"
    assert qbo["notes"] == app["notes"] == "called on Monday"


def test_a_rejected_record_is_parked_and_shown_in_history(loop: InProcess):
    loop.quickbooks.reject_when(lambda op: op.entity is ITEM)
    seed_app(loop)
    loop.runner.run_until_quiet()
    with loop.store.session() as s:
        parked = s.ops("default", [OpStatus.PARKED])
        history = s.history(connection="default")
    assert {r.op.entity for r in parked} == {ITEM}
    assert any(h.action is AuditAction.PARKED for h in history)
    assert len(loop.quickbooks.all(C)) == 2  # the rest still syncs
    assert loop.quickbooks.all(INV) == {}  # the invoice waits for its items


def test_customer_deleted_in_the_app_is_inactivated_in_quickbooks(loop: InProcess):
    ids = seed_app(loop)
    loop.runner.run_until_quiet()
    app_id = ids["customers"][1]
    loop.app.delete(C, app_id)
    loop.runner.run_until_quiet()
    qbo = loop.quickbooks.get(C, qbo_id(loop, C, app_id))
    assert qbo is not None and qbo["active"] is False


def make_email_conflict(loop: InProcess) -> tuple[str, str]:
    ids = seed_app(loop)
    loop.runner.run_until_quiet()
    app_id = ids["customers"][0]
    qid = qbo_id(loop, C, app_id)
    loop.app.edit(C, app_id, email="app@example.com")
    loop.quickbooks.edit(C, qid, email="qbo@example.com")
    loop.runner.run_until_quiet()
    return app_id, qid


def test_resolving_a_conflict_by_taking_quickbooks_writes_the_app_and_closes_it(loop: InProcess):
    from engine.resolve import Choice, resolve

    app_id, _qid = make_email_conflict(loop)
    with loop.store.session() as s:
        (conflict,) = s.list_conflicts(open_only=True)
        resolve(
            s, conflict.id, Choice(take=Side.QUICKBOOKS), "maria", loop.runner.policy, loop.runner.clock.now()
        )
    loop.runner.run_until_quiet()
    assert loop.app.get(C, app_id)["email"] == "qbo@example.com"  # type: ignore[index]
    with loop.store.session() as s:
        assert s.list_conflicts(open_only=True) == []
        assert s.get_conflict(conflict.id).resolved_by == "maria"  # type: ignore[union-attr]
    assert loop.runner.run_until_quiet().applied == 0


def test_resolving_with_a_typed_value_writes_both_sides(loop: InProcess):
    from engine.resolve import Choice, resolve

    app_id, qid = make_email_conflict(loop)
    with loop.store.session() as s:
        (conflict,) = s.list_conflicts(open_only=True)
        resolve(
            s,
            conflict.id,
            Choice(value="both@example.com"),
            "maria",
            loop.runner.policy,
            loop.runner.clock.now(),
        )
    loop.runner.run_until_quiet()
    assert loop.app.get(C, app_id)["email"] == loop.quickbooks.get(C, qid)["email"] == "both@example.com"  # type: ignore[index]
    assert loop.runner.run_until_quiet().applied == 0


def test_a_conflict_closes_itself_when_the_sides_come_to_agree(loop: InProcess):
    _app_id, qid = make_email_conflict(loop)
    loop.quickbooks.edit(C, qid, email="app@example.com")
    loop.runner.run_until_quiet()
    with loop.store.session() as s:
        assert s.list_conflicts(open_only=True) == []


def test_delete_against_edit_conflict_can_bring_the_record_back(loop: InProcess):
    from engine.resolve import Choice, resolve

    ids = seed_app(loop)
    loop.runner.run_until_quiet()
    app_id = ids["customers"][1]
    qid = qbo_id(loop, C, app_id)
    loop.app.delete(C, app_id)
    loop.quickbooks.edit(C, qid, notes="still a customer!")
    loop.runner.run_until_quiet()
    with loop.store.session() as s:
        (conflict,) = s.list_conflicts(open_only=True)
        assert conflict.field == "_deleted"
        resolve(
            s, conflict.id, Choice(take=Side.QUICKBOOKS), "maria", loop.runner.policy, loop.runner.clock.now()
        )
    loop.runner.run_until_quiet()
    revived = [c for c in loop.app.all(C).values() if c["notes"] == "still a customer!"]
    assert len(revived) == 1
    with loop.store.session() as s:
        link = s.find_link("default", C, Side.QUICKBOOKS, qid)
    assert link is not None and link.app_id not in (None, app_id)


def test_a_dry_run_reports_the_plan_and_writes_nothing_anywhere(loop: InProcess):
    from engine.dryrun import dry_run

    ids = seed_app(loop)
    sides = {Side.APP: loop.app, Side.QUICKBOOKS: loop.quickbooks}
    report = dry_run(loop.store, sides, loop.runner.policy, loop.runner.clock, "default")
    kinds = sorted((op.entity, op.kind, op.side) for op in report.ops)
    assert (C, "create", Side.QUICKBOOKS) in kinds and (ITEM, "create", Side.QUICKBOOKS) in kinds
    assert loop.app.writes == loop.quickbooks.writes == 0
    with loop.store.session() as s:
        assert s.counts("default").journal == {} and s.list_links("default") == []
        assert s.get_cursor("default", Side.APP, C) is None
    loop.runner.run_until_quiet()  # the real run still finds everything to do
    assert loop.quickbooks.get(INV, qbo_id(loop, INV, ids["invoice"])) is not None


def test_recording_an_op_a_second_time_changes_nothing(loop: InProcess):
    # The kick sweep and an apply message can both apply one op; the connector replays it for the
    # second, whose record must not put the op's older values back into a base that moved on.
    from engine.apply import record_success
    from engine.model import Version
    from engine.ports import WriteResult

    ids = seed_app(loop)
    loop.runner.run_until_quiet()
    with loop.store.session() as s:
        applied = [r for r in s.ops("default", [OpStatus.APPLIED]) if r.op.entity is C]
        op = applied[0].op
        link = s.get_link(op.link_id)
        assert link is not None
        snapshot = s.get_snapshot(link.id)
        assert snapshot is not None
        moved = s.save_snapshot(
            snapshot.model_copy(update={"base": {**(snapshot.base or {}), "notes": "later"}})
        )
    result = WriteResult(
        external_id=link.quickbooks_id or "", version=Version(seq=0, at=loop.runner.clock.now())
    )
    with loop.store.session() as s:
        record_success(s, op, result, loop.runner.clock.now())
        after = s.get_snapshot(link.id)
    assert after == moved and ids
