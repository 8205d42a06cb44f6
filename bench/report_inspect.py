#!/usr/bin/python3
"""Summarises bench/run_inspect.sh results as Markdown.

usage: report_inspect.py RAW.tsv [SETTINGS.txt]

RAW.tsv lines: round, bench, target, metric, value (tab separated).
Every ratio is computed from two numbers measured in the same round, then
the median over rounds is shown:
  keepalive / single (requests/s, higher is better):
    "÷ direct"   target / direct        (1.00 = as fast as direct)
    "inspect ÷"  inspect / target       (> 1: inspection is faster)
  ws (round-trip time, lower is better):
    "÷ direct"   target / direct        (1.00 = no added latency)
    "÷ raw"      target / raw tunnel
The two targets of the issue are checked at the end:
  inspection costs at most 30% over a raw tunnel: raw / inspect requests/s <= 1.30
  inspection is at least 6x mitmproxy:          inspect / mitmproxy requests/s >= 6
"""
import statistics
import sys
from collections import defaultdict

ORDER = ["direct", "raw", "inspect", "mitmproxy"]
RPS_BENCHES = [
    ("keepalive", "HTTPS keep-alive GET 1 KiB, %s concurrent connections (https_load)"),
    ("single", "HTTPS keep-alive GET 1 KiB, one connection, requests back to back (https_load -c 1)"),
]
OVERHEAD_MAX = 1.30
MITM_MIN = 6.0


def fmt(v, digits=2):
    if v is None:
        return "-"
    if abs(v) >= 100:
        return "%.0f" % v
    if abs(v) >= 10:
        return "%.1f" % v
    return "%.*f" % (digits, v)


def load(path):
    data = defaultdict(dict)  # (bench, target, metric) -> {round: value}
    with open(path) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) != 5 or parts[4] == "":
                continue
            r, bench, target, metric, value = parts
            try:
                data[(bench, target, metric)][int(r)] = float(value)
            except ValueError:
                continue
    return data


def med(vals):
    return statistics.median(vals.values()) if vals else None


def ratios(data, bench, metric, num, den):
    a = data.get((bench, num, metric), {})
    b = data.get((bench, den, metric), {})
    return [a[r] / b[r] for r in sorted(a) if r in b and b[r] > 0]


def ratio_cell(data, bench, metric, num, den):
    if num == den:
        return "-"
    rs = ratios(data, bench, metric, num, den)
    return "%.2f" % statistics.median(rs) if rs else "-"


def table(out, data, bench, main, cols, ratio_cols, title):
    targets = [t for t in ORDER if (bench, t, main) in data or (bench, t, "errors") in data]
    if not targets:
        return
    rounds = sorted({r for t in targets for r in data.get((bench, t, main), {})})
    out += ["### " + title, ""]
    head = ["target"] + [c[1] for c in cols] + ["errors"] + [c[0] for c in ratio_cols]
    out.append("| " + " | ".join(head) + " |")
    out.append("|" + "---|" * len(head))
    for t in targets:
        row = [t]
        for metric, _, kind in cols:
            vals = data.get((bench, t, metric), {})
            if kind == "spread":
                row.append("%s..%s" % (fmt(min(vals.values())), fmt(max(vals.values())))
                           if vals else "-")
            else:
                row.append(fmt(med(vals), 3 if metric.endswith("_ms") else 1))
        errs = data.get((bench, t, "errors"), {})
        row.append("%d" % sum(errs.values()) if errs else "-")
        for _, num, den in ratio_cols:
            row.append(ratio_cell(data, bench, main, num or t, den or t))
        out.append("| " + " | ".join(row) + " |")
    out += ["", "rounds: %d" % len(rounds), ""]


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    data = load(sys.argv[1])
    out = ["# cordon: HTTPS inspection benchmark", ""]
    clients = "N"
    if len(sys.argv) > 2:
        with open(sys.argv[2]) as f:
            settings = f.read().strip()
        for line in settings.splitlines():
            if line.startswith("keepalive: https_load -c "):
                clients = line.split()[3]
        out += ["Settings:", "", "```", settings, "```", ""]

    for bench, title in RPS_BENCHES:
        table(out, data, bench, "requests_per_s",
              [("requests_per_s", "requests/s (median)", "median"),
               ("requests_per_s", "min..max", "spread"),
               ("p50_ms", "p50 ms", "median"), ("p99_ms", "p99 ms", "median")],
              [("÷ direct", None, "direct"), ("inspect ÷", "inspect", None)],
              title % clients if "%s" in title else title)
    table(out, data, "ws", "p50_us",
          [("p50_us", "RTT p50 µs (median)", "median"), ("p50_us", "min..max", "spread"),
           ("p99_us", "p99 µs", "median"), ("mean_us", "mean µs", "median")],
          [("÷ direct", None, "direct"), ("÷ raw", None, "raw")],
          "WebSocket echo round trip over TLS, one connection, sequential messages (ws_rtt)")

    # ---- the targets ----
    out += ["### Targets", ""]
    out.append("| check | per round | median | target | met |")
    out.append("|---|---|---|---|---|")
    checks = [
        ("keepalive", "raw", "inspect", "inspection cost over a raw tunnel, %s conns "
         "(raw req/s ÷ inspect req/s)" % clients, "<=", OVERHEAD_MAX),
        ("single", "raw", "inspect", "inspection cost over a raw tunnel, 1 conn "
         "(raw req/s ÷ inspect req/s)", "<=", OVERHEAD_MAX),
        ("keepalive", "inspect", "mitmproxy", "inspect ÷ mitmproxy req/s, %s conns" % clients,
         ">=", MITM_MIN),
        ("single", "inspect", "mitmproxy", "inspect ÷ mitmproxy req/s, 1 conn", ">=", MITM_MIN),
    ]
    for bench, num, den, what, op, lim in checks:
        rs = ratios(data, bench, "requests_per_s", num, den)
        if not rs:
            continue
        m = statistics.median(rs)
        ok = m <= lim if op == "<=" else m >= lim
        out.append("| %s | %s | %.2f | %s %.2f | %s |" % (
            what, " ".join("%.2f" % x for x in rs), m, op, lim, "yes" if ok else "**no**"))
    out.append("")

    out += ["Per-round main metric (rounds in order):", "", "```"]
    for (bench, t, metric), vals in sorted(data.items()):
        if metric in ("requests_per_s", "p50_us"):
            out.append("%s %s %s: %s" % (bench, t, metric,
                                         " ".join("%g" % vals[r] for r in sorted(vals))))
    out += ["```", ""]
    print("\n".join(out))


if __name__ == "__main__":
    main()
