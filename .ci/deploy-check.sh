#!/usr/bin/env bash
# Checks what deploy/ ships, the way each tool that consumes it would:
#   1. systemd: `systemd-analyze verify` of the unit (its ExecStart pointed at a stub, so the
#      check is about the unit, not about this machine), `systemd-analyze security` of its
#      hardening, and the sysusers.d/tmpfiles.d snippets applied to a throwaway root;
#   2. Kubernetes: every manifest against the Kubernetes schemas (kubernetes-validate, pinned, in
#      a virtualenv under the target folder), for the oldest and newest versions we document,
#      plus the promises the manifests make to each other and to the README;
#   3. compose: `docker compose config` where the plugin exists, else the compose-spec schema;
#   4. the `cluster init` commands deploy/README.md gives for compose, Kubernetes and machines,
#      run with the real binary: listen and advertise addresses and certificate names; and a
#      3-node cluster whose nodes reach each other by DNS name, started on loopback and checked
#      with `artstore health`;
#   5. monitoring (deploy/monitoring): .ci/monitoring-check.sh, which checks the Prometheus,
#      Alertmanager, Grafana and compose files with their own tools and every metric they use
#      against a real node;
#   6. the container image: built and started as a 3-node cluster where a Docker daemon answers
#      (`docker info`), otherwise skipped with the reason.
# Every validator is also run on a deliberately broken copy, which it must refuse: a check that
# passes everything is reported as a failure. Exits non-zero if anything failed.
#
# Environment (all optional):
#   ARTSTORE_BIN             the binary (default: target/debug/artstore, built when missing)
#   DEPLOY_CHECK_VENV        virtualenv for the Python validators (default: target/deploy-check-venv)
#   DEPLOY_CHECK_CONTAINER=0 skip the container test even where a Docker daemon answers
set -euo pipefail
cd "$(dirname "$0")/.."

KUBERNETES_VALIDATE_VERSION=1.37.0
CHECK_JSONSCHEMA_VERSION=0.39.0
# The oldest Kubernetes deploy/README.md supports, and the newest the pinned validator knows.
KUBERNETES_VERSIONS=(1.30.0 1.37.0)
# `systemd-analyze security` exposure (0-100, i.e. ten times the score it prints) above which the
# unit counts as not hardened.
SYSTEMD_EXPOSURE_THRESHOLD=25

