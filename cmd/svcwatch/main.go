// Command svcwatch watches Windows hosts found in Active Directory for new
// services (Event ID 7045 and the service inventory) and posts what changed
// to Slack. Run "svcwatch help" for the commands.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// Exit codes promised in the README.
const (
	exitOK     = 0
	exitFailed = 1 // the command ran, something it checked failed (hosts, Slack, checks)
	exitSetup  = 2 // configuration or setup error: nothing was attempted
)

// usageError marks bad command-line use (exit 2 with the usage).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// exitError carries an exit code for errors that are not setup errors.
type exitError struct {
	code int
	err  error
}

func (e exitError) Error() string { return e.err.Error() }
func (e exitError) Unwrap() error { return e.err }

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"run", "poll on a schedule until stopped (the daemon)", cmdRun},
		{"once", "discover, poll every host once, deliver, exit (for cron / systemd timers)", cmdOnce},
		{"discover", "print the monitored hosts and why each is monitored", cmdDiscover},
		{"check", "diagnose one host step by step: check --config F HOST", cmdCheck},
		{"findings", "list stored findings and their delivery status (reads the state file, also while run is running)", cmdFindings},
		{"test-alert", "post a sample alert of each severity to the configured Slack destination", cmdTestAlert},
		{"eval", "run triage over a labelled corpus: eval FILE.jsonl", cmdEval},
		{"lab", "the demo: a simulated domain, the real pipeline, a scripted attack (lab serve: long-running lab)", cmdLab},
		{"bench", "measure polling throughput against the lab", cmdBench},
		{"version", "print version information", cmdVersion},
	}
}

func main() {
	os.Exit(realMain(os.Args[1:], os.Stdout, os.Stderr))
}

func realMain(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stdout)
		if len(args) == 0 {
			return exitSetup
		}
		return exitOK
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		ctx, stop := signalContext()
		defer stop()
		return exitCode(c.run(ctx, args[1:], stdout, stderr), stderr)
	}
	fmt.Fprintf(stderr, "svcwatch: unknown command %q\n\n", args[0])
	usage(stderr)
	return exitSetup
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: svcwatch <command> [flags]")
	fmt.Fprintln(w)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-11s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'svcwatch <command> -h' for a command's flags.")
}

// exitCode prints err (one line) and maps it to the exit code.
func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return exitOK
	}
	var ee exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintf(stderr, "svcwatch: %v\n", ee.err)
		}
		return ee.code
	}
	fmt.Fprintf(stderr, "svcwatch: %v\n", err)
	return exitSetup
}

// signalContext is cancelled by the first SIGINT/SIGTERM; a second one exits at once.
// The watcher waits on its own stop channel, not on ctx: ctx is already done
// after the first signal, and waiting on it would drop the second.
func signalContext() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan os.Signal, 2)
	stopped := make(chan struct{})
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	go func() {
		select {
		case <-ch:
			cancel()
		case <-stopped:
			return
		}
		select {
		case <-ch:
			fmt.Fprintln(os.Stderr, "svcwatch: second signal, exiting now")
			os.Exit(exitFailed)
		case <-stopped:
		}
	}()
	var once sync.Once
	return ctx, func() {
		once.Do(func() {
			signal.Stop(ch)
			close(stopped)
		})
		cancel()
	}
}
