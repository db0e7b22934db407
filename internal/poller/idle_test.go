package poller

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/svcwatch/svcwatch/internal/inventory"
	"github.com/svcwatch/svcwatch/internal/store"
)

// countingStore counts how a poll touches the stored inventory.
type countingStore struct {
	*store.Store
	mu                           sync.Mutex
	services, commits, headsOnly int
}

func (c *countingStore) Services(ctx context.Context, host string) ([]inventory.Service, error) {
	c.mu.Lock()
	c.services++
	c.mu.Unlock()
	return c.Store.Services(ctx, host)
}

func (c *countingStore) Commit(ctx context.Context, st inventory.State, fs []inventory.Finding) error {
	c.mu.Lock()
	c.commits++
	c.mu.Unlock()
	return c.Store.Commit(ctx, st, fs)
}

func (c *countingStore) CommitHead(ctx context.Context, st inventory.State, fs []inventory.Finding) error {
	c.mu.Lock()
	c.headsOnly++
	c.mu.Unlock()
	return c.Store.CommitHead(ctx, st, fs)
}

func (c *countingStore) take() (services, commits, headsOnly int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	services, commits, headsOnly = c.services, c.commits, c.headsOnly
	c.services, c.commits, c.headsOnly = 0, 0, 0
	return
}

// TestIdlePollLeavesInventoryAlone: a poll that brings neither an inventory
// nor events reads and writes only the state head; events are still joined
// to the stored inventory, and a failed poll never touches it.
func TestIdlePollLeavesInventoryAlone(t *testing.T) {
	ctx := context.Background()
	clock := clockwork.NewFakeClockAt(time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC))
	host := inventory.Host{Name: "dc01.lab.example", Reasons: []inventory.Reason{{Kind: inventory.ReasonDC}}}
	base := idleObservation(host.Name, clock.Now())
	var next func(req inventory.CollectRequest) (inventory.Observation, error)
	col := &scriptedCollector{answer: func(_ string, req inventory.CollectRequest) (inventory.Observation, error) { return next(req) }}
	raw, err := store.Open(ctx, t.TempDir()+"/state.db")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	st := &countingStore{Store: raw}
	opts := NewOptions()
	opts.Clock = clock
	p, err := New(Parts{Directory: &fakeDirectory{hosts: []inventory.Host{host}}, Collector: col, Store: st}, opts)
	if err != nil {
		t.Fatal(err)
	}

	unchanged := func(req inventory.CollectRequest) (inventory.Observation, error) {
		if req.Digest != base.Digest {
			t.Errorf("request digest %q, want the stored %q", req.Digest, base.Digest)
		}
		o := base
		o.At, o.Services = clock.Now(), nil
		return o, nil
	}
	spoolerInstalled := func(req inventory.CollectRequest) (inventory.Observation, error) {
		base.Log.NewestRecord = 11 // the log moves on for the polls after this one too
		o, _ := unchanged(req)
		o.Events = []inventory.Event{{ID: inventory.EventServiceInstalled, RecordID: 11, Time: clock.Now(),
			Data: []string{"Print Spooler", `C:\Windows\System32\spoolsv.exe`, "user mode service", "auto start", "LocalSystem"}}}
		return o, nil
	}
	for _, step := range []struct {
		name                                 string
		answer                               func(inventory.CollectRequest) (inventory.Observation, error)
		wantErr                              bool
		wantServices, wantFull, wantHeadOnly int
		wantKind                             inventory.Kind
	}{
		{name: "first poll (baseline)", answer: func(inventory.CollectRequest) (inventory.Observation, error) { return base, nil },
			wantServices: 1, wantFull: 1},
		{name: "idle", answer: unchanged, wantHeadOnly: 1},
		{name: "idle again", answer: unchanged, wantHeadOnly: 1},
		{name: "7045 with the inventory unchanged", answer: spoolerInstalled, wantServices: 1, wantFull: 1, wantKind: inventory.KindInstalled},
		{name: "failed", answer: func(inventory.CollectRequest) (inventory.Observation, error) {
			return inventory.Observation{}, errRefused
		},
			wantErr: true, wantHeadOnly: 1},
		{name: "idle after the failure", answer: unchanged, wantHeadOnly: 1},
	} {
		next = step.answer
		before := len(pendingKinds(t, raw))
		err := p.PollHost(ctx, host)
		if (err != nil) != step.wantErr || (err != nil && !errors.Is(err, errRefused)) {
			t.Fatalf("%s: PollHost = %v", step.name, err)
		}
		services, full, headOnly := st.take()
		if services != step.wantServices || full != step.wantFull || headOnly != step.wantHeadOnly {
			t.Errorf("%s: inventory loads %d, full commits %d, head commits %d; want %d, %d, %d",
				step.name, services, full, headOnly, step.wantServices, step.wantFull, step.wantHeadOnly)
		}
		kinds := pendingKinds(t, raw)[before:]
		if step.wantKind != "" && (len(kinds) != 1 || kinds[0] != step.wantKind) {
			t.Errorf("%s: new findings %v, want one %s (joined to the stored inventory)", step.name, kinds, step.wantKind)
		}
		if step.wantKind == "" && len(kinds) != 0 {
			t.Errorf("%s: unexpected findings %v", step.name, kinds)
		}
		clock.Advance(time.Minute)
	}
	state, err := raw.State(ctx, host.Name)
	if err != nil || len(state.Services) != 1 || state.Services[0].Name != "Spooler" || state.Watermark != 11 {
		t.Errorf("stored state after the run: %+v, %v; want the baseline inventory and watermark 11", state, err)
	}
}

// TestScheduledPollOfRemovedHostSkipped: a scheduled poll that was waiting
// for a worker slot when its host left the monitored set does not reach the
// collector (which has let go of the host); PollHost itself (once, bench)
// polls whatever it is given.
func TestScheduledPollOfRemovedHostSkipped(t *testing.T) {
	ctx := context.Background()
	clock := clockwork.NewFakeClockAt(time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC))
	kept := inventory.Host{Name: "dc01.lab.example"}
	removed := inventory.Host{Name: "srv40.lab.example"}
	dir := &fakeDirectory{hosts: []inventory.Host{kept, removed}}
	col := &scriptedCollector{answer: func(h string, _ inventory.CollectRequest) (inventory.Observation, error) {
		return idleObservation(h, clock.Now()), nil
	}}
	p, _ := newTestPoller(t, dir, col, clock)
	if _, err := p.Discover(ctx); err != nil {
		t.Fatal(err)
	}
	dir.set(nil, kept)
	if _, err := p.Discover(ctx); err != nil {
		t.Fatal(err)
	}
	for _, h := range []inventory.Host{kept, removed} {
		if err := p.pollHost(ctx, h, true); err != nil {
			t.Fatalf("%s: %v", h.Name, err)
		}
	}
	if n := col.count(kept.Name); n != 1 {
		t.Errorf("monitored host polled %d times, want 1", n)
	}
	if n := col.count(removed.Name); n != 0 {
		t.Errorf("removed host reached the collector %d times from a scheduled poll, want 0", n)
	}
	if err := p.PollHost(ctx, removed); err != nil || col.count(removed.Name) != 1 {
		t.Errorf("PollHost of a host outside the set: %v, %d collects; want it polled", err, col.count(removed.Name))
	}
}
