"""Records, ids and state machines. Imports nothing but the standard library and msgspec."""
