#!/usr/bin/env bash
# The local stack sluice's tests and demo run against, all on 127.0.0.1:
#   Apache Kafka (KRaft, one broker+controller node, jars from Maven Central, run on the JDK)
#   PostgreSQL  (Debian's package, a cluster of our own made with initdb)
#   versitygw   (S3-compatible server, built with `go install`, posix backend)
#
# and, on demand, the worker itself (bin/sluice, in the background: `up worker`).
#
# usage: scripts/stack.sh up [kafka|postgres|s3|worker ...] | down [--purge] [service...] | status | env
# `up` is idempotent and starts only what is not running (without arguments: the three
# servers); `down` stops exactly the processes `up` started, by the pid it recorded (without
# arguments: the worker too). Data lives under $SLUICE_STACK_DIR (default .sluice/stack).
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

KAFKA_VERSION="${SLUICE_KAFKA_VERSION:-4.4.0}"
VERSITYGW_VERSION="${SLUICE_VERSITYGW_VERSION:-v1.8.0}"
STACK_DIR="$SLUICE_STACK_DIR"
# The ports a stack was brought up with stay its ports: status, env and down read them back
# from $STACK_DIR/ports.env when the SLUICE_*_PORT variables are not set.
PORT_VARS=(SLUICE_KAFKA_PORT SLUICE_KAFKA_CONTROLLER_PORT SLUICE_PG_PORT SLUICE_S3_PORT SLUICE_HTTP_PORT)
if [ -f "$STACK_DIR/ports.env" ]; then
  while IFS='=' read -r k v; do
    case " ${PORT_VARS[*]} " in *" $k "*) [ -n "${!k:-}" ] || printf -v "$k" '%s' "$v";; esac
  done <"$STACK_DIR/ports.env"
fi
KAFKA_PORT="${SLUICE_KAFKA_PORT:-19092}"
KAFKA_CONTROLLER_PORT="${SLUICE_KAFKA_CONTROLLER_PORT:-19093}"
PG_PORT="${SLUICE_PG_PORT:-15432}"
S3_PORT="${SLUICE_S3_PORT:-17070}"
PG_USER="${SLUICE_PG_USER:-sluice}"
PG_PASSWORD="${SLUICE_PG_PASSWORD:-sluice}"
PG_DB="${SLUICE_PG_DB:-sluice}"
S3_ACCESS_KEY="${SLUICE_S3_ACCESS_KEY:-sluice}"
S3_SECRET_KEY="${SLUICE_S3_SECRET_KEY:-sluice-secret-key}"
S3_BUCKET="${SLUICE_S3_BUCKET:-sluice}"
S3_REGION="${SLUICE_S3_REGION:-us-east-1}"
READY_TIMEOUT="${SLUICE_STACK_READY_TIMEOUT:-90}"

KAFKA_HOME="$SLUICE_CACHE/kafka/$KAFKA_VERSION"
VERSITYGW_BIN="$SLUICE_CACHE/versitygw/$VERSITYGW_VERSION/bin/versitygw"

# ---------------------------------------------------------------- helpers
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# pid_alive PIDFILE MARKER: the recorded pid runs and its command line mentions MARKER
# (guards against a recycled pid belonging to someone else's process).
pid_alive() {
  local pidfile="$1" marker="$2" pid
  [ -f "$pidfile" ] || return 1
  pid="$(cat "$pidfile")"
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$marker"
}

# pid_exited PIDFILE: the process started in the background is gone. Not pid_alive: right
# after `cmd &` the child may not have exec'd yet, and its command line is still this
# script's (no marker), which is not an exit.
pid_exited() {
  local pid
  pid="$(cat "$1" 2>/dev/null || true)"
  [ -z "$pid" ] || [ ! -d "/proc/$pid" ] || grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null
}

