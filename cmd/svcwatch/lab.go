package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/svcwatch/svcwatch/internal/lab"
	"github.com/svcwatch/svcwatch/internal/poller"
)

func cmdLab(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "serve" {
		return cmdLabServe(ctx, args[1:], stdout, stderr)
	}
	fs := newFlags("lab", stderr)
	duration := fs.Duration("duration", 30*time.Second, "how long the demo runs")
	verbose := fs.Bool("v", false, "log the pipeline's work to stderr")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *duration < 10*time.Second {
		return exitError{code: exitSetup, err: fmt.Errorf("--duration %s is too short for a baseline and an attack; use at least 10s", *duration)}
	}
	return runDemo(ctx, *duration, *verbose, stdout, stderr)
}

// The demo's attack: one per DC, as the README describes.
var demoAttacks = []struct{ host, scenario, says string }{
	{"dc01", "psexec", "PsExec installs PSEXESVC on dc01"},
	{"dc02", "binpath-hijack", "an attacker repoints a service's binary on dc02 (sc config binPath=, no 7045)"},
}

func runDemo(ctx context.Context, duration time.Duration, verbose bool, stdout, stderr io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, duration)
	defer cancel()
	logger := slog.New(slog.DiscardHandler)
	if verbose {
		logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	l, err := lab.Start(ctx, lab.Options{PollInterval: 3 * time.Second, Logger: logger})
	if err != nil {
		return exitError{code: exitSetup, err: fmt.Errorf("start the lab: %w", err)}
	}
	defer l.Close()
	fmt.Fprintf(stdout, "lab: domain %s with %s (LDAP %s, WinRM https %s, Slack sink %s)\n",
		l.BaseDN(), strings.Join(l.HostNames(), ", "), l.LDAPSURL(), l.HTTPSAddr(), l.Slack().URL())

	svc, err := poller.Open(ctx, l.Config(), poller.BuildOptions{Logger: logger})
	if err != nil {
		return exitError{code: exitSetup, err: fmt.Errorf("build the pipeline for the lab: %w", err)}
	}
	defer svc.Close()

	msgs, unsubscribe := l.Slack().Subscribe()
	defer unsubscribe()
	runDone := make(chan error, 1)
	go func() { runDone <- svc.Poller.Run(ctx) }()

	fmt.Fprintln(stdout, "svcwatch: discovering hosts and recording each host's baseline (existing services are not alerts)...")
	if err := waitBaseline(ctx, svc, len(l.HostNames())); err != nil {
		return exitError{code: exitFailed, err: fmt.Errorf("baseline: %w", err)}
	}
	fmt.Fprintf(stdout, "svcwatch: baseline recorded for %d hosts\n", len(l.HostNames()))
	for _, a := range demoAttacks {
		h, ok := l.Lookup(a.host)
		if !ok {
			return exitError{code: exitSetup, err: fmt.Errorf("lab has no host %s", a.host)}
		}
		if err := h.Apply(a.scenario); err != nil {
			return exitError{code: exitSetup, err: fmt.Errorf("scenario %s on %s: %w", a.scenario, a.host, err)}
		}
		fmt.Fprintf(stdout, "attack: %s\n", a.says)
	}

	received := 0
	for {
		select {
		case m, ok := <-msgs:
			if !ok { // the sink closed: the lab is stopping
				msgs = nil
				continue
			}
			received++
			fmt.Fprintf(stdout, "\n── Slack message %d ─────────────────────────────\n%s\n", received, m.Readable())
		case err := <-runDone:
			if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
				return exitError{code: exitFailed, err: err}
			}
			return demoVerdict(stdout, received)
		}
	}
}

// waitBaseline waits until every lab host has been polled once.
func waitBaseline(ctx context.Context, svc *poller.Service, hosts int) error {
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		n := 0
		for _, h := range svc.Poller.Hosts() {
			st, err := svc.Store.State(ctx, h.Name)
			if err == nil && st.Baselined {
				n++
			}
		}
		if n >= hosts && hosts > 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("only %d of %d hosts baselined before the time ran out: %w", n, hosts, ctx.Err())
		case <-t.C:
		}
	}
}

func demoVerdict(stdout io.Writer, received int) error {
	fmt.Fprintf(stdout, "\nlab: %d Slack message(s) received\n", received)
	if received < len(demoAttacks) {
		return exitError{code: exitFailed, err: fmt.Errorf("expected an alert for each of the %d attacks, got %d messages; run with -v to see the pipeline", len(demoAttacks), received)}
	}
	return nil
}
