#!/usr/bin/env bash
# The ingest benchmark (bench/ingest.ts): usage scripts/bench.sh [events] (default 300,000),
# interleaved rounds of the variants in SLUICE_BENCH_VARIANTS (default
# 'psql; psql-ids; rdkafka; rdkafka-noproj=rdkafka SLUICE_PROJECTION=off; platformatic; bento'; see
# bench/ingest/variants.ts), SLUICE_BENCH_ROUNDS
# (default 2); Bento is built by scripts/bento.sh when a variant needs it.
# The snapshot upload benchmark (bench/snapshot.ts): scripts/bench.sh snapshot [MiB] (default 256).
# The HTTP benchmark (bench/http.ts): scripts/bench.sh http [seconds per step] (default 10).
# Scale-out and restarts (bench/scale.ts): scripts/bench.sh scale [restart] [events/s].
# Rebalance protocols on bare consumers (bench/rebalance.ts): scripts/bench.sh rebalance [events/s].
# Brings up Kafka, PostgreSQL and S3 (the seed mix's snapshot events go to S3) if they are not
# running and stops exactly what it started.
set -euo pipefail
# shellcheck source=scripts/bootstrap.sh
. "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
cd "$SLUICE_ROOT"
if [ "${1:-}" != snapshot ] && [ "${1:-}" != http ] && [ "${1:-}" != scale ] && [ "${1:-}" != rebalance ] && [[ "${SLUICE_BENCH_VARIANTS:-bento}" == *bento* ]] && [ -z "${SLUICE_BENTO:-}" ]; then
  SLUICE_BENTO="$("$SLUICE_ROOT/scripts/bento.sh")"
  export SLUICE_BENTO
fi
sluice_stack_for_run kafka postgres s3
case "${1:-}" in
  snapshot) shift; node bench/snapshot.ts "$@" ;;
  http) shift; node bench/http.ts "$@" ;;
  scale) shift; node bench/scale.ts "$@" ;;
  rebalance) shift; node bench/rebalance.ts "$@" ;;
  *) node bench/ingest.ts "$@" ;;
esac
