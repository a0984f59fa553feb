#!/usr/bin/env bash
# README command 1: install the build dependencies, build, start pantalad on
# the embedded store with a local agent reporting to it, and print where to
# look. Everything lives in .pantala-demo/ (config, token, databases, logs).
#
# Usage: scripts/quickstart.sh [start|stop|status]
# Environment: PANTALA_DEMO_DIR (default ./.pantala-demo),
#              PANTALA_UDP_PORT (8094), PANTALA_HTTP_PORT (9090)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DEMO=${PANTALA_DEMO_DIR:-$ROOT/.pantala-demo}
UDP_PORT=${PANTALA_UDP_PORT:-8094}
HTTP_PORT=${PANTALA_HTTP_PORT:-9090}
API=http://127.0.0.1:$HTTP_PORT

stop_one() { # name
  local pidf=$DEMO/$1.pid
  if [ -f "$pidf" ] && kill -0 "$(cat "$pidf")" 2>/dev/null; then
    kill "$(cat "$pidf")"; echo "stopped $1 (pid $(cat "$pidf"))"
  fi
  rm -f "$pidf"
}

case "${1:-start}" in
  stop) stop_one pantala-agent; stop_one pantalad; exit 0 ;;
  status)
    for n in pantalad pantala-agent; do
      if [ -f "$DEMO/$n.pid" ] && kill -0 "$(cat "$DEMO/$n.pid")" 2>/dev/null; then
        echo "$n running (pid $(cat "$DEMO/$n.pid"))"; else echo "$n not running"; fi
    done; exit 0 ;;
  start) ;;
  *) echo "usage: $0 [start|stop|status]" >&2; exit 2 ;;
esac

bash scripts/deps.sh
echo "building (build/)..."
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc 2>/dev/null || echo 2)" --target pantalad pantala-agent >/dev/null
mkdir -p "$DEMO"
chmod 700 "$DEMO"
stop_one pantala-agent
stop_one pantalad

if [ ! -f "$DEMO/token" ]; then
  head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$DEMO/token"
fi
TOKEN=$(cat "$DEMO/token")
cat > "$DEMO/pantalad.json" <<CONF
# pantalad configuration for the quick-start demo (see pantalad --help).
{
  # databases (state.db, metrics.db) live here
  "data_dir": "$DEMO/data",
  "listen": {
    # agents send msgpack frames here
    "udp": "127.0.0.1:$UDP_PORT",
    # the HTTP API
    "http": "127.0.0.1:$HTTP_PORT"
  },
  # bearer tokens for the API
  "api": { "tokens": ["$TOKEN"] },
  # embedded SQLite store, raw points kept 7 days
  "store": { "url": "sqlite:", "retention": "7d" },
  "log": { "level": "info" }
}
CONF

nohup "$ROOT/build/collector/pantalad" --config "$DEMO/pantalad.json" \
  >>"$DEMO/pantalad.log" 2>&1 &
echo $! > "$DEMO/pantalad.pid"
for _ in $(seq 1 50); do
  curl -fsS "$API/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
if ! curl -fsS "$API/healthz" >/dev/null 2>&1; then
  echo "pantalad did not start; its log:" >&2; tail -20 "$DEMO/pantalad.log" >&2; exit 1
fi

if [ ! -f "$DEMO/agent.json" ]; then
  resp=$(curl -sS -X POST "$API/api/v1/agents" -H "Authorization: Bearer $TOKEN" \
    -H 'Content-Type: application/json' \
    -d "{\"ns\":\"demo\",\"mcis\":\"local\",\"vm\":\"$(hostname | tr -c 'A-Za-z0-9._:@\n-' '-')\",\"csp\":\"local\"}")
  python3 - "$resp" "$DEMO/agent.json" <<'PY'
import json, os, sys
resp = json.loads(sys.argv[1])
if "agent_config" not in resp:
    sys.exit("registration failed: %s" % resp)
cfg = dict(resp["agent_config"], interval="1s")
fd = os.open(sys.argv[2], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
with os.fdopen(fd, "w") as f:
    json.dump(cfg, f, indent=2)
    f.write("\n")
PY
fi
# The ports may differ from the last run: point the agent at this one.
python3 - "$DEMO/agent.json" "127.0.0.1:$UDP_PORT" <<'PY'
import json, sys
with open(sys.argv[1]) as f:
    cfg = json.load(f)
if cfg.get("collector") != sys.argv[2]:
    cfg["collector"] = sys.argv[2]
    with open(sys.argv[1], "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")
PY
nohup "$ROOT/build/agent/pantala-agent" --config "$DEMO/agent.json" \
  >>"$DEMO/agent.log" 2>&1 &
echo $! > "$DEMO/pantala-agent.pid"

VM_PATH=$(python3 -c 'import json,sys; c=json.load(open(sys.argv[1])); print("ns/%s/mcis/%s/vm/%s" % (c["ns"], c["mcis"], c["vm"]))' "$DEMO/agent.json")
sleep 3
echo
echo "Pantala is running."
echo "  API:        $API   (token in $DEMO/token)"
echo "  Token:      $TOKEN"
echo "  Agent UDP:  127.0.0.1:$UDP_PORT"
echo "  Logs:       $DEMO/pantalad.log, $DEMO/agent.log"
echo
echo "Live values of this machine:"
echo "  curl -s -H 'Authorization: Bearer $TOKEN' $API/api/v1/$VM_PATH/latest"
echo "CPU over the last 5 minutes, 10 s averages:"
echo "  curl -s -H 'Authorization: Bearer $TOKEN' '$API/api/v1/$VM_PATH/metrics/cpu?fields=cpu_utilization&from=now-5m&step=10s&agg=avg'"
echo "Agents and the collector's own counters:"
echo "  curl -s -H 'Authorization: Bearer $TOKEN' $API/api/v1/agents"
echo "  curl -s -H 'Authorization: Bearer $TOKEN' $API/metrics"
echo
echo "Stop with: scripts/quickstart.sh stop"
echo
echo "Now:"
curl -sS -H "Authorization: Bearer $TOKEN" "$API/api/v1/$VM_PATH/latest" | head -c 600; echo
