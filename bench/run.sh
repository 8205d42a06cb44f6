#!/usr/bin/env bash
# bench/run.sh — cordon against HAProxy, squid, tinyproxy and a direct connection.
#
# Sets everything up itself (as root), runs three benchmarks side by side in
# every round, and prints medians and ratios. See bench/README.md.
#
#   sudo bench/run.sh                      # 5 rounds, 10 s per timed run
#   ROUNDS=3 DURATION=5 bench/run.sh       # quicker
#   TARGETS="direct cordon" BENCHES=tunnel bench/run.sh
#   CORDON_BASE=/path/to/older/cordon bench/run.sh   # adds target cordon_base:
#                                          # a second cordon build, same rounds
#
# Topology (nothing leaves the machine):
#   host (root netns)                         netns cbench-PID
#   clients ─► 127.0.0.1:{cordon,squid,tinyproxy} ─► veth ─► nginx 10.240.X.2:8080
#   clients ─► 127.0.0.1:{haproxy relay,splice} ───► veth ─┤  (TCP mode, no CONNECT)
#   clients ─────────────── direct ─────────────────► veth ─┘
#   dnsmasq 127.0.0.1:P answers upstream.bench → 10.240.X.2 (for cordon);
#   squid reads the same name from hosts_file, tinyproxy from a private
#   /etc/hosts bind-mounted in its own mount namespace.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-10}           # seconds per wrk / tunnel_load run
WARMUP=${WARMUP:-1}                # tunnel_load unmeasured seconds
CLIENTS=${CLIENTS:-64}             # tunnel_load concurrent clients
WRK_THREADS=${WRK_THREADS:-2}
WRK_CONNS=${WRK_CONNS:-50}
BULK_SIZE=${BULK_SIZE:-1G}         # truncate(1) size of the bulk file
BULK_REPEAT=${BULK_REPEAT:-3}      # downloads per bulk measurement (median kept)
TARGETS=${TARGETS:-"direct haproxy squid tinyproxy cordon"}
if [ -n "${CORDON_BASE:-}" ]; then
  case " $TARGETS " in *" cordon_base "*) ;; *) TARGETS="$TARGETS cordon_base" ;; esac
fi
BENCHES=${BENCHES:-"forward bulk tunnel"}  # also: heavy (cordon only, see below)
HEAVY_FILES=${HEAVY_FILES:-15000}  # heavy: files the heavy client holds
HEAVY_CLIENTS=${HEAVY_CLIENTS:-4}  # heavy: its concurrent tunnels
HOSTMODE=${HOSTMODE:-name}         # name: upstream.bench via DNS/hosts; ip: 10.240.X.2 literal
DNS_TTL=${DNS_TTL:-60}             # TTL of dnsmasq's answer (its default, 0, defeats cordon's DNS cache)
CORDON=${CORDON:-$REPO/build/cordon}
CORDON_BASE=${CORDON_BASE:-}        # another cordon binary (a baseline), run as target cordon_base
CORDON_WORKERS=${CORDON_WORKERS:-}  # empty = cordon's default (one per CPU)
CORDON_AUDIT=${CORDON_AUDIT:-/dev/null}
MAX_SECONDS=${MAX_SECONDS:-3600}   # hard bound for the whole run
PERF=${PERF:-0}                    # 1: one extra, unrecorded tunnel run on cordon under perf record
PERF_OPTS=${PERF_OPTS:-"-F 999 -g"}
OUT=${OUT:-$REPO/build/bench/results-$(date +%Y%m%d-%H%M%S)}
PY=/usr/bin/python3
TUNNEL_LOAD=$REPO/build/bench/tunnel_load

die() { echo "bench: $*" >&2; exit 1; }
log() { echo "bench: $*" >&2; }

# The whole run is bounded: re-run under timeout(1); its SIGTERM goes through
# the cleanup trap below (each step is bounded too, so the trap runs soon).
if [ -z "${CORDON_BENCH_BOUNDED:-}" ]; then
  export CORDON_BENCH_BOUNDED=1
  exec timeout --kill-after=60 "$MAX_SECONDS" "$0" "$@"
