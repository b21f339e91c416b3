-- Reconciliation's floor: the hand-over time below which every message has been asked
-- about or has settled (migration 0016 and `store/messages.to_reconcile`). It was kept in
-- the elected sweeper's memory, so a newly elected one (a restart, a failover) read every
-- hand-over since the maximum age (three days) in one statement: on a busy install, more
-- rows than the statement's timeout lets it read, and then no run ever got through. Kept
-- here, a new sweeper goes on from where the last one stopped. One row; NULL until the
-- first run.
CREATE TABLE reconcile_floor (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    floor      timestamptz,
    updated_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO reconcile_floor (singleton) VALUES (true);