stop_pid() {
  local name="$1" pidfile="$2" marker="$3" pid i
  if ! pid_alive "$pidfile" "$marker"; then rm -f "$pidfile"; return 0; fi
  pid="$(cat "$pidfile")"
  log "stopping $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 1 300); do
    [ -d "/proc/$pid" ] || break
    sleep 0.1
  done
  if [ -d "/proc/$pid" ]; then log "$name did not stop in 30s; sending SIGKILL"; kill -KILL "$pid" 2>/dev/null || true; fi
  rm -f "$pidfile"
}

wait_ready() { # name logfile check-command...
  local name="$1" logfile="$2"; shift 2
  local deadline=$((SECONDS + READY_TIMEOUT))
  until "$@"; do
    if [ $SECONDS -ge $deadline ]; then
      log "$name did not become ready within ${READY_TIMEOUT}s; last lines of $logfile:"
      tail -n 20 "$logfile" >&2 || true
      die "$name is not ready (log: $logfile)"
    fi
    sleep 0.2
  done
}

require_free_port() { # name port
  if port_open "$2"; then
    die "$1: port 127.0.0.1:$2 is already in use by a process this stack did not start (override with the matching SLUICE_*_PORT)"
  fi
}

# ---------------------------------------------------------------- Kafka
kafka_install() {
  [ -f "$KAFKA_HOME/.complete" ] && return 0
  flock 9
  [ -f "$KAFKA_HOME/.complete" ] && { flock -u 9; return 0; }
  command -v java >/dev/null || die "java (17+) is needed for Kafka"
  command -v mvn >/dev/null || die "mvn is needed to fetch Kafka's jars from Maven Central"
  log "fetching Apache Kafka $KAFKA_VERSION jars from Maven Central into $KAFKA_HOME"
  rm -rf "$KAFKA_HOME" && mkdir -p "$KAFKA_HOME"
  mvn -q -B -f "$SLUICE_ROOT/scripts/kafka/pom.xml" -Dkafka.version="$KAFKA_VERSION" \
    dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$KAFKA_HOME/libs" \
    >"$KAFKA_HOME/mvn.log" 2>&1 || { tail -n 30 "$KAFKA_HOME/mvn.log" >&2; die "maven could not fetch Kafka $KAFKA_VERSION"; }
  touch "$KAFKA_HOME/.complete"
  flock -u 9
}

kafka_config() {
  local dir="$STACK_DIR/kafka"
  mkdir -p "$dir/data"
  cat >"$dir/server.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$dir/data
num.partitions=1
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=6
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
group.consumer.min.session.timeout.ms=3000
group.classic.min.session.timeout.ms=3000
message.max.bytes=10485760
delete.topic.enable=true
log.retention.hours=24
EOF
  cat >"$dir/log4j2.properties" <<EOF
status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = $dir/kafka.log
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.file.ref = file
logger.raft.name = kafka.server.KafkaRaftServer
logger.raft.level = INFO
EOF
}

kafka_up() {
  local dir="$STACK_DIR/kafka"
  if pid_alive "$dir/kafka.pid" "$dir/server.properties"; then log "kafka already running (pid $(cat "$dir/kafka.pid"))"; return 0; fi
  require_free_port kafka "$KAFKA_PORT"
  require_free_port kafka-controller "$KAFKA_CONTROLLER_PORT"
  kafka_install
  kafka_config
  local cp="$KAFKA_HOME/libs/*"
  local jvm=(-Xms256m -Xmx"${SLUICE_KAFKA_HEAP:-1g}" -XX:+UseG1GC -Djava.awt.headless=true
    -Dlog4j2.configurationFile="$dir/log4j2.properties" -Dkafka.logs.dir="$dir")
  if [ ! -f "$dir/data/meta.properties" ]; then
    log "formatting Kafka storage in $dir/data"
    java "${jvm[@]}" -cp "$cp" kafka.tools.StorageTool format \
      --cluster-id "$(java -cp "$cp" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n1)" \
      --config "$dir/server.properties" >"$dir/format.log" 2>&1 \
      || { cat "$dir/format.log" >&2; die "kafka storage format failed (log: $dir/format.log)"; }
  fi
  : >"$dir/kafka.log"
  log "starting kafka $KAFKA_VERSION on 127.0.0.1:$KAFKA_PORT"
  setsid java "${jvm[@]}" -cp "$cp" kafka.Kafka "$dir/server.properties" >"$dir/stdout.log" 2>&1 </dev/null 8>&- 9>&- &
  echo $! >"$dir/kafka.pid"
  wait_ready kafka "$dir/kafka.log" kafka_ready
}

