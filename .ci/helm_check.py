#!/usr/bin/env python3
"""Render helm/warden with the real Helm engine and assert the operators' contract on the output.

Rendering goes through helm_lint.render() (Helm's engine in lint mode, no cluster needed; see
helm_lint.py). Checked for the default values and for helm/warden/ci-values.yaml, plus a few
variations: grpc liveness/readiness probes on 50051 (with TLS on, HTTP probes of the admin port's
/healthz and /readyz instead, the TLS Secrets mounted as directories and WARDEN_TLS_* pointing at
their files, no cleartext appProtocol), the pre-install,pre-upgrade migration hook
Job (and the Secret it reads existing before it), non-root read-only security settings on every
pod, the PodDisruptionBudget, terminationGracePeriodSeconds > preStop sleep + drain,
enableServiceLinks false, Service ports, optional HPA and ServiceMonitor, the optional dashboard
ConfigMap and PrometheusRule (dashboards.*: nothing when off; when on, the same dashboard and rule
groups as deploy/grafana/warden-dashboard.json and deploy/prometheus/warden-alerts.yaml),
NOTES.txt; and that the engine rejects mistyped or invalid values. Exits 1 on any failed assertion.

Run through .ci/helm-lint.sh, which installs the engine and sets HELM_SDKPY_LIB.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
from pathlib import Path

sys.dont_write_bytecode = True  # no __pycache__ in the work tree
sys.path.insert(0, str(Path(__file__).resolve().parent))
import helm_lint as hl  # noqa: E402

GRPC_PORT = 50051
METRICS_PORT = 9090
DNS1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DASHBOARD = hl.ROOT / "deploy" / "grafana" / "warden-dashboard.json"
ALERTS = hl.ROOT / "deploy" / "prometheus" / "warden-alerts.yaml"


class Checker:
    """Counts assertions; prints failures always, passes with HELM_CHECK_VERBOSE=1."""

    def __init__(self) -> None:
        self.passed = 0
        self.failed: list[str] = []
        self.section = ""
        self.section_ok = 0
        self.verbose = os.environ.get("HELM_CHECK_VERBOSE", "") not in ("", "0")

    def start(self, section: str) -> None:
        self.end()
        self.section = section
        self.section_ok = 0
        print(f"==> {section}")

    def end(self) -> None:
        if self.section:
            print(f"    {self.section_ok} assertion(s) hold")

    def check(self, cond: bool, what: str, detail: str = "") -> bool:
        if cond:
            self.passed += 1
            self.section_ok += 1
            if self.verbose:
                print(f"    ok   {what}")
        else:
            msg = f"{what}" + (f": {detail}" if detail else "")
            self.failed.append(f"[{self.section}] {msg}")
            print(f"    FAIL {msg}")
        return bool(cond)


def dig(obj, *path, default=None):
    for key in path:
        if isinstance(obj, dict) and key in obj:
            obj = obj[key]
        elif isinstance(obj, list) and isinstance(key, int) and -len(obj) <= key < len(obj):
            obj = obj[key]
        else:
            return default
    return obj


def of_kind(docs, kind):
    return [d for d in docs if d.get("kind") == kind]


def env_map(container) -> dict:
    return {e["name"]: e for e in container.get("env") or []}


def matches(selector: dict, labels: dict) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def hooks(doc) -> set[str]:
    raw = dig(doc, "metadata", "annotations", "helm.sh/hook", default="") or ""
    return {h.strip() for h in raw.split(",") if h.strip()}


def parse_seconds(text: str) -> int | None:
    m = re.fullmatch(r"(\d+)s", text or "")
    return int(m.group(1)) if m else None


def check_security(c: Checker, what: str, pod_spec: dict, container: dict) -> None:
    psc = pod_spec.get("securityContext") or {}
    csc = container.get("securityContext") or {}

    def eff(key):  # the container's setting wins over the pod's
        return csc.get(key, psc.get(key))

    c.check(eff("runAsNonRoot") is True, f"{what}: runAsNonRoot true")
    c.check(eff("runAsUser") == 65532, f"{what}: runAsUser 65532", f"got {eff('runAsUser')!r}")
    c.check(csc.get("readOnlyRootFilesystem") is True, f"{what}: readOnlyRootFilesystem true")
    c.check(csc.get("allowPrivilegeEscalation") is False, f"{what}: allowPrivilegeEscalation false")
    c.check("ALL" in (dig(csc, "capabilities", "drop") or []), f"{what}: capabilities drop ALL")
    c.check(dig(eff("seccompProfile") or {}, "type") == "RuntimeDefault", f"{what}: seccompProfile RuntimeDefault")
    c.check(pod_spec.get("enableServiceLinks") is False, f"{what}: enableServiceLinks false (no WARDEN_*_SERVICE_HOST)")
    c.check(pod_spec.get("automountServiceAccountToken") is False, f"{what}: no service account token mounted")
    c.check(pod_spec.get("hostNetwork") is not True and not csc.get("privileged"), f"{what}: not privileged, no host network")


def check_render(c: Checker, label: str, values: dict, rendered: dict, expect_clean: bool) -> None:
    c.start(f"render {label}")
    c.check(not rendered["failed"], "every template renders", f"failed: {rendered['failed']}")
    c.check(not hl.lint_problems(rendered["lint"]), "lint of the rendered copy is clean", str(hl.lint_problems(rendered["lint"])))
    if expect_clean:
        c.check(not rendered["messages"], "no `required`/`fail` message (a real install would pass)", "; ".join(rendered["messages"]))
    else:
        for msg in sorted(set(rendered["messages"])):
            print(f"    note {msg}")
    try:
        docs = hl.manifests(rendered)
    except hl.EngineError as e:
        c.check(False, "rendered manifests are valid YAML Kubernetes objects", str(e))
        return
    c.check(bool(docs), "rendered manifests are valid YAML Kubernetes objects")

    seen = set()
    for d in docs:
        name = dig(d, "metadata", "name", default="")
        key = (d["kind"], name)
        c.check(key not in seen, f"{d['kind']}/{name}: unique")
        seen.add(key)
        c.check(bool(DNS1123.match(name or "")) and len(name) <= 63, f"{d['kind']}/{name}: valid name (DNS-1123, <= 63)")

    # --- Deployment -------------------------------------------------------------------------
    deps = of_kind(docs, "Deployment")
    if not c.check(len(deps) == 1, "one Deployment", f"got {len(deps)}"):
        return
    dep = deps[0]
    pod = dig(dep, "spec", "template", "spec", default={})
    pod_labels = dig(dep, "spec", "template", "metadata", "labels", default={})
    c.check(matches(dig(dep, "spec", "selector", "matchLabels", default={}), pod_labels), "Deployment selector matches its pods")
    containers = pod.get("containers") or []
    srv = next((x for x in containers if x.get("name") == "warden"), None)
    if not c.check(srv is not None, "container `warden`"):
        return
    autoscaling = values["autoscaling"]["enabled"]
    if autoscaling:
        c.check("replicas" not in dep["spec"], "replicas left to the HPA")
    else:
        c.check(dep["spec"].get("replicas") == values["replicaCount"], f"replicas {values['replicaCount']}", f"got {dep['spec'].get('replicas')!r}")
    c.check(dig(dep, "spec", "strategy", "rollingUpdate", "maxUnavailable") == 0, "rolling update keeps every replica until its successor is ready")
    c.check((srv.get("args") or [])[:1] == ["serve"], "args start with `serve`", f"got {srv.get('args')!r}")
    c.check(not srv.get("command"), "image entrypoint kept (no command override)")
    ports = {p.get("name"): p.get("containerPort") for p in srv.get("ports") or []}
    c.check(ports.get("grpc") == GRPC_PORT and ports.get("metrics") == METRICS_PORT, "container ports grpc 50051, metrics 9090", str(ports))

    live, ready = srv.get("livenessProbe") or {}, srv.get("readinessProbe") or {}
    tls = values["tls"]
    if tls["existingSecret"]:
        # Kubernetes' gRPC probes cannot speak TLS: the plaintext admin port answers them, with
        # the same meanings (/readyz follows AuthorizationService, /healthz never the database).
        c.check(dig(live, "httpGet", "port") in ("metrics", METRICS_PORT) and dig(live, "httpGet", "path") == "/healthz"
                and "grpc" not in live, "TLS: livenessProbe GET /healthz on the admin port", str(live))
        c.check(dig(ready, "httpGet", "port") in ("metrics", METRICS_PORT) and dig(ready, "httpGet", "path") == "/readyz"
                and "grpc" not in ready, "TLS: readinessProbe GET /readyz on the admin port", str(ready))
        if "startupProbe" in srv:
            start = srv["startupProbe"]
            c.check(dig(start, "httpGet", "path") == "/readyz" and dig(start, "httpGet", "port") in ("metrics", METRICS_PORT)
                    and "grpc" not in start, "TLS: startupProbe GET /readyz on the admin port", str(start))
        c.check(not any("grpc" in (srv.get(p) or {}) for p in ("livenessProbe", "readinessProbe", "startupProbe")),
                "TLS: no native gRPC probe left (they cannot do TLS)")
    else:
        c.check(dig(live, "grpc", "port") == GRPC_PORT, "livenessProbe: native gRPC on 50051", str(live))
        c.check(dig(ready, "grpc", "port") == GRPC_PORT, "readinessProbe: native gRPC on 50051", str(ready))
        # Readiness follows decisions (they outlive a database outage for WARDEN_MAX_STALENESS);
        # liveness never depends on the database.
        want_ready = dig(values, "probes", "readiness", "service", default="warden.v1.AuthorizationService")
        c.check(dig(ready, "grpc", "service", default=None) == want_ready, f'readinessProbe: health service "{want_ready}"', str(ready))
        want_live = dig(values, "probes", "liveness", "service", default="liveness")
        c.check(dig(live, "grpc", "service", default="") == want_live, f'livenessProbe: health service "{want_live}"', str(live))
        if "startupProbe" in srv:
            c.check(dig(srv, "startupProbe", "grpc", "port") == GRPC_PORT, "startupProbe: native gRPC on 50051")

    env = env_map(srv)
    check_tls(c, values, pod, srv, env)

    def val(name):
        return dig(env, name, "value")

    c.check(val("WARDEN_LISTEN_ADDR") == "0.0.0.0:50051", "WARDEN_LISTEN_ADDR=0.0.0.0:50051", repr(val("WARDEN_LISTEN_ADDR")))
    c.check(val("WARDEN_METRICS_ADDR") == "0.0.0.0:9090", "WARDEN_METRICS_ADDR=0.0.0.0:9090", repr(val("WARDEN_METRICS_ADDR")))
    c.check(val("WARDEN_LOG_FORMAT") == values["logging"]["format"], "WARDEN_LOG_FORMAT from values")
    c.check(val("RUST_LOG") == values["logging"]["level"], "RUST_LOG from values")
    for name in ("WARDEN_AUTH_ISSUER", "WARDEN_AUTH_AUDIENCE"):
        c.check(name in env, f"{name} set")
    db_ref = dig(env, "WARDEN_DATABASE_URL", "valueFrom", "secretKeyRef", default={})
    secret_name = values["existingSecret"] or dig(dep, "metadata", "name")
    c.check(db_ref.get("name") == secret_name and db_ref.get("key") == values["secretKeys"]["databaseUrl"],
            f"WARDEN_DATABASE_URL from Secret {secret_name}/{values['secretKeys']['databaseUrl']}", str(db_ref))
    if "WARDEN_AUTH_HS256_SECRET" in env:
        ref = dig(env, "WARDEN_AUTH_HS256_SECRET", "valueFrom", "secretKeyRef", default={})
        c.check(ref.get("name") == secret_name, "WARDEN_AUTH_HS256_SECRET from the same Secret", str(ref))
    if values["existingSecret"]:
        c.check("WARDEN_AUTH_HS256_SECRET" in env, "WARDEN_AUTH_HS256_SECRET (optional) offered from existingSecret")
    if values["auth"]["publicKeys"]["existingSecret"]:
        files = (val("WARDEN_AUTH_PUBLIC_KEY_FILES") or "").split(",")
        mount = values["auth"]["publicKeys"]["mountPath"].rstrip("/")
        c.check(files == [f"{mount}/{f}" for f in values["auth"]["publicKeys"]["files"]], "WARDEN_AUTH_PUBLIC_KEY_FILES lists the mounted PEM files", repr(files))
        mounts = {m["name"]: m for m in srv.get("volumeMounts") or []}
        vols = {v["name"]: v for v in pod.get("volumes") or []}
        c.check(dig(mounts, "public-keys", "mountPath") == mount and dig(mounts, "public-keys", "readOnly") is True
                and dig(vols, "public-keys", "secret", "secretName") == values["auth"]["publicKeys"]["existingSecret"],
                "public keys Secret mounted read-only")
    if values["bootstrapAdmins"]:
        c.check(val("WARDEN_BOOTSTRAP_ADMINS") == ",".join(values["bootstrapAdmins"]), "WARDEN_BOOTSTRAP_ADMINS comma-joined")
    if values["otel"]["endpoint"]:
        c.check(val("OTEL_EXPORTER_OTLP_ENDPOINT") == values["otel"]["endpoint"], "OTEL_EXPORTER_OTLP_ENDPOINT from values")
    else:
        c.check("OTEL_EXPORTER_OTLP_ENDPOINT" not in env, "OTEL_EXPORTER_OTLP_ENDPOINT unset when no endpoint")
    plain = [e["name"] for e in env.values() if re.match(r"^(postgres(ql)?|sqlite)://", str(e.get("value", "")))]
    c.check(not plain, "no database URL in plain pod env", str(plain))

    drain = parse_seconds(val("WARDEN_SHUTDOWN_GRACE"))
    c.check(drain == values["shutdownGraceSeconds"], f"WARDEN_SHUTDOWN_GRACE={values['shutdownGraceSeconds']}s", repr(val("WARDEN_SHUTDOWN_GRACE")))
    sleep = dig(srv, "lifecycle", "preStop", "sleep", "seconds", default=0)
    c.check(not dig(srv, "lifecycle", "preStop", "exec"), "preStop uses the native sleep action (no exec: distroless image)")
    c.check(sleep == values["preStopSleepSeconds"], f"preStop sleep {values['preStopSleepSeconds']}s", repr(sleep))
    tgps = pod.get("terminationGracePeriodSeconds")
    c.check(isinstance(tgps, int) and drain is not None and tgps > sleep + drain,
            f"terminationGracePeriodSeconds ({tgps}) > preStop sleep ({sleep}) + drain ({drain})")

    check_security(c, "Deployment", pod, srv)
    res = srv.get("resources") or {}
    c.check(bool(dig(res, "requests", "cpu")) and bool(dig(res, "requests", "memory")) and bool(dig(res, "limits", "memory")),
            "resources: requests and a memory limit", str(res))
    c.check(res == values["resources"], "resources from values", str(res))
    vols = {v["name"]: v for v in pod.get("volumes") or []}
    c.check("emptyDir" in (vols.get("tmp") or {}), "writable /tmp (emptyDir) under the read-only root")
    mounts = {m["name"]: m for m in srv.get("volumeMounts") or []}
    if values["snapshot"]["enabled"]:
        path = val("WARDEN_SNAPSHOT_PATH") or ""
        c.check(path.startswith(dig(mounts, "snapshot", "mountPath", default="?") + "/")
                and dig(vols, "snapshot", "emptyDir", "sizeLimit") == values["snapshot"]["sizeLimit"],
                "snapshot: WARDEN_SNAPSHOT_PATH inside its emptyDir (survives container restarts)", f"{path!r} {vols.get('snapshot')}")
        c.check(val("WARDEN_SNAPSHOT_INTERVAL") == values["snapshot"]["interval"], "WARDEN_SNAPSHOT_INTERVAL from values")
    else:
        c.check("WARDEN_SNAPSHOT_PATH" not in env and "snapshot" not in vols, "no snapshot unless snapshot.enabled")
    anti = dig(pod, "affinity", "podAntiAffinity", default={})
    mode = values["podAntiAffinity"]
    if not values["affinity"] and mode != "none":
        key = "preferredDuringSchedulingIgnoredDuringExecution" if mode == "soft" else "requiredDuringSchedulingIgnoredDuringExecution"
        terms = anti.get(key) or []
        topo = [dig(t, "podAffinityTerm", "topologyKey") or t.get("topologyKey") for t in terms]
        sels = [dig(t, "podAffinityTerm", "labelSelector", "matchLabels") or dig(t, "labelSelector", "matchLabels") for t in terms]
        c.check("kubernetes.io/hostname" in topo and all(matches(s, pod_labels) for s in sels),
                f"podAntiAffinity ({mode}) on kubernetes.io/hostname over its own pods", str(anti))
    sa_name = pod.get("serviceAccountName")
    if values["serviceAccount"]["create"]:
        c.check(any(dig(d, "metadata", "name") == sa_name for d in of_kind(docs, "ServiceAccount")), f"ServiceAccount {sa_name} created")

    # --- migration Job ----------------------------------------------------------------------
    jobs = of_kind(docs, "Job")
    if values["migration"]["enabled"] and c.check(len(jobs) == 1, "one migration Job", f"got {len(jobs)}"):
        job = jobs[0]
        jpod = dig(job, "spec", "template", "spec", default={})
        jc = (jpod.get("containers") or [{}])[0]
        c.check(hooks(job) == {"pre-install", "pre-upgrade"}, "Job is a pre-install,pre-upgrade hook", str(hooks(job)))
        policy = set((dig(job, "metadata", "annotations", "helm.sh/hook-delete-policy", default="") or "").split(","))
        c.check({"before-hook-creation", "hook-succeeded"} <= policy, "hook-delete-policy before-hook-creation,hook-succeeded", str(policy))
        c.check(jc.get("args") == ["migrate"] and not jc.get("command"), "Job runs `warden migrate`", str(jc.get("args")))
        c.check(jc.get("image") == srv.get("image"), "Job uses the server's image")
        c.check(jpod.get("restartPolicy") in ("Never", "OnFailure"), "Job restartPolicy Never/OnFailure")
        jenv = env_map(jc)
        c.check(jenv.get("WARDEN_DATABASE_URL") == env.get("WARDEN_DATABASE_URL"), "Job reads the same database Secret")
        c.check(all(jenv.get(k) == env.get(k) for k in env
                    if k not in ("WARDEN_LISTEN_ADDR", "WARDEN_METRICS_ADDR", "WARDEN_SHUTDOWN_GRACE")
                    and not k.startswith(("WARDEN_TLS_", "WARDEN_SNAPSHOT_"))),
                "Job has the server's configuration env")
        # The Job serves nothing: it must not wait for a TLS Secret that may not exist yet.
        c.check(not any(k.startswith("WARDEN_TLS_") for k in jenv) and not {"tls", "client-ca"} & {v["name"] for v in jpod.get("volumes") or []},
                "Job has no TLS settings or Secrets")
        check_security(c, "Job", jpod, jc)
        sa = jpod.get("serviceAccountName", "default")
        created = {dig(d, "metadata", "name") for d in of_kind(docs, "ServiceAccount") if not hooks(d)}
        c.check(sa not in created, "Job's ServiceAccount exists before pre-install hooks (not a release object)", sa)
        jlabels = dig(job, "spec", "template", "metadata", "labels", default={})
        c.check(not matches(dig(dep, "spec", "selector", "matchLabels"), jlabels), "Job pod outside the Deployment/Service/PDB selector")
        job_weight = int(dig(job, "metadata", "annotations", "helm.sh/hook-weight", default="0"))
    else:
        job_weight = 0
        if not values["migration"]["enabled"]:
            c.check(not jobs, "no Job when migration.enabled is false")

    # --- Secret -----------------------------------------------------------------------------
    secrets = of_kind(docs, "Secret")
    if values["existingSecret"]:
        c.check(not secrets, "no Secret rendered with existingSecret")
    elif c.check(len(secrets) == 1, "one Secret", f"got {len(secrets)}"):
        sec = secrets[0]
        c.check(dig(sec, "metadata", "name") == secret_name, "Secret is the one the pods read")
        c.check({"pre-install", "pre-upgrade"} <= hooks(sec), "Secret is a pre-install,pre-upgrade hook (exists before the migration Job)", str(hooks(sec)))
        w = int(dig(sec, "metadata", "annotations", "helm.sh/hook-weight", default="0"))
        c.check(w < job_weight, f"Secret hook-weight ({w}) < Job hook-weight ({job_weight})")
        c.check("hook-succeeded" not in (dig(sec, "metadata", "annotations", "helm.sh/hook-delete-policy", default="") or ""),
                "Secret not deleted after the hooks (the server reads it)")
        c.check(values["secretKeys"]["databaseUrl"] in (sec.get("data") or {}), "Secret holds the database URL key")
        c.check(not sec.get("stringData"), "Secret values base64-encoded in data")
        c.check(bool(dig(dep, "spec", "template", "metadata", "annotations", "checksum/secret")), "pods roll when the Secret changes (checksum annotation)")

    # --- Service ----------------------------------------------------------------------------
    svcs = [s for s in of_kind(docs, "Service") if dig(s, "spec", "clusterIP") != "None"]
    if c.check(len(svcs) == 1, "one ClusterIP Service", f"got {len(svcs)}"):
        svc = svcs[0]
        sports = {p.get("name"): p for p in dig(svc, "spec", "ports", default=[])}
        c.check(dig(sports, "grpc", "port") == values["service"]["grpcPort"] == GRPC_PORT and dig(sports, "grpc", "targetPort") in ("grpc", GRPC_PORT),
                "Service port 50051 named grpc", str(sports.get("grpc")))
        c.check(dig(sports, "metrics", "port") == values["service"]["metricsPort"] == METRICS_PORT and dig(sports, "metrics", "targetPort") in ("metrics", METRICS_PORT),
                "Service port 9090 named metrics", str(sports.get("metrics")))
        c.check(matches(dig(svc, "spec", "selector"), pod_labels), "Service selects the server pods")
        proto = dig(sports, "grpc", "appProtocol")
        if tls["existingSecret"]:
            c.check(proto is None, "TLS: the gRPC port claims no cleartext appProtocol", repr(proto))
        else:
            c.check(proto == (values["service"]["grpcAppProtocol"] or None), f"gRPC appProtocol {values['service']['grpcAppProtocol']!r}", repr(proto))
    headless = [s for s in of_kind(docs, "Service") if dig(s, "spec", "clusterIP") == "None"]
    c.check(len(headless) == (1 if values["service"]["headless"] else 0), f"headless Service {'present' if values['service']['headless'] else 'absent'}")

    # --- PodDisruptionBudget ----------------------------------------------------------------
    pdbs = of_kind(docs, "PodDisruptionBudget")
    if values["pdb"]["enabled"] and c.check(len(pdbs) == 1, "one PodDisruptionBudget", f"got {len(pdbs)}"):
        pdb = pdbs[0]
        c.check(pdb.get("apiVersion") == "policy/v1", "PodDisruptionBudget policy/v1")
        want = values["pdb"]["minAvailable"] if values["pdb"]["maxUnavailable"] is None else None
        if want is not None:
            c.check(dig(pdb, "spec", "minAvailable") == want, f"PodDisruptionBudget minAvailable {want}", str(pdb.get("spec")))
        c.check(matches(dig(pdb, "spec", "selector", "matchLabels"), pod_labels), "PodDisruptionBudget selects the server pods")

    # --- HPA --------------------------------------------------------------------------------
    hpas = of_kind(docs, "HorizontalPodAutoscaler")
    if autoscaling:
        if c.check(len(hpas) == 1, "HorizontalPodAutoscaler rendered"):
            hpa = hpas[0]
            c.check(hpa.get("apiVersion") == "autoscaling/v2", "HPA autoscaling/v2")
            c.check(dig(hpa, "spec", "scaleTargetRef", "name") == dig(dep, "metadata", "name") and dig(hpa, "spec", "scaleTargetRef", "kind") == "Deployment",
                    "HPA targets the Deployment")
            c.check(dig(hpa, "spec", "minReplicas") == values["autoscaling"]["minReplicas"] and dig(hpa, "spec", "maxReplicas") == values["autoscaling"]["maxReplicas"],
                    "HPA min/max from values")
            c.check(bool(dig(hpa, "spec", "metrics")), "HPA has metrics")
    else:
        c.check(not hpas, "no HorizontalPodAutoscaler (off by default)")

    # --- ServiceMonitor ---------------------------------------------------------------------
    sms = of_kind(docs, "ServiceMonitor")
    if values["serviceMonitor"]["enabled"]:
        if c.check(len(sms) == 1, "ServiceMonitor rendered"):
            sm = sms[0]
            c.check(sm.get("apiVersion") == "monitoring.coreos.com/v1", "ServiceMonitor monitoring.coreos.com/v1")
            c.check(dig(sm, "spec", "endpoints", 0, "port") == "metrics" and dig(sm, "spec", "endpoints", 0, "path") == "/metrics",
                    "ServiceMonitor scrapes port `metrics` at /metrics")
            c.check(matches(dig(sm, "spec", "selector", "matchLabels"), dig(svcs[0], "metadata", "labels", default={})) if svcs else False,
                    "ServiceMonitor selects the Service")
            for k, v in values["serviceMonitor"]["labels"].items():
                c.check(dig(sm, "metadata", "labels", k) == v, f"ServiceMonitor label {k}={v}")
    else:
        c.check(not sms, "no ServiceMonitor (off by default)")

    # --- dashboards: Grafana dashboard ConfigMap and PrometheusRule ---------------------------
    check_dashboards(c, values, rendered, docs)

    # --- NOTES.txt --------------------------------------------------------------------------
    notes = rendered["templates"].get("templates/NOTES.txt", "")
    c.check("port-forward svc/" in notes, "NOTES: kubectl port-forward")
    flags = "-plaintext"
    if tls["existingSecret"]:
        flags = f"-cacert ca.crt -servername {dig(dep, 'metadata', 'name')}."
        c.check("-plaintext" not in notes, "TLS: NOTES never suggest -plaintext")
        c.check(("-cert and -key" in notes) == bool(tls["clientCaSecret"]), "TLS: NOTES mention client certificates exactly when a client CA is set")
    c.check(re.search(re.escape(flags) + r'\S* -H "authorization: Bearer \$TOKEN" localhost:50051 list', notes) is not None,
            f"NOTES: grpcurl {flags}... list with a bearer token")
    c.check(re.search(re.escape(flags) + r"\S* localhost:50051 grpc.health.v1.Health/Check", notes) is not None,
            f"NOTES: grpcurl {flags}... health check")


def check_tls(c: Checker, values: dict, pod: dict, srv: dict, env: dict) -> None:
    """TLS on the gRPC port: the Secrets mounted read-only as directories (a subPath mount never
    sees a renewal) and WARDEN_TLS_* naming their files; nothing of it when tls is off."""
    tls = values["tls"]
    mounts = {m["name"]: m for m in srv.get("volumeMounts") or []}
    vols = {v["name"]: v for v in pod.get("volumes") or []}
    val = lambda name: dig(env, name, "value")  # noqa: E731
    if not tls["existingSecret"]:
        c.check(not any(k.startswith("WARDEN_TLS_") for k in env) and "tls" not in vols and "client-ca" not in vols,
                "TLS off: no WARDEN_TLS_* and no TLS volumes")
        return
    cert_dir = tls["mountPath"].rstrip("/")
    c.check(dig(vols, "tls", "secret", "secretName") == tls["existingSecret"], f"TLS: Secret {tls['existingSecret']} is a volume", str(vols.get("tls")))
    c.check(dig(mounts, "tls", "mountPath") == tls["mountPath"] and dig(mounts, "tls", "readOnly") is True and "subPath" not in mounts.get("tls", {}),
            "TLS: mounted read-only as a directory (renewals reach the pod)", str(mounts.get("tls")))
    c.check(val("WARDEN_TLS_CERT_FILE") == f"{cert_dir}/tls.crt" and val("WARDEN_TLS_KEY_FILE") == f"{cert_dir}/tls.key",
            "TLS: WARDEN_TLS_CERT_FILE / WARDEN_TLS_KEY_FILE name tls.crt and tls.key",
            f"{val('WARDEN_TLS_CERT_FILE')!r}, {val('WARDEN_TLS_KEY_FILE')!r}")
    if tls["clientCaSecret"]:
        ca_dir = tls["clientCaMountPath"].rstrip("/")
        c.check(dig(vols, "client-ca", "secret", "secretName") == tls["clientCaSecret"], f"mTLS: Secret {tls['clientCaSecret']} is a volume")
        c.check(dig(mounts, "client-ca", "mountPath") == tls["clientCaMountPath"] and dig(mounts, "client-ca", "readOnly") is True
                and "subPath" not in mounts.get("client-ca", {}), "mTLS: client CA mounted read-only as a directory")
        c.check(val("WARDEN_TLS_CLIENT_CA_FILE") == f"{ca_dir}/ca.crt", "mTLS: WARDEN_TLS_CLIENT_CA_FILE names ca.crt", repr(val("WARDEN_TLS_CLIENT_CA_FILE")))
    else:
        c.check("WARDEN_TLS_CLIENT_CA_FILE" not in env and "client-ca" not in vols, "no client CA: no WARDEN_TLS_CLIENT_CA_FILE, no volume")


def check_dashboards(c: Checker, values: dict, rendered: dict, docs: list[dict]) -> None:
    dv = values["dashboards"]
    cms = of_kind(docs, "ConfigMap")
    rules = of_kind(docs, "PrometheusRule")
    notes = rendered["templates"].get("templates/NOTES.txt", "")
    if not dv["enabled"]:
        c.check(not cms and not rules, "dashboards.enabled false: no ConfigMap, no PrometheusRule",
                str([(d["kind"], dig(d, "metadata", "name")) for d in cms + rules]))
        for t in ("templates/dashboard-configmap.yaml", "templates/prometheusrule.yaml"):
            c.check(not rendered["templates"].get(t, "").strip(), f"{t} renders nothing when dashboards are off")
        c.check("Dashboard:" not in notes, "NOTES: no dashboard lines when dashboards are off")
        return
    release_ns = dig(of_kind(docs, "Deployment"), 0, "metadata", "namespace")  # None in lint mode

    if c.check(len(cms) == 1, "dashboards.enabled: one dashboard ConfigMap", f"got {len(cms)}"):
        cm = cms[0]
        labels = dig(cm, "metadata", "labels", default={}) or {}
        want = {k: v for k, v in (dv["grafana"]["labels"] or {}).items()}
        c.check(all(labels.get(k) == v for k, v in want.items()), f"ConfigMap carries the Grafana sidecar labels {want}", str(labels))
        if "grafana_dashboard" in want:
            c.check(labels.get("grafana_dashboard") == "1", 'ConfigMap label grafana_dashboard: "1" (string)', repr(labels.get("grafana_dashboard")))
        else:
            c.check("grafana_dashboard" not in labels, "ConfigMap without the grafana_dashboard label set to null", str(labels))
        for k, v in (dv["grafana"]["annotations"] or {}).items():
            c.check(dig(cm, "metadata", "annotations", k) == v, f"ConfigMap annotation {k}={v}")
        c.check(dig(cm, "metadata", "namespace") == (dv["grafana"]["namespace"] or release_ns),
                f"ConfigMap namespace {dv['grafana']['namespace'] or '(the release namespace)'}", repr(dig(cm, "metadata", "namespace")))
        data = cm.get("data") or {}
        c.check(list(data) == ["warden-dashboard.json"], "ConfigMap holds one file, warden-dashboard.json", str(list(data)))
        try:
            dashboard = json.loads(data.get("warden-dashboard.json", ""))
        except json.JSONDecodeError as e:
            c.check(False, "ConfigMap's warden-dashboard.json is valid JSON", str(e))
        else:
            c.check(dashboard == json.loads(DASHBOARD.read_text()),
                    "ConfigMap's dashboard equals deploy/grafana/warden-dashboard.json")
            c.check(data["warden-dashboard.json"].strip() == DASHBOARD.read_text().strip(),
                    "ConfigMap's dashboard is the file's text, unchanged")

    if not dv["prometheusRule"]["enabled"]:
        c.check(not rules, "dashboards.prometheusRule.enabled false: no PrometheusRule")
        c.check("PrometheusRule" not in notes, "NOTES: no PrometheusRule line")
    elif c.check(len(rules) == 1, "dashboards.enabled: one PrometheusRule", f"got {len(rules)}"):
        pr = rules[0]
        c.check(pr.get("apiVersion") == "monitoring.coreos.com/v1", "PrometheusRule monitoring.coreos.com/v1")
        want_groups = hl.load_yaml(ALERTS)["groups"]
        c.check(dig(pr, "spec", "groups") == want_groups, "PrometheusRule spec.groups equal deploy/prometheus/warden-alerts.yaml's groups")
        alerts = [r.get("alert") for g in dig(pr, "spec", "groups", default=[]) or [] for r in g.get("rules") or []]
        c.check(len(alerts) >= 5 and all(alerts), f"PrometheusRule has the alerts ({len(alerts)})", str(alerts))
        for k, v in dv["prometheusRule"]["labels"].items():
            c.check(dig(pr, "metadata", "labels", k) == v, f"PrometheusRule label {k}={v}")
        c.check(dig(pr, "metadata", "namespace") == (dv["prometheusRule"]["namespace"] or release_ns),
                f"PrometheusRule namespace {dv['prometheusRule']['namespace'] or '(the release namespace)'}")
        c.check("PrometheusRule" in notes, "NOTES: names the PrometheusRule")
    c.check("Dashboard: the ConfigMap" in notes and "warden-overview" in notes, "NOTES: names the dashboard ConfigMap")


def merged_values(values_file: Path | None, overrides: dict | None = None) -> dict:
    values = hl.load_yaml(hl.CHART / "values.yaml")
    if values_file is not None:
        values = hl.coalesce(values, hl.load_yaml(values_file))
    if overrides:
        values = hl.coalesce(values, overrides)
    return values


def main() -> int:
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(line_buffering=True)
    helm = hl.Helm()
    print(f"Helm engine: {helm.version}")
    c = Checker()
    good = {"database": {"url": "postgres://warden:pw@postgres:5432/warden"},
            "auth": {"issuer": "https://issuer.example", "audience": "warden", "hs256Secret": "0123456789abcdef0123456789abcdef"}}
    cases = [
        ("default values", None, None, False),
        ("-f ci-values.yaml", hl.CI_VALUES, None, True),
        ("default values + database/issuer/audience/hs256 set", None, good, True),
        ("no preStop pause, 45s drain, no PDB, no migration Job", None,
         {**good, "preStopSleepSeconds": 0, "shutdownGraceSeconds": 45, "pdb": {"enabled": False}, "migration": {"enabled": False}}, True),
        ("TLS from a cert-manager Secret, no client CA, headless Service", None,
         {**good, "tls": {"existingSecret": "warden-grpc-tls"}, "service": {"headless": True}}, True),
        ("63-character fullnameOverride, headless Service, dashboards", None,
         {**good, "fullnameOverride": "w" * 63, "service": {"headless": True}, "dashboards": {"enabled": True}}, True),
        ("dashboards in other namespaces, default sidecar label dropped, no PrometheusRule", None,
         {**good, "dashboards": {"enabled": True,
                                 "grafana": {"namespace": "monitoring", "labels": {"grafana_dashboard": None, "dashboards": "warden"},
                                             "annotations": {"grafana_folder": "Warden"}},
                                 "prometheusRule": {"enabled": False, "namespace": "monitoring"}}}, True),
    ]
    for label, values_file, overrides, clean in cases:
        rendered = hl.render(helm, hl.CHART, values_file, overrides)
        check_render(c, label, merged_values(values_file, overrides), rendered, clean)

    # The engine must refuse values that values.schema.json or the chart's own checks reject.
    c.start("invalid values are rejected")
    bad_values = [
        ("top-level typo `replicaCont`", {"replicaCont": 3}),
        ("nested typo `autoscaling.enabeld`", {"autoscaling": {"enabeld": True}}),
        ("replicaCount as a string", {"replicaCount": "two"}),
        ("log format `xml`", {"logging": {"format": "xml"}}),
        ("negative preStopSleepSeconds", {"preStopSleepSeconds": -1}),
        ("unknown database scheme", {"database": {"url": "mysql://x"}}),
        ("HS256 secret shorter than 32 bytes", {"auth": {"hs256Secret": "short"}}),
        ("malformed bootstrap admin", {"bootstrapAdmins": ["a,b"]}),
        ("nested typo `dashboards.enable`", {"dashboards": {"enable": True}}),
        ("nested typo `dashboards.prometheusRule.label`", {"dashboards": {"prometheusRule": {"label": {}}}}),
        ("non-string Grafana sidecar label value", {"dashboards": {"grafana": {"labels": {"grafana_dashboard": 1}}}}),
        ("dashboards.enabled as a string", {"dashboards": {"enabled": "yes"}}),
        ("nested typo `tls.existingSecrets`", {"tls": {"existingSecrets": "x"}}),
        ("a relative tls.mountPath", {"tls": {"mountPath": "tls"}}),
    ]
    for label, overrides in bad_values:
        with tempfile.TemporaryDirectory(prefix="warden-bad-") as tmp:
            result = helm.lint(hl.chart_with_values(hl.CHART, None, Path(tmp), overrides))
        errs = [m for m in result.get("Messages") or [] if m.get("Severity") == 3 and m.get("Path") == "values.yaml"]
        c.check(bool(errs), f"helm lint rejects {label}")
    bad_combos = [
        ("both pdb.minAvailable and pdb.maxUnavailable", {**good, "pdb": {"maxUnavailable": 1}}, "set only one"),
        ("public keys Secret without files", {**good, "auth": {**good["auth"], "publicKeys": {"existingSecret": "k"}}}, "publicKeys.files"),
        ("no database URL and no existingSecret", {"auth": good["auth"]}, "database.url is required"),
        ("no token key at all", {"database": good["database"], "auth": {"issuer": "i", "audience": "a"}}, "no token key configured"),
        ("no issuer", {"database": good["database"], "auth": {"audience": "a"}}, "auth.issuer is required"),
        ("a client CA without TLS", {**good, "tls": {"clientCaSecret": "bundle"}}, "tls.clientCaSecret needs tls.existingSecret"),
    ]
    for label, overrides, needle in bad_combos:
        rendered = hl.render(helm, hl.CHART, None, overrides)
        c.check(any(needle in m for m in rendered["messages"]), f"install would stop on {label}", "; ".join(rendered["messages"]) or "no message")

    c.end()
    print()
    if c.failed:
        print(f"helm check FAILED: {len(c.failed)} of {c.passed + len(c.failed)} assertions failed:")
        for f in c.failed:
            print(f"  - {f}")
        return 1
    print(f"helm check OK: all {c.passed} assertions hold")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except hl.EngineError as e:
        print(f"helm check FAILED: {e}")
        sys.exit(1)
