"""The CSI gRPC entrypoint: Identity, Controller and Node services."""
