#!/usr/bin/env bash
# Build Prometheus' server and promtool from the Go module pinned in tools/prometheus,
# cache them outside the repo, and point .prometheus-bin at the cached bin dir.
#
#   tools/build-prometheus.sh            # build (or reuse the cache) and link .prometheus-bin
#   tools/build-prometheus.sh --force    # rebuild even if the cache entry is complete
#
# Binaries (one bin dir):
#   prometheus   github.com/prometheus/prometheus/cmd/prometheus  (HTTP API; no web UI assets)
#   promtool     github.com/prometheus/prometheus/cmd/promtool
#
# The server is built without the `builtinassets` tag: the React UI is not embedded
# (its pages answer 404/500), the HTTP API (/api/v1/...) and /metrics work as usual.
#
# Cache: ${SERVESTACK_CACHE:-$HOME/.cache/servestack}/prometheus/<hash> (tools/lib/build-cache.sh).
set -euo pipefail

# Version stamped into the binaries. Keep in step with tools/prometheus/go.mod:
# module version v0.3MM.P is Prometheus release 3.MM.P.
PROM_MODULE=v0.316.0
PROM_VERSION=3.16.0

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NAME=prometheus
LINK="$ROOT/.prometheus-bin"
BINS=(prometheus promtool)
MODULES=(prometheus)
# shellcheck source=tools/lib/build-cache.sh
. "$ROOT/tools/lib/build-cache.sh"
build_parse_args "$@"
MOD="$TOOLS/prometheus"

# 2-core machines: at most 2 compile jobs (another large Go build may run beside this one).
BUILD_FLAGS=(-p "${PROMETHEUS_BUILD_JOBS:-2}" -trimpath -tags netgo,osusergo)

build_begin "$FORCE" && exit 0

# The pinned module must be the one this script stamps.
got_mod="$(cd "$MOD" && go list -m -f '{{.Version}}' github.com/prometheus/prometheus)"
[ "$got_mod" = "$PROM_MODULE" ] || {
  echo "prometheus: tools/prometheus pins $got_mod, this script stamps $PROM_MODULE" >&2
  exit 1
}

echo "prometheus: building $HASH (Prometheus $PROM_VERSION; cold builds take several minutes)"

# Build date = the module's publication time, so the stamp does not change between rebuilds.
MOD_TIME="$(cd "$MOD" && go mod download -json github.com/prometheus/prometheus |
  python3 -c 'import json,sys; print(json.load(sys.stdin).get("Time", ""))')"
BUILD_DATE="$(date -u -d "${MOD_TIME:-1970-01-01T00:00:00Z}" +%Y%m%d-%H:%M:%S)"
V=github.com/prometheus/common/version
LDFLAGS="-s -w -X $V.Version=$PROM_VERSION -X $V.Revision=module-$PROM_MODULE"
LDFLAGS+=" -X $V.Branch=HEAD -X $V.BuildUser=servestack -X $V.BuildDate=$BUILD_DATE"

# One go build for both commands: their shared packages are compiled once.
(cd "$MOD" && go build "${BUILD_FLAGS[@]}" -ldflags "$LDFLAGS" -o "$STAGE/bin/" \
  github.com/prometheus/prometheus/cmd/prometheus \
  github.com/prometheus/prometheus/cmd/promtool)

# Sanity check, then publish the cache entry atomically.
for b in "${BINS[@]}"; do
  got="$(first_line "$STAGE/bin/$b" --version)"
  case "$got" in
    *"version $PROM_VERSION "*) ;;
    *) echo "prometheus: $b --version says '$got', want $PROM_VERSION" >&2; exit 1 ;;
  esac
done
build_publish
