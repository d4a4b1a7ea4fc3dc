"""Builds the package, compiling the agent protocol into it first.

The protocol lives in the repository's `proto/` directory, the one the
server is built from. A build from an unpacked source archive uses the
copy that `sdist` put beside this file.
"""

import os
import shutil

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist

HERE = os.path.dirname(os.path.abspath(__file__))
PROTO_FILE = os.path.join("longshore", "agent", "v1", "agent.proto")
CANDIDATES = [
    os.path.join(HERE, "..", "..", "proto"),  # in the repository
    os.path.join(HERE, "proto"),  # in a source archive
]


def proto_root():
    for root in CANDIDATES:
        if os.path.isfile(os.path.join(root, PROTO_FILE)):
            return os.path.normpath(root)
    raise RuntimeError(
        "the agent protocol (%s) is not found in %s" % (PROTO_FILE, " or ".join(CANDIDATES))
    )


class BuildWithProtocol(build_py):
    def run(self):
        from grpc_tools import protoc

        root = proto_root()
        out = os.path.join(self.build_lib, "longshore_agent", "_protocol")
        os.makedirs(out, exist_ok=True)
        # Compiled from the file's own directory, so that the module is
        # `agent_pb2` inside this package, whatever the proto's path.
        directory = os.path.join(root, os.path.dirname(PROTO_FILE))
        args = [
            "protoc",
            "-I" + directory,
            "--python_out=" + out,
            "--pyi_out=" + out,
            os.path.join(directory, "agent.proto"),
        ]
        if protoc.main(args) != 0:
            raise RuntimeError("grpc_tools.protoc failed on " + os.path.join(root, PROTO_FILE))
        with open(os.path.join(out, "__init__.py"), "w") as init:
            init.write('"""The agent protocol, compiled from agent.proto when the package was built."""\n')
        super().run()


class SdistWithProtocol(sdist):
    def make_release_tree(self, base_dir, files):
        super().make_release_tree(base_dir, files)
        target = os.path.join(base_dir, "proto", os.path.dirname(PROTO_FILE))
        os.makedirs(target, exist_ok=True)
        shutil.copy(os.path.join(proto_root(), PROTO_FILE), target)


setup(cmdclass={"build_py": BuildWithProtocol, "sdist": SdistWithProtocol})
