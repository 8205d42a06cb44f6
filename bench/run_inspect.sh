#!/usr/bin/env bash
# bench/run_inspect.sh — HTTPS keep-alive requests through cordon's TLS
# inspection vs a raw (spliced) tunnel vs direct vs mitmproxy, and WebSocket
# echo round trips, all in the same rounds. See bench/README.md.
#
#   sudo bench/run_inspect.sh                     # 5 rounds, 10 s per timed run
#   ROUNDS=3 DURATION=5 bench/run_inspect.sh      # quicker
#   TARGETS="raw inspect" BENCHES=keepalive bench/run_inspect.sh
#
# Topology (nothing leaves the machine):
#   host (root netns)                             netns cbinsp-PID
#   https_load / ws_rtt ─► 127.0.0.1:P1 cordon ─┐
#                       ─► 127.0.0.1:P2 mitmdump ├─► veth ─► 10.241.X.2:443  nginx (TLS, 1 KiB file)
#                       ──────── direct ─────────┘          10.241.X.2:8765 WebSocket echo (TLS)
#   dnsmasq 127.0.0.1:P3: inspect.bench, raw.bench → 10.241.X.2 (cordon);
#   mitmdump reads the same names from a private /etc/hosts (mount namespace).
#   cordon: inspect.bench is `protocol: rest` (TLS terminated with cordon's CA,
#   every request checked), raw.bench is `tls: skip` (raw spliced tunnel).
#   The upstream's certificate comes from a throwaway test CA (openssl).
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-10}            # seconds per https_load run
WARMUP=${WARMUP:-2}                 # https_load unmeasured seconds (handshakes included)
CLIENTS=${CLIENTS:-32}              # keep-alive connections for "keepalive"
WS_MESSAGES=${WS_MESSAGES:-2000}    # measured echo round trips per ws run
WS_WARMUP=${WS_WARMUP:-200}
WS_SIZE=${WS_SIZE:-32}              # payload bytes
TARGETS=${TARGETS:-"direct raw inspect mitmproxy"}
BENCHES=${BENCHES:-"keepalive single ws"}
CORDON=${CORDON:-$REPO/build/cordon}
CORDON_WORKERS=${CORDON_WORKERS:-}  # empty = cordon's default (one per CPU)
CORDON_AUDIT=${CORDON_AUDIT:-/dev/null}
# what to call the binary in the settings: the commit (+ "-dirty" when src/ has
# uncommitted changes) for the default binary; say it yourself for another one
if [ -z "${CORDON_REV:-}" ]; then
  if [ "$CORDON" = "$REPO/build/cordon" ]; then
    CORDON_REV=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)
    git -C "$REPO" diff --quiet HEAD -- src 2>/dev/null || CORDON_REV+="-dirty"
  else
    CORDON_REV="$CORDON (set CORDON_REV to name its commit)"
  fi
fi
PERF=${PERF:-0}                     # 1: perf record cordon during each inspect keepalive run
PERF_OPTS=${PERF_OPTS:-"-F 499 -g"} # e.g. "-F 199 --call-graph dwarf"
MAX_SECONDS=${MAX_SECONDS:-1800}
OUT=${OUT:-$REPO/build/bench/inspect-$(date +%Y%m%d-%H%M%S)}
PY=/usr/bin/python3
HTTPS_LOAD=$REPO/build/bench/https_load
WS_RTT=$REPO/build/bench/ws_rtt

die() { echo "bench: $*" >&2; exit 1; }
log() { echo "bench: $*" >&2; }

# The whole run is bounded; timeout's SIGTERM goes through the cleanup trap.
if [ -z "${CORDON_BENCH_BOUNDED:-}" ]; then
  export CORDON_BENCH_BOUNDED=1
  exec timeout --kill-after=60 "$MAX_SECONDS" "$0" "$@"
fi

[ "$(id -u)" -eq 0 ] || die "run as root (creates a network namespace and veth pair)"
for t in ip unshare nginx dnsmasq openssl curl timeout "$PY"; do
  command -v "$t" >/dev/null || die "$t not found; run scripts/setup --bench and apt-get install nginx-light"
done
"$PY" -c 'import websockets' 2>/dev/null || die "python3-websockets missing (apt-get install python3-websockets)"
case " $TARGETS " in
  *" mitmproxy "*) command -v mitmdump >/dev/null || die "mitmdump not found (apt-get install mitmproxy)" ;;
