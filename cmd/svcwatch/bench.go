package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/svcwatch/svcwatch/internal/bench"
	"github.com/svcwatch/svcwatch/internal/winrm"
)

func cmdBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench", stderr)
	hosts := fs.Int("hosts", 1000, "simulated hosts")
	cycles := fs.Int("cycles", 3, "poll cycles per mode")
	latency := fs.Duration("latency", bench.DefaultLatency, "server-side delay per WS-Management request (0 for none)")
	mode := fs.String("mode", bench.ModeOurs, "ours | naive | both")
	concurrency := fs.Int("concurrency", 32, "concurrent host polls (both modes)")
	session := fs.String("session", winrm.DefaultSession, "ours: winrm.session: shell, per-poll or persistent")
	interval := fs.Duration("interval", 0, "cycle start to cycle start (0: back to back); psexec is injected at random times in between")
	inject := fs.Int("inject", 0, "hosts given a psexec per mode for detection latency (0: hosts/100, 5..50; -1: none)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	inProcess := fs.Bool("in-process", false, "run the lab in this process (CPU and RSS then include it)")
	serveLab := fs.Bool("serve-lab", false, "internal: serve the lab fleet, print its addresses as JSON, exit at EOF on stdin")
	verbose := fs.Bool("v", false, "log the pipeline's warnings to stderr")
	cpuProfile := fs.String("cpuprofile", "", "write the poller process's CPU profile to this file")
	memProfile := fs.String("memprofile", "", "write the poller's heap profile at the end of each mode's polling to FILE.<mode>")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return exitError{code: exitSetup, err: fmt.Errorf("bench: unexpected argument %q", fs.Arg(0))}
	}
	if *serveLab {
		if err := bench.ServeLab(ctx, bench.LabOptions{Hosts: *hosts, Latency: *latency}, os.Stdin, stdout); err != nil {
			return exitError{code: exitSetup, err: err}
		}
		return nil
	}
	opts := bench.Options{
		Hosts: *hosts, Cycles: *cycles, Latency: *latency, NoLatency: *latency == 0, Mode: *mode,
		Concurrency: *concurrency, Interval: *interval, Session: *session, Inject: *inject, Progress: stderr,
	}
	if *verbose {
		opts.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	if !*inProcess {
		exe, err := os.Executable()
		if err != nil {
			return exitError{code: exitSetup, err: fmt.Errorf("bench: find this program to run the lab in a child process (or use --in-process): %w", err)}
		}
		opts.LabCommand = []string{exe, "bench", "--serve-lab", "--hosts", strconv.Itoa(*hosts), "--latency", latency.String()}
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return exitError{code: exitSetup, err: fmt.Errorf("bench: --cpuprofile: %w", err)}
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return exitError{code: exitSetup, err: fmt.Errorf("bench: --cpuprofile: %w", err)}
		}
		defer pprof.StopCPUProfile()
	}
	if *memProfile != "" {
		opts.AfterPhase = func(mode string) {
			f, err := os.Create(*memProfile + "." + mode)
			if err != nil {
				fmt.Fprintf(stderr, "bench: --memprofile: %v\n", err)
				return
			}
			defer f.Close()
			if err := pprof.WriteHeapProfile(f); err != nil {
				fmt.Fprintf(stderr, "bench: --memprofile: %v\n", err)
			}
		}
	}
	start := time.Now()
	rep, err := bench.Run(ctx, opts)
	if errors.Is(err, bench.ErrOptions) {
		return exitError{code: exitSetup, err: err}
	}
	if err != nil {
		return exitError{code: exitFailed, err: err}
	}
	if *asJSON {
		return rep.WriteJSON(stdout)
	}
	if err := rep.WriteTable(stdout); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "command:   svcwatch bench %s (%.0fs)\n", strings.Join(args, " "), time.Since(start).Seconds())
	return nil
}
