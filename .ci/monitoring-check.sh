#!/usr/bin/env bash
# Checks deploy/monitoring/ the way Prometheus, Alertmanager, Grafana and compose would, and
# against a real node:
#   1. `promtool check config` of prometheus.yml (with its rule file), `promtool check rules`,
#      `promtool test rules` of the unit tests, `amtool check-config` of alertmanager.yml; every
#      alert has a severity and its summary, description and runbook;
#   2. compose.yaml: `docker compose config` where the plugin exists, else the compose-spec
#      schema, plus what neither sees: the files it mounts exist, and prometheus.yml, the Grafana
#      provisioning and compose.yaml name the same services, ports and paths as the cluster's
#      compose file;
#   3. the Grafana dashboard: valid JSON, a dashboard Grafana can load (unique panel ids, every
#      query on the templated data source, the `instance` variable);
#   4. a real node (`artstore dev --tls`): an authenticated upload, a download and a search, then
#      every metric named by an alert, a unit test or a dashboard query must be in its /metrics
#      (histograms as `_bucket`/`_sum`/`_count`), except the few in LATE_METRICS below that only
#      appear after events a short run cannot cause; those must still be emitted by the code;
#   5. where the `prometheus` binary exists: Prometheus with prometheus.yml's scrape settings
#      (HTTPS, the node's CA) scrapes that node, evaluates every rule without an error, and
#      answers every dashboard query.
# Every validator is also run on a deliberately broken copy, which it must refuse. Installs
# Debian's prometheus and prometheus-alertmanager packages when promtool is missing (as root; as
# another user those checks are skipped, saying why). Exits non-zero if anything failed.
#
# Environment (all optional):
#   ARTSTORE_BIN               the binary (default: target/debug/artstore, built when missing)
#   DEPLOY_CHECK_VENV          virtualenv with check-jsonschema (default: target/deploy-check-venv,
#                              shared with .ci/deploy-check.sh, which calls this script)
#   CHECK_JSONSCHEMA_VERSION   installed there when missing (default: deploy-check.sh's pin)
set -euo pipefail
cd "$(dirname "$0")/.."

CHECK_JSONSCHEMA_VERSION=${CHECK_JSONSCHEMA_VERSION:-0.39.0}
target_dir=$(mkdir -p "${CARGO_TARGET_DIR:-target}" && cd "${CARGO_TARGET_DIR:-target}" && pwd)
venv=${DEPLOY_CHECK_VENV:-$target_dir/deploy-check-venv}
bin=${ARTSTORE_BIN:-$target_dir/debug/artstore}
mon=deploy/monitoring

# Metrics that a node exports only after an event this short run cannot cause; each must still be
# emitted somewhere in the code (checked below). Keep this list short.
LATE_METRICS=(
  # periodic work that starts later than this check lasts
  artstore_storage_missing_replicas            # the first garbage-collection pass, 10 min after start
  artstore_repair_queue_files                  # the leader's first repair pass, 30 s after start
  artstore_scrub_bytes_total                   # the first scrub pass, 60 s after start
  # no peers on a one-node dev cluster
  artstore_rpc_requests_total
  artstore_raft_peer_rtt_seconds
  # faults: repair, straggling replicas, connection caps (the counters alerts watch for faults
  # are registered at 0 at start-up and are not listed here)
  artstore_repair_chunks_total
  artstore_repair_bytes_total
  artstore_ingest_straggler_replicas_total
  artstore_http_connections_refused_total
)

passed=0
failed=0
skipped=0
pass() { echo "ok: $*"; passed=$((passed + 1)); }
fail() { echo "FAIL: $*" >&2; failed=$((failed + 1)); }
skip() { echo "SKIP: $*"; skipped=$((skipped + 1)); }

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT INT TERM
started=$(date +%s)

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
    pass "refused: $name ($(grep -vE '^\s*(Checking|Unit Testing|FAILED:\s*$)' "$work/out" |
      grep -m1 -iE 'error|broken|missing|unknown|undefined|does not|alertname|FAILED' | sed 's/^ *//' | cut -c1-100))"
  fi
}
# `broken_copy SED_EXPR FILE`: a copy of deploy/ under $work with FILE (a path under deploy/)
# edited by SED_EXPR; prints the copy's path of FILE. Relative paths between the files still hold.
broken_copy() {
  rm -rf "$work/broken" && mkdir -p "$work/broken" && cp -r deploy "$work/broken/"
  sed -i "$1" "$work/broken/$2"
  if cmp -s "$2" "$work/broken/$2"; then echo "broken_copy: '$1' changed nothing in $2" >&2; return 1; fi
  echo "$work/broken/$2"
}

