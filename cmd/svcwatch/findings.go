package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/svcwatch/svcwatch/internal/inventory"
	"github.com/svcwatch/svcwatch/internal/store"
)

// cellBytes bounds one attacker-named table cell (service name, path).
const cellBytes = 60

// findingIDPrefix is the start of a finding ID (inventory.FindingID: 32 hex).
var findingIDPrefix = regexp.MustCompile(`^[0-9a-f]{6,32}$`)

// Delivery statuses of a stored finding, as printed.
const (
	statusSent       = "sent"
	statusBelowMin   = "not sent: below slack.min_severity"
	statusSuppressed = "suppressed"
	statusQueued     = "queued"
	statusLeft       = "sent or below slack.min_severity (not recorded)" // left the outbox before svcwatch recorded which
	statusNotQueued  = "not queued"
)

// findingJSON is one line of `findings --json`.
type findingJSON struct {
	Stored     time.Time         `json:"stored"`
	Status     string            `json:"status"`
	LeftOutbox *time.Time        `json:"left_outbox,omitempty"` // when it was sent, or skipped (status says which)
	Attempts   int               `json:"attempts,omitempty"`
	LastError  string            `json:"last_error,omitempty"`
	Finding    inventory.Finding `json:"finding"`
}

func cmdFindings(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("findings", stderr)
	path := fs.String("config", "", "configuration file (YAML); its state.path is read")
	id := fs.String("id", "", "only the finding whose ID starts with this (Slack shows it under each alert), at least 6 hex digits")
	host := fs.String("host", "", "only this host (case-insensitive)")
	since := fs.Duration("since", 0, "only findings stored in this last duration, e.g. 24h (0: any age)")
	kinds := fs.String("kind", "", "only these kinds, comma-separated: "+inventory.JoinKinds(inventory.Kinds))
	minSev := fs.String("min-severity", "", "only findings at or above: info, low, medium, high, critical")
	limit := fs.Int("limit", 50, "at most this many, newest first (0: all)")
	asJSON := fs.Bool("json", false, "one JSON object per line, the full finding and its delivery status")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return exitError{code: exitSetup, err: fmt.Errorf("findings: unexpected argument %q; filter with --host, --kind, --since", fs.Arg(0))}
	}
	q := store.Query{IDPrefix: strings.ToLower(*id), Host: *host, Limit: *limit}
	if *id != "" && !findingIDPrefix.MatchString(q.IDPrefix) {
		return exitError{code: exitSetup, err: fmt.Errorf("--id %q: give the finding ID from the alert (hex), or at least its first 6 digits", *id)}
	}
	if *limit < 0 {
		return exitError{code: exitSetup, err: fmt.Errorf("--limit %d: give 0 for all, or how many to show", *limit)}
	}
	if *since < 0 {
		return exitError{code: exitSetup, err: fmt.Errorf("--since %s: give a positive duration, e.g. 24h", *since)}
	}
	if *since > 0 {
		q.Since = time.Now().Add(-*since)
	}
	for _, k := range strings.Split(*kinds, ",") {
		if k = strings.ToLower(strings.TrimSpace(k)); k == "" {
			continue
		}
		if !slices.Contains(inventory.Kinds, inventory.Kind(k)) {
			return exitError{code: exitSetup, err: fmt.Errorf("--kind %q is not one of %s", k, inventory.JoinKinds(inventory.Kinds))}
		}
		q.Kinds = append(q.Kinds, inventory.Kind(k))
	}
	if *minSev != "" {
		s, err := inventory.ParseSeverity(*minSev)
		if err != nil {
			return exitError{code: exitSetup, err: fmt.Errorf("--min-severity: %w", err)}
		}
		q.MinSeverity = s
	}
	cfg, err := loadConfig(*path)
	if err != nil {
		return err
	}

	st, err := store.OpenReadOnly(ctx, cfg.State.Path)
	if err != nil {
		code := exitFailed // the file is there but cannot be read
		if errors.Is(err, store.ErrNoState) {
			code = exitSetup
		}
		return exitError{code: code, err: oneLine(err)}
	}
	defer st.Close()
	recs, err := st.History(ctx, q)
	if err != nil {
		return exitError{code: exitFailed, err: oneLine(err)}
	}

	if *asJSON {
		for _, r := range recs {
			line := findingJSON{Stored: r.Stored.UTC(), Status: status(r), Attempts: r.Attempts, LastError: r.LastError, Finding: r.Finding}
			if !r.Delivered.IsZero() {
				d := r.Delivered.UTC()
				line.LeftOutbox = &d
			}
			b, err := json.Marshal(line)
			if err != nil {
				return exitError{code: exitFailed, err: err}
			}
			if _, err := stdout.Write(append(escapeUnprintable(b), '\n')); err != nil {
				return exitError{code: exitFailed, err: err}
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STORED (UTC)\tSEVERITY\tHOST\tKIND\tSERVICE\tPATH / DETAIL\tSTATUS")
	for _, r := range recs {
		f := r.Finding
		name, detail := "", f.Detail
		if f.Service != nil {
			name, detail = f.Service.Name, f.Service.ImagePath
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Stored.UTC().Format("2006-01-02 15:04"), f.Severity,
			cell(f.Host.Name), cell(string(f.Kind)), cell(name), cell(detail), safeCell(inventory.Truncate(statusText(r), 2*cellBytes)))
	}
	if err := tw.Flush(); err != nil {
		return exitError{code: exitFailed, err: err}
	}
	word := "findings"
	if len(recs) == 1 {
		word = "finding"
	}
	fmt.Fprintf(stdout, "%d %s", len(recs), word)
	if *limit > 0 && len(recs) == *limit {
		fmt.Fprintf(stdout, " (the newest %d; --limit 0 shows all)", *limit)
	}
	fmt.Fprintln(stdout)
	return nil
}

// status is a finding's delivery state: suppressed by the allowlist, queued
// for Slack, sent, or skipped as below slack.min_severity.
func status(r store.Record) string {
	switch {
	case r.Finding.Suppressed:
		return statusSuppressed
	case r.Queued:
		return statusQueued
	case r.Outcome == store.OutcomeSent:
		return statusSent
	case r.Outcome == store.OutcomeSkipped:
		return statusBelowMin
	case !r.Delivered.IsZero():
		return statusLeft
	}
	return statusNotQueued
}

// statusText is status with its reason: the allow entry, or the failed
// delivery attempts so far.
func statusText(r store.Record) string {
	s := status(r)
	switch {
	case s == statusSuppressed && r.Finding.SuppressedBy != "":
		return s + " by " + r.Finding.SuppressedBy
	case s == statusQueued && r.Attempts > 0:
		return fmt.Sprintf("%s, %d failed attempts: %s", s, r.Attempts, r.LastError)
	}
	return s
}

// escapeUnprintable writes as \uXXXX the characters JSON may carry raw but a
// terminal showing the line would act on (DEL, C1 controls, bidi overrides);
// json.Marshal has escaped the C0 controls already. The value is unchanged.
func escapeUnprintable(b []byte) []byte {
	if !bytes.ContainsFunc(b, inventory.Unprintable) {
		return b
	}
	out := make([]byte, 0, len(b)+32)
	for _, r := range string(b) {
		if inventory.Unprintable(r) {
			out = fmt.Appendf(out, `\u%04x`, r)
			continue
		}
		out = utf8.AppendRune(out, r)
	}
	return out
}

// cell is safeCell bounded to cellBytes: the full text is in --json.
func cell(s string) string { return safeCell(inventory.Truncate(s, cellBytes)) }
