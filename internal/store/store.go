// Package store keeps svcwatch's durable state in an embedded SQLite file
// (modernc.org/sqlite, no cgo): each host's state, every finding, the
// monitored host set, and the outbox of findings not yet accepted by Slack.
// A host's new state and its findings are written in one transaction, so a
// crash at any point loses nothing and re-processing cannot duplicate an alert.
package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/svcwatch/svcwatch/internal/inventory"
)

const (
	busyTimeout  = 10 * time.Second
	maxOpenConns = 4
	maxErrorText = 4096 // bytes of a delivery error kept in the outbox
	timeLayout   = time.RFC3339Nano
	// cutoffLayout formats a time bound for comparison with timeLayout
	// columns as text: "…T15:04:05" sorts before every stamp within that
	// second ("…05Z", "…05.5Z") and after every earlier one, so a bound is
	// exact to the second (stamps are always UTC).
	cutoffLayout = "2006-01-02T15:04:05"
)

// Store is the SQLite-backed state store. It is safe for concurrent use.
type Store struct {
	db   *sql.DB
	path string
	now  func() time.Time
	lock *os.File // held from Open to Close: one process per state file
	// readOnly: opened by OpenReadOnly (no lock, no checkpoint at Close).
	readOnly bool
	writeMu  sync.Mutex // one write transaction at a time (inTx)
}

// Outgoing is one outbox entry: a finding waiting for delivery.
type Outgoing struct {
	Seq      int64 // position in the outbox; delivery order
	Batch    int64 // findings enqueued by one Commit (one host, one cycle) share a Batch
	Finding  inventory.Finding
	Attempts int // failed delivery attempts so far
}

// Open opens (creating if needed, with mode 0600) the SQLite file at path and
// brings its schema up to date.
func Open(ctx context.Context, path string) (*Store, error) {
	if err := checkPath(path); err != nil {
		return nil, err
	}
	if err := prepareFile(path); err != nil {
		return nil, err
	}
	lock, err := lockState(path)
	if err != nil {
		return nil, err
	}
	// synchronous NORMAL: in WAL mode a commit survives the process being
	// killed at any point; only an OS crash or power loss can roll back the
	// last transactions, and since a host's state and its findings commit
	// together, a rolled-back poll is simply polled again (the watermark went
	// back with the findings): an alert may repeat, none is lost. FULL would
	// fsync every idle poll (5,000 hosts: ~80 fsyncs a second).
	dsn := path + "?_txlock=immediate" +
		"&_pragma=busy_timeout(" + fmt.Sprint(busyTimeout.Milliseconds()) + ")" +
		"&_pragma=journal_mode(WAL)" +
		"&_pragma=synchronous(NORMAL)" +
		"&_pragma=foreign_keys(1)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		unlockState(lock)
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	db.SetMaxOpenConns(maxOpenConns)
	s := &Store{db: db, path: path, now: time.Now, lock: lock}
	if err := s.init(ctx); err != nil {
		db.Close()
		unlockState(lock)
		return nil, err
	}
	return s, nil
}

// ErrNoState: OpenReadOnly found no file at the path.
var ErrNoState = errors.New("no state file")

