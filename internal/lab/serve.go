package lab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/svcwatch/svcwatch/internal/config"
)

// DefaultControlAddr is where `svcwatch lab serve` listens without --control.
const DefaultControlAddr = "127.0.0.1:8089"

// Serve runs a lab until ctx is done: it writes a ready svcwatch
// configuration to configOut (0600) and serves the control API on
// controlAddr, which must be a loopback address ("127.0.0.1:0" picks a
// port). opts.Ready, when set, is called once everything listens.
func Serve(ctx context.Context, opts Options, configOut, controlAddr string) error {
	if controlAddr == "" {
		controlAddr = DefaultControlAddr
	}
	host, _, err := net.SplitHostPort(controlAddr)
	if err != nil || !config.LoopbackHost(host) {
		return fmt.Errorf("lab: control address %q is not a loopback host:port; use e.g. 127.0.0.1:8089", controlAddr)
	}
	l, err := Start(ctx, opts)
	if err != nil {
		return err
	}
	defer l.Close()
	if configOut != "" {
		if err := l.WriteConfig(configOut); err != nil {
			return err
		}
	}
	ln, err := net.Listen("tcp", controlAddr)
	if err != nil {
		return fmt.Errorf("lab: control API: %w", err)
	}
	srv := &http.Server{Handler: l.Handler(), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	l.opts.Logger.Info("lab control API listening", "addr", ln.Addr().String(), "config", configOut)
	if opts.Ready != nil {
		opts.Ready(l, ln.Addr().String())
	}
	select {
	case <-ctx.Done():
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("lab: control API: %w", err)
		}
	}
	shutdown, cancel := context.WithTimeout(context.Background(), serverShutdownMax)
	defer cancel()
	srv.Shutdown(shutdown)
	return nil
}
