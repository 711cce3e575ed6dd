#!/usr/bin/env python3
"""Turns bench/run.sh's raw rows into bench/RESULTS.md.

Medians over the repeats, spread as min..max, ratios on median req/s, and issue 7's targets checked.
Parts of an existing RESULTS.md that others keep survive a rewrite: the notes between
<!-- notes:begin --> / <!-- notes:end --> (kept at the top), the BenchmarkDotNet section that bench/rules.sh
writes between <!-- rules:begin --> / <!-- rules:end -->, and any other <!-- NAME:begin --> / <!-- NAME:end -->
section (such as bench/cache.sh's), kept before the rules section.
"""
import argparse
import csv
import os
import re
import statistics

TARGET_NAMES = {
    "lb": "lb",
    "haproxy": "HAProxy (TLS in HAProxy)",
    "chain": "Apache TLS -> HAProxy (seed chain)",
    "nginx": "nginx",
}


def load_rows(path):
    with open(path) as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    for r in rows:
        for k in ("round", "conns", "seconds", "requests", "socket_errors", "non2xx", "rss_peak_kib", "hwm_kib", "cookie"):
            r[k] = int(float(r[k] or 0))
        for k in ("rps", "p50_ms", "p99_ms", "cpu_us_per_req", "foreign_cpu1_pct", "busy_cpu0_pct", "loadavg1"):
            r[k] = float(r.get(k) or 0)
        r["t_since_start_s"] = float(r["t_since_start_s"]) if r["t_since_start_s"] else None
    return rows


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def fmt_rps(x):
    return f"{x:,.0f}"


def fmt_ms(x):
    return f"{x:.2f}" if x < 10 else f"{x:.0f}" if x < 1000 else f"{x:,.0f}"


def preserved(path, name):
    if not os.path.exists(path):
        return None
    text = open(path).read()
    m = re.search(rf"<!-- {name}:begin -->.*?<!-- {name}:end -->", text, re.S)
    return m.group(0) if m else None


