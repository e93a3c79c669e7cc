-- Webhooks in Concord's own event format are accepted only with the system's bearer secret
-- (named here, held in the OS keychain). Refusals are counted in `counters` (webhooks_refused).
ALTER TABLE systems ADD COLUMN webhook_secret TEXT;

