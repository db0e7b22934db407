package poller

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/svcwatch/svcwatch/internal/inventory"
	"github.com/svcwatch/svcwatch/internal/store"
)

// fakeDirectory returns a settable host set or error.
type fakeDirectory struct {
	mu    sync.Mutex
	hosts []inventory.Host
	err   error
	calls int
}

func (d *fakeDirectory) Discover(context.Context) ([]inventory.Host, []string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls++
	return append([]inventory.Host(nil), d.hosts...), nil, d.err
}

func (d *fakeDirectory) set(err error, hosts ...inventory.Host) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.hosts, d.err = hosts, err
}

// scriptedCollector answers each host from a function; it records calls.
type scriptedCollector struct {
	mu     sync.Mutex
	answer func(host string, req inventory.CollectRequest) (inventory.Observation, error)
	calls  map[string]int
}

func (c *scriptedCollector) Collect(_ context.Context, h inventory.Host, req inventory.CollectRequest) (inventory.Observation, error) {
	c.mu.Lock()
	if c.calls == nil {
		c.calls = map[string]int{}
	}
	c.calls[h.Name]++
	answer := c.answer
	c.mu.Unlock()
	return answer(h.Name, req)
}

func (c *scriptedCollector) count(host string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls[host]
}

var errRefused = errors.New("connection refused")

func idleObservation(host string, at time.Time) inventory.Observation {
	return inventory.Observation{
		Host: host, At: at, Digest: fmt.Sprintf("%064x", 1),
		Log:      inventory.LogInfo{OldestRecord: 1, NewestRecord: 10, Retention: "circular", MaxBytes: 20 << 20},
		Services: []inventory.Service{{Name: "Spooler", DisplayName: "Print Spooler", ImagePath: `C:\Windows\System32\spoolsv.exe`, StartMode: inventory.StartAuto, Type: inventory.TypeOwnProcess}},
	}
}

func newTestPoller(t *testing.T, dir Discoverer, col Collector, clock clockwork.Clock) (*Poller, *store.Store) {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	opts := NewOptions()
	opts.Clock = clock
	opts.UnreachableAfter = 2
	opts.Interval = time.Minute
	opts.Jitter = 0
	opts.IsAuthError = func(err error) bool { return errors.Is(err, errAuth) }
	p, err := New(Parts{Directory: dir, Collector: col, Store: st}, opts)
	if err != nil {
		t.Fatal(err)
	}
	return p, st
}

var errAuth = errors.New("401 unauthorized")

func pendingKinds(t *testing.T, st *store.Store) []inventory.Kind {
	t.Helper()
	rows, err := st.Pending(context.Background(), 1000)
	if err != nil {
		t.Fatal(err)
	}
	var out []inventory.Kind
	for _, r := range rows {
		out = append(out, r.Finding.Kind)
	}
	return out
}

func TestUnreachableThenRecoveredOncePerOutage(t *testing.T) {
	ctx := context.Background()
	clock := clockwork.NewFakeClockAt(time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC))
	host := inventory.Host{Name: "dc01.lab.example", Reasons: []inventory.Reason{{Kind: inventory.ReasonDC}}}
	down := false
	col := &scriptedCollector{answer: func(h string, _ inventory.CollectRequest) (inventory.Observation, error) {
		if down {
			return inventory.Observation{}, errRefused
		}
		return idleObservation(h, clock.Now()), nil
	}}
	p, st := newTestPoller(t, &fakeDirectory{hosts: []inventory.Host{host}}, col, clock)

	steps := []struct {
		down      bool
		wantErr   bool
		wantKinds []inventory.Kind // outbox after the step
	}{
		{down: false},               // baseline
		{down: true, wantErr: true}, // failure 1: nothing yet
		{down: true, wantErr: true, wantKinds: []inventory.Kind{inventory.KindUnreachable}}, // failure 2 = unreachable_after
		{down: true, wantErr: true, wantKinds: []inventory.Kind{inventory.KindUnreachable}}, // still down: no second alert
		{down: false, wantKinds: []inventory.Kind{inventory.KindUnreachable, inventory.KindRecovered}},
		{down: false, wantKinds: []inventory.Kind{inventory.KindUnreachable, inventory.KindRecovered}},
	}
	for i, s := range steps {
		down = s.down
		clock.Advance(2 * time.Hour) // past any back-off
		err := p.PollHost(ctx, host)
		if (err != nil) != s.wantErr {
			t.Fatalf("step %d: err = %v, want error %v", i, err, s.wantErr)
		}
		if got := pendingKinds(t, st); fmt.Sprint(got) != fmt.Sprint(s.wantKinds) {
			t.Fatalf("step %d: outbox kinds = %v, want %v", i, got, s.wantKinds)
		}
	}
}

