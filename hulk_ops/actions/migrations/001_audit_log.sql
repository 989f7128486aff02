-- The audit log: one row per event of a request (dry_run, refused, pending_approval, approved,
-- rejected, started, succeeded, failed, replayed). Rows are never changed: outcomes are appended.
CREATE TABLE audit_log (
    id              bigserial PRIMARY KEY,
    at              timestamptz NOT NULL DEFAULT clock_timestamp(),
    request_id      text NOT NULL,
    username        text NOT NULL,
    roles           text[] NOT NULL DEFAULT '{}',
    via             text NOT NULL DEFAULT 'cli',
    action          text NOT NULL,
    target          text NOT NULL,
    object          text NOT NULL,
    params          jsonb NOT NULL,
    dry_run         jsonb,
    before          jsonb,
    after           jsonb,
    outcome         text NOT NULL CHECK (outcome IN ('dry_run', 'refused', 'pending_approval', 'approved',
                                                    'rejected', 'started', 'succeeded', 'failed', 'replayed')),
    error           text,
    idempotency_key text,
    approver        text,
    expires_at      timestamptz
);
CREATE INDEX audit_log_request ON audit_log (request_id);
CREATE INDEX audit_log_at ON audit_log (at DESC);
CREATE INDEX audit_log_pending ON audit_log (outcome) WHERE outcome = 'pending_approval';

-- Append-only, enforced here rather than trusted to the application.
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % is not allowed', TG_OP USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER audit_log_no_update_delete BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();

-- Idempotency keys: one execution per key. The row is claimed (state running) in the same
-- transaction as the audit row 'started', and finished with the stored result.
CREATE TABLE idempotency_keys (
    key          text PRIMARY KEY,
    fingerprint  text NOT NULL,
    request_id   text NOT NULL,
    state        text NOT NULL CHECK (state IN ('running', 'done')),
    result       jsonb,
    created_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    finished_at  timestamptz
);