esac
[ "$PERF" = 1 ] && { command -v perf >/dev/null || die "PERF=1 needs perf"; }

# ---- state and cleanup -------------------------------------------------------
NS=cbinsp-$$
VH=cih$$
VN=cin$$
T=$(mktemp -d /tmp/cordon-inspect.XXXXXX)
PIDS=()

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for _ in $(seq 1 30); do
    local alive=0
    for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ $alive -eq 0 ] && break
    sleep 0.1
  done
  for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  # anything still in our namespace was started by us (nginx workers, the echo server)
  if ip netns list 2>/dev/null | grep -qw "$NS"; then
    for p in $(ip netns pids "$NS" 2>/dev/null); do kill -KILL "$p" 2>/dev/null || true; done
    ip netns del "$NS" 2>/dev/null || true
  fi
  ip link del "$VH" 2>/dev/null || true
  rm -rf "$T"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$OUT"
RAW=$OUT/raw.tsv
: >"$RAW"

free_port() {
  "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

make -s -C "$REPO/bench" >/dev/null || die "make -C bench failed"

# ---- namespace + veth ----------------------------------------------------------
X=0
while ip -o addr | grep -q "inet 10\.241\.$X\." && [ $X -lt 250 ]; do X=$((X + 1)); done
NET=10.241.$X
UP_IP=$NET.2
ip netns add "$NS"
ip link add "$VH" type veth peer name "$VN"
ip link set "$VN" netns "$NS"
ip addr add "$NET.1/24" dev "$VH"
ip link set "$VH" up
ip -n "$NS" addr add "$UP_IP/24" dev "$VN"
ip -n "$NS" link set "$VN" up
ip -n "$NS" link set lo up
log "netns $NS, upstream $UP_IP (443 https, 8765 wss), temp dir $T, results $OUT"

# ---- a throwaway test CA and the upstream's certificate --------------------------
chmod 755 "$T"
mkdir -p "$T/pki" "$T/www" "$T/nginx" "$T/mitm"
(
  cd "$T/pki"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem \
    -days 2 -subj "/CN=cordon bench test CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout server.key -out server.csr \
    -subj "/CN=inspect.bench"
  printf '%s\n' "subjectAltName=DNS:inspect.bench,DNS:raw.bench" \
    "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" \
    "extendedKeyUsage=serverAuth" >server.ext
  openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -set_serial "0x$(openssl rand -hex 12)" \
    -days 2 -extfile server.ext -out server.pem
) >"$T/openssl.out" 2>&1 || { cat "$T/openssl.out" >&2; die "openssl failed"; }
TEST_CA=$T/pki/ca.pem

# ---- upstream: nginx (TLS) and a WebSocket echo server in the namespace ------------
head -c 1024 /dev/zero | tr '\0' 'x' >"$T/www/1k"
chmod 644 "$T/www/1k"
cat >"$T/nginx.conf" <<EOF
worker_processes auto;
pid $T/nginx.pid;
events { worker_connections 16384; }
http {
  access_log off;
  sendfile on; tcp_nodelay on;
  keepalive_timeout 65; keepalive_requests 1000000;
  client_body_temp_path $T/nginx/body; proxy_temp_path $T/nginx/proxy;
  fastcgi_temp_path $T/nginx/fastcgi; uwsgi_temp_path $T/nginx/uwsgi; scgi_temp_path $T/nginx/scgi;
  default_type application/octet-stream;
  server {
    listen $UP_IP:443 ssl backlog=4096;
    ssl_certificate $T/pki/server.pem;
    ssl_certificate_key $T/pki/server.key;
    ssl_protocols TLSv1.2 TLSv1.3;
    root $T/www;
  }
}
EOF
ip netns exec "$NS" nginx -e "$T/nginx-error.log" -c "$T/nginx.conf" -g 'daemon off; user nobody nogroup;' \
  >"$T/nginx.out" 2>&1 &
PIDS+=($!)

cat >"$T/ws_echo.py" <<'EOF'
# WebSocket echo over TLS (python3-websockets): every message comes back as is.
import asyncio, ssl, sys
import websockets

async def echo(ws, path=None):
    async for msg in ws:
        await ws.send(msg)

async def main(host, port, cert, key):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    async with websockets.serve(echo, host, int(port), ssl=ctx, ping_interval=None,
                                compression=None, max_size=1 << 20):
        await asyncio.Future()

asyncio.run(main(*sys.argv[1:5]))
EOF
ip netns exec "$NS" "$PY" "$T/ws_echo.py" "$UP_IP" 8765 "$T/pki/server.pem" "$T/pki/server.key" \
  >"$T/ws_echo.out" 2>&1 &
PIDS+=($!)

# ---- names ------------------------------------------------------------------------
printf '%s inspect.bench raw.bench\n' "$UP_IP" >"$T/hosts"
chmod 644 "$T/hosts"
DNS_PORT=$(free_port)
dnsmasq -k -C /dev/null --no-resolv --no-hosts --pid-file= --port="$DNS_PORT" \
  --listen-address=127.0.0.1 --bind-interfaces \
  --address="/inspect.bench/$UP_IP" --address="/raw.bench/$UP_IP" \
  --log-facility="$T/dnsmasq.log" >"$T/dnsmasq.out" 2>&1 &
PIDS+=($!)

# ---- proxies ------------------------------------------------------------------------
declare -A PROXY CAFILE HOSTNAME_OF PID_OF
SETTINGS=$OUT/settings.txt
: >"$SETTINGS"

start_cordon() {
  if [ ! -x "$CORDON" ] || "$CORDON" proxy --help 2>&1 | grep -q "not built"; then
    log "cordon: $CORDON has no working 'proxy' subcommand; skipping raw and inspect"
    return 1
  fi
  local port; port=$(free_port)
  cat >"$T/cordon-policy.yaml" <<EOF
version: 1
network_policies:
  bench:
    endpoints:
      - host: inspect.bench
        ports: [443, 8765]
        protocol: rest
        access: full
        allowed_ips: ["$UP_IP/32"]
      - host: raw.bench
        ports: [443, 8765]
        tls: skip
        allowed_ips: ["$UP_IP/32"]
    binaries:
      - path: $(readlink -f "$HTTPS_LOAD")
      - path: $(readlink -f "$WS_RTT")
      - path: $(readlink -f "$(command -v curl)")
EOF
  local args=(proxy --policy "$T/cordon-policy.yaml" --listen "127.0.0.1:$port"
              --log "$CORDON_AUDIT" --log-level warn --resolver "127.0.0.1:$DNS_PORT"
              --upstream-ca "$TEST_CA" --ca-cert-out "$T/cordon-ca.pem")
  [ -n "$CORDON_WORKERS" ] && args+=(--workers "$CORDON_WORKERS")
  "$CORDON" "${args[@]}" >"$T/cordon.out" 2>&1 &
  PIDS+=($!)
  PID_OF[cordon]=$!
  PROXY[raw]=127.0.0.1:$port
  PROXY[inspect]=127.0.0.1:$port
  CAFILE[raw]=$TEST_CA
  CAFILE[inspect]=$T/cordon-ca.pem
  HOSTNAME_OF[raw]=raw.bench
  HOSTNAME_OF[inspect]=inspect.bench
  { echo "cordon $CORDON_REV: ${args[*]}"
    echo "  workers: ${CORDON_WORKERS:-default (one per CPU)}; audit log: $CORDON_AUDIT;"
    echo "  inspect.bench: protocol rest, access full (TLS terminated, each request checked);"
    echo "  raw.bench: tls skip (spliced tunnel); DNS: dnsmasq, once per connection"; } >>"$SETTINGS"
}

start_mitmproxy() {
  local port; port=$(free_port)
  # A private mount namespace so mitmproxy's getaddrinfo() finds the names in
  # our hosts file; the host's /etc/hosts is untouched.
  unshare -m --propagation private sh -c \
    "mount --bind '$T/hosts' /etc/hosts && exec mitmdump --mode regular --listen-host 127.0.0.1 \
     --listen-port $port --set confdir='$T/mitm' --set ssl_verify_upstream_trusted_ca='$TEST_CA' -q" \
    >"$T/mitmproxy.out" 2>&1 &
  PIDS+=($!)
  PID_OF[mitmproxy]=$!
  PROXY[mitmproxy]=127.0.0.1:$port
  CAFILE[mitmproxy]=$T/mitm/mitmproxy-ca-cert.pem
  HOSTNAME_OF[mitmproxy]=inspect.bench
  { echo "mitmproxy $(mitmdump --version 2>/dev/null | awk '/^Mitmproxy:/ {print $2}'): mitmdump --mode regular -q"
    echo "  (termlog error, flow_detail 0), own CA in confdir, upstream verified against the test CA;"
    echo "  names from a private /etc/hosts"; } >>"$SETTINGS"
}

PROXY[direct]=
CAFILE[direct]=$TEST_CA
HOSTNAME_OF[direct]=inspect.bench
AVAILABLE=()
CORDON_TRIED=
for t in $TARGETS; do
  case $t in
    direct) ;;
    raw|inspect)
      if [ -z "$CORDON_TRIED" ]; then CORDON_TRIED=1; start_cordon || CORDON_TRIED=failed; fi
      [ "$CORDON_TRIED" = failed ] && continue ;;
    mitmproxy) start_mitmproxy ;;
    *) die "unknown target $t (direct raw inspect mitmproxy)" ;;
  esac
  AVAILABLE+=("$t")
