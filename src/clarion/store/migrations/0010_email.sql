-- Email campaigns: a campaign goes by SMS, email, or both (each subscriber on each channel
-- they consented to); one message per campaign, subscriber and channel.
ALTER TABLE campaigns DROP CONSTRAINT IF EXISTS campaigns_channel_check;
ALTER TABLE campaigns ADD CONSTRAINT campaigns_channel_check
    CHECK (channel IN ('sms', 'email', 'both'));
ALTER TABLE campaigns ADD COLUMN subject text;       -- email subject (a template)
ALTER TABLE campaigns ADD COLUMN email_body text;    -- email text (a template; NULL: body)
ALTER TABLE brands ADD COLUMN email_from text;       -- From of the brand's email

DROP INDEX messages_campaign_subscriber;
CREATE UNIQUE INDEX messages_campaign_subscriber ON messages (campaign_id, subscriber_id, channel)
    WHERE campaign_id IS NOT NULL;
