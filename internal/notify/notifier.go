// Package notify turns findings into Slack messages and delivers them: Render
// and RenderDigest build Block Kit messages (pure), a Notifier posts them
// through slack-go with a bot token or an incoming webhook, and a Dispatcher
// drains the outbox in order, retrying what can be retried.
package notify

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/svcwatch/svcwatch/internal/config"
	"github.com/svcwatch/svcwatch/internal/inventory"
)

// Defaults for keys left empty in config.Slack.
const (
	DefaultTimeout    = 15 * time.Second
	DefaultDigestOver = 5 // as config's default
)

// route sends findings at or above min to channel.
type route struct {
	min     inventory.Severity
	channel string
}

// Notifier posts messages to one Slack destination.
type Notifier struct {
	api        *slack.Client // bot token mode
	webhook    string        // incoming webhook mode (a secret: never logged)
	hc         *http.Client
	channel    string
	routes     []route // highest min first
	min        inventory.Severity
	digestOver int
}

// New makes a Notifier from the slack section of the configuration. secret is
// the bot token (token_env / token_file set) or the incoming webhook URL
// (webhook_url_env / webhook_url_file set), as config.ReadSecret returned it.
// hc may be nil; a client without a timeout gets slack.timeout (default 15s),
// because slack-go sets none.
func New(cfg config.Slack, secret string, hc *http.Client) (*Notifier, error) {
	secret = strings.TrimSpace(secret)
	timeout := cmp.Or(cfg.Timeout, DefaultTimeout)
	switch {
	case hc == nil:
		hc = &http.Client{Timeout: timeout}
	case hc.Timeout == 0:
		c := *hc
		c.Timeout = timeout
		hc = &c
	}
	n := &Notifier{hc: hc, channel: cfg.Channel, digestOver: cfg.DigestOver}
	if n.digestOver == 0 {
		n.digestOver = DefaultDigestOver
	}
	if cfg.MinSeverity != "" {
		s, err := inventory.ParseSeverity(cfg.MinSeverity)
		if err != nil {
			return nil, fmt.Errorf("slack.min_severity: %w", err)
		}
		n.min = s
	}
	for i, r := range cfg.Routes {
		s, err := inventory.ParseSeverity(r.MinSeverity)
		if err != nil {
			return nil, fmt.Errorf("slack.routes[%d].min_severity: %w", i, err)
		}
		if r.Channel == "" {
			return nil, fmt.Errorf("slack.routes[%d].channel: empty; name the channel (#name or its ID) that gets findings at or above %s", i, s)
		}
		n.routes = append(n.routes, route{min: s, channel: r.Channel})
	}
	slices.SortStableFunc(n.routes, func(a, b route) int { return cmp.Compare(b.min, a.min) })

	switch {
	case cfg.TokenEnv != "" || cfg.TokenFile != "":
		if secret == "" {
			return nil, errors.New("slack: the bot token is empty: put it in the variable named by slack.token_env or the file slack.token_file")
		}
		if cfg.Channel == "" {
			return nil, errors.New("slack.channel: required with a bot token; set the channel name (#alerts) or ID (C0123…)")
		}
		opts := []slack.Option{slack.OptionHTTPClient(hc)}
		if cfg.APIURL != "" {
			opts = append(opts, slack.OptionAPIURL(strings.TrimSuffix(cfg.APIURL, "/")+"/"))
		}
		n.api = slack.New(secret, opts...)
	case cfg.WebhookURLEnv != "" || cfg.WebhookURLFile != "":
		u, err := url.Parse(secret)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return nil, errors.New("slack: the incoming webhook URL is not an http(s) URL: put the URL Slack gave you in the variable named by slack.webhook_url_env or the file slack.webhook_url_file")
		}
		if u.Scheme == "http" && !config.LoopbackHost(u.Hostname()) {
			return nil, errors.New("slack: the incoming webhook URL is plain http to another machine: the URL is the secret and would cross the network in clear; use the https URL Slack gave you")
		}
		if len(n.routes) > 0 {
			return nil, errors.New("slack.routes: an incoming webhook posts to one channel only; use a bot token (slack.token_env) to route by severity, or remove the routes")
		}
		n.webhook = secret
	default:
		return nil, errors.New("slack: no destination: set slack.token_env (bot token with chat:write) or slack.webhook_url_env (incoming webhook)")
	}
	return n, nil
}

