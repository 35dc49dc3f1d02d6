"""What each scheduled job sends to the workers (the scheduler and embedded mode share it)."""

from __future__ import annotations

from datetime import timedelta

from engine.model import Side
from engine.runner import ORDER
from engine.scheduler import Intervals
from engine.settings import Schedule
from engine.workers import Actors


def intervals(schedule: Schedule) -> Intervals:
    return Intervals(
        app_poll=timedelta(seconds=schedule.app_poll_seconds),
        quickbooks_poll=timedelta(seconds=schedule.quickbooks_poll_seconds),
        kick=timedelta(seconds=schedule.kick_seconds),
        dispatch=timedelta(seconds=schedule.dispatch_seconds),
        token_refresh=timedelta(minutes=schedule.token_refresh_minutes),
        sweep=timedelta(hours=schedule.sweep_hours),
    )


def send(actors: Actors, connection: str, job: str) -> None:
    if job == "app_poll":
        for entity in ORDER:
            actors.poll.send(connection, Side.APP.value, entity.value)
        actors.ingest.send(connection)  # webhooks that arrived meanwhile
    elif job == "quickbooks_poll":
        for entity in ORDER:
            actors.poll.send(connection, Side.QUICKBOOKS.value, entity.value)
    elif job == "kick":
        actors.kick.send(connection)
    elif job == "dispatch":
        actors.dispatch.send(connection)
    elif job == "token_refresh":
        actors.refresh_tokens.send()
    elif job == "sweep":
        actors.sweep.send(connection)
    else:
        raise ValueError(f"unknown job {job!r}")
