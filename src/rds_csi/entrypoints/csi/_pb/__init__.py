"""Generated CSI v1.12.0 wire stubs (csi_pb2, csi_pb2_grpc) from our own csi.proto.

Do not edit the generated files; change csi.proto and run scripts/gen_proto.py.
"""