done
{ echo "nginx $(nginx -v 2>&1 | sed 's/.*\///') in netns $NS: worker_processes auto, TLS 1.2/1.3, keep-alive, access_log off"
  echo "WebSocket echo: python3-websockets $("$PY" -c 'import websockets; print(websockets.__version__)') over TLS in the netns (no compression, no pings)"
  echo "test CA and server certificate: ECDSA P-256 (openssl); cordon's leaves: ECDSA P-256; mitmproxy's: RSA 2048"
  echo "keepalive: https_load -c $CLIENTS -d $DURATION -w $WARMUP --path /1k; single: -c 1;"
  echo "ws: ws_rtt -n $WS_MESSAGES -w $WS_WARMUP -s $WS_SIZE; rounds: $ROUNDS"
  echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), kernel $(uname -r), $(openssl version | cut -d' ' -f1-2)"; } >>"$SETTINGS"

# ---- readiness ------------------------------------------------------------------------
target_args() { # target port → https_load / ws_rtt addressing options
  local t=$1 port=$2
  if [ "$t" = direct ]; then echo "--direct $UP_IP:$port --target ${HOSTNAME_OF[$t]}:$port --cafile ${CAFILE[$t]}"
  else echo "--proxy ${PROXY[$t]} --target ${HOSTNAME_OF[$t]}:$port --cafile ${CAFILE[$t]}"; fi
}

