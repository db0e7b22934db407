package main

import (
	"context"
	"fmt"
	"io"

	"github.com/svcwatch/svcwatch/internal/poller"
)

func cmdOnce(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	_, cfg, err := configFlags("once", args, stderr)
	if err != nil {
		return err
	}
	bo := poller.BuildOptions{Logger: newLogger(cfg, stderr)}
	if isTerminal(stderr) {
		bo.Progress = func(done, total, failed int) {
			fmt.Fprintf(stderr, "\rpolled %d/%d hosts, %d failed", done, total, failed)
			if done == total {
				fmt.Fprintln(stderr)
			}
		}
	}
	svc, err := poller.Open(ctx, cfg, bo)
	if err != nil {
		return exitError{code: exitSetup, err: oneLine(err)}
	}
	defer svc.Close()

	rep, err := svc.Poller.Once(ctx)
	if err != nil && rep.Hosts == 0 {
		return exitError{code: exitSetup, err: oneLine(err)}
	}
	fmt.Fprintf(stdout, "polled %d hosts, %d failed\n", rep.Hosts, len(rep.Failed))
	for _, f := range rep.Failed {
		fmt.Fprintf(stdout, "  FAILED %s: %v\n", f.Host, f.Err)
	}
	if rep.Deliver != nil {
		fmt.Fprintf(stdout, "  delivery incomplete (kept in the outbox for the next run): %v\n", rep.Deliver)
	}
	if len(rep.Failed) > 0 || rep.Deliver != nil || err != nil {
		return exitError{code: exitFailed, err: err}
	}
	return nil
}
