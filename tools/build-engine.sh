#!/usr/bin/env bash
# Build the Pulumi engine binaries from the Go modules pinned under tools/, cache them
# outside the repo, and point .engine/bin at the cached bin dir.
#
#   tools/build-engine.sh            # build (or reuse the cache) and link .engine/bin
#   tools/build-engine.sh --force    # rebuild even if the cache entry is complete
#
# Binaries (all in one bin dir, put it first on PATH):
#   pulumi                       tools/engine     (github.com/pulumi/pulumi/pkg/v3/cmd/pulumi)
#   pulumi-language-python       tools/langhost   (github.com/pulumi/pulumi/sdk/python/cmd/pulumi-language-python/v3)
#   pulumi-language-python-exec  script copied from the sdk/v3 module pinned in tools/engine
#   pulumi-resource-kubernetes   tools/k8s-provider (our main.go + provider/v4 module)
#
# Cache: ${SERVESTACK_CACHE:-$HOME/.cache/servestack}/engine/<hash> (tools/lib/build-cache.sh).
set -euo pipefail

# Versions stamped into the binaries. Keep in step with the go.mod files.
CLI_VERSION=v3.259.0        # = pkg/v3 and sdk/v3 in tools/engine/go.mod
LANGHOST_VERSION=v3.188.0   # = pkg/v3 and sdk/v3 in tools/langhost/go.mod
K8S_VERSION=4.25.0          # provider/v4 pseudo-version is the v4.25.0 release commit

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NAME=engine
LINK="$ROOT/.engine/bin"
BINS=(pulumi pulumi-language-python pulumi-language-python-exec pulumi-resource-kubernetes)
MODULES=(engine langhost k8s-provider)
# shellcheck source=tools/lib/build-cache.sh
. "$ROOT/tools/lib/build-cache.sh"
build_parse_args "$@"

# 2-core machines: at most 2 compile jobs; the provider's larger packages need a few GB.
export GOGC="${GOGC:-100}"
BUILD_FLAGS=(-p "${ENGINE_BUILD_JOBS:-2}" -trimpath -tags osusergo,grpcnotrace)

build_begin "$FORCE" && exit 0
echo "engine: building $HASH (cold builds take a while)"

# Module source dir in the module cache (downloading it if needed).
modpath() { (cd "$1" && go mod download "$2" && go list -m -f '{{.Dir}}' "$2"); }

# 1. pulumi CLI
echo "engine: pulumi $CLI_VERSION"
(cd "$TOOLS/engine" &&
  go build "${BUILD_FLAGS[@]}" -o "$STAGE/bin/pulumi" \
    -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$CLI_VERSION" \
    github.com/pulumi/pulumi/pkg/v3/cmd/pulumi)

# 2. Python language host + its exec script (the script is the one shipped with the CLI's sdk/v3)
echo "engine: pulumi-language-python ($LANGHOST_VERSION)"
(cd "$TOOLS/langhost" &&
  go build "${BUILD_FLAGS[@]}" -o "$STAGE/bin/pulumi-language-python" \
    -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$LANGHOST_VERSION" \
    github.com/pulumi/pulumi/sdk/python/cmd/pulumi-language-python/v3)
SDK_DIR="$(modpath "$TOOLS/engine" github.com/pulumi/pulumi/sdk/v3)"
install -m 0755 "$SDK_DIR/python/cmd/pulumi-language-python-exec" "$STAGE/bin/pulumi-language-python-exec"

# 3. Kubernetes provider: our main.go embeds the schema/mapping shipped in the module,
#    with the schema version set (what upstream's generate.go does).
echo "engine: pulumi-resource-kubernetes $K8S_VERSION"
PROV_DIR="$(modpath "$TOOLS/k8s-provider" github.com/pulumi/pulumi-kubernetes/provider/v4)"
SRC="$STAGE/k8s-provider"
mkdir -p "$SRC"
cp "$TOOLS/k8s-provider/go.mod" "$TOOLS/k8s-provider/go.sum" "$TOOLS/k8s-provider/main.go" "$SRC/"
python3 - "$PROV_DIR/cmd/pulumi-resource-kubernetes" "$SRC" "$K8S_VERSION" <<'PY'
import json, sys
src, dst, version = sys.argv[1:4]
with open(f"{src}/schema.json") as f:
    schema = json.load(f)
schema["version"] = version
with open(f"{dst}/schema-embed.json", "w") as f:
    json.dump(schema, f, separators=(",", ":"))
with open(f"{src}/terraform-mapping.json") as f:
    mapping = json.load(f)
with open(f"{dst}/terraform-mapping-embed.json", "w") as f:
    json.dump(mapping, f, separators=(",", ":"))
PY
(cd "$SRC" && go build "${BUILD_FLAGS[@]}" -o "$STAGE/bin/pulumi-resource-kubernetes" \
    -ldflags "-s -w -X github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version.Version=$K8S_VERSION" .)
rm -rf "$SRC"

# Sanity check, then publish the cache entry atomically.
got="$(first_line "$STAGE/bin/pulumi" version)"
[ "$got" = "$CLI_VERSION" ] || { echo "engine: pulumi version is '$got', want $CLI_VERSION" >&2; exit 1; }
build_publish