# ---------------------------------------------------------------------------------------------
echo "== tools"
if ! type -P promtool >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    echo "installing Debian's prometheus and prometheus-alertmanager (promtool, amtool)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      prometheus prometheus-alertmanager >"$work/apt.log" 2>&1 || { cat "$work/apt.log" >&2; fail "apt-get install prometheus"; }
  fi
fi
have_promtool=0
if type -P promtool >/dev/null 2>&1; then
  have_promtool=1
  echo "$(promtool --version 2>&1 | head -n 1)"
else
  skip "promtool checks: promtool is missing and this user ($(id -un)) cannot install Debian's prometheus package; run as root or install it"
fi
python=$(type -P python3.11 || type -P python3)
if ! "$venv/bin/check-jsonschema" --version 2>/dev/null | grep -qF "$CHECK_JSONSCHEMA_VERSION"; then
  echo "installing check-jsonschema $CHECK_JSONSCHEMA_VERSION into $venv"
  "$python" -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "check-jsonschema==$CHECK_JSONSCHEMA_VERSION"
fi
# The checks below read YAML with ruamel.yaml, which check-jsonschema brings.
vpy="$venv/bin/python"

# ---------------------------------------------------------------------------------------------
echo "== Prometheus and Alertmanager files"
rules=$mon/rules/artstore.rules.yml
tests=$mon/rules/artstore.rules.test.yml
if [ "$have_promtool" = 1 ]; then
  # Relative paths in prometheus.yml (rule_files) are relative to its folder.
  check_config() { (cd "$(dirname "$1")" && promtool check config "$(basename "$1")"); }
  check "promtool check config $mon/prometheus.yml (and the rule files it names)" "$mon/prometheus.yml" check_config
  f=$(broken_copy 's/^  scrape_interval:/  scrape_intervall:/' "$mon/prometheus.yml")
  refuse "a Prometheus config with an unknown key" "$f" check_config
  f=$(broken_copy 's#rules/artstore.rules.yml#rules/artstore.rule.yml#' "$mon/prometheus.yml")
  refuse "a Prometheus config naming a rule file that does not exist" "$f" check_config

  check_rules() { promtool check rules "$1"; }
  check "promtool check rules $rules" "$rules" check_rules
  f=$(broken_copy 's/histogram_quantile(0.99/histogram_quantil(0.99/' "$rules")
  refuse "a rule with an unknown function" "$f" check_rules

  test_rules() { (cd "$(dirname "$1")" && promtool test rules "$(basename "$1")"); }
  check "promtool test rules $tests" "$tests" test_rules
  # The same tests against rules whose node-down alert never fires must fail.
  f=$(broken_copy 's/expr: up{job="artstore"} == 0/expr: up{job="artstore"} == 2/' "$rules")
  refuse "the unit tests, with a node-down rule that cannot fire" "$(dirname "$f")/$(basename "$tests")" test_rules
  f=$(broken_copy 's/artstore_change_feed_lag_entries{job="artstore"} > 1000/artstore_change_feed_lag_entries{job="artstore"} > 10000/' "$rules")
  refuse "the unit tests, with a change-feed rule that cannot fire" "$(dirname "$f")/$(basename "$tests")" test_rules
  f=$(broken_copy 's/ - time() < 7 \* 86400/ - time() < 86400/' "$rules")
  refuse "the unit tests, with a certificate rule that fires a day before expiry" "$(dirname "$f")/$(basename "$tests")" test_rules

  if type -P amtool >/dev/null 2>&1; then
    check_am() { amtool check-config "$1"; }
    check "amtool check-config $mon/alertmanager.yml" "$mon/alertmanager.yml" check_am
    f=$(broken_copy 's/^  receiver: operators/  receiver: nobody/' "$mon/alertmanager.yml")
    refuse "an Alertmanager config routing to an undefined receiver" "$f" check_am
  else
    skip "amtool check-config: amtool is missing (Debian's prometheus-alertmanager)"
  fi
