#!/usr/bin/env bash
# bench/run_sandbox.sh — `cordon run` costs (results in bench/RESULTS-sandbox.md):
#
#  1. start-up: wall time of `cordon run --policy P -- /bin/true`, RUNS times
#     (median, p90, min, max), plus the median time of each setup phase
#     (from --log-level debug timestamps);
#  2. new tunnels: bench/tunnel_load (CONNECT + GET + close, CLIENTS clients)
#     run inside `cordon run` through its proxy on the veth, against the same
#     run on the host through `cordon proxy` on loopback, and direct.
#
# Local only: one network namespace (10.238.X.0/24) with nginx as upstream,
# created and removed by this script. As root. Settings: RUNS (200),
# CLIENTS (64), DURATION (10), ROUNDS (3), CORDON (build/cordon).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
CORDON=${CORDON:-$ROOT/build/cordon}
RUNS=${RUNS:-200}
CLIENTS=${CLIENTS:-64}
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
PY=/usr/bin/python3
TL=$ROOT/build/bench/tunnel_load

die() { echo "run_sandbox: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "run as root"
[ -x "$CORDON" ] || die "no $CORDON (make)"
command -v nginx >/dev/null || die "nginx not found (apt-get install nginx-light)"
make -s -C bench >/dev/null
[ -x "$TL" ] || die "no $TL"

T=$(mktemp -d /tmp/cordon-sbench.XXXXXX)
chmod 755 "$T"
NS=csbench-$$
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  ip netns pids "$NS" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
  ip link del "csb$$h" 2>/dev/null || true
  ip netns del "$NS" 2>/dev/null || true
  rm -rf "$T"
}
trap cleanup EXIT

X=""
for x in $(seq 10 250); do
  ip -4 -o addr | grep -q " 10\.238\.$x\." || { X=$x; break; }
done
[ -n "$X" ] || die "no free 10.238.X.0/24"
UP_IP=10.238.$X.2

ip netns add "$NS"
ip link add "csb$$h" type veth peer name "csb$$n"
ip link set "csb$$n" netns "$NS"
ip addr add "10.238.$X.1/24" dev "csb$$h"
ip link set "csb$$h" up
ip -n "$NS" addr add "$UP_IP/24" dev "csb$$n"
ip -n "$NS" link set "csb$$n" up
ip -n "$NS" link set lo up
mkdir -p "$T/www" "$T/nginx"
head -c 1024 /dev/zero | tr '\0' 'x' >"$T/www/1k"
chmod 644 "$T/www/1k"
cat >"$T/nginx.conf" <<EOF
worker_processes auto;
pid $T/nginx.pid;
events { worker_connections 16384; }
http {
  access_log off; sendfile on; tcp_nodelay on;
  client_body_temp_path $T/nginx/body; proxy_temp_path $T/nginx/proxy;
  fastcgi_temp_path $T/nginx/fastcgi; uwsgi_temp_path $T/nginx/uwsgi; scgi_temp_path $T/nginx/scgi;
  server { listen $UP_IP:8080 backlog=4096; root $T/www; }
}
EOF
ip netns exec "$NS" nginx -e "$T/nginx-error.log" -c "$T/nginx.conf" \
  -g 'daemon off; user nobody nogroup;' >"$T/nginx.out" 2>&1 &
PIDS+=($!)
for _ in $(seq 50); do curl -s -o /dev/null "http://$UP_IP:8080/1k" && break; sleep 0.1; done

cat >"$T/policy.yaml" <<EOF
version: 1
filesystem_policy:
  include_workdir: false
  read_only: [/usr, /lib, /lib64, /bin, /etc, /proc, /dev, $ROOT/build/bench]
  read_write: [/dev/null]
landlock:
  compatibility: best_effort
network_policies:
  bench:
    endpoints:
      - host: $UP_IP
        port: 8080
    binaries:
      - path: $TL
EOF

echo "== start-up: $RUNS x cordon run -- /bin/true" >&2
for i in $(seq "$RUNS"); do
  s=$(date +%s%N)
  "$CORDON" run --policy "$T/policy.yaml" --log /dev/null -- /bin/true
  e=$(date +%s%N)
  echo $(( (e - s) / 1000 ))
done >"$T/startup.txt"
for i in $(seq 30); do
  s=$(date +%s%N)
  "$CORDON" run --policy "$T/policy.yaml" --log /dev/null --log-level debug -- /bin/true 2>"$T/debug-$i.log"
  echo "$s" >"$T/debug-$i.start"
done