target_dir=$(mkdir -p "${CARGO_TARGET_DIR:-target}" && cd "${CARGO_TARGET_DIR:-target}" && pwd)
venv=${DEPLOY_CHECK_VENV:-$target_dir/deploy-check-venv}
bin=${ARTSTORE_BIN:-$target_dir/debug/artstore}
unit=deploy/systemd/artstore.service
manifests=(deploy/kubernetes/*.yaml)
compose=deploy/compose/compose.yaml

passed=0
failed=0
skipped=0
pass() { echo "ok: $*"; passed=$((passed + 1)); }
fail() { echo "FAIL: $*" >&2; failed=$((failed + 1)); }
skip() { echo "SKIP: $*"; skipped=$((skipped + 1)); }

work=$(mktemp -d)
node_pids=()
cleanup() {
  for pid in "${node_pids[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${node_pids[@]}"; do
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

# `check NAME FILE CHECKER...`: CHECKER FILE must succeed; `refuse NAME FILE CHECKER...`: it must fail.
check() {
  local name=$1 file=$2; shift 2
  if "$@" "$file" >"$work/out" 2>&1; then pass "$name"; else fail "$name"; sed 's/^/  /' "$work/out" >&2; fi
}
refuse() {
  local name=$1 file=$2; shift 2
  if "$@" "$file" >"$work/out" 2>&1; then
    fail "$name: the check accepted a broken file"
  else
    pass "refused: $name ($(head -n 1 "$work/out" | cut -c1-100))"
  fi
}

# Tools from the distribution, installed as .ci/run installs its own (CI runs as root).
need_pkgs=()
type -P systemd-analyze >/dev/null 2>&1 || need_pkgs+=(systemd)
type -P openssl >/dev/null 2>&1 || need_pkgs+=(openssl)
type -P curl >/dev/null 2>&1 || need_pkgs+=(curl)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  apt-get update -qq && apt-get install -y -qq "${need_pkgs[@]}"
fi

# ---------------------------------------------------------------------------------------------
echo "== systemd"
stub="$work/stub-bin/artstore"
mkdir -p "$(dirname "$stub")"
printf '#!/bin/sh\nexit 0\n' >"$stub"
chmod 0755 "$stub"
# The unit as systemd-analyze sees it, with ExecStart on the stub; `verify` reports most
# mistakes (unknown keys, bad values) as warnings with exit status 0, so any output fails too.
verify_unit() {
  local copy
  copy="$work/verify/$(basename "$1")"
  mkdir -p "$work/verify"
  sed "s#/usr/local/bin/artstore#$stub#g" "$1" >"$copy"
  local out rc=0
  out=$(systemd-analyze verify --man=no --generators=no "$copy" 2>&1) || rc=$?
  [ -n "$out" ] && echo "$out"
  [ "$rc" -eq 0 ] && [ -z "$out" ]
}
check "systemd-analyze verify $unit" "$unit" verify_unit
broken="$work/broken-unit"
mkdir -p "$broken"
sed 's/^NoNewPrivileges=/NoNewPrivilege=/' "$unit" >"$broken/artstore.service"
refuse "a unit with an unknown key" "$broken/artstore.service" verify_unit
sed 's/^ProtectSystem=strict/ProtectSystem=stricter/' "$unit" >"$broken/artstore.service"
refuse "a unit with a bad value" "$broken/artstore.service" verify_unit
sed 's#^ExecStart=/usr/local/bin/artstore#ExecStart=/nonexistent/artstore#' "$unit" >"$broken/artstore.service"
refuse "a unit whose ExecStart does not exist" "$broken/artstore.service" verify_unit

# Hardening, scored by systemd itself, and the snippets that create the user and folders.
security() {
  local root="$work/security-root"
  rm -rf "$root" && mkdir -p "$root/etc/systemd/system"
  cp "$1" "$root/etc/systemd/system/artstore.service"
  systemd-analyze security --offline=true --root="$root" --threshold="$SYSTEMD_EXPOSURE_THRESHOLD" \
    artstore.service | tail -n 1
}
check "systemd-analyze security (exposure at most $SYSTEMD_EXPOSURE_THRESHOLD/100)" "$unit" security
grep -v -e '^ProtectSystem=' -e '^PrivateTmp=' -e '^SystemCallFilter=' -e '^CapabilityBoundingSet=' \
  -e '^ProtectKernel' -e '^RestrictNamespaces=' "$unit" >"$broken/artstore.service"
refuse "a unit without its hardening" "$broken/artstore.service" security

sysroot="$work/sysroot"
mkdir -p "$sysroot/etc"
snippets() {
  systemd-sysusers --root="$sysroot" - <deploy/systemd/artstore.sysusers.conf &&
    systemd-tmpfiles --root="$sysroot" --create - <deploy/systemd/artstore.tmpfiles.conf || return 1
  local user uid
  user=$(sed -n 's/^User=//p' "$unit")
  uid=$(awk -F: -v u="$user" '$1 == u {print $3}' "$sysroot/etc/passwd")
  [ -n "$uid" ] || { echo "sysusers.d does not create the unit's User=$user"; return 1; }
  for d in etc/artstore var/lib/artstore; do
    [ "$(stat -c '%a %u' "$sysroot/$d")" = "700 $uid" ] || { echo "/$d is $(stat -c '%a %u' "$sysroot/$d")"; return 1; }
  done
  grep -q "^ReadWritePaths=.*/var/lib/artstore" "$unit" || { echo "the data folder is not in ReadWritePaths="; return 1; }
}
check "sysusers.d and tmpfiles.d snippets create the unit's user and its private folders" "$unit" snippets