fi

# Every alert: a severity of critical or warning, and its summary, description and runbook.
alert_shape() {
  "$vpy" - "$1" <<'EOF'
import sys
from ruamel.yaml import YAML
doc = YAML(typ="safe").load(open(sys.argv[1]))
problems, names = [], set()
for g in doc["groups"]:
    for r in g["rules"]:
        name = r.get("alert") or r.get("record")
        if "alert" not in r:
            continue
        if name in names:
            problems.append(f"{name}: defined twice")
        names.add(name)
        if r.get("labels", {}).get("severity") not in ("critical", "warning"):
            problems.append(f"{name}: severity must be critical or warning")
        ann = r.get("annotations", {})
        for key in ("summary", "description", "runbook"):
            if not str(ann.get(key, "")).strip():
                problems.append(f"{name}: no {key} annotation")
        if "\n" in str(ann.get("runbook", "")).strip():
            problems.append(f"{name}: the runbook is one line")
for p in problems:
    print("broken:", p)
print(f"{len(names)} alerts")
sys.exit(1 if problems or not names else 0)
EOF
}
check "every alert has a severity, a summary, a description and a one-line runbook" "$rules" alert_shape
f=$(broken_copy '0,/^          runbook: /s//          notes: /' "$rules")
refuse "an alert without a runbook" "$f" alert_shape

# deploy/README.md's alert table ("Monitoring", "Alerts") lists exactly the alerts of the rules.
readme_alerts() {
  "$vpy" - "$1" deploy/README.md <<'EOF'
import re, sys
from ruamel.yaml import YAML
rules = {r["alert"] for g in YAML(typ="safe").load(open(sys.argv[1]))["groups"] for r in g["rules"] if "alert" in r}
text = open(sys.argv[2]).read()
section = text.split("### Alerts", 1)[1].split("\n## ", 1)[0] if "### Alerts" in text else ""
listed = set(re.findall(r"^\| `(Artstore[A-Za-z]+)` \|", section, re.M))
for a in sorted(rules - listed):
    print(f"missing: {a} is not in the alert table of deploy/README.md")
for a in sorted(listed - rules):
    print(f"broken: the alert table of deploy/README.md lists {a}, which no rule defines")
sys.exit(1 if rules != listed else 0)
EOF
}
check "deploy/README.md's alert table lists every alert" "$rules" readme_alerts
f=$(broken_copy 's/- alert: ArtstoreNodeDown$/- alert: ArtstoreNodeIsDown/' "$rules")
refuse "an alert the README does not describe" "$f" readme_alerts

# ---------------------------------------------------------------------------------------------
echo "== compose"
if docker compose version >/dev/null 2>&1; then
  compose_check() { docker compose -f "$1" config --quiet; }
  how="docker compose config"
else
  compose_check() { "$venv/bin/check-jsonschema" --builtin-schema vendor.compose-spec "$1"; }
  how="compose-spec schema"
fi
check "$how: $mon/compose.yaml" "$mon/compose.yaml" compose_check
f=$(broken_copy 's/^    restart: unless-stopped/    restarts: unless-stopped/' "$mon/compose.yaml")
refuse "a monitoring compose file with an unknown key" "$f" compose_check

