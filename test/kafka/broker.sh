#!/usr/bin/env bash
# A real single-node Apache Kafka broker for tests, benchmarks and local runs.
#
# Usage: test/kafka/broker.sh start|stop|status|pause [--kill]|resume|freeze|thaw|logs
#
#   start    Start the broker (or do nothing if it is running) and print its
#            bootstrap address, 127.0.0.1:<port>, as the only line on stdout.
#            A paused broker is resumed. Otherwise the state is new: fresh
#            ports, empty data dir, new cluster id.
#   stop     Stop the broker (SIGTERM, SIGKILL after KAFKA_STOP_TIMEOUT_S)
#            and delete its data; the logs stay for a post-mortem.
#   status   Print the bootstrap address and exit 0 if the broker is up;
#            exit 4 if it is paused, frozen or not answering, 1 if stopped.
#   pause    Stop the broker process but keep its ports and data, for fault
#            tests: clients see connections refused until `resume`.
#            `pause --kill` uses SIGKILL, a crash (no controlled shutdown).
#   resume   Start the paused broker again: same port, same data, same
#            cluster; waits until it answers metadata, prints the address.
#   freeze   SIGSTOP the broker: connections stay open but nothing answers,
#            the way a hung broker or a network partition looks.
#   thaw     SIGCONT a frozen broker.
#   logs     Print the paths of the broker's log files.
#
# Environment (all optional):
#   KAFKA_STATE_DIR        state of one broker: config, data, logs, pid,
#                          bootstrap (default <repo>/.cache/kafka/run)
#   KAFKA_CACHE_DIR        where the Kafka jars are kept between runs
#                          (default <repo>/.cache/kafka)
#   KAFKA_VERSION          org.apache.kafka:kafka_2.13 version (default 4.4.0)
#   KAFKA_HEAP_OPTS        JVM heap flags (default -Xms128m -Xmx512m)
#   KAFKA_OPTS             more JVM flags, e.g. -XX:TieredStopAtLevel=1 for
#                          a quicker start at the cost of throughput
#   KAFKA_START_TIMEOUT_S  how long start/resume wait for metadata (60)
#   KAFKA_STOP_TIMEOUT_S   how long stop/pause wait before SIGKILL (20)
#
# Exit codes: 0 ok; 1 failure (the reason is on stderr); 2 usage;
# 3 a required program is missing (java, or mvn when the jars are not yet
# cached); 4 the broker exists but is paused, frozen or not answering.
#
# Files in the state dir: server.properties, log4j2.properties, data/,
# logs/ (server.log from log4j2, stdout.log from the JVM, format.log),
# pid, bootstrap, and `paused` while paused. The jars come from Maven
# Central through `mvn dependency:copy-dependencies` into
# <cache>/<version>/jars, once; later starts need neither mvn nor network.
set -euo pipefail

# Kafka 4.4.0 is the newest 4.x release on Maven Central at the time of
# writing; pinned so every run uses the jars already in the cache.
readonly DEFAULT_KAFKA_VERSION=4.4.0
# log4j-core comes with Kafka's own dependencies; Kafka logs through slf4j
# 1.7, which needs this bridge to reach log4j2 (Kafka's distribution ships
# the same jar in libs/). Kept at the log4j version Kafka 4.4.0 brings.
readonly LOG4J_SLF4J_VERSION=2.25.5

script_dir=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
repo_dir=$(cd -- "$script_dir/../.." && pwd)
readonly script_dir repo_dir

readonly version=${KAFKA_VERSION:-$DEFAULT_KAFKA_VERSION}
readonly cache_dir=${KAFKA_CACHE_DIR:-$repo_dir/.cache/kafka}
readonly state_dir=${KAFKA_STATE_DIR:-$cache_dir/run}
readonly jars_dir=$cache_dir/$version/jars
readonly start_timeout_s=${KAFKA_START_TIMEOUT_S:-60}
readonly stop_timeout_s=${KAFKA_STOP_TIMEOUT_S:-20}
readonly heap_opts=${KAFKA_HEAP_OPTS:--Xms128m -Xmx512m}
readonly extra_opts=${KAFKA_OPTS:-}

log() { printf 'kafka-broker: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }
missing() { log "$*"; exit 3; }

# Kafka 4 brokers need Java 17 or newer; an older java would fail later with
# an UnsupportedClassVersionError buried in a log.
check_java() {
  local spec
  command -v java >/dev/null || missing "java not found: Kafka $version needs Java 17+ (apt-get install openjdk-17-jre-headless)"
  spec=$(java -XshowSettings:properties -version 2>&1 | awk -F' = ' '/java.specification.version/ { print $2 }' || true)
  [[ $spec =~ ^[0-9]+ ]] && ((BASH_REMATCH[0] >= 17)) && return 0
  missing "java ${spec:-of unknown version} found at $(command -v java), Kafka $version needs Java 17+ (apt-get install openjdk-17-jre-headless)"
}

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2
  exit 2
}

