#!/usr/bin/env bash
# Everything the project needs on a fresh machine of this kind, idempotent and cached:
# Debian's libraries for node-rdkafka's librdkafka (zstd, lz4, SASL/GSSAPI, OIDC), a Node
# that sluice supports (scripts/node-env.sh), and node_modules built by that same Node.
# Source it (`. scripts/bootstrap.sh`) to keep its PATH; running it works too.
# shellcheck shell=bash
# shellcheck source=scripts/node-env.sh
. "$(dirname "${BASH_SOURCE[0]}")/node-env.sh"

sluice_bootstrap() {
  local pkgs=(libzstd-dev libsasl2-dev liblz4-dev libcurl4-openssl-dev) missing=() p
  for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
      log "installing ${missing[*]} (librdkafka's zstd, lz4, GSSAPI and OIDC support)"
      apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null \
        || die "apt-get install ${missing[*]} failed"
    else
      log "warning: ${missing[*]} missing and not root: librdkafka is built without them"
    fi
  fi

  cd "$SLUICE_ROOT" || die "no project root"
  # node_modules is valid for one lockfile and one Node ABI; anything else is reinstalled.
  # node-rdkafka is its only package with an install script (its native build): it is built
  # apart (sluice_rdkafka_native), so every other package installs without scripts.
  local stamp want
  want="$(sha256sum package-lock.json | cut -c1-16)-abi$(node -p process.versions.modules)"
  stamp="$(cat node_modules/.sluice-stamp 2>/dev/null || true)"
  if [ "$stamp" != "$want" ]; then
    log "installing node_modules with Node $(node --version)"
    npm ci --ignore-scripts --no-audit --no-fund --loglevel=error 2>&1 | grep -v 'nodedir' >&2 || true
    [ -d node_modules/node-rdkafka ] || die "npm ci failed"
    sluice_rdkafka_native
    echo "$want" >node_modules/.sluice-stamp
  fi
  node -e "require('node-rdkafka')" >/dev/null 2>&1 || sluice_rdkafka_native
  node -e "require('node-rdkafka')" || die "node-rdkafka does not load"
}

# node-rdkafka's native module and its librdkafka (found through RUNPATH $ORIGIN/../deps),
# compiled once per node-rdkafka version, Node ABI and architecture and cached. It is compiled
# in a scratch directory: librdkafka's configure fails in a path with a space, where a user may
# well have cloned sluice.
sluice_rdkafka_native() {
  local version key dir tmp
  version="$(node -p "require('./node_modules/node-rdkafka/package.json').version")"
  key="$version-abi$(node -p process.versions.modules)-$(uname -m)"
  dir="$SLUICE_CACHE/node-rdkafka/$key"
  mkdir -p "$SLUICE_CACHE/node-rdkafka"
  (
    flock 9
    [ -f "$dir/Release/node-librdkafka.node" ] && exit 0
    log "compiling node-rdkafka $version with librdkafka for Node $(node --version) (~2-4 min, cached in $dir)"
    tmp="$(mktemp -d /tmp/sluice-rdkafka.XXXXXX)"
    trap 'rm -rf "$tmp"' EXIT
    mkdir -p "$tmp/node_modules"
    cp -a node_modules/node-rdkafka node_modules/nan node_modules/bindings "$tmp/node_modules/"
    (cd "$tmp/node_modules/node-rdkafka" && "$SLUICE_ROOT/node_modules/.bin/node-gyp" rebuild --loglevel=error) 2>&1 | grep -v 'nodedir' >&2 || true
    [ -f "$tmp/node_modules/node-rdkafka/build/Release/node-librdkafka.node" ] || die "node-rdkafka did not compile"
    rm -rf "$dir.part" && mkdir -p "$dir.part/Release" "$dir.part/deps"
    cp "$tmp/node_modules/node-rdkafka/build/Release/node-librdkafka.node" "$dir.part/Release/"
    cp -a "$tmp/node_modules/node-rdkafka/build/deps/"*.so* "$dir.part/deps/"
    mv "$dir.part" "$dir"
  ) 9>"$SLUICE_CACHE/node-rdkafka/.lock" || exit 1
  rm -rf node_modules/node-rdkafka/build
  mkdir -p node_modules/node-rdkafka/build
  cp -a "$dir/Release" "$dir/deps" node_modules/node-rdkafka/build/
}

sluice_bootstrap
