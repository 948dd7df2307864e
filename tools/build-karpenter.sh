#!/usr/bin/env bash
# Build Karpenter with its kwok cloud provider from the Go module pinned in tools/karpenter,
# cache it outside the repo, and point .karpenter-bin at the cached bin dir. tools/cluster.py
# starts it next to the local control plane when a stack's pools use provider karpenter.
#
#   tools/build-karpenter.sh            # build (or reuse the cache) and link .karpenter-bin
#   tools/build-karpenter.sh --force    # rebuild even if the cache entry is complete
#
# Cache entry ${SERVESTACK_CACHE:-$HOME/.cache/servestack}/karpenter/<hash>/ (tools/lib/build-cache.sh):
#   bin/karpenter   sigs.k8s.io/karpenter/kwok, built with one change (step 1 below): its
#                   metrics and health-probe servers bind 127.0.0.1:<port> instead of the
#                   stock ":<port>" (every interface).
#   crds/           the kwok provider's node class CRD (KWOKNodeClass) from the same module.
#                   NodePool and NodeClaim come with the cluster build (tools/crds pins the
#                   same Karpenter version; a unit test checks that).
set -euo pipefail

# Version stamped into the binary. Keep in step with tools/karpenter/go.mod. v1.14.1 is the
# newest release this machine's Go builds (v1.14.3 and later need Go 1.27).
KARPENTER_VERSION=v1.14.1

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NAME=karpenter
LINK="$ROOT/.karpenter-bin"
BINS=(karpenter)
MODULES=(karpenter)
extra_complete() { [ -f "$OUT/crds/karpenter.kwok.sh_kwoknodeclasses.yaml" ]; }
# shellcheck source=tools/lib/build-cache.sh
. "$ROOT/tools/lib/build-cache.sh"
build_parse_args "$@"
MOD="$TOOLS/karpenter"

# 2-core machines: at most 2 compile jobs.
BUILD_FLAGS=(-p "${KARPENTER_BUILD_JOBS:-2}" -trimpath -tags grpcnotrace)

build_begin "$FORCE" && exit 0

got_mod="$(cd "$MOD" && go list -m -f '{{.Version}}' sigs.k8s.io/karpenter)"
[ "$got_mod" = "$KARPENTER_VERSION" ] || {
  echo "karpenter: tools/karpenter pins $got_mod, this script stamps $KARPENTER_VERSION" >&2
  exit 1
}
echo "karpenter: building $HASH (Karpenter $KARPENTER_VERSION, kwok provider; a cold build takes ~4 CPU-minutes)"
mkdir -p "$STAGE/crds"
SRC="$(cd "$MOD" && go mod download sigs.k8s.io/karpenter && go list -m -f '{{.Dir}}' sigs.k8s.io/karpenter)"

# 1. Loopback only. The operator formats both listen addresses as ":%d". The build uses a
#    copy of the pinned module whose pkg/operator/operator.go says "127.0.0.1:%d" instead,
#    swapped in by a go.work replace (go build -overlay refuses files in the module cache);
#    every other file and every dependency are exactly those go.sum pins. Any other count
#    means upstream changed shape: fail rather than build a binary that listens wide.
cp -r "$SRC" "$STAGE/src" && chmod -R u+w "$STAGE/src"
python3 - "$STAGE/src/pkg/operator/operator.go" <<'PY'
import sys
from pathlib import Path

src = Path(sys.argv[1])
text = src.read_text()
stock, loopback = 'fmt.Sprintf(":%d", ', 'fmt.Sprintf("127.0.0.1:%d", '
if text.count(stock) != 2 or "MetricsPort" not in text or "HealthProbePort" not in text:
    sys.exit(f"karpenter: {src} changed shape (want 2 x {stock!r}); update tools/build-karpenter.sh")
src.write_text(text.replace(stock, loopback))
PY
cat > "$STAGE/go.work" <<EOF
go $(cd "$MOD" && go list -m -f '{{.GoVersion}}')
use $MOD
replace sigs.k8s.io/karpenter $KARPENTER_VERSION => $STAGE/src
EOF

# 2. The binary.
LDFLAGS="-s -w -X sigs.k8s.io/karpenter/pkg/operator.Version=$KARPENTER_VERSION"
(cd "$MOD" && GOWORK="$STAGE/go.work" go build "${BUILD_FLAGS[@]}" -ldflags "$LDFLAGS" \
  -o "$STAGE/bin/karpenter" sigs.k8s.io/karpenter/kwok)
rm -rf "$STAGE/src" "$STAGE/go.work" "$STAGE/go.work.sum"
# Sanity check: it runs and knows the instance types flag servestack relies on.
help="$("$STAGE/bin/karpenter" --help 2>&1 || true)"
case "$help" in *instance-types-file-path*) ;; *)
  echo "karpenter: 'karpenter --help' does not list --instance-types-file-path" >&2; exit 1 ;;
esac

# 3. The kwok provider's node class CRD.
install -m 0644 "$SRC/kwok/apis/crds/karpenter.kwok.sh_kwoknodeclasses.yaml" "$STAGE/crds/"

build_publish
