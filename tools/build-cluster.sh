#!/usr/bin/env bash
# Build the local Kubernetes control plane used by tools/cluster.py from the Go modules pinned
# under tools/, cache it outside the repo, and point .cluster-bin at the cached bin dir.
#
#   tools/build-cluster.sh            # build (or reuse the cache) and link .cluster-bin
#   tools/build-cluster.sh --force    # rebuild even if the cache entry is complete
#
# Cache entry ${SERVESTACK_CACHE:-$HOME/.cache/servestack}/cluster/<hash>/:
#   bin/    etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok  (tools/cluster)
#   crds/   upstream CRD manifests, one file per CRD, and index.json         (tools/crds)
#   kwok/   kwok Stages: the module's stock "fast" stages (node initialize, node heartbeat
#           with lease, pod ready, pod complete, pod delete), pod-ready narrowed so that it
#           never matches a never-ready pod, plus our pod-never-ready Stage (written below)
# <hash> covers this script, the go.mod/go.sum/*.go files of tools/cluster and tools/crds
# and the Go toolchain (go env GOVERSION GOOS GOARCH). .cluster-bin links to <hash>/bin; the
# crds/ and kwok/ dirs are found beside it (.cluster-bin/../crds).
set -euo pipefail

# Versions stamped into / checked against the binaries. Keep in step with tools/cluster/go.mod.
KUBE_VERSION=v1.36.3
ETCD_VERSION=3.6.16
KWOK_VERSION=0.8.0
BUILD_DATE=2026-01-01T00:00:00Z   # fixed, so that identical inputs give identical binaries

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NAME=cluster
LINK="$ROOT/.cluster-bin"
BINS=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok)
MODULES=(cluster crds)
extra_complete() { [ -f "$OUT/crds/index.json" ] && [ -d "$OUT/kwok" ]; }
# shellcheck source=tools/lib/build-cache.sh
. "$ROOT/tools/lib/build-cache.sh"
build_parse_args "$@"

# 2-core machines: at most 2 compile jobs (each takes up to ~2 GB).
BUILD_FLAGS=(-p "${CLUSTER_BUILD_JOBS:-2}" -trimpath -tags grpcnotrace)

build_begin "$FORCE" && exit 0
echo "cluster: building $HASH (a cold build takes ~10 CPU-minutes)"
mkdir -p "$STAGE/crds" "$STAGE/kwok"

# 1. The five binaries in one go build (shared packages compile once).
KV="k8s.io/component-base/version"
KMINOR="${KUBE_VERSION#v1.}"; KMINOR="${KMINOR%%.*}"
LDFLAGS="-s -w -X $KV.gitVersion=$KUBE_VERSION -X $KV.gitMajor=1 -X $KV.gitMinor=$KMINOR"
LDFLAGS+=" -X $KV.gitTreeState=clean -X $KV.buildDate=$BUILD_DATE"
LDFLAGS+=" -X k8s.io/client-go/pkg/version.gitVersion=$KUBE_VERSION"
LDFLAGS+=" -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=$KMINOR"
echo "cluster: go build etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok"
(cd "$TOOLS/cluster" &&
  go build "${BUILD_FLAGS[@]}" -ldflags "$LDFLAGS" -o "$STAGE/bin/" \
    go.etcd.io/etcd/server/v3 \
    k8s.io/kubernetes/cmd/kube-apiserver \
    k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler \
    sigs.k8s.io/kwok/cmd/kwok)
# etcd's main package is the module root go.etcd.io/etcd/server/v3: go names the binary "server".
mv "$STAGE/bin/server" "$STAGE/bin/etcd"

