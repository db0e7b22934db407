package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/svcwatch/svcwatch/internal/triage"
)

func cmdEval(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("eval", stderr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return exitError{code: exitSetup, err: fmt.Errorf("usage: svcwatch eval FILE.jsonl (the shared/corpus format)")}
	}
	f, err := os.Open(fs.Arg(0))
	if err != nil {
		return exitError{code: exitSetup, err: fmt.Errorf("eval: %w", err)}
	}
	defer f.Close()
	if _, err := triage.Eval(f, stdout); err != nil {
		return exitError{code: exitSetup, err: fmt.Errorf("eval %s: %w", fs.Arg(0), err)}
	}
	return nil
}