// OpenReadOnly opens an existing state file to read it while the svcwatch
// process that owns it may be running (WAL lets both proceed): it takes no
// lock, never writes the database, and refuses a file at a schema version
// other than this build's, since it cannot upgrade it.
func OpenReadOnly(ctx context.Context, path string) (*Store, error) {
	if err := checkPath(path); err != nil {
		return nil, err
	}
	if _, err := os.Stat(path); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("store: no state file at %s; svcwatch has not polled with this configuration yet, or state.path points elsewhere: %w", path, ErrNoState)
		}
		return nil, fmt.Errorf("store: %w", err)
	}
	// mode=ro (honoured only in a file: URI) opens without write access, so
	// even closing the last connection cannot checkpoint the log into the
	// file; query_only refuses writes on top. No lock: WAL readers and the
	// one writer do not block each other.
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	uri := url.URL{Scheme: "file", Path: filepath.ToSlash(abs),
		RawQuery: "mode=ro&_pragma=busy_timeout(" + fmt.Sprint(busyTimeout.Milliseconds()) + ")&_pragma=query_only(1)"}
	if !strings.HasPrefix(uri.Path, "/") {
		uri.Path = "/" + uri.Path // file:///C:/... on Windows
	}
	db, err := sql.Open("sqlite", uri.String())
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	db.SetMaxOpenConns(maxOpenConns)
	s := &Store{db: db, path: path, now: time.Now, readOnly: true}
	ms, err := loadMigrations(migrationFS, "migrations")
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("store: %w", err)
	}
	var version int
	if err := db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&version); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: %s: %w; is it a state file written by svcwatch?", path, err)
	}
	switch {
	case version < len(ms):
		db.Close()
		return nil, fmt.Errorf("store: %s is at schema version %d, this svcwatch reads %d; restart the svcwatch service with this version (or run svcwatch once, if no daemon uses the file) to upgrade it first", path, version, len(ms))
	case version > len(ms):
		db.Close()
		return nil, fmt.Errorf("store: %s is at schema version %d but this svcwatch knows only %d; use the svcwatch that wrote it", path, version, len(ms))
	}
	return s, nil
}

// checkPath rejects paths SQLite would read as a URI or a memory database.
func checkPath(path string) error {
	if path == "" || strings.ContainsAny(path, "?#") || strings.HasPrefix(path, "file:") || path == ":memory:" {
		return fmt.Errorf("store: %q is not a usable file path; set state.path to a plain file path without '?' or '#'", path)
	}
	return nil
}

// prepareFile creates the database file with mode 0600, or narrows an
// existing file to 0600: it holds the inventory of every sensitive host.
// SQLite gives its -wal and -shm files the database file's mode.
func prepareFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("store: %w; create the directory, or set state.path to a writable location", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("store: %s is not a regular file; set state.path to a file", path)
	}
	if fi.Mode().Perm() != 0o600 {
		if err := f.Chmod(0o600); err != nil {
			return fmt.Errorf("store: narrowing %s to mode 0600: %w; fix its owner or permissions", path, err)
		}
	}
	return nil
}

func (s *Store) init(ctx context.Context) error {
	var mode string
	if err := s.db.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil {
		return fmt.Errorf("store: %s: %w; is it an SQLite file written by svcwatch?", s.path, err)
	}
	if !strings.EqualFold(mode, "wal") {
		return fmt.Errorf("store: %s: journal mode is %q, not WAL; is the file on a filesystem that supports WAL (not a network share)?", s.path, mode)
	}
	ms, err := loadMigrations(migrationFS, "migrations")
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	if err := migrate(ctx, s.db, ms, s.stamp); err != nil {
		return fmt.Errorf("store: %s: %w", s.path, err)
	}
	return nil
}

