#!/usr/bin/env bash
# The test command: lint, type-check, unit and integration tests against the real local stack.
# Brings up the stack services that are not running and stops exactly those afterwards.
set -euo pipefail
# shellcheck source=scripts/bootstrap.sh
. "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
cd "$SLUICE_ROOT"
sluice_stack_for_run kafka postgres s3
# kustomize, kubeconform, promtool, hadolint and the schemas for test/integration/k8s (cached by version)
scripts/tools.sh install
# the container image test/integration/k8s/image.test.ts runs, built before tap (a cold build
# outlasts tap's per-file timeout on a busy 2-core machine): podman's layer cache and a tag keyed
# by the inputs make this seconds when nothing changed; a failure here fails that test, not the run
{ scripts/tools.sh install container && scripts/image.sh build >/dev/null; } || log "scripts/image.sh build failed: test/integration/k8s/image.test.ts will fail"

mkdir -p .sluice
npm test --silent -- "$@" 2>&1 | grep -v 'nodedir' | tee .sluice/test-output.log
status=${PIPESTATUS[0]}
# one plain closing line, whatever the reporter printed
summary="$(grep -E '^# \{ total:' .sluice/test-output.log | tail -n1 || true)"
if [ -n "$summary" ]; then
  pass="$(sed -nE 's/.*pass: ([0-9]+).*/\1/p' <<<"$summary")"; fail="$(sed -nE 's/.*fail: ([0-9]+).*/\1/p' <<<"$summary")"
  echo "${pass:-0} passed, ${fail:-0} failed"
fi
exit "$status"
