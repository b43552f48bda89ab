#!/usr/bin/env bash
# Schema-driven fuzzing of the HTTP API with schemathesis: starts a throwaway `artstore dev` node,
# takes a token for its bootstrap admin, and lets schemathesis call every operation of the node's
# own OpenAPI document (GET /api/v1/openapi.json) with generated valid and invalid input. It fails
# on a 5xx, a status code the document does not list, or a body that does not match its schema,
# and prints a curl command that reproduces each failure. Exits non-zero on any failure.
#
# Environment (all optional):
#   ARTSTORE_BIN                 the binary (default: target/debug/artstore, built when missing)
#   SCHEMATHESIS_VENV            virtualenv to install schemathesis into (default: target/schemathesis-venv)
#   SCHEMATHESIS_MAX_EXAMPLES    generated cases per operation and phase (default 50)
#   SCHEMATHESIS_TLS=1           start the node with `--tls` and talk https://, trusting DATA_DIR/tls/ca.pem
#   SCHEMATHESIS_CA=FILE         the CA bundle to trust instead (passed to --tls-verify)
#   SCHEMATHESIS_SEED=N          reproduce an earlier run's generated input
#   SCHEMATHESIS_CHECKS=a,b      the checks to run (default: see `checks` below; `all` for every one)
set -euo pipefail
cd "$(dirname "$0")/.."

SCHEMATHESIS_VERSION=4.32.5
target_dir=$(mkdir -p "${CARGO_TARGET_DIR:-target}" && cd "${CARGO_TARGET_DIR:-target}" && pwd)
venv=${SCHEMATHESIS_VENV:-$target_dir/schemathesis-venv}
bin=${ARTSTORE_BIN:-$target_dir/debug/artstore}
max_examples=${SCHEMATHESIS_MAX_EXAMPLES:-50}

python=$(type -P python3.11 || type -P python3)
if [ "$("$venv/bin/schemathesis" --version 2>/dev/null | awk '{print $NF}')" != "$SCHEMATHESIS_VERSION" ]; then
  echo "installing schemathesis $SCHEMATHESIS_VERSION into $venv"
  "$python" -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi
[ -x "$bin" ] || cargo build -p artstore

work=$(mktemp -d)
node_pid=
cleanup() {
  if [ -n "$node_pid" ] && kill -0 "$node_pid" 2>/dev/null; then
    kill -TERM "$node_pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$node_pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$node_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

# A free TCP port for HTTP whose +1000 is a free UDP port for the node's QUIC transport.
port=$("$python" - <<'EOF'
import random, socket
for _ in range(200):
    p = random.randint(20000, 40000)
    try:
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM); t.bind(("127.0.0.1", p))
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.1", p + 1000))
        t.close(); u.close(); print(p); break
    except OSError:
        pass
EOF
)

dev_args=(dev --data-dir "$work/data" --http "127.0.0.1:$port")
scheme=http
if [ "${SCHEMATHESIS_TLS:-}" = 1 ]; then
  dev_args+=(--tls)
  scheme=https
fi
"$bin" "${dev_args[@]}" >"$work/node.log" 2>&1 &
node_pid=$!
base="$scheme://127.0.0.1:$port"

ca=${SCHEMATHESIS_CA:-}
if [ -n "$ca" ]; then ca=$(realpath "$ca"); fi
if [ "$scheme" = https ] && [ -z "$ca" ]; then ca="$work/data/tls/ca.pem"; fi
curl_tls=()
tls_verify=()
if [ -n "$ca" ]; then
  curl_tls=(--cacert "$ca")
  tls_verify=(--tls-verify "$ca")
fi

for _ in $(seq 120); do
  if curl -sf "${curl_tls[@]}" "$base/health/ready" >/dev/null 2>&1; then break; fi
  kill -0 "$node_pid" 2>/dev/null || { cat "$work/node.log"; echo "the node exited" >&2; exit 1; }
  sleep 0.5
done
curl -sf "${curl_tls[@]}" "$base/health/ready" >/dev/null || { cat "$work/node.log"; echo "the node never became ready" >&2; exit 1; }

read -r client_id client_secret < <("$python" -c \
  'import json,sys; c=json.load(open(sys.argv[1])); print(c["client_id"], c["client_secret"])' \
  "$work/data/admin-credentials.json")
token=$(curl -sf "${curl_tls[@]}" -u "$client_id:$client_secret" -d grant_type=client_credentials \
  "$base/api/v1/auth/token" | "$python" -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')

checks=${SCHEMATHESIS_CHECKS:-not_a_server_error,status_code_conformance,response_schema_conformance,content_type_conformance}
common=(
  --checks "$checks"
  --max-examples "$max_examples"
  --request-timeout 20
  # One worker: with threads, hypothesis on CPython 3.11 sometimes fails inside its own lambda
  # parser ("AST constructor recursion depth mismatch"), which would count as an error.
  --workers 1
  --suppress-health-check all
  --generation-database none
  --no-color
  "${tls_verify[@]}"
)
[ -n "${SCHEMATHESIS_SEED:-}" ] && common+=(--seed "$SCHEMATHESIS_SEED")

status=0
started=$(date +%s)
# Run from a folder under the target dir: schemathesis keeps its crash cache (for `st replay`)
# in the current folder.
mkdir -p "$target_dir/schemathesis"
run() {
  (cd "$target_dir/schemathesis" && timeout 900 "$venv/bin/schemathesis" run "$base/api/v1/openapi.json" \
    "${common[@]}" "$@") || status=$?
}
# The token endpoint first, by HTTP Basic with the admin's secret (the next pass may rotate it).
# (Stateful testing follows links between operations; a pass of one operation has none.)
single=(--phases examples,coverage,fuzzing)
run --include-path /api/v1/auth/token --auth "$client_id:$client_secret" "${single[@]}"
# Every other operation with the admin's bearer token (admin may call every operation), except
# the ones whose effect cannot be undone: a storage element's mode only moves forward, and once
# the node's element is read-only every later upload is refused with 507; a revocation of the
# admin's tokens would refuse every later call with 401.
run --exclude-path /api/v1/auth/token --exclude-operation-id set_storage_element_mode \
  --exclude-operation-id revoke_tokens --header "Authorization: Bearer $token"
# Those last.
run --include-operation-id set_storage_element_mode --header "Authorization: Bearer $token" "${single[@]}"
run --include-operation-id revoke_tokens --header "Authorization: Bearer $token" "${single[@]}"
echo "schemathesis took $(( $(date +%s) - started )) s"

if grep -q "panicked" "$work/node.log"; then
  grep -B2 -A5 "panicked" "$work/node.log" >&2
  echo "the node panicked during the run" >&2
  status=1
fi
exit "$status"
