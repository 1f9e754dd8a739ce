#!/usr/bin/env bash
# The ingest benchmark (bench/ingest.ts): usage scripts/bench.sh [events] (default 1,000,000).
# SLUICE_BENCH_SOURCES=rdkafka,platformatic chooses the sources. Brings up Kafka and
# PostgreSQL if they are not running and stops exactly what it started.
set -euo pipefail
# shellcheck source=scripts/bootstrap.sh
. "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
cd "$SLUICE_ROOT"
sluice_stack_for_run kafka postgres
node bench/ingest.ts "$@"
