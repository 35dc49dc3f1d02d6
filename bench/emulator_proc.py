"""The QuickBooks emulator in a process of its own, so its CPU never counts as ledgersync's.

The child (`python -m bench.emulator_proc CONFIG_JSON`) runs `running_emulator` with the given
`EmulatorConfig` fields, prints its base URL on one line, then serves commands read from stdin, one
JSON object a line, until stdin closes. The one command is `clone`: copy a record the product created
`count` times under new ids and names, stamped `age_seconds` in the past, straight into the emulator's
store (no webhook, no change feed entry newer than the stamp). That is how the CPU benchmark gets 100k
QuickBooks customers in seconds instead of 100k API calls.

The parent side is `emulator_process()`: a context manager yielding a `RemoteEmulator`, the usual
`EmulatorHandle` (the control API over HTTP) without an in-process emulator object.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, fields
from datetime import timedelta
from typing import Any

import httpx

from connectors.quickbooks.emulator import EmulatorConfig, EmulatorHandle


class RemoteEmulator(EmulatorHandle):
    """An `EmulatorHandle` on an emulator running in the child process `process`."""

    def __init__(self, base_url: str, config: EmulatorConfig, process: subprocess.Popen[str]) -> None:
        # EmulatorHandle's methods use only base_url, config and the HTTP client.
        self.base_url = base_url
        self.config = config
        self.process = process
        self._http = httpx.Client(base_url=base_url, timeout=60.0)

    def clone(self, entity: str, template_id: str, names: list[str], age_seconds: float) -> list[str]:
        """Copies of record `template_id`, one per name (DisplayName or Name); their new ids, in order."""
        assert self.process.stdin is not None and self.process.stdout is not None
        command: dict[str, Any] = {"op": "clone", "entity": entity, "template": template_id, "names": names}
        command["age_seconds"] = age_seconds
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()
        answer = json.loads(self.process.stdout.readline())
        if "error" in answer:
            raise RuntimeError(f"emulator clone failed: {answer['error']}")
        return list(answer["ids"])

    def cpu_seconds(self) -> float:
        """User + system CPU the emulator process has used so far (Linux /proc)."""
        return proc_cpu_seconds(self.process.pid)


def proc_cpu_seconds(pid: int) -> float:
    import os

    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        parts = stat.read().rsplit(")", 1)[1].split()
    # Fields 14 and 15 of /proc/PID/stat (utime, stime) are the 12th and 13th after the command name.
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


def config_json(config: EmulatorConfig) -> str:
    values = asdict(config)
    values.pop("start_time", None)
    values.pop("state_file", None)
    return json.dumps(values)


@contextmanager
def emulator_process(config: EmulatorConfig) -> Iterator[RemoteEmulator]:
    """Start the emulator child, yield its handle, stop it (closing stdin ends it) on exit."""
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.emulator_proc", config_json(config)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        if not line.startswith("http"):
            raise RuntimeError(f"the emulator process did not start (said {line!r})")
        handle = RemoteEmulator(line, config, process)
        try:
            yield handle
        finally:
            handle.close()
    finally:
        if process.stdin is not None:
            process.stdin.close()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _clone(emulator: Any, command: dict[str, Any]) -> list[str]:
    from connectors.quickbooks.emulator.clock import format_stamp
    from connectors.quickbooks.emulator.store import Row

    entity, store = command["entity"], emulator.store
    with store.lock:
        template = store.get(entity, command["template"])
        if template is None:
            raise KeyError(f"no {entity} {command['template']}")
        moment = emulator.clock.now() - timedelta(seconds=float(command["age_seconds"]))
        stamp = format_stamp(moment, emulator.config.tz)
        name_key = "Name" if "Name" in template.data and "DisplayName" not in template.data else "DisplayName"
        ids = []
        rows = store.rows.setdefault(entity, {})
        for name in command["names"]:
            data = copy.deepcopy(template.data)
            new_id = store.next_id(entity)
            data.update(Id=new_id, MetaData={"CreateTime": stamp, "LastUpdatedTime": stamp})
            data[name_key] = name
            for derived in ("FullyQualifiedName", "PrintOnCheckName"):
                if derived in data:
                    data[derived] = name
            # Straight into the rows: Store.put would announce each copy as a webhook.
            rows[new_id] = Row(data, moment, moment)
            ids.append(new_id)
    return ids


def main() -> None:
    from connectors.quickbooks.emulator import running_emulator

    known = {f.name for f in fields(EmulatorConfig)}
    raw = json.loads(sys.argv[1])
    values: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in raw.items() if k in known}
    config = EmulatorConfig(**values)
    with running_emulator(config) as handle:
        print(handle.base_url, flush=True)
        for line in sys.stdin:
            try:
                command = json.loads(line)
                answer: dict[str, Any] = {"ids": _clone(handle.emulator, command)}
            except Exception as error:  # reported to the parent, which raises it
                answer = {"error": f"{type(error).__name__}: {error}"}
            print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()
