#!/usr/bin/env bash
# Schemathesis (PyPI) against a live worker's /openapi.json: every operation, no 5xx, every
# response valid against its schema. Installed on first use into a venv under the cache dir.
#   scripts/schemathesis.sh <base-url> <token> [extra st options...]
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
SCHEMATHESIS_VERSION="${SCHEMATHESIS_VERSION:-4.32.5}"
venv="$SLUICE_CACHE/schemathesis-$SCHEMATHESIS_VERSION"
if [ ! -x "$venv/bin/st" ]; then
  log "installing schemathesis $SCHEMATHESIS_VERSION into $venv"
  python3 -m venv "$venv.tmp"
  "$venv.tmp/bin/pip" install --quiet "schemathesis==$SCHEMATHESIS_VERSION"
  rm -rf "$venv"
  mv "$venv.tmp" "$venv"
  # the venv's scripts name their own path: rewrite it after the move
  sed -i "1s|$venv.tmp|$venv|" "$venv"/bin/*
  sed -i "s|$venv.tmp|$venv|g" "$venv/bin/activate"
fi
[ $# -ge 2 ] || die "usage: scripts/schemathesis.sh <base-url> <token> [st options]"
base="$1"; token="$2"; shift 2
exec "$venv/bin/st" run "$base/openapi.json" --url "$base" -H "Authorization: Bearer $token" \
  --checks not_a_server_error,response_schema_conformance "$@"
