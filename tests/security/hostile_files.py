"""Hostile stack files: what `servestack validate` does with each, how long it takes and
how much memory it needs.

Each file goes through the real command (`servestack validate FILE`) in a fresh child
process, which measures the command alone: wall and CPU time, and the growth of the
process's peak resident memory (`ru_maxrss`) over what the interpreter and servestack's
imports had already taken.

    python -m tests.security.hostile_files --report   # writes tests/security/RESULTS.md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests import REPO
from tests.security.bigstack import stack_text

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "RESULTS.md"
DEV = (REPO / "stacks" / "Pulumi.dev.yaml").read_text(encoding="utf-8")
HEAD = "config:\n  servestack:environment: development\n  servestack:cluster: {name: c}\n"


def billion_laughs() -> bytes:
    """Nine levels of nine aliases: 414 bytes that expand to 9^9 (387 million) strings."""
    lol = ",".join(['"lol"'] * 9)
    lines = [HEAD, f"  servestack:tags: &a [{lol}]\n"]
    for level in range(1, 9):
        refs = ",".join([f"*{chr(96 + level)}"] * 9)
        lines.append(f"  x{level}: &{chr(97 + level)} [{refs}]\n")
    return "".join(lines).encode()


def many_aliases() -> bytes:
    """1,001 aliases of one scalar: small, but past the alias budget."""
    refs = ", ".join(["*v"] * 1001)
    return f"{HEAD}  servestack:namespace: &v models\n  servestack:x: [{refs}]\n".encode()


def quadratic() -> bytes:
    """One anchored list of 10,000 values repeated by 20 aliases: 60 KB, 200,000 values."""
    values = ",".join(["1"] * 10_000)
    refs = ", ".join(["*big"] * 20)
    return f"{HEAD}  servestack:x: &big [{values}]\n  servestack:y: [{refs}]\n".encode()


def merge_bomb() -> bytes:
    """Merge keys (`<<`) that pull a growing mapping into the next, level after level."""
    lines = [HEAD, "  a0: &a0 {" + ", ".join(f"k{i}: {i}" for i in range(50)) + "}\n"]
    for level in range(1, 40):
        lines.append(f"  a{level}: &a{level} {{<<: *a{level - 1}, z{level}: [*a{level - 1}]}}\n")
    return "".join(lines).encode()


def recursive_alias() -> bytes:
    return f"{HEAD}  servestack:x: &loop [1, *loop]\n".encode()


def deep_block(depth: int) -> bytes:
    """Block mappings indented one space per level (two would pass the size limit first)."""
    body = "".join(f"{' ' * (i + 3)}k{i}:\n" for i in range(depth))
    return f"{HEAD}  servestack:x:\n{body}".encode()


def deep_flow(depth: int) -> bytes:
    return f"{HEAD}  servestack:x: {'[' * depth}{']' * depth}\n".encode()


def huge_file() -> bytes:
    """A valid file just over the 8 MiB default: 38,000 deployments."""
    return stack_text(38_000).encode()


def many_keys() -> bytes:
    """300,000 keys in one deployment's tags (under the size limit)."""
    keys = "".join(f"        k{i}: 1\n" for i in range(300_000))
    tags = "      tags:\n        team: nlp\n"
    return DEV.replace(tags, tags + keys, 1).encode()


def many_items(n: int = 1_000_000) -> bytes:
    """Deployments that are each just `1`: a problem per entry for validation to list."""
    return (HEAD + "  servestack:deployments:\n" + "    - 1\n" * n).encode()


def long_value() -> bytes:
    """A 7 MB namespace: one scalar almost as large as a file may be."""
    return DEV.replace("models-dev", "m" * 7_000_000, 1).encode()


def binary() -> bytes:
    return b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 64


def utf16(order: str) -> bytes:
    return (b"\xff\xfe" if order == "le" else b"\xfe\xff") + DEV.encode(f"utf-16-{order}")


def nul_bytes() -> bytes:
    return DEV.replace("models-dev", "models\x00dev", 1).encode()


@dataclass(frozen=True)
class Case:
    name: str
    what: str
    #: The file's bytes, or a path to read as it is (a device).
    content: Callable[[], bytes] | str
    #: Exit code of `servestack validate`, and a fragment of its output.
    code: int
    says: str


