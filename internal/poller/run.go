package poller

import (
	"context"
	"fmt"
	"time"

	"github.com/go-co-op/gocron/v2"
	"github.com/google/uuid"

	"github.com/svcwatch/svcwatch/internal/inventory"
)

// Run is the daemon: discovery on directory.interval, one named job per host
// on poll.interval ± jitter, delivery after commits, until ctx is cancelled.
// Stopping is graceful: no new polls start, in-flight polls finish or hit
// their deadline, and the outbox is flushed within a bounded time.
func (p *Poller) Run(ctx context.Context) error {
	// Polls run under their own context so that a stop lets them finish;
	// it is cancelled only once the scheduler has waited PollTimeout for them.
	jobCtx, cancelJobs := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelJobs()

	s, err := gocron.NewScheduler(
		gocron.WithClock(p.opts.Clock),
		gocron.WithStopTimeout(p.opts.PollTimeout+2*time.Second),
		gocron.WithGlobalJobOptions(gocron.WithSingletonMode(gocron.LimitModeReschedule)),
	)
	if err != nil {
		return fmt.Errorf("run: scheduler: %w", err)
	}
	jobs := &hostJobs{s: s, p: p, ctx: jobCtx, ids: make(map[string]uuid.UUID)}

	if _, err := p.Discover(ctx); err != nil && len(p.Hosts()) == 0 {
		return fmt.Errorf("run: first discovery found no hosts: %w", err)
	}
	if err := jobs.sync(p.Hosts()); err != nil {
		return err
	}
	_, err = s.NewJob(
		gocron.DurationJob(p.opts.DiscoveryInterval),
		gocron.NewTask(func() {
			if _, err := p.Discover(jobCtx); err != nil {
				p.opts.Logger.Warn("discovery", "err", err)
			}
			if err := jobs.sync(p.Hosts()); err != nil {
				p.opts.Logger.Error("update host jobs", "err", err)
			}
		}),
		gocron.WithName("discover"),
	)
	if err != nil {
		return fmt.Errorf("run: discovery job: %w", err)
	}

	if p.opts.Retention > 0 {
		_, err = s.NewJob(
			gocron.DurationJob(pruneEvery),
			// Run's own context: a stop interrupts a prune (its chunks so far
			// stay done) instead of keeping the scheduler from shutting down.
			gocron.NewTask(func() { p.prune(ctx) }),
			gocron.WithName("prune"),
			gocron.WithStartAt(gocron.WithStartImmediately()),
		)
		if err != nil {
			return fmt.Errorf("run: prune job: %w", err)
		}
	}

	delivered := make(chan struct{})
	go func() {
		defer close(delivered)
		p.deliverLoop(ctx)
	}()

	s.Start()
	p.opts.Logger.Info("running", "hosts", len(p.Hosts()), "interval", p.opts.Interval)
	<-ctx.Done()
	p.opts.Logger.Info("stopping: waiting for in-flight polls", "deadline", p.opts.PollTimeout)
	serr := s.Shutdown()
	cancelJobs()
	<-delivered

	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), deliverBudget)
	defer cancel()
	if err := p.Deliver(fctx); err != nil {
		p.opts.Logger.Error("final delivery incomplete; the outbox keeps the rest for the next start", "err", err)
	}
	if serr != nil {
		return fmt.Errorf("run: stop scheduler: %w", serr)
	}
	return nil
}

// pruneEvery is how often Run prunes history past the retention (and once
// at start); pruneTimeout bounds one pass.
const (
	pruneEvery   = 24 * time.Hour
	pruneTimeout = 5 * time.Minute
)

// prune forgets history older than the retention (Store.Prune says what);
// a failure is logged and retried on the next pass, it never stops polling.
func (p *Poller) prune(ctx context.Context) {
	if p.opts.Retention <= 0 || ctx.Err() != nil {
		return
	}
	pctx, cancel := context.WithTimeout(ctx, pruneTimeout)
	defer cancel()
	got, err := p.parts.Store.Prune(pctx, p.opts.Clock.Now().Add(-p.opts.Retention))
	log := p.opts.Logger.With("retention", p.opts.Retention, "findings", got.Findings, "departed_host_states", got.States)
	switch {
	case err != nil && ctx.Err() != nil:
		log.Info("pruning history past state.retention stopped with svcwatch; the rest is pruned at the next start")
	case err != nil:
		log.Warn("pruning history past state.retention failed; it is tried again later, nothing is lost meanwhile", "err", err)
	case got.Findings > 0 || got.States > 0:
		log.Info("pruned history past state.retention")
	}
}

// deliverLoop drains the outbox after each commit that produced findings and
// every DeliveryInterval, until ctx is done.
func (p *Poller) deliverLoop(ctx context.Context) {
	t := p.opts.Clock.NewTicker(p.opts.DeliveryInterval)
	defer t.Stop()
	// Findings a previous process committed but did not deliver go out first.
	if err := p.Deliver(ctx); err != nil && ctx.Err() == nil {
		p.opts.Logger.Warn("delivery", "err", err)
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.wake:
		case <-t.Chan():
		}
		if err := p.Deliver(ctx); err != nil && ctx.Err() == nil {
			p.opts.Logger.Warn("delivery", "err", err)
		}
	}
}

// hostJobs keeps one named gocron job per monitored host.
type hostJobs struct {
	s   gocron.Scheduler
	p   *Poller
	ctx context.Context
	ids map[string]uuid.UUID
}

// sync adds jobs for new hosts and removes those of hosts that left.
func (j *hostJobs) sync(hosts []inventory.Host) error {
	want := make(map[string]inventory.Host, len(hosts))
	for _, h := range hosts {
		want[h.Name] = h
	}
	for name, id := range j.ids {
		if _, ok := want[name]; !ok {
			if err := j.s.RemoveJob(id); err != nil {
				return fmt.Errorf("remove poll job for %s: %w", name, err)
			}
			delete(j.ids, name)
			if f, ok := j.p.parts.Collector.(Forgetter); ok {
				f.Forget(name) // e.g. delete its kept shell now, not after 30 idle minutes
			}
		}
	}
	for name, h := range want {
		if _, ok := j.ids[name]; ok {
			continue
		}
		job, err := j.s.NewJob(j.p.pollDefinition(), gocron.NewTask(func() {
			if err := j.p.pollHost(j.ctx, j.p.current(h), true); err != nil {
				j.p.opts.Logger.Debug("poll", "host", name, "err", err)
			}
		}), gocron.WithName("poll "+name), gocron.WithTags("poll"),
			gocron.WithStartAt(gocron.WithStartImmediately()))
		if err != nil {
			return fmt.Errorf("add poll job for %s: %w", name, err)
		}
		j.ids[name] = job.ID()
	}
	return nil
}

func (p *Poller) pollDefinition() gocron.JobDefinition {
	lo, hi := p.opts.Interval-p.opts.Jitter, p.opts.Interval+p.opts.Jitter
	if p.opts.Jitter <= 0 || lo <= 0 {
		return gocron.DurationJob(p.opts.Interval)
	}
	return gocron.DurationRandomJob(lo, hi)
}

// monitored reports whether name is in the monitored set (Run's jobs are
// made from it).
func (p *Poller) monitored(name string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, ok := p.hosts[name]
	return ok
}

// current returns the latest discovered version of h (reasons, OS may change).
func (p *Poller) current(h inventory.Host) inventory.Host {
	p.mu.Lock()
	defer p.mu.Unlock()
	if got, ok := p.hosts[h.Name]; ok {
		return got
	}
	return h
}
