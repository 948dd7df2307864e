"""Mock tier harness: run a Pulumi program under `pulumi.runtime.set_mocks` and record
every registered resource (type, name, inputs, parent)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi.runtime import MockCallArgs, MockResourceArgs, Mocks
from pulumi.runtime.mocks import MockMonitor
from pulumi.runtime.settings import reset_options


@dataclass
class Registered:
    type: str
    name: str
    inputs: dict[str, Any]
    parent: str | None
    urn: str


@dataclass
class Recorder(Mocks):
    resources: list[Registered] = field(default_factory=list)

    parents: dict[tuple[str, str], str | None] = field(default_factory=dict)
    monitor: MockMonitor | None = None

    def new_resource(self, args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
        parent = self.parents.get((args.typ, args.name))
        self.resources.append(Registered(args.typ, args.name, dict(args.inputs), parent, ""))
        return f"{args.name}-id", dict(args.inputs)

    def transform(self, args: pulumi.ResourceTransformationArgs) -> None:
        parent = args.opts.parent if args.opts else None
        self.parents[(args.type_, args.name)] = (
            f"{parent._type}::{parent._name}"
            if parent is not None and hasattr(parent, "_name")
            else None
        )

    def call(self, args: MockCallArgs) -> dict[str, Any]:
        return {}

    def of_type(self, typ: str) -> list[Registered]:
        return [r for r in self.resources if r.type == typ]

    def one(self, typ: str, name: str) -> Registered:
        found = [r for r in self.resources if r.type == typ and r.name == name]
        assert len(found) == 1, f"expected one {typ} {name}, got {len(found)}: {self.names()}"
        return found[0]

    def names(self) -> set[tuple[str, str]]:
        return {(r.type, r.name) for r in self.resources}


class RecordingMonitor(MockMonitor):
    """The SDK's mock monitor, keeping every RegisterResource request (options included:
    dependencies, replaceOnChanges, deleteBeforeReplace, protect, provider, parent)."""

    def __init__(self, mocks: Mocks) -> None:
        super().__init__(mocks)
        self.requests: list[tuple[str, Any]] = []  # (urn, request)

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)
        self.requests.append((response.urn, request))
        return response


def run_program(
    program: Callable[[], Any],
    *,
    stack: str = "test",
    monitor: Callable[[Mocks], MockMonitor] | None = None,
) -> Recorder:
    """Run ``program`` under mocks and wait until every registration has been seen.

    ``monitor`` builds the mock monitor from the recorder (e.g. :class:`RecordingMonitor`);
    the recorder keeps it as ``recorder.monitor``.
    """
    recorder = Recorder()
    # The SDK runs on the thread's event loop; a test before this one (an async HTTP client,
    # say) may have closed it and left none.
    try:
        loop = asyncio.get_event_loop()
    except RuntimeError:
        loop = None
    if loop is None or loop.is_closed():
        asyncio.set_event_loop(asyncio.new_event_loop())
    # A fresh root stack resource per run: set_mocks keeps the previous one, and with it
    # every stack transformation earlier runs registered (they would all run again, once
    # more per earlier run, on every resource of this one).
    reset_options()
    recorder.monitor = monitor(recorder) if monitor is not None else None
    pulumi.runtime.set_mocks(
        recorder, project="servestack", stack=stack, preview=False, monitor=recorder.monitor
    )
    result: dict[str, Any] = {}

    @pulumi.runtime.test
    def _run() -> Any:
        def record(args: pulumi.ResourceTransformationArgs) -> None:
            recorder.transform(args)

        pulumi.runtime.register_stack_transformation(record)
        result["value"] = program()
        return pulumi.Output.from_input(1)

    _run()
    return recorder