// Close checkpoints the write-ahead log and closes the database.
func (s *Store) Close() error {
	if !s.readOnly {
		// Best effort: folding the WAL back keeps the file self-contained for backups.
		_, _ = s.db.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`)
	}
	err := s.db.Close()
	unlockState(s.lock)
	s.lock = nil
	if err != nil {
		return fmt.Errorf("store: close %s: %w", s.path, err)
	}
	return nil
}

func (s *Store) stamp() string { return s.now().UTC().Format(timeLayout) }

// State returns the stored state of host, inventory included, or the zero
// State and a nil error when the host has never been committed.
func (s *Store) State(ctx context.Context, host string) (inventory.State, error) {
	var head, svcs string
	if found, err := s.hostRow(ctx, host, "state, services", &head, &svcs); err != nil || !found {
		return inventory.State{}, err
	}
	st, err := decodeHead(host, head)
	if err != nil {
		return inventory.State{}, err
	}
	st.Services, err = decodeServices(host, svcs)
	return st, err
}

// Head returns the stored state of host without its service inventory
// (Services is nil): all a poll needs when the host reports its inventory
// unchanged and no new events. Unknown hosts give the zero State.
func (s *Store) Head(ctx context.Context, host string) (inventory.State, error) {
	var head string
	if found, err := s.hostRow(ctx, host, "state", &head); err != nil || !found {
		return inventory.State{}, err
	}
	return decodeHead(host, head)
}

// Services returns the stored service inventory of host (nil for a host
// never committed).
func (s *Store) Services(ctx context.Context, host string) ([]inventory.Service, error) {
	var svcs string
	if found, err := s.hostRow(ctx, host, "services", &svcs); err != nil || !found {
		return nil, err
	}
	return decodeServices(host, svcs)
}

// hostRow scans columns (a fixed list, never input) of host's state row
// into dest; found is false for a host never committed.
func (s *Store) hostRow(ctx context.Context, host, columns string, dest ...any) (found bool, err error) {
	err = s.db.QueryRowContext(ctx, `SELECT `+columns+` FROM host_state WHERE host = ?`, host).Scan(dest...)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("store: state of %s: %w", host, err)
	}
	return true, nil
}

func decodeHead(host, raw string) (inventory.State, error) {
	var st inventory.State
	if err := json.Unmarshal([]byte(raw), &st); err != nil {
		return inventory.State{}, fmt.Errorf("store: state of %s is corrupt: %w; remove the host's row to re-baseline it", host, err)
	}
	st.Services = nil // the column holds the inventory
	return st, nil
}

func decodeServices(host, raw string) ([]inventory.Service, error) {
	var svcs []inventory.Service
	if err := json.Unmarshal([]byte(raw), &svcs); err != nil {
		return nil, fmt.Errorf("store: inventory of %s is corrupt: %w; remove the host's row to re-baseline it", host, err)
	}
	return svcs, nil
}

// Commit stores a host's new state, inventory included, and its findings in
// one transaction: the state is upserted, findings are inserted unless their
// ID is already stored, and each newly inserted, unsuppressed finding is
// enqueued in the outbox under one new batch. On error nothing is written.
func (s *Store) Commit(ctx context.Context, st inventory.State, fs []inventory.Finding) error {
	return s.commit(ctx, st, fs, true)
}

// CommitHead is Commit that leaves the stored inventory as it is and ignores
// st.Services: for a poll that did not load or change the inventory.
func (s *Store) CommitHead(ctx context.Context, st inventory.State, fs []inventory.Finding) error {
	return s.commit(ctx, st, fs, false)
}

func (s *Store) commit(ctx context.Context, st inventory.State, fs []inventory.Finding, withServices bool) error {
	if st.Host == "" {
		return errors.New("store: commit: state has no host name")
	}
	svcs := st.Services
	st.Services = nil
	head, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("store: commit %s: encoding state: %w", st.Host, err)
	}
	var svcJSON []byte
	if withServices {
		if svcJSON, err = json.Marshal(svcs); err != nil {
			return fmt.Errorf("store: commit %s: encoding inventory: %w", st.Host, err)
		}
	}
	return s.inTx(ctx, "commit "+st.Host, func(tx *sql.Tx, now string) error {
		var err error
		if withServices {
			_, err = tx.ExecContext(ctx, `INSERT INTO host_state (host, state, services, updated) VALUES (?, ?, ?, ?)
				ON CONFLICT (host) DO UPDATE SET state = excluded.state, services = excluded.services, updated = excluded.updated`,
				st.Host, string(head), string(svcJSON), now)
		} else {
			// A new host's row gets the 'null' inventory default.
			_, err = tx.ExecContext(ctx, `INSERT INTO host_state (host, state, updated) VALUES (?, ?, ?)
				ON CONFLICT (host) DO UPDATE SET state = excluded.state, updated = excluded.updated`,
				st.Host, string(head), now)
		}
		if err != nil {
			return fmt.Errorf("saving state: %w", err)
		}
		return insertFindings(ctx, tx, now, fs)
	})
}

// Hosts returns the monitored host set saved by SaveHosts, ordered by name.
func (s *Store) Hosts(ctx context.Context) ([]inventory.Host, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT host FROM hosts ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("store: hosts: %w", err)
	}
	defer rows.Close()
	var hosts []inventory.Host
	for rows.Next() {
		var raw string
		if err := rows.Scan(&raw); err != nil {
			return nil, fmt.Errorf("store: hosts: %w", err)
		}
		var h inventory.Host
		if err := json.Unmarshal([]byte(raw), &h); err != nil {
			return nil, fmt.Errorf("store: hosts: corrupt entry: %w", err)
		}
		hosts = append(hosts, h)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: hosts: %w", err)
	}
	return hosts, nil
}

// SaveHosts replaces the monitored host set and stores its scope findings
// (enqueued like Commit's), in one transaction.
func (s *Store) SaveHosts(ctx context.Context, hosts []inventory.Host, fs []inventory.Finding) error {
	return s.inTx(ctx, "save hosts", func(tx *sql.Tx, now string) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM hosts`); err != nil {
			return err
		}
		for _, h := range hosts {
			if h.Name == "" {
				return errors.New("a host has no name")
			}
			raw, err := json.Marshal(h)
			if err != nil {
				return fmt.Errorf("encoding host %s: %w", h.Name, err)
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO hosts (name, host) VALUES (?, ?)
				ON CONFLICT (name) DO UPDATE SET host = excluded.host`, h.Name, string(raw)); err != nil {
				return fmt.Errorf("saving host %s: %w", h.Name, err)
			}
		}
		return insertFindings(ctx, tx, now, fs)
	})
}

// insertFindings inserts fs (ignoring IDs already stored) and enqueues the
// newly inserted, unsuppressed ones under one batch created on first need.
func insertFindings(ctx context.Context, tx *sql.Tx, now string, fs []inventory.Finding) error {
	var batch int64
	for i := range fs {
		f := &fs[i]
		if f.ID == "" {
			return fmt.Errorf("finding %d (%s on %s) has no ID", i, f.Kind, f.Host.Name)
		}
		raw, err := json.Marshal(f)
		if err != nil {
			return fmt.Errorf("encoding finding %s: %w", f.ID, err)
		}
		res, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO findings
			(id, host, kind, severity, suppressed, at, created, finding) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			f.ID, f.Host.Name, string(f.Kind), int(f.Severity), f.Suppressed, f.At.UTC().Format(timeLayout), now, string(raw))
		if err != nil {
			return fmt.Errorf("saving finding %s: %w", f.ID, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("saving finding %s: %w", f.ID, err)
		}
		if n == 0 || f.Suppressed {
			continue // already stored (and enqueued then), or not to be sent
		}
		if batch == 0 {
			res, err := tx.ExecContext(ctx, `INSERT INTO batches (created) VALUES (?)`, now)
			if err != nil {
				return fmt.Errorf("creating batch: %w", err)
			}
			if batch, err = res.LastInsertId(); err != nil {
				return fmt.Errorf("creating batch: %w", err)
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO outbox (batch, finding_id, enqueued) VALUES (?, ?, ?)`,
			batch, f.ID, now); err != nil {
			return fmt.Errorf("enqueueing finding %s: %w", f.ID, err)
		}
	}
	return nil
}

