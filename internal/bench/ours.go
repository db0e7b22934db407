package bench

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/svcwatch/svcwatch/internal/config"
	"github.com/svcwatch/svcwatch/internal/inventory"
	"github.com/svcwatch/svcwatch/internal/notify"
	"github.com/svcwatch/svcwatch/internal/poller"
	"github.com/svcwatch/svcwatch/internal/store"
	"github.com/svcwatch/svcwatch/internal/triage"
	"github.com/svcwatch/svcwatch/internal/winrm"
)

// deliveryTick is how often the benchmark drains the outbox while polling.
const deliveryTick = time.Second

// pollTimeout is winrm.timeout for both modes.
const pollTimeout = 60 * time.Second

// runner polls one host once.
type runner interface {
	poll(ctx context.Context, host string) error
	// start and stop bracket a phase (background delivery).
	start(ctx context.Context)
	stop(ctx context.Context)
	close() error
}

// ours is the real pipeline: winrm collector (keep-alive, digest),
// inventory.Detect, triage, SQLite store and outbox, notify to the sink,
// driven through poller.PollHost.
type ours struct {
	p     *poller.Poller
	col   *winrm.Collector
	st    *store.Store
	disp  *notify.Dispatcher
	log   *slog.Logger
	hosts map[string]inventory.Host

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

type staticHosts []inventory.Host

func (s staticHosts) Discover(context.Context) ([]inventory.Host, []string, error) {
	return s, nil, nil
}

func newOurs(ctx context.Context, info LabInfo, names []string, concurrency int, interval time.Duration, session, dir string, log *slog.Logger) (*ours, error) {
	caFile := filepath.Join(dir, "lab-ca.pem")
	if err := os.WriteFile(caFile, []byte(info.CAPEM), 0o600); err != nil {
		return nil, fmt.Errorf("bench: write the lab CA: %w", err)
	}
	col, err := winrm.New(config.WinRM{
		Scheme: "https", Port: 5986, Auth: "ntlm", Username: info.User, CAFile: caFile,
		ConnectTo: info.Addr, Timeout: pollTimeout, Concurrency: concurrency, MaxEvents: 500, Session: session,
		KeepAlive: config.DefaultKeepAlive(interval, 0), // as svcwatch run derives it for poll.interval
	}, info.Password, log)
	if err != nil {
		return nil, fmt.Errorf("bench: collector: %w", err)
	}
	st, err := store.Open(ctx, filepath.Join(dir, "ours.db"))
	if err != nil {
		col.Close()
		return nil, fmt.Errorf("bench: store: %w", err)
	}
	tri, err := triage.New(triage.Options{DefaultAllow: true})
	if err != nil {
		col.Close()
		st.Close()
		return nil, err
	}
	n, err := notify.New(config.Slack{TokenEnv: "SVCWATCH_BENCH_SLACK_TOKEN", Channel: info.SlackChannel, APIURL: info.SlackAPI}, info.SlackToken, nil)
	if err != nil {
		col.Close()
		st.Close()
		return nil, fmt.Errorf("bench: notifier: %w", err)
	}
	disp := &notify.Dispatcher{Outbox: poller.StoreOutbox(st), Notifier: n, Logger: log}
	hosts := make(map[string]inventory.Host, len(names))
	list := make(staticHosts, 0, len(names))
	for _, name := range names {
		h := inventory.Host{Name: name}
		hosts[name] = h
		list = append(list, h)
	}
	opts := poller.NewOptions()
	opts.Interval = max(interval, time.Minute)
	opts.PollTimeout = pollTimeout
	opts.Concurrency = concurrency
	opts.MaxEvents = 500
	opts.Logger = log
	opts.IsAuthError = func(err error) bool { return false } // never back a bench host off
	p, err := poller.New(poller.Parts{Directory: list, Collector: col, Store: st, Triager: tri, Dispatcher: disp}, opts)
	if err != nil {
		col.Close()
		st.Close()
		return nil, err
	}
	return &ours{p: p, col: col, st: st, disp: disp, log: log, hosts: hosts}, nil
}

func (o *ours) poll(ctx context.Context, host string) error {
	return o.p.PollHost(ctx, o.hosts[host])
}

// start runs a delivery loop like poller.Run's: drain the outbox on a short tick.
func (o *ours) start(ctx context.Context) {
	ctx, o.cancel = context.WithCancel(ctx)
	o.wg.Add(1)
	go func() {
		defer o.wg.Done()
		t := time.NewTicker(deliveryTick)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := o.p.Deliver(ctx); err != nil && ctx.Err() == nil {
					o.log.Warn("bench: deliver", "err", err)
				}
			}
		}
	}()
}

func (o *ours) stop(ctx context.Context) {
	if o.cancel != nil {
		o.cancel()
		o.wg.Wait()
	}
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	_ = o.p.Deliver(dctx)
}

func (o *ours) close() error {
	o.col.Close()
	return o.st.Close()
}
