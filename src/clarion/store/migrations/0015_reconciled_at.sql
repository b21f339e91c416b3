-- When reconciliation last asked a provider about a message still without a final status.
-- It takes the messages that have waited longest since their last change or question, so a
-- message the provider keeps calling `sent` (or one no provider can be asked about) goes to
-- the back of the line instead of being taken again every run ahead of all the others.
-- Nullable without a default: adding it rewrites nothing, and the COPY of new messages does
-- not name it.
ALTER TABLE messages ADD COLUMN reconciled_at timestamptz;
