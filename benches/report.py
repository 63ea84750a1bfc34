#!/usr/bin/env python3
"""Turns one benches/run.sh output directory into the Markdown tables of BENCHMARKS.md.

  report.py OUTDIR     reads OUTDIR/{env.txt,results.tsv,scale.tsv,scopes-scale.tsv,granted-scopes.jsonl,
                       propagation.json,writes.tsv,otlp-*.json}; prints Markdown

Every figure is the median over the repetitions (req/s also shows min-max). Latencies are h2load's
per-request times (nearest-rank percentiles of the --log-file, as ../shared/bench/summarize.py).
"""
import csv
import json
import statistics
import sys
from collections import OrderedDict
from pathlib import Path

# Targets of issue 4's Performance section; issue 12 raised Check at 1 x 64 from 0.85 x the floor
# to 0.9 x, pinned and unpinned.
FLOOR_RATIO = 0.9
P99_MS = 1.5
# Issue 12: Check's p99 within this factor of the floor's p99 in the same run.
P99_FLOOR_FACTOR = 1.25
SCALE_WITHIN = 0.10
BYTES_PER_ASSIGNMENT = 150
COLD_START_S = 3.0
PROPAGATION_P99_MS = 50.0
# Issue 13: Check on a resource 4 pairs deep (grants at 3 levels of it) against tenant-wide Check;
# Check through 4 levels of inclusion: no measurable cost, i.e. its median req/s at or above the
# slowest repetition of the tenant-wide Check in the same run (within its run-to-run spread).
SCOPED_RATIO = 0.9
SCOPES_BYTES_PER_ASSIGNMENT = 160
LIST_SCOPES_P99_MS = 5.0


def med(rows, key):
    return statistics.median(float(r[key]) for r in rows)


def load_results(out):
    path = out / "results.tsv"
    groups = OrderedDict()
    if path.exists():
        with open(path) as f:
            for row in csv.DictReader(f, delimiter="\t"):
                groups.setdefault((row["section"], row["mode"], row["config"], row["target"]), []).append(row)
    return groups


DISTURBED = 0.35  # cores busy with neither the server nor h2load


def other(rows):
    """CPU the rest of the machine used during the runs (median; max marked when a run was disturbed)."""
    vals = [float(r["machine_busy"]) - float(r["server_cpu"]) - float(r["h2load_cpu"]) for r in rows]
    cell = f"{statistics.median(vals):.2f}"
    if max(vals) > DISTURBED:
        cell += f" (max {max(vals):.2f}!)"
    return cell


def streams(config):
    c, m = config[1:].split("m")
    return f"{c} x {m}"


def rps_cell(rows):
    rps = [float(r["rps"]) for r in rows]
    return f"{statistics.median(rps):,.0f} ({min(rps):,.0f}-{max(rps):,.0f})"