fi

[ "$(id -u)" -eq 0 ] || die "run as root (creates a network namespace and veth pair)"
for t in ip unshare nginx wrk curl dnsmasq truncate timeout "$PY"; do
  command -v "$t" >/dev/null || die "$t not found; run scripts/setup --bench"
done
for t in haproxy squid tinyproxy; do
  case " $TARGETS " in
    *" $t "*) command -v "$t" >/dev/null || die "$t not found; run scripts/setup --bench (or leave it out of TARGETS)" ;;
  esac
done
[ "$PERF" = 1 ] && { command -v perf >/dev/null || die "PERF=1 needs perf (scripts/setup --bench)"; }

# ---- state and cleanup -------------------------------------------------------
NS=cbench-$$
VH=cbh$$
VN=cbn$$
T=$(mktemp -d /tmp/cordon-bench.XXXXXX)
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
  # anything still in our namespace was started by us (nginx workers)
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

# ---- build the load generator ------------------------------------------------
make -s -C "$REPO/bench" >/dev/null || die "make -C bench failed"

# ---- namespace + veth ----------------------------------------------------------
X=0
while ip -o addr | grep -q "inet 10\.240\.$X\." && [ $X -lt 250 ]; do X=$((X + 1)); done
NET=10.240.$X
UP_IP=$NET.2
UP_PORT=8080
ip netns add "$NS"
ip link add "$VH" type veth peer name "$VN"
ip link set "$VN" netns "$NS"
ip addr add "$NET.1/24" dev "$VH"
ip link set "$VH" up
ip -n "$NS" addr add "$UP_IP/24" dev "$VN"
ip -n "$NS" link set "$VN" up
ip -n "$NS" link set lo up
if [ "$HOSTMODE" = ip ]; then UP_HOST=$UP_IP; else UP_HOST=upstream.bench; fi
log "netns $NS, upstream $UP_HOST ($UP_IP:$UP_PORT), temp dir $T, results $OUT"

# ---- upstream: nginx in the namespace ------------------------------------------
chmod 755 "$T"
mkdir -p "$T/www" "$T/nginx"
head -c 1024 /dev/zero | tr '\0' 'x' >"$T/www/1k"
truncate -s "$BULK_SIZE" "$T/www/bulk"      # sparse: served from the page cache
BULK_BYTES=$(stat -c %s "$T/www/bulk")
chmod 644 "$T/www/1k" "$T/www/bulk"
cat >"$T/nginx.conf" <<EOF
worker_processes auto;
pid $T/nginx.pid;
events { worker_connections 16384; }
http {
  access_log off;
  sendfile on; tcp_nopush on; tcp_nodelay on;
  keepalive_timeout 65; keepalive_requests 1000000;
  client_body_temp_path $T/nginx/body; proxy_temp_path $T/nginx/proxy;
  fastcgi_temp_path $T/nginx/fastcgi; uwsgi_temp_path $T/nginx/uwsgi; scgi_temp_path $T/nginx/scgi;
  default_type application/octet-stream;
  server {
    listen $UP_IP:$UP_PORT backlog=4096;
    root $T/www;
  }
}
EOF
ip netns exec "$NS" nginx -e "$T/nginx-error.log" -c "$T/nginx.conf" -g 'daemon off; user nobody nogroup;' \
  >"$T/nginx.out" 2>&1 &
PIDS+=($!)

# ---- name resolution -------------------------------------------------------------
echo "$UP_IP upstream.bench" >"$T/hosts"
chmod 644 "$T/hosts"
DNS_PORT=
if [ "$HOSTMODE" = name ]; then
  DNS_PORT=$(free_port)
  dnsmasq -k -C /dev/null --no-resolv --no-hosts --pid-file= --port="$DNS_PORT" \
    --listen-address=127.0.0.1 --bind-interfaces --address="/upstream.bench/$UP_IP" \
    --local-ttl="$DNS_TTL" \
    --log-facility="$T/dnsmasq.log" >"$T/dnsmasq.out" 2>&1 &
  PIDS+=($!)
