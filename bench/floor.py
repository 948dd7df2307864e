"""The engine's floor of a one-deployment operation (bench/fleet.py): a Pulumi program that
registers what a scoped update of one deployment registers (the provider, the namespace,
the node pools and the deployment, its autoscaler's ``maxReplicas`` set to
``BENCH_FLOOR_MAX``: one update step) and nothing else. It reads no stack outputs, exports
none, and parses a config of that one deployment. Run targeted at the deployment on a stack
of ``BENCH_FLOOR_N`` deployments, what it costs is the engine's own work for a stack that
size: load the checkpoint, carry every other resource over ("same"), write it once."""

from __future__ import annotations

import os

#: The deployment the operation and the floor touch.
NAME = "model-0001"


def main() -> None:
    # Imported here: bench/fleet.py reads NAME without loading the Pulumi SDK.
    import pulumi

    from bench.stacks import stack_raw
    from servestack.config.validation import parse_stack
    from servestack.manifests.render import render_stack
    from servestack.program import production
    from servestack.program.stack import build

    raw = stack_raw(int(os.environ["BENCH_FLOOR_N"]))
    raw["deployments"] = [d for d in raw["deployments"] if d["name"] == NAME]
    raw["deployments"][0]["autoscaling"]["maxReplicas"] = int(os.environ["BENCH_FLOOR_MAX"])
    config = parse_stack(raw, source="bench floor")
    stack = pulumi.get_stack()
    # The same protection as servestack's program gives these resources: no step but one.
    rendered = render_stack(config, stack, deployments={NAME})
    mine = [key for key, item in rendered.components.items() if item is not None]
    keys = production.protected(rendered, ())
    pulumi.runtime.register_stack_transformation(production.protect(keys, mine))
    build(config, stack)