# What the schema cannot see: the files mounted exist, and the monitoring files agree with the
# cluster's compose file and with each other on services, ports and paths.
compose_promises() {
  "$vpy" - "$1" <<'EOF'
import os, re, sys
from ruamel.yaml import YAML
y = YAML(typ="safe")
path = sys.argv[1]
here = os.path.dirname(path)
c = y.load(open(path))
problems = []
def need(ok, what):
    if not ok:
        problems.append(what)
inc = [os.path.normpath(os.path.join(here, i if isinstance(i, str) else i["path"])) for i in c.get("include", [])]
need(inc and all(os.path.exists(i) for i in inc), "include names the cluster's compose file, which exists")
cluster = y.load(open(inc[0])) if inc and os.path.exists(inc[0]) else {"services": {}, "volumes": {}}
need(c.get("name") == cluster.get("name"), "the same project name as the cluster (its containers and volumes)")
svc, csvc = c["services"], cluster["services"]
need(not set(svc) & set(csvc), "no service defined twice")
nodes = sorted(s for s in csvc if re.fullmatch(r"artstore-\d+", s))
init = " ".join(csvc.get("cluster-files", {}).get("command", []))
m = re.search(r"--base-port (\d+)", init)
http_port = m.group(1) if m else "?"
volumes = set(c.get("volumes") or {}) | set(cluster.get("volumes") or {})
mounts = {}
for name, s in svc.items():
    for v in s.get("volumes", []):
        src, dst = v.split(":")[:2]
        mounts.setdefault(name, {})[dst] = src
        if src.startswith("."):
            need(os.path.exists(os.path.join(here, src)), f"{name}: mounts {src}, which exists")
        else:
            need(src in volumes, f"{name}: volume {src} is declared")
    for dep in s.get("depends_on", {}):
        need(dep in svc or dep in csvc, f"{name}: depends on a service that exists ({dep})")
need("cluster-files" not in mounts.get("prometheus", {}).values(),
     "Prometheus does not mount cluster-files (the CA key and every node's keys)")
prom = y.load(open(os.path.join(here, "prometheus.yml")))
jobs = {j["job_name"]: j for j in prom["scrape_configs"]}
art = jobs.get("artstore", {})
targets = sorted(t for sc in art.get("static_configs", []) for t in sc["targets"])
need(targets == [f"{n}:{http_port}" for n in nodes],
     f"the scrape targets {targets} are the cluster's nodes on their HTTP port {http_port}")
need(art.get("scheme") == "https", "nodes are scraped over HTTPS (cluster init gives every node [http.tls])")
ca = art.get("tls_config", {}).get("ca_file", "")
pm = mounts.get("prometheus", {})
need(os.path.dirname(ca) in pm and pm[os.path.dirname(ca)] == "monitoring-ca",
     f"the scrape CA {ca} is in the volume monitoring-ca mounted into Prometheus")
copier = " ".join(svc.get("monitoring-ca", {}).get("command", []))
need("/etc/artstore/ca/ca.pem" in copier and os.path.basename(ca) in copier,
     "monitoring-ca copies the cluster CA certificate (ca/ca.pem of cluster-files) for Prometheus")
cmd = " ".join(svc.get("prometheus", {}).get("command", []))
cfg = re.search(r"--config.file=(\S+)", cmd)
need(cfg and pm.get(cfg.group(1)) == "./prometheus.yml", "Prometheus reads the mounted prometheus.yml")
cfg_dir = os.path.dirname(cfg.group(1)) if cfg else "?"
for rf in prom.get("rule_files", []):
    need(os.path.exists(os.path.join(here, rf)), f"rule file {rf} exists")
    need(any(os.path.join(cfg_dir, rf).startswith(dst + "/") and src == "./" + rf.split("/")[0]
             for dst, src in pm.items()), f"rule file {rf} is mounted beside the config")
ams = [t for a in prom.get("alerting", {}).get("alertmanagers", []) for sc in a["static_configs"] for t in sc["targets"]]
need(ams == ["alertmanager:9093"] and "alertmanager" in svc, "Prometheus sends alerts to the alertmanager service")
ds = y.load(open(os.path.join(here, "grafana/provisioning/datasources/prometheus.yml")))["datasources"][0]
need(ds["url"] == "http://prometheus:9090" and "prometheus" in svc, "Grafana's data source is the prometheus service")
prov = y.load(open(os.path.join(here, "grafana/provisioning/dashboards/artstore.yml")))["providers"][0]
gm = mounts.get("grafana", {})
need(gm.get(prov["options"]["path"]) == "./grafana/dashboards", "Grafana loads the dashboards from the mounted folder")
need(gm.get("/etc/grafana/provisioning") == "./grafana/provisioning", "Grafana reads the mounted provisioning files")
for p in problems:
    print("broken promise:", p)
sys.exit(1 if problems else 0)
EOF
}
check "compose, prometheus.yml and Grafana agree (targets, CA, rule files, services, mounts)" "$mon/compose.yaml" compose_promises
f=$(broken_copy 's/"artstore-3:8080"/"artstore-3:9080"/' "$mon/prometheus.yml")
refuse "scrape targets on the QUIC port" "$(dirname "$f")/compose.yaml" compose_promises
f=$(broken_copy 's#monitoring-ca:/etc/prometheus/artstore-ca:ro#cluster-files:/etc/prometheus/artstore-ca:ro#' "$mon/compose.yaml")
refuse "Prometheus mounting the volume with the CA key" "$f" compose_promises

