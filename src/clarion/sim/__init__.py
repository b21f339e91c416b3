"""A carrier network in a box: `clarion sim` (see DESIGN.md, "The simulator")."""