# The unit must outlast the node's own shutdown: HTTP drain 30 s, sidecars 10 s, workers 10 s.
stop_secs=$(sed -n 's/^TimeoutStopSec=\([0-9]*\)s\{0,1\}$/\1/p' "$unit")
if [ -n "$stop_secs" ] && [ "$stop_secs" -gt 50 ]; then pass "TimeoutStopSec=${stop_secs}s exceeds the node's 50 s drain"; else fail "TimeoutStopSec must exceed 50 s"; fi

# ---------------------------------------------------------------------------------------------
echo "== Python validators (pinned, in $venv)"
python=$(type -P python3.11 || type -P python3)
installed() { "$venv/bin/python" -m pip show "$1" 2>/dev/null | awk '/^Version:/ {print $2}'; }
if [ "$(installed kubernetes-validate)" != "$KUBERNETES_VALIDATE_VERSION" ] ||
  [ "$(installed check-jsonschema)" != "$CHECK_JSONSCHEMA_VERSION" ]; then
  echo "installing kubernetes-validate $KUBERNETES_VALIDATE_VERSION and check-jsonschema $CHECK_JSONSCHEMA_VERSION"
  "$python" -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check \
    "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION" "check-jsonschema==$CHECK_JSONSCHEMA_VERSION"
fi

echo "== Kubernetes"
kube_validate() {
  local v
  for v in "${KUBERNETES_VERSIONS[@]}"; do
    "$venv/bin/kubernetes-validate" --strict --quiet -k "$v" "$1" || return 1
  done
}
for m in "${manifests[@]}"; do
  check "kubernetes-validate --strict $m (${KUBERNETES_VERSIONS[*]})" "$m" kube_validate
done
sed 's/^  replicas: 3$/  replicas: three/' deploy/kubernetes/statefulset.yaml >"$work/statefulset.yaml"
refuse "a StatefulSet with a wrong type" "$work/statefulset.yaml" kube_validate
sed 's/readinessProbe:/readynessProbe:/' deploy/kubernetes/statefulset.yaml >"$work/statefulset.yaml"
refuse "a StatefulSet with an unknown field" "$work/statefulset.yaml" kube_validate

