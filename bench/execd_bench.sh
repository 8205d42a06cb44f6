#!/usr/bin/env bash
# bench/execd_bench.sh — cordon execd vs a local PTY (and pipe), same run.
#
#   bench/execd_bench.sh            # ROUNDS=5 RTT_N=2000 BULK_MB=200
#
# Builds build/bench/execd_bench, writes a BULK_MB file of 99-char lines to
# $TMPDIR, starts `cordon execd` on 127.0.0.1 (port 0), and for each round
# measures, one after the other:
#   rtt   local   forkpty `stty raw -echo; exec cat`: 1-byte write -> echo read
#   rtt   execd   PTY session running the same, 0x00 frame -> 0x01 frame echo
#   bulk  local   forkpty `cat FILE`, read the master to EOF
#   bulk  script  `script -qfc "cat FILE" /dev/null > /dev/null` (wall time)
#   bulk  execd   PTY session `cat FILE`, WebSocket frames until the exit frame
#   bulk  pipe    `cat FILE` into a pipe (baseline for pipe mode)
#   bulk  execd-pipe  the same session in pipe mode
# Prints medians and execd/baseline ratios (Markdown) and saves raw numbers.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-5}
RTT_N=${RTT_N:-2000}
BULK_MB=${BULK_MB:-200}
CORDON=${CORDON:-build/cordon}
OUT=${OUT:-build/bench/execd-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT" build/bench
cc -std=c11 -O2 -g -Wall -Wextra -Werror -Wformat=2 -Wshadow -Wmissing-prototypes \
   -Wstrict-prototypes -o build/bench/execd_bench bench/execd_bench.c -lutil
B=build/bench/execd_bench
FILE=${TMPDIR:-/tmp}/execd-bench-$BULK_MB.txt
[ -s "$FILE" ] || head -c $((BULK_MB * 1000000)) /dev/zero | tr '\0' a | fold -w 99 > "$FILE"

"$CORDON" execd --listen 127.0.0.1:0 --log-level warn > "$OUT/execd.out" 2> "$OUT/execd.err" &
EPID=$!
trap 'kill $EPID 2>/dev/null; wait $EPID 2>/dev/null || true' EXIT
for _ in $(seq 50); do grep -q listening "$OUT/execd.out" 2>/dev/null && break; sleep 0.1; done
PORT=$(sed -n 's/^listening 127.0.0.1://p' "$OUT/execd.out")
[ -n "$PORT" ] || { echo "execd did not start:"; cat "$OUT/execd.err"; exit 1; }

RAW=$OUT/raw.tsv
: > "$RAW"
for r in $(seq "$ROUNDS"); do
  echo "round $r/$ROUNDS" >&2
  echo -e "$r\trtt-local\t$($B rtt-local "$RTT_N")" >> "$RAW"
  echo -e "$r\trtt-execd\t$($B rtt-execd "$PORT" "$RTT_N")" >> "$RAW"
  echo -e "$r\tbulk-local\t$($B bulk-local "$FILE")" >> "$RAW"
  t0=$(date +%s.%N); script -qfc "cat $FILE" /dev/null > /dev/null; t1=$(date +%s.%N)
  echo -e "$r\tbulk-script\tbulk $(stat -c %s "$FILE") $(echo "$t1 - $t0" | bc) 0" >> "$RAW"
  echo -e "$r\tbulk-execd\t$($B bulk-execd "$PORT" "$FILE" pty)" >> "$RAW"
  echo -e "$r\tbulk-pipe\t$($B bulk-pipe "$FILE")" >> "$RAW"
  echo -e "$r\tbulk-execd-pipe\t$($B bulk-execd "$PORT" "$FILE" pipe)" >> "$RAW"
done

/usr/bin/python3 - "$RAW" "$ROUNDS" "$RTT_N" "$BULK_MB" <<'PY' | tee "$OUT/summary.md"
import statistics as st, sys
raw, rounds, n, mb = sys.argv[1:]
rows = {}
for line in open(raw):
    r, name, kind, *v = line.split()
    rows.setdefault(name, []).append([float(x) for x in v])
def med(name, i):
    return st.median(x[i] for x in rows[name])
def mbs(name):  # MB/s from bytes and seconds
    return st.median(x[0] / x[1] / 1e6 for x in rows[name])
print("| measure (median of %s rounds) | baseline | cordon execd | ratio execd/baseline |" % rounds)
print("|---|---|---|---|")
print("| keystroke echo round trip, median (%s samples/round) | %.1f µs | %.1f µs | %.2f× |"
      % (n, med("rtt-local", 0), med("rtt-execd", 0), med("rtt-execd", 0) / med("rtt-local", 0)))
print("| keystroke echo round trip, p99 | %.1f µs | %.1f µs | %.2f× |"
      % (med("rtt-local", 1), med("rtt-execd", 1), med("rtt-execd", 1) / med("rtt-local", 1)))
print("| bulk `cat` %s MB through a PTY (baseline: forkpty) | %.1f MB/s | %.1f MB/s | %.2f× |"
      % (mb, mbs("bulk-local"), mbs("bulk-execd"), mbs("bulk-execd") / mbs("bulk-local")))
print("| bulk `cat` %s MB through a PTY (baseline: `script`) | %.1f MB/s | %.1f MB/s | %.2f× |"
      % (mb, mbs("bulk-script"), mbs("bulk-execd"), mbs("bulk-execd") / mbs("bulk-script")))
print("| bulk `cat` %s MB, pipe mode (baseline: a pipe) | %.1f MB/s | %.1f MB/s | %.2f× |"
      % (mb, mbs("bulk-pipe"), mbs("bulk-execd-pipe"), mbs("bulk-execd-pipe") / mbs("bulk-pipe")))
PY
echo "raw numbers: $RAW" >&2
