package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
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
	l, err := lab.Start(ctx, lab.Options{Hosts: *hosts, Scheme: *scheme, PollInterval: *interval})
	if err != nil {
		return exitError{code: exitSetup, err: fmt.Errorf("start the lab: %w", err)}
	}
	defer l.Close()
	// The state file stays in the lab's own directory, removed with the lab:
	// a new lab (new hosts, new record ids) never meets an old baseline.
	if err := os.WriteFile(*configOut, []byte(l.Config().String()), 0o600); err != nil {
		return exitError{code: exitSetup, err: fmt.Errorf("--config-out: %w", err)}
	}
	ln, err := net.Listen("tcp", *control)
	if err != nil {
		return exitError{code: exitSetup, err: fmt.Errorf("--control %s: %w", *control, err)}
	}
	srv := &http.Server{Handler: l.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	fmt.Fprintf(stdout, "lab: %d hosts in %s; config written to %s; control API on http://%s (GET /hosts)\n",
		*hosts, l.BaseDN(), *configOut, ln.Addr())
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return exitError{code: exitFailed, err: err}
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