# What the schemas cannot see: the manifests' promises to each other and to the README.
kube_promises() {
  "$venv/bin/python" - "$1"/*.yaml <<'EOF'
import sys, yaml
docs = [d for f in sys.argv[1:] for d in yaml.safe_load_all(open(f)) if d]
by = {(d["kind"], d["metadata"]["name"]): d for d in docs}
problems = []
def need(ok, what):
    if not ok:
        problems.append(what)
sts = by[("StatefulSet", "artstore")]
spec, pod = sts["spec"], sts["spec"]["template"]["spec"]
labels = sts["spec"]["template"]["metadata"]["labels"]
headless = by.get(("Service", spec["serviceName"]))
need(headless is not None, "serviceName names a Service of these manifests")
if headless:
    need(headless["spec"].get("clusterIP") == "None", "the StatefulSet's Service is headless")
    need(headless["spec"].get("publishNotReadyAddresses") is True,
         "pod names resolve before the pods are ready (publishNotReadyAddresses)")
need(spec.get("podManagementPolicy") == "Parallel", "pods start together (podManagementPolicy: Parallel)")
need(pod.get("terminationGracePeriodSeconds", 30) > 50, "terminationGracePeriodSeconds exceeds the node's 50 s drain")
need(all(n.get("namespace") == "artstore" for n in (d["metadata"] for d in docs) if "namespace" in n),
     "one namespace")
main = next(c for c in pod["containers"] if c["name"] == "artstore")
ports = {p["name"]: (p["containerPort"], p.get("protocol", "TCP")) for p in main["ports"]}
for (kind, name), d in by.items():
    if kind == "Service":
        for p in d["spec"]["ports"]:
            need(p["targetPort"] in ports and ports[p["targetPort"]][1] == p.get("protocol", "TCP"),
                 f"Service {name} port {p['name']} targets a container port of the same protocol")
for probe, path in [("readinessProbe", "/health/ready"), ("livenessProbe", "/health/live")]:
    g = main.get(probe, {}).get("httpGet", {})
    need(g.get("path") == path and g.get("scheme") == "HTTPS", f"{probe} asks {path} over HTTPS")
sc, csc = pod.get("securityContext", {}), main.get("securityContext", {})
need(sc.get("runAsNonRoot") is True and sc.get("runAsUser", 0) != 0, "pods run as a non-root user")
for c in pod["containers"] + pod.get("initContainers", []):
    s = c.get("securityContext", {})
    need(s.get("readOnlyRootFilesystem") is True and s.get("allowPrivilegeEscalation") is False,
         f"container {c['name']}: read-only root, no privilege escalation")
anti = pod["affinity"]["podAntiAffinity"]
keys = [t["topologyKey"] for t in anti.get("requiredDuringSchedulingIgnoredDuringExecution", [])]
keys += [t["podAffinityTerm"]["topologyKey"] for t in anti.get("preferredDuringSchedulingIgnoredDuringExecution", [])]
need({"kubernetes.io/hostname", "topology.kubernetes.io/zone"} <= set(keys), "anti-affinity over machines and zones")
pdb = by[("PodDisruptionBudget", "artstore")]["spec"]
need(pdb.get("maxUnavailable") == 1, "the PodDisruptionBudget keeps a Raft majority of 3 (maxUnavailable: 1)")
need(pdb["selector"]["matchLabels"].items() <= labels.items(), "the PodDisruptionBudget selects the pods")
np = by[("NetworkPolicy", "artstore")]["spec"]
for rule in np["ingress"]:
    if any(p.get("protocol") == "UDP" for p in rule["ports"]):
        need(all("podSelector" in f and f["podSelector"].get("matchLabels", {}).items() <= labels.items()
                 and f["podSelector"].get("matchLabels") for f in rule["from"]),
             "QUIC is open only to ArtStore pods")
claims = [t["metadata"]["name"] for t in spec.get("volumeClaimTemplates", [])]
need(any(m["name"] in claims and m["mountPath"] == "/var/lib/artstore" for m in main["volumeMounts"]),
     "the data folder is on the pod's own volume")
for p in problems:
    print("broken promise:", p)
sys.exit(1 if problems else 0)
EOF
}
check "the manifests keep their promises (headless names, Parallel start, probes, PDB, policy, security)" \
  deploy/kubernetes kube_promises
mkdir -p "$work/kube-broken"
cp deploy/kubernetes/*.yaml "$work/kube-broken/"
sed -i 's/publishNotReadyAddresses: true/publishNotReadyAddresses: false/' "$work/kube-broken/services.yaml"
refuse "manifests whose pod names only resolve once ready" "$work/kube-broken" kube_promises

# ---------------------------------------------------------------------------------------------
echo "== compose"
if docker compose version >/dev/null 2>&1; then
  compose_check() { docker compose -f "$1" config --quiet; }
  how="docker compose config"
else
  echo "(no docker compose here: checking against the compose-spec schema instead)"
  compose_check() { "$venv/bin/check-jsonschema" --builtin-schema vendor.compose-spec "$1"; }
  how="compose-spec schema"
fi
check "$how: $compose" "$compose" compose_check
sed 's/stop_grace_period:/stop_grace_periods:/' "$compose" >"$work/compose.yaml"
refuse "a compose file with an unknown key" "$work/compose.yaml" compose_check

# ---------------------------------------------------------------------------------------------
echo "== cluster init layouts (the commands of deploy/README.md)"
[ -x "$bin" ] || cargo build -p artstore
# `san FILE`: the subject alternative names of a certificate, one per line.
san() { openssl x509 -in "$1" -noout -ext subjectAltName | tail -n +2 | tr ',' '\n' | sed 's/^ *//'; }
layout() {
  local name=$1 out=$2; shift 2
  if ! "$bin" cluster init "$@" --out "$out" >"$work/out" 2>&1; then fail "$name: cluster init"; cat "$work/out" >&2; return 1; fi
}
expect() { # expect NAME FILE PATTERN...: every pattern is a line of FILE
  local name=$1 file=$2 p; shift 2
  for p in "$@"; do
    grep -qxF -- "$p" "$file" || { fail "$name: $file has no line $p"; return 1; }
  done
  pass "$name"
}

out="$work/compose-files"
if layout compose "$out" --nodes 3 --node-host 'artstore-{i}' --listen-host 0.0.0.0 --base-port 8080 \
  --host localhost --data-dir /var/lib/artstore/data; then
  expect "compose: node 2 listens on 0.0.0.0 and advertises its service name" "$out/node2/config.toml" \
    'data_dir = "/var/lib/artstore/data"' 'listen = "0.0.0.0:8080"' 'advertise = "artstore-2:8080"' \
    'listen = "0.0.0.0:9080"' 'advertise = "artstore-2:9080"' 'quic_addr = "artstore-3:9080"'
  san "$out/node2/api.pem" >"$work/san"
  expect "compose: node 2's API certificate names its service, localhost and loopback" "$work/san" \
    DNS:artstore-2 DNS:localhost "IP Address:127.0.0.1"
  if grep -qx DNS:artstore-1 "$work/san"; then fail "compose: node 2's API certificate names artstore-1"; fi
fi

ns=archive
out="$work/kubernetes-files"
if layout kubernetes "$out" --nodes 3 --node-host "artstore-{ordinal}.artstore.$ns.svc.cluster.local" \
  --base-port 8080 --data-dir /var/lib/artstore/data --host "artstore-api" --host "artstore-api.$ns.svc" \
  --host "artstore-api.$ns.svc.cluster.local" --host "artstore-{ordinal}.artstore.$ns.svc"; then
  expect "kubernetes: node 1 is pod artstore-0 and listens on 0.0.0.0" "$out/node1/config.toml" \
    'listen = "0.0.0.0:8080"' "advertise = \"artstore-0.artstore.$ns.svc.cluster.local:9080\"" \
    "http_addr = \"artstore-2.artstore.$ns.svc.cluster.local:8080\""
  san "$out/node1/api.pem" >"$work/san"
  expect "kubernetes: node 1's API certificate names its pod and the client Service" "$work/san" \
    "DNS:artstore-0.artstore.$ns.svc.cluster.local" "DNS:artstore-0.artstore.$ns.svc" \
    "DNS:artstore-api.$ns.svc.cluster.local" DNS:artstore-api
  san "$out/node1/node.pem" >"$work/san"
  expect "kubernetes: node 1's cluster certificate names its cluster identity and its pod" "$work/san" \
    DNS:node1.artstore.internal "DNS:artstore-0.artstore.$ns.svc.cluster.local"
  if "$bin" cluster add-node --out "$out" --node-id 4 --node-host "artstore-{ordinal}.artstore.$ns.svc.cluster.local" \
    --base-port 8080 --data-dir /var/lib/artstore/data --host artstore-api >"$work/out" 2>&1; then
    expect "kubernetes: scaling up, node 4 is pod artstore-3 and starts without bootstrap peers" \
      "$out/node4/config.toml" "advertise = \"artstore-3.artstore.$ns.svc.cluster.local:8080\""
    if grep -q '^\[\[peers\]\]' "$out/node4/config.toml"; then fail "kubernetes: node 4 lists bootstrap peers"; fi
  else
    fail "kubernetes: cluster add-node"; cat "$work/out" >&2
  fi
  # The Secret the README creates: one key per file, nodeN.FILE, each a valid key name.
  keys=$(cd "$out" && for d in node*/; do for f in "$d"*; do echo "${d%/}.$(basename "$f")"; done; done)
  if echo "$keys" | grep -qvE '^[-._a-zA-Z0-9]+$' || [ "$(echo "$keys" | wc -l)" -ne 24 ]; then
    fail "kubernetes: the Secret keys of four node folders: $keys"
  else
    pass "kubernetes: four node folders make 24 valid Secret keys"
  fi
fi

out="$work/machine-files"
if layout machines "$out" --nodes 3 --node-host archive-1.example.com --node-host archive-2.example.com \
  --node-host archive-3.example.com --base-port 8443 --data-dir /var/lib/artstore/data; then
  expect "machines: node 3 listens on 0.0.0.0:8443 and advertises its machine's name" "$out/node3/config.toml" \
    'listen = "0.0.0.0:8443"' 'advertise = "archive-3.example.com:8443"'
fi
if "$bin" cluster init --nodes 3 --out "$work/refused" --node-host artstore >"$work/out" 2>&1; then
  fail "cluster init accepted three nodes on one host name with the same ports"
else
  pass "refused: three nodes sharing one --node-host ($(head -n 1 "$work/out" | cut -c1-80))"
fi

# A real cluster whose nodes know each other only by DNS name: `localhost` (resolved at each dial)
# on loopback ports, with the API over HTTPS, checked with `artstore health`.
port=$("$python" - <<'EOF'
import random, socket
for _ in range(200):
    p = random.randint(20000, 40000)
    try:
        socks = []
        for q in (p, p + 1, p + 2):
            t = socket.socket(socket.AF_INET, socket.SOCK_STREAM); t.bind(("127.0.0.1", q)); socks.append(t)
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.1", q + 1000)); socks.append(u)
        for s in socks: s.close()
        print(p); break
    except OSError:
        pass
EOF
)
out="$work/dns-cluster"
if layout "DNS-named cluster" "$out" --nodes 3 --host localhost --listen-host 127.0.0.1 --base-port "$port"; then
  for i in 1 2 3; do
    "$bin" start --config "$out/node$i/config.toml" >"$out/node$i.log" 2>&1 &
    node_pids+=($!)
  done
  ready=1
  for i in 1 2 3; do
    if ! "$bin" health --config "$out/node$i/config.toml" --wait 60 >"$work/out" 2>&1; then
      ready=0; cat "$work/out" >&2; tail -n 20 "$out/node$i.log" >&2
    fi
  done
  if [ "$ready" = 1 ] &&
    ARTSTORE_CA_CERT="$out/ca/ca.pem" ARTSTORE_CREDENTIALS="$out/admin-credentials.json" \
      "$bin" cluster status --url "https://127.0.0.1:$port" --output json >"$work/status.json" &&
    [ "$("$python" -c 'import json,sys; s=json.load(open(sys.argv[1])); print(sum(m["reachable"] and m["quic_addr"].startswith("localhost:") for m in s["members"]))' "$work/status.json")" = 3 ]; then
    pass "a 3-node cluster whose peers are dialled by DNS name elects a leader; every node is ready"
  else
    fail "the DNS-named 3-node cluster did not become ready"
    cat "$work/status.json" >&2 2>/dev/null || true
  fi
  for pid in "${node_pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  clean=1
  for pid in "${node_pids[@]}"; do wait "$pid" || clean=0; done
  node_pids=()
  if [ "$clean" = 1 ]; then pass "the nodes stop cleanly on SIGTERM"; else fail "a node did not exit 0 on SIGTERM"; fi
fi

# ---------------------------------------------------------------------------------------------
echo "== monitoring"
if DEPLOY_CHECK_VENV="$venv" CHECK_JSONSCHEMA_VERSION="$CHECK_JSONSCHEMA_VERSION" ARTSTORE_BIN="$bin" \
  .ci/monitoring-check.sh; then
  pass "deploy/monitoring: rules, tests, configs, dashboard and compose file; every metric they use is exported"
else
  fail "deploy/monitoring (.ci/monitoring-check.sh)"
fi

# ---------------------------------------------------------------------------------------------
echo "== container image"
if [ "${DEPLOY_CHECK_CONTAINER:-1}" = 0 ]; then
  skip "container test: DEPLOY_CHECK_CONTAINER=0"
elif ! type -P docker >/dev/null 2>&1; then
  skip "container test: no docker client on this machine"
elif ! docker info >"$work/docker-info" 2>&1; then
  skip "container test: no Docker daemon answers ($(grep -m1 -i -e 'cannot connect' -e error "$work/docker-info" | cut -c1-120))"
else
  .ci/deploy-container-test.sh && pass "the image runs a 3-node cluster that becomes healthy and stops cleanly" ||
    fail "container test"
fi

echo
echo "deploy-check: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
