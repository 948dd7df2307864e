"""The bounded stack-file reader, in process: the documents it builds are PyYAML's, each
limit refuses with one line naming the line of the file, and every reader of stack files
(validate, diff, ops, the program) goes through it."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from servestack.config import reader
from servestack.config.errors import ConfigError
from servestack.config.validation import load_stack_config, read_stack_file
from servestack.program.stack import check_stack_file
from tests import REPO

SMALL = reader.Limits(max_bytes=1_000, max_depth=4, max_aliases=3, max_alias_nodes=10)

VALID = [
    pytest.param("", id="empty"),
    pytest.param("# only a comment\n", id="comment"),
    pytest.param("a: 1\nb: [1, 2.5, -3, 0x1f, 0o17, 1_000]\n", id="numbers"),
    pytest.param("a: yes\nb: Off\nc: ~\nd: null\ne: 'yes'\nf: \"1\"\n", id="yaml-1.1-scalars"),
    pytest.param("t: 2024-01-02\nu: 2024-01-02T03:04:05Z\nb: !!binary aGk=\n", id="time-binary"),
    pytest.param("a: &x {k: 1, l: [1, 2]}\nb: *x\nc: [*x, *x]\n", id="aliases"),
    pytest.param("base: &b {x: 1, y: 2}\nm:\n  <<: *b\n  y: 3\n", id="merge"),
    pytest.param(
        "a: &a {x: 1, z: 1}\nb: &b {x: 2, y: 2}\nm: {<<: [*a, *b], w: 0}\n", id="merge-list"
    ),
    pytest.param("s: !!str 12\ni: !!int '7'\nf: !!float '1'\n", id="explicit-tags"),
    pytest.param("k: |\n  two\n  lines\nl: >\n  folded\n  text\n", id="block-scalars"),
    pytest.param("? complex key\n: value\n1: int key\n", id="explicit-key"),
    pytest.param("x: &s scalar\ny: *s\n", id="scalar-alias"),
    pytest.param((REPO / "stacks" / "Pulumi.prod.yaml").read_text(), id="prod-stack"),
]


@pytest.mark.parametrize("text", VALID)
def test_documents_are_pyyamls(text: str) -> None:
    assert reader.load_yaml(text) == yaml.safe_load(text)


def test_aliases_share_one_object_as_pyyaml_does() -> None:
    doc = reader.load_yaml("a: &x [1]\nb: *x\n")
    assert doc["a"] is doc["b"]


def _refusal(text: str, limits: reader.Limits = SMALL) -> str:
    with pytest.raises(ConfigError) as info:
        reader.load_yaml(text, limits, source="f.yaml")
    message = str(info.value)
    assert len(message.splitlines()) == 1
    return message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "a: [[[[1]]]]\n",
            "f.yaml: line 1: nested deeper than 4 levels (a stack file needs about 6): refused",
            id="depth",
        ),
        pytest.param(
            "a: &x 1\nb: [*x, *x, *x, *x]\n",
            "f.yaml: line 2: more than 3 aliases (*name): refused",
            id="alias-count",
        ),
        pytest.param(
            "a: &x [1, 2, 3, 4, 5, 6]\nb: *x\nc: *x\n",
            "f.yaml: line 3: aliases expand to more than 10 values (an alias bomb?): refused",
            id="alias-expansion",
        ),
        pytest.param(
            "a: &x [1, *x]\n",
            "f.yaml: line 1: alias *x repeats a node that contains it",
            id="recursive",
        ),
        pytest.param("a: *nope\n", "f.yaml: line 1: alias *nope names no anchor (&nope) before it"),
        pytest.param("a: &x 1\nb: &x 2\n", "f.yaml: line 2: anchor &x is defined twice"),
        pytest.param("a: 1\nb: 2\na: 3\n", "f.yaml: line 3: duplicate key 'a' in one mapping"),
        pytest.param(
            "? [1]\n: 2\n",
            "f.yaml: line 1: a mapping key must be a plain value, not a collection",
            id="collection-key",
        ),
        pytest.param(
            "a: 1\n---\nb: 2\n",
            "f.yaml: line 2: a stack file holds one YAML document, found a second",
            id="two-documents",
        ),
        pytest.param(
            "a: !!set {x}\n",
            "f.yaml: line 1: not valid YAML (could not determine a constructor for the tag "
            "'tag:yaml.org,2002:set')",
            id="set-tag",
        ),
        pytest.param(
            "a: !!python/name:os.system ''\n",
            "f.yaml: line 1: not valid YAML (could not determine a constructor for the tag "
            "'tag:yaml.org,2002:python/name:os.system')",
            id="python-tag",
        ),
        pytest.param(
            "a: {<<: 1}\n",
            "f.yaml: line 1: << merges a mapping or a list of mappings only",
            id="merge-scalar",
        ),
        pytest.param(
            "a: x\n\tb: y\n",
            "f.yaml: line 2: not valid YAML (while scanning a plain scalar: found a tab "
            "character that violates indentation)",
            id="tab",
        ),
        pytest.param(
            "a: '\x07'\n",
            "f.yaml: character 5: not valid YAML (unacceptable character #x0007: special "
            "characters are not allowed)",
            id="control-character",
        ),
        pytest.param(
            "a: " + "x" * 1_000,
            "f.yaml: the text is over the 1,000-byte limit for stack files (raise it with "
            "SERVESTACK_MAX_STACK_FILE_BYTES or servestack --max-file-bytes)",
            id="text-too-large",
        ),
    ],
)
def test_refusals_are_one_line_naming_the_line(text: str, expected: str) -> None:
    assert _refusal(text) == expected


def test_deep_nesting_is_refused_without_recursion() -> None:
    # libyaml's own composer recurses once per level and crashes the interpreter on this.
    text = "[" * 1_000_000 + "]" * 1_000_000
    limits = reader.Limits(max_bytes=len(text))
    assert "nested deeper than 64 levels" in _refusal(text, limits)


def test_the_defaults_allow_what_stack_files_do() -> None:
    text = "d: &d {cpu: 1, memory: 1Gi}\nitems:\n" + "".join(
        f"  - {{name: n{i}, resources: *d}}\n" for i in range(900)
    )
    doc = reader.load_yaml(text, reader.Limits())
    assert len(doc["items"]) == 900


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"\xff\xfea\x00:\x00", "is UTF-16 text (byte order mark FF FE): save it as UTF-8"),
        (b"\xfe\xff\x00a\x00:", "is UTF-16 text (byte order mark FE FF): save it as UTF-8"),
        (b"\xff\xfe\x00\x00a\x00\x00\x00", "is UTF-32 text (byte order mark FF FE 00 00)"),
        (b"a: b\x00c\n", "byte 5 is NUL: binary data, not a stack file"),
        (b"a: \xe9t\xe9\n", "not a UTF-8 text file"),
    ],
)
def test_encodings_are_refused_by_name(data: bytes, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        reader.decode(data, "f.yaml")
    assert str(info.value).startswith(f"f.yaml: {expected}")


def test_a_utf8_bom_and_crlf_are_read() -> None:
    text = reader.decode(b"\xef\xbb\xbfa: 1\r\nb: [x]\r\n")
    assert reader.load_yaml(text) == {"a": 1, "b": ["x"]}


def test_size_limit_is_checked_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "Pulumi.big.yaml"
    with path.open("wb") as fh:
        fh.truncate(10**12)  # a sparse terabyte: reading it would never end
    with pytest.raises(ConfigError) as info:
        read_stack_file(path)
    assert str(info.value) == (
        f"{path}: 1,000,000,000,000 bytes is over the 8,388,608-byte limit for stack files "
        "(raise it with SERVESTACK_MAX_STACK_FILE_BYTES or servestack --max-file-bytes)"
    )


def test_a_stream_is_not_read_past_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(reader.MAX_BYTES_ENV, "4096")
    with pytest.raises(ConfigError) as info:
        read_stack_file("/dev/zero")
    assert str(info.value) == (
        "/dev/zero: more than 4,096 bytes is over the 4,096-byte limit for stack files "
        "(raise it with SERVESTACK_MAX_STACK_FILE_BYTES or servestack --max-file-bytes)"
    )


def test_the_size_limit_is_configurable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "Pulumi.dev.yaml"
    path.write_text((REPO / "stacks" / "Pulumi.dev.yaml").read_text())
    size = path.stat().st_size
    monkeypatch.setenv(reader.MAX_BYTES_ENV, str(size - 1))
    with pytest.raises(ConfigError, match=f"{size:,} bytes is over the {size - 1:,}-byte"):
        load_stack_config(path)
    monkeypatch.setenv(reader.MAX_BYTES_ENV, str(size))
    assert load_stack_config(path).cluster.name == "dev-local"
    monkeypatch.setenv(reader.MAX_BYTES_ENV, "lots")
    with pytest.raises(ConfigError) as info:
        load_stack_config(path)
    assert str(info.value) == (
        "SERVESTACK_MAX_STACK_FILE_BYTES: 'lots' must be a positive number of bytes"
    )


def test_cli_flag_sets_the_limit_for_every_reader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from servestack.cli import app

    monkeypatch.delenv(reader.MAX_BYTES_ENV, raising=False)  # restored after the test
    path = tmp_path / "Pulumi.dev.yaml"
    path.write_text((REPO / "stacks" / "Pulumi.dev.yaml").read_text())
    res = CliRunner().invoke(app, ["--max-file-bytes", "100", "validate", str(path)])
    assert res.exit_code == 1
    size = path.stat().st_size
    assert res.stderr == (
        f"{path}: {size:,} bytes is over the 100-byte limit for stack files (raise it with "
        "SERVESTACK_MAX_STACK_FILE_BYTES or servestack --max-file-bytes)\n"
    )
    # Set for the process, so the stack program that an operation starts sees it too.
    assert os.environ[reader.MAX_BYTES_ENV] == "100"


BOMB = "a: &a [1,1,1,1,1,1,1,1,1]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{','.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8)
)


def test_the_program_reads_its_stack_file_through_the_reader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "Pulumi.yaml").write_text("name: p\nruntime: python\nstackConfigDir: stacks\n")
    (tmp_path / "stacks").mkdir()
    stack_file = tmp_path / "stacks" / "Pulumi.hostile.yaml"
    nested = "".join(f"    {line}\n" for line in BOMB.splitlines())
    stack_file.write_text("config:\n  servestack:x:\n" + nested)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"aliases expand to more than 100,000 values"):
        check_stack_file("hostile")
    check_stack_file("absent")  # no file: nothing to read (the values are bounded below)


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"x": _nested(65)}, "x: nested deeper than 64 levels: refused"),
        ({"x": _nested(100_000)}, "x: nested deeper than 64 levels: refused"),
        (
            {"x": json.dumps(["v" * 1000] * 17_000)},
            "config of 17,068,000 characters is over the 8,388,608-byte limit",
        ),
    ],
    ids=["deep", "deeper-than-json-recursion", "too-large"],
)
def test_engine_config_is_decoded_within_the_limits(values: dict[str, Any], expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        reader.decode_engine_config(values, source="stack dev")
    assert str(info.value).startswith(f"stack dev: {expected}")


def test_engine_config_values_decode_as_before() -> None:
    values = {"a": '{"k": [1, 2]}', "b": "plain", "c": "[not json", "d": None}
    assert reader.decode_engine_config(values) == {
        "a": {"k": [1, 2]},
        "b": "plain",
        "c": "[not json",
        "d": None,
    }
