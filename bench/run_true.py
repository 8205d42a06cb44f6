#!/usr/bin/python3
"""Wall time of `cordon run --policy P -- /bin/true` (N runs, median/p90) next
to /bin/true itself, measured in the same run. As root, from the repo root:
    bench/run_true.py [N]
The policy has no network entries and no filesystem_policy (the default
read-only system paths apply)."""
import os, statistics, subprocess, sys, tempfile, time

n = int(sys.argv[1]) if len(sys.argv) > 1 else 100
cordon = os.environ.get("CORDON", "build/cordon")
with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
    f.write("version: 1\nnetwork_policies: {}\n")
    policy = f.name


def timed(cmd):
    out = []
    for _ in range(n):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        out.append((time.perf_counter() - t) * 1000)
    return sorted(out)


try:
    run = timed([cordon, "run", "--policy", policy, "--", "/bin/true"])
    base = timed(["/bin/true"])
finally:
    os.unlink(policy)
p90 = lambda v: v[int(0.9 * (len(v) - 1))]
print("| command | median ms | p90 ms | min ms | max ms |")
print("|---|---|---|---|---|")
for name, v in (("cordon run -- /bin/true", run), ("/bin/true", base)):
    print("| %s | %.1f | %.1f | %.1f | %.1f |" % (name, statistics.median(v), p90(v), v[0], v[-1]))
print("load average:", open("/proc/loadavg").read().split()[:3])