# --- the jars -------------------------------------------------------------

# Resolves kafka_2.13 and its runtime dependencies into $jars_dir, once.
# A `complete` marker is written last, so an interrupted download is redone
# rather than half-used.
ensure_jars() {
  [[ -f $cache_dir/$version/complete ]] && return 0
  command -v mvn >/dev/null || missing "mvn not found: it is needed once, to download Kafka $version into $jars_dir (apt-get install maven)"
  local work=$cache_dir/$version
  mkdir -p "$work"
  # One download at a time, even with several state dirs starting at once.
  exec 8>"$cache_dir/.download.lock"
  flock 8
  if [[ ! -f $work/complete ]]; then
    log "downloading Kafka $version and its dependencies with Maven (once)..."
    cat >"$work/pom.xml" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<!-- Generated by test/kafka/broker.sh: the jars a Kafka broker needs. -->
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.scratchd</groupId>
  <artifactId>kafka-broker-runtime</artifactId>
  <version>0</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_2.13</artifactId>
      <version>$version</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-slf4j-impl</artifactId>
      <version>$LOG4J_SLF4J_VERSION</version>
    </dependency>
  </dependencies>
  <build>
    <plugins>
      <plugin>
        <groupId>org.apache.maven.plugins</groupId>
        <artifactId>maven-dependency-plugin</artifactId>
        <version>3.8.1</version>
      </plugin>
    </plugins>
  </build>
</project>
EOF
    rm -rf "$work/jars.tmp" "$jars_dir"
    if ! mvn -B -q -Dstyle.color=never -f "$work/pom.xml" \
        dependency:copy-dependencies -DincludeScope=runtime \
        -DoutputDirectory="$work/jars.tmp" >"$work/maven.log" 2>&1; then
      tail -n 30 "$work/maven.log" >&2
      die "Maven could not resolve org.apache.kafka:kafka_2.13:$version (full log: $work/maven.log)"
    fi
    mv "$work/jars.tmp" "$jars_dir"
    touch "$work/complete"
  fi
  flock -u 8
}

# --- ports and processes --------------------------------------------------

# Prints a free TCP port below the kernel's ephemeral range. Outside that
# range no outgoing connection can be given the port while the broker is
# paused, so `resume` can bind it again.
free_port() {
  local low _high port tries
  read -r low _high </proc/sys/net/ipv4/ip_local_port_range
  ((low > 11000)) || low=32768
  for ((tries = 0; tries < 100; tries++)); do
    port=$((10000 + RANDOM % (low - 10000)))
    # Skip ports in use in any state, and ports named in the excludes list.
    if [[ -z $(ss -Htan "( sport = :$port )" 2>/dev/null) && $port != "${1:-}" ]]; then
      echo "$port"
      return 0
    fi
  done
  die "found no free port below $low"
}