# ---------------------------------------------------------------------------------------------
echo "== Grafana dashboard"
dashboard=$mon/grafana/dashboards/artstore-overview.json
dashboard_shape() {
  "$vpy" - "$1" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
problems = []
def need(ok, what):
    if not ok:
        problems.append(what)
need(d.get("uid") and d.get("title"), "a uid and a title")
need(isinstance(d.get("schemaVersion"), int) and d["schemaVersion"] >= 36, "a schemaVersion Grafana 10 or later reads")
tl = {v["name"]: v for v in d.get("templating", {}).get("list", [])}
need(tl.get("datasource", {}).get("type") == "datasource", "a data source variable")
need(tl.get("instance", {}).get("type") == "query", "the templated variable instance")
ids, rows, queries = set(), 0, 0
for p in d.get("panels", []):
    need(p.get("id") not in ids, f"panel id {p.get('id')} is unique")
    ids.add(p.get("id"))
    g = p.get("gridPos", {})
    need(all(k in g for k in "hwxy") and g["x"] + g["w"] <= 24, f"panel {p.get('title')}: a gridPos within 24 columns")
    if p.get("type") == "row":
        rows += 1
        continue
    need(p.get("datasource", {}).get("uid") == "${datasource}", f"panel {p.get('title')}: on the data source variable")
    for t in p.get("targets", []):
        queries += 1
        need(t.get("expr", "").strip() and t.get("refId"), f"panel {p.get('title')}: every query has an expr and a refId")
    need(p.get("targets"), f"panel {p.get('title')}: has queries")
need(rows >= 5, "rows: cluster, node, storage elements, search indexing, repair")
for p in problems:
    print("broken:", p)
print(f"{len(ids) - rows} panels in {rows} rows, {queries} queries")
sys.exit(1 if problems else 0)
EOF
}
check "the dashboard is JSON Grafana can load ($dashboard)" "$dashboard" dashboard_shape
f=$(broken_copy '$d' "$dashboard")
refuse "a truncated dashboard" "$f" dashboard_shape

# ---------------------------------------------------------------------------------------------
echo "== metrics of a real node"
[ -x "$bin" ] || cargo build -p artstore
# `free_port [UDP_OFFSET]`: a free TCP port on 127.0.0.1 (and a free UDP port that far above it).
free_port() {
  "$python" - "${1:-0}" <<'EOF'
import random, socket, sys
off = int(sys.argv[1])
for _ in range(200):
    p = random.randint(20000, 40000)
    try:
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM); t.bind(("127.0.0.1", p))
        if off:
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.1", p + off)); u.close()
        t.close(); print(p); break
    except OSError:
        pass
EOF
}
port=$(free_port 1000)
"$bin" dev --data-dir "$work/data" --http "127.0.0.1:$port" --tls >"$work/node.log" 2>&1 &
pids+=($!)
node_pid=$!
base="https://127.0.0.1:$port"
ca="$work/data/tls/ca.pem"
ready=0
for _ in $(seq 120); do
  if curl -sf --cacert "$ca" "$base/health/ready" >/dev/null 2>&1; then ready=1; break; fi
  kill -0 "$node_pid" 2>/dev/null || break
  sleep 0.25
