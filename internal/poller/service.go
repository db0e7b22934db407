package poller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/svcwatch/svcwatch/internal/config"
	"github.com/svcwatch/svcwatch/internal/directory"
	"github.com/svcwatch/svcwatch/internal/inventory"
	"github.com/svcwatch/svcwatch/internal/notify"
	"github.com/svcwatch/svcwatch/internal/store"
	"github.com/svcwatch/svcwatch/internal/triage"
	"github.com/svcwatch/svcwatch/internal/winrm"
)

// Service is a poller built from a configuration, with the resources it owns.
type Service struct {
	Poller    *Poller
	Store     *store.Store
	Directory *directory.Directory
	Collector *winrm.Collector
	Notifier  *notify.Notifier // nil when Slack is not configured
	Metrics   *Metrics

	// slackTransport is the Slack client's own connection pool, so that
	// Close releases its connections (http.DefaultTransport would keep
	// them open for the life of the process).
	slackTransport *http.Transport
}

// BuildOptions adjust what Open builds beyond the configuration.
type BuildOptions struct {
	Logger   *slog.Logger
	Progress func(done, total, failed int)
	// Tune is applied to the poller options last (tests, the lab, bench).
	Tune func(*Options)
}

// Open builds every part from cfg (which Load has validated) and opens the store.
// Errors are setup errors: the operator must fix the configuration or environment.
func Open(ctx context.Context, cfg *config.Config, bo BuildOptions) (*Service, error) {
	log := bo.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	for _, w := range cfg.Warnings() {
		log.Warn("config", "warning", w)
	}
	secrets, err := cfg.ReadSecrets()
	if err != nil {
		return nil, fmt.Errorf("secrets: %w", err)
	}
	dir, err := directory.New(cfg.Directory, secrets.LDAPPassword, log.With("part", "directory"))
	if err != nil {
		return nil, fmt.Errorf("directory: %w", err)
	}
	col, err := winrm.New(cfg.WinRM, secrets.WinRMPassword, log.With("part", "winrm"))
	if err != nil {
		return nil, fmt.Errorf("winrm: %w", err)
	}
	tri, err := triage.New(triage.OptionsFromConfig(cfg))
	if err != nil {
		col.Close()
		return nil, fmt.Errorf("allow: %w", err)
	}
	for _, e := range tri.Expired(time.Now()) {
		log.Warn("allow entry has expired and no longer suppresses anything; renew or remove it",
			"entry", e.Label, "expired", e.Expires, "owner", e.Owner, "reason", e.Reason)
	}
	st, err := store.Open(ctx, cfg.State.Path)
	if err != nil {
		col.Close()
		return nil, fmt.Errorf("state: %w", err)
	}
	svc := &Service{Store: st, Directory: dir, Collector: col}
	svc.Metrics = NewMetrics(func() float64 {
		qctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		n, err := st.OutboxDepth(qctx)
		if err != nil {
			return -1
		}
		return float64(n)
	}, ClassifyFailure)

	var disp Dispatcher
	if secret := secrets.Slack(); secret != "" {
		svc.slackTransport = http.DefaultTransport.(*http.Transport).Clone()
		// notify.New gives the client slack.timeout.
		n, err := notify.New(cfg.Slack, secret, &http.Client{Transport: svc.slackTransport})
		if err != nil {
			svc.Close()
			return nil, fmt.Errorf("slack: %w", err)
		}
		svc.Notifier = n
		disp = &notify.Dispatcher{Outbox: outbox{st}, Notifier: n, Logger: log.With("part", "notify"), OnFailure: svc.Metrics.SlackError}
	} else {
		log.Warn("slack is not configured: findings are stored but not sent")
	}

	opts := NewOptions()
	opts.Interval = cfg.Poll.Interval
	opts.Jitter = cfg.Poll.Jitter
	opts.Lookback = cfg.Poll.Lookback
	opts.UnreachableAfter = cfg.Poll.UnreachableAfter
	opts.MaxBackoff = cfg.Poll.MaxBackoff
	opts.PollTimeout = cfg.WinRM.Timeout
	opts.MaxEvents = cfg.WinRM.MaxEvents
	opts.Concurrency = cfg.WinRM.Concurrency
	opts.DiscoveryInterval = cfg.Directory.Interval
	opts.Retention = cfg.State.Retention
	opts.Logger = log
	opts.Metrics = svc.Metrics
	opts.IsAuthError = func(err error) bool { return errors.Is(err, winrm.ErrAuth) }
	opts.Progress = bo.Progress
	if bo.Tune != nil {
		bo.Tune(&opts)
	}
	p, err := New(Parts{
		Directory:  discoverer{dir},
		Resolver:   dir,
		Collector:  col,
		Store:      st,
		Triager:    tri,
		Dispatcher: disp,
	}, opts)
	if err != nil {
		svc.Close()
		return nil, err
	}
	svc.Poller = p
	return svc, nil
}

// Close releases the WinRM connections and closes the store cleanly.
func (s *Service) Close() error {
	var errs []error
	if s.Collector != nil {
		errs = append(errs, s.Collector.Close())
	}
	if s.slackTransport != nil {
		s.slackTransport.CloseIdleConnections()
	}
	if s.Store != nil {
		errs = append(errs, s.Store.Close())
	}
	return errors.Join(errs...)
}

// ClassifyFailure names the cause of a failed poll for metrics and logs.
func ClassifyFailure(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, winrm.ErrAuth):
		return "auth"
	case errors.Is(err, winrm.ErrAccessDenied):
		return "access_denied"
	case errors.Is(err, winrm.ErrQuota):
		return "quota"
	case errors.Is(err, winrm.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, winrm.ErrUnreachable):
		return "unreachable"
	case errors.Is(err, winrm.ErrOutputTooLarge):
		return "output_too_large"
	case errors.Is(err, winrm.ErrProtocol):
		return "protocol"
	}
	return "error"
}

// discoverer adapts the directory to the poller's Discoverer.
type discoverer struct{ d *directory.Directory }

func (a discoverer) Discover(ctx context.Context) ([]inventory.Host, []string, error) {
	r, err := a.d.Discover(ctx)
	return r.Hosts, r.Warnings, err
}

// StoreOutbox is the store's outbox as the Slack dispatcher reads it.
func StoreOutbox(st *store.Store) notify.Outbox { return outbox{st} }

// outbox adapts the store's outbox to the dispatcher's.
type outbox struct{ s *store.Store }

func (o outbox) Pending(ctx context.Context, limit int) ([]notify.Outgoing, error) {
	rows, err := o.s.Pending(ctx, limit)
	if err != nil {
		return nil, err
	}
	out := make([]notify.Outgoing, len(rows))
	for i, r := range rows {
		out[i] = notify.Outgoing{Seq: r.Seq, Batch: r.Batch, Finding: r.Finding, Attempts: r.Attempts}
	}
	return out, nil
}

func (o outbox) Delivered(ctx context.Context, seqs ...int64) error {
	return o.s.Delivered(ctx, seqs...)
}

func (o outbox) Skipped(ctx context.Context, seqs ...int64) error {
	return o.s.Skipped(ctx, seqs...)
}

func (o outbox) Attempted(ctx context.Context, seq int64, errText string) error {
	return o.s.Attempted(ctx, seq, errText)
}
