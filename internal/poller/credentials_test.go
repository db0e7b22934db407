package poller

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/svcwatch/svcwatch/internal/inventory"
)

func TestWrongPasswordPausesPollingBeforeLockout(t *testing.T) {
	ctx := context.Background()
	clock := clockwork.NewFakeClockAt(time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC))
	var hosts []inventory.Host
	for _, n := range []string{"dc01", "dc02", "dc03", "dc04", "dc05", "dc06"} {
		hosts = append(hosts, inventory.Host{Name: n + ".lab.example"})
	}
	var logons atomic.Int32
	col := &scriptedCollector{answer: func(string, inventory.CollectRequest) (inventory.Observation, error) {
		logons.Add(1)
		return inventory.Observation{}, errAuth
	}}
	p, st := newTestPoller(t, &fakeDirectory{hosts: hosts}, col, clock)

	rep, err := p.Once(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n := logons.Load(); n != breakerHosts {
		t.Fatalf("%d logons were attempted with a refused password, want %d (then pause)", n, breakerHosts)
	}
	paused := 0
	for _, f := range rep.Failed {
		if errors.Is(f.Err, ErrCredentialsPaused) {
			paused++
		}
	}
	if paused != len(hosts)-breakerHosts {
		t.Fatalf("%d hosts reported the pause, want %d: %v", paused, len(hosts)-breakerHosts, rep.Failed)
	}
	rows, err := st.Pending(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || rows[0].Finding.Host.Name != credentialsHost {
		t.Fatalf("want one credentials alert, outbox %v", rows)
	}

	// Still paused a while later; after MaxBackoff one probe runs again.
	clock.Advance(30 * time.Minute)
	if err := p.PollHost(ctx, hosts[5]); !errors.Is(err, ErrCredentialsPaused) {
		t.Fatalf("during the pause: %v", err)
	}
	clock.Advance(31 * time.Minute)
	before := logons.Load()
	_ = p.PollHost(ctx, hosts[5])
	if logons.Load() != before+1 {
		t.Fatal("no probe after the pause ended")
	}
}

func TestUnprovenCredentialsPollOneAtATime(t *testing.T) {
	clock := clockwork.NewFakeClockAt(time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC))
	var hosts []inventory.Host
	for _, n := range []string{"a", "b", "c", "d", "e", "f", "g", "h"} {
		hosts = append(hosts, inventory.Host{Name: n + ".lab.example"})
	}
	var inFlight, peakUnproven, peak atomic.Int32
	var mu sync.Mutex
	succeeded := false
	col := &scriptedCollector{answer: func(h string, _ inventory.CollectRequest) (inventory.Observation, error) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		mu.Lock()
		if !succeeded && n > peakUnproven.Load() {
			peakUnproven.Store(n)
		}
		mu.Unlock()
		if n > peak.Load() {
			peak.Store(n)
		}
		time.Sleep(20 * time.Millisecond)
		mu.Lock()
		succeeded = true
		mu.Unlock()
		return idleObservation(h, clock.Now()), nil
	}}
	p, _ := newTestPoller(t, &fakeDirectory{hosts: hosts}, col, clock)
	if _, err := p.Once(context.Background()); err != nil {
		t.Fatal(err)
	}
	if peakUnproven.Load() != 1 {
		t.Fatalf("%d polls ran at once before any host accepted the credentials, want 1", peakUnproven.Load())
	}
	if peak.Load() < 2 {
		t.Fatalf("polls never ran concurrently after the credentials were proven (peak %d)", peak.Load())
	}
}

func TestPanicInAPartIsTheHostsFailure(t *testing.T) {
	clock := clockwork.NewFakeClockAt(time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC))
	host := inventory.Host{Name: "dc01.lab.example"}
	col := &scriptedCollector{answer: func(string, inventory.CollectRequest) (inventory.Observation, error) {
		panic("index out of range")
	}}
	p, st := newTestPoller(t, &fakeDirectory{hosts: []inventory.Host{host}}, col, clock)
	err := p.PollHost(context.Background(), host)
	if err == nil {
		t.Fatal("a panicking poll returned no error")
	}
	state, serr := st.State(context.Background(), host.Name)
	if serr != nil || state.Failures != 1 || state.LastError == "" {
		t.Fatalf("the panic was not recorded as a failure: %+v %v", state, serr)
	}
}
