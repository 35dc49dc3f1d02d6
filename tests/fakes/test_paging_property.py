"""Property: however reads interleave with changes, paging the fake's feed never misses the newest version."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from engine.clock import FakeClock
from engine.fakes import FakeConnector
from engine.model import ChangeEvent, EntityType, Side

from .conftest import T0

ENTITIES = (EntityType.CUSTOMER, EntityType.ITEM)
actions = st.lists(
    st.one_of(
        st.tuples(st.just("create"), st.sampled_from(ENTITIES)),
        st.tuples(st.just("edit"), st.integers(0, 20)),
        st.tuples(st.just("delete"), st.integers(0, 20)),
        st.tuples(st.just("read"), st.sampled_from(ENTITIES)),
    ),
    max_size=60,
)


@given(actions=actions, page_size=st.integers(1, 4))
def test_paging_never_skips_a_change(actions: list[tuple[str, object]], page_size: int) -> None:
    app = FakeConnector(Side.APP, "c1", FakeClock(T0), page_size=page_size)
    made: list[tuple[EntityType, str]] = []
    cursors: dict[EntityType, str | None] = dict.fromkeys(ENTITIES)
    newest: dict[tuple[EntityType, str], ChangeEvent] = {}

    def read_page(entity: EntityType) -> bool:
        page = app.read_changes(entity, cursors[entity])
        assert len(page.events) <= page_size
        assert len({(e.external_id, e.version.seq) for e in page.events}) == len(page.events)
        for event in page.events:
            newest[(entity, event.external_id)] = event
        cursors[entity] = page.cursor
        return page.complete

    for action, arg in actions:
        if action == "create" and isinstance(arg, EntityType):
            name = {"display_name": "C"} if arg is EntityType.CUSTOMER else {"name": "I"}
            made.append((arg, app.create(arg, name)))
        elif action in ("edit", "delete") and isinstance(arg, int) and made:
            entity, external_id = made[arg % len(made)]
            if app.is_deleted(entity, external_id):
                continue
            if action == "edit":
                app.edit(entity, external_id, active=False)
            else:
                app.delete(entity, external_id)
        elif action == "read" and isinstance(arg, EntityType):
            read_page(arg)

    for entity in ENTITIES:
        while not read_page(entity):
            pass
    assert set(newest) == set(made)
    for (entity, external_id), event in newest.items():
        assert event.version == app.version(entity, external_id)