fi

# ---- proxies -------------------------------------------------------------------------
declare -A PORT PID_OF
PORT[direct]=
HAPROXY_SPLICE_PORT=
SETTINGS=$OUT/settings.txt
: >"$SETTINGS"

start_squid() {
  PORT[squid]=$(free_port)
  touch "$T/squid-cache.log"; chown proxy "$T/squid-cache.log" 2>/dev/null || true
  cat >"$T/squid.conf" <<EOF
http_port 127.0.0.1:${PORT[squid]}
http_access allow localhost
http_access deny all
cache deny all
cache_mem 0 MB
access_log none
cache_store_log none
cache_log $T/squid-cache.log
logfile_rotate 0
pid_filename none
coredump_dir $T
hosts_file $T/hosts
dns_nameservers 127.0.0.1
visible_hostname cordon-bench
max_filedescriptors 65536
shutdown_lifetime 1 seconds
cache_effective_user proxy
EOF
  squid -N -f "$T/squid.conf" >"$T/squid.out" 2>&1 &
  PIDS+=($!)
  PID_OF[squid]=$!
  { echo "squid $(squid -v | head -1 | sed 's/.*Version //'): 1 process (-N, no SMP workers), cache off"
    echo "  (cache deny all, cache_mem 0), access_log none, hosts_file for upstream.bench"; } >>"$SETTINGS"
}

start_tinyproxy() {
  PORT[tinyproxy]=$(free_port)
  touch "$T/tinyproxy.log"; chown nobody "$T/tinyproxy.log"
  cat >"$T/tinyproxy.conf" <<EOF
User nobody
Group nogroup
Port ${PORT[tinyproxy]}
Listen 127.0.0.1
Timeout 600
MaxClients 4096
LogLevel Critical
LogFile "$T/tinyproxy.log"
Allow 127.0.0.1
ConnectPort $UP_PORT
EOF
  # A private mount namespace so getaddrinfo() finds upstream.bench in our
  # hosts file; the host's /etc/hosts is untouched.
  unshare -m --propagation private sh -c \
    "mount --bind '$T/hosts' /etc/hosts && exec tinyproxy -d -c '$T/tinyproxy.conf'" \
    >"$T/tinyproxy.out" 2>&1 &
  PIDS+=($!)
  PID_OF[tinyproxy]=$!
  { echo "tinyproxy $(tinyproxy -v | awk '{print $2}'): thread per connection, MaxClients 4096,"
    echo "  LogLevel Critical, Via header on (default), getaddrinfo via a private /etc/hosts"; } >>"$SETTINGS"
}

# HAProxy as the relay limit: TCP mode, no CONNECT, no policy. Two listeners:
# "relay" (plain, for forward and tunnel) and "splice" (option
# splice-request/splice-response, for bulk). Clients connect to it as if it
# were the upstream (tunnel_load --direct, curl without -x).
start_haproxy() {
  PORT[haproxy]=$(free_port)
  HAPROXY_SPLICE_PORT=$(free_port)
  cat >"$T/haproxy.cfg" <<EOF
global
  maxconn 6000
defaults
  mode tcp
  timeout connect 10s
  timeout client 60s
  timeout server 60s
  maxconn 6000
listen relay
  bind 127.0.0.1:${PORT[haproxy]}
  server up $UP_IP:$UP_PORT
listen splice
  bind 127.0.0.1:$HAPROXY_SPLICE_PORT
  option splice-request
  option splice-response
  server up $UP_IP:$UP_PORT
EOF
  haproxy -db -f "$T/haproxy.cfg" >"$T/haproxy.out" 2>&1 &
  PIDS+=($!)
  PID_OF[haproxy]=$!
  { echo "haproxy $(haproxy -v | head -1 | awk '{print $3}'): mode tcp, threads = CPUs (default), no CONNECT, no policy;"
    echo "  forward and tunnel via listener 'relay' (plain), bulk via 'splice' (option splice-request/-response)"; } >>"$SETTINGS"
}

