"""The QuickBooks emulator in a process of its own, so its CPU never counts as ledgersync's.

The child (`python -m bench.emulator_proc CONFIG_JSON [--companies K] [--port P]`) runs
`running_emulator` with the given `EmulatorConfig` fields (hosting K companies: the default one and K-1
numbered ones; listening on port P), prints its base URL on one line, then serves commands read from
stdin, one JSON object a line, until stdin closes. The one command is `clone`: copy a record the
product created `count` times under new ids and names, stamped `age_seconds` in the past, straight into
the store of the emulator's company `realm` (default: the first) (no webhook, no change feed entry
newer than the stamp). That is how the CPU benchmark gets 100k QuickBooks customers in seconds instead
of 100k API calls.

The parent side is `emulator_process(config, companies=K)`: a context manager yielding a
`RemoteEmulator`, the usual `EmulatorHandle` (the control API over HTTP) without an in-process emulator
object; `company_handles()` gives a `CompanyHandle` (company_url, realm_id, connect(), storm(), ...)
per hosted company. A company's records are made at its first use and idle companies cost no thread,
so K can be in the hundreds.
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

from connectors.quickbooks.emulator import CompanyConfig, CompanyHandle, EmulatorConfig, EmulatorHandle
from connectors.quickbooks.emulator.profile import CompanyProfile


class RemoteEmulator(EmulatorHandle):
    """An `EmulatorHandle` on an emulator running in the child process `process`."""

    def __init__(self, base_url: str, config: EmulatorConfig, process: subprocess.Popen[str]) -> None:
        super().__init__(base_url, config=config)
        self.process = process

    def company_handles(self) -> list[CompanyHandle]:
        """A handle per hosted company, the default one first."""
        return [self.company_handle(str(c["realm_id"])) for c in self.companies()]

    def clone(
        self, entity: str, template_id: str, names: list[str], age_seconds: float, realm: str | None = None
    ) -> list[str]:
        """Copies of record `template_id` of company `realm` (default: the first), one per name
        (DisplayName or Name); their new ids, in order."""
        assert self.process.stdin is not None and self.process.stdout is not None
        command: dict[str, Any] = {"op": "clone", "entity": entity, "template": template_id, "names": names}
        command["age_seconds"] = age_seconds
        command["realm"] = realm
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
    # The benchmark's company is the default one (no sales tax): the child builds it again.
    if values.pop("profile") != asdict(CompanyProfile()):
        raise ValueError("the benchmark's emulator process runs the default company only")
    return json.dumps(values)


def config_from_json(text: str) -> EmulatorConfig:
    known = {f.name for f in fields(EmulatorConfig)}
    raw = json.loads(text)
    values: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in raw.items() if k in known}
    values["extra_companies"] = tuple(CompanyConfig(**c) for c in raw.get("extra_companies", ()))
    return EmulatorConfig(**values)


@contextmanager
def emulator_process(config: EmulatorConfig, companies: int = 1, port: int = 0) -> Iterator[RemoteEmulator]:
    """Start the emulator child, yield its handle, stop it (closing stdin ends it) on exit. With
    `companies` above 1 it hosts that many: the default one and numbered ones (9341455600000002, ...),
    in place of the config's `extra_companies`. `port` 0: a free one."""
    command = [sys.executable, "-m", "bench.emulator_proc", config_json(config)]
    if companies > 1:
        command += ["--companies", str(companies)]
    if port:
        command += ["--port", str(port)]
    process = subprocess.Popen(
        command,
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
        if process.stdout is not None:
            process.stdout.close()


def _clone(emulator: Any, command: dict[str, Any]) -> list[str]:
    from connectors.quickbooks.emulator.clock import format_stamp
    from connectors.quickbooks.emulator.store import Row

    realm = command.get("realm")
    company = emulator.default if realm is None else emulator.companies[realm]
    entity, store = command["entity"], company.store
    with store.lock:
        template = store.get(entity, command["template"])
        if template is None:
            raise KeyError(f"no {entity} {command['template']}")
        moment = emulator.clock.now() - timedelta(seconds=float(command["age_seconds"]))
        stamp = format_stamp(moment, company.config.tz)
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

    config = config_from_json(sys.argv[1])
    if "--companies" in sys.argv:
        count = int(sys.argv[sys.argv.index("--companies") + 1])
        config = config.with_companies(count)
    port = int(sys.argv[sys.argv.index("--port") + 1]) if "--port" in sys.argv else 0
    with running_emulator(config, port=port) as handle:
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