// Pending returns up to limit outbox entries (all when limit <= 0), oldest first.
func (s *Store) Pending(ctx context.Context, limit int) ([]Outgoing, error) {
	if limit <= 0 {
		limit = -1 // SQLite: no limit
	}
	rows, err := s.db.QueryContext(ctx, `SELECT o.seq, o.batch, o.attempts, f.finding
		FROM outbox o JOIN findings f ON f.id = o.finding_id
		ORDER BY o.seq LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("store: pending: %w", err)
	}
	defer rows.Close()
	var out []Outgoing
	for rows.Next() {
		var o Outgoing
		var raw string
		if err := rows.Scan(&o.Seq, &o.Batch, &o.Attempts, &raw); err != nil {
			return nil, fmt.Errorf("store: pending: %w", err)
		}
		if err := json.Unmarshal([]byte(raw), &o.Finding); err != nil {
			return nil, fmt.Errorf("store: pending: outbox entry %d is corrupt: %w", o.Seq, err)
		}
		out = append(out, o)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: pending: %w", err)
	}
	return out, nil
}

// Delivered removes the entries from the outbox and records that Slack
// accepted their findings, in one transaction. Sequences not in the outbox
// are ignored.
func (s *Store) Delivered(ctx context.Context, seqs ...int64) error {
	return s.leaveOutbox(ctx, OutcomeSent, seqs)
}

// Skipped removes the entries from the outbox and records that their
// findings were not sent (below slack.min_severity), in one transaction.
func (s *Store) Skipped(ctx context.Context, seqs ...int64) error {
	return s.leaveOutbox(ctx, OutcomeSkipped, seqs)
}

// How a finding left the outbox (Record.Outcome).
const (
	OutcomeSent    = "sent"
	OutcomeSkipped = "skipped"
)

func (s *Store) leaveOutbox(ctx context.Context, outcome string, seqs []int64) error {
	if len(seqs) == 0 {
		return nil
	}
	return s.inTx(ctx, "mark "+outcome, func(tx *sql.Tx, now string) error {
		for _, seq := range seqs {
			if _, err := tx.ExecContext(ctx, `UPDATE findings SET delivered = ?, outcome = ?
				WHERE id = (SELECT finding_id FROM outbox WHERE seq = ?)`, now, outcome, seq); err != nil {
				return fmt.Errorf("marking %d %s: %w", seq, outcome, err)
			}
			if _, err := tx.ExecContext(ctx, `DELETE FROM outbox WHERE seq = ?`, seq); err != nil {
				return fmt.Errorf("removing %d from the outbox: %w", seq, err)
			}
		}
		return nil
	})
}

// Attempted records a failed delivery of entry seq: one more attempt and
// the error (truncated). An entry no longer in the outbox is ignored.
func (s *Store) Attempted(ctx context.Context, seq int64, errText string) error {
	if len(errText) > maxErrorText {
		errText = strings.ToValidUTF8(errText[:maxErrorText], "") + "…"
	}
	return s.inTx(ctx, fmt.Sprintf("recording attempt on %d", seq), func(tx *sql.Tx, now string) error {
		_, err := tx.ExecContext(ctx, `UPDATE outbox SET attempts = attempts + 1, last_attempt = ?, last_error = ?
			WHERE seq = ?`, now, errText, seq)
		return err
	})
}

// OutboxDepth is the number of findings waiting for delivery.
func (s *Store) OutboxDepth(ctx context.Context) (int, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM outbox`).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: outbox depth: %w", err)
	}
	return n, nil
}

