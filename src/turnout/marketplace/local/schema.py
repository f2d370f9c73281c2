"""The offline marketplace's SQLite schema (created if missing; see ``store.Store``)."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS hit_types (
    id TEXT PRIMARY KEY, group_id TEXT NOT NULL, fingerprint TEXT NOT NULL UNIQUE,
    title TEXT NOT NULL, description TEXT NOT NULL, keywords TEXT, reward TEXT NOT NULL,
    assignment_duration INTEGER NOT NULL, auto_approval_delay INTEGER NOT NULL,
    qualification_requirements TEXT NOT NULL, created_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS hits (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE,
    hit_type_id TEXT NOT NULL REFERENCES hit_types(id),
    question TEXT, external_url TEXT, hit_layout_id TEXT, requester_annotation TEXT,
    max_assignments INTEGER NOT NULL, masters INTEGER NOT NULL,
    created_ms INTEGER NOT NULL, expiration_ms INTEGER NOT NULL,
    review_status TEXT NOT NULL DEFAULT 'NotReviewed', reviewing INTEGER NOT NULL DEFAULT 0,
    deleted_ms INTEGER);
CREATE INDEX IF NOT EXISTS hits_type ON hits(hit_type_id);
CREATE INDEX IF NOT EXISTS hits_live_expiry ON hits(expiration_ms) WHERE deleted_ms IS NULL;
CREATE TABLE IF NOT EXISTS assignments (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE,
    hit_id TEXT NOT NULL REFERENCES hits(id), worker_id TEXT NOT NULL, status TEXT NOT NULL,
    accept_ms INTEGER NOT NULL, deadline_ms INTEGER NOT NULL, submit_ms INTEGER,
    auto_approval_ms INTEGER, approval_ms INTEGER, rejection_ms INTEGER,
    returned_ms INTEGER, abandoned_ms INTEGER, answer TEXT, requester_feedback TEXT);
CREATE INDEX IF NOT EXISTS assignments_hit ON assignments(hit_id, status);
CREATE INDEX IF NOT EXISTS assignments_due ON assignments(status, deadline_ms);
CREATE INDEX IF NOT EXISTS assignments_auto ON assignments(status, auto_approval_ms);
CREATE INDEX IF NOT EXISTS assignments_worker ON assignments(worker_id);
CREATE TABLE IF NOT EXISTS previews (
    hit_id TEXT NOT NULL, worker_id TEXT NOT NULL, until_ms INTEGER NOT NULL,
    PRIMARY KEY (hit_id, worker_id));
CREATE TABLE IF NOT EXISTS bonuses (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, worker_id TEXT NOT NULL, assignment_id TEXT NOT NULL,
    hit_id TEXT NOT NULL, amount TEXT NOT NULL, fee TEXT NOT NULL, reason TEXT NOT NULL,
    grant_ms INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS bonuses_hit ON bonuses(hit_id);
CREATE INDEX IF NOT EXISTS bonuses_assignment ON bonuses(assignment_id);
CREATE TABLE IF NOT EXISTS request_tokens (
    scope TEXT NOT NULL, token TEXT NOT NULL, created_ms INTEGER NOT NULL,
    result TEXT, request_id TEXT, PRIMARY KEY (scope, token));
CREATE TABLE IF NOT EXISTS qualification_types (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, name TEXT NOT NULL,
    description TEXT NOT NULL, keywords TEXT, status TEXT NOT NULL, retry_delay INTEGER,
    test TEXT, answer_key TEXT, test_duration INTEGER, auto_granted INTEGER NOT NULL DEFAULT 0,
    auto_granted_value INTEGER, created_ms INTEGER NOT NULL, deleted_ms INTEGER);
CREATE TABLE IF NOT EXISTS qualifications (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, qualification_type_id TEXT NOT NULL,
    worker_id TEXT NOT NULL, integer_value INTEGER, status TEXT NOT NULL,
    grant_ms INTEGER NOT NULL, UNIQUE (qualification_type_id, worker_id));
CREATE INDEX IF NOT EXISTS qualifications_worker ON qualifications(worker_id);
CREATE TABLE IF NOT EXISTS workers (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE,
    percent_approved INTEGER NOT NULL, number_approved INTEGER NOT NULL,
    country TEXT NOT NULL, subdivision TEXT, masters INTEGER NOT NULL, adult INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS ledger (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, ms INTEGER NOT NULL, kind TEXT NOT NULL,
    amount TEXT NOT NULL, fee TEXT NOT NULL, balance_after TEXT NOT NULL,
    assignment_id TEXT, hit_id TEXT, worker_id TEXT);
CREATE TABLE IF NOT EXISTS faults (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, operation TEXT NOT NULL, kind TEXT NOT NULL,
    remaining INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, ms INTEGER NOT NULL, event_type TEXT NOT NULL,
    hit_id TEXT, hit_type_id TEXT, assignment_id TEXT, worker_id TEXT);
CREATE TABLE IF NOT EXISTS worker_blocks (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, worker_id TEXT NOT NULL UNIQUE, reason TEXT NOT NULL,
    created_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS notifications (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, ms INTEGER NOT NULL, worker_id TEXT NOT NULL,
    subject TEXT NOT NULL, message TEXT NOT NULL);
"""
# Children before parents, so reset() satisfies the foreign keys.
TABLES = ("assignments", "previews", "bonuses", "hits", "hit_types", "request_tokens",
           "qualification_types", "qualifications", "workers", "ledger", "faults", "events",
           "notifications", "worker_blocks")

