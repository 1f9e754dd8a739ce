#!/usr/bin/env bash
# The ingest benchmark (bench/ingest.ts): usage scripts/bench.sh [events] (default 1,000,000);
# the snapshot upload benchmark (bench/snapshot.ts): scripts/bench.sh snapshot [MiB] (default 256);
# scale-out and restarts (bench/scale.ts): scripts/bench.sh scale [restart] [events/s].
# SLUICE_BENCH_SOURCES=rdkafka,platformatic chooses the sources. Brings up Kafka, PostgreSQL
# and S3 (the seed mix's snapshot events go to S3) if they are not running and stops exactly
# what it started.
set -euo pipefail
# shellcheck source=scripts/bootstrap.sh
. "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
cd "$SLUICE_ROOT"
sluice_stack_for_run kafka postgres s3
case "${1:-}" in
  snapshot) shift; node bench/snapshot.ts "$@" ;;
  scale) shift; node bench/scale.ts "$@" ;;
  *) node bench/ingest.ts "$@" ;;
esac