// Findings returns the most recently stored findings, newest first: of one
// host, or of all hosts when host is "". limit <= 0 means no limit.
func (s *Store) Findings(ctx context.Context, host string, limit int) ([]inventory.Finding, error) {
	recs, err := s.History(ctx, Query{Host: host, Limit: limit})
	if err != nil {
		return nil, err
	}
	out := make([]inventory.Finding, len(recs))
	for i := range recs {
		out[i] = recs[i].Finding
	}
	return out, nil
}

// Query selects stored findings for History. Zero fields select everything.
type Query struct {
	IDPrefix    string           // findings whose ID starts so (as Slack shows it); "" all
	Host        string           // one host (case-insensitive); "" all
	Kinds       []inventory.Kind // any of these kinds; nil all
	MinSeverity inventory.Severity
	Since       time.Time // stored at or after (to the second)
	Limit       int       // at most this many, newest first; <= 0 no limit
}

// Record is one stored finding and where its delivery stands.
type Record struct {
	Finding   inventory.Finding
	Stored    time.Time // when the poll that found it committed
	Delivered time.Time // when it left the outbox; zero while queued or when suppressed
	// Outcome is how it left the outbox: OutcomeSent, OutcomeSkipped, or ""
	// (queued, suppressed, or left before the store recorded outcomes).
	Outcome   string
	Queued    bool   // waiting in the outbox for Slack
	Attempts  int    // failed delivery attempts so far (while queued)
	LastError string // the last failed attempt's reason (while queued)
}

