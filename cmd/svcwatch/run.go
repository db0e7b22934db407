package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/svcwatch/svcwatch/internal/config"
	"github.com/svcwatch/svcwatch/internal/poller"
)

func cmdRun(ctx context.Context, args []string, _, stderr io.Writer) error {
	fs := newFlags("run", stderr)
	path := fs.String("config", "", "configuration file (YAML)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := loadConfig(*path)
	if err != nil {
		return err
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	for {
		log := newLogger(cfg, stderr)
		next, err := runUntilReload(ctx, cfg, *path, hup, log)
		if err != nil {
			return err
		}
		if next == nil { // stopped by a signal
			log.Info("stopped")
			return nil
		}
		cfg = next
		log.Info("configuration reloaded", "file", *path)
	}
}

// runUntilReload runs the daemon with cfg until ctx ends (nil, nil) or a
// SIGHUP brings a valid new configuration (returned). A bad file on SIGHUP is
// logged and the old configuration keeps running.
func runUntilReload(ctx context.Context, cfg *config.Config, path string, hup <-chan os.Signal, log *slog.Logger) (*config.Config, error) {
	svc, err := poller.Open(ctx, cfg, poller.BuildOptions{Logger: log})
	if err != nil {
		return nil, exitError{code: exitSetup, err: oneLine(err)}
	}
	defer func() {
		if err := svc.Close(); err != nil {
			log.Error("close", "err", err)
		}
	}()

	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	if cfg.Metrics.Listen != "" {
		addr, err := poller.ServeHTTP(runCtx, cfg.Metrics.Listen, poller.Handler(svc.Metrics, svc.Poller.Ready))
		if err != nil {
			return nil, exitError{code: exitSetup, err: err}
		}
		log.Info("metrics", "listen", addr.String())
	}

	done := make(chan error, 1)
	go func() { done <- svc.Poller.Run(runCtx) }()
	var next *config.Config
	for {
		select {
		case err := <-done:
			if err != nil && !errors.Is(err, context.Canceled) {
				return nil, exitError{code: exitFailed, err: err}
			}
			return next, nil
		case <-hup:
			fresh, err := config.Load(path)
			if err != nil {
				log.Error("reload refused: keeping the running configuration", "file", path, "err", oneLine(err))
				continue
			}
			if _, err := fresh.ReadSecrets(); err != nil {
				log.Error("reload refused: keeping the running configuration", "file", path, "err", fmt.Sprint(oneLine(err)))
				continue
			}
			next = fresh
			stop() // graceful: in-flight polls finish, the outbox is flushed
		}
	}
}
