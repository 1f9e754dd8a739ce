#!/usr/bin/env bash
# Builds Bento, the ingest benchmark's generic peer, from Go modules and prints the binary's
# path. bench/bento/ is a wrapper module that requires github.com/warpstreamlabs/bento (the
# version in its go.mod) and links only the components the benchmark uses: `go install` of
# Bento's own command does not resolve from the module proxy. Cached under
# ${XDG_CACHE_HOME:-$HOME/.cache}/sluice/bento/<version>/ like the other tools; needs Go.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

src="$SLUICE_ROOT/bench/bento"
version="$(awk '$1 == "require" && $2 == "github.com/warpstreamlabs/bento" { print $3 } $1 == "github.com/warpstreamlabs/bento" { print $2 }' "$src/go.mod" | head -n1)"
[ -n "$version" ] || die "no github.com/warpstreamlabs/bento requirement in $src/go.mod"
dest="$SLUICE_CACHE/bento/$version"
# the wrapper's own files are part of the key: a change to them rebuilds
stamp="$(cat "$src/go.mod" "$src/go.sum" "$src/main.go" | sha256sum | cut -c1-16)"
if [ -x "$dest/bento" ] && [ "$(cat "$dest/.stamp" 2>/dev/null)" = "$stamp" ]; then echo "$dest/bento"; exit 0; fi
command -v go >/dev/null || die "go is needed to build Bento"
mkdir -p "$SLUICE_CACHE/bento"
exec 9>"$SLUICE_CACHE/bento/.lock"
flock 9
if [ -x "$dest/bento" ] && [ "$(cat "$dest/.stamp" 2>/dev/null)" = "$stamp" ]; then echo "$dest/bento"; exit 0; fi
log "building Bento $version from Go modules into $dest (several minutes the first time)"
rm -rf "$dest.tmp" && mkdir -p "$dest.tmp"
(cd "$src" && GOFLAGS=-mod=readonly go build -buildvcs=false -trimpath -ldflags='-s -w' -o "$dest.tmp/bento" .) >"$dest.tmp/build.log" 2>&1 \
  || { tail -n 30 "$dest.tmp/build.log" >&2; die "building Bento failed (log: $dest.tmp/build.log)"; }
echo "$stamp" >"$dest.tmp/.stamp"
rm -rf "$dest" && mv "$dest.tmp" "$dest"
echo "$dest/bento"