CASES = [
    Case(
        "billion-laughs",
        "414-byte alias bomb, 9 levels of 9",
        billion_laughs,
        1,
        "aliases expand to more than 100,000 values",
    ),
    Case("many-aliases", "1,001 aliases of one scalar", many_aliases, 1, "more than 1,000 aliases"),
    Case(
        "quadratic-aliases",
        "60 KB: a 10,000-value list aliased 20 times",
        quadratic,
        1,
        "aliases expand to more than 100,000 values",
    ),
    Case(
        "merge-key-bomb",
        "<< merges that double at each of 39 levels",
        merge_bomb,
        1,
        "aliases expand to more than 100,000 values",
    ),
    Case(
        "recursive-alias",
        "an alias inside its own anchor",
        recursive_alias,
        1,
        "alias *loop repeats a node that contains it",
    ),
    Case(
        "deep-block-2000",
        "block mappings nested 2,000 deep (2 MB)",
        lambda: deep_block(2_000),
        1,
        "nested deeper than 64 levels",
    ),
    Case(
        "deep-flow-5000",
        "[[[...]]] nested 5,000 deep (10 KB)",
        lambda: deep_flow(5_000),
        1,
        "nested deeper than 64 levels",
    ),
    Case(
        "deep-flow-1000000",
        "[[[...]]] nested 1,000,000 deep (2 MB)",
        lambda: deep_flow(1_000_000),
        1,
        "nested deeper than 64 levels",
    ),
    Case(
        "huge-file",
        "8.4 MB valid file, over the 8 MiB default",
        huge_file,
        1,
        "is over the 8,388,608-byte limit",
    ),
    Case(
        "endless-stream",
        "/dev/zero (a device: no size to check first)",
        "/dev/zero",
        1,
        "more than 8,388,608 bytes",
    ),
    Case(
        "many-keys",
        "300,000 keys in one mapping (5 MB)",
        many_keys,
        1,
        "more than 50,000 entries in one mapping",
    ),
    Case(
        "many-items",
        "1,000,000 bad deployments `- 1` (8 MB)",
        many_items,
        1,
        "more than 50,000 entries in one list",
    ),
    Case(
        "many-bad-items",
        "40,000 bad deployments (under the entry limit)",
        lambda: many_items(40_000),
        1,
        "... and 39,900 more problems (not listed)",
    ),
    Case("long-value", "a 7 MB scalar", long_value, 1, "namespace"),
    Case("binary", "PNG header and binary bytes", binary, 1, "not a UTF-8 text file"),
    Case(
        "utf16-le-bom",
        "the dev stack in UTF-16 LE with BOM",
        lambda: utf16("le"),
        1,
        "is UTF-16 text (byte order mark FF FE)",
    ),
    Case(
        "utf16-be-bom",
        "the dev stack in UTF-16 BE with BOM",
        lambda: utf16("be"),
        1,
        "is UTF-16 text (byte order mark FE FF)",
    ),
    Case(
        "utf8-bom",
        "the dev stack with a UTF-8 BOM",
        lambda: b"\xef\xbb\xbf" + DEV.encode(),
        0,
        "ok (development, 2 deployments",
    ),
    Case("nul-bytes", "a NUL byte inside a value", nul_bytes, 1, "is NUL: binary data"),
    Case(
        "crlf",
        "the dev stack with CRLF line ends",
        lambda: DEV.replace("\n", "\r\n").encode(),
        0,
        "ok (development, 2 deployments",
    ),
    Case(
        "tabs",
        "a tab used for indentation",
        lambda: f"{HEAD}  servestack:x:\n\t  a: 1\n".encode(),
        1,
        "not valid YAML",
    ),
    Case(
        "duplicate-keys",
        "a key given twice in one mapping",
        lambda: (HEAD + "  servestack:environment: production\n").encode(),
        1,
        "duplicate key 'servestack:environment'",
    ),
    Case(
        "python-tag",
        "!!python/object/apply:os.system",
        lambda: f"{HEAD}  servestack:x: !!python/object/apply:os.system [id]\n".encode(),
        1,
        "could not determine a constructor for the tag 'tag:yaml.org,2002:python/object/apply",
    ),
    Case(
        "two-documents",
        "two YAML documents",
        lambda: (HEAD + "---\n" + HEAD).encode(),
        1,
        "one YAML document, found a second",
    ),
    Case("empty", "an empty file", lambda: b"", 1, "cluster: required but missing"),
    Case(
        "scale-20000",
        "20,000 valid deployments (4.4 MB)",
        lambda: stack_text(20_000).encode(),
        0,
        "ok (staging, 20000 deployments",
    ),
]


def _materialise(case: Case, where: Path) -> str:
    if isinstance(case.content, str):
        return case.content
    path = where / f"Pulumi.{case.name}.yaml"
    path.write_bytes(case.content())
    return str(path)


