#!/usr/bin/env bash
# Runs a local 3-node ArtStore cluster on 127.0.0.1.
#
#   deploy/local-cluster.sh start DIR   # creates DIR with `artstore cluster init` on first use,
#                                       # starts the three nodes, waits until they are ready
#   deploy/local-cluster.sh stop DIR    # stops exactly the processes `start` launched
#
# The binary is $ARTSTORE_BIN, else `artstore` on PATH, else target/debug/artstore (built if absent).
# Ports: HTTP 8081-8083, QUIC 9081-9083 (change with ARTSTORE_BASE_PORT).
# The API is HTTPS with certificates from the cluster CA (DIR/ca/ca.pem); ARTSTORE_PLAIN_HTTP=1
# at first start makes it plain HTTP.
set -euo pipefail

usage() { echo "usage: $0 start|stop DIR" >&2; exit 2; }
[ $# -eq 2 ] || usage
cmd=$1
dir=$2
root=$(cd "$(dirname "$0")/.." && pwd)
base_port=${ARTSTORE_BASE_PORT:-8081}

find_bin() {
  if [ -n "${ARTSTORE_BIN:-}" ]; then echo "$ARTSTORE_BIN"; return; fi
  if command -v artstore >/dev/null 2>&1; then command -v artstore; return; fi
  if [ ! -x "$root/target/debug/artstore" ]; then
    echo "building artstore..." >&2
    (cd "$root" && cargo build -q -p artstore) >&2
  fi
  echo "$root/target/debug/artstore"
}

# A pid file is trusted only if that process is still our node for this config.
our_pid() {
  local node_dir=$1 pid
  [ -f "$node_dir/pid" ] || return 1
  pid=$(cat "$node_dir/pid")
  [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' ' ' < "/proc/$pid/cmdline" | grep -q -- "--config $node_dir/config.toml" || return 1
  echo "$pid"
}

start() {
  local bin; bin=$(find_bin)
  if [ ! -d "$dir/ca" ]; then
    local plain=()
    [ "${ARTSTORE_PLAIN_HTTP:-}" = 1 ] && plain=(--plain-http)
    "$bin" cluster init --nodes 3 --out "$dir" --base-port "$base_port" "${plain[@]}" >/dev/null
    echo "created cluster files in $dir (admin credentials: $dir/admin-credentials.json)"
  fi
  dir=$(cd "$dir" && pwd)
  for i in 1 2 3; do
    local nd="$dir/node$i"
    if pid=$(our_pid "$nd"); then echo "node $i already running (pid $pid)"; continue; fi
    nohup "$bin" start --config "$nd/config.toml" >>"$nd/node.log" 2>&1 &
    echo $! > "$nd/pid"
  done
  local scheme=http tls=()
  if grep -q '^\[http.tls\]' "$dir/node1/config.toml"; then scheme=https tls=(--cacert "$dir/ca/ca.pem"); fi
  local urls=()
  for i in 1 2 3; do
    local url port=$((base_port + i - 1))
    url="$scheme://127.0.0.1:$port"
    for _ in $(seq 1 100); do
      if curl -fsS "${tls[@]}" "$url/health/ready" >/dev/null 2>&1; then break; fi
      if ! our_pid "$dir/node$i" >/dev/null; then
        echo "node $i exited; last log lines:" >&2; tail -n 20 "$dir/node$i/node.log" >&2; exit 1
      fi
      sleep 0.2
    done
    curl -fsS "${tls[@]}" "$url/health/ready" >/dev/null 2>&1 || { echo "node $i not ready at $url" >&2; exit 1; }
    echo "node $i ready: $url"
    urls+=("$url")
  done
  local joined; joined=$(IFS=,; echo "${urls[*]}")
  echo "export ARTSTORE_URL=$joined ARTSTORE_CREDENTIALS=$dir/admin-credentials.json"
  [ "$scheme" = https ] && echo "export ARTSTORE_CA_CERT=$dir/ca/ca.pem"
  return 0
}

stop() {
  [ -d "$dir" ] || { echo "no such folder: $dir" >&2; exit 1; }
  dir=$(cd "$dir" && pwd)
  for i in 1 2 3; do
    local nd="$dir/node$i" pid
    if pid=$(our_pid "$nd"); then
      kill -TERM "$pid"
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid"; fi
      echo "node $i stopped"
    fi
    rm -f "$nd/pid"
  done
}

case $cmd in
  start) start ;;
  stop) stop ;;
  *) usage ;;
esac
