#!/usr/bin/env python3
"""Check the Grafana dashboard and the Prometheus alert rules against the metrics Warden exposes.

Files checked:
  deploy/grafana/warden-dashboard.json      every panel target's `expr` and every variable query
  deploy/prometheus/warden-alerts.yaml      every rule's `expr`
and the chart's copies of both (helm/warden/files/), which must be byte-identical to them: Helm
can only read files inside the chart directory, so the chart carries copies of the deploy/ files.

Every PromQL expression must name only metrics in METRICS below (the one list of what Warden
exposes on /metrics; keep it in step with the server), use only the labels those metrics and the
scrape target have, and use known values for the labels with a fixed set of values (gRPC code
names, grpc_type, the decision results, the services and methods declared in proto/), so a
renamed metric, label or RPC cannot silently break a dashboard panel or an alert. The checking is
a tokenizer, not a full PromQL parser: when `promtool` is on PATH the expressions are also parsed
by Prometheus itself (the rule file with `promtool check rules`, the dashboard's expressions as
recording rules) and the alerts' unit tests in .ci/warden-alerts.test.yaml run with
`promtool test rules`; without promtool that step says it was skipped.

Run by .ci/helm-lint.sh. Exits 1 on any problem.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
DASHBOARD = ROOT / "deploy" / "grafana" / "warden-dashboard.json"
ALERTS = ROOT / "deploy" / "prometheus" / "warden-alerts.yaml"
CHART_FILES = ROOT / "helm" / "warden" / "files"
# deploy/ file -> its copy in the chart.
ALERT_TESTS = ROOT / ".ci" / "warden-alerts.test.yaml"
COPIES = {DASHBOARD: CHART_FILES / DASHBOARD.name, ALERTS: CHART_FILES / ALERTS.name}

# --- what Warden exposes on /metrics: name -> (type, labels) -----------------------------------
METRICS: dict[str, tuple[str, set[str]]] = {
    "grpc_server_started_total": ("counter", {"grpc_service", "grpc_method", "grpc_type"}),
    "grpc_server_handled_total": ("counter", {"grpc_service", "grpc_method", "grpc_type", "grpc_code"}),
    "grpc_server_handling_seconds": ("histogram", {"grpc_service", "grpc_method", "grpc_type"}),
    "warden_check_decisions_total": ("counter", {"result"}),
    "warden_index_tenants": ("gauge", set()),
    "warden_index_assignments": ("gauge", set()),
    "warden_applied_revision": ("gauge", set()),
    "warden_database_revision": ("gauge", set()),
    "warden_replication_lag_revisions": ("gauge", set()),
    "warden_db_pool_connections": ("gauge", set()),
    "warden_db_pool_idle_connections": ("gauge", set()),
    "warden_db_pool_max_connections": ("gauge", set()),
    "warden_up": ("gauge", set()),
}
# Labels that Prometheus's scrape adds to every series (ServiceMonitor / kubernetes_sd relabelling).
TARGET_LABELS = {"job", "instance", "namespace", "pod", "service", "container", "endpoint"}
# Labels whose values are a fixed set. grpc_service and grpc_method come from proto/ (below).
GRPC_CODES = {"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
              "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
              "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
              "UNAUTHENTICATED"}
LABEL_VALUES = {
    "grpc_code": GRPC_CODES,
    "grpc_type": {"unary", "server_stream"},
    "result": {"allowed", "denied", "unknown_permission"},
}
# Services the server registers besides those in proto/ (health, reflection v1 and v1alpha).
EXTRA_SERVICES = {
    "grpc.health.v1.Health": {"Check", "Watch"},
    "grpc.reflection.v1.ServerReflection": {"ServerReflectionInfo"},
    "grpc.reflection.v1alpha.ServerReflection": {"ServerReflectionInfo"},
}

PROMQL_KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring",
                   "group_left", "group_right", "inf", "nan", "atan2", "start", "end"}
PROMQL_FUNCTIONS = {
    # aggregations
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk",
    "topk", "quantile",
    # functions
    "abs", "absent", "absent_over_time", "ceil", "changes", "clamp", "clamp_max", "clamp_min",
    "day_of_month", "day_of_week", "day_of_year", "days_in_month", "delta", "deriv", "exp",
    "floor", "histogram_quantile", "histogram_count", "histogram_sum", "histogram_fraction",
    "holt_winters", "hour", "idelta", "increase", "irate", "label_join", "label_replace", "ln",
    "log2", "log10", "minute", "month", "predict_linear", "rate", "resets", "round", "scalar",
    "sgn", "sort", "sort_desc", "sqrt", "time", "timestamp", "vector", "year", "avg_over_time",
    "min_over_time", "max_over_time", "sum_over_time", "count_over_time", "quantile_over_time",
    "stddev_over_time", "stdvar_over_time", "last_over_time", "present_over_time", "acos",
    "acosh", "asin", "asinh", "atan", "atanh", "cos", "cosh", "sin", "sinh", "tan", "tanh", "deg",
    "rad", "pi",
}

STRING = r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`'
SELECTOR = re.compile(r'([A-Za-z_:][A-Za-z0-9_:]*)?\s*\{((?:[^{}"\']|' + STRING + r')*)\}')
MATCHER = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*("(?:[^"\\]|\\.)*")\s*(?:,|$)')
GROUPING = re.compile(r'\b(by|without|on|ignoring|group_left|group_right)\s*\(([^()]*)\)')
TOKEN = re.compile(r'(?P<num>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?[a-zA-Z]*)'
                   r'|(?P<var>\$\{[^}]*\}|\$[A-Za-z_][A-Za-z0-9_]*)'
                   r'|(?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)'
                   r'|(?P<other>\S)')


def series_names() -> dict[str, tuple[str, set[str]]]:
    """Every series name a query may use: histograms as _bucket (with `le`), _sum and _count."""
    out = {}
    for name, (kind, labels) in METRICS.items():
        if kind == "histogram":
            out[f"{name}_bucket"] = (kind, labels | {"le"})
            out[f"{name}_sum"] = (kind, labels)
            out[f"{name}_count"] = (kind, labels)
        else:
            out[name] = (kind, labels)
    return out


def proto_services() -> dict[str, set[str]]:
    """{package.Service: {rpc names}} from proto/**/*.proto, plus EXTRA_SERVICES."""
    services = {k: set(v) for k, v in EXTRA_SERVICES.items()}
    for path in sorted((ROOT / "proto").rglob("*.proto")):
        text = re.sub(r"//[^\n]*|/\*.*?\*/", "", path.read_text(), flags=re.S)
        pkg = re.search(r"\bpackage\s+([\w.]+)\s*;", text)
        for m in re.finditer(r"\bservice\s+(\w+)\s*\{", text):
            depth, i = 1, m.end()
            while depth and i < len(text):
                depth += {"{": 1, "}": -1}.get(text[i], 0)
                i += 1
            rpcs = set(re.findall(r"\brpc\s+(\w+)\s*\(", text[m.end():i]))
            services[f"{pkg.group(1)}.{m.group(1)}" if pkg else m.group(1)] = rpcs
    return services


SERIES = series_names()
ALL_LABELS = TARGET_LABELS | {"le"} | set().union(*(labels for _, labels in METRICS.values()))
SERVICES = proto_services()
ALL_METHODS = set().union(*SERVICES.values())


def regex_alternatives(value: str) -> list[str] | None:
    """The alternatives of a regex that is a plain `a|b|c` (dots may be escaped), else None."""
    plain = value.replace("\\.", ".")
    if re.fullmatch(r"[A-Za-z0-9_.]+(\|[A-Za-z0-9_.]+)*", plain):
        return plain.split("|")
    return None


def unknown(name: str, where: str) -> str:
    if METRICS.get(name, ("",))[0] == "histogram":
        return f"{where}: {name} is a histogram: query {name}_bucket, _sum or _count"
    return f"{where}: unknown metric {name!r} (not in .ci/check_dashboards.py METRICS)"


def check_selector(name: str | None, body: str, where: str) -> tuple[list[str], set[str]]:
    problems: list[str] = []
    if not name:
        return [f"{where}: a selector without a metric name ({{{body}}}): name the metric"], set()
    if name not in SERIES:
        return [unknown(name, where)], set()
    labels = SERIES[name][1] | TARGET_LABELS
    matchers = []
    pos = 0
    while pos < len(body.strip()):
        m = MATCHER.match(body, pos)
        if not m:
            problems.append(f"{where}: cannot read the matchers of {name}{{{body}}}")
            break
        matchers.append((m.group(1), m.group(2), json.loads(m.group(3))))
        pos = m.end()
    service = next((v for lbl, op, v in matchers if lbl == "grpc_service" and op == "="), None)
    for label, op, value in matchers:
        if label not in labels:
            problems.append(f"{where}: {name} has no label {label!r} (it has {', '.join(sorted(labels))})")
            continue
        if "$" in value:  # a Grafana variable
            continue
        values = [value] if op in ("=", "!=") else regex_alternatives(value)
        if values is None:
            continue
        if label in LABEL_VALUES:
            allowed = LABEL_VALUES[label]
        elif label == "grpc_service":
            allowed = set(SERVICES)
        elif label == "grpc_method":
            allowed = SERVICES.get(service, ALL_METHODS) if service else ALL_METHODS
        else:
            continue
        for v in values:
            if v not in allowed:
                problems.append(f"{where}: {label}={v!r} is not a value Warden exports"
                                + (f" for {service}" if label == "grpc_method" and service else "")
                                + f" (known: {', '.join(sorted(allowed))})")
    return problems, {name}


def check_promql(expr: str, where: str) -> tuple[list[str], set[str]]:
    """Problems in one PromQL expression, and the metric names it uses."""
    problems: list[str] = []
    used: set[str] = set()

    def selector(m: re.Match) -> str:
        p, names = check_selector(m.group(1), m.group(2), where)
        problems.extend(p)
        used.update(names)
        return " __selector__ "

    skeleton = SELECTOR.sub(selector, expr)
    skeleton = re.sub(STRING, ' "" ', skeleton)
    skeleton = re.sub(r"\[[^\]]*\]", " ", skeleton)  # ranges and subqueries
    for ch_open, ch_close in ("()", "[]", "{}"):
        if skeleton.count(ch_open) != skeleton.count(ch_close):
            problems.append(f"{where}: unbalanced {ch_open}{ch_close}")

    def grouping(m: re.Match) -> str:
        for label in (x.strip() for x in m.group(2).split(",")):
            if label and label not in ALL_LABELS:
                problems.append(f"{where}: {m.group(1)} ({label}): no metric here has the label {label!r}")
        return " "  # `sum by (x) (...)` reads as `sum (...)` from here on

    skeleton = GROUPING.sub(grouping, skeleton)
    tokens = [(t.lastgroup, t.group(), t.end()) for t in TOKEN.finditer(skeleton)]
    for kind, text, end in tokens:
        if kind != "ident" or text == "__selector__" or text in PROMQL_KEYWORDS:
            continue
        if skeleton[end:].lstrip().startswith("("):
            if text not in PROMQL_FUNCTIONS:
                problems.append(f"{where}: unknown PromQL function {text!r}")
        elif text in SERIES:
            used.add(text)
        else:
            problems.append(unknown(text, where))
    return problems, used


def check_variable_query(query: str, where: str) -> tuple[list[str], set[str]]:
    """A Grafana Prometheus variable query: label_values(...), query_result(...) or PromQL."""
    m = re.fullmatch(r"\s*label_values\(\s*(?:(.*?)\s*,\s*)?([A-Za-z_][A-Za-z0-9_]*)\s*\)\s*", query, re.S)
    if m:
        problems, used = check_promql(m.group(1), where) if m.group(1) else ([], set())
        if m.group(2) not in ALL_LABELS:
            problems.append(f"{where}: label_values over {m.group(2)!r}, a label no metric here has")
        return problems, used
    m = re.fullmatch(r"\s*query_result\((.*)\)\s*", query, re.S)
    return check_promql(m.group(1) if m else query, where)


def dashboard_queries(dash: dict) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """([(where, expr)] of every panel target, [(where, query)] of every query variable)."""
    exprs: list[tuple[str, str]] = []

    def walk(panels):
        for p in panels or []:
            for t in p.get("targets") or []:
                if t.get("expr"):
                    exprs.append((f"panel {p.get('title')!r} target {t.get('refId')}", t["expr"]))
            walk(p.get("panels"))

    walk(dash.get("panels"))
    variables = []
    for v in dash.get("templating", {}).get("list", []):
        if v.get("type") == "query":
            q = v.get("query")
            q = q.get("query") if isinstance(q, dict) else q
            if q:
                variables.append((f"variable ${v.get('name')}", q))
    return exprs, variables


def grafana_to_promql(expr: str) -> str:
    """A dashboard expression as plain PromQL, for promtool: Grafana's variables replaced."""
    expr = re.sub(r"\$__(rate_interval|interval|range)\b|\$\{__(rate_interval|interval|range)\}", "5m", expr)
    return re.sub(r"\$\{[^}]*\}|\$[A-Za-z_][A-Za-z0-9_]*", ".*", expr)