kafka_ready() {
  local dir="$STACK_DIR/kafka"
  ! pid_exited "$dir/kafka.pid" || { tail -n 20 "$dir/stdout.log" "$dir/kafka.log" >&2; die "kafka exited during start-up (logs: $dir/stdout.log, $dir/kafka.log)"; }
  pid_alive "$dir/kafka.pid" "$dir/server.properties" && port_open "$KAFKA_PORT" && grep -q 'Kafka Server started' "$dir/kafka.log"
}

kafka_down() { stop_pid kafka "$STACK_DIR/kafka/kafka.pid" "$STACK_DIR/kafka/server.properties"; }
kafka_status() { pid_alive "$STACK_DIR/kafka/kafka.pid" "$STACK_DIR/kafka/server.properties" && port_open "$KAFKA_PORT"; }

# ---------------------------------------------------------------- PostgreSQL
pg_bindir() {
  local d
  d="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)"
  if [ -z "$d" ] || [ ! -x "$d/initdb" ]; then
    log "PostgreSQL server not found; installing Debian's postgresql package"
    [ "$(id -u)" = 0 ] || die "PostgreSQL is not installed and this user cannot apt-get install it"
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null \
      || die "apt-get install postgresql failed"
    d="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)"
  fi
  echo "$d"
}