start_cordon() { # name binary
  local name=$1 bin=$2
  if [ ! -x "$bin" ] || "$bin" proxy --help 2>&1 | grep -q "not built"; then
    log "$name: $bin has no working 'proxy' subcommand yet; skipping $name"
    return 1
  fi
  PORT[$name]=$(free_port)
  local tl; tl=$(readlink -f "$TUNNEL_LOAD")
  cat >"$T/cordon-policy.yaml" <<EOF
version: 1
network_policies:
  bench:
    endpoints:
      - host: $UP_HOST
        ports: [$UP_PORT]
        tls: skip
        allowed_ips: ["$UP_IP/32"]
    binaries:
      - path: $(readlink -f "$(command -v wrk)")
      - path: $(readlink -f "$(command -v curl)")
      - path: $tl
EOF
  local args=(proxy --policy "$T/cordon-policy.yaml" --listen "127.0.0.1:${PORT[$name]}"
              --log "$CORDON_AUDIT" --log-level warn)
  [ -n "$DNS_PORT" ] && args+=(--resolver "127.0.0.1:$DNS_PORT")
  [ -n "$CORDON_WORKERS" ] && args+=(--workers "$CORDON_WORKERS")
  "$bin" "${args[@]}" >"$T/$name.out" 2>&1 &
  PIDS+=($!)
  PID_OF[$name]=$!
  { echo "$name ($bin; tree at $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null)): ${args[*]}"
    echo "  workers: ${CORDON_WORKERS:-default (one per CPU)}; endpoint tls: skip (raw tunnel);"
    echo "  audit log: $CORDON_AUDIT; DNS: $([ -n "$DNS_PORT" ] && echo "dnsmasq on 127.0.0.1:$DNS_PORT, answers with TTL $DNS_TTL s" || echo "IP literal, none")"; } >>"$SETTINGS"
}

AVAILABLE=()
for t in $TARGETS; do
  case $t in
    direct) ;;
    haproxy) start_haproxy ;;
    squid) start_squid ;;
    tinyproxy) start_tinyproxy ;;
    cordon) start_cordon cordon "$CORDON" || continue ;;
    cordon_base) [ -n "$CORDON_BASE" ] || die "target cordon_base needs CORDON_BASE=binary"
                 start_cordon cordon_base "$CORDON_BASE" || continue ;;
    *) die "unknown target $t (direct haproxy squid tinyproxy cordon cordon_base)" ;;
  esac
  AVAILABLE+=("$t")
done
{ echo "nginx $(nginx -v 2>&1 | sed 's/.*\///') in netns $NS: worker_processes auto, sendfile, access_log off"
  echo "wrk -t$WRK_THREADS -c$WRK_CONNS -d${DURATION}s; tunnel_load -c $CLIENTS -d $DURATION -w $WARMUP;"
  echo "bulk: curl, $BULK_BYTES bytes, median of $BULK_REPEAT downloads per round; rounds: $ROUNDS; host mode: $HOSTMODE"
  echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), kernel $(uname -r)"; } >>"$SETTINGS"

# ---- readiness: one request per target, forward and CONNECT -------------------------------
wait_ready() { # target
  local t=$1 url px=()
  if [ "$t" = direct ]; then url="http://$UP_IP:$UP_PORT/1k"
  elif [ "$t" = haproxy ]; then url="http://127.0.0.1:${PORT[haproxy]}/1k"
  else url="http://$UP_HOST:$UP_PORT/1k"; px=(-x "http://127.0.0.1:${PORT[$t]}"); fi
  for _ in $(seq 1 50); do
    local a b
    a=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "${px[@]}" "$url" || true)
    b=$a
    if [ "$t" = haproxy ]; then
      b=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$HAPROXY_SPLICE_PORT/1k" || true)
    elif [ "$t" != direct ]; then
      b=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 -p "${px[@]}" "$url" || true)
    fi
    [ "$a" = 200 ] && [ "$b" = 200 ] && return 0
    sleep 0.2
  done
  log "$t does not answer (forward: $a, CONNECT: $b); its output:"
  tail -n 20 "$T/$t.out" "$T/$t-cache.log" 2>/dev/null >&2 || true
  return 1
}
READY=()
for t in "${AVAILABLE[@]}"; do
  if wait_ready "$t"; then READY+=("$t"); else log "skipping $t"; fi