def check_table(groups, verdicts):
    rows = [(k, v) for k, v in groups.items() if k[0] == "check"]
    if not rows:
        return
    print("### Check: Warden beside the tonic floor and Cerbos\n")
    print("| cpu | conns x streams | target | req/s median (min-max) | p50 ms | p99 ms | p99.9 ms | server CPU (cores) | µs CPU/req | h2load CPU | other CPU | vs floor |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    floor = {(k[1], k[2]): med(v, "rps") for k, v in rows if k[3] == "tonic-floor"}
    bearer = {(k[1], k[2]): med(v, "rps") for k, v in rows if k[3] == "tonic-floor+bearer"}
    for (sec, mode, config, target), v in rows:
        rps = med(v, "rps")
        cpu = med(v, "server_cpu")
        ratio = rps / floor[(mode, config)] if (mode, config) in floor else None
        print(f"| {mode} | {streams(config)} | {target} | {rps_cell(v)} | {med(v, 'p50_us') / 1000:.3f} | "
              f"{med(v, 'p99_us') / 1000:.3f} | {med(v, 'p999_us') / 1000:.3f} | {cpu:.2f} | {cpu / rps * 1e6:.1f} | "
              f"{med(v, 'h2load_cpu'):.2f} | {other(v)} | {f'{ratio:.2f}' if ratio is not None else '-'} |")
        if target == "warden" and config == "c1m64":
            extra = ""
            if (mode, config) in bearer:
                extra = f"; {rps / bearer[(mode, config)]:.2f} x the floor sent the same bearer header"
            if ratio is not None:  # (no floor when CHECK_PEERS leaves it out)
                verdicts.append((f"Check throughput, 1 x 64 streams, {mode}", f">= {FLOOR_RATIO} x floor",
                                 f"{ratio:.2f} x floor ({rps:,.0f} vs {floor[(mode, config)]:,.0f} req/s{extra})", ratio >= FLOOR_RATIO))
            p99 = med(v, "p99_us") / 1000
            verdicts.append((f"Check p99, 1 x 64 streams, {mode}", f"< {P99_MS} ms", f"{p99:.3f} ms", p99 < P99_MS))
    print()


# The targets of issue 12's summary, beside the floor: (results.tsv target, label).
VS_FLOOR = (("warden", "Check"), ("warden-getrole", "GetRole"), ("warden-getrole-pg", "GetRole, PostgreSQL"),
            ("warden-otlp1", "Check, OTLP 1 %"))
# Issues 12 and 17: an admin read at >= 0.6 x the floor, on SQLite and on PostgreSQL; issue 12:
# Check with OTLP export at a 1 % sampler >= 0.85 x.
VS_FLOOR_TARGETS = {"warden-getrole": 0.6, "warden-getrole-pg": 0.6, "warden-otlp1": 0.85}


def vs_floor_table(groups, verdicts):
    """Per mode and load config: Check, GetRole and Check with OTLP export at a 1 % sampler as
    medians over the repetitions and ratios to the floor's median in the same run; Check's p99
    beside the floor's p99."""
    cells = OrderedDict()
    for (sec, mode, config, target), v in groups.items():
        if sec == "check":
            cells.setdefault((mode, config), {})[target] = v
    cells = OrderedDict((k, t) for k, t in cells.items() if "tonic-floor" in t and any(x in t for x, _ in VS_FLOOR))
    if not cells:
        return
    print("### Against the floor: Check, GetRole, Check with OTLP export (1 % sampled)\n")
    print("req/s: median over the repetitions, x the floor's median in the same run; p99: median over the repetitions.\n")
    print("| cpu | conns x streams | floor req/s | " + " | ".join(f"{label} req/s (x floor)" for _, label in VS_FLOOR)
          + f" | Check p99 ms | floor p99 ms | p99 / floor p99 (target <= {P99_FLOOR_FACTOR}) |")
    print("|---|---|---|" + "---|" * len(VS_FLOOR) + "---|---|---|")
    for (mode, config), t in cells.items():
        floor = med(t["tonic-floor"], "rps")
        row = [mode, streams(config), f"{floor:,.0f}"]
        for target, label in VS_FLOOR:
            if target in t:
                rps = med(t[target], "rps")
                row.append(f"{rps:,.0f} ({rps / floor:.2f})")
                if target != "warden" and config == "c1m64":
                    want = VS_FLOOR_TARGETS.get(target)
                    verdicts.append((f"{label} throughput, 1 x 64 streams, {mode}",
                                     f">= {want} x floor" if want else "(for the record)",
                                     f"{rps / floor:.2f} x floor ({rps:,.0f} vs {floor:,.0f} req/s)",
                                     None if want is None else rps / floor >= want))
            else:
                row.append("-")
        if "warden" in t:
            p99, fp99 = med(t["warden"], "p99_us") / 1000, med(t["tonic-floor"], "p99_us") / 1000
            row += [f"{p99:.3f}", f"{fp99:.3f}", f"{p99 / fp99:.2f}"]
            if config == "c1m64":
                verdicts.append((f"Check p99 vs floor p99, 1 x 64 streams, {mode}", f"<= {P99_FLOOR_FACTOR} x floor p99",
                                 f"{p99 / fp99:.2f} x ({p99:.3f} vs {fp99:.3f} ms)", p99 / fp99 <= P99_FLOOR_FACTOR))
        else:
            row += ["-", "-", "-"]
        print("| " + " | ".join(row) + " |")
    print()


def otlp_table(out):
    """What the local OTLP receiver got from the server that exported at a 1 % sampler."""
    files = sorted(out.glob("otlp-*.json"), key=lambda p: p.stat().st_mtime)
    rows = [json.loads(p.read_text()) for p in files if not p.name.startswith("otlp-sink-")]
    if not rows:
        return
    print("### OTLP export: what the receiver got (whole mode: verification, warm-ups and runs)\n")
    print("| cpu | RPCs finished by the server | spans received | spans / RPC | sampler ratio | exports | bytes | receiver CPU s | span names |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        rpcs = r.get("rpcs", -1)
        frac = f"{r['spans'] / rpcs:.4f}" if rpcs > 0 else "-"
        names = ", ".join(f"{n or '?'}: {c:,}" for n, c in sorted(r.get("span_names", {}).items(), key=lambda x: -x[1])[:4])
        print(f"| {r['mode']} | {rpcs:,} | {r['spans']:,} | {frac} | {r.get('sampler_arg', '-')} | {r['exports']:,} | "
              f"{r['bytes']:,} | {r['cpu_s']:.2f} | {names or '-'} |")
    print()


def batch_table(groups, verdicts):
    rows = [(k, v) for k, v in groups.items() if k[0] == "batch"]
    if not rows:
        return
    print("### BatchCheck (100 items per request)\n")
    print("| cpu | conns x streams | batches/s median (min-max) | decisions/s | p50 ms | p99 ms | server CPU (cores) | µs CPU/decision | other CPU |")
    print("|---|---|---|---|---|---|---|---|---|")
    items = int(__import__("os").environ.get("BATCH_ITEMS", "100"))
    for (sec, mode, config, target), v in rows:
        rps = med(v, "rps")
        cpu = med(v, "server_cpu")
        print(f"| {mode} | {streams(config)} | {rps_cell(v)} | {rps * items:,.0f} | {med(v, 'p50_us') / 1000:.3f} | "
              f"{med(v, 'p99_us') / 1000:.3f} | {cpu:.2f} | {cpu / (rps * items) * 1e6:.2f} | {other(v)} |")
        if config == "c1m64":
            verdicts.append((f"BatchCheck decisions/s, 1 x 64 streams, {mode}", "(for the record)", f"{rps * items:,.0f}", None))
    print()


def tls_table(groups, verdicts):
    """Issue 14: Check over TLS beside plaintext Check, alternated, same seeded SQLite file."""
    cells = OrderedDict()
    for (sec, mode, config, target), v in groups.items():
        if sec == "check" and target in ("warden", "warden-tls"):
            cells.setdefault((mode, config), {})[target] = v
    cells = OrderedDict((k, t) for k, t in cells.items() if "warden" in t and "warden-tls" in t)
    if not cells:
        return
    print("### Issue 14: Check over TLS beside plaintext\n")
    print("A second `warden serve` on the same SQLite file with WARDEN_TLS_CERT_FILE/KEY_FILE (P-256 certificate), "
          "h2load over TLS (h2 by ALPN), alternated with the plaintext server.\n")
    print("| cpu | conns x streams | plaintext req/s | TLS req/s (x plaintext) | µs CPU/req plaintext / TLS | p99 ms plaintext / TLS | other CPU (TLS) |")
    print("|---|---|---|---|---|---|---|")
    for (mode, config), t in cells.items():
        plain, tls = med(t["warden"], "rps"), med(t["warden-tls"], "rps")
        cpu_p = med(t["warden"], "server_cpu") / plain * 1e6
        cpu_t = med(t["warden-tls"], "server_cpu") / tls * 1e6
        print(f"| {mode} | {streams(config)} | {plain:,.0f} | {tls:,.0f} ({tls / plain:.2f}) | {cpu_p:.1f} / {cpu_t:.1f} | "
              f"{med(t['warden'], 'p99_us') / 1000:.3f} / {med(t['warden-tls'], 'p99_us') / 1000:.3f} | {other(t['warden-tls'])} |")
        if config == "c1m64":
            verdicts.append((f"Check over TLS vs plaintext, 1 x 64 streams, {mode}", ">= 0.75 x plaintext",
                             f"{tls / plain:.2f} x ({tls:,.0f} vs {plain:,.0f} req/s)", tls / plain >= 0.75))
    print()


def http_table(groups):
    """Issue 15: Check as HTTP/JSON beside gRPC, same server, alternated (for the record)."""
    cells = OrderedDict()
    for (sec, mode, config, target), v in groups.items():
        if sec == "check" and target in ("warden", "warden-http"):
            cells.setdefault((mode, config), {})[target] = v
    cells = OrderedDict((k, t) for k, t in cells.items() if "warden" in t and "warden-http" in t)
    if not cells:
        return
    print("### Issue 15: Check as HTTP/JSON beside gRPC\n")
    print("POST /v1/check with a JSON body on the gRPC port (h2c), transcoded to the same Check, "
          "alternated with gRPC Check on the same server.\n")
    print("| cpu | conns x streams | gRPC req/s | HTTP/JSON req/s (x gRPC) | µs CPU/req gRPC / HTTP | p99 ms gRPC / HTTP |")
    print("|---|---|---|---|---|---|")
    for (mode, config), t in cells.items():
        grpc, http = med(t["warden"], "rps"), med(t["warden-http"], "rps")
        cpu_g = med(t["warden"], "server_cpu") / grpc * 1e6
        cpu_h = med(t["warden-http"], "server_cpu") / http * 1e6
        print(f"| {mode} | {streams(config)} | {grpc:,.0f} | {http:,.0f} ({http / grpc:.2f}) | {cpu_g:.1f} / {cpu_h:.1f} | "
              f"{med(t['warden'], 'p99_us') / 1000:.3f} / {med(t['warden-http'], 'p99_us') / 1000:.3f} |")
    print()


def scoped_table(groups, verdicts):
    """Issue 13: Check on a resource and through a composite role, beside tenant-wide Check."""
    cells = OrderedDict()
    for (sec, mode, config, target), v in groups.items():
        if sec == "check" and target in ("warden", "warden-scoped", "warden-composite"):
            cells.setdefault((mode, config), {})[target] = v
    cells = OrderedDict((k, t) for k, t in cells.items()
                        if "warden" in t and ("warden-scoped" in t or "warden-composite" in t))
    if not cells:
        return
    print("### Issue 13: Check on a resource 4 pairs deep, and through 4 levels of role inclusion\n")
    print("Alternated with tenant-wide Check on the same server. `warden-scoped`: user:carol, document.read on "
          "`a/1/b/2/c/3/d/4`, holding reader at `a/1`, `a/1/b/2`, `a/1/b/2/c/3`; `warden-composite`: user:dave, "
          "report.read, granted only by composite.l4 four inclusions below the role dave holds.\n")
    print("| cpu | conns x streams | target | req/s median (min-max) | x tenant-wide | p50 ms | p99 ms | µs CPU/req (x tenant-wide) | other CPU |")
    print("|---|---|---|---|---|---|---|---|---|")
    for (mode, config), t in cells.items():
        base = med(t["warden"], "rps")
        base_min = min(float(r["rps"]) for r in t["warden"])
        base_cpu = med(t["warden"], "server_cpu") / base
        for target in ("warden", "warden-scoped", "warden-composite"):
            if target not in t:
                continue
            v = t[target]
            rps, cpu = med(v, "rps"), med(v, "server_cpu")
            print(f"| {mode} | {streams(config)} | {target} | {rps_cell(v)} | {rps / base:.3f} | "
                  f"{med(v, 'p50_us') / 1000:.3f} | {med(v, 'p99_us') / 1000:.3f} | {cpu / rps * 1e6:.1f} "
                  f"({cpu / rps / base_cpu:.2f}) | {other(v)} |")
            if target == "warden-scoped":
                verdicts.append((f"Check on a resource 4 pairs deep (grants at 3 levels), {streams(config)}, {mode}",
                                 f">= {SCOPED_RATIO} x tenant-wide Check",
                                 f"{rps / base:.3f} x ({rps:,.0f} vs {base:,.0f} req/s)", rps / base >= SCOPED_RATIO))
            if target == "warden-composite":
                verdicts.append((f"Check through 4 levels of inclusion, {streams(config)}, {mode}",
                                 "no measurable cost (median >= slowest tenant-wide rep)",
                                 f"{rps / base:.3f} x ({rps:,.0f} vs {base:,.0f} req/s; tenant-wide min {base_min:,.0f})",
                                 rps >= base_min))
    print()


def scale_tables(out, groups, verdicts, section="scale", title="Scale", prefix="warden_bench",
                 bytes_target=BYTES_PER_ASSIGNMENT):
    rows = [(k, v) for k, v in groups.items() if k[0] == section]
    path = out / f"{section}.tsv"
    events = []
    if path.exists():
        with open(path) as f:
            events = list(csv.DictReader(f, delimiter="\t"))
    if not rows and not events:
        return
    if rows:
        print(f"### {title}: Check throughput, small against large index\n")
        print("| cpu | conns x streams | server | req/s median (min-max) | p50 ms | p99 ms | server CPU | µs CPU/req | other CPU | large / small |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        by_mode = OrderedDict()
        for (sec, mode, config, target), v in rows:
            by_mode.setdefault((mode, config), []).append((target, v))
        for (mode, config), targets in by_mode.items():
            small = med(targets[0][1], "rps")
            for target, v in targets:
                rps = med(v, "rps")
                cpu = med(v, "server_cpu")
                print(f"| {mode} | {streams(config)} | {target} | {rps_cell(v)} | {med(v, 'p50_us') / 1000:.3f} | "
                      f"{med(v, 'p99_us') / 1000:.3f} | {cpu:.2f} | {cpu / rps * 1e6:.1f} | {other(v)} | {rps / small:.3f} |")
            if len(targets) == 2:
                ratio = med(targets[1][1], "rps") / small
                verdicts.append((f"{title}: {targets[1][0]} vs {targets[0][0]}, {streams(config)}, {mode}",
                                 f"within {SCALE_WITHIN:.0%}", f"{ratio:.3f} x", abs(1 - ratio) <= SCALE_WITHIN))
        print()
    if not events:
        return
    dbs = OrderedDict()
    for e in events:
        d = dbs.setdefault(e["db"], {"tenants": int(e["tenants"]), "assignments": int(e["assignments"])})
        d.setdefault(e["event"], []).append(e["value"])
    print(f"### {title}: memory (VmRSS of the idle server 3 s after SERVING)\n")
    print("| database | tenants | assignments | VmRSS MiB | VmHWM (peak) MiB | VmRSS after malloc_trim(0) MiB |")
    print("|---|---|---|---|---|---|")
    mem = {}
    for db, d in dbs.items():
        if "rss_kib" not in d:
            continue
        rss, hwm = (int(x) for x in d["rss_kib"][0].split())
        trim = int(d["rss_after_malloc_trim_kib"][0]) if "rss_after_malloc_trim_kib" in d else None
        mem[db] = (d["assignments"], rss, hwm, trim)
        print(f"| {db} | {d['tenants']:,} | {d['assignments']:,} | {rss / 1024:.1f} | {hwm / 1024:.1f} | "
              f"{f'{trim / 1024:.1f}' if trim else '-'} |")
    print()
    large = mem.get(f"{prefix}_large")
    if large:
        print("Bytes per assignment (difference of VmRSS divided by the difference of assignments):\n")
        print("| baseline | assignments added | bytes/assignment (VmRSS) | bytes/assignment (after malloc_trim) |")
        print("|---|---|---|---|")
        cat = f"{prefix}_catalogue"
        for base, what in ((cat, f"the same {dbs[cat]['tenants']:,} tenants' permissions and roles, no assignments" if cat in dbs else ""),
                           (f"{prefix}_small", "small database (the tenants' catalogues count too)")):
            if base not in mem:
                continue
            b = mem[base]
            n = large[0] - b[0]
            per = (large[1] - b[1]) * 1024 / n
            per_trim = (large[3] - b[3]) * 1024 / n if large[3] and b[3] else None
            print(f"| {base}: {what} | {n:,} | {per:.0f} | {f'{per_trim:.0f}' if per_trim else '-'} |")
            if base == cat:
                verdicts.append((f"{title}: index bytes per assignment (VmRSS, {large[0]:,} vs {b[0]:,} assignments)",
                                 f"<= {bytes_target} B", f"{per:.0f} B"
                                 + (f" ({per_trim:.0f} B after malloc_trim)" if per_trim else ""),
                                 per <= bytes_target))
        print()
    print(f"### {title}: start-up to gRPC health SERVING\n")
    print("| database | tenants | assignments | start | port open s | SERVING s |")
    print("|---|---|---|---|---|---|")
    for db, d in dbs.items():
        for v in d.get("first_start_serving_s", []):
            print(f"| {db} | {d['tenants']:,} | {d['assignments']:,} | first (bootstraps admin) | - | {float(v):.3f} |")
        for i, v in enumerate(d.get("cold_start", []), 1):
            port, serving = v.split()
            print(f"| {db} | {d['tenants']:,} | {d['assignments']:,} | cold start {i} | {float(port):.3f} | {float(serving):.3f} |")
    print()
    cold = [float(v.split()[1]) for d in dbs.values() for v in d.get("cold_start", [])]
    n_cold = next((d["assignments"] for d in dbs.values() if d.get("cold_start")), 0)
    if cold:
        verdicts.append((f"{title}: cold start, {n_cold:,} assignments on PostgreSQL (median; max)", f"< {COLD_START_S} s",
                         f"{statistics.median(cold):.2f} s; {max(cold):.2f} s", max(cold) < COLD_START_S))


GS_CASES = OrderedDict((
    ("check", "Check, tenant-wide (the client and the RPC by themselves)"),
    ("first", "ListGrantedScopes, first page"),
    ("all", "ListGrantedScopes, every page of a walk (one call each)"),
    ("under", "ListGrantedScopes under departments/d42"),
))


def granted_scopes_table(out, verdicts):
    """Issue 13: ListGrantedScopes latency for an identity holding many scoped grants."""
    path = out / "granted-scopes.jsonl"
    if not path.exists():
        return
    runs = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    if not runs:
        return
    seed = out / "granted-scopes-seed.json"
    seeded = json.loads(seed.read_text()) if seed.exists() else {}
    by_case = OrderedDict((c, [r for r in runs if r["case"] == c]) for c in GS_CASES)
    grants = runs[0]["grants"]
    print(f"### Issue 13: ListGrantedScopes for an identity holding {grants:,} scoped grants\n")
    print("Sequential calls from one grpcio client on loopback (both cores shared), each timed from the call to its "
          f"answer; page_size {runs[0]['page_size']:,}"
          + (f"; seeded through the API in {seeded['seed_s']} s" if seeded else "")
          + ". Percentiles of each repetition; the median over the repetitions, and the range of p99.\n")
    print("| case | items per call | calls per rep | reps | p50 ms | p90 ms | p99 ms (range) | p99.9 ms | max ms | server CPU ms/call |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for case, rs in by_case.items():
        if not rs:
            continue
        p99s = [r["p99_ms"] for r in rs]
        items = rs[0]["items_per_unit"]
        if case == "all":
            items = f"{items:,} in {rs[0]['pages_per_walk']} pages"
        print(f"| {GS_CASES[case]} | {items if isinstance(items, str) else f'{items:,}'} | {rs[0]['calls']:,} | {len(rs)} | "
              f"{statistics.median(r['p50_ms'] for r in rs):.3f} | {statistics.median(r['p90_ms'] for r in rs):.3f} | "
              f"{statistics.median(p99s):.3f} ({min(p99s):.3f}-{max(p99s):.3f}) | "
              f"{statistics.median(r['p999_ms'] for r in rs):.3f} | {max(r['max_ms'] for r in rs):.3f} | "
              + (f"{statistics.median(r['server_cpu_ms_per_call'] for r in rs):.3f} |" if all('server_cpu_ms_per_call' in r for r in rs) else "- |"))
    print()
    walks = by_case.get("all") or []
    if walks:
        print(f"A whole walk ({walks[0]['pages_per_walk']} calls): p50 "
              f"{statistics.median(r['walk_p50_ms'] for r in walks):.3f} ms, p99 "
              f"{statistics.median(r['walk_p99_ms'] for r in walks):.3f} ms (medians over the repetitions).\n")
    for case in ("first", "all", "under"):
        rs = by_case.get(case) or []
        if rs:
            p99 = statistics.median(r["p99_ms"] for r in rs)
            verdicts.append((f"{GS_CASES[case]}, {grants:,} grants, p99 per call", f"< {LIST_SCOPES_P99_MS:.0f} ms",
                             f"{p99:.3f} ms (reps {min(r['p99_ms'] for r in rs):.3f}-{max(r['p99_ms'] for r in rs):.3f})",
                             p99 < LIST_SCOPES_P99_MS))


def propagation_table(out, verdicts):
    path = out / "propagation.json"
    if not path.exists():
        return
    p = json.loads(path.read_text())
    r = p["revoke_to_deny_ms"]
    print("### Propagation: revoke on A, Check on B denies\n")
    print("| rounds | p50 ms | p90 ms | p99 ms | max ms | denied on B's first poll | timeouts | assign -> allowed on B p50 / p99 ms | RevokeAssignment RPC p50 / p99 ms |")
    print("|---|---|---|---|---|---|---|---|---|")
    a = p["assign_to_allow_ms"]
    rv = p["revoke_rpc_ms"]
    print(f"| {p['rounds']:,} | {r['p50']:.2f} | {r['p90']:.2f} | {r['p99']:.2f} | {r['max']:.2f} | "
          f"{p['rounds_denied_on_first_poll']:,} of {p['rounds']:,} | {p['timeouts']} | {a['p50']:.2f} / {a['p99']:.2f} | "
          f"{rv['p50']:.2f} / {rv['p99']:.2f} |")
    print()
    verdicts.append(("Propagation revoke -> deny on another replica, p99", f"< {PROPAGATION_P99_MS:.0f} ms",
                     f"{r['p99']:.2f} ms (p50 {r['p50']:.2f} ms, {p['rounds']:,} rounds)",
                     r["p99"] < PROPAGATION_P99_MS and p["timeouts"] == 0))


def local_table(out, verdicts):
    """The client's local decision cache: one row per run of local_check_bench."""
    path = out / "local.txt"
    if not path.exists():
        return
    rows = []
    for line in path.read_text().splitlines():
        if line.startswith("local check latency ns:"):
            f = line.split(":", 1)[1].split()
            lat = dict(zip(f[0::2], f[1::2]))
            rows.append({"p50": int(lat["p50"]), "p99": int(lat["p99"]), "p99.9": int(lat["p99.9"])})
        elif line.startswith("local check:") and rows is not None:
            assignments = int(line.split("assignments", 1)[1].split(",")[0])
            rows.append({"assignments": assignments})
        elif line.startswith("local cache:"):
            per = float(line.rsplit(",", 1)[1].split()[0])
            rows[-1]["per"] = per
            rows[-1]["load"] = line.split("load", 1)[1].split(",")[0].strip()
    runs = []
    for row in rows:
        if "assignments" in row:
            runs.append(dict(row))
        elif runs:
            runs[-1].update(row)
    if not runs:
        return
    print("### Local decision cache (Rust client)\n")
    print("| assignments | p50 ns | p99 ns | p99.9 ns | load | heap bytes per assignment |")
    print("|---|---|---|---|---|---|")
    for r in runs:
        print(f"| {r['assignments']:,} | {r.get('p50')} | {r.get('p99')} | {r.get('p99.9')} | {r.get('load')} | {r.get('per')} |")
    print()
    p99 = statistics.median(r["p99"] for r in runs if "p99" in r)
    verdicts.append(("local Check p99 (median of runs)", "< 2,000 ns", f"{p99:.0f} ns", p99 < 2000))


def main(argv):
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    out = Path(argv[1])
    print("## Environment\n")
    print("```")
    print((out / "env.txt").read_text().rstrip())
    print("```\n")
    groups = load_results(out)
    verdicts = []
    check_table(groups, verdicts)
    vs_floor_table(groups, verdicts)
    scoped_table(groups, verdicts)
    tls_table(groups, verdicts)
    http_table(groups)
    otlp_table(out)
    batch_table(groups, verdicts)
    scale_tables(out, groups, verdicts)
    scale_tables(out, groups, verdicts, section="scopes-scale", title="Scopes scale (issue 13)",
                 prefix="warden_bench_scopes", bytes_target=SCOPES_BYTES_PER_ASSIGNMENT)
    granted_scopes_table(out, verdicts)
    propagation_table(out, verdicts)
    writes_table(out, verdicts)
    local_table(out, verdicts)
    print("### Against the targets\n")
    print("| what | target | measured | met |")
    print("|---|---|---|---|")
    for what, target, got, ok in verdicts:
        print(f"| {what} | {target} | {got} | {'-' if ok is None else ('yes' if ok else '**no**')} |")
    print()
    return 0


# issue 17's targets, as a ratio to pgbench -N at the same client count, by row of writes.tsv
WRITE_TARGETS = [0.4, 0.25, 0.5]


def writes_table(out, verdicts):
    path = out / "writes.tsv"
    if not path.exists():
        return
    rows = [line.split("\t") for line in path.read_text().splitlines()[1:] if line.strip()]
    print("### Writes: AssignRole on PostgreSQL beside pgbench -N on the same server\n")
    print("| case | Warden AssignRole/s | errors | pgbench -N tps | ratio |")
    print("|---|---|---|---|---|")
    for i, (case, per_s, errors, tps, ratio) in enumerate(rows):
        print(f"| {case} | {float(per_s):,.0f} | {errors} | {float(tps):,.0f} | {float(ratio):.2f} |")
        if i < len(WRITE_TARGETS):
            verdicts.append((f"AssignRole, {case}", f">= {WRITE_TARGETS[i]} x pgbench",
                             f"{float(ratio):.2f} x", float(ratio) >= WRITE_TARGETS[i]))
    print()
    batch = out / "batch.json"
    if batch.exists():
        b = json.loads(batch.read_text())
        print(f"BatchAssignRoles of {b['items']} items, {b['rounds']} rounds: median {b['median_s']} s, "
              f"max {b['max_s']} s\n")
        verdicts.append((f"BatchAssignRoles, {b['items']} items", "< 1 s", f"{b['median_s']} s",
                         b["median_s"] < 1.0))


if __name__ == "__main__":
    sys.exit(main(sys.argv))

