-- A message row (about 310 bytes) is written once and then updated one to two more times
-- (the answer and the receipts folded together, or apart). At fillfactor 70 a page had room
-- for less than half of those new versions, and dead ones cannot be pruned while concurrent
-- transactions may still see them: almost half the updates left the page and paid an
-- insert into every index (BENCHMARKS.md, issue 6). At 40 a page keeps room for them.
-- Pages written from now on take it; existing ones keep theirs.
ALTER TABLE messages SET (fillfactor = 40);