# PostgreSQL refuses to run as root: then the cluster belongs to the `postgres` user, which
# may not be able to enter the checkout (a 0700 home directory such as /root). So as root the
# cluster (data, socket, log) lives in /var/tmp, in a directory keyed by this stack's path
# (two checkouts get two clusters), recorded in $STACK_DIR/postgres.cluster and removed by
# `down --purge`. Any other user runs the cluster itself, under $STACK_DIR/postgres.
pg_run() {
  # (from /: the postgres user may not be able to enter the caller's working directory)
  if [ "$(id -u)" = 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi
}

pg_dir() {
  if [ "$(id -u)" = 0 ]; then
    printf '/var/tmp/sluice-pg-%s\n' "$(printf '%s' "$STACK_DIR" | sha256sum | cut -c1-16)"
  else
    printf '%s\n' "$STACK_DIR/postgres"
  fi
}

pg_up() {
  local dir bin
  dir="$(pg_dir)"
  bin="$(pg_bindir)"
  if [ -f "$dir/data/postmaster.pid" ] && pg_run "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
    log "postgres already running (pid $(head -n1 "$dir/data/postmaster.pid"))"; return 0
  fi
  require_free_port postgres "$PG_PORT"
  if [ "$(id -u)" = 0 ]; then
    install -d -o postgres -g postgres -m 0700 "$dir"
    printf '%s\n' "$dir" >"$STACK_DIR/postgres.cluster"
  fi
  pg_run mkdir -p "$dir/run"
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    log "creating a PostgreSQL cluster in $dir/data"
    local pw="$dir/.pw"
    printf '%s\n' "$PG_PASSWORD" | pg_run tee "$pw" >/dev/null
    pg_run "$bin/initdb" -D "$dir/data" -U "$PG_USER" --pwfile="$pw" --auth-local=trust --auth-host=scram-sha-256 \
      -E UTF8 --locale=C.UTF-8 2>&1 | pg_run tee "$dir/initdb.log" >/dev/null
    [ "${PIPESTATUS[0]}" = 0 ] || { cat "$dir/initdb.log" >&2; die "initdb failed (log: $dir/initdb.log)"; }
    pg_run rm -f "$pw"
    pg_run tee -a "$dir/data/postgresql.conf" >/dev/null <<EOF
# sluice local stack
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$dir/run'
max_connections = 200
shared_buffers = 256MB
wal_level = minimal
max_wal_senders = 0
max_wal_size = 2GB
logging_collector = off
log_min_messages = warning
EOF
  fi
  # the port may have been overridden since initdb
  pg_run sed -i "s/^port = .*/port = $PG_PORT/" "$dir/data/postgresql.conf"
  log "starting postgres on 127.0.0.1:$PG_PORT"
  pg_run "$bin/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t "$READY_TIMEOUT" -o "-p $PG_PORT" start >/dev/null 8>&- 9>&- \
    || { tail -n 20 "$dir/postgres.log" >&2; die "postgres did not start (log: $dir/postgres.log)"; }
  wait_ready postgres "$dir/postgres.log" pg_ready
  if ! pg_run psql -h "$dir/run" -p "$PG_PORT" -U "$PG_USER" -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$PG_DB'" | grep -q 1; then
    pg_run psql -h "$dir/run" -p "$PG_PORT" -U "$PG_USER" -d postgres -qc "CREATE DATABASE \"$PG_DB\"" >/dev/null
  fi
}

pg_ready() { pg_run "$(pg_bindir)/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT"; }

pg_down() {
  local dir; dir="$(pg_dir)"
  [ -f "$dir/data/postmaster.pid" ] || return 0
  log "stopping postgres (pid $(head -n1 "$dir/data/postmaster.pid"))"
  pg_run "$(pg_bindir)/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
}

pg_status() {
  local dir; dir="$(pg_dir)"
  [ -f "$dir/data/postmaster.pid" ] && pg_run "$(pg_bindir)/pg_ctl" -D "$dir/data" status >/dev/null 2>&1
}

# ---------------------------------------------------------------- S3 (versitygw)
s3_install() {
  [ -x "$VERSITYGW_BIN" ] && return 0
  flock 9
  [ -x "$VERSITYGW_BIN" ] && { flock -u 9; return 0; }
  command -v go >/dev/null || die "go is needed to build versitygw"
  local dest; dest="$(dirname "$VERSITYGW_BIN")"
  log "building versitygw $VERSITYGW_VERSION with go install into $dest (about a minute)"
  mkdir -p "$dest.tmp"
  GOBIN="$dest.tmp" GOFLAGS=-mod=mod go install "github.com/versity/versitygw/cmd/versitygw@$VERSITYGW_VERSION" \
    >"$dest.log" 2>&1 || { tail -n 30 "$dest.log" >&2; die "go install versitygw failed (log: $dest.log)"; }
  rm -rf "$dest" && mv "$dest.tmp" "$dest"
  flock -u 9
}

s3_up() {
  local dir="$STACK_DIR/s3"
  if pid_alive "$dir/versitygw.pid" "$dir/root"; then log "s3 already running (pid $(cat "$dir/versitygw.pid"))"; return 0; fi
  require_free_port s3 "$S3_PORT"
  s3_install
  mkdir -p "$dir/root" "$dir/meta"
  log "starting versitygw on 127.0.0.1:$S3_PORT"
  ROOT_ACCESS_KEY="$S3_ACCESS_KEY" ROOT_SECRET_KEY="$S3_SECRET_KEY" \
    setsid "$VERSITYGW_BIN" --port "127.0.0.1:$S3_PORT" --region "$S3_REGION" --quiet \
    posix --sidecar "$dir/meta" "$dir/root" >"$dir/versitygw.log" 2>&1 </dev/null 8>&- 9>&- &
  echo $! >"$dir/versitygw.pid"
  wait_ready s3 "$dir/versitygw.log" s3_ready
  local code
  code="$(curl -s -o "$dir/create-bucket.out" -w '%{http_code}' --aws-sigv4 "aws:amz:$S3_REGION:s3" \
    -H "x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" \
    --user "$S3_ACCESS_KEY:$S3_SECRET_KEY" -X PUT "http://127.0.0.1:$S3_PORT/$S3_BUCKET")"
  case "$code" in
    200|409) ;;
    *) cat "$dir/create-bucket.out" >&2; die "could not create bucket $S3_BUCKET (HTTP $code)";;
  esac
}

