#!/usr/bin/env bash
# Rehearse CI on a cold machine: a fresh clone of HEAD, every build cache empty (the
# servestack build cache, Go's module and build caches, pip's cache), then `.ci/run` and
# `make demo`, each timed. Warm caches hide races and missing steps (issue 18): run this
# whenever a build script, a go.mod or a pinned version changes.
#
#   tools/cold-rehearsal.sh [WORKDIR]     # default: a new folder under /tmp
#
# It needs only the network the builds need (the Go module proxy, the package index) and
# leaves the developer's own caches untouched.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORK="${1:-$(mktemp -d /tmp/servestack-cold.XXXXXX)}"
mkdir -p "$WORK"
export SERVESTACK_CACHE="$WORK/cache/servestack"
export GOMODCACHE="$WORK/cache/gomod"
export GOCACHE="$WORK/cache/gobuild"
export PIP_CACHE_DIR="$WORK/cache/pip"
export CI=true
git clone -q "$ROOT" "$WORK/clone"
cd "$WORK/clone"
step() {
  local name="$1"; shift
  local t0=$SECONDS
  echo "cold-rehearsal: $name"
  if "$@" > "$WORK/$name.log" 2>&1; then
    echo "cold-rehearsal: $name passed in $((SECONDS - t0)) s (log: $WORK/$name.log)"
  else
    echo "cold-rehearsal: $name FAILED after $((SECONDS - t0)) s (log: $WORK/$name.log)" >&2
    tail -n 40 "$WORK/$name.log" >&2
    exit 1
  fi
}
step ci bash .ci/run
step demo make demo
# Go marks its module cache read-only; make it removable.
chmod -R u+w "$WORK/cache" 2>/dev/null || true
echo "cold-rehearsal: done; remove $WORK when finished"