func TestBackoff(t *testing.T) {
	p := &Poller{opts: Options{Interval: time.Minute, MaxBackoff: time.Hour}}
	tests := []struct {
		failures int
		auth     bool
		want     time.Duration
	}{
		{1, false, 0}, // a single failure retries on the next cycle
		{2, false, time.Minute},
		{3, false, 2 * time.Minute},
		{4, false, 4 * time.Minute},
		{20, false, time.Hour},     // capped
		{1, true, 4 * time.Minute}, // refused credentials never retry fast
		{2, true, 4 * time.Minute},
		{3, true, 8 * time.Minute},
		{30, true, time.Hour},
	}
	for _, tt := range tests {
		if got := p.backoff(tt.failures, tt.auth); got != tt.want {
			t.Errorf("backoff(%d, auth=%v) = %v, want %v", tt.failures, tt.auth, got, tt.want)
		}
	}
}

func TestBackingOffHostIsNotPolled(t *testing.T) {
	ctx := context.Background()
	clock := clockwork.NewFakeClockAt(time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC))
	host := inventory.Host{Name: "srv01.lab.example"}
	col := &scriptedCollector{answer: func(string, inventory.CollectRequest) (inventory.Observation, error) {
		return inventory.Observation{}, errAuth
	}}
	p, _ := newTestPoller(t, &fakeDirectory{hosts: []inventory.Host{host}}, col, clock)
	if err := p.PollHost(ctx, host); !errors.Is(err, errAuth) {
		t.Fatalf("first poll: %v", err)
	}
	clock.Advance(3 * time.Minute)
	if err := p.PollHost(ctx, host); !errors.Is(err, ErrBackingOff) {
		t.Fatalf("poll during back-off: err %v, want ErrBackingOff", err)
	}
	if n := col.count(host.Name); n != 1 {
		t.Fatalf("collector called %d times during back-off, want 1", n)
	}
	clock.Advance(2 * time.Minute)
	if err := p.PollHost(ctx, host); !errors.Is(err, errAuth) {
		t.Fatalf("poll after back-off: %v", err)
	}
}

func TestDiscoveryFailureKeepsTheLastSetAndAlertsOnce(t *testing.T) {
	ctx := context.Background()
	clock := clockwork.NewFakeClockAt(time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC))
	a := inventory.Host{Name: "dc01.lab.example", Reasons: []inventory.Reason{{Kind: inventory.ReasonDC}}}
	b := inventory.Host{Name: "dc02.lab.example", Reasons: []inventory.Reason{{Kind: inventory.ReasonDC}}}
	dir := &fakeDirectory{hosts: []inventory.Host{a}}
	col := &scriptedCollector{answer: func(h string, _ inventory.CollectRequest) (inventory.Observation, error) {
		return idleObservation(h, clock.Now()), nil
	}}
	p, st := newTestPoller(t, dir, col, clock)

	if _, err := p.Discover(ctx); err != nil {
		t.Fatal(err)
	}
	if got := pendingKinds(t, st); len(got) != 0 {
		t.Fatalf("first discovery is the baseline, got findings %v", got)
	}
	dir.set(errors.New("ldap: connection refused"))
	for range 3 {
		hosts, err := p.Discover(ctx)
		if err == nil || len(hosts) != 1 || hosts[0].Name != a.Name {
			t.Fatalf("failed discovery: hosts %v err %v, want the last set and an error", hosts, err)
		}
	}
	if got := p.Hosts(); len(got) != 1 {
		t.Fatalf("monitored set emptied: %v", got)
	}
	if got := pendingKinds(t, st); len(got) != 1 {
		t.Fatalf("want exactly one discovery-failure alert, got %v", got)
	}
	dir.set(nil, a, b) // a new DC appears
	if _, err := p.Discover(ctx); err != nil {
		t.Fatal(err)
	}
	got := pendingKinds(t, st)
	if len(got) != 2 || got[1] != inventory.KindScope {
		t.Fatalf("want one scope finding for the new DC, outbox %v", got)
	}
}

func TestRunSchedulesHostsAndFollowsDiscovery(t *testing.T) {
	clock := clockwork.NewFakeClockAt(time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC))
	a := inventory.Host{Name: "dc01.lab.example"}
	b := inventory.Host{Name: "dc02.lab.example"}
	dir := &fakeDirectory{hosts: []inventory.Host{a}}
	col := &scriptedCollector{answer: func(h string, _ inventory.CollectRequest) (inventory.Observation, error) {
		return idleObservation(h, clock.Now()), nil
	}}
	p, _ := newTestPoller(t, dir, col, clock)
	p.opts.DiscoveryInterval = 10 * time.Minute

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()

	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitFor("first poll of dc01", func() bool { return col.count(a.Name) >= 1 })
	dir.set(nil, b) // dc01 leaves, dc02 arrives
	for i := 0; i < 10 && col.count(b.Name) == 0; i++ {
		_ = clock.BlockUntilContext(ctx, 1)
		clock.Advance(time.Minute)
		time.Sleep(20 * time.Millisecond)
	}
	waitFor("dc02 polled after discovery added it", func() bool { return col.count(b.Name) >= 1 })
	before := col.count(a.Name)
	for range 3 {
		clock.Advance(time.Minute)
		time.Sleep(20 * time.Millisecond)
	}
	if col.count(a.Name) != before {
		t.Fatalf("dc01 still polled after discovery removed it")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not stop")
	}
}
