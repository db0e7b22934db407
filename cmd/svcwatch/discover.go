package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/svcwatch/svcwatch/internal/directory"
	"github.com/svcwatch/svcwatch/internal/inventory"
)

func cmdDiscover(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	_, cfg, err := configFlags("discover", args, stderr)
	if err != nil {
		return err
	}
	secrets, err := readSecrets(cfg)
	if err != nil {
		return err
	}
	log := newLogger(cfg, stderr)
	dir, err := directory.New(cfg.Directory, secrets.LDAPPassword, log)
	if err != nil {
		return exitError{code: exitSetup, err: oneLine(err)}
	}
	res, err := dir.Discover(ctx)
	if err != nil {
		return exitError{code: exitSetup, err: fmt.Errorf("discovery failed: %w", err)}
	}
	for _, w := range res.Warnings {
		fmt.Fprintf(stderr, "warning: %s\n", w)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\tWHY\tOS\tLAST LOGON")
	for _, h := range res.Hosts {
		logon := "-"
		if !h.LastLogon.IsZero() {
			logon = h.LastLogon.UTC().Format("2006-01-02")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", safeCell(h.Name), safeCell(h.ReasonText()), safeCell(h.OS), logon)
	}
	tw.Flush()
	fmt.Fprintf(stdout, "%d hosts\n", len(res.Hosts))
	return nil
}

// safeCell keeps AD-supplied text printable on one table line.
func safeCell(s string) string {
	if s == "" {
		return "-"
	}
	return inventory.Printable(s)
}
