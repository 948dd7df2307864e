"""`servestack init`'s requirements.txt: servestack from where it was installed, and the
Pulumi SDKs pinned to the engine's versions."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import pytest
from packaging.requirements import Requirement

from servestack.engine.project import ENGINE_SDKS, requirements
from tests import REPO

WHEEL = "file:///home/me/dist/servestack-0.1.0-py3-none-any.whl"


@dataclass
class FakeDist:
    """The part of importlib.metadata.Distribution that requirements() reads."""

    version: str
    direct_url: dict[str, Any] | None = None

    def read_text(self, name: str) -> str | None:
        assert name == "direct_url.json"
        return None if self.direct_url is None else json.dumps(self.direct_url)


def test_engine_sdks_are_the_constraints_pins() -> None:
    pins = {}
    for line in (REPO / "tools" / "constraints.txt").read_text().splitlines():
        if m := re.fullmatch(r"([A-Za-z0-9_.-]+)==(\S+)", line.strip()):
            pins[m[1].lower().replace("_", "-")] = m[2]
    assert {name: pins[name] for name in ("pulumi", "pulumi-kubernetes")} == ENGINE_SDKS
    build = (REPO / "tools" / "build-engine.sh").read_text()
    assert f"CLI_VERSION=v{ENGINE_SDKS['pulumi']} " in build
    assert f"K8S_VERSION={ENGINE_SDKS['pulumi-kubernetes']} " in build


@pytest.mark.parametrize(
    ("dist", "comment", "line"),
    [
        (
            FakeDist("0.1.0", {"url": WHEEL, "archive_info": {}}),
            "# servestack 0.1.0, installed from this wheel",
            f"servestack @ {WHEEL}",
        ),
        (
            FakeDist("0.1.0", {"url": "file:///src/servestack", "dir_info": {"editable": True}}),
            "# servestack 0.1.0, installed from a directory",
            "servestack @ file:///src/servestack",
        ),
        (
            FakeDist(
                "0.1.0",
                {
                    "url": "https://git.example.com/servestack.git",
                    "vcs_info": {"vcs": "git", "commit_id": "abc123"},
                },
            ),
            "# servestack 0.1.0, installed from this source",
            "servestack @ git+https://git.example.com/servestack.git@abc123",
        ),
        (
            FakeDist("0.1.0"),
            "# servestack 0.1.0, installed from a package index; if yours is not this "
            "machine's pip index, replace the line with the wheel's path",
            "servestack>=0.1.0,<0.2",
        ),
        (
            FakeDist("1.4.2"),
            "# servestack 1.4.2, installed from a package index; if yours is not this "
            "machine's pip index, replace the line with the wheel's path",
            "servestack>=1.4.2,<2",
        ),
    ],
    ids=["wheel", "directory", "vcs", "index-0.x", "index-1.x"],
)
def test_servestack_comes_from_where_it_was_installed(
    dist: FakeDist, comment: str, line: str
) -> None:
    text = requirements(dist)
    assert text.splitlines() == [
        comment,
        line,
        "# The Pulumi SDKs at the versions of the engine servestack is tested with.",
        "pulumi==3.259.0",
        "pulumi-kubernetes==4.25.0",
    ]
    # Every line is a requirement pip reads (PEP 508) or a comment.
    for entry in text.splitlines():
        if not entry.startswith("#"):
            Requirement(entry)