wait_ready() { # target
  local t=$1 code=000 ws=
  local px=(--resolve "${HOSTNAME_OF[$t]}:443:$UP_IP")
  [ "$t" != direct ] && px=(-x "http://${PROXY[$t]}")
  for _ in $(seq 1 75); do
    if [ -s "${CAFILE[$t]}" ]; then
      code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 3 --cacert "${CAFILE[$t]}" "${px[@]}" \
             "https://${HOSTNAME_OF[$t]}/1k" || true)
      if [ "$code" = 200 ]; then
        # shellcheck disable=SC2046
        ws=$(timeout 10 "$WS_RTT" $(target_args "$t" 8765) -n 5 -w 0 2>&1 || true)
        case $ws in mode=*) return 0 ;; esac
      fi
    fi
    sleep 0.2
  done
  log "$t does not answer (https: $code; ws: ${ws:-not tried}); logs:"
  tail -n 20 "$T"/*.out 2>/dev/null >&2 || true
  return 1
}
READY=()
for t in "${AVAILABLE[@]}"; do
  if wait_ready "$t"; then READY+=("$t"); else log "skipping $t"; fi
done
[ ${#READY[@]} -gt 0 ] || die "nothing answers"
log "targets: ${READY[*]}"

# ---- benchmarks -------------------------------------------------------------------------
record() { printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" >>"$RAW"; }
kv_get() { echo "$1" | tr ' ' '\n' | awk -F= -v k="$2" '$1==k {print $2}'; }

run_https_load() { # round bench target clients
  local r=$1 b=$2 t=$3 c=$4 out perf_pid=
  if [ "$PERF" = 1 ] && [ "$t" = inspect ] && [ "$b" = keepalive ] && [ "$r" -gt 0 ]; then
    # shellcheck disable=SC2086
    perf record $PERF_OPTS -p "${PID_OF[cordon]}" -o "$OUT/perf-inspect-r$r.data" \
      -- sleep $((WARMUP + DURATION)) >/dev/null 2>&1 &
    perf_pid=$!
  fi
  # shellcheck disable=SC2046
  out=$(timeout $((DURATION + WARMUP + 30)) "$HTTPS_LOAD" $(target_args "$t" 443) --path /1k \
        -c "$c" -d "$DURATION" -w "$WARMUP" 2>&1) || true
  if [ -n "$perf_pid" ]; then wait "$perf_pid" 2>/dev/null || true; fi
  echo "round $r: $out" >>"$OUT/$b-$t.log"
  local kv; kv=$(echo "$out" | grep '^mode=' || true)
  [ -n "$kv" ] || { log "$b $t: no https_load result: $out"; record "$r" "$b" "$t" errors 1; return; }
  local k
  for k in requests_per_s p50_ms p99_ms errors; do record "$r" "$b" "$t" "$k" "$(kv_get "$kv" "$k")"; done
  TLSINFO="$(kv_get "$kv" tls) $(kv_get "$kv" cipher)"
}

bench_keepalive() { run_https_load "$1" keepalive "$2" "$CLIENTS"; }
bench_single() { run_https_load "$1" single "$2" 1; }

bench_ws() { # round target
  local r=$1 t=$2 out
  # shellcheck disable=SC2046
  out=$(timeout 120 "$WS_RTT" $(target_args "$t" 8765) -n "$WS_MESSAGES" -w "$WS_WARMUP" \
        -s "$WS_SIZE" 2>&1) || true
  echo "round $r: $out" >>"$OUT/ws-$t.log"
  local kv; kv=$(echo "$out" | grep '^mode=' || true)
  [ -n "$kv" ] || { log "ws $t: no ws_rtt result: $out"; record "$r" ws "$t" errors 1; return; }
  local k
  for k in p50_us p99_us mean_us; do record "$r" ws "$t" "$k" "$(kv_get "$kv" "$k")"; done
  record "$r" ws "$t" errors 0
}

# ---- warm-up (unrecorded): every target once -------------------------------------------
log "warm-up"
TLSINFO=
for t in "${READY[@]}"; do
  for b in $BENCHES; do
    case $b in
      ws) WS_MESSAGES=200 WS_WARMUP=0 bench_ws 0 "$t" ;;
      *) DURATION=1 WARMUP=1 "bench_$b" 0 "$t" ;;
    esac
  done
done >/dev/null 2>&1
: >"$RAW"
rm -f "$OUT"/*.log

START=$(date +%s)
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
for r in $(seq 1 "$ROUNDS"); do
  # rotate the order each round so slow drift does not favour one target
  order=("${READY[@]:$(( (r - 1) % ${#READY[@]} ))}" "${READY[@]:0:$(( (r - 1) % ${#READY[@]} ))}")
  for b in $BENCHES; do
    for t in "${order[@]}"; do
      log "round $r/$ROUNDS: $b via $t"
      "bench_$b" "$r" "$t"
      sleep 1
    done
  done
done
log "done in $(( $(date +%s) - START )) s"
{ echo "TLS between the client and the first TLS peer: ${TLSINFO:-?}"
  [ "$PERF" = 1 ] && echo "PERF=1: perf record $PERF_OPTS ran on cordon during the inspect keepalive runs (they are slowed down)"
  echo "load average at start: $LOAD_START; at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
  for t in cordon mitmproxy; do
    [ -n "${PID_OF[$t]:-}" ] || continue
    local_pid=${PID_OF[$t]}
    echo "$t RSS after the run: $(ps -o rss= -p "$local_pid" | tr -d ' ') KiB, CPU time $(ps -o times= -p "$local_pid" | tr -d ' ') s"
  done; } >>"$SETTINGS"

# ---- report ---------------------------------------------------------------------------------
cp "$T/cordon-policy.yaml" "$T/nginx.conf" "$T/ws_echo.py" "$OUT/" 2>/dev/null || true
"$PY" "$REPO/bench/report_inspect.py" "$RAW" "$SETTINGS" | tee "$OUT/summary.md"
log "raw results and logs in $OUT"
