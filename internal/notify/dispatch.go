package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/slack-go/slack"

	"github.com/svcwatch/svcwatch/internal/inventory"
)

// Outgoing is one finding waiting in the outbox (the store's outbox row).
type Outgoing struct {
	Seq      int64 // outbox order
	Batch    int64 // one Batch per store commit: one host, one poll
	Finding  inventory.Finding
	Attempts int
}

// Outbox is what the Dispatcher needs from the store.
type Outbox interface {
	// Pending returns up to limit undelivered entries, lowest Seq first.
	Pending(ctx context.Context, limit int) ([]Outgoing, error)
	// Delivered removes entries from the outbox: Slack accepted them.
	Delivered(ctx context.Context, seqs ...int64) error
	// Skipped removes entries the Notifier does not want (below
	// slack.min_severity) from the outbox, recording that none was sent.
	Skipped(ctx context.Context, seqs ...int64) error
	// Attempted records a failed delivery attempt and its reason.
	Attempted(ctx context.Context, seq int64, errText string) error
}

// Errors Drain returns, usable with errors.Is. Nothing is dropped in any case:
// undelivered findings stay in the outbox for the next Drain.
var (
	// ErrDestination: Slack refused the token, channel or webhook; an
	// operator must fix the configuration. Drain stops at once.
	ErrDestination = errors.New("slack refused the destination")
	// ErrRejected: Slack refused one message's content (a svcwatch bug).
	// Later findings of that host wait behind it; other hosts continue.
	ErrRejected = errors.New("slack rejected a message")
	// ErrUnavailable: Slack kept failing (5xx, network, timeouts) through
	// every retry. Drain stops; the next Drain starts over.
	ErrUnavailable = errors.New("slack unavailable")
)

// Dispatcher delivers the outbox to Slack. Zero-valued tuning fields take
// the defaults shown.
type Dispatcher struct {
	Outbox   Outbox
	Notifier *Notifier
	Logger   *slog.Logger // nil: discard

	MaxAttempts int           // tries per message per Drain, rate limits included (8)
	MinBackoff  time.Duration // first retry delay after a failure (1s)
	MaxBackoff  time.Duration // cap of the doubling delay (60s)
	MinWait     time.Duration // floor for a Retry-After of 0 (1s)
	PageSize    int           // outbox entries read at a time (500)
	// Sleep waits d or until ctx is done; tests replace it.
	Sleep func(ctx context.Context, d time.Duration) error
	// OnFailure, when set, is told about every failed attempt with its class
	// ("transient", "rate_limited", "destination", "rejected"), for metrics.
	OnFailure func(class string)
}

// unit is one message to send: a single finding or one batch as a digest.
type unit struct {
	host     string
	seqs     []int64
	findings []inventory.Finding
	digest   bool
}

// Drain sends everything pending, in outbox order per host, and returns how
// many findings Slack accepted (a digest counts each finding in it). An entry
// is marked delivered only after Slack accepted it; findings the Notifier does
// not want are marked skipped without sending. Drain returns nil when the
// outbox is empty, else an error wrapping ErrDestination, ErrRejected,
// ErrUnavailable, or the context's error.
func (d *Dispatcher) Drain(ctx context.Context) (sent int, err error) {
	if d.Outbox == nil || d.Notifier == nil {
		return 0, errors.New("notify: Dispatcher needs an Outbox and a Notifier")
	}
	blocked := map[string]error{} // host → the rejection its queue waits behind
	done := map[int64]bool{}      // marked delivered in this Drain
	limit := d.pageSize()
	for {
		page, err := d.Outbox.Pending(ctx, limit)
		if err != nil {
			return sent, fmt.Errorf("notify: read the outbox: %w", err)
		}
		if len(page) == 0 {
			break
		}
		for _, o := range page {
			if done[o.Seq] {
				// Sending again would duplicate alerts without end.
				return sent, fmt.Errorf("notify: the outbox still lists entry %d after it was marked delivered; stopping so nothing is sent twice", o.Seq)
			}
		}
		full := len(page) == limit
		if full && page[0].Batch == page[len(page)-1].Batch && limit < maxPage {
			limit *= 2 // one batch fills the page: read on so its digest stays whole
			continue
		}
		limit = d.pageSize()
		progress := false
		for _, u := range d.plan(page, full) {
			if blocked[u.host] != nil {
				continue
			}
			if len(u.findings) == 0 { // only unwanted findings
				if err := d.Outbox.Skipped(ctx, u.seqs...); err != nil {
					return sent, fmt.Errorf("notify: mark skipped findings in the outbox: %w", err)
				}
				markDone(done, u.seqs)
				progress = true
				continue
			}
			err := d.deliver(ctx, u)
			switch {
			case err == nil:
				if err := d.Outbox.Delivered(ctx, u.seqs...); err != nil {
					// Slack has it; the next Drain will send it again.
					return sent, fmt.Errorf("notify: Slack accepted %d finding(s) for %q but the outbox could not record it (they will be sent again): %w", len(u.findings), u.host, err)
				}
				markDone(done, u.seqs)
				sent += len(u.findings)
				progress = true
				d.logger().Debug("delivered to slack", "host", u.host, "findings", len(u.findings), "digest", u.digest)
			case errors.Is(err, ErrRejected):
				blocked[u.host] = err
				d.logger().Error("slack rejected a message; later findings for this host wait behind it", "host", u.host, "err", err)
			default:
				return sent, err
			}
		}
		if !progress {
			break
		}
	}
	if len(blocked) > 0 {
		errs := make([]error, 0, len(blocked))
		for _, e := range blocked {
			errs = append(errs, e)
		}
		return sent, errors.Join(errs...)
	}
	return sent, nil
}