done
[ ${#READY[@]} -gt 0 ] || die "nothing answers"
log "targets: ${READY[*]}"

# ---- the three benchmarks ---------------------------------------------------------------
record() { printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" >>"$RAW"; }

to_ms() { # "1.23ms" / "456.78us" / "1.02s" → ms
  "$PY" -c 'import sys,re
m=re.match(r"([0-9.]+)(us|ms|s|m)$", sys.argv[1]); v=float(m.group(1)); u=m.group(2)
print(v/1000 if u=="us" else v if u=="ms" else v*1000 if u=="s" else v*60000)' "$1"
}

cat >"$T/fwd.lua" <<EOF
-- absolute-form requests to a forward proxy
wrk.path = "http://$UP_HOST:$UP_PORT/1k"
wrk.headers["Host"] = "$UP_HOST:$UP_PORT"
EOF

bench_forward() { # round target
  local r=$1 t=$2 out
  if [ "$t" = direct ] || [ "$t" = haproxy ]; then
    local base="http://$UP_IP:$UP_PORT"
    [ "$t" = haproxy ] && base="http://127.0.0.1:${PORT[haproxy]}"
    out=$(timeout $((DURATION + 30)) wrk -t"$WRK_THREADS" -c"$WRK_CONNS" -d"${DURATION}s" --latency \
          "$base/1k" 2>&1) || true
  else
    out=$(timeout $((DURATION + 30)) wrk -t"$WRK_THREADS" -c"$WRK_CONNS" -d"${DURATION}s" --latency \
          -s "$T/fwd.lua" "http://127.0.0.1:${PORT[$t]}/" 2>&1) || true
  fi
  echo "$out" >>"$OUT/forward-$t.log"
  local rps p50 p99 non2xx sock
  rps=$(echo "$out" | awk '/^Requests\/sec:/ {print $2}')
  p50=$(echo "$out" | awk '$1=="50%" {print $2}')
  p99=$(echo "$out" | awk '$1=="99%" {print $2}')
  non2xx=$(echo "$out" | awk '/Non-2xx or 3xx responses:/ {print $NF}')
  # wrk counts a connection the server closed as a "read" error: tinyproxy
  # closes after every response (no client keep-alive). Kept apart.
  sock=$(echo "$out" | awk '/Socket errors:/ {gsub(",",""); print $4+$8+$10}')
  closes=$(echo "$out" | awk '/Socket errors:/ {gsub(",",""); print $6}')
  [ -n "$rps" ] || { log "forward $t: no wrk result"; record "$r" forward "$t" errors 1; return; }
  record "$r" forward "$t" rps "$rps"
  record "$r" forward "$t" p50_ms "$(to_ms "$p50")"
  record "$r" forward "$t" p99_ms "$(to_ms "$p99")"
  record "$r" forward "$t" errors $(( ${non2xx:-0} + ${sock:-0} ))
  record "$r" forward "$t" closed_by_peer "${closes:-0}"
}

bench_bulk() { # round target
  local r=$1 t=$2 out px=() url="http://$UP_HOST:$UP_PORT/bulk" i speeds=() times=()
  if [ "$t" = direct ]; then url="http://$UP_IP:$UP_PORT/bulk"
  elif [ "$t" = haproxy ]; then url="http://127.0.0.1:$HAPROXY_SPLICE_PORT/bulk"
  else px=(-p -x "http://127.0.0.1:${PORT[$t]}"); fi
  for i in $(seq 1 "$BULK_REPEAT"); do
    out=$(curl -s -o /dev/null --max-time 300 "${px[@]}" \
          -w '%{http_code} %{size_download} %{speed_download} %{time_total}' "$url" 2>&1) || true
    echo "$t round $r #$i: $out" >>"$OUT/bulk.log"
    local code size speed secs
    read -r code size speed secs <<<"$out"
    if [ "$code" != 200 ] || [ "$size" != "$BULK_BYTES" ]; then
      log "bulk $t: code=$code size=$size (want 200, $BULK_BYTES)"
      record "$r" bulk "$t" errors 1
      return
    fi
    speeds+=("$speed"); times+=("$secs")
  done
  local med="import statistics,sys; print(round(statistics.median(map(float, sys.argv[2:])) / float(sys.argv[1]), 3))"
  record "$r" bulk "$t" mb_per_s "$("$PY" -c "$med" 1e6 "${speeds[@]}")"
  record "$r" bulk "$t" seconds "$("$PY" -c "$med" 1 "${times[@]}")"
  record "$r" bulk "$t" errors 0
}

bench_tunnel() { # round target
  local r=$1 t=$2 out
  local common=(--path /1k -c "$CLIENTS" -d "$DURATION" -w "$WARMUP" --timeout 10000)
  if [ "$t" = direct ] || [ "$t" = haproxy ]; then
    local dst="$UP_IP:$UP_PORT"
    [ "$t" = haproxy ] && dst="127.0.0.1:${PORT[haproxy]}"
    out=$(timeout $((DURATION + WARMUP + 30)) "$TUNNEL_LOAD" --direct "$dst" \
          --target "$UP_HOST:$UP_PORT" "${common[@]}" 2>&1) || true
  else
    out=$(timeout $((DURATION + WARMUP + 30)) "$TUNNEL_LOAD" --proxy "127.0.0.1:${PORT[$t]}" \
          --target "$UP_HOST:$UP_PORT" "${common[@]}" 2>&1) || true
  fi
  echo "$out" >>"$OUT/tunnel-$t.log"
  local kv; kv=$(echo "$out" | grep '^mode=' || true)
  [ -n "$kv" ] || { log "tunnel $t: no tunnel_load result: $out"; record "$r" tunnel "$t" errors 1; return; }
  local k
  for k in tunnels_per_s p50_ms p99_ms errors; do
    record "$r" tunnel "$t" "$k" "$(echo "$kv" | tr ' ' '\n' | awk -F= -v k="$k" '$1==k {print $2}')"
  done
}

# heavy (#8 item 3): the p99 of the other clients' tunnels while one client
# that holds HEAVY_FILES open files makes tunnels beside them. Three runs of
# tunnel_load (CLIENTS clients) per round: alone; beside a second
# tunnel_load with HEAVY_CLIENTS clients and no extra files (the same load,
# a small fd table); beside that client holding HEAVY_FILES files. Only
# cordon identifies its callers, so only cordon is measured.
bench_heavy() { # round target
  local r=$1 t=$2 mode out hout hpid kv
  [ "$t" = cordon ] || return 0
  local common=(--proxy "127.0.0.1:${PORT[cordon]}" --target "$UP_HOST:$UP_PORT" --path /1k
                -d "$DURATION" -w "$WARMUP" --timeout 10000)
  for mode in alone light heavy; do
    hpid=
    if [ "$mode" != alone ]; then
      local files=0
      [ "$mode" = heavy ] && files=$HEAVY_FILES
      timeout $((DURATION + WARMUP + 40)) "$TUNNEL_LOAD" "${common[@]}" -c "$HEAVY_CLIENTS" \
        -w $((WARMUP + 1)) --hold-files "$files" >"$T/heavy-client.out" 2>&1 &
      hpid=$!
      sleep 1 # its files are open and its tunnels running before the measured client starts
    fi
    out=$(timeout $((DURATION + WARMUP + 30)) "$TUNNEL_LOAD" "${common[@]}" -c "$CLIENTS" 2>&1) || true
    if [ -n "$hpid" ]; then wait "$hpid" 2>/dev/null || true; fi
    echo "round $r $mode: $out" >>"$OUT/heavy-$t.log"
    kv=$(echo "$out" | grep '^mode=' || true)
    [ -n "$kv" ] || { log "heavy $mode: no tunnel_load result: $out"; record "$r" heavy "$t" errors 1; continue; }
    for k in tunnels_per_s p50_ms p99_ms errors; do
      record "$r" heavy "$t" "${mode}_$k" "$(echo "$kv" | tr ' ' '\n' | awk -F= -v k="$k" '$1==k {print $2}')"
    done
    if [ -n "$hpid" ]; then
      hout=$(grep '^mode=' "$T/heavy-client.out" || true)
      echo "round $r $mode (the other client, $HEAVY_CLIENTS clients): ${hout:-$(cat "$T/heavy-client.out")}" >>"$OUT/heavy-$t.log"
      record "$r" heavy "$t" "${mode}_client_tunnels_per_s" \
        "$(echo "$hout" | tr ' ' '\n' | awk -F= '$1=="tunnels_per_s" {print $2}')"
    fi
    sleep 1
  done
}

# ---- warm-up (unrecorded): page cache for the bulk file, every proxy once -----------------
log "warm-up"
cat "$T/www/bulk" >/dev/null
for t in "${READY[@]}"; do
  for b in $BENCHES; do
    case $b in
      bulk) BULK_REPEAT=1 bench_bulk 0 "$t" ;;
      *) DURATION=1 WARMUP=0 "bench_$b" 0 "$t" ;;
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

# ---- optional profile: one more tunnel run per cordon under perf (not recorded) -----------
if [ "$PERF" = 1 ]; then
  for pt in cordon cordon_base; do
    [ -n "${PID_OF[$pt]:-}" ] || continue
    sfx=; [ "$pt" = cordon ] || sfx="-$pt"
    log "perf: tunnel run on $pt under perf record $PERF_OPTS"
    # shellcheck disable=SC2086
    perf record $PERF_OPTS -p "${PID_OF[$pt]}" -o "$OUT/perf-tunnel$sfx.data" \
      -- sleep $((WARMUP + DURATION)) >"$OUT/perf-record$sfx.log" 2>&1 &
    perf_pid=$!
    PIDS+=($perf_pid)
    bench_tunnel 0 "$pt"
    wait "$perf_pid" 2>/dev/null || true
    perf report -i "$OUT/perf-tunnel$sfx.data" --no-children --sort dso,sym --stdio 2>/dev/null \
      | head -n 150 >"$OUT/perf-tunnel$sfx-self.txt" || true
    perf report -i "$OUT/perf-tunnel$sfx.data" --children --sort sym --stdio -g none 2>/dev/null \
      | head -n 150 >"$OUT/perf-tunnel$sfx-children.txt" || true
    log "perf: $OUT/perf-tunnel$sfx.data, perf-tunnel$sfx-self.txt, perf-tunnel$sfx-children.txt"
  done
  awk -F'\t' '$1 != 0' "$RAW" >"$RAW.tmp" && mv "$RAW.tmp" "$RAW"
fi
echo "load average at start: $LOAD_START; at the end: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$SETTINGS"

# ---- report ----------------------------------------------------------------------------------
for t in "${READY[@]}"; do
  [ "$t" = direct ] && continue
  echo "$t RSS after the run: $(ps -o rss= -p "${PID_OF[$t]}" | tr -d ' ') KiB" >>"$SETTINGS"
done
cp "$T/cordon-policy.yaml" "$T/squid.conf" "$T/tinyproxy.conf" "$T/haproxy.cfg" "$T/nginx.conf" "$OUT/" 2>/dev/null || true
"$PY" "$REPO/bench/report.py" "$RAW" "$SETTINGS" | tee "$OUT/summary.md"
log "raw results and logs in $OUT"