s3_ready() {
  local dir="$STACK_DIR/s3"
  ! pid_exited "$dir/versitygw.pid" || { tail -n 20 "$dir/versitygw.log" >&2; die "versitygw exited during start-up (log: $dir/versitygw.log)"; }
  pid_alive "$dir/versitygw.pid" "$dir/root" && port_open "$S3_PORT"
}

s3_down() { stop_pid s3 "$STACK_DIR/s3/versitygw.pid" "$STACK_DIR/s3/root"; }
s3_status() { pid_alive "$STACK_DIR/s3/versitygw.pid" "$STACK_DIR/s3/root" && port_open "$S3_PORT"; }

# ---------------------------------------------------------------- the worker (bin/sluice)
# Not part of a plain `up`: `up worker` starts one in the background on this stack (the demo
# does), with the stack's settings and SLUICE_TOPICS (default entity-events); `down` stops it.
WORKER_MARKER="$SLUICE_ROOT/src/main.ts"
HTTP_PORT="${SLUICE_HTTP_PORT:-8080}"

worker_up() {
  local dir="$STACK_DIR/worker"
  if pid_alive "$dir/worker.pid" "$WORKER_MARKER"; then log "worker already running (pid $(cat "$dir/worker.pid"))"; return 0; fi
  require_free_port worker-http "$HTTP_PORT"
  mkdir -p "$dir"
  : >"$dir/worker.log"
  log "starting the worker (topics ${SLUICE_TOPICS:-entity-events}, API http://127.0.0.1:$HTTP_PORT, log $dir/worker.log)"
  (
    # shellcheck source=scripts/bootstrap.sh
    . "$SLUICE_ROOT/scripts/bootstrap.sh" # a Node that sluice supports, on PATH
    eval "$(print_env)"
    export SLUICE_TOPICS="${SLUICE_TOPICS:-entity-events}" SLUICE_HTTP_PORT="$HTTP_PORT"
    exec setsid "$SLUICE_ROOT/bin/sluice" >>"$dir/worker.log" 2>&1 </dev/null 8>&- 9>&-
  ) &
  echo $! >"$dir/worker.pid"
  # the HTTP API listens once migrations ran and the sinks opened (slower on a busy machine)
  READY_TIMEOUT=$((READY_TIMEOUT > 180 ? READY_TIMEOUT : 180)) wait_ready worker "$dir/worker.log" worker_ready
}

worker_ready() {
  local dir="$STACK_DIR/worker"
  ! pid_exited "$dir/worker.pid" || { tail -n 20 "$dir/worker.log" >&2; die "the worker exited during start-up (log: $dir/worker.log)"; }
  pid_alive "$dir/worker.pid" "$WORKER_MARKER" && port_open "$HTTP_PORT"
}

worker_down() { stop_pid worker "$STACK_DIR/worker/worker.pid" "$WORKER_MARKER"; }
worker_status() { pid_alive "$STACK_DIR/worker/worker.pid" "$WORKER_MARKER" && port_open "$HTTP_PORT"; }

# ---------------------------------------------------------------- commands
print_env() {
  cat <<EOF
export SLUICE_KAFKA_BROKERS=127.0.0.1:$KAFKA_PORT
export SLUICE_PG_URL=postgres://$PG_USER:$PG_PASSWORD@127.0.0.1:$PG_PORT/$PG_DB
export SLUICE_S3_ENDPOINT=http://127.0.0.1:$S3_PORT
export SLUICE_S3_REGION=$S3_REGION
export SLUICE_S3_BUCKET=$S3_BUCKET
export SLUICE_S3_ACCESS_KEY=$S3_ACCESS_KEY
export SLUICE_S3_SECRET_KEY=$S3_SECRET_KEY
EOF
}

