-- Chain of custody (issue 10): who submitted each record, through which route
-- ({"role", "name", "route", "holder_id"?, "markets"?}; NULL for records bulk-loaded before this).
-- Held records keep their submitter too: custody is checked when their parents arrive.
ALTER TABLE certificates ADD COLUMN submitter jsonb;
ALTER TABLE certificate_held ADD COLUMN submitter jsonb;
-- The review of records held too long, and GET /v1/certificates?state=held, read oldest first.
CREATE INDEX certificate_held_since ON certificate_held (held_at, certificate_no);
