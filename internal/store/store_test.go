package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/svcwatch/svcwatch/internal/inventory"
)

func openTemp(t *testing.T) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "svcwatch.db")
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

var t0 = time.Date(2026, 12, 4, 15, 0, 0, 0, time.UTC)

func state(host string, watermark uint64) inventory.State {
	return inventory.State{
		Host: host, Baselined: true, Watermark: watermark, Digest: strings.Repeat("ab", 32),
		Services: []inventory.Service{{Name: "Dnscache", DisplayName: "DNS Client", ImagePath: `C:\Windows\system32\svchost.exe -k NetworkService`,
			ServiceDLL: `%SystemRoot%\System32\dnsrslvr.dll`, StartMode: inventory.StartAuto, Account: `NT AUTHORITY\NetworkService`, Type: 0x20}},
		Log:      inventory.LogInfo{OldestRecord: 1, NewestRecord: watermark, MaxBytes: 20 << 20, Retention: "circular"},
		LastPoll: t0, LastOK: t0,
	}
}

func finding(host, id string, sev inventory.Severity) inventory.Finding {
	return inventory.Finding{
		ID: id, Host: inventory.Host{Name: host, Reasons: []inventory.Reason{{Kind: inventory.ReasonDC}}},
		Kind: inventory.KindInstalled, Severity: sev, At: t0,
		Service: &inventory.Service{Name: "PSEXESVC", ImagePath: `%SystemRoot%\PSEXESVC.exe`, StartMode: inventory.StartDemand, Type: 0x10},
		Event:   &inventory.Event{ID: 7045, RecordID: 42, Time: t0, Data: []string{"PSEXESVC", `%SystemRoot%\PSEXESVC.exe`}},
		Hits:    []inventory.Hit{{ID: "psexec", Severity: sev, Why: "PsExec service"}},
	}
}

func pendingIDs(t *testing.T, s *Store) []string {
	t.Helper()
	out, err := s.Pending(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]string, len(out))
	for i, o := range out {
		ids[i] = o.Finding.ID
	}
	return ids
}

func count(t *testing.T, s *Store, table string) int {
	t.Helper()
	var n int
	if err := s.db.QueryRow(`SELECT COUNT(*) FROM ` + table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestOpenFileMode(t *testing.T) {
	s, path := openTemp(t)
	if err := s.Commit(context.Background(), state("dc01", 1), nil); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", filepath.Base(p), fi.Mode().Perm())
		}
	}

	// A pre-existing, too open file is narrowed.
	loose := filepath.Join(t.TempDir(), "loose.db")
	if err := os.WriteFile(loose, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(context.Background(), loose)
	if err != nil {
		t.Fatal(err)
	}
	s2.Close()
	if fi, _ := os.Stat(loose); fi.Mode().Perm() != 0o600 {
		t.Errorf("existing file left at %v, want 0600", fi.Mode().Perm())
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	notDB := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(notDB, []byte(strings.Repeat("not a database\n", 100)), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ path, want string }{
		{filepath.Join(dir, "missing", "x.db"), "create the directory"},
		{dir, "is a directory"},
		{"x.db?mode=ro", "not a usable file path"},
		{":memory:", "not a usable file path"},
		{notDB, "is it an SQLite file"},
	} {
		s, err := Open(context.Background(), tt.path)
		if err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded", tt.path)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Open(%q) = %v, want it to contain %q", tt.path, err, tt.want)
		}
	}
}

func TestPragmas(t *testing.T) {
	s, _ := openTemp(t)
	for pragma, want := range map[string]string{"journal_mode": "wal", "foreign_keys": "1", "busy_timeout": "10000", "synchronous": "1"} {
		var got string
		if err := s.db.QueryRow(`PRAGMA ` + pragma).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("PRAGMA %s = %s, want %s", pragma, got, want)
		}
	}
}

func TestMigrationsIdempotentAcrossReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "svcwatch.db")
	ms, err := loadMigrations(migrationFS, "migrations")
	if err != nil || len(ms) == 0 {
		t.Fatalf("embedded migrations: %v (%d)", err, len(ms))
	}
	for i := 0; i < 3; i++ {
		s, err := Open(context.Background(), path)
		if err != nil {
			t.Fatalf("open %d: %v", i, err)
		}
		if i == 0 {
			if err := s.Commit(context.Background(), state("dc01", 7), []inventory.Finding{finding("dc01", "f1", inventory.SeverityHigh)}); err != nil {
				t.Fatal(err)
			}
		}
		var userVersion int
		if err := s.db.QueryRow(`PRAGMA user_version`).Scan(&userVersion); err != nil {
			t.Fatal(err)
		}
		if n := count(t, s, "schema_migrations"); n != len(ms) || userVersion != len(ms) {
			t.Errorf("open %d: %d migrations recorded, user_version %d; want %d", i, n, userVersion, len(ms))
		}
		if st, err := s.State(context.Background(), "dc01"); err != nil || st.Watermark != 7 {
			t.Errorf("open %d: state lost across reopen: %+v, %v", i, st, err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestMigrationFailureRollsBack(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.db")
	db, err := sql.Open("sqlite", path+"?_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	now := func() string { return t0.Format(timeLayout) }
	good := fstest.MapFS{
		"m/0001_a.sql": {Data: []byte("CREATE TABLE a (x INTEGER);")},
		"m/0002_b.sql": {Data: []byte("CREATE TABLE b (x INTEGER); INSERT INTO a VALUES (1); THIS IS NOT SQL;")},
	}
	ms, err := loadMigrations(good, "m")
	if err != nil {
		t.Fatal(err)
	}
	err = migrate(context.Background(), db, ms, now)
	if err == nil || !strings.Contains(err.Error(), "0002_b.sql") {
		t.Fatalf("migrate = %v, want an error naming 0002_b.sql", err)
	}
	var version, tablesB, rowsA int
	db.QueryRow(`SELECT MAX(version) FROM schema_migrations`).Scan(&version)
	db.QueryRow(`SELECT COUNT(*) FROM sqlite_master WHERE name = 'b'`).Scan(&tablesB)
	db.QueryRow(`SELECT COUNT(*) FROM a`).Scan(&rowsA)
	if version != 1 || tablesB != 0 || rowsA != 0 {
		t.Errorf("after a failed step: version %d, table b exists %d, rows in a %d; want 1, 0, 0", version, tablesB, rowsA)
	}

	good["m/0002_b.sql"] = &fstest.MapFile{Data: []byte("CREATE TABLE b (x INTEGER); INSERT INTO a VALUES (1);")}
	if ms, err = loadMigrations(good, "m"); err != nil {
		t.Fatal(err)
	}
	if err := migrate(context.Background(), db, ms, now); err != nil {
		t.Fatal(err)
	}
	if err := migrate(context.Background(), db, ms, now); err != nil { // again: nothing to do
		t.Fatal(err)
	}
	db.QueryRow(`SELECT MAX(version) FROM schema_migrations`).Scan(&version)
	db.QueryRow(`SELECT COUNT(*) FROM a`).Scan(&rowsA)
	if version != 2 || rowsA != 1 {
		t.Errorf("after the fix: version %d, rows in a %d; want 2, 1 (each step applied once)", version, rowsA)
	}

	// A database newer than the code is refused, not mangled.
	if err := migrate(context.Background(), db, ms[:1], now); err == nil || !strings.Contains(err.Error(), "newer svcwatch") {
		t.Errorf("migrate with fewer known steps = %v, want a 'newer svcwatch' error", err)
	}
}

func TestLoadMigrationsRejectsGaps(t *testing.T) {
	for name, fsys := range map[string]fstest.MapFS{
		"gap":     {"m/0001_a.sql": {}, "m/0003_c.sql": {}},
		"badname": {"m/first.sql": {}},
		"dup":     {"m/0001_a.sql": {}, "m/001_b.sql": {}},
	} {
		if _, err := loadMigrations(fsys, "m"); err == nil {
			t.Errorf("%s: loadMigrations accepted it", name)
		}
	}
}

func TestStateRoundTrip(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	st, err := s.State(ctx, "unknown.corp.example")
	if err != nil || !reflect.DeepEqual(st, inventory.State{}) {
		t.Fatalf("State of unknown host = %+v, %v; want zero, nil", st, err)
	}
	want := state("dc01", 5234)
	if err := s.Commit(ctx, want, nil); err != nil {
		t.Fatal(err)
	}
	got, err := s.State(ctx, "dc01")
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("State = %+v, %v\nwant %+v", got, err, want)
	}
	want.Watermark, want.Failures, want.LastError = 6000, 2, "dc01: receive: timeout"
	if err := s.Commit(ctx, want, nil); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.State(ctx, "dc01"); !reflect.DeepEqual(got, want) {
		t.Errorf("upsert: State = %+v, want %+v", got, want)
	}
	if n := count(t, s, "host_state"); n != 1 {
		t.Errorf("%d state rows after two commits of one host, want 1", n)
	}
	if err := s.Commit(ctx, inventory.State{}, nil); err == nil {
		t.Error("Commit of a state without host succeeded")
	}
}

func TestCommitDuplicatesIgnoredAndOutboxOrder(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	a, b, c := finding("dc01", "a", inventory.SeverityHigh), finding("dc01", "b", inventory.SeverityLow), finding("dc01", "c", inventory.SeverityCritical)
	if err := s.Commit(ctx, state("dc01", 1), []inventory.Finding{a, b}); err != nil {
		t.Fatal(err)
	}
	// Re-processing the same observation plus one new finding.
	if err := s.Commit(ctx, state("dc01", 2), []inventory.Finding{a, b, c}); err != nil {
		t.Fatal(err)
	}
	if n := count(t, s, "findings"); n != 3 {
		t.Errorf("%d findings stored, want 3", n)
	}
	out, err := s.Pending(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 3 {
		t.Fatalf("Pending = %d entries, want 3", len(out))
	}
	for i, want := range []string{"a", "b", "c"} {
		if out[i].Finding.ID != want {
			t.Errorf("Pending[%d] = %s, want %s (order of enqueueing)", i, out[i].Finding.ID, want)
		}
		if i > 0 && out[i].Seq <= out[i-1].Seq {
			t.Errorf("Pending not ordered by Seq: %d after %d", out[i].Seq, out[i-1].Seq)
		}
	}
	if out[0].Batch != out[1].Batch || out[2].Batch == out[0].Batch {
		t.Errorf("batches = %d %d %d; want the first two equal (one Commit) and the third different", out[0].Batch, out[1].Batch, out[2].Batch)
	}
	if !reflect.DeepEqual(out[2].Finding, c) || out[2].Attempts != 0 {
		t.Errorf("Pending[2] = %+v, want the finding as committed with 0 attempts", out[2])
	}

	// A commit that enqueues nothing creates no batch.
	if err := s.Commit(ctx, state("dc01", 3), []inventory.Finding{a}); err != nil {
		t.Fatal(err)
	}
	if n := count(t, s, "batches"); n != 2 {
		t.Errorf("%d batches, want 2", n)
	}
}

func TestSuppressedStoredNotQueued(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	sup := finding("dc01", "sup", inventory.SeverityLow)
	sup.Suppressed, sup.SuppressedBy = true, "allow[0] Veeam backup"
	if err := s.Commit(ctx, state("dc01", 1), []inventory.Finding{sup, finding("dc01", "sent", inventory.SeverityHigh)}); err != nil {
		t.Fatal(err)
	}
	if ids := pendingIDs(t, s); !reflect.DeepEqual(ids, []string{"sent"}) {
		t.Errorf("Pending = %v, want [sent]", ids)
	}
	fs, err := s.Findings(ctx, "dc01", 0)
	if err != nil || len(fs) != 2 {
		t.Fatalf("Findings = %d, %v; want both stored", len(fs), err)
	}
	if !fs[1].Suppressed || fs[1].SuppressedBy != sup.SuppressedBy {
		t.Errorf("stored suppressed finding = %+v", fs[1])
	}
}

// A failure inside the transaction (here: the outbox insert of the second
// finding, forced by a trigger) leaves nothing of that Commit behind.
func TestCommitAtomic(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	before := state("dc01", 10)
	if err := s.Commit(ctx, before, []inventory.Finding{finding("dc01", "old", inventory.SeverityHigh)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.Exec(`CREATE TRIGGER fail_boom BEFORE INSERT ON outbox
		WHEN NEW.finding_id = 'boom' BEGIN SELECT RAISE(ABORT, 'injected failure'); END`); err != nil {
		t.Fatal(err)
	}
	err := s.Commit(ctx, state("dc01", 20), []inventory.Finding{
		finding("dc01", "new1", inventory.SeverityHigh), finding("dc01", "boom", inventory.SeverityHigh), finding("dc01", "new2", inventory.SeverityHigh)})
	if err == nil || !strings.Contains(err.Error(), "injected failure") || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("Commit = %v, want the injected failure naming the finding", err)
	}
	if st, _ := s.State(ctx, "dc01"); st.Watermark != 10 {
		t.Errorf("state watermark = %d after a failed commit, want 10 (unchanged)", st.Watermark)
	}
	if n := count(t, s, "findings"); n != 1 {
		t.Errorf("%d findings after a failed commit, want 1", n)
	}
	if ids := pendingIDs(t, s); !reflect.DeepEqual(ids, []string{"old"}) {
		t.Errorf("outbox = %v after a failed commit, want [old]", ids)
	}
	if n := count(t, s, "batches"); n != 1 {
		t.Errorf("%d batches after a failed commit, want 1", n)
	}

	// The same Commit succeeds once the fault is gone: nothing half-done blocks it.
	if _, err := s.db.Exec(`DROP TRIGGER fail_boom`); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(ctx, state("dc01", 20), []inventory.Finding{
		finding("dc01", "new1", inventory.SeverityHigh), finding("dc01", "boom", inventory.SeverityHigh)}); err != nil {
		t.Fatal(err)
	}
	if ids := pendingIDs(t, s); !reflect.DeepEqual(ids, []string{"old", "new1", "boom"}) {
		t.Errorf("outbox = %v, want [old new1 boom]", ids)
	}
}

func TestCommitCancelled(t *testing.T) {
	s, _ := openTemp(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Commit(ctx, state("dc01", 1), []inventory.Finding{finding("dc01", "x", inventory.SeverityHigh)}); !errors.Is(err, context.Canceled) {
		t.Errorf("Commit with a cancelled context = %v, want context.Canceled", err)
	}
	if n := count(t, s, "findings") + count(t, s, "host_state"); n != 0 {
		t.Errorf("%d rows written by a cancelled commit", n)
	}
}

func TestCommitRejectsFindingWithoutID(t *testing.T) {
	s, _ := openTemp(t)
	err := s.Commit(context.Background(), state("dc01", 1), []inventory.Finding{finding("dc01", "", inventory.SeverityHigh)})
	if err == nil || !strings.Contains(err.Error(), "no ID") {
		t.Errorf("Commit = %v, want a 'no ID' error", err)
	}
	if st, _ := s.State(context.Background(), "dc01"); st.Host != "" {
		t.Error("state written despite the rejected finding")
	}
}

func TestDeliveredAndAttempted(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	var fs []inventory.Finding
	for i := 0; i < 4; i++ {
		fs = append(fs, finding("dc01", fmt.Sprintf("f%d", i), inventory.SeverityHigh))
	}
	if err := s.Commit(ctx, state("dc01", 1), fs); err != nil {
		t.Fatal(err)
	}
	out, _ := s.Pending(ctx, 2)
	if len(out) != 2 || out[0].Finding.ID != "f0" {
		t.Fatalf("Pending(2) = %d entries starting %v", len(out), out)
	}
	long := strings.Repeat("é", 5000) // 10,000 bytes, cut inside a rune
	if err := s.Attempted(ctx, out[0].Seq, "slack: 503 Service Unavailable"); err != nil {
		t.Fatal(err)
	}
	if err := s.Attempted(ctx, out[0].Seq, long); err != nil {
		t.Fatal(err)
	}
	var lastErr string
	s.db.QueryRow(`SELECT last_error FROM outbox WHERE seq = ?`, out[0].Seq).Scan(&lastErr)
	if len(lastErr) > maxErrorText+len("…") || !strings.HasPrefix(lastErr, "éé") || !strings.HasSuffix(lastErr, "…") {
		t.Errorf("last_error not truncated to valid text: %d bytes", len(lastErr))
	}
	if d, _ := s.OutboxDepth(ctx); d != 4 {
		t.Errorf("OutboxDepth = %d, want 4 (a failed attempt keeps the entry)", d)
	}
	if got, _ := s.Pending(ctx, 1); got[0].Attempts != 2 {
		t.Errorf("Attempts = %d, want 2", got[0].Attempts)
	}

	if err := s.Delivered(ctx, out[0].Seq, out[1].Seq, 999999); err != nil {
		t.Fatal(err)
	}
	if ids := pendingIDs(t, s); !reflect.DeepEqual(ids, []string{"f2", "f3"}) {
		t.Errorf("Pending after delivery = %v, want [f2 f3]", ids)
	}
	var delivered int
	s.db.QueryRow(`SELECT COUNT(*) FROM findings WHERE delivered IS NOT NULL`).Scan(&delivered)
	if delivered != 2 {
		t.Errorf("%d findings marked delivered, want 2", delivered)
	}
	if err := s.Delivered(ctx, out[0].Seq); err != nil { // twice: harmless
		t.Error(err)
	}
	if err := s.Attempted(ctx, out[0].Seq, "late"); err != nil { // after delivery: ignored
		t.Error(err)
	}
	// Re-committing a delivered finding never sends it again.
	if err := s.Commit(ctx, state("dc01", 2), fs); err != nil {
		t.Fatal(err)
	}
	if d, _ := s.OutboxDepth(ctx); d != 2 {
		t.Errorf("OutboxDepth = %d after re-commit, want 2", d)
	}
	// Sequences are never reused, so a stale seq cannot hit a new entry.
	if err := s.Commit(ctx, state("dc01", 3), []inventory.Finding{finding("dc01", "g", inventory.SeverityHigh)}); err != nil {
		t.Fatal(err)
	}
	all, _ := s.Pending(ctx, 0)
	if last := all[len(all)-1]; last.Seq <= out[1].Seq+2 {
		t.Errorf("new entry got seq %d, not above every earlier one", last.Seq)
	}
}

func TestHostsAndScopeFindings(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	if hosts, err := s.Hosts(ctx); err != nil || len(hosts) != 0 {
		t.Fatalf("Hosts of a new store = %v, %v", hosts, err)
	}
	dc02 := inventory.Host{Name: "dc02.corp.example", DN: "CN=DC02,OU=Domain Controllers,DC=corp,DC=example", OS: "Windows Server 2022",
		Reasons: []inventory.Reason{{Kind: inventory.ReasonDC}}, LastLogon: t0}
	dc01 := inventory.Host{Name: "dc01.corp.example", Reasons: []inventory.Reason{{Kind: inventory.ReasonRODC}}}
	scope := inventory.Finding{ID: "scope-dc02", Host: dc02, Kind: inventory.KindScope, At: t0, Detail: "entered the monitored set"}
	if err := s.SaveHosts(ctx, []inventory.Host{dc02, dc01}, []inventory.Finding{scope}); err != nil {
		t.Fatal(err)
	}
	hosts, err := s.Hosts(ctx)
	if err != nil || !reflect.DeepEqual(hosts, []inventory.Host{dc01, dc02}) {
		t.Fatalf("Hosts = %+v, %v; want dc01, dc02 by name", hosts, err)
	}
	if ids := pendingIDs(t, s); !reflect.DeepEqual(ids, []string{"scope-dc02"}) {
		t.Errorf("outbox = %v, want the scope finding", ids)
	}
	// Replace the set: dc02 leaves.
	if err := s.SaveHosts(ctx, []inventory.Host{dc01}, nil); err != nil {
		t.Fatal(err)
	}
	if hosts, _ := s.Hosts(ctx); !reflect.DeepEqual(hosts, []inventory.Host{dc01}) {
		t.Errorf("Hosts after replace = %+v", hosts)
	}
	// A failing SaveHosts leaves the previous set.
	if err := s.SaveHosts(ctx, []inventory.Host{dc02, {}}, nil); err == nil {
		t.Fatal("SaveHosts with an unnamed host succeeded")
	}
	if hosts, _ := s.Hosts(ctx); !reflect.DeepEqual(hosts, []inventory.Host{dc01}) {
		t.Errorf("Hosts after a failed save = %+v, want unchanged", hosts)
	}
}

func TestFindingsAndMeta(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		for _, h := range []string{"dc01", "dc02"} {
			if err := s.Commit(ctx, state(h, uint64(i)), []inventory.Finding{finding(h, fmt.Sprintf("%s-%d", h, i), inventory.SeverityMedium)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	ids := func(fs []inventory.Finding) []string {
		out := make([]string, len(fs))
		for i, f := range fs {
			out[i] = f.ID
		}
		return out
	}
	if fs, _ := s.Findings(ctx, "dc02", 2); !reflect.DeepEqual(ids(fs), []string{"dc02-2", "dc02-1"}) {
		t.Errorf("Findings(dc02, 2) = %v", ids(fs))
	}
	if fs, _ := s.Findings(ctx, "", 0); len(fs) != 6 || fs[0].ID != "dc02-2" {
		t.Errorf("Findings(all) = %v", ids(fs))
	}

	if _, ok, err := s.Meta(ctx, "last_discovery"); ok || err != nil {
		t.Errorf("Meta of unset key: ok=%v err=%v", ok, err)
	}
	for _, v := range []string{"2026-12-04T15:00:00Z", "2026-12-04T16:00:00Z"} {
		if err := s.SetMeta(ctx, "last_discovery", v); err != nil {
			t.Fatal(err)
		}
		if got, ok, err := s.Meta(ctx, "last_discovery"); got != v || !ok || err != nil {
			t.Errorf("Meta = %q %v %v, want %q", got, ok, err, v)
		}
	}
}

// Commits from many goroutines (as the poller's workers do), with a
// dispatcher draining at the same time: no error, nothing lost or doubled.
func TestConcurrentCommits(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	const workers, perWorker = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, workers+1)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			host := fmt.Sprintf("host%02d", w)
			for i := 1; i <= perWorker; i++ {
				fs := []inventory.Finding{
					finding(host, fmt.Sprintf("%s-%d", host, i), inventory.SeverityHigh),
					finding(host, fmt.Sprintf("shared-%d", i), inventory.SeverityHigh), // every worker races on these
				}
				if err := s.Commit(ctx, state(host, uint64(i)), fs); err != nil {
					errs <- err
					return
				}
			}
		}(w)
	}
	var workersDone atomic.Bool
	go func() { wg.Wait(); workersDone.Store(true) }()
	delivered := map[string]int{}
	done := make(chan struct{})
	go func() { // a dispatcher draining while the workers commit
		defer close(done)
		for {
			last := workersDone.Load() // read before Pending: an empty outbox after it is final
			out, err := s.Pending(ctx, 10)
			if err != nil {
				errs <- err
				return
			}
			if len(out) == 0 && last {
				return
			}
			var seqs []int64
			for _, o := range out {
				seqs = append(seqs, o.Seq)
				delivered[o.Finding.ID]++
			}
			if err := s.Delivered(ctx, seqs...); err != nil {
				errs <- err
				return
			}
		}
	}()
	wg.Wait()
	<-done
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if len(delivered) != workers*perWorker+perWorker {
		t.Errorf("%d distinct findings delivered, want %d", len(delivered), workers*perWorker+perWorker)
	}
	for id, n := range delivered {
		if n != 1 {
			t.Errorf("%s delivered %d times", id, n)
		}
	}
	for w := 0; w < workers; w++ {
		if st, _ := s.State(ctx, fmt.Sprintf("host%02d", w)); st.Watermark != perWorker {
			t.Errorf("host%02d watermark = %d, want %d", w, st.Watermark, perWorker)
		}
	}
}

func TestReopenAfterClose(t *testing.T) {
	s, path := openTemp(t)
	ctx := context.Background()
	f := finding("dc01", "x", inventory.SeverityCritical)
	if err := s.Commit(ctx, state("dc01", 99), []inventory.Finding{f}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path + "-wal"); err == nil && fi.Size() != 0 {
		t.Errorf("WAL not checkpointed on Close: %d bytes", fi.Size())
	}
	s2, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if st, _ := s2.State(ctx, "dc01"); st.Watermark != 99 {
		t.Errorf("watermark after reopen = %d, want 99", st.Watermark)
	}
	if out, _ := s2.Pending(ctx, 0); len(out) != 1 || !reflect.DeepEqual(out[0].Finding, f) {
		t.Errorf("outbox after reopen = %+v", out)
	}
}

func TestHeadServicesAndCommitHead(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	if h, err := s.Head(ctx, "dc01"); err != nil || !reflect.DeepEqual(h, inventory.State{}) {
		t.Fatalf("Head of unknown host = %+v, %v; want zero, nil", h, err)
	}
	if svcs, err := s.Services(ctx, "dc01"); err != nil || svcs != nil {
		t.Fatalf("Services of unknown host = %v, %v; want nil, nil", svcs, err)
	}
	full := state("dc01", 10)
	if err := s.Commit(ctx, full, nil); err != nil {
		t.Fatal(err)
	}
	head := full
	head.Services = nil
	if got, err := s.Head(ctx, "dc01"); err != nil || !reflect.DeepEqual(got, head) {
		t.Fatalf("Head = %+v, %v\nwant %+v", got, err, head)
	}
	if got, err := s.Services(ctx, "dc01"); err != nil || !reflect.DeepEqual(got, full.Services) {
		t.Fatalf("Services = %+v, %v\nwant %+v", got, err, full.Services)
	}

	// CommitHead moves the cursor and keeps the inventory, whatever
	// st.Services holds (nil or stale).
	for _, svcs := range [][]inventory.Service{nil, {{Name: "stale"}}} {
		next := head
		next.Watermark++
		head = next
		next.Services = svcs
		if err := s.CommitHead(ctx, next, []inventory.Finding{finding("dc01", fmt.Sprint("h", next.Watermark), inventory.SeverityHigh)}); err != nil {
			t.Fatal(err)
		}
		want := full
		want.Watermark = next.Watermark
		if got, err := s.State(ctx, "dc01"); err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("after CommitHead(services %v): State = %+v, %v\nwant %+v", svcs, got, err, want)
		}
	}
	if n := count(t, s, "outbox"); n != 2 {
		t.Errorf("CommitHead enqueued %d findings, want 2", n)
	}

	// A host first committed by CommitHead (a failed first poll) has no
	// inventory until a full Commit.
	failed := inventory.State{Host: "dc02", Failures: 1, LastError: "timeout", LastPoll: t0}
	if err := s.CommitHead(ctx, failed, nil); err != nil {
		t.Fatal(err)
	}
	if got, err := s.State(ctx, "dc02"); err != nil || !reflect.DeepEqual(got, failed) {
		t.Errorf("State after a head-only first commit = %+v, %v; want %+v", got, err, failed)
	}
}

// A store written by svcwatch with schema version 1 (the inventory inside
// the state document) opens with every host's state intact.
func TestMigrationSplitsInventory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "svcwatch.db")
	if err := prepareFile(path); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", path+"?_pragma=journal_mode(WAL)")
	if err != nil {
		t.Fatal(err)
	}
	ms, err := loadMigrations(migrationFS, "migrations")
	if err != nil || len(ms) < 2 {
		t.Fatalf("embedded migrations: %v (%d)", err, len(ms))
	}
	if err := migrate(context.Background(), db, ms[:1], func() string { return t0.Format(timeLayout) }); err != nil {
		t.Fatal(err)
	}
	v1 := map[string]inventory.State{
		"dc01":   state("dc01", 5234),
		"dc02":   {Host: "dc02", Failures: 3, LastError: "refused", Down: true}, // never answered: no inventory
		"empty1": {Host: "empty1", Baselined: true, Services: []inventory.Service{}},
	}
	for host, st := range v1 {
		doc, err := json.Marshal(struct {
			inventory.State
			Services []inventory.Service `json:"services"` // version 1 always wrote the key
		}{st, st.Services})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(`INSERT INTO host_state (host, state, updated) VALUES (?, ?, ?)`, host, string(doc), t0.Format(timeLayout)); err != nil {
			t.Fatal(err)
		}
	}
	// One corrupt row must not stop the upgrade; reading it names the host.
	if _, err := db.Exec(`INSERT INTO host_state (host, state, updated) VALUES ('bad01', '{"host":"bad01",', ?)`, t0.Format(timeLayout)); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatalf("open a version 1 store: %v", err)
	}
	defer s.Close()
	if _, err := s.Head(context.Background(), "bad01"); err == nil || !strings.Contains(err.Error(), "state of bad01 is corrupt") {
		t.Errorf("Head of the corrupt row: %v, want an error naming bad01 as corrupt", err)
	}
	for host, want := range v1 {
		got, err := s.State(context.Background(), host)
		if err != nil {
			t.Errorf("%s: %v", host, err)
			continue
		}
		if len(want.Services) == 0 && len(got.Services) == 0 {
			got.Services = want.Services // [] and null both mean "no services"
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s after migration = %+v\nwant %+v", host, got, want)
		}
		var doc string
		s.db.QueryRow(`SELECT state FROM host_state WHERE host = ?`, host).Scan(&doc)
		if strings.Contains(doc, `"services"`) {
			t.Errorf("%s: the state document still holds the inventory: %s", host, doc)
		}
	}
}

// TestOneProcessPerStateFile: a second Open of a state file in use fails
// naming the holder; once the first Store is closed the file opens again.
func TestOneProcessPerStateFile(t *testing.T) {
	ctx := context.Background()
	s, path := openTemp(t)
	_, err := Open(ctx, path)
	if err == nil {
		t.Fatal("a second Open of a state file in use succeeded")
	}
	for _, want := range []string{"in use by another svcwatch process", fmt.Sprintf("(pid %d)", os.Getpid()), "state.path"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(ctx, path)
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}
}

// seqOf returns the outbox sequence of the queued finding id.
func seqOf(t *testing.T, s *Store, id string) int64 {
	t.Helper()
	out, err := s.Pending(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range out {
		if o.Finding.ID == id {
			return o.Seq
		}
	}
	t.Fatalf("%s is not in the outbox", id)
	return 0
}

func TestPrune(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	clock := t0.Add(-100 * 24 * time.Hour)
	s.now = func() time.Time { return clock }

	// 100 days ago: one finding delivered, one still waiting for Slack, one
	// suppressed (never queued); two hosts' states, one of which stays monitored.
	if err := s.Commit(ctx, state("gone-old", 1), []inventory.Finding{
		finding("gone-old", "delivered", inventory.SeverityHigh),
		finding("gone-old", "waiting", inventory.SeverityHigh),
	}); err != nil {
		t.Fatal(err)
	}
	sup := finding("kept-old", "suppressed", inventory.SeverityHigh)
	sup.Suppressed = true
	expired := finding("kept-old", "allow-expired", inventory.SeverityLow)
	expired.Kind = inventory.KindAllowExpired
	if err := s.Commit(ctx, state("kept-old", 1), []inventory.Finding{sup, expired}); err != nil {
		t.Fatal(err)
	}
	if err := s.Delivered(ctx, seqOf(t, s, "allow-expired")); err != nil {
		t.Fatal(err)
	}
	// Enough suppressed findings to take more than two delete chunks.
	bulk := make([]inventory.Finding, 2*pruneChunk+1)
	for i := range bulk {
		bulk[i] = finding("kept-old", fmt.Sprintf("bulk-%05d", i), inventory.SeverityLow)
		bulk[i].Suppressed = true
	}
	if err := s.Commit(ctx, state("kept-old", 1), bulk); err != nil {
		t.Fatal(err)
	}
	if err := s.Delivered(ctx, seqOf(t, s, "delivered")); err != nil {
		t.Fatal(err)
	}

	// Yesterday: a recent finding, and a host that left the set recently.
	clock = t0.Add(-24 * time.Hour)
	if err := s.Commit(ctx, state("gone-new", 1), []inventory.Finding{finding("gone-new", "recent", inventory.SeverityHigh)}); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveHosts(ctx, []inventory.Host{{Name: "kept-old"}}, nil); err != nil {
		t.Fatal(err)
	}

	got, err := s.Prune(ctx, t0.Add(-90*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if want := (Pruned{Findings: 2 + 2*pruneChunk + 1, States: 1}); got != want {
		t.Fatalf("Prune = %+v, want %+v", got, want)
	}

	fs, err := s.Findings(ctx, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, f := range fs {
		ids = append(ids, f.ID)
	}
	if want := []string{"recent", "allow-expired", "waiting"}; !reflect.DeepEqual(ids, want) {
		t.Errorf("findings after prune = %v, want %v (the undelivered one and the expiry notice stay)", ids, want)
	}
	if got := pendingIDs(t, s); !reflect.DeepEqual(got, []string{"waiting", "recent"}) {
		t.Errorf("outbox after prune = %v", got)
	}
	for host, kept := range map[string]bool{"gone-old": false, "kept-old": true, "gone-new": true} {
		st, err := s.Head(ctx, host)
		if err != nil {
			t.Fatal(err)
		}
		if (st.Host != "") != kept {
			t.Errorf("state of %s kept = %v, want %v", host, st.Host != "", kept)
		}
	}
	var batches int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM batches`).Scan(&batches); err != nil {
		t.Fatal(err)
	}
	if batches != 2 {
		t.Errorf("%d batches left, want 2 (the ones still holding queued findings)", batches)
	}

	// Pruning again removes nothing.
	if got, err := s.Prune(ctx, t0.Add(-90*24*time.Hour)); err != nil || got != (Pruned{}) {
		t.Errorf("second Prune = %+v, %v; want nothing", got, err)
	}

	// Exactly one chunk: a full chunk, then an empty one ends the loop.
	clock = t0.Add(-100 * 24 * time.Hour)
	for i := range bulk {
		bulk[i].ID = fmt.Sprintf("again-%05d", i)
	}
	if err := s.Commit(ctx, state("kept-old", 1), bulk[:pruneChunk]); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Prune(ctx, t0.Add(-90*24*time.Hour)); err != nil || got != (Pruned{Findings: pruneChunk}) {
		t.Errorf("Prune of one chunk = %+v, %v; want %d findings", got, err, pruneChunk)
	}

	// A cancelled Prune stops and says so.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.Prune(cctx, t0); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled Prune: err = %v", err)
	}
}

func TestHistory(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	clock := t0
	s.now = func() time.Time { return clock }
	commit := func(host, id string, kind inventory.Kind, sev inventory.Severity, suppressed bool) {
		t.Helper()
		f := finding(host, id, sev)
		f.Kind, f.Suppressed = kind, suppressed
		if suppressed {
			f.SuppressedBy = "allow[0] (backup agent)"
		}
		if err := s.Commit(ctx, state(host, 1), []inventory.Finding{f}); err != nil {
			t.Fatal(err)
		}
		clock = clock.Add(time.Hour)
	}
	commit("dc01", "old-sent", inventory.KindInstalled, inventory.SeverityHigh, false)       // t0
	commit("dc01", "suppressed", inventory.KindInstalled, inventory.SeverityLow, true)       // t0+1h
	commit("DC02", "failing", inventory.KindModified, inventory.SeverityCritical, false)     // t0+2h
	commit("dc01", "new-queued", inventory.KindUnreachable, inventory.SeverityMedium, false) // t0+3h
	if err := s.Delivered(ctx, seqOf(t, s, "old-sent")); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := s.Attempted(ctx, seqOf(t, s, "failing"), "slack: channel_not_found"); err != nil {
			t.Fatal(err)
		}
	}

	tests := []struct {
		name string
		q    Query
		want []string
	}{
		{"everything, newest first", Query{}, []string{"new-queued", "failing", "suppressed", "old-sent"}},
		{"limit", Query{Limit: 2}, []string{"new-queued", "failing"}},
		{"host, any case", Query{Host: "dc02"}, []string{"failing"}},
		{"kinds", Query{Kinds: []inventory.Kind{inventory.KindInstalled, inventory.KindModified}}, []string{"failing", "suppressed", "old-sent"}},
		{"min severity", Query{MinSeverity: inventory.SeverityHigh}, []string{"failing", "old-sent"}},
		{"since, inclusive to the second", Query{Since: t0.Add(2*time.Hour + 500*time.Millisecond)}, []string{"new-queued", "failing"}},
		{"combined", Query{Host: "dc01", MinSeverity: inventory.SeverityMedium, Since: t0}, []string{"new-queued", "old-sent"}},
		{"nothing matches", Query{Host: "dc03"}, nil},
		{"id prefix", Query{IDPrefix: "fail"}, []string{"failing"}},
		{"id prefix is not a substring", Query{IDPrefix: "ailing"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recs, err := s.History(ctx, tt.q)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range recs {
				got = append(got, r.Finding.ID)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("History(%+v) = %v, want %v", tt.q, got, tt.want)
			}
		})
	}

	recs, err := s.History(ctx, Query{})
	if err != nil {
		t.Fatal(err)
	}
	status := map[string]Record{}
	for _, r := range recs {
		r.Finding = inventory.Finding{ID: r.Finding.ID, SuppressedBy: r.Finding.SuppressedBy}
		status[r.Finding.ID] = r
	}
	want := map[string]Record{
		"old-sent":   {Finding: inventory.Finding{ID: "old-sent"}, Stored: t0, Delivered: t0.Add(4 * time.Hour), Outcome: OutcomeSent},
		"suppressed": {Finding: inventory.Finding{ID: "suppressed", SuppressedBy: "allow[0] (backup agent)"}, Stored: t0.Add(time.Hour)},
		"failing":    {Finding: inventory.Finding{ID: "failing"}, Stored: t0.Add(2 * time.Hour), Queued: true, Attempts: 2, LastError: "slack: channel_not_found"},
		"new-queued": {Finding: inventory.Finding{ID: "new-queued"}, Stored: t0.Add(3 * time.Hour), Queued: true},
	}
	if !reflect.DeepEqual(status, want) {
		t.Errorf("delivery status:\n got %+v\nwant %+v", status, want)
	}

	// Below slack.min_severity: out of the outbox, recorded as not sent.
	commit("dc01", "held-back", inventory.KindInstalled, inventory.SeverityInfo, false)
	if err := s.Skipped(ctx, seqOf(t, s, "held-back")); err != nil {
		t.Fatal(err)
	}
	recs, err = s.History(ctx, Query{Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	if r := recs[0]; r.Finding.ID != "held-back" || r.Outcome != OutcomeSkipped || r.Queued || r.Delivered.IsZero() {
		t.Errorf("skipped finding: %+v", r)
	}
	if got := pendingIDs(t, s); !reflect.DeepEqual(got, []string{"failing", "new-queued"}) {
		t.Errorf("outbox after Skipped = %v", got)
	}
}

func TestOpenReadOnly(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if _, err := OpenReadOnly(ctx, filepath.Join(dir, "none.db")); !errors.Is(err, ErrNoState) || !strings.Contains(err.Error(), "no state file at") {
		t.Errorf("missing file: err = %v", err)
	}
	if _, err := OpenReadOnly(ctx, "x.db?mode=rw"); err == nil || !strings.Contains(err.Error(), "not a usable file path") {
		t.Errorf("URI-like path: err = %v", err)
	}
	notDB := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(notDB, []byte("not sqlite at all, just some text that is long enough to be a header"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenReadOnly(ctx, notDB); err == nil || !strings.Contains(err.Error(), "is it a state file written by svcwatch?") {
		t.Errorf("not a database: err = %v", err)
	}

	// The daemon holds the file (and its lock) while an operator reads it;
	// the path has what a file: URI must escape.
	path := filepath.Join(t.TempDir(), "état 100%", "svc%41 watch.db")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	w, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.Commit(ctx, state("dc01", 1), []inventory.Finding{finding("dc01", "first", inventory.SeverityHigh)}); err != nil {
		t.Fatal(err)
	}
	r, err := OpenReadOnly(ctx, path)
	if err != nil {
		t.Fatalf("read while the writer runs: %v", err)
	}
	defer r.Close()
	if err := w.Commit(ctx, state("dc01", 2), []inventory.Finding{finding("dc01", "second", inventory.SeverityHigh)}); err != nil {
		t.Fatal(err)
	}
	fs, err := r.Findings(ctx, "", 0)
	if err != nil || len(fs) != 2 || fs[0].ID != "second" {
		t.Errorf("reader sees %d findings (%v), want the writer's latest two", len(fs), err)
	}
	if err := r.Commit(ctx, state("dc01", 3), nil); err == nil {
		t.Error("a read-only store accepted a commit")
	}
	if err := r.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if fs, err := w.Findings(ctx, "", 0); err != nil || len(fs) != 2 {
		t.Errorf("writer after the reader closed: %d findings, %v", len(fs), err)
	}
}

func TestOpenReadOnlyRefusesOtherSchema(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "v1.db")
	db, err := sql.Open("sqlite", path+"?_pragma=journal_mode(WAL)")
	if err != nil {
		t.Fatal(err)
	}
	ms, err := loadMigrations(migrationFS, "migrations")
	if err != nil {
		t.Fatal(err)
	}
	if err := migrate(ctx, db, ms[:1], func() string { return t0.Format(timeLayout) }); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenReadOnly(ctx, path); err == nil || !strings.Contains(err.Error(), "restart the svcwatch service with this version") {
		t.Errorf("older schema: err = %v", err)
	}
	if _, err := db.Exec(`INSERT INTO schema_migrations (version, name, applied) VALUES (99, 'future', 'x')`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := OpenReadOnly(ctx, path); err == nil || !strings.Contains(err.Error(), "use the svcwatch that wrote it") {
		t.Errorf("newer schema: err = %v", err)
	}
}

// Reading a stopped daemon's file leaves the database as it was: no
// checkpoint, no upgrade, nothing in the write-ahead log. (SQLite may create
// its -wal and -shm companions, empty, to coordinate with a writer.)
func TestOpenReadOnlyWritesNothing(t *testing.T) {
	ctx := context.Background()
	live := filepath.Join(t.TempDir(), "svcwatch.db")
	w, err := Open(ctx, live)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.Commit(ctx, state("dc01", 1), []inventory.Finding{finding("dc01", "f1", inventory.SeverityHigh)}); err != nil {
		t.Fatal(err)
	}
	// A daemon killed after that commit leaves it in the write-ahead log,
	// not yet in the database file: copy the pair as it is now.
	path := filepath.Join(t.TempDir(), "svcwatch.db")
	for _, suffix := range []string{"", "-wal"} {
		b, err := os.ReadFile(live + suffix)
		if err != nil {
			t.Fatal(err)
		}
		if suffix == "-wal" && len(b) == 0 {
			t.Fatal("the commit is not in the write-ahead log; the test needs it there")
		}
		if err := os.WriteFile(path+suffix, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	snapshot := func() map[string]string {
		out := map[string]string{}
		for _, suffix := range []string{"", "-wal"} {
			fi, err := os.Stat(path + suffix)
			if err != nil || (suffix == "-wal" && fi.Size() == 0) {
				out[suffix] = "empty"
				continue
			}
			b, err := os.ReadFile(path + suffix)
			if err != nil {
				t.Fatal(err)
			}
			out[suffix] = fmt.Sprintf("%d bytes, %s, %x", fi.Size(), fi.ModTime().Format(time.RFC3339Nano), b)
		}
		return out
	}
	before := snapshot()
	r, err := OpenReadOnly(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	fs, err := r.Findings(ctx, "", 0)
	if err != nil || len(fs) != 1 {
		t.Fatalf("Findings = %d, %v", len(fs), err)
	}
	err = r.Commit(ctx, state("dc01", 2), nil)
	if err == nil || !strings.Contains(err.Error(), "readonly") {
		t.Errorf("Commit on a read-only store: %v, want a readonly error", err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if after := snapshot(); !reflect.DeepEqual(before, after) {
		for k := range before {
			if before[k] != after[k] {
				t.Errorf("%s%s changed: %.80s → %.80s", filepath.Base(path), k, before[k], after[k])
			}
		}
	}
}
