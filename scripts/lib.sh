# Shared helpers for sluice's scripts. Sourced, never executed.
# shellcheck shell=bash

SLUICE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SLUICE_CACHE="${SLUICE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sluice}"
# the local stack's data, pid files and logs (scripts/stack.sh), one directory per checkout
SLUICE_STACK_DIR="${SLUICE_STACK_DIR:-$SLUICE_ROOT/.sluice/stack}"
case "$SLUICE_STACK_DIR" in /*) ;; *) SLUICE_STACK_DIR="$PWD/$SLUICE_STACK_DIR";; esac
export SLUICE_ROOT SLUICE_CACHE SLUICE_STACK_DIR

log() { printf '[sluice] %s\n' "$*" >&2; }
die() { printf '[sluice] error: %s\n' "$*" >&2; exit 1; }

# version_ge A B: true when dotted version A >= B
version_ge() { [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" = "$2" ]; }

# sluice_stack_for_run SERVICE...: brings up the stack services that are not running, stops
# exactly those when the calling script exits, and exports the connection settings.
sluice_stack_for_run() {
  SLUICE_STARTED=()
  local s status
  # read whole, not piped into grep -q: under pipefail an early grep exit (SIGPIPE) or status's
  # own non-zero exit (something is down) would count a running service as down
  status="$("$SLUICE_ROOT/scripts/stack.sh" status 2>/dev/null || true)"
  for s in "$@"; do
    if ! grep -q "^$s *up" <<<"$status"; then SLUICE_STARTED+=("$s"); fi
  done
  trap sluice_stack_stop_started EXIT
  if [ ${#SLUICE_STARTED[@]} -gt 0 ]; then "$SLUICE_ROOT/scripts/stack.sh" up "${SLUICE_STARTED[@]}"; fi
  eval "$("$SLUICE_ROOT/scripts/stack.sh" env)"
}

sluice_stack_stop_started() {
  if [ ${#SLUICE_STARTED[@]} -gt 0 ]; then "$SLUICE_ROOT/scripts/stack.sh" down "${SLUICE_STARTED[@]}" || true; fi
}
