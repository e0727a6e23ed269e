"""The compute core behind the gRPC service: validation, Arrow adaptor, handlers."""
