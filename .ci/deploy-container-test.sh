#!/usr/bin/env bash
# The container test of .ci/deploy-check.sh (it runs this only where `docker info` succeeds):
# builds the image from deploy/Dockerfile, lays out a 3-node cluster with `artstore cluster init`
# inside it (service names as hosts, as deploy/compose/compose.yaml does), starts three
# containers on a private network under those names with read-only root file systems, waits until
# the image's HEALTHCHECK (`artstore health`: /health/ready over HTTPS with the cluster CA) calls
# every one healthy, and stops them with SIGTERM, expecting a clean exit. Removes everything it
# created. Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."

image=${ARTSTORE_TEST_IMAGE:-artstore:deploy-check}
p=artstore-check-$$
containers=()
volumes=("$p-files" "$p-data-1" "$p-data-2" "$p-data-3")
cleanup() {
  for c in "${containers[@]}"; do docker rm -f "$c" >/dev/null 2>&1 || true; done
  docker volume rm "${volumes[@]}" >/dev/null 2>&1 || true
  docker network rm "$p" >/dev/null 2>&1 || true
}
trap cleanup EXIT INT TERM

echo "building $image (a release build: several minutes on a cold cache)"
docker build -f deploy/Dockerfile -t "$image" .
docker network create "$p" >/dev/null
for v in "${volumes[@]}"; do docker volume create "$v" >/dev/null; done

docker run --rm -v "$p-files:/etc/artstore" "$image" cluster init --nodes 3 --out /etc/artstore \
  --node-host 'artstore-{i}' --listen-host 0.0.0.0 --base-port 8080 --host localhost \
  --data-dir /var/lib/artstore/data >/dev/null

for i in 1 2 3; do
  containers+=("$p-$i")
  docker run -d --name "$p-$i" --network "$p" --network-alias "artstore-$i" \
    -e "ARTSTORE_CONFIG=/etc/artstore/node$i/config.toml" \
    -v "$p-files:/etc/artstore:ro" -v "$p-data-$i:/var/lib/artstore" \
    --read-only --tmpfs /tmp --cap-drop ALL --security-opt no-new-privileges:true \
    "$image" start --log-format json >/dev/null
done

deadline=$(( $(date +%s) + 240 ))
for c in "${containers[@]}"; do
  while :; do
    status=$(docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' "$c")
    [ "$status" = healthy ] && break
    if [ "$status" = none ] || [ "$(docker inspect -f '{{.State.Running}}' "$c")" != true ] ||
      [ "$(date +%s)" -gt "$deadline" ]; then
      echo "$c is $status" >&2
      docker logs --tail 30 "$c" >&2 || true
      exit 1
    fi
    sleep 2
  done
  echo "$c healthy"
done
# The user the node runs as, and the answer the health check saw.
[ "$(docker exec "$p-1" id -u)" = 10001 ] || { echo "the node does not run as uid 10001" >&2; exit 1; }
docker exec "$p-2" artstore health

docker stop -t 90 "${containers[@]}" >/dev/null
for c in "${containers[@]}"; do
  code=$(docker inspect -f '{{.State.ExitCode}}' "$c")
  [ "$code" = 0 ] || { echo "$c exited with $code after SIGTERM" >&2; docker logs --tail 30 "$c" >&2; exit 1; }
done
echo "container test passed"
