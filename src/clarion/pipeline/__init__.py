"""The six stages' pure cores: a batch in, a batch out, no I/O."""
