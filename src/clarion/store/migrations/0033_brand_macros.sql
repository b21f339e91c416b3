-- A brand's global macros: its own values (a discount code, the shop's address) that every
-- campaign's templates read as `{{ brand.NAME }}`, beside the brand's name, help text and
-- sender.
ALTER TABLE brands ADD COLUMN macros jsonb NOT NULL DEFAULT '{}';