# True if <state>/pid names a live JVM running this state dir's broker (a
# recycled pid running something else does not count).
running_pid() {
  local pid
  [[ -f $state_dir/pid ]] || return 1
  pid=$(<"$state_dir/pid")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  [[ -r /proc/$pid/cmdline ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF "kafka.Kafka $state_dir/server.properties" || return 1
  echo "$pid"
}

# The process state letter from /proc (T when stopped by SIGSTOP).
proc_state() { awk '/^State:/ { print $2 }' "/proc/$1/status" 2>/dev/null || true; }

# Sends SIGTERM (or the given signal), waits, then SIGKILL. SIGTERM gives a
# controlled shutdown: logs flushed, clean-shutdown marker written.
terminate() {
  local pid=$1 signal=${2:-TERM} waited=0
  # A frozen JVM cannot handle SIGTERM until it runs again.
  kill -CONT "$pid" 2>/dev/null || true
  kill "-$signal" "$pid" 2>/dev/null || return 0
  while kill -0 "$pid" 2>/dev/null; do
    if ((waited >= stop_timeout_s * 10)); then
      log "broker pid $pid did not stop within ${stop_timeout_s}s; SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    sleep 0.1
    waited=$((waited + 1))
  done
}

bootstrap() { cat "$state_dir/bootstrap"; }

# True if the broker answers a metadata request now (kcat), or without kcat
# if it has logged "Kafka Server started", which KafkaRaftServer does once
# the broker is unfenced and its listeners serve requests.
answers_metadata() {
  if [[ -n $kcat ]]; then
    "$kcat" -L -b "$(bootstrap)" -m "${1:-5}" >/dev/null 2>&1
  else
    started_logged
  fi
}

started_logged() { grep -q 'Kafka Server started' "$state_dir/logs/server.log" 2>/dev/null; }

kcat=
find_kcat() {
  kcat=$(command -v kcat || command -v kafkacat || true)
  [[ -n $kcat ]] || log "kcat not found (apt-get install kcat): readiness falls back to the broker's 'Kafka Server started' log line"
}

# --- configuration --------------------------------------------------------

# Writes server.properties and log4j2.properties for new ports. A single
# process is both controller and broker (KRaft combined mode); everything
# replicated defaults to one replica.
write_config() {
  local port=$1 controller_port=$2
  cat >"$state_dir/server.properties" <<EOF
# Generated by test/kafka/broker.sh for a single-node test broker.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$controller_port
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$controller_port
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$state_dir/data

num.partitions=3
auto.create.topics.enable=true
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
# Few partitions for the internal topics: created on first use, they are
# the slowest part of the first consumer group join or transaction.
offsets.topic.num.partitions=3
transaction.state.log.num.partitions=3
share.coordinator.state.topic.num.partitions=3
# Consumers in tests join at once; the default 3 s delay is only waiting.
group.initial.rebalance.delay.ms=0

# Small and quick: few threads, no telemetry of our own.
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
log.cleaner.threads=1
EOF
  # Kafka 4 logs through log4j2; everything goes to a file in the state dir.
  cat >"$state_dir/log4j2.properties" <<EOF
# Generated by test/kafka/broker.sh.
status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = $state_dir/logs/server.log
appender.file.append = true
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = file
# The chattiest loggers, quieted.
logger.statechange.name = state.change.logger
logger.statechange.level = WARN
logger.cleaner.name = kafka.log.LogCleaner
logger.cleaner.level = WARN
logger.request.name = kafka.request.logger
logger.request.level = WARN
# Every client and server config is dumped in full at INFO, ten times per
# start; server.properties beside this file is the readable version.
logger.config.name = org.apache.kafka.common.config.AbstractConfig
logger.config.level = WARN
EOF
}

# 16 random bytes as a Kafka Uuid string (url-safe base64, no padding);
# Kafka rejects one that starts with '-', as a CLI would take it for a flag.
random_cluster_id() {
  local id
  while :; do
    id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')
    [[ $id == -* ]] || break
  done
  echo "$id"
}

java_opts() {
  # shellcheck disable=SC2206 # these are lists of flags on purpose
  local heap=($heap_opts) extra=($extra_opts)
  # Serial GC: a 512 MB heap on a 2-core machine gains nothing from G1's
  # threads, and the JVM starts a little faster. Extra flags come last so
  # they win.
  printf '%s\n' "${heap[@]}" \
    -XX:+UseSerialGC -XX:+ExitOnOutOfMemoryError \
    -Djava.awt.headless=true \
    "-Dlog4j2.configurationFile=$state_dir/log4j2.properties" \
    "-Dkafka.logs.dir=$state_dir/logs" \
    "${extra[@]}"
}

# Starts the JVM on the existing config and data, then waits for metadata.
launch() {
  local -a opts
  mapfile -t opts < <(java_opts)
  rm -f "$state_dir/paused"
  # setsid: the broker outlives the shell or test runner that started it and
  # does not get the terminal's Ctrl-C meant for that runner.
  setsid java "${opts[@]}" -cp "$jars_dir/*" \
    kafka.Kafka "$state_dir/server.properties" \
    </dev/null >>"$state_dir/logs/stdout.log" 2>&1 8>&- 9>&- &
  echo $! >"$state_dir/pid"
  wait_ready
}

# Waits until the broker answers metadata. The listener socket is bound long
# before requests are served, and kcat's smallest metadata timeout is 1 s, so
# polling kcat alone adds up to a second; the "started" log line is polled
# first (for at most 15 s, should a Kafka version word it differently).
wait_ready() {
  local pid deadline=$((SECONDS + start_timeout_s)) gate=$((SECONDS + 15))
  pid=$(<"$state_dir/pid")
  until { started_logged || ((SECONDS >= gate)); } && answers_metadata 1; do
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -n 20 "$state_dir/logs/stdout.log" "$state_dir/logs/server.log" >&2 2>/dev/null || true
      die "broker exited during start-up (logs: $state_dir/logs)"
    fi
    if ((SECONDS >= deadline)); then
      terminate "$pid"
      die "broker did not answer metadata on $(bootstrap) within ${start_timeout_s}s; stopped it (logs: $state_dir/logs)"
    fi
    sleep 0.1
  done
}

# --- commands ---------------------------------------------------------------

cmd_start() {
  local pid
  if pid=$(running_pid); then
    # A broker left frozen by an interrupted fault test is thawed: `start`
    # promises one that answers.
    if [[ $(proc_state "$pid") == T ]]; then
      log "thawing the frozen broker (pid $pid)"
      kill -CONT "$pid"
      find_kcat
      wait_ready
    fi
    bootstrap
    return 0
  fi
  if [[ -f $state_dir/paused ]]; then
    cmd_resume
    return 0
  fi
  check_java
  ensure_jars
  find_kcat
  local port controller_port cluster_id
  rm -rf "$state_dir/data" "$state_dir/logs" "$state_dir/bootstrap" "$state_dir/pid"
  mkdir -p "$state_dir/data" "$state_dir/logs"
  port=$(free_port)
  controller_port=$(free_port "$port")
  write_config "$port" "$controller_port"
  echo "127.0.0.1:$port" >"$state_dir/bootstrap"
  cluster_id=$(random_cluster_id)
  local -a opts
  mapfile -t opts < <(java_opts)
  # The storage tool is a short-lived JVM: C1 only, it starts faster.
  if ! java "${opts[@]}" -XX:TieredStopAtLevel=1 -cp "$jars_dir/*" kafka.tools.StorageTool \
      format -t "$cluster_id" -c "$state_dir/server.properties" \
      >"$state_dir/logs/format.log" 2>&1; then
    cat "$state_dir/logs/format.log" >&2
    die "formatting $state_dir/data failed"
  fi
  launch
  bootstrap
}

cmd_resume() {
  if running_pid >/dev/null; then
    bootstrap
    return 0
  fi
  [[ -f $state_dir/paused ]] || die "no paused broker in $state_dir (use start)"
  check_java
  ensure_jars
  find_kcat
  local port
  # The same port must be free again: say so plainly if it is not.
  port=$(bootstrap)
  port=${port##*:}
  if [[ -n $(ss -Htln "( sport = :$port )" 2>/dev/null) ]]; then
    die "cannot resume: port $port is now used by another process"
  fi
  launch
  bootstrap
}

cmd_stop() {
  local pid
  if pid=$(running_pid); then
    terminate "$pid"
  fi
  rm -rf "$state_dir/data" "$state_dir/pid" "$state_dir/bootstrap" "$state_dir/paused"
}

cmd_pause() {
  local pid signal=TERM
  [[ ${1:-} == --kill ]] && signal=KILL
  pid=$(running_pid) || die "no running broker in $state_dir"
  terminate "$pid" "$signal"
  rm -f "$state_dir/pid"
  touch "$state_dir/paused"
}

cmd_freeze() {
  local pid
  pid=$(running_pid) || die "no running broker in $state_dir"
  kill -STOP "$pid"
}

cmd_thaw() {
  local pid
  pid=$(running_pid) || die "no running broker in $state_dir"
  kill -CONT "$pid"
}

cmd_status() {
  local pid
  if pid=$(running_pid); then
    if [[ $(proc_state "$pid") == T ]]; then
      log "frozen (pid $pid, $(bootstrap))"
      exit 4
    fi
    find_kcat 2>/dev/null
    if answers_metadata; then
      bootstrap
      return 0
    fi
    log "running (pid $pid) but not answering metadata on $(bootstrap)"
    exit 4
  fi
  if [[ -f $state_dir/paused ]]; then
    log "paused ($(bootstrap))"
    exit 4
  fi
  log "not running (state dir $state_dir)"
  exit 1
}

cmd_logs() {
  printf '%s\n' "$state_dir/logs/server.log" "$state_dir/logs/stdout.log"
}

main() {
  local cmd=${1:-}
  [[ -n $cmd ]] || usage
  shift
  case $cmd in
    start | stop | status | pause | resume | freeze | thaw | logs) ;;
    -h | --help | help) usage ;;
    *) log "unknown command: $cmd"; usage ;;
  esac
  mkdir -p "$state_dir"
  # One command at a time per state dir: parallel test files may all call
  # `start`, and the first one starts the broker for all of them.
  exec 9>"$state_dir/.lock"
  flock 9
  "cmd_$cmd" "$@"
}

main "$@"