# the default services: `up` starts the servers; `down` stops the worker first, then them
services() { if [ $# -gt 0 ]; then echo "$@"; elif [ "$cmd" = down ]; then echo worker kafka postgres s3; else echo kafka postgres s3; fi; }

cmd="${1:-status}"; shift || true
case "$cmd" in
  up)
    mkdir -p "$STACK_DIR" "$SLUICE_CACHE"
    # two `up`s at once (a test run and a demo, two clones sharing the cache) take turns:
    # one lock for this stack's data, one for the shared cache's installs
    exec 8>"$STACK_DIR/.lock" 9>"$SLUICE_CACHE/.install.lock"
    # (the servers started below get `8>&- 9>&-`: a daemon that inherited a lock's fd would
    # hold it for its whole life, and every later `up` or `down` would wait on it forever;
    # the cache's lock is held only while installing, so other checkouts start meanwhile)
    flock 8
    for v in "${PORT_VARS[@]}"; do
      case "$v" in
        SLUICE_KAFKA_PORT) echo "$v=$KAFKA_PORT";; SLUICE_KAFKA_CONTROLLER_PORT) echo "$v=$KAFKA_CONTROLLER_PORT";;
        SLUICE_PG_PORT) echo "$v=$PG_PORT";; SLUICE_S3_PORT) echo "$v=$S3_PORT";; SLUICE_HTTP_PORT) echo "$v=$HTTP_PORT";;
      esac
    done >"$STACK_DIR/ports.env"
    for s in $(services "$@"); do
      case "$s" in kafka) kafka_up;; postgres|pg) pg_up;; s3) s3_up;; worker) worker_up;; *) die "unknown service: $s";; esac
    done
    log "stack is up"
    ;;
  down)
    if [ -d "$STACK_DIR" ]; then exec 8>"$STACK_DIR/.lock"; flock 8; fi
    purge=0; list=()
    for a in "$@"; do if [ "$a" = --purge ]; then purge=1; else list+=("$a"); fi; done
    for s in $(services "${list[@]}"); do
      case "$s" in kafka) kafka_down;; postgres|pg) pg_down;; s3) s3_down;; worker) worker_down;; *) die "unknown service: $s";; esac
    done
    if [ $purge = 1 ]; then
      if [ -f "$STACK_DIR/postgres.cluster" ]; then
        cluster="$(cat "$STACK_DIR/postgres.cluster")"
        case "$cluster" in /var/tmp/sluice-pg-*) log "removing $cluster"; rm -rf "$cluster";; esac
      fi
      log "removing $STACK_DIR"; rm -rf "$STACK_DIR"
    fi
    ;;
  status)
    rc=0
    for s in kafka postgres s3; do
      case "$s" in kafka) f=kafka_status; p=$KAFKA_PORT;; postgres) f=pg_status; p=$PG_PORT;; s3) f=s3_status; p=$S3_PORT;; esac
      if $f; then printf '%-9s up    127.0.0.1:%s\n' "$s" "$p"; else printf '%-9s down  127.0.0.1:%s\n' "$s" "$p"; rc=3; fi
    done
    # the worker is optional: listed, but its absence is not a failed status
    if worker_status; then printf '%-9s up    http://127.0.0.1:%s (log %s)\n' worker "$HTTP_PORT" "$STACK_DIR/worker/worker.log"; else printf '%-9s down\n' worker; fi
    exit $rc
    ;;
  env) print_env ;;
  *) die "usage: $0 up [kafka|postgres|s3|worker ...] | down [--purge] [service...] | status | env" ;;
esac
