#!/usr/bin/python3
"""Summarises bench/run.sh results as Markdown.

usage: report.py RAW.tsv [SETTINGS.txt]

RAW.tsv lines: round, bench, target, metric, value (tab separated).
For each benchmark: the median over rounds of every metric per target, the
spread (min..max) of the main metric, and two ratios computed round by round
(both measured in the same round, then the median of those ratios):
  "÷ direct"   target / direct
  "cordon ÷"   cordon / target   (> 1 means cordon is faster for throughput)
and a table of the issue's targets: the same round-by-round ratios, per
round and their median, against each minimum.
"""
import statistics
import sys
from collections import defaultdict

BENCHES = [
    ("forward", "rps", "requests/s",
     "(a) forward proxy, absolute-form GET of 1 KiB, keep-alive (wrk)"),
    ("bulk", "mb_per_s", "MB/s",
     "(b) bulk download through CONNECT (curl -p)"),
    ("tunnel", "tunnels_per_s", "tunnels/s",
     "(c) new tunnel + GET 1 KiB + close, concurrent clients (tunnel_load)"),
]
ORDER = ["direct", "haproxy", "squid", "tinyproxy", "cordon_base", "cordon"]
# The targets (#8 item 5): (bench, numerator, denominator, minimum).
TARGETS = [
    ("tunnel", "cordon", "haproxy", 0.9),
    ("tunnel", "cordon", "tinyproxy", 2.0),
    ("bulk", "cordon", "haproxy", 1.0),
    ("forward", "cordon", "direct", 0.6),
    ("forward", "cordon", "squid", 4.0),
]


def fmt(v, digits=1):
    if v is None:
        return "-"
    if abs(v) >= 100:
        return "%.0f" % v
    if abs(v) >= 10:
        return "%.1f" % v
    return "%.*f" % (max(digits, 2), v)


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    data = defaultdict(dict)  # (bench, target, metric) -> {round: value}
    with open(sys.argv[1]) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) != 5 or parts[4] == "":
                continue
            r, bench, target, metric, value = parts
            try:
                data[(bench, target, metric)][int(r)] = float(value)
            except ValueError:
                continue

    out = ["# cordon bench results", ""]
    if len(sys.argv) > 2:
        with open(sys.argv[2]) as f:
            settings = f.read().strip()
        out += ["Settings:", "", "```", settings, "```", ""]

    for bench, main_metric, unit, title in BENCHES:
        targets = [t for t in ORDER if (bench, t, main_metric) in data
                   or (bench, t, "errors") in data]
        if not targets:
            continue
        rounds = sorted({r for t in targets for r in data.get((bench, t, main_metric), {})})
        out += ["## " + title, ""]
        lat = bench != "bulk"
        head = ["target", "%s (median)" % unit, "min..max"]
        head += ["p50 ms", "p99 ms"] if lat else ["seconds"]
        head += ["errors", "÷ direct", "cordon ÷"]
        out.append("| " + " | ".join(head) + " |")
        out.append("|" + "---|" * len(head))
        for t in targets:
            vals = data.get((bench, t, main_metric), {})
            med = statistics.median(vals.values()) if vals else None
            spread = "%s..%s" % (fmt(min(vals.values())), fmt(max(vals.values()))) if vals else "-"
            row = [t, fmt(med), spread]
            extra = ["p50_ms", "p99_ms"] if lat else ["seconds"]
            for m in extra:
                mv = data.get((bench, t, m), {})
                row.append(fmt(statistics.median(mv.values()), 3) if mv else "-")
            errs = data.get((bench, t, "errors"), {})
            row.append("%d" % sum(errs.values()) if errs else "-")
            for num_t, den_t in ((t, "direct"), ("cordon", t)):
                a = data.get((bench, num_t, main_metric), {})
                b = data.get((bench, den_t, main_metric), {})
                ratios = [a[r] / b[r] for r in rounds if r in a and r in b and b[r] > 0]
                if num_t == den_t or not ratios:
                    row.append("-")
                else:
                    row.append("%.2f" % statistics.median(ratios))
            out.append("| " + " | ".join(row) + " |")
        out += [""]
        for t in targets:
            closes = data.get((bench, t, "closed_by_peer"), {})
            if closes and sum(closes.values()) > 0:
                out.append("Note: %s closed the client connection %d times over all rounds "
                           "(no client keep-alive; wrk reconnects and reports these as socket "
                           "'read' errors; not counted as errors here)."
                           % (t, sum(closes.values())))
        out += ["rounds: %d" % len(rounds), ""]

    # heavy: p99 of CLIENTS tunnels alone / beside a light client / beside
    # a client holding many files (cordon only)
    hv = {m: data.get(("heavy", "cordon", m), {}) for m in (
        "alone_p99_ms", "light_p99_ms", "heavy_p99_ms", "alone_tunnels_per_s",
        "light_tunnels_per_s", "heavy_tunnels_per_s", "light_client_tunnels_per_s",
        "heavy_client_tunnels_per_s", "alone_p50_ms", "light_p50_ms", "heavy_p50_ms")}
    if hv["alone_p99_ms"]:
        out += ["## (d) heavy: other clients' tunnels beside a client holding many files (cordon)", "",
                "| run | tunnels/s (median) | p50 ms | p99 ms | the other client's tunnels/s |",
                "|---|---|---|---|---|"]
        for mode in ("alone", "light", "heavy"):
            def med(m):
                v = hv.get("%s_%s" % (mode, m), {})
                return fmt(statistics.median(v.values()), 3) if v else "-"
            out.append("| %s | %s | %s | %s | %s |" % (mode, med("tunnels_per_s"), med("p50_ms"),
                                                       med("p99_ms"), med("client_tunnels_per_s")))
        out += [""]

    checks = []
    for bench, num_t, den_t, minimum in TARGETS:
        main_metric = [m for b, m, _, _ in BENCHES if b == bench][0]
        a = data.get((bench, num_t, main_metric), {})
        b = data.get((bench, den_t, main_metric), {})
        rounds = sorted(r for r in a if r in b and b[r] > 0)
        if not rounds:
            continue
        ratios = [a[r] / b[r] for r in rounds]
        med = statistics.median(ratios)
        checks.append("| %s | %s ÷ %s | %s | **%.2f** | ≥ %.1f | %s |" % (
            bench, num_t, den_t, " ".join("%.2f" % x for x in ratios), med, minimum,
            "yes" if med >= minimum else "no"))
    for base in ("alone", "light"):
        a, b = hv["heavy_p99_ms"], hv["%s_p99_ms" % base]
        rounds = sorted(r for r in a if r in b and b[r] > 0)
        if rounds:
            ratios = [a[r] / b[r] for r in rounds]
            med = statistics.median(ratios)
            checks.append("| heavy | p99 beside the heavy client ÷ p99 %s | %s | **%.2f** | ≤ 2.0 | %s |" % (
                "alone" if base == "alone" else "beside a light client",
                " ".join("%.2f" % x for x in ratios), med, "yes" if med <= 2.0 else "no"))
    if checks:
        out += ["## Targets (ratios from the same round, median over rounds)", "",
                "| benchmark | ratio | per round | median | target | met |",
                "|---|---|---|---|---|---|"] + checks + [""]
    print("\n".join(out))


if __name__ == "__main__":
    main()
