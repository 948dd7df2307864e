"""The upstream CRDs of the cache entry: applied server-side, then waited Established."""

from __future__ import annotations

import calendar
import concurrent.futures
import json
import time
from pathlib import Path

from .api import request
from .common import ClusterError, ClusterInfo

FIELD_MANAGER = "servestack-cluster"


def _apply_crds(info: ClusterInfo, crd_dir: Path) -> list[str]:
    index = json.loads((crd_dir / "index.json").read_text())

    def apply(item: dict[str, str]) -> str:
        name = item["name"]
        body = (crd_dir / item["file"]).read_text()
        path = (
            f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}"
            f"?fieldManager={FIELD_MANAGER}&force=true"
        )
        for attempt in range(5):
            status, out = request(
                info, "PATCH", path, body, content_type="application/apply-patch+yaml", timeout=60
            )
            if status in (200, 201):
                if out.get("metadata", {}).get("name") != name:
                    raise ClusterError(f"CRD {name}: server returned {out.get('metadata')}")
                return name
            if status in (409, 429, 500, 503) and attempt < 4:
                time.sleep(0.5 * (attempt + 1))
                continue
            raise ClusterError(f"apply CRD {name}: HTTP {status}: {str(out)[:500]}")
        raise AssertionError("unreachable")

    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(apply, index))


def _crds_established(info: ClusterInfo, names: list[str], nudge_after: float = 3.0) -> bool:
    """All `names` Established. A CRD whose names are accepted but that is not Established
    `nudge_after` seconds after its creation gets an annotation touched: the API server's
    establishing controller drops its work item when its status update meets a conflict
    (another status controller wrote first) and only retries on the CRD's next update event,
    so without a touch such a CRD can stay "Installing" forever."""
    status, out = request(info, "GET", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions")
    if status != 200:
        return False
    established: set[str] = set()
    now = time.time()
    for item in out.get("items") or []:
        meta = item["metadata"]
        conds = {
            c.get("type"): c.get("status")
            for c in (item.get("status") or {}).get("conditions") or []
        }
        if conds.get("Established") == "True":
            established.add(meta["name"])
            continue
        created = calendar.timegm(time.strptime(meta["creationTimestamp"], "%Y-%m-%dT%H:%M:%SZ"))
        if conds.get("NamesAccepted") == "True" and now - created > nudge_after:
            request(
                info,
                "PATCH",
                f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{meta['name']}",
                {"metadata": {"annotations": {"servestack.io/establish-nudge": str(now)}}},
                content_type="application/merge-patch+json",
            )
    return set(names) <= established