def run_promtool(rule_files: list[Path], tmp: Path) -> list[str]:
    """promtool check rules on each file, and the alert unit tests (ALERT_TESTS)."""
    promtool = shutil.which("promtool")
    if not promtool:
        print("    promtool not on PATH: PromQL parsing by Prometheus and the alert unit tests skipped"
              " (the checks above still ran; Debian's `prometheus` package has promtool)")
        return []
    problems = []
    for f in rule_files:
        r = subprocess.run([promtool, "check", "rules", str(f)], capture_output=True, text=True)
        out = (r.stdout + r.stderr).strip()
        label = f.relative_to(ROOT) if f.is_relative_to(ROOT) else "dashboard expressions (as recording rules)"
        if r.returncode != 0:
            problems.append(f"promtool check rules {label}: {out}")
        else:
            print(f"    promtool check rules {label}: {out.splitlines()[-1].strip() if out else 'ok'}")
    # The unit tests run against the rules without annotations: promtool compares annotations
    # verbatim, and the tests are about when each alert fires.
    rules = yaml.safe_load(ALERTS.read_text())
    for g in rules.get("groups") or []:
        for r in g.get("rules") or []:
            r.pop("annotations", None)
    (tmp / "rules.yaml").write_text(yaml.safe_dump(rules, sort_keys=False))
    tests = yaml.safe_load(ALERT_TESTS.read_text())
    tests["rule_files"] = ["rules.yaml"]
    (tmp / ALERT_TESTS.name).write_text(yaml.safe_dump(tests, sort_keys=False))
    tested = {a.get("alertname") for t in tests.get("tests") or [] for a in t.get("alert_rule_test") or []}
    untested = [r["alert"] for g in rules.get("groups") or [] for r in g.get("rules") or []
                if r.get("alert") and r["alert"] not in tested]
    if untested:
        problems.append(f"alerts without a test in {ALERT_TESTS.relative_to(ROOT)}: {', '.join(untested)}")
    r = subprocess.run([promtool, "test", "rules", ALERT_TESTS.name], capture_output=True, text=True, cwd=tmp)
    out = (r.stdout + r.stderr).strip()
    if r.returncode != 0:
        problems.append(f"promtool test rules {ALERT_TESTS.relative_to(ROOT)}:\n{out}")
    else:
        print(f"    promtool test rules {ALERT_TESTS.relative_to(ROOT)}: {out.splitlines()[-1].strip() if out else 'ok'}"
              f" ({len(tested)} alerts tested)")
    return problems