// plan turns a page into units in outbox order. A batch with more wanted
// findings than DigestOver becomes one digest unit at its first entry. When
// the page is full its last batch may be cut, so it is left for the next page
// unless it is all there is.
func (d *Dispatcher) plan(page []Outgoing, full bool) []unit {
	if full {
		last := page[len(page)-1].Batch
		cut := len(page)
		for cut > 0 && page[cut-1].Batch == last {
			cut--
		}
		if cut > 0 {
			page = page[:cut]
		}
	}
	wanted := map[int64]int{}
	for _, o := range page {
		if d.Notifier.Wants(o.Finding) {
			wanted[o.Batch]++
		}
	}
	over := d.Notifier.DigestOver()
	var units []unit
	digestAt := map[int64]int{} // batch → index of its digest unit
	skipped := -1               // index of the open unit of unwanted findings
	for _, o := range page {
		host := o.Finding.Host.Name
		if !d.Notifier.Wants(o.Finding) {
			if skipped < 0 || units[skipped].host != host {
				units = append(units, unit{host: host})
				skipped = len(units) - 1
			}
			units[skipped].seqs = append(units[skipped].seqs, o.Seq)
			continue
		}
		skipped = -1
		if over >= 0 && wanted[o.Batch] > over {
			i, ok := digestAt[o.Batch]
			if !ok {
				units = append(units, unit{host: host, digest: true})
				i = len(units) - 1
				digestAt[o.Batch] = i
			}
			units[i].seqs = append(units[i].seqs, o.Seq)
			units[i].findings = append(units[i].findings, o.Finding)
			continue
		}
		units = append(units, unit{host: host, seqs: []int64{o.Seq}, findings: []inventory.Finding{o.Finding}})
	}
	return units
}

// deliver sends one unit, waiting out rate limits and retrying transient
// failures with capped exponential backoff.
func (d *Dispatcher) deliver(ctx context.Context, u unit) error {
	backoff := d.minBackoff()
	for attempt := 1; ; attempt++ {
		var err error
		if u.digest {
			err = d.Notifier.SendDigest(ctx, u.findings)
		} else {
			err = d.Notifier.Send(ctx, u.findings[0])
		}
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("notify: delivery to Slack interrupted: %w", ctx.Err())
		}
		for _, seq := range u.seqs {
			if aerr := d.Outbox.Attempted(ctx, seq, err.Error()); aerr != nil {
				d.logger().Warn("could not record a delivery attempt", "seq", seq, "err", aerr)
			}
		}
		wait, class := d.classify(err)
		if d.OnFailure != nil {
			d.OnFailure(class.String())
		}
		switch class {
		case classDestination:
			return fmt.Errorf("%w: %s", ErrDestination, describe(err, d.Notifier.ChannelFor(topSeverity(u.findings))))
		case classRejected:
			return fmt.Errorf("%w for %q (finding %q, %d in this message): %v; svcwatch keeps it in the outbox: please report this as a bug",
				ErrRejected, u.host, u.findings[0].ID, len(u.findings), err)
		}
		if attempt >= d.maxAttempts() {
			return fmt.Errorf("%w: %d attempts for %q failed, last: %v; the findings stay in the outbox and are retried on the next run",
				ErrUnavailable, attempt, u.host, err)
		}
		if class == classTransient {
			wait = backoff
			backoff = min(2*backoff, d.maxBackoff())
		}
		d.logger().Warn("slack delivery failed; retrying", "host", u.host, "attempt", attempt, "wait", wait, "err", err)
		if err := d.sleep(ctx, wait); err != nil {
			return fmt.Errorf("notify: delivery to Slack interrupted: %w", err)
		}
	}
}

func markDone(done map[int64]bool, seqs []int64) {
	for _, s := range seqs {
		done[s] = true
	}
}

func topSeverity(fs []inventory.Finding) inventory.Severity {
	top := inventory.SeverityInfo
	for _, f := range fs {
		top = max(top, f.Severity)
	}
	return top
}

type errClass int

const (
	classTransient   errClass = iota // 5xx, network, timeout: back off and retry
	classRateLimited                 // 429: wait Retry-After and retry
	classDestination                 // token, channel, webhook refused: stop
	classRejected                    // this message's content refused
)