// Wants reports whether f should be posted: not suppressed by the allowlist
// and at or above slack.min_severity. The rest is stored but not sent.
func (n *Notifier) Wants(f inventory.Finding) bool {
	return !f.Suppressed && f.Severity >= n.min
}

// DigestOver is how many findings of one batch are sent one by one; a batch
// with more becomes one digest message. Negative: never digest.
func (n *Notifier) DigestOver() int { return n.digestOver }

// ChannelFor is where a finding of severity s goes: the first route whose
// minimum it reaches, else slack.channel. Webhooks ignore it.
func (n *Notifier) ChannelFor(s inventory.Severity) string {
	for _, r := range n.routes {
		if s >= r.min {
			return r.channel
		}
	}
	return n.channel
}

// Send posts one finding.
func (n *Notifier) Send(ctx context.Context, f inventory.Finding) error {
	return n.Post(ctx, n.ChannelFor(f.Severity), Render(f))
}

// SendDigest posts one digest for fs, to the channel of its highest severity.
func (n *Notifier) SendDigest(ctx context.Context, fs []inventory.Finding) error {
	top := inventory.SeverityInfo
	for _, f := range fs {
		top = max(top, f.Severity)
	}
	return n.Post(ctx, n.ChannelFor(top), RenderDigest(fs))
}

// Post sends a rendered message. Errors keep slack-go's types in their chain
// (*slack.RateLimitedError, slack.StatusCodeError, slack.SlackErrorResponse)
// where there is one, and never contain the token or the webhook URL.
func (n *Notifier) Post(ctx context.Context, channel string, m Message) error {
	if n.webhook != "" {
		no := false
		err := slack.PostWebhookCustomHTTPContext(ctx, n.webhook, n.hc, &slack.WebhookMessage{
			Text: m.Text, Blocks: &slack.Blocks{BlockSet: m.Blocks}, Parse: "none",
			UnfurlLinks: &no, UnfurlMedia: &no,
		})
		var rl *slack.RateLimitedError
		var sc slack.StatusCodeError
		switch {
		case err == nil:
			return nil
		case errors.As(err, &rl):
			return fmt.Errorf("slack webhook: %w", rl)
		case errors.As(err, &sc):
			return fmt.Errorf("slack webhook: %w", sc)
		}
		// Network errors quote the URL, which is the secret: keep only the text.
		return &redactedError{"slack webhook: " + strings.ReplaceAll(err.Error(), n.webhook, "<webhook URL>")}
	}
	_, _, err := n.api.PostMessageContext(ctx, channel,
		slack.MsgOptionText(m.Text, false), // already escaped by safe
		slack.MsgOptionBlocks(m.Blocks...),
		slack.MsgOptionParse(false),
		slack.MsgOptionDisableMarkdown(),
		slack.MsgOptionDisableLinkUnfurl(),
		slack.MsgOptionDisableMediaUnfurl(),
	)
	if err != nil {
		return fmt.Errorf("slack chat.postMessage to %s: %w", channel, err)
	}
	return nil
}

// Check verifies the destination without posting: auth.test for a bot token.
// A webhook cannot be checked without posting; Check returns nil for it.
func (n *Notifier) Check(ctx context.Context) error {
	if n.api == nil {
		return nil
	}
	_, err := n.api.AuthTestContext(ctx)
	if err == nil {
		return nil
	}
	err = fmt.Errorf("slack auth.test: %w", err)
	if _, class := (&Dispatcher{}).classify(err); class == classDestination {
		return fmt.Errorf("%w: %s", ErrDestination, describe(err, n.channel))
	}
	return fmt.Errorf("%w: %v", ErrUnavailable, err)
}

// redactedError is an error whose text had a secret removed; it does not
// unwrap, so the secret cannot be reached through its chain.
type redactedError struct{ msg string }

func (e *redactedError) Error() string { return e.msg }
