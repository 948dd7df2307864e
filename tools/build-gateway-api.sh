#!/usr/bin/env bash
# Stage the Gateway API's standard-channel CRDs (HTTPRoute, Gateway, GatewayClass, ...) from
# the Go module pinned in tools/gateway-api, cache them outside the repo, and point
# .gateway-api-bin at the entry (its bin/ is empty: nothing is compiled). tools/cluster.py
# applies them next to tools/build-cluster.sh's CRDs when the local cluster starts.
#
#   tools/build-gateway-api.sh            # stage (or reuse the cache) and link .gateway-api-bin
#   tools/build-gateway-api.sh --force    # stage again even if the cache entry is complete
#
# Cache entry ${SERVESTACK_CACHE:-$HOME/.cache/servestack}/gateway-api/<hash>/ (tools/lib/build-cache.sh):
#   crds/   one file per CRD of config/crd/standard/, and index.json (the cluster build's format)
# A cache of its own: the cluster build's hash covers tools/crds, and a new module there would
# rebuild every cluster binary. The local cluster has no Gateway controller: HTTPRoutes are
# validated against the CRD schema by the API server, and nothing programs or reports on them.
set -euo pipefail

GATEWAY_API_VERSION=v1.6.3
#: The standard channel's CRDs at that version (the validating admission policy file aside).
WANT=10

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NAME=gateway-api
LINK="$ROOT/.gateway-api-bin"
BINS=()
MODULES=(gateway-api)
extra_complete() { [ -f "$OUT/crds/index.json" ]; }
# shellcheck source=tools/lib/build-cache.sh
. "$ROOT/tools/lib/build-cache.sh"
build_parse_args "$@"
MOD="$TOOLS/gateway-api"

build_begin "$FORCE" && exit 0

mkdir -p "$STAGE/crds"
(cd "$MOD" && go mod download -json) > "$STAGE/crds/.modules.json"
python3 - "$STAGE/crds" "$GATEWAY_API_VERSION" "$WANT" <<'PY'
"""One file per standard-channel CRD and index.json, as tools/build-cluster.sh writes them."""
import json
import re
import sys
from pathlib import Path

out, version, want = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
module = json.loads((out / ".modules.json").read_text())
(out / ".modules.json").unlink()
if module.get("Error") or module.get("Version") != version:
    sys.exit(f"gateway-api: go mod download: {module.get('Error') or module.get('Version')}")
rel = "config/crd/standard"
index = []
for f in sorted((Path(module["Dir"]) / rel).glob("gateway.networking.k8s.io_*.yaml")):
    doc = f.read_text()
    if not re.search(r"(?m)^kind:\s*CustomResourceDefinition\s*$", doc):
        continue  # the safe-upgrades ValidatingAdmissionPolicy
    name = re.search(r"(?m)^  name:\s*(\S+)\s*$", doc)
    group = re.search(r"(?m)^  group:\s*(\S+)\s*$", doc)
    if not name or not group or not name[1].endswith("." + group[1]):
        sys.exit(f"gateway-api: cannot read the name/group of the CRD in {f}")
    dest = out / f"{name[1]}.yaml"
    dest.write_text(doc.strip("\n") + "\n")
    index.append({
        "name": name[1],
        "group": group[1],
        "file": dest.name,
        "module": f"{module['Path']}@{version}",
        "source": f"{rel}/{f.name}",
    })
if len(index) != want or "httproutes.gateway.networking.k8s.io" not in {i["name"] for i in index}:
    sys.exit(f"gateway-api: {rel}: {len(index)} CRDs, expected {want} with httproutes")
(out / "index.json").write_text(json.dumps(index, indent=1) + "\n")
print(f"gateway-api: {len(index)} CRDs staged")
PY

build_publish
