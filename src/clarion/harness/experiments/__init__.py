"""`clarion experiment sto|recs|ab`: each of the intelligence features measured end to end
against the simulator's world (`clarion.sim.world`), whose truth Clarion never reads. Each
prints one JSON object as its last line: `lift`, `ci_low`, `ci_high`, `baseline`,
`treatment`, `n`, and figures of its own."""
