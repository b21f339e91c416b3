"""NATS JetStream: the bus between stages (streams, envelopes, the embedded server)."""
