"""Compiles kfops/serving/open_inference.proto into kfops/serving/open_inference_desc.py.

The module holds the serialized FileDescriptorProto; kfops.serving.grpc_server builds its
message classes from it in a private descriptor pool, so the server never collides with a
client (tritonclient.grpc) that defines the same `inference.*` messages in the default pool.
Needs grpcio-tools (the dev extra); the server itself needs only grpcio and protobuf.

    python scripts/grpc_descriptor.py          # regenerate (make grpc-descriptor)
    python scripts/grpc_descriptor.py --check  # exit 1 if the committed module is stale
"""

import base64
import sys
import tempfile
from pathlib import Path

from google.protobuf import descriptor_pb2
from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO = ROOT / "kfops" / "serving" / "open_inference.proto"
MODULE = ROOT / "kfops" / "serving" / "open_inference_desc.py"
HEADER = '''"""GENERATED from open_inference.proto by scripts/grpc_descriptor.py: do not edit.

The serialized FileDescriptorProto of the Open Inference Protocol's gRPC service, base64.
"""

FILE_DESCRIPTOR_BASE64 = (
'''


def render() -> str:
    """The module text for the current .proto."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "set.pb"
        args = ["protoc", f"-I{PROTO.parent}", f"--descriptor_set_out={out}", PROTO.name]
        if protoc.main(args) != 0:
            raise SystemExit(f"protoc failed on {PROTO}")
        (file_proto,) = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes()).file
    data = base64.b64encode(file_proto.SerializeToString(deterministic=True)).decode()
    lines = [f'    "{data[i : i + 88]}"\n' for i in range(0, len(data), 88)]
    return HEADER + "".join(lines) + ")\n"


def main() -> int:
    """Writes (or with --check, compares) the generated module."""
    text = render()
    if "--check" in sys.argv[1:]:
        if MODULE.read_text() != text:
            print(f"{MODULE} is stale: run `make grpc-descriptor`", file=sys.stderr)
            return 1
        return 0
    MODULE.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
