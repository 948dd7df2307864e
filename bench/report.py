"""Render bench/results.json as bench/RESULTS.md (the table quoted in notes)."""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent


def render(results: dict) -> str:
    lines = [
        "# Benchmark results",
        "",
        f"Machine: {results['machine']}; date: {results['date']}.",
        "",
        "All ratios are components / hand-written, measured pair by pair in the same run.",
        "",
        "| N | mocks ratio | ms per deployment (mocks) | resources |",
        "|---|---|---|---|",
    ]
    for n, ratio in results["overhead_ratio"].items():
        lines.append(
            f"| {n} | {ratio} | {results['per_deployment_ms'][n]} | {results['resources'][n]} |"
        )
    if results.get("engine_ratio"):
        lines += [
            "",
            "Engine, render mode, local file backend. The last two columns repeat `up` with "
            "`PULUMI_SKIP_CHECKPOINTS=true`: the file backend rewrites the whole checkpoint "
            "after every step, so every extra step (each component is one) costs more as the "
            "stack grows.",
            "",
            "| N | up (s) comp / hand | ratio | preview (s) comp / hand | ratio "
            "| up, no intermediate checkpoints (s) | ratio |",
            "|---|---|---|---|---|---|---|",
        ]
        for n, ratio in results["engine_ratio"].items():
            c, h = results["engine"][n]["components"], results["engine"][n]["handwritten"]
            lines.append(
                f"| {n} | {c['up']} / {h['up']} | {ratio['up']} | {c['preview']} / "
                f"{h['preview']} | {ratio['preview']} | {c.get('up_skip_checkpoints')} / "
                f"{h.get('up_skip_checkpoints')} | {ratio.get('up_skip_checkpoints')} |"
            )
    lines += [
        "",
        f"`servestack diff` of two 1,000-deployment stacks: {results['diff_1000_s']} s",
        f"`servestack explain` of a 10,000-step preview: {results['explain_10000_s']} s",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    data = json.loads((HERE / "results.json").read_text())
    (HERE / "RESULTS.md").write_text(render(data))
    print(render(data))