// History returns the stored findings q selects, newest first, with their
// delivery status.
func (s *Store) History(ctx context.Context, q Query) ([]Record, error) {
	var (
		where []string
		args  []any
	)
	if q.IDPrefix != "" {
		// Every ID that starts with the prefix sorts from the prefix up to
		// the prefix + the highest code point: a range on the primary key.
		where, args = append(where, `f.id >= ? AND f.id < ?`), append(args, q.IDPrefix, q.IDPrefix+"\U0010FFFF")
	}
	if q.Host != "" {
		where, args = append(where, `f.host = ? COLLATE NOCASE`), append(args, q.Host)
	}
	if len(q.Kinds) > 0 {
		where = append(where, `f.kind IN (?`+strings.Repeat(`, ?`, len(q.Kinds)-1)+`)`)
		for _, k := range q.Kinds {
			args = append(args, string(k))
		}
	}
	if q.MinSeverity > 0 {
		where, args = append(where, `f.severity >= ?`), append(args, int(q.MinSeverity))
	}
	if !q.Since.IsZero() {
		where, args = append(where, `f.created >= ?`), append(args, q.Since.UTC().Format(cutoffLayout))
	}
	limit := q.Limit
	if limit <= 0 {
		limit = -1 // SQLite: no limit
	}
	query := `SELECT f.finding, f.created, COALESCE(f.delivered, ''), COALESCE(f.outcome, ''), o.seq IS NOT NULL,
		COALESCE(o.attempts, 0), COALESCE(o.last_error, '')
		FROM findings f LEFT JOIN outbox o ON o.finding_id = f.id`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, ` AND `)
	}
	query += ` ORDER BY f.rowid DESC LIMIT ?`
	rows, err := s.db.QueryContext(ctx, query, append(args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("store: findings: %w", err)
	}
	defer rows.Close()
	var out []Record
	for rows.Next() {
		var (
			r                  Record
			raw, stored, deliv string
		)
		if err := rows.Scan(&raw, &stored, &deliv, &r.Outcome, &r.Queued, &r.Attempts, &r.LastError); err != nil {
			return nil, fmt.Errorf("store: findings: %w", err)
		}
		if err := json.Unmarshal([]byte(raw), &r.Finding); err != nil {
			return nil, fmt.Errorf("store: findings: corrupt entry: %w", err)
		}
		if r.Stored, err = time.Parse(timeLayout, stored); err != nil {
			return nil, fmt.Errorf("store: findings: %s: corrupt timestamp: %w", r.Finding.ID, err)
		}
		if deliv != "" {
			if r.Delivered, err = time.Parse(timeLayout, deliv); err != nil {
				return nil, fmt.Errorf("store: findings: %s: corrupt timestamp: %w", r.Finding.ID, err)
			}
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: findings: %w", err)
	}
	return out, nil
}

// Pruned counts what Prune removed.
type Pruned struct {
	Findings int64 // findings stored before the cutoff and no longer waiting for delivery
	States   int64 // state rows of hosts outside the monitored set, last written before the cutoff
}

// Prune forgets history older than before (compared to the second): stored
// findings that are not waiting in the outbox, the emptied outbox batches,
// and the state of hosts that have left the monitored set (SaveHosts) and
// were last written before the cutoff. Kept however old: a monitored host's
// state (the baseline the next poll compares against), and allow-expired
// findings (their ID is the allow entry's, so forgetting one would report the
// expiry again). A pruned host that returns is baselined afresh. It deletes
// in transactions of pruneChunk rows, and inTx queues writers fairly, so a
// poll committing meanwhile waits for about one chunk; on error or cancellation, what was done so far stays
// done and is counted. Freed pages are reused by later writes: the file stops
// growing rather than shrinking.
func (s *Store) Prune(ctx context.Context, before time.Time) (Pruned, error) {
	var p Pruned
	cutoff := before.UTC().Format(cutoffLayout)
	steps := []struct {
		what  string
		count *int64
		query string
		args  []any
	}{
		{"findings", &p.Findings, `DELETE FROM findings WHERE rowid IN (SELECT rowid FROM findings
			WHERE created < ? AND kind <> ? AND NOT EXISTS (SELECT 1 FROM outbox WHERE outbox.finding_id = findings.id)
			LIMIT ?)`, []any{cutoff, string(inventory.KindAllowExpired)}},
		{"batches", new(int64), `DELETE FROM batches WHERE id IN (SELECT id FROM batches
			WHERE NOT EXISTS (SELECT 1 FROM outbox WHERE outbox.batch = batches.id) LIMIT ?)`, nil},
		{"host state", &p.States, `DELETE FROM host_state WHERE rowid IN (SELECT rowid FROM host_state
			WHERE updated < ? AND NOT EXISTS (SELECT 1 FROM hosts WHERE hosts.name = host_state.host) LIMIT ?)`, []any{cutoff}},
	}
	for _, st := range steps {
		for {
			var n int64
			err := s.inTx(ctx, "prune "+st.what, func(tx *sql.Tx, _ string) error {
				res, err := tx.ExecContext(ctx, st.query, append(st.args, pruneChunk)...)
				if err != nil {
					return err
				}
				n, err = res.RowsAffected()
				return err
			})
			if err != nil {
				return p, err
			}
			*st.count += n
			if n < pruneChunk {
				break
			}
		}
	}
	return p, nil
}

// pruneChunk is how many rows one Prune transaction deletes at most.
const pruneChunk = 5000

// Meta returns the value stored under key; ok is false when there is none.
func (s *Store) Meta(ctx context.Context, key string) (value string, ok bool, err error) {
	err = s.db.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = ?`, key).Scan(&value)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("store: meta %s: %w", key, err)
	}
	return value, true, nil
}

// SetMeta stores value under key (small values: markers, timestamps).
func (s *Store) SetMeta(ctx context.Context, key, value string) error {
	return s.inTx(ctx, "set meta "+key, func(tx *sql.Tx, _ string) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO meta (key, value) VALUES (?, ?)
			ON CONFLICT (key) DO UPDATE SET value = excluded.value`, key, value)
		return err
	})
}

// inTx runs fn in one write transaction and commits it, or rolls back
// everything fn did when it (or the commit) fails. Every write of the
// process goes through here, one at a time: SQLite lets one writer in and
// makes the others poll for the lock, and a poller (sleeping up to 100 ms
// between tries) loses to a writer that asks again at once, such as the
// next chunk of a Prune. A Go mutex queues them fairly instead.
func (s *Store) inTx(ctx context.Context, what string, fn func(tx *sql.Tx, now string) error) (err error) {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: %s: begin: %w", what, err)
	}
	if err := fn(tx, s.stamp()); err != nil {
		return errors.Join(fmt.Errorf("store: %s: %w", what, err), rollback(tx))
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: %s: commit: %w", what, err)
	}
	return nil
}
