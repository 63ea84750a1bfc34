#!/usr/bin/env python3
"""Generates the Python stubs for proto/warden/v1/*.proto into warden_client/_gen/.

    python generate.py [--proto-root DIR]

The stubs are never committed: this runs before every build (setup.py calls it) and in CI, so
they cannot drift from the protos. The output is replaced whole on each run.

Only warden/v1 is compiled. The googleapis files it imports (`google/api/annotations.proto`, the
HTTP rules) are read from third_party/googleapis but not compiled: the stubs import them from
googleapis-common-protos, which this package depends on (for the error details too), so no
second copy is registered in protobuf's global descriptor pool.
"""
import argparse
import os
import re
import shutil
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_PROTO_ROOT = os.path.normpath(os.path.join(HERE, "..", "..", "proto"))
GOOGLEAPIS = os.path.normpath(os.path.join(HERE, "..", "..", "third_party", "googleapis"))
OUT = os.path.join(HERE, "warden_client", "_gen")
PACKAGE = "warden_client._gen"

# protoc writes absolute imports (`from warden.v1 import common_pb2`), which would need the
# output directory on sys.path and would claim the top-level name `warden`; they are rewritten
# to point inside this package, as is the module name the messages' classes are given.
_REWRITES = [
    (re.compile(r"^(from|import) warden\.v1\b", re.MULTILINE), rf"\1 {PACKAGE}.warden.v1"),
    (re.compile(r"'warden\.v1\.(\w+_pb2)'"), rf"'{PACKAGE}.warden.v1.\1'"),
]


def generate(proto_root=DEFAULT_PROTO_ROOT, out=OUT):
    from grpc_tools import protoc  # a build-time dependency only
    import grpc_tools

    src = os.path.join(proto_root, "warden", "v1")
    protos = sorted(os.path.join("warden", "v1", f) for f in os.listdir(src) if f.endswith(".proto"))
    if not protos:
        raise SystemExit(f"generate: no .proto files in {src}")
    # google/protobuf/*.proto (timestamp, duration, struct) ship inside grpc_tools.
    well_known = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")

    # Generated into a scratch directory and moved into place, so a failed run leaves the
    # previous stubs intact rather than half of new ones.
    tmp = tempfile.mkdtemp(prefix=".gen-", dir=os.path.dirname(out))
    os.chmod(tmp, 0o755)  # mkdtemp makes it 0700
    try:
        rc = protoc.main([
            "grpc_tools.protoc", f"-I{proto_root}", f"-I{GOOGLEAPIS}", f"-I{well_known}",
            f"--python_out={tmp}", f"--pyi_out={tmp}", f"--grpc_python_out={tmp}", *protos,
        ])
        if rc != 0:
            raise SystemExit(f"generate: protoc failed with status {rc}")
        for dirpath, _, files in os.walk(tmp):
            open(os.path.join(dirpath, "__init__.py"), "a").close()
            for name in files:
                if name.endswith((".py", ".pyi")):
                    path = os.path.join(dirpath, name)
                    with open(path) as f:
                        text = f.read()
                    for pattern, replacement in _REWRITES:
                        text = pattern.sub(replacement, text)
                    with open(path, "w") as f:
                        f.write(text)
        shutil.rmtree(out, ignore_errors=True)
        os.rename(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return [os.path.basename(p) for p in protos]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--proto-root", default=DEFAULT_PROTO_ROOT, help="default: %(default)s")
    args = parser.parse_args(argv)
    protos = generate(os.path.abspath(args.proto_root))
    print(f"generate: {len(protos)} protos -> {os.path.relpath(OUT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