tl() { # label, args...
  local label=$1; shift
  echo "== tunnels: $label" >&2
  "$@" --target "$UP_IP:8080" --path /1k --clients "$CLIENTS" --duration "$DURATION" --warmup 1
}

PORT=$(( (RANDOM % 20000) + 20000 ))
"$CORDON" proxy --policy "$T/policy.yaml" --listen "127.0.0.1:$PORT" --log /dev/null &
PIDS+=($!)
for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done
: >"$T/tunnels.txt"
for r in $(seq "$ROUNDS"); do
  echo "direct $(tl direct "$TL" --direct "$UP_IP:8080")" >>"$T/tunnels.txt"
  echo "host $(tl "host, cordon proxy on loopback" "$TL" --proxy "127.0.0.1:$PORT")" >>"$T/tunnels.txt"
  echo "sandbox $("$CORDON" run --policy "$T/policy.yaml" --log /dev/null -- /bin/sh -c \
    "exec $TL --proxy \${HTTP_PROXY#http://} --target $UP_IP:8080 --path /1k \
     --clients $CLIENTS --duration $DURATION --warmup 1")" >>"$T/tunnels.txt"
done

"$PY" - "$T" "$RUNS" "$CLIENTS" "$DURATION" "$ROUNDS" <<'EOF'
import glob, os, re, statistics, sys, datetime
T, runs, clients, duration, rounds = sys.argv[1:]
us = sorted(int(l) for l in open(T + "/startup.txt"))
ms = [u / 1000 for u in us]
def pct(v, p): return v[min(len(v) - 1, int(len(v) * p))]
print("### cordon run -- /bin/true (%s runs)\n" % runs)
print("| median | p90 | min | max |\n|---|---|---|---|")
print("| %.1f ms | %.1f ms | %.1f ms | %.1f ms |\n" % (statistics.median(ms), pct(ms, 0.9), ms[0], ms[-1]))
marks = [("policy loaded", "run: policy loaded"), ("Landlock + seccomp ready", "landlock ruleset and seccomp"),
         ("netns + veth", "network namespace ready"), ("fence (nftables) + NFLOG", "run: fence"),
         ("init + /proc + Landlock /proc rules", "waiting"), ("proxy started", "proxy listening"),
         ("command ran (exec true, exit)", "command finished"), ("proxy stopped", "proxy stopped"),
         ("torn down (fds closed)", "torn down")]
phases = {m[0]: [] for m in marks}
def ts(line):
    t = re.match(r"\S+T(\d+):(\d+):(\d+\.\d+)Z", line)
    return (int(t.group(1)) * 3600 + int(t.group(2)) * 60 + float(t.group(3))) * 1000
for f in glob.glob(T + "/debug-*.log"):
    start = int(open(f.replace(".log", ".start")).read()) / 1e6
    lines = open(f).read().splitlines()
    d0 = datetime.datetime.utcfromtimestamp(start / 1000)
    prev = (d0.hour * 3600 + d0.minute * 60 + d0.second + d0.microsecond / 1e6) * 1000
    for name, pat in marks:
        hit = [l for l in lines if pat in l]
        if not hit:
            continue
        t = ts(hit[0])
        phases[name].append(t - prev)
        prev = t
print("Median time of each phase (30 runs with --log-level debug; the first phase\n"
      "includes exec and dynamic linking of cordon):\n")
print("| phase | median |\n|---|---|")
for name, _ in marks:
    if phases[name]:
        print("| %s | %.1f ms |" % (name, statistics.median(phases[name])))
rows = {}
for line in open(T + "/tunnels.txt"):
    label, rest = line.split(" ", 1)
    kv = dict(re.findall(r"(\w+)=(\S+)", rest))
    rows.setdefault(label, []).append(kv)
print("\n### New tunnels (tunnel_load: CONNECT + GET 1 KiB + close; %s clients, %s s, median of %s rounds)\n"
      % (clients, duration, rounds))
print("| from | tunnels/s | p50 | p99 | errors |\n|---|---|---|---|---|")
base = None
for label in ("direct", "host", "sandbox"):
    r = rows.get(label, [])
    if not r:
        continue
    rate = statistics.median(float(x["tunnels_per_s"]) for x in r)
    p50 = statistics.median(float(x["p50_ms"]) for x in r)
    p99 = statistics.median(float(x["p99_ms"]) for x in r)
    err = sum(int(x["errors"]) for x in r)
    desc = {"direct": "host, no proxy", "host": "host → cordon proxy (127.0.0.1)",
            "sandbox": "inside cordon run → its proxy (veth)"}[label]
    print("| %s | %.0f | %.2f ms | %.2f ms | %d |" % (desc, rate, p50, p99, err))
EOF
