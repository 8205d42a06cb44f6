#!/usr/bin/env bash
# bench/run_transparent.sh — new connections per second inside `cordon run`
# through transparent capture vs explicit CONNECT, in the same run (results
# in bench/RESULTS-sandbox.md, "Transparent capture vs CONNECT").
#
# One `cordon run` per round runs bench/tunnel_load twice, in alternating
# order: (a) CONNECT bench.test:8080 through the proxy at 127.0.0.1:3128
# inside the sandbox; (b) no proxy: bench.test resolved by the sandbox's
# policy DNS (a synthetic 198.18.x address), connect straight to it (the
# fence redirects it into the proxy). Same policy, same upstream, same GET
# 1 KiB + close per connection. The proxy resolves bench.test through a
# stdlib DNS server (tests/integration/lib/dnsserver.py) on loopback.
#
# Local only: one network namespace (10.238.X.0/24) with nginx as upstream.
# As root. Settings: CLIENTS (64), DURATION (10), ROUNDS (5), CORDON.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
CORDON=${CORDON:-$ROOT/build/cordon}
CLIENTS=${CLIENTS:-64}
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-5}
PY=/usr/bin/python3
TL=$ROOT/build/bench/tunnel_load

die() { echo "run_transparent: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "run as root"
[ -x "$CORDON" ] || die "no $CORDON (make)"
command -v nginx >/dev/null || die "nginx not found (scripts/setup --bench)"
make -s -C bench >/dev/null
[ -x "$TL" ] || die "no $TL"

T=$(mktemp -d /tmp/cordon-tbench.XXXXXX)
chmod 755 "$T"
NS=ctbench-$$
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  ip netns pids "$NS" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
  ip link del "ctb$$h" 2>/dev/null || true
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
ip link add "ctb$$h" type veth peer name "ctb$$n"
ip link set "ctb$$n" netns "$NS"
ip addr add "10.238.$X.1/24" dev "ctb$$h"
ip link set "ctb$$h" up
ip -n "$NS" addr add "$UP_IP/24" dev "ctb$$n"
ip -n "$NS" link set "ctb$$n" up
ip -n "$NS" link set lo up
mkdir -p "$T/www" "$T/nginx"
head -c 1024 /dev/zero | tr '\0' 'x' >"$T/www/1k"
chmod 644 "$T/www/1k"
cat >"$T/nginx.conf" <<EOC
worker_processes auto;
pid $T/nginx.pid;
events { worker_connections 16384; }
http {
  access_log off; sendfile on; tcp_nodelay on;
  client_body_temp_path $T/nginx/body; proxy_temp_path $T/nginx/proxy;
  fastcgi_temp_path $T/nginx/fastcgi; uwsgi_temp_path $T/nginx/uwsgi; scgi_temp_path $T/nginx/scgi;
  server { listen $UP_IP:8080 backlog=4096; root $T/www; }
}
EOC
ip netns exec "$NS" nginx -e "$T/nginx-error.log" -c "$T/nginx.conf" \
  -g 'daemon off; user nobody nogroup;' >"$T/nginx.out" 2>&1 &
PIDS+=($!)
for _ in $(seq 50); do curl -s -o /dev/null "http://$UP_IP:8080/1k" && break; sleep 0.1; done

"$PY" "$ROOT/tests/integration/lib/dnsserver.py" --bind 127.0.0.1 --port 0 \
  "bench.test=$UP_IP" >"$T/dns.out" 2>&1 &
PIDS+=($!)
for _ in $(seq 50); do grep -q PORT "$T/dns.out" && break; sleep 0.1; done
DNS_PORT=$(awk '/PORT/ {print $2}' "$T/dns.out")
[ -n "$DNS_PORT" ] || die "the DNS server did not start"

cat >"$T/policy.yaml" <<EOC
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
      - host: bench.test
        port: 8080
        allowed_ips: ["10.238.0.0/16"]
    binaries:
      - path: $TL
EOC

ARGS="--target bench.test:8080 --path /1k --clients $CLIENTS --duration $DURATION --warmup 1"
: >"$T/rows.txt"
for r in $(seq "$ROUNDS"); do
  echo "== round $r" >&2
  if [ $((r % 2)) -eq 1 ]; then ORDER="connect transparent"; else ORDER="transparent connect"; fi
  "$CORDON" run --policy "$T/policy.yaml" --log /dev/null --resolver "127.0.0.1:$DNS_PORT" \
    -- /bin/sh -c "
      A=\$(getent ahostsv4 bench.test | awk 'NR==1 {print \$1}')
      for m in $ORDER; do
        if [ \$m = connect ]; then
          echo \"connect \$($TL --proxy 127.0.0.1:3128 $ARGS)\"
        else
          echo \"transparent addr=\$A \$(env -u HTTP_PROXY -u HTTPS_PROXY $TL --direct \$A:8080 $ARGS)\"
        fi
      done" >>"$T/rows.txt"
done
cat "$T/rows.txt" >&2

"$PY" - "$T/rows.txt" "$CLIENTS" "$DURATION" "$ROUNDS" <<'EOP'
import re, statistics, sys
path, clients, duration, rounds = sys.argv[1:]
rows = {}
for line in open(path):
    label, rest = line.split(" ", 1)
    rows.setdefault(label, []).append(dict(re.findall(r"(\w+)=(\S+)", rest)))
print("### New connections inside cordon run (tunnel_load: GET 1 KiB + close; %s clients, "
      "%s s, median of %s rounds)\n" % (clients, duration, rounds))
print("| path | conns/s | p50 | p99 | errors |\n|---|---|---|---|---|")
rate = {}
for label, desc in (("connect", "CONNECT via HTTPS_PROXY (127.0.0.1:3128 inside)"),
                    ("transparent", "no proxy: policy DNS + capture")):
    r = rows.get(label, [])
    if not r:
        continue
    rate[label] = statistics.median(float(x["tunnels_per_s"]) for x in r)
    print("| %s | %.0f | %.2f ms | %.2f ms | %d |" % (
        desc, rate[label], statistics.median(float(x["p50_ms"]) for x in r),
        statistics.median(float(x["p99_ms"]) for x in r), sum(int(x["errors"]) for x in r)))
if len(rate) == 2:
    per = [float(t["tunnels_per_s"]) / float(c["tunnels_per_s"])
           for c, t in zip(rows["connect"], rows["transparent"])]
    print("\ntransparent / CONNECT: %.2fx (median of per-round ratios %.2fx; rounds: %s)"
          % (rate["transparent"] / rate["connect"], statistics.median(per),
             ", ".join("%.2f" % p for p in per)))
EOP
