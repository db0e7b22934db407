package main

import (
	"context"
	"fmt"
	"io"

	"github.com/svcwatch/svcwatch/internal/notify"
)

func cmdTestAlert(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	_, cfg, err := configFlags("test-alert", args, stderr)
	if err != nil {
		return err
	}
	secrets, err := readSecrets(cfg)
	if err != nil {
		return err
	}
	n, err := notify.New(cfg.Slack, secrets.Slack(), nil) // a client with slack.timeout
	if err != nil {
		return exitError{code: exitSetup, err: oneLine(err)}
	}
	for _, f := range notify.Samples() {
		if err := n.Send(ctx, f); err != nil {
			return exitError{code: exitFailed, err: fmt.Errorf("sample %s alert: %w", f.Severity, err)}
		}
		fmt.Fprintf(stdout, "sent sample %s alert (%s)\n", f.Severity, f.Kind)
	}
	return nil
}