def measure(case: Case, where: Path) -> dict[str, Any]:
    """Run `servestack validate` on the case's file in a child process; its measurements."""
    path = _materialise(case, where)
    size = os.path.getsize(path) if not isinstance(case.content, str) else None
    proc = subprocess.run(
        [sys.executable, "-m", "tests.security.hostile_files", "--child", path],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if proc.returncode != 0 or not proc.stdout.strip():
        how = f"signal {-proc.returncode}" if proc.returncode < 0 else f"exit {proc.returncode}"
        return {"case": case.name, "size": size, "crashed": how, "stderr": proc.stderr[-2000:]}
    data: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    data.update(case=case.name, size=size)
    return data


def _child(path: str) -> None:
    """In a fresh process: `servestack validate PATH`, measured."""
    import contextlib
    import io
    import resource
    import time

    from servestack import cli

    def peak_kb() -> int:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    base = peak_kb()
    out, err = io.StringIO(), io.StringIO()
    sys.argv = ["servestack", "validate", path]
    wall, cpu = time.perf_counter(), time.process_time()
    code: Any = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            cli.main()
        except SystemExit as exc:
            code = exc.code or 0
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    text = (out.getvalue() + err.getvalue()).strip()
    json.dump(
        {
            "code": code,
            "lines": len(text.splitlines()),
            "first": text.splitlines()[0][:300] if text else "",
            "last": text.splitlines()[-1][:300] if text else "",
            "traceback": "Traceback" in text,
            "output_bytes": len(text),
            "wall_s": round(wall, 3),
            "cpu_s": round(cpu, 3),
            "peak_mb": round(peak_kb() / 1024, 1),
            "growth_mb": round((peak_kb() - base) / 1024, 1),
        },
        sys.stdout,
    )
    print()


#: The scale figures: (label, child step). "ruamel" is the reader before issue 13.
SCALE_STEPS = (
    ("read, before: ruamel safe loader (pure Python)", "ruamel"),
    ("read, now: bounded reader on libyaml events", "read"),
    ("read + validate (parse_stack)", "validate"),
    ("read + validate both files + diff_configs", "diff"),
    ("`servestack diff OLD NEW` (the whole command)", "cli-diff"),
)


def _scale_child(step: str, old: str, new: str) -> None:
    import contextlib
    import io
    import time

    from servestack import cli
    from servestack.config.validation import parse_stack, read_stack_file
    from servestack.review.diff import diff_configs

    wall, cpu = time.perf_counter(), time.process_time()
    if step == "ruamel":
        from ruamel.yaml import YAML

        YAML(typ="safe", pure=True).load(Path(new).read_text(encoding="utf-8"))
    elif step == "read":
        read_stack_file(new)
    elif step == "validate":
        parse_stack(read_stack_file(new))
    elif step == "diff":
        diff_configs(parse_stack(read_stack_file(old)), parse_stack(read_stack_file(new)))
    else:
        sys.argv = ["servestack", "diff", old, new]
        with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
            cli.main()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(json.dumps({"wall_s": round(wall, 2), "cpu_s": round(cpu, 2)}))


def scale_rows(n: int = 20_000) -> list[str]:
    with tempfile.TemporaryDirectory() as tmp:
        old, new = Path(tmp) / "Pulumi.old.yaml", Path(tmp) / "Pulumi.new.yaml"
        old.write_text(stack_text(n), encoding="utf-8")
        new.write_text(stack_text(n, replicas_of={5: 3, n - 1: 2}), encoding="utf-8")
        rows = []
        for label, step in SCALE_STEPS:
            proc = subprocess.run(
                [sys.executable, "-m", "tests.security.hostile_files", "--scale-child", step,
                 str(old), str(new)],
                cwd=REPO, capture_output=True, text=True, timeout=3600, check=True,
            )  # fmt: skip
            m = json.loads(proc.stdout.strip().splitlines()[-1])
            rows.append(f"| {label} | {m['wall_s']} | {m['cpu_s']} |")
        return [
            "",
            f"## Scale: {n:,} deployments ({old.stat().st_size / 1e6:.1f} MB per file)",
            "",
            "| step | wall s | CPU s |",
            "| --- | ---: | ---: |",
            *rows,
        ]


def report() -> str:
    with tempfile.TemporaryDirectory() as tmp:
        rows = [(c, measure(c, Path(tmp))) for c in CASES]
    lines = [
        "# Hostile stack files through `servestack validate`",
        "",
        "Generated by `python -m tests.security.hostile_files --report`; each file runs in a",
        "fresh process. Time is the command alone (wall and CPU); memory is the process's",
        "peak RSS, and how much the command grew it beyond the interpreter and imports.",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, load average "
        f"{', '.join(f'{x:.1f}' for x in os.getloadavg())} when this ran (other jobs share it;",
        "CPU time is the steadier figure).",
        "",
        "| input | size | exit | result (first line) | wall s | CPU s | peak MB | growth MB |",
        "| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: |",
    ]
    for case, m in rows:
        size = f"{m['size']:,}" if m.get("size") is not None else "stream"
        if "crashed" in m:
            row = f"| {case.name}: {case.what} | {size} | {m['crashed']} | crashed |"
            lines.append(row + " | | | |")
            continue
        first = m["first"].replace("|", "\\|")
        if "Pulumi." in first and ": " in first:
            first = first.split(": ", 1)[1]  # the temporary path
        more = f" (+{m['lines'] - 1} lines)" if m["lines"] > 1 else ""
        lines.append(
            f"| {case.name}: {case.what} | {size} | {m['code']} | {first[:160]}{more} "
            f"| {m['wall_s']} | {m['cpu_s']} | {m['peak_mb']} | {m['growth_mb']} |"
        )
    lines += scale_rows()
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--report", action="store_true", help=f"write {RESULTS.name}")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--scale-child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child)
        return
    if args.scale_child:
        _scale_child(*args.scale_child)
        return
    text = report()
    if args.report:
        RESULTS.write_text(text, encoding="utf-8")
    print(text, end="")


if __name__ == "__main__":
    main()
