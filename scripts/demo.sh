#!/usr/bin/env bash
# The main job: brings the local stack up, creates the topic (6 partitions), starts the worker
# on the default pipeline, produces a sample workload covering the six producer families of
# the entity-engine seed plus some poison, waits until it has landed and prints a report.
# The stack stays up afterwards so that you can look around (scripts/stack.sh down stops it).
set -euo pipefail
# shellcheck source=scripts/bootstrap.sh
. "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
cd "$SLUICE_ROOT"
scripts/stack.sh up
eval "$(scripts/stack.sh env)"
exec node scripts/demo.ts "$@"
