-- svcwatch store, version 3: how a finding left the outbox. Both a message
-- Slack accepted and a finding below slack.min_severity leave it; only this
-- column tells an audit which one happened.

ALTER TABLE findings ADD COLUMN outcome TEXT; -- 'sent' | 'skipped'; NULL: queued, suppressed, or left the outbox before version 3
