// Package poller wires svcwatch together: discovery, polling, detection,
// triage, the store and delivery. It is the only package that knows every
// part; the parts it consumes are the small interfaces below.
package poller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/svcwatch/svcwatch/internal/inventory"
	"github.com/svcwatch/svcwatch/internal/store"
)

// Discoverer finds the hosts to monitor.
type Discoverer interface {
	// Discover returns the monitored hosts and warnings worth logging
	// (e.g. a computer without dNSHostName). An error means the set is unknown.
	Discover(ctx context.Context) (hosts []inventory.Host, warnings []string, err error)
}

// Resolver turns an installer SID into an account.
type Resolver interface {
	ResolveSID(ctx context.Context, sid string) (inventory.Account, error)
}

// Collector runs one poll of one host.
type Collector interface {
	Collect(ctx context.Context, host inventory.Host, req inventory.CollectRequest) (inventory.Observation, error)
}

// Forgetter is implemented by collectors that keep something per host (a
// kept WinRM shell): Forget is called when a host leaves the monitored set.
type Forgetter interface {
	Forget(host string)
}

// Store keeps host state, findings and the outbox. A host's state is read
// and written in two parts so an idle poll never touches the inventory: Head
// is the state without Services, Services the inventory; Commit writes both,
// CommitHead the head alone.
type Store interface {
	Head(ctx context.Context, host string) (inventory.State, error)
	Services(ctx context.Context, host string) ([]inventory.Service, error)
	Commit(ctx context.Context, st inventory.State, fs []inventory.Finding) error
	CommitHead(ctx context.Context, st inventory.State, fs []inventory.Finding) error
	Hosts(ctx context.Context) ([]inventory.Host, error)
	SaveHosts(ctx context.Context, hosts []inventory.Host, fs []inventory.Finding) error
	Prune(ctx context.Context, before time.Time) (store.Pruned, error)
}

// Triager rates findings and applies the allowlist.
type Triager interface {
	Apply(now time.Time, fs []inventory.Finding) []inventory.Finding
}

// Dispatcher delivers what the outbox holds.
type Dispatcher interface {
	Drain(ctx context.Context) (sent int, err error)
}

// AuthError reports whether err means the credentials were refused; such a
// host backs off harder so the poller never locks the account out.
type AuthError func(err error) bool

// Options are the poller's settings; NewOptions fills the defaults.
type Options struct {
	Interval          time.Duration // poll.interval
	Jitter            time.Duration // poll.jitter
	Lookback          time.Duration // poll.lookback
	UnreachableAfter  int           // poll.unreachable_after
	MaxBackoff        time.Duration // poll.max_backoff
	PollTimeout       time.Duration // winrm.timeout: deadline of one host poll
	MaxEvents         int           // winrm.max_events
	Concurrency       int           // winrm.concurrency
	DiscoveryInterval time.Duration // directory.interval
	DeliveryInterval  time.Duration // how often the outbox is drained besides after polls
	Retention         time.Duration // state.retention: history older than this is pruned; 0 keeps all
	Clock             clockwork.Clock
	Logger            *slog.Logger
	Metrics           *Metrics
	IsAuthError       AuthError
	// Progress, when set, is called after each host poll of Once.
	Progress func(done, total, failed int)
}

// NewOptions returns options with svcwatch's defaults.
func NewOptions() Options {
	return Options{
		Interval:          5 * time.Minute,
		Jitter:            30 * time.Second,
		Lookback:          24 * time.Hour,
		UnreachableAfter:  3,
		MaxBackoff:        time.Hour,
		PollTimeout:       60 * time.Second,
		MaxEvents:         500,
		Concurrency:       8,
		DiscoveryInterval: time.Hour,
		DeliveryInterval:  10 * time.Second,
	}
}

