-- Console sessions that were logged out before their cookie expired: a copied cookie of an ended
-- session is refused (api/web/console/session.py).  Rows go once the cookie would have expired.
CREATE TABLE console_logouts (
    session_id text PRIMARY KEY,
    expires_at timestamptz NOT NULL
);
CREATE INDEX console_logouts_expires ON console_logouts (expires_at);
