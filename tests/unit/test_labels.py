"""Every servestack.io key is spelled once, in :mod:`servestack.contract.labels`."""

from __future__ import annotations

import re
from pathlib import Path

from servestack.contract import labels
from tests import REPO

#: A quoted ``servestack.io/...`` key (or a subdomain's, such as ``tags.servestack.io/``).
KEY = re.compile(r"""["']((?:[a-z0-9-]+\.)*servestack\.io/[A-Za-z0-9._-]*)["']""")
#: A key composed from the prefix (``f"{labels.PREFIX}/capacity"``).
COMPOSED = re.compile(r"\{(?:[a-z_]+\.)?PREFIX\}[^\"']*")
CONTRACT = {v for k, v in vars(labels).items() if k.isupper() and isinstance(v, str)}
PACKAGE = REPO / "components"


def keys(files: list[Path], pattern: re.Pattern[str] = KEY) -> set[tuple[str, str]]:
    return {
        (f.relative_to(REPO).as_posix(), key)
        for f in files
        for key in pattern.findall(f.read_text(encoding="utf-8"))
    }


def test_the_package_spells_no_key_outside_the_contract() -> None:
    files = [f for f in sorted(PACKAGE.rglob("*.py")) if f != PACKAGE / "contract" / "labels.py"]
    assert files and keys(files) | keys(files, COMPOSED) == set()


def test_the_local_cluster_tool_writes_and_reads_the_contracts_keys() -> None:
    # tools/cluster.py runs with the system python3 before any virtualenv exists (make
    # cluster), so it cannot import servestack and spells its keys out; this holds them to
    # the contract instead.
    tools = REPO / "tools"
    files = [tools / "cluster.py", *sorted((tools / "localcluster").rglob("*.py"))]
    found = keys([f for f in files if f.exists()])
    assert {labels.CAPACITY, labels.SYSTEM_POOL} <= {key for _, key in found}
    assert sorted((f, key) for f, key in found if key not in CONTRACT) == []
