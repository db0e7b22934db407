package poller

import (
	"context"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/svcwatch/svcwatch/internal/inventory"
	"github.com/svcwatch/svcwatch/internal/store"
)

// deliverAll is a Dispatcher that marks the whole outbox delivered.
type deliverAll struct{ st *store.Store }

func (d deliverAll) Drain(ctx context.Context) (int, error) {
	out, err := d.st.Pending(ctx, 0)
	if err != nil {
		return 0, err
	}
	seqs := make([]int64, len(out))
	for i, o := range out {
		seqs[i] = o.Seq
	}
	return len(out), d.st.Delivered(ctx, seqs...)
}

// The store stamps rows with the real time, so the poller's clock is moved
// past the retention to make them old.
func TestOncePrunesPastRetention(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name                       string
		retention                  time.Duration
		wantFindings, wantDeparted bool // still stored after 91 days
	}{
		{name: "90 days", retention: 90 * 24 * time.Hour, wantFindings: false, wantDeparted: false},
		{name: "keep everything", retention: 0, wantFindings: true, wantDeparted: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := clockwork.NewFakeClockAt(time.Now())
			stay := inventory.Host{Name: "dc01.lab.example", Reasons: []inventory.Reason{{Kind: inventory.ReasonDC}}}
			leave := inventory.Host{Name: "dc02.lab.example", Reasons: []inventory.Reason{{Kind: inventory.ReasonDC}}}
			dir := &fakeDirectory{hosts: []inventory.Host{stay, leave}}
			col := &scriptedCollector{answer: func(h string, _ inventory.CollectRequest) (inventory.Observation, error) {
				return idleObservation(h, clock.Now()), nil
			}}
			p, st := newTestPoller(t, dir, col, clock)
			p.parts.Dispatcher = deliverAll{st}
			p.opts.Retention = tc.retention

			if _, err := p.Once(ctx); err != nil { // baseline both
				t.Fatal(err)
			}
			dir.set(nil, stay) // dc02 leaves: a scope finding, delivered
			if _, err := p.Once(ctx); err != nil {
				t.Fatal(err)
			}
			history, err := st.Findings(ctx, "", 0)
			if err != nil {
				t.Fatal(err)
			}
			if len(history) == 0 {
				t.Fatal("no findings stored before pruning; the test needs some")
			}

			clock.Advance(91 * 24 * time.Hour)
			rep, err := p.Once(ctx)
			if err != nil || len(rep.Failed) != 0 {
				t.Fatalf("Once = %+v, %v", rep, err)
			}
			left, err := st.Findings(ctx, "", 0)
			if err != nil {
				t.Fatal(err)
			}
			if got := len(left) > 0; got != tc.wantFindings {
				t.Errorf("findings kept = %v (%d of %d), want %v", got, len(left), len(history), tc.wantFindings)
			}
			departed, err := st.Head(ctx, leave.Name)
			if err != nil {
				t.Fatal(err)
			}
			if got := departed.Host != ""; got != tc.wantDeparted {
				t.Errorf("departed host's state kept = %v, want %v", got, tc.wantDeparted)
			}
			monitored, err := st.Head(ctx, stay.Name)
			if err != nil {
				t.Fatal(err)
			}
			if !monitored.Baselined {
				t.Error("a monitored host's baseline was pruned")
			}
		})
	}
}

func TestRunPrunesAtStart(t *testing.T) {
	ctx := context.Background()
	clock := clockwork.NewFakeClockAt(time.Now().Add(91 * 24 * time.Hour))
	stay := inventory.Host{Name: "dc01.lab.example", Reasons: []inventory.Reason{{Kind: inventory.ReasonDC}}}
	col := &scriptedCollector{answer: func(h string, _ inventory.CollectRequest) (inventory.Observation, error) {
		return idleObservation(h, clock.Now()), nil
	}}
	p, st := newTestPoller(t, &fakeDirectory{hosts: []inventory.Host{stay}}, col, clock)
	p.opts.Retention = 90 * 24 * time.Hour
	// A host polled by an earlier process and no longer monitored.
	if err := st.Commit(ctx, inventory.State{Host: "gone.lab.example", Baselined: true}, nil); err != nil {
		t.Fatal(err)
	}

	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- p.Run(runCtx) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := st.Head(ctx, "gone.lab.example")
		if err != nil {
			t.Fatal(err)
		}
		if st.Host == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Run did not prune the departed host's state at start")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}
