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
  local stamp want
  want="$(sha256sum package-lock.json | cut -c1-16)-abi$(node -p process.versions.modules)"
  stamp="$(cat node_modules/.sluice-stamp 2>/dev/null || true)"
  if [ "$stamp" != "$want" ]; then
    log "installing node_modules with Node $(node --version) (takes ~2 min when node-rdkafka compiles)"
    npm ci --no-audit --no-fund --loglevel=error 2>&1 | grep -v 'nodedir' >&2 || true
    [ -d node_modules/node-rdkafka ] || die "npm ci failed"
    echo "$want" >node_modules/.sluice-stamp
  fi
  if ! node -e "require('node-rdkafka')" >/dev/null 2>&1; then
    log "node-rdkafka was built for another Node ABI; rebuilding it with Node $(node --version)"
    npm rebuild node-rdkafka --loglevel=error 2>&1 | grep -v 'nodedir' >&2 || true
    node -e "require('node-rdkafka')" || die "node-rdkafka does not load after a rebuild"
  fi
}

sluice_bootstrap