// FailureClasses are the classes OnFailure reports.
var FailureClasses = []string{
	classTransient.String(), classRateLimited.String(), classDestination.String(), classRejected.String(),
}

func (c errClass) String() string {
	switch c {
	case classTransient:
		return "transient"
	case classRateLimited:
		return "rate_limited"
	case classDestination:
		return "destination"
	case classRejected:
		return "rejected"
	}
	return "unknown"
}

// Slack API error codes by what they mean for delivery.
var (
	destinationCodes = map[string]bool{
		"invalid_auth": true, "not_authed": true, "account_inactive": true, "token_revoked": true,
		"token_expired": true, "no_permission": true, "missing_scope": true, "channel_not_found": true,
		"not_in_channel": true, "is_archived": true, "restricted_action": true, "ekm_access_denied": true,
		"team_access_not_granted": true, "org_login_required": true, "invalid_token": true, "no_service": true,
	}
	rejectedCodes = map[string]bool{
		"invalid_blocks": true, "invalid_blocks_format": true, "msg_too_long": true, "no_text": true,
		"invalid_arguments": true, "too_many_attachments": true, "invalid_form_data": true, "invalid_json": true,
	}
	transientCodes = map[string]bool{
		"internal_error": true, "fatal_error": true, "service_unavailable": true, "request_timeout": true, "ratelimited": true,
	}
)

// classify says what to do about a Send error, and for a rate limit how long
// Slack asked us to wait.
func (d *Dispatcher) classify(err error) (time.Duration, errClass) {
	var rl *slack.RateLimitedError
	var sc slack.StatusCodeError
	var se slack.SlackErrorResponse
	switch {
	case errors.As(err, &rl):
		return max(rl.RetryAfter, d.minWait()), classRateLimited
	case errors.As(err, &sc):
		switch {
		case sc.Code >= 500 || sc.Code == http.StatusTooManyRequests || sc.Code == http.StatusRequestTimeout:
			return 0, classTransient
		case sc.Code == http.StatusBadRequest || sc.Code == http.StatusRequestEntityTooLarge:
			return 0, classRejected
		}
		return 0, classDestination
	case errors.As(err, &se):
		switch {
		case transientCodes[se.Err]:
			return 0, classTransient
		case rejectedCodes[se.Err]:
			return 0, classRejected
		}
		return 0, classDestination // destinationCodes and anything unknown: stop and tell
	}
	return 0, classTransient // network errors and timeouts
}

// describe turns a destination error into what the operator should do.
func describe(err error, channel string) string {
	code := ""
	var se slack.SlackErrorResponse
	var sc slack.StatusCodeError
	switch {
	case errors.As(err, &se):
		code = se.Err
	case errors.As(err, &sc):
		return fmt.Sprintf("%v: the incoming webhook was refused; create a new webhook in Slack and put its URL in slack.webhook_url_env / webhook_url_file", err)
	}
	switch code {
	case "invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired":
		return fmt.Sprintf("%v: the bot token is not valid; put a current bot token (xoxb-…) in slack.token_env / token_file", err)
	case "channel_not_found":
		return fmt.Sprintf("%v: channel %q does not exist or the app cannot see it; check slack.channel and slack.routes (use the ID for a private channel)", err, channel)
	case "not_in_channel", "is_archived":
		return fmt.Sprintf("%v: the app cannot post in %q; invite it with /invite @<app> or pick another channel", err, channel)
	case "missing_scope", "no_permission", "restricted_action":
		return fmt.Sprintf("%v: the Slack app lacks permission to post; give it the chat:write scope and reinstall it", err)
	}
	return fmt.Sprintf("%v: Slack refused the message for a reason svcwatch does not know; check the app and channel settings", err)
}

func (d *Dispatcher) logger() *slog.Logger {
	if d.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return d.Logger
}

func (d *Dispatcher) sleep(ctx context.Context, dur time.Duration) error {
	if d.Sleep != nil {
		return d.Sleep(ctx, dur)
	}
	t := time.NewTimer(dur)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// maxPage bounds how far Drain reads to keep one batch in one digest.
const maxPage = 1 << 16

// Dispatcher defaults.
const (
	DefaultMaxAttempts = 8
	DefaultPageSize    = 500
	DefaultMinBackoff  = time.Second
	DefaultMaxBackoff  = time.Minute
	DefaultMinWait     = time.Second
)

func (d *Dispatcher) maxAttempts() int          { return orDefault(d.MaxAttempts, DefaultMaxAttempts) }
func (d *Dispatcher) pageSize() int             { return orDefault(d.PageSize, DefaultPageSize) }
func (d *Dispatcher) minBackoff() time.Duration { return orDefault(d.MinBackoff, DefaultMinBackoff) }
func (d *Dispatcher) maxBackoff() time.Duration { return orDefault(d.MaxBackoff, DefaultMaxBackoff) }
func (d *Dispatcher) minWait() time.Duration    { return orDefault(d.MinWait, DefaultMinWait) }

func orDefault[T int | time.Duration](v, def T) T {
	if v > 0 {
		return v
	}
	return def
}