def main() -> int:
    problems: list[str] = []
    used: set[str] = set()
    print("==> deploy/ dashboards and alert rules against Warden's metrics")

    for src, copy in COPIES.items():
        rel_src, rel_copy = src.relative_to(ROOT), copy.relative_to(ROOT)
        if not src.is_file():
            problems.append(f"{rel_src} is missing")
        elif not copy.is_file() or copy.read_bytes() != src.read_bytes():
            problems.append(f"{rel_copy} differs from {rel_src} (the chart must ship the same file): cp {rel_src} {rel_copy}")
        else:
            print(f"    {rel_copy} is identical to {rel_src}")
    if not DASHBOARD.is_file() or not ALERTS.is_file():
        for p in problems:
            print(f"    FAIL {p}")
        return 1

    try:
        dash = json.loads(DASHBOARD.read_text())
    except json.JSONDecodeError as e:
        print(f"    FAIL {DASHBOARD.relative_to(ROOT)} is not valid JSON: {e}")
        return 1
    exprs, variables = dashboard_queries(dash)
    if not exprs:
        problems.append("the dashboard has no panel with a PromQL target")
    types = {v.get("type"): v for v in dash.get("templating", {}).get("list", [])}
    if ds := types.get("datasource"):
        if ds.get("query") != "prometheus":
            problems.append("the dashboard's datasource variable is not of type prometheus")
    else:
        problems.append("the dashboard has no datasource variable")
    for where, expr in exprs:
        p, u = check_promql(expr, f"dashboard {where}")
        problems += p
        used |= u
    for where, query in variables:
        p, u = check_variable_query(query, f"dashboard {where}")
        problems += p
        used |= u

    rules_doc = yaml.safe_load(ALERTS.read_text()) or {}
    rules = [r for g in rules_doc.get("groups") or [] for r in g.get("rules") or []]
    if not rules:
        problems.append(f"{ALERTS.relative_to(ROOT)} has no rules")
    for r in rules:
        name = r.get("alert") or r.get("record") or "?"
        p, u = check_promql(str(r.get("expr", "")), f"rule {name}")
        problems += p
        used |= u
        if r.get("alert"):
            if not (r.get("labels") or {}).get("severity"):
                problems.append(f"rule {name}: no severity label")
            ann = r.get("annotations") or {}
            if not ann.get("summary") or not ann.get("description"):
                problems.append(f"rule {name}: needs summary and description annotations")

    print(f"    {len(exprs)} panel expression(s), {len(variables)} variable query(ies), {len(rules)} rule(s) checked")
    print(f"    metrics used: {', '.join(sorted(used))}")
    unused = sorted(n for n in METRICS if not any(u == n or u.startswith(n + "_") for u in used))
    if unused:
        print(f"    note: not used by the dashboard or the rules: {', '.join(unused)}")

    with tempfile.TemporaryDirectory(prefix="warden-promql-") as tmp:
        as_rules = Path(tmp) / "dashboard-expressions.yaml"
        as_rules.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": [
            {"record": f"dashboard:expr_{i}", "expr": grafana_to_promql(e)} for i, (_, e) in enumerate(exprs)]}]}))
        problems += run_promtool([ALERTS, as_rules], Path(tmp))

    for p in problems:
        print(f"    FAIL {p}")
    print(f"check dashboards {'FAILED' if problems else 'OK'}: {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
