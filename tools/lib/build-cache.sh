# shellcheck shell=bash
# Sourced by tools/build-*.sh: the cache, lock and link steps every Go build shares.
#
# A build script sets, before sourcing this file:
#   NAME       cache folder and log prefix (engine, cluster, prometheus)
#   LINK       the repository link to the cached bin dir (e.g. $ROOT/.engine/bin)
#   BINS       the binaries that must exist for an entry to count as complete
#   MODULES    folders under tools/ whose go.mod, go.sum and *.go files the build reads
# and may define `extra_complete` (more files a complete entry must hold).
#
# Cache entry: ${SERVESTACK_CACHE:-$HOME/.cache/servestack}/$NAME/<hash>, where <hash>
# covers the calling script, this file, the MODULES' files and the Go toolchain.
# `build_begin` returns 0 when the entry is already complete (after linking it), 1 when the
# caller must build into $STAGE and then call `build_publish`.

TOOLS="$ROOT/tools"
CACHE_ROOT="${SERVESTACK_CACHE:-$HOME/.cache/servestack}/$NAME"

export CGO_ENABLED=0
export GOFLAGS="-mod=readonly -buildvcs=false"

build_input_hash() {
  {
    go env GOVERSION GOOS GOARCH
    cat "$TOOLS/build-$NAME.sh" "$TOOLS/lib/build-cache.sh"
    (cd "$TOOLS" && find "${MODULES[@]}" -maxdepth 1 -type f \
        \( -name go.mod -o -name go.sum -o -name '*.go' \) | LC_ALL=C sort) |
      while read -r f; do printf '\n== %s\n' "$f"; cat "$TOOLS/$f"; done
  } | sha256sum | cut -c1-16
}

build_complete() {
  [ -f "$OUT/.complete" ] || return 1
  local b
  for b in "${BINS[@]}"; do [ -x "$OUT/bin/$b" ] || return 1; done
  if declare -F extra_complete >/dev/null; then extra_complete; fi
}

build_link() {
  mkdir -p "$(dirname "$LINK")"
  if [ -e "$LINK" ] && [ ! -L "$LINK" ]; then rm -rf "$LINK"; fi
  ln -sfn "$OUT/bin" "$LINK"
  echo "$NAME: ${LINK#"$ROOT"/} -> $OUT/bin"
}

# First line of a command's whole output. The output is read to its end first: a pipe into
# `grep -q` or `head` may close early and kill the writer with SIGPIPE, which pipefail
# turns into a failed build (issue 18: "etcd is not 3.6.16" after printing 3.6.16).
first_line() {
  local out
  out="$("$@" 2>&1)" || return 1
  printf '%s\n' "${out%%$'\n'*}"
}

build_begin() {
  local force="$1"
  HASH="$(build_input_hash)"
  OUT="$CACHE_ROOT/$HASH"
  mkdir -p "$CACHE_ROOT"
  # Serialise concurrent builds of the same cache: the lock is held until the script exits.
  exec 9>"$CACHE_ROOT/.lock"
  command -v flock >/dev/null && flock 9
  if [ "$force" = 0 ] && build_complete; then
    echo "$NAME: cached build $HASH"
    build_link
    return 0
  fi
  STAGE="$(mktemp -d "$CACHE_ROOT/.stage.XXXXXX")"
  # shellcheck disable=SC2064
  trap "rm -rf '$STAGE'" EXIT
  mkdir -p "$STAGE/bin"
  return 1
}

# Publish the staged entry atomically, then link it.
build_publish() {
  touch "$STAGE/.complete"
  chmod 0755 "$STAGE"
  rm -rf "$OUT"
  mv "$STAGE" "$OUT"
  trap - EXIT
  build_link
}

build_parse_args() {
  FORCE=0
  case "${1:-}" in
    --force) FORCE=1 ;;
    "") ;;
    *) echo "usage: $0 [--force]" >&2; exit 2 ;;
  esac
}