got="$(first_line "$STAGE/bin/kube-apiserver" --version)"
[ "$got" = "Kubernetes $KUBE_VERSION" ] || { echo "cluster: kube-apiserver --version is '$got'" >&2; exit 1; }
got="$(first_line "$STAGE/bin/etcd" --version)"
[ "$got" = "etcd Version: $ETCD_VERSION" ] || { echo "cluster: etcd --version is '$got', want $ETCD_VERSION" >&2; exit 1; }
got="$(first_line "$STAGE/bin/kwok" --version)"
case "$got" in *"$KWOK_VERSION"*) ;; *) echo "cluster: kwok --version is '$got', want $KWOK_VERSION" >&2; exit 1 ;; esac

# 2. Upstream CRDs from the module zips pinned (by go.sum) in tools/crds. `go mod download`
#    with no arguments fetches exactly the required modules and checks them against go.sum.
echo "cluster: CRDs"
(cd "$TOOLS/crds" && go mod download -json) > "$STAGE/crds/.modules.json"
python3 - "$STAGE/crds" <<'PY'
"""Split the upstream CRD manifests into one file per CRD and write index.json."""
import json
import re
import sys
from pathlib import Path

out = Path(sys.argv[1])
text = (out / ".modules.json").read_text()
mods = {}
for chunk in re.split(r"(?m)^}\s*$", text):
    if chunk.strip():
        m = json.loads(chunk + "}")
        if m.get("Error"):
            sys.exit(f"cluster: go mod download {m['Path']}: {m['Error']}")
        mods[m["Path"]] = m
(out / ".modules.json").unlink()

# (module, path inside the zip, expected number of CRDs)
SOURCES = [
    ("istio.io/api", "kubernetes/customresourcedefinitions.gen.yaml", 15),
    ("github.com/kedacore/keda/v2", "config/crd/bases", 6),
    ("sigs.k8s.io/karpenter", "pkg/apis/crds", 4),
    ("github.com/prometheus-operator/prometheus-operator", "example/prometheus-operator-crd", 10),
]


def field(doc: str, block: str, key: str) -> str | None:
    """The scalar `key` directly under the top-level mapping `block` (two-space indent)."""
    inside = False
    for line in doc.splitlines():
        if line and not line[0].isspace() and not line.startswith("#"):
            inside = line.rstrip() == f"{block}:"
            continue
        m = re.fullmatch(rf"  {key}:\s*['\"]?([a-z0-9.-]+)['\"]?\s*", line) if inside else None
        if m:
            return m.group(1)
    return None


index = []
for module, rel, want in SOURCES:
    src = Path(mods[module]["Dir"]) / rel
    files = sorted(src.glob("*.yaml")) if src.is_dir() else [src]
    found = 0
    for f in files:
        for doc in re.split(r"(?m)^---\s*$", f.read_text()):
            if not re.search(r"(?m)^kind:\s*CustomResourceDefinition\s*$", doc):
                continue
            name, group = field(doc, "metadata", "name"), field(doc, "spec", "group")
            if not name or not group or not name.endswith("." + group):
                sys.exit(f"cluster: cannot read the name/group of a CRD in {f}")
            dest = out / f"{name}.yaml"
            if dest.exists():
                sys.exit(f"cluster: CRD {name} twice")
            dest.write_text(doc.strip("\n") + "\n")
            index.append({
                "name": name,
                "group": group,
                "file": dest.name,
                "module": f"{module}@{mods[module]['Version']}",
                "source": rel if src.is_file() else f"{rel}/{f.name}",
            })
            found += 1
    if found != want:
        sys.exit(f"cluster: {module}/{rel}: {found} CRDs, expected {want}")
(out / "index.json").write_text(json.dumps(index, indent=1) + "\n")
print(f"cluster: {len(index)} CRDs staged")
PY

