#!/usr/bin/env bash
# bench/run_startup.sh — start-up of `cordon run -- true` against bubblewrap
# (`bwrap --unshare-all --ro-bind / / --proc /proc --dev /dev true`), both
# measured by hyperfine in the same run, ROUNDS rounds of RUNS runs each;
# prints each round's medians and their ratio, then the median ratio.
# Results in bench/RESULTS-sandbox.md. As root; needs `scripts/setup --bench`
# (bubblewrap, hyperfine). Settings: ROUNDS (5), RUNS (40), CORDON (build/cordon),
# BEFORE (optional: a second cordon binary, e.g. an older build, measured in
# the same rounds so that a change is compared under the same load).
# PAIRED=N (optional): afterwards, N iterations that each run every command
# once, in rotating order (fork+exec+wait timed by Python), so that each
# iteration's commands see the same moment of a fluctuating load; prints
# the medians and the median of the per-iteration ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
CORDON=${CORDON:-$PWD/build/cordon}
ROUNDS=${ROUNDS:-5}
RUNS=${RUNS:-40}
command -v hyperfine >/dev/null && command -v bwrap >/dev/null ||
  { echo "run_startup: needs hyperfine and bwrap (scripts/setup --bench)" >&2; exit 1; }
T=$(mktemp -d /tmp/cordon-startup.XXXXXX)
trap 'rm -rf "$T"' EXIT
chmod 755 "$T"
printf 'version: 1\n' > "$T/policy.yaml"
CMD_CORDON="$CORDON run --policy $T/policy.yaml --workdir $T -- true"
CMD_BWRAP="bwrap --unshare-all --ro-bind / / --proc /proc --dev /dev true"
CMDS=("$CMD_CORDON" "$CMD_BWRAP")
[ -n "${BEFORE:-}" ] && CMDS+=("$BEFORE run --policy $T/policy.yaml --workdir $T -- true")
for r in $(seq "$ROUNDS"); do
  hyperfine -N --warmup 3 --runs "$RUNS" --export-json "$T/r$r.json" "${CMDS[@]}" >/dev/null 2>&1
done
/usr/bin/python3 - "$T" "$ROUNDS" <<'PY'
import json, statistics, sys
d, rounds = sys.argv[1], int(sys.argv[2])
ratios, before = [], []
for r in range(1, rounds + 1):
    res = json.load(open("%s/r%d.json" % (d, r)))["results"]
    c, b = res[0]["median"] * 1000, res[1]["median"] * 1000
    ratios.append(c / b)
    line = "round %d: cordon run %.1f ms, bwrap %.1f ms, ratio %.2fx" % (r, c, b, c / b)
    if len(res) > 2:
        o = res[2]["median"] * 1000
        before.append(o / b)
        line += "; BEFORE %.1f ms, ratio %.2fx" % (o, o / b)
    print(line)
print("median ratio over %d rounds: %.2fx" % (rounds, statistics.median(ratios)))
if before:
    print("BEFORE median ratio: %.2fx" % statistics.median(before))
PY
if [ -n "${PAIRED:-}" ]; then
  /usr/bin/python3 - "$PAIRED" "${CMDS[@]}" <<'PY'
import shlex, statistics, subprocess, sys, time
n, cmds = int(sys.argv[1]), [shlex.split(c) for c in sys.argv[2:]]
names = ["cordon run", "bwrap", "BEFORE"][:len(cmds)]
t = [[] for _ in cmds]
for i in range(n):
    order = list(range(len(cmds)))
    order = order[i % len(order):] + order[:i % len(order)]
    for k in order:
        t0 = time.monotonic()
        subprocess.run(cmds[k], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, check=True)
        t[k].append((time.monotonic() - t0) * 1000)
print("paired, %d iterations:" % n)
for k, name in enumerate(names):
    print("  %s: median %.1f ms" % (name, statistics.median(t[k])))
print("  median of per-iteration cordon/bwrap: %.2fx" %
      statistics.median(a / b for a, b in zip(t[0], t[1])))
if len(cmds) > 2:
    print("  median of per-iteration BEFORE/bwrap: %.2fx" %
          statistics.median(a / b for a, b in zip(t[2], t[1])))
    print("  median of per-iteration cordon/BEFORE: %.2f" %
          statistics.median(a / b for a, b in zip(t[0], t[2])))
PY
fi
