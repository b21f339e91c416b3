-- A campaign's email may have an HTML part (a template, its fields escaped), beside its text.
ALTER TABLE campaigns ADD COLUMN email_html text;
