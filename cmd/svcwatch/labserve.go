package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/svcwatch/svcwatch/internal/config"
	"github.com/svcwatch/svcwatch/internal/lab"
)

func cmdLabServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("lab serve", stderr)
	hosts := fs.Int("hosts", 5, "number of simulated hosts (the first three are DCs)")
	configOut := fs.String("config-out", "", "write a ready svcwatch config for this lab to FILE (required)")
	control := fs.String("control", "127.0.0.1:8089", "loopback address of the control API")
	scheme := fs.String("scheme", "https", "how the written config polls: https (NTLM) or http (NTLM with message encryption)")
	interval := fs.Duration("interval", 30*time.Second, "poll.interval written to the config")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *configOut == "" {
		return exitError{code: exitSetup, err: errors.New("--config-out FILE is required")}
	}
	if *hosts < 1 || *hosts > 100000 {
		return exitError{code: exitSetup, err: fmt.Errorf("--hosts %d: want 1..100000", *hosts)}
	}
	if err := requireLoopback(*control); err != nil {
		return exitError{code: exitSetup, err: err}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var writeErr error
	opts := lab.Options{Hosts: *hosts, Scheme: *scheme, PollInterval: *interval,
		Ready: func(l *lab.Lab, addr string) {
			// Every key with its value, defaults included, so the file shows
			// what svcwatch will do against the lab.
			if writeErr = os.WriteFile(*configOut, []byte(l.Config().String()), 0o600); writeErr != nil {
				cancel()
				return
			}
			fmt.Fprintf(stdout, "lab: %d hosts in %s; config written to %s; control API on http://%s (GET /hosts)\n",
				*hosts, l.BaseDN(), *configOut, addr)
		}}
	if err := lab.Serve(ctx, opts, "", *control); err != nil {
		return exitError{code: exitSetup, err: err}
	}
	if writeErr != nil {
		return exitError{code: exitSetup, err: fmt.Errorf("--config-out: %w", writeErr)}
	}
	return nil
}

// requireLoopback refuses a control address that is not on loopback: the
// control API can install "malware" on simulated hosts and must not be exposed.
func requireLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--control %q: want host:port: %w", addr, err)
	}
	if !config.LoopbackHost(host) {
		return fmt.Errorf("--control %q: the control API binds to loopback only (127.0.0.1 or ::1)", addr)
	}
	return nil
}