def main():
    ap = argparse.ArgumentParser()
    for a in ("raw", "checks", "startup", "versions", "out", "date", "quick", "repeat", "duration", "warmup",
              "cold-slices", "lb-env", "elapsed", "profile", "profile-dso", "wrk"):
        ap.add_argument("--" + a, default="")
    args = ap.parse_args()

    rows = load_rows(args.raw)
    warm = [r for r in rows if r["phase"] == "warm"]
    cold = [r for r in rows if r["phase"] == "cold"]
    warmup = [r for r in rows if r["phase"] == "warmup"]
    targets = [t for t in TARGET_NAMES if any(r["target"] == t for r in warm)]
    conns_list = sorted({r["conns"] for r in warm})

    def pts(target, scheme, cookie, conns):
        return [r for r in warm if r["target"] == target and r["scheme"] == scheme and r["cookie"] == cookie and r["conns"] == conns]

    def stat(target, scheme, cookie, conns):
        p = pts(target, scheme, cookie, conns)
        if not p:
            return None
        rps = [r["rps"] for r in p]
        return {
            "rps": med(rps), "min": min(rps), "max": max(rps), "n": len(p),
            "p50": med([r["p50_ms"] for r in p]), "p99": med([r["p99_ms"] for r in p]),
            "cpu": med([r["cpu_us_per_req"] for r in p]), "rss": max(r["rss_peak_kib"] for r in p) / 1024,
            "hwm": max(r["hwm_kib"] for r in p) / 1024,
            # Round 1 runs every 64-connection point before any 1,000-connection point; later rounds inherit the
            # larger heap (a .NET GC does not hand memory back promptly), so the 64-connection target reads round 1.
            "rss_r1": max((r["rss_peak_kib"] for r in p if r["round"] == 1), default=0) / 1024,
            "err": sum(r["socket_errors"] for r in p), "non2xx": sum(r["non2xx"] for r in p),
            "foreign": med([r["foreign_cpu1_pct"] for r in p]), "busy0": med([r["busy_cpu0_pct"] for r in p]),
        }

    combos = [(s, c, n) for n in conns_list for s in ("https", "http") for c in (0, 1)]
    S = {(t, s, c, n): stat(t, s, c, n) for t in targets for (s, c, n) in combos}

    def ratio(a, b, key="rps"):
        # A point whose median req/s is 0 (nothing completed, e.g. all handshakes) has no data to compare.
        if not a or not b or not b[key] or not a[key] or not a["rps"] or not b["rps"]:
            return None
        return a[key] / b[key]

    # ---- cold ----
    warm_ref = S.get(("lb", "https", 0, 64))
    if warm_ref and not warm_ref["rps"]:
        warm_ref = None
    cold_by_slice = {}
    for rnd in sorted({r["round"] for r in cold}):
        for i, r in enumerate(sorted((x for x in cold if x["round"] == rnd), key=lambda x: x["t_since_start_s"]), 1):
            cold_by_slice.setdefault(i, []).append(r)
    slices = sorted(cold_by_slice)
    cold_rows = []
    for i in slices:
        rs = cold_by_slice[i]
        cold_rows.append((i, med([r["t_since_start_s"] for r in rs]), med([r["rps"] for r in rs]),
                          min(r["rps"] for r in rs), max(r["rps"] for r in rs), med([r["cpu_us_per_req"] for r in rs])))
    cold_total_req = sum(r["requests"] for r in cold)
    cold_total_s = sum(r["seconds"] for r in cold)
    cold_first10 = cold_total_req / cold_total_s if cold_total_s else 0
    reach80 = None
    if warm_ref:
        for (i, t, rps, lo, hi, cpu) in cold_rows:
            if rps >= 0.8 * warm_ref["rps"]:
                reach80 = t + 1
                break
    # Best cold slice that ends within 5 s of the process start.
    within5 = [c for c in cold_rows if c[1] + 1 <= 5.0]
    best5 = max((c[2] for c in within5), default=0)

    startup = []
    if args.startup and os.path.exists(args.startup):
        with open(args.startup) as f:
            startup = [int(r["ms_to_first_response"]) for r in csv.DictReader(f, delimiter="\t")]

    # ---- targets ----
    goals = []

    missing = {"n": 0}

    def worst(pairs, better_high=True):
        pairs = list(pairs)
        vals = [(v, label) for v, label in pairs if v is not None]
        missing["n"] = len(pairs) - len(vals)
        if not vals:
            return None, ""
        v, l = (min(vals) if better_high else max(vals))
        if missing["n"]:
            l += f"; {missing['n']} point(s) without data"
        return v, l

    def verdict(ok):
        # A pass on incomplete data is not a pass.
        return None if (ok and missing["n"]) else ok

    def label(s, c, n):
        return f"{s}, {'cookie' if c else 'no cookie'}, {n} conns"

    def per_core(other, scheme):
        # lb's req/s per core over the other's = the other's CPU us/request over lb's.
        v, l = worst([(ratio(S[(other, s, c, n)], S[("lb", s, c, n)], "cpu"), label(s, c, n)) for (s, c, n) in combos if s == scheme])
        return f"; per core (1e6 / CPU us): worst {v:.2f}x ({l})" if v is not None else ""

    if "haproxy" in targets:
        v, l = worst([(ratio(S[("lb", s, c, n)], S[("haproxy", s, c, n)]), label(s, c, n)) for (s, c, n) in combos if s == "https"])
        goals.append(("HTTPS req/s >= 1.0x HAProxy terminating TLS", verdict(v is not None and v >= 1.0),
                      (f"worst {v:.2f}x ({l})" if v is not None else "n/a") + per_core("haproxy", "https")))
    if "chain" in targets:
        v, l = worst([(ratio(S[("lb", s, c, n)], S[("chain", s, c, n)]), label(s, c, n)) for (s, c, n) in combos if s == "https"])
        goals.append(("HTTPS req/s >= 5x the Apache->HAProxy chain", verdict(v is not None and v >= 5.0),
                      (f"worst {v:.2f}x ({l})" if v is not None else "n/a") + per_core("chain", "https")))
    if "haproxy" in targets:
        v, l = worst([(ratio(S[("lb", s, c, n)], S[("haproxy", s, c, n)], "cpu"), label(s, c, n)) for (s, c, n) in combos], better_high=False)
        goals.append(("CPU per request <= HAProxy's", verdict(v is not None and v <= 1.0), f"worst {v:.2f}x HAProxy's ({l})" if v is not None else "n/a"))
        v, l = worst([(ratio(S[("lb", s, c, n)], S[("haproxy", s, c, n)]), label(s, c, n)) for (s, c, n) in combos if s == "http"])
        goals.append(("Plain HTTP req/s >= 1.0x HAProxy (keep-alive)", verdict(v is not None and v >= 1.0),
                      (f"worst {v:.2f}x ({l})" if v is not None else "n/a") + per_core("haproxy", "http")))
        big = max(conns_list)
        if big >= 1000:
            v, l = worst([(ratio(S[("lb", s, c, big)], S[("haproxy", s, c, big)], "p99"), label(s, c, big)) for s in ("https", "http") for c in (0, 1)], better_high=False)
            goals.append((f"p99 at {big} conns <= 0.2x HAProxy's", verdict(v is not None and v <= 0.2), f"worst {v:.2f}x ({l})" if v is not None else "n/a"))
    for n, limit in ((1000, 128), (64, 64)):
        if n in conns_list:
            key = "rss_r1" if n == min(conns_list) and len(conns_list) > 1 else "rss"
            rss = max(S[("lb", s, c, n)][key] for s in ("https", "http") for c in (0, 1))
            note = " (round 1, before any larger point)" if key == "rss_r1" else ""
            goals.append((f"RSS at {n} conns <= {limit} MiB", rss <= limit, f"peak {rss:.0f} MiB{note}"))
    if warm_ref and cold_rows:
        goals.append(("Cold: >= 80% of warm within 5 s of start", best5 >= 0.8 * warm_ref["rps"],
                      f"best slice ending <= 5 s: {best5 / warm_ref['rps']:.0%} of warm; 80% reached after "
                      + (f"~{reach80:.0f} s" if reach80 else f"more than the {len(cold_rows)} cold seconds measured")))
    rules = preserved(args.out, "rules")
    m = re.search(r"<!-- routing: mean_ns=([0-9.]+) allocated_bytes=([0-9]+)(?: one_object_bytes=([0-9]+))? -->", rules or "")
    if m:
        ns, b = float(m.group(1)), int(m.group(2))
        # The decision's own Decision.Forward object; older markers lack it (then: one small object, <= 40 B).
        one = int(m.group(3)) if m.group(3) else 40
        goals.append(("Routing decision <= 500 ns, <= 1 allocation", ns <= 500 and b <= one,
                      f"{ns:.0f} ns, {b} B allocated per decision (its one Decision.Forward object is {one} B)"))
    else:
        goals.append(("Routing decision <= 500 ns, <= 1 allocation", None, "run bench/rules.sh"))

    # ---- write ----
    out = []
    w = out.append
    w("# lb benchmark results")
    w("")
    w(f"Generated by `bench/run.sh` ({'QUICK mode' if args.quick == '1' else 'full run'}) on {args.date}, "
      f"{int(args.elapsed) // 60} min {int(args.elapsed) % 60} s. Re-run: `sudo bench/run.sh` (full) or "
      "`sudo QUICK=1 bench/run.sh`; `bench/rules.sh` for the Rules micro-benchmarks.")
    w("")
    notes = preserved(args.out, "notes")
    w(notes or "<!-- notes:begin -->\n<!-- notes:end -->")
    w("")
    w("## Issue 7 targets")
    w("")
    w("| target | met | measured |")
    w("|---|---|---|")
    for name, ok, detail in goals:
        w(f"| {name} | {'yes' if ok else ('?' if ok is None else '**no**')} | {detail} |")
    w("")
    w("## Setup")
    w("")
    w(f"- Pinning: `wrk` ({args.wrk.split()[1] if args.wrk else ''}), the nginx backends and the harness on CPU 0; the proxy under test on CPU 1 "
      "(`taskset -c`). All four proxies stay up for the whole run; only the one under load works. Loopback only.")
    w(f"- Load: `{args.wrk}`; keep-alive; \"cookie\" = `Cookie: SRVID=app2_2` (a valid persistence cookie), "
      "\"no cookie\" = none (HAProxy and nginx then insert a Set-Cookie on every response).")
    w(f"- {args.repeat} rounds of {args.duration} s per point; in each round every point runs each target in turn, the order rotating "
      "per round. Figures are medians over the rounds; spread is min..max req/s.")
    w("- Backends: one nginx (Debian) with 9 `listen` ports (3 apps x 3 servers), `return 200` with a 1 KiB body.")
    w("- (a) lb: `lb run` on a three-apps config with `plain_http = \"proxy\"`, default persistence (`SRVID`). "
      f"Env: `{args.lb_env}` (TieredPGO left at its default, on).")
    w("- (b) HAProxy: the seed's haproxy.cfg translated to 2.6 (`path_beg` ACLs + `nbsrv` gates, `http-request replace-path`, "
      "`http-response replace-header` for Location and Set-Cookie, `cookie SRVID insert indirect nocache`, health checks "
      "every 10 s, `option forwardfor`, keep-alive instead of `option httpclose`), terminating TLS itself; `nbthread 1`.")
    w("- (c) chain: Apache 2.4 (mpm_event) with the seed's TLS vhost (`RewriteRule ... [P]`, `ProxyPassReverse` per app) in front of a "
      "second HAProxy with the same config on plain HTTP. As in the seed, `RewriteRule [P]` uses mod_proxy's default worker, "
      "so Apache opens a new connection to HAProxy per request. No access log (no proxy under test logs requests).")
    w("- (d) nginx: TLS reverse proxy, prefix locations with `rewrite ... break`, `proxy_redirect`, `proxy_cookie_path`, "
      "upstream keep-alive; the sticky cookie emulated with maps (open-source nginx has none).")
    w("- CPU us/request: utime+stime of the target's processes (all of Apache's and HAProxy's for the chain) from /proc/PID/stat "
      "before and after the point, divided by completed requests. RSS: the largest summed VmRSS sampled every 0.5 s during the point (over all rounds, so a 64-connection point "
      "of round 2 carries the heap grown at 1,000 connections in round 1); "
      "VmHWM (lifetime peak) in the last table.")
    allw = [r for r in rows if r["phase"] == "warm"]
    if allw:
        fs = sorted(r["foreign_cpu1_pct"] for r in allw)
        la = [r["loadavg1"] for r in rows]
        w(f"- Noise: \"other CPU1 %\" is CPU time that processes other than the target used on the proxy's CPU during a point "
          f"(other work on this shared machine), in % of wall time: median {med(fs):.0f}%, max {max(fs):.0f}% over the warm points; "
          f"1-min load average during the run {min(la):.1f}..{max(la):.1f}. \"CPU0 busy %\" near 100 means the load generator's "
          "core (wrk + backends) was saturated, so the point measures the client as much as the proxy.")
    vtext = open(args.versions).read()
    key = re.search(r"^certificate: (.*)$", vtext, re.M)
    key = key.group(1) if key else "RSA 2048 bit (this run predates the ECDSA default)"
    w(f"- TLS: one self-signed certificate made with openssl, {key}, "
      "for all TLS proxies (`TLS_KEY=rsa` for RSA-2048, else ECDSA P-256); wrk negotiates TLS 1.3. Every wrk run opens its connections anew, so each point includes "
      "its connections' handshakes (1,000 of them at 1,000 connections).")
    w("")
    w("- \"req/s per core\" = 1,000,000 / CPU us per request: what the target would serve with a whole core to itself. "
      "It depends far less than req/s on what else the machine runs, so on a shared machine compare it alongside req/s.")
    w("")
    w("Versions:")
    w("")
    w("```")
    w(open(args.versions).read().rstrip())
    w("```")
    w("")
    w("## Sanity checks (before loading)")
    w("")
    with open(args.checks) as f:
        cr = list(csv.reader(f, delimiter="\t"))
    w("| " + " | ".join(cr[0]) + " |")
    w("|" + "---|" * len(cr[0]))
    for r in cr[1:]:
        w("| " + " | ".join(x.replace("|", "\\|") for x in r) + " |")
    w("")
    w("## Warm results (medians)")
    w("")
    w("lb is measured after the cold slices and a warm-up under load (see below). Ratios are lb's median req/s over the other's.")
    w("")
    for n in conns_list:
        for s in ("https", "http"):
            for c in (0, 1):
                w(f"### {s.upper()}, {'with' if c else 'without'} persistence cookie, {n} connections")
                w("")
                w("| target | req/s | spread | p50 ms | p99 ms | CPU us/req | req/s per core | RSS MiB | errors | lb ratio | other CPU1 % | CPU0 busy % |")
                w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
                lb = S.get(("lb", s, c, n))
                for t in targets:
                    x = S.get((t, s, c, n))
                    if not x:
                        continue
                    rr = "" if t == "lb" else (f"{ratio(lb, x):.2f}x" if ratio(lb, x) else "")
                    errs = x["err"] + x["non2xx"]
                    w(f"| {TARGET_NAMES[t]} | {fmt_rps(x['rps'])} | {fmt_rps(x['min'])}..{fmt_rps(x['max'])} | {fmt_ms(x['p50'])} | "
                      f"{fmt_ms(x['p99'])} | {x['cpu']:.1f} | {fmt_rps(1e6 / x['cpu']) if x['cpu'] else ''} | {x['rss']:.0f} | {errs} | {rr} | {x['foreign']:.0f} | {x['busy0']:.0f} |")
                w("")
    w("### Summary: lb / other (median req/s; CPU and p99 as lb / other, lower is better for lb)")
    w("")
    w("| point | lb/HAProxy req/s | lb/chain req/s | lb/nginx req/s | lb/HAProxy CPU | lb/HAProxy p99 |")
    w("|---|---:|---:|---:|---:|---:|")
    for (s, c, n) in combos:
        lb = S.get(("lb", s, c, n))
        cells = []
        for t, k in (("haproxy", "rps"), ("chain", "rps"), ("nginx", "rps"), ("haproxy", "cpu"), ("haproxy", "p99")):
            v = ratio(lb, S.get((t, s, c, n)), k) if (t, s, c, n) in S else None
            cells.append(f"{v:.2f}" if v is not None else "")
        w(f"| {label(s, c, n)} | " + " | ".join(cells) + " |")
    w("")
    w("## lb cold start")
    w("")
    if startup:
        w(f"Process start to first HTTPS response: {', '.join(str(s) for s in startup)} ms (median {med(startup):.0f} ms).")
        w("")
    w(f"Each of {args.repeat} fresh lb processes loaded from its first response with `wrk -c64` HTTPS, no cookie, "
      f"in {args.cold_slices} back-to-back 1-s runs (each run reconnects, so every slice pays 64 TLS handshakes). "
      f"Warm reference: {fmt_rps(warm_ref['rps']) if warm_ref else '?'} req/s (same point, warm rounds).")
    w("")
    w("| slice | s since start (median) | req/s (median) | min..max | % of warm | CPU us/req |")
    w("|---:|---:|---:|---:|---:|---:|")
    for (i, t, rps, lo, hi, cpu) in cold_rows:
        pct = f"{rps / warm_ref['rps']:.0%}" if warm_ref else ""
        w(f"| {i} | {t:.1f} | {fmt_rps(rps)} | {fmt_rps(lo)}..{fmt_rps(hi)} | {pct} | {cpu:.1f} |")
    w("")
    w(f"First {args.cold_slices} s after start, all repeats: {fmt_rps(cold_first10)} req/s "
      + (f"({cold_first10 / warm_ref['rps']:.0%} of warm)." if warm_ref else "."))
    w("")
    if warmup:
        w(f"Warm-up of the last cold process: {args.warmup} s of 64-connection load in 5-s runs, alternating HTTPS and HTTP"
          + (" (shorter than the 60 s issue 7 asks; the warm figures may still be rising)." if int(args.warmup or 0) < 60 else "."))
        w("")
        w("| s since start | scheme | req/s | CPU us/req |")
        w("|---:|---|---:|---:|")
        for r in warmup:
            w(f"| {r['t_since_start_s']:.0f} | {r['scheme']} | {fmt_rps(r['rps'])} | {r['cpu_us_per_req']:.1f} |")
        w("")
    w("## Memory (lifetime VmHWM at the end of each target's last point, summed over its processes)")
    w("")
    w("| target | VmHWM MiB |")
    w("|---|---:|")
    for t in targets:
        w(f"| {TARGET_NAMES[t]} | {max(r['hwm_kib'] for r in warm if r['target'] == t) / 1024:.0f} |")
    w("")
    if args.profile and os.path.exists(args.profile):
        w("## Profile of lb (perf, cpu-clock, warm, HTTPS 64 conns, self time)")
        w("")
        if args.profile_dso and os.path.exists(args.profile_dso):
            w("By module:")
            w("")
            w("```")
            w(open(args.profile_dso).read().rstrip())
            w("```")
            w("")
        w("Top symbols:")
        w("")
        w("```")
        w(open(args.profile).read().rstrip())
        w("```")
        w("")
    # Sections other scripts keep in this file (e.g. bench/cache.sh's <!-- cache:begin -->) survive a rewrite.
    if os.path.exists(args.out):
        existing = open(args.out).read()
        for name in re.findall(r"<!-- ([a-z0-9_-]+):begin -->", existing):
            if name not in ("notes", "rules"):
                w(preserved(args.out, name))
                w("")
    w(rules or "<!-- rules:begin -->\n## Rules hot path (BenchmarkDotNet)\n\nNot run yet: `bench/rules.sh`.\n<!-- rules:end -->")
    w("")
    with open(args.out, "w") as f:
        f.write("\n".join(out))


if __name__ == "__main__":
    main()
