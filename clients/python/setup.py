"""Generates warden_client/_gen from ../../proto before the package is built (see generate.py)."""
import os
import sys

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import generate  # noqa: E402


class BuildPyWithStubs(build_py):
    def run(self):
        if os.path.isdir(generate.DEFAULT_PROTO_ROOT):
            generate.generate()
        elif not os.path.isdir(generate.OUT):
            raise SystemExit(f"no protos at {generate.DEFAULT_PROTO_ROOT} and no generated stubs: "
                             "build from a checkout of the Warden repository")
        super().run()


setup(cmdclass={"build_py": BuildPyWithStubs})