# 3. kwok Stages. The stock "fast" set from the kwok module, with one change: pod-ready gets a
#    selector term so that it never matches a pod marked never-ready (kwok picks at random
#    among matching Stages, so the two must not overlap). A pod is marked never-ready when one
#    of its containers' image contains "never-ready" or it has the label
#    servestack.io/test-never-ready=true; such a pod becomes Running with Ready=False forever.
echo "cluster: kwok stages"
NEVER_READY='[(.spec.containers[].image | contains("never-ready")), (.metadata.labels["servestack.io/test-never-ready"] == "true")] | any'
NEVER_READY_SQ="${NEVER_READY//\'/\'\'}"   # as a single-quoted YAML scalar
KWOK_DIR="$(cd "$TOOLS/cluster" && go mod download sigs.k8s.io/kwok && go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)"
KS="$KWOK_DIR/kustomize/stage"
install -m 0644 "$KS/node/fast/node-initialize.yaml" "$STAGE/kwok/node-initialize.yaml"
install -m 0644 "$KS/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml" "$STAGE/kwok/node-heartbeat-with-lease.yaml"
install -m 0644 "$KS/pod/fast/pod-complete.yaml" "$STAGE/kwok/pod-complete.yaml"
install -m 0644 "$KS/pod/fast/pod-delete.yaml" "$STAGE/kwok/pod-delete.yaml"
python3 - "$KS/pod/fast/pod-ready.yaml" "$STAGE/kwok/pod-ready.yaml" "$NEVER_READY" <<'PY'
import sys
src, dst, expr = sys.argv[1:4]
lines = open(src).read().splitlines(keepends=True)
anchor = [i for i, line in enumerate(lines) if line == "    matchExpressions:\n"]
if len(anchor) != 1 or "  name: pod-ready\n" not in lines:
    sys.exit("cluster: kwok pod-ready.yaml changed shape; update tools/build-cluster.sh")
key = expr.replace("'", "''")
extra = [
    "    # servestack: never a pod marked never-ready (see pod-never-ready.yaml)\n",
    f"    - key: '{key}'\n",
    "      operator: 'NotIn'\n",
    "      values:\n",
    "      - 'true'\n",
]
lines[anchor[0] + 1:anchor[0] + 1] = extra
open(dst, "w").write("".join(lines))
PY
cat > "$STAGE/kwok/pod-never-ready.yaml" <<EOF
# servestack: a pod marked never-ready (an image containing "never-ready", or the label
# servestack.io/test-never-ready=true) is started but its readiness never passes: phase
# Running, containers started, Ready/ContainersReady False. No other Stage matches it
# afterwards (pod-ready wants phase Pending and excludes it), so it stays like that until it
# is deleted (pod-delete) or, for a Job's pod, completed (pod-complete).
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: pod-never-ready
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: 'DoesNotExist'
    - key: '.status.phase'
      operator: 'In'
      values:
      - 'Pending'
    - key: '${NEVER_READY_SQ}'
      operator: 'In'
      values:
      - 'true'
  next:
    statusTemplate: |
      {{ \$now := Now }}
      conditions:
      - lastTransitionTime: {{ \$now | Quote }}
        status: "True"
        type: Initialized
      - lastTransitionTime: {{ \$now | Quote }}
        status: "False"
        type: Ready
        reason: ContainersNotReady
        message: 'servestack never-ready pod: readiness probe never succeeds'
      - lastTransitionTime: {{ \$now | Quote }}
        status: "False"
        type: ContainersReady
        reason: ContainersNotReady
        message: 'servestack never-ready pod: readiness probe never succeeds'
      containerStatuses:
      {{ range .spec.containers }}
      - image: {{ .image | Quote }}
        name: {{ .name | Quote }}
        ready: false
        started: true
        restartCount: 0
        state:
          running:
            startedAt: {{ \$now | Quote }}
      {{ end }}
      {{ with NodeIPsWith .spec.nodeName }}
      hostIP: {{ index . 0 | Quote }}
      {{ end }}
      {{ with PodIPsWith .spec.nodeName ( or .spec.hostNetwork false ) ( or .metadata.uid "" ) ( or .metadata.name "" ) ( or .metadata.namespace "" ) }}
      podIP: {{ index . 0 | Quote }}
      podIPs:
      {{ range . }}
      - ip: {{ . | Quote }}
      {{ end }}
      {{ end }}
      phase: Running
      startTime: {{ \$now | Quote }}
EOF

build_publish
