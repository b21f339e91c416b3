"""Thin workers: pull a batch from the bus, call a stage, commit, publish, ack."""
