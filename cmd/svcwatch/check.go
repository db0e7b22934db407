package main

import (
	"context"
	"fmt"
	"io"

	"github.com/svcwatch/svcwatch/internal/winrm"
)

func cmdCheck(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, cfg, err := configFlags("check", args, stderr)
	if err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return exitError{code: exitSetup, err: fmt.Errorf("usage: svcwatch check --config FILE HOST")}
	}
	secrets, err := readSecrets(cfg)
	if err != nil {
		return err
	}
	host := fs.Arg(0)
	failed := 0
	for _, step := range winrm.Check(ctx, cfg.WinRM, secrets.WinRMPassword, host) {
		mark := "ok  "
		if !step.OK {
			mark = "FAIL"
			failed++
		}
		fmt.Fprintf(stdout, "%s %-18s %s\n", mark, step.Name, step.Detail)
		if !step.OK && step.Remedy != "" {
			fmt.Fprintf(stdout, "     %-18s fix: %s\n", "", step.Remedy)
		}
	}
	if failed > 0 {
		return exitError{code: exitFailed, err: fmt.Errorf("%s: %d check(s) failed", host, failed)}
	}
	fmt.Fprintf(stdout, "%s: all checks passed\n", host)
	return nil
}