done
if [ "$ready" = 0 ]; then
  fail "the dev node did not become ready"
  tail -n 30 "$work/node.log" >&2
else
  # What applications do: a token, an upload, a download (twice: the read cache), a search;
  # and what goes wrong: a wrong secret, a client that speaks plain HTTP to the HTTPS port.
  read -r client_id client_secret < <("$python" -c \
    'import json,sys; c=json.load(open(sys.argv[1])); print(c["client_id"], c["client_secret"])' \
    "$work/data/admin-credentials.json")
  api() { curl -sf --cacert "$ca" "$@"; }
  token=$(api -u "$client_id:$client_secret" -d grant_type=client_credentials "$base/api/v1/auth/token" |
    "$python" -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
  curl -s --cacert "$ca" -o /dev/null -u "$client_id:not-the-secret" -d grant_type=client_credentials "$base/api/v1/auth/token"
  curl -s -o /dev/null -m 2 "http://127.0.0.1:$port/metrics" || true
  auth=(-H "Authorization: Bearer $token")
  id=$(api "${auth[@]}" -H 'Content-Type: text/plain' --data-binary 'Квартальный отчёт: monitoring check' \
    "$base/api/v1/files?name=monitoring-check.txt&description=metrics%20check&tags=ci" |
    "$python" -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  api "${auth[@]}" -o /dev/null "$base/api/v1/files/$id/content"
  api "${auth[@]}" -o /dev/null "$base/api/v1/files/$id/content"
  hits=$(api "${auth[@]}" "$base/api/v1/search?q=monitoring&consistent=true" |
    "$python" -c 'import json,sys; print(len(json.load(sys.stdin)["hits"]))')
  [ "$hits" -ge 1 ] || fail "the search found no file after the upload"
  # The change feed's metrics appear at each consumer's first batch; the client-secret gauges
  # at the first pass of their worker, 5 s after start.
  for _ in $(seq 48); do
    api "$base/metrics" >"$work/metrics.txt"
    [ "$(grep -c '^artstore_change_feed_lag_entries{' "$work/metrics.txt")" -ge 2 ] &&
      grep -q '^artstore_auth_secrets_expiring ' "$work/metrics.txt" &&
      grep -q '^artstore_auth_secrets_expired ' "$work/metrics.txt" && break
    sleep 0.25
  done
  pass "a dev node served a token, an upload, downloads and a search ($(grep -vc '^#' "$work/metrics.txt") samples in /metrics)"

  # Metric names the code emits, and as what: `name kind` per line.
  grep -rhoE 'metrics::(counter|gauge|histogram)!\(\s*"artstore_[a-z_0-9]+"' --include=*.rs node actors raft cluster-config |
    sed -E 's/metrics::([a-z]+)!\(\s*"([a-z_0-9]+)"/\2 \1/' | sort -u >"$work/emitted.txt"
  printf '%s\n' "${LATE_METRICS[@]}" >"$work/late.txt"
  metrics_used() {
    "$vpy" - "$1" "$tests" "$dashboard" "$work/metrics.txt" "$work/emitted.txt" "$work/late.txt" <<'EOF'
import json, re, sys
from ruamel.yaml import YAML
y = YAML(typ="safe")
_, rules_f, tests_f, dash_f, metrics_f, emitted_f, late_f = sys.argv
NAME = re.compile(r"\bartstore_[a-z0-9_]+")
SUFFIXES = ("_bucket", "_sum", "_count")
used = {}  # name -> where
def note(text, where):
    for n in NAME.findall(text):
        used.setdefault(n, set()).add(where)
mentioned = {}
for g in y.load(open(rules_f))["groups"]:
    for r in g["rules"]:
        note(r["expr"], r.get("alert") or r.get("record"))
        for a in r.get("annotations", {}).values():
            for n in NAME.findall(a):
                mentioned.setdefault(n, set()).add(r.get("alert"))
for t in y.load(open(tests_f))["tests"]:
    for s in t.get("input_series", []):
        note(s["series"], "rule tests")
d = json.load(open(dash_f))
for p in d["panels"]:
    for t in p.get("targets", []):
        note(t["expr"], "dashboard: " + p["title"])
for v in d["templating"]["list"]:
    note(json.dumps(v.get("query", "")), "dashboard variable " + v["name"])
exported = set()
types = {}
for line in open(metrics_f):
    if line.startswith("# TYPE "):
        _, _, n, kind = line.split()
        types[n] = kind
    elif line.strip() and not line.startswith("#"):
        exported.add(re.split(r"[{ ]", line, 1)[0])
emitted = dict(l.split() for l in open(emitted_f) if l.strip())
late = [l.strip() for l in open(late_f) if l.strip()]
def base(n):
    for s in SUFFIXES:
        if n.endswith(s) and emitted.get(n[: -len(s)]) == "histogram":
            return n[: -len(s)]
    return n
problems = []
for n, where in sorted(used.items()):
    if n in exported:
        if n.endswith("_bucket") and types.get(n[:-7]) != "histogram":
            problems.append(f"{n}: {n[:-7]} is not exported as a histogram with buckets")
        continue
    b = base(n)
    kind = emitted.get(b)
    if kind == "histogram" and b == n:
        problems.append(f"{n} ({', '.join(sorted(where))}): a histogram is queried as {n}_bucket, _sum or _count")
    elif b in late and kind:
        continue
    elif b in late:
        problems.append(f"{n}: allowed to appear late, but no code emits {b}")
    else:
        problems.append(f"{n} ({', '.join(sorted(where))}): not exported by the node")
bases = {base(n) for n in used}
for n in late:
    if n not in bases:
        problems.append(f"{n}: in LATE_METRICS but no alert, test or dashboard uses it; remove it from the list")
    elif {x for x in used if base(x) == n} <= exported:
        print(f"note: {n} is in LATE_METRICS but was exported this time")
for n, alerts in sorted(mentioned.items()):
    if n not in emitted and base(n) not in emitted:
        problems.append(f"{n}: mentioned in {', '.join(sorted(alerts))}, but no code emits it")
for p in problems:
    print("missing:", p)
print(f"{len(used)} metric names used: {len([n for n in used if n in exported])} exported now, "
      f"{len([n for n in used if n not in exported])} allowed to appear later")
sys.exit(1 if problems else 0)
EOF
  }
  check "every metric the alerts, rule tests and dashboard use is exported by the node" "$rules" metrics_used
  f=$(broken_copy 's/artstore_raft_applied_index{job="artstore"} > 100/artstore_raft_apply_index{job="artstore"} > 100/' "$rules")
  refuse "an alert on a metric the node does not export" "$f" metrics_used
  f=$(broken_copy 's/artstore_ingest_upload_seconds_bucket{job="artstore"}/artstore_ingest_upload_seconds{job="artstore"}/' "$rules")
  refuse "a histogram queried without _bucket" "$f" metrics_used

  # -------------------------------------------------------------------------------------------
  echo "== Prometheus against the node"
  if ! type -P prometheus >/dev/null 2>&1; then
    skip "Prometheus run: no prometheus binary (Debian's prometheus package)"
  else
    pport=$(free_port)
    mkdir -p "$work/prometheus"
    # prometheus.yml's artstore job as it is (HTTPS, relabelling), pointed at the dev node and
    # its CA, scraped and evaluated every second.
    "$vpy" - "$mon/prometheus.yml" "$work/prometheus/prometheus.yml" "127.0.0.1:$port" "$ca" \
      "$(realpath "$rules")" <<'EOF'
import sys
from ruamel.yaml import YAML
y = YAML(typ="safe")
src, dst, target, ca, rules = sys.argv[1:]
c = y.load(open(src))
c["global"].update({"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"})
c["rule_files"] = [rules]
c.pop("alerting", None)
job = next(j for j in c["scrape_configs"] if j["job_name"] == "artstore")
job["static_configs"] = [{"targets": [target]}]
job["tls_config"]["ca_file"] = ca
c["scrape_configs"] = [job]
y.dump(c, open(dst, "w"))
EOF
    prometheus --config.file="$work/prometheus/prometheus.yml" --storage.tsdb.path="$work/prometheus/data" \
      --web.listen-address="127.0.0.1:$pport" >"$work/prometheus.log" 2>&1 &
    pids+=($!)
    prom_check() {
      "$vpy" - "http://127.0.0.1:$pport" "$dashboard" "127.0.0.1:$port" <<'EOF'
import json, re, sys, time, urllib.parse, urllib.request
api, dash_f, target = sys.argv[1:]
def get(path, **params):
    url = api + path + ("?" + urllib.parse.urlencode(params, doseq=True) if params else "")
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.load(r)
deadline = time.time() + 20
up = None
while time.time() < deadline:
    try:
        r = get("/api/v1/query", query='up{job="artstore"}')["data"]["result"]
        if r and r[0]["value"][1] == "1":
            up = r[0]["metric"]
            break
    except OSError:
        pass
    time.sleep(0.25)
problems = []
if not up:
    try:
        t = get("/api/v1/targets")["data"]["activeTargets"]
        print("targets:", [(x["scrapeUrl"], x["health"], x["lastError"]) for x in t])
    except OSError as e:
        print("Prometheus does not answer:", e)
    print("broken: Prometheus did not scrape the node over HTTPS with its CA")
    sys.exit(1)
print(f"scraped {target} over HTTPS as node={up.get('node')}")
if up.get("node") != "127.0.0.1":
    problems.append(f"the relabelling gave node={up.get('node')!r}, not the target's host")
# Every rule evaluated at least twice, and without an error.
while time.time() < deadline:
    groups = get("/api/v1/rules")["data"]["groups"]
    rules = [r for g in groups for r in g["rules"]]
    if rules and all(not r["lastEvaluation"].startswith("0001") for r in rules):
        time.sleep(1.5)
        groups = get("/api/v1/rules")["data"]["groups"]
        rules = [r for g in groups for r in g["rules"]]
        break
    time.sleep(0.25)
for r in rules:
    if r["health"] != "ok":
        problems.append(f"rule {r['name']}: {r['health']} {r.get('lastError', '')}")
active = sorted(f"{r['name']} ({r['state']})" for r in rules if r.get("state") not in (None, "inactive"))
print(f"{len(rules)} rules evaluated; active on this node: {', '.join(active) or 'none'}")
d = json.load(open(dash_f))
subst = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "1h", "$instance": ".+", "${instance}": ".+"}
n = 0
for p in d["panels"]:
    for t in p.get("targets", []):
        e = t["expr"]
        for k, v in subst.items():
            e = e.replace(k, v)
        if "$" in e:
            problems.append(f"dashboard {p['title']}: an unknown variable in {t['expr']}")
            continue
        n += 1
        try:
            r = get("/api/v1/query", query=e)
            if r.get("status") != "success":
                problems.append(f"dashboard {p['title']}: {r}")
        except urllib.error.HTTPError as err:
            problems.append(f"dashboard {p['title']}: {err.read().decode()[:200]}")
values = get("/api/v1/label/instance/values", **{"match[]": 'artstore_raft_term{job="artstore"}'})["data"]
if target not in values:
    problems.append(f"the dashboard's instance variable finds {values}, not {target}")
print(f"{n} dashboard queries answered")
for p in problems:
    print("broken:", p)
sys.exit(1 if problems else 0)
EOF
    }
    if prom_check >"$work/out" 2>&1; then
      pass "Prometheus scraped the node with prometheus.yml's TLS settings, evaluated every rule and answered every dashboard query"
      sed 's/^/  /' "$work/out"
    else
      fail "Prometheus against the node"
      sed 's/^/  /' "$work/out" >&2
      tail -n 20 "$work/prometheus.log" >&2
    fi
  fi
fi
if grep -q "panicked" "$work/node.log"; then
  fail "the node panicked"; grep -B2 -A5 "panicked" "$work/node.log" >&2
fi

echo
echo "monitoring-check: $passed passed, $failed failed, $skipped skipped ($(( $(date +%s) - started )) s)"
[ "$failed" -eq 0 ]