func (o *Options) fill() {
	d := NewOptions()
	if o.Interval <= 0 {
		o.Interval = d.Interval
	}
	if o.Lookback <= 0 {
		o.Lookback = d.Lookback
	}
	if o.UnreachableAfter <= 0 {
		o.UnreachableAfter = d.UnreachableAfter
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = d.MaxBackoff
	}
	if o.PollTimeout <= 0 {
		o.PollTimeout = d.PollTimeout
	}
	if o.MaxEvents <= 0 {
		o.MaxEvents = d.MaxEvents
	}
	if o.Concurrency <= 0 {
		o.Concurrency = d.Concurrency
	}
	if o.DiscoveryInterval <= 0 {
		o.DiscoveryInterval = d.DiscoveryInterval
	}
	if o.DeliveryInterval <= 0 {
		o.DeliveryInterval = d.DeliveryInterval
	}
	if o.Clock == nil {
		o.Clock = clockwork.NewRealClock()
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.IsAuthError == nil {
		o.IsAuthError = func(error) bool { return false }
	}
}

// Parts are the edges the poller drives. Resolver, Triager and Dispatcher may be nil.
type Parts struct {
	Directory  Discoverer
	Resolver   Resolver
	Collector  Collector
	Store      Store
	Triager    Triager
	Dispatcher Dispatcher
}

// Poller runs discovery, polls and delivery.
type Poller struct {
	opts  Options
	parts Parts
	sem   chan struct{} // global cap on concurrent polls (winrm.concurrency)

	pollSeq atomic.Uint64 // poll ids for logs

	mu             sync.Mutex
	hosts          map[string]inventory.Host
	notBefore      map[string]time.Time // per-host back-off
	discoveryFails int                  // consecutive failed discoveries
	wake           chan struct{}        // nudges the dispatcher after a commit
	creds          *credentialGuard
}

// New returns a poller over the given parts.
func New(parts Parts, opts Options) (*Poller, error) {
	if parts.Directory == nil || parts.Collector == nil || parts.Store == nil {
		return nil, errors.New("poller: directory, collector and store are required")
	}
	opts.fill()
	return &Poller{
		opts:      opts,
		parts:     parts,
		sem:       make(chan struct{}, opts.Concurrency),
		hosts:     make(map[string]inventory.Host),
		notBefore: make(map[string]time.Time),
		wake:      make(chan struct{}, 1),
		creds:     newCredentialGuard(),
	}, nil
}

// Hosts returns the monitored set, sorted by name.
func (p *Poller) Hosts() []inventory.Host {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]inventory.Host, 0, len(p.hosts))
	for _, h := range p.hosts {
		out = append(out, h)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Discover refreshes the monitored set. On failure the last good set (from
// memory, else from the store) is kept: discovery never empties it.
func (p *Poller) Discover(ctx context.Context) ([]inventory.Host, error) {
	log := p.opts.Logger
	now := p.opts.Clock.Now().UTC()
	previous, err := p.parts.Store.Hosts(ctx)
	if err != nil {
		return nil, fmt.Errorf("discover: read the last monitored set: %w", err)
	}
	// Bounded so a stalled directory cannot hold up the next discovery.
	dctx, cancel := context.WithTimeout(ctx, min(p.opts.DiscoveryInterval, maxDiscovery))
	hosts, warnings, derr := p.parts.Directory.Discover(dctx)
	cancel()
	for _, w := range warnings {
		log.Warn("discovery", "warning", w)
	}
	if derr != nil {
		p.mu.Lock()
		p.discoveryFails++
		first := p.discoveryFails == 1
		if len(p.hosts) == 0 {
			for _, h := range previous {
				p.hosts[h.Name] = h
			}
		}
		p.mu.Unlock()
		p.opts.Metrics.discovery(false, now)
		log.Error("discovery failed; keeping the last monitored set", "hosts", len(previous), "err", derr)
		if first {
			fs := p.triage(now, []inventory.Finding{inventory.DiscoveryFailedFinding(derr.Error(), now)})
			if err := p.parts.Store.SaveHosts(ctx, previous, fs); err != nil {
				log.Error("store the discovery failure", "err", err)
			} else {
				p.committed(fs)
			}
		}
		return previous, fmt.Errorf("discover: %w", derr)
	}
	p.opts.Metrics.discovery(true, now)
	var fs []inventory.Finding
	if len(previous) > 0 { // the first discovery is the baseline, not news
		fs = p.triage(now, inventory.ScopeFindings(previous, hosts, now))
	}
	if err := p.parts.Store.SaveHosts(ctx, hosts, fs); err != nil {
		return nil, fmt.Errorf("discover: save the monitored set: %w", err)
	}
	p.mu.Lock()
	p.discoveryFails = 0
	p.hosts = make(map[string]inventory.Host, len(hosts))
	for _, h := range hosts {
		p.hosts[h.Name] = h
	}
	p.mu.Unlock()
	p.opts.Metrics.hostsMonitored(len(hosts))
	p.committed(fs)
	log.Info("discovery", "hosts", len(hosts), "scope_changes", len(fs))
	return hosts, nil
}

func (p *Poller) triage(now time.Time, fs []inventory.Finding) []inventory.Finding {
	if p.parts.Triager == nil || len(fs) == 0 {
		return fs
	}
	return p.parts.Triager.Apply(now, fs)
}

// committed counts findings the store has just taken and, if there are
// any, asks the dispatcher to deliver them.
func (p *Poller) committed(fs []inventory.Finding) {
	p.opts.Metrics.findings(fs)
	if len(fs) > 0 {
		p.nudge()
	}
}

// nudge asks the dispatcher to drain soon.
func (p *Poller) nudge() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// maxDiscovery bounds one discovery (every LDAP request also has directory.timeout).
const maxDiscovery = 10 * time.Minute

// ErrBackingOff is returned by PollHost when the host is waiting out a back-off.
var ErrBackingOff = errors.New("backing off after failures")

// PollHost polls one host once: collect, detect, resolve, triage and commit
// state and findings in one transaction. The returned error is the host's
// failure, already recorded in its state. A panic in any part is contained
// and recorded as the host's failure: one hostile answer cannot stop polling.
func (p *Poller) PollHost(ctx context.Context, host inventory.Host) (err error) {
	return p.pollHost(ctx, host, false)
}

// pollHost is PollHost; scheduled polls (Run's jobs) give up, once they hold
// a worker slot, when the host has left the monitored set while they
// waited: the collector has let go of it (Forget) and must not open a new
// shell for it.
func (p *Poller) pollHost(ctx context.Context, host inventory.Host, scheduled bool) (err error) {
	now := p.opts.Clock.Now()
	release, paused := p.creds.enter(now)
	defer release()
	if paused != nil {
		return fmt.Errorf("%s: %w", host.Name, paused)
	}
	p.mu.Lock()
	until, waiting := p.notBefore[host.Name]
	p.mu.Unlock()
	if waiting && now.Before(until) {
		return fmt.Errorf("%s: %w until %s", host.Name, ErrBackingOff, until.UTC().Format(time.RFC3339))
	}

	select {
	case p.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-p.sem }()
	if scheduled && !p.monitored(host.Name) {
		return nil
	}

	log := p.opts.Logger.With("host", host.Name, "poll", p.pollSeq.Add(1))
	prev, err := p.parts.Store.Head(ctx, host.Name)
	if err != nil {
		log.Error("poll skipped: cannot read the host's stored state", "err", err)
		return fmt.Errorf("%s: load state: %w", host.Name, err)
	}
	prev.Host = host.Name
	defer func() {
		if r := recover(); r != nil {
			perr := fmt.Errorf("%s: internal error (please report it): %v", host.Name, r)
			log.Error("poll panicked", "panic", r, "stack", string(debug.Stack()))
			err = p.recordFailure(ctx, log, host, prev, perr, false, p.opts.Clock.Now().UTC())
		}
	}()

	pctx, cancel := context.WithTimeout(ctx, p.opts.PollTimeout)
	defer cancel()
	start := p.opts.Clock.Now()
	obs, cerr := p.parts.Collector.Collect(pctx, host, inventory.CollectRequest{
		Watermark: prev.Watermark,
		Digest:    prev.Digest,
		Lookback:  p.opts.Lookback,
		MaxEvents: p.opts.MaxEvents,
	})
	p.opts.Metrics.poll(cerr, p.opts.Clock.Since(start))
	now = p.opts.Clock.Now().UTC()
	if cerr != nil {
		if ctx.Err() != nil { // shutting down: not the host's fault
			return ctx.Err()
		}
		var extra []inventory.Finding
		auth := p.opts.IsAuthError(cerr)
		if auth {
			if f := p.creds.refusedBy(host.Name, now, p.opts.MaxBackoff, cerr.Error()); f != nil {
				log.Error("WinRM credentials refused by several hosts: pausing all polls", "until", now.Add(p.opts.MaxBackoff))
				extra = append(extra, *f)
			}
		}
		return p.recordFailure(ctx, log, host, prev, cerr, auth, now, extra...)
	}
	p.creds.accepted()

	// The stored inventory matters only when the host sent its own (the
	// digest changed), when events may join it, or on the first poll; an idle
	// poll (the usual case) neither decodes nor rewrites ~250 services.
	withInventory := obs.Services != nil || len(obs.Events) > 0 || !prev.Baselined
	if withInventory {
		if prev.Services, err = p.parts.Store.Services(ctx, host.Name); err != nil {
			log.Error("poll discarded: cannot read the host's stored inventory", "err", err)
			return fmt.Errorf("%s: load inventory: %w", host.Name, err)
		}
	}
	next, fs := inventory.Detect(host, prev, obs, inventory.DetectOptions{Lookback: p.opts.Lookback, Now: now})
	next.Host = host.Name
	next.LastPoll, next.LastOK = now, now
	next.Failures, next.LastError = 0, ""
	if prev.Down {
		fs = append(fs, inventory.RecoveredFinding(host, prev, now))
	}
	next.Down = false
	p.resolveInstallers(ctx, fs)
	fs = p.triage(now, fs)
	commit := p.parts.Store.CommitHead
	if withInventory {
		commit = p.parts.Store.Commit
	}
	if err := commit(ctx, next, fs); err != nil {
		log.Error("poll discarded: cannot store its state and findings; the next poll repeats it", "err", err)
		return fmt.Errorf("%s: commit: %w", host.Name, err)
	}
	p.mu.Lock()
	delete(p.notBefore, host.Name)
	p.mu.Unlock()
	p.committed(fs)
	log.Debug("polled", "events", len(obs.Events), "findings", len(fs), "watermark", next.Watermark, "more", obs.More)
	return nil
}

// recordFailure stores a failed poll (and extra findings about it) in the
// host's state, raising unreachable once per outage, and sets the back-off.
// auth says the host refused the credentials.
func (p *Poller) recordFailure(ctx context.Context, log *slog.Logger, host inventory.Host, prev inventory.State, cerr error, auth bool, now time.Time, extra ...inventory.Finding) error {
	st := prev
	st.LastPoll = now
	st.Failures++
	st.LastError = cerr.Error()
	fs := extra
	if st.Failures >= p.opts.UnreachableAfter && !st.Down {
		st.Down = true
		fs = append(fs, inventory.UnreachableFinding(host, st, cerr.Error(), now))
	}
	fs = p.triage(now, fs)
	if err := p.parts.Store.CommitHead(ctx, st, fs); err != nil { // st has no inventory loaded
		log.Error("record a failed poll", "err", err)
	}
	p.committed(fs)
	wait := p.backoff(st.Failures, auth)
	p.mu.Lock()
	p.notBefore[host.Name] = now.Add(wait)
	p.mu.Unlock()
	log.Warn("poll failed", "failures", st.Failures, "retry_after", wait, "err", cerr)
	return cerr
}

// backoff is how long a host waits after its n-th consecutive failure:
// nothing after the first, then doubling from one interval up to MaxBackoff.
// Refused credentials start high so the poller never locks the account.
func (p *Poller) backoff(failures int, auth bool) time.Duration {
	if failures <= 1 && !auth {
		return 0
	}
	d := p.opts.Interval
	if auth {
		d *= 4
	}
	for i := 2; i < failures && d < p.opts.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, p.opts.MaxBackoff)
}

// resolveInstallers fills Finding.Installer from the event's SID.
func (p *Poller) resolveInstallers(ctx context.Context, fs []inventory.Finding) {
	for i := range fs {
		f := &fs[i]
		if f.Event == nil || f.Event.SID == "" || f.Installer != nil {
			continue
		}
		acct := inventory.Account{SID: f.Event.SID}
		if p.parts.Resolver != nil {
			rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			got, err := p.parts.Resolver.ResolveSID(rctx, f.Event.SID)
			cancel()
			if err != nil {
				p.opts.Logger.Debug("resolve installer SID", "sid", f.Event.SID, "err", err)
			} else {
				acct = got
				acct.SID = f.Event.SID
			}
		}
		f.Installer = &acct
	}
}

// Deliver drains the outbox once.
func (p *Poller) Deliver(ctx context.Context) error {
	if p.parts.Dispatcher == nil {
		return nil
	}
	sent, err := p.parts.Dispatcher.Drain(ctx)
	if sent > 0 {
		p.opts.Logger.Info("delivered", "messages", sent)
	}
	if err != nil {
		return fmt.Errorf("deliver: %w", err)
	}
	return nil
}
