package notify

import (
	"context"
	"errors"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/svcwatch/svcwatch/internal/config"
	"github.com/svcwatch/svcwatch/internal/inventory"
	"github.com/svcwatch/svcwatch/internal/lab/slacksink"
)

func startSink(t *testing.T) *slacksink.Sink {
	t.Helper()
	s, err := slacksink.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func tokenConfig(s *slacksink.Sink) config.Slack {
	return config.Slack{TokenEnv: "SLACK_TOKEN", Channel: s.Channel(), APIURL: s.URL()}
}

func newNotifier(t *testing.T, cfg config.Slack, secret string) *Notifier {
	t.Helper()
	n, err := New(cfg, secret, &http.Client{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// hostile is what the lab's hostile-name scenario plants: every field a host
// or AD controls carries mentions, pings, links, mrkdwn, control characters,
// invalid UTF-8 and, for the path, 100 KB.
func hostile() inventory.Finding {
	const evil = "<@U123> <!channel> <!here> @everyone <http://x|y> *bold* _it_ ~st~ `tick` ```fence``` &amp; \x1b[2J\x00\u202e\xff\xfe\r\nEND"
	path := `C:\Windows\Temp\` + strings.Repeat("A<@U999>`*", 10_000) + `.exe`
	svc := &inventory.Service{Name: "EVIL" + evil, DisplayName: "Display " + evil, ImagePath: path, ServiceDLL: evil,
		StartMode: inventory.StartDemand, Account: "acct " + evil, Type: inventory.TypeOwnProcess}
	return inventory.Finding{
		ID:   "hostile-" + evil,
		Host: inventory.Host{Name: "dc01" + evil, Reasons: []inventory.Reason{{Kind: inventory.ReasonGroup, Detail: "grp " + evil}}},
		Kind: inventory.KindInstalled, Severity: inventory.SeverityCritical, At: t0,
		Service: svc,
		Event: &inventory.Event{ID: 7045, RecordID: 77, Time: t0, SID: "S-1-5-21-9",
			Data: []string{svc.Name, path, "user mode service", "demand start", svc.Account}},
		Installer: &inventory.Account{SID: "S-1-5-21-9", Name: `CORP\` + evil, Privileged: true, Groups: []string{"g " + evil}},
		Detail:    "detail " + evil,
		Hits:      []inventory.Hit{{ID: "id " + evil, Severity: inventory.SeverityHigh, Why: "why " + evil}},
	}
}

var fence = regexp.MustCompile("(?s)```.*?```")

func TestHostileFindingIsInertAndWithinLimits(t *testing.T) {
	s := startSink(t)
	token := newNotifier(t, tokenConfig(s), s.Token())
	hook := newNotifier(t, config.Slack{WebhookURLEnv: "SLACK_WEBHOOK"}, s.WebhookURL())
	ctx := context.Background()
	f := hostile()
	// The sink rejects anything over Slack's limits, so acceptance is the limit check.
	if err := token.Send(ctx, f); err != nil {
		t.Fatalf("chat.postMessage: %v", err)
	}
	if err := hook.Send(ctx, f); err != nil {
		t.Fatalf("webhook: %v", err)
	}
	if err := token.SendDigest(ctx, []inventory.Finding{f, f, f}); err != nil {
		t.Fatalf("digest: %v", err)
	}
	msgs := s.Messages()
	if len(msgs) != 3 {
		t.Fatalf("got %d messages, want 3", len(msgs))
	}
	for _, m := range msgs {
		if live := m.Live(); len(live) > 0 {
			t.Errorf("message %d has live markup:\n%s", m.Seq, strings.Join(live, "\n"))
		}
		if m.Parse != "" && m.Parse != "none" {
			t.Errorf("message %d: parse=%q", m.Seq, m.Parse)
		}
		sawMarker := false
		for _, o := range m.TextObjects() {
			checkInert(t, m.Seq, o)
			sawMarker = sawMarker || strings.Contains(o.Text, "[truncated:")
		}
		if m.Seq != 3 && !sawMarker {
			t.Errorf("message %d: the 100 KB path was not visibly truncated", m.Seq)
		}
	}
	t.Log(msgs[0].Readable())
}

func checkInert(t *testing.T, seq int, o slacksink.TextObject) {
	t.Helper()
	where := func() string { return o.Pointer + " of message " + string(rune('0'+seq)) }
	if !utf8.ValidString(o.Text) {
		t.Errorf("%s: invalid UTF-8", where())
	}
	for _, r := range o.Text {
		if r != '\n' && (unicode.IsControl(r) || unicode.Is(unicode.Cf, r)) {
			t.Errorf("%s: control or format character %U", where(), r)
		}
	}
	switch o.Type {
	case "text": // the notification fallback: Slack reads it as mrkdwn
		if strings.ContainsAny(o.Text, "*_~`@") {
			t.Errorf("%s: mrkdwn or @ survives in the fallback: %q", where(), o.Text)
		}
	case "mrkdwn":
		if !o.Verbatim {
			t.Errorf("%s: mrkdwn without verbatim", where())
		}
		// Outside code fences, mrkdwn holds only our own words.
		outside := fence.ReplaceAllString(o.Text, "")
		for _, bad := range []string{"U123", "channel", "bold", "http", "everyone", "END"} {
			if strings.Contains(outside, bad) {
				t.Errorf("%s: host text %q outside a code block in mrkdwn: %q", where(), bad, outside)
			}
		}
		// Inside, no backtick could close the fence early: exactly two fences per block.
		for _, code := range fence.FindAllString(o.Text, -1) {
			if strings.Count(code, "`") != 6 {
				t.Errorf("%s: backticks inside a code block: %q", where(), code)
			}
		}
	}
}

func TestNewValidates(t *testing.T) {
	tests := []struct {
		name   string
		cfg    config.Slack
		secret string
		want   string
	}{
		{"no destination", config.Slack{}, "x", "no destination"},
		{"empty token", config.Slack{TokenEnv: "T", Channel: "#a"}, " ", "bot token is empty"},
		{"no channel", config.Slack{TokenEnv: "T"}, "xoxb-1", "slack.channel: required"},
		{"bad webhook", config.Slack{WebhookURLEnv: "W"}, "hooks.slack.com/x", "not an http(s) URL"},
		{"webhook over plain http", config.Slack{WebhookURLEnv: "W"}, "http://hooks.example.com/services/T/B/K", "plain http to another machine"},
		{"routes with webhook", config.Slack{WebhookURLEnv: "W", Routes: []config.Route{{MinSeverity: "high", Channel: "#x"}}}, "https://hooks.slack.com/services/T/B/K", "one channel only"},
		{"bad min severity", config.Slack{TokenEnv: "T", Channel: "#a", MinSeverity: "urgent"}, "xoxb-1", "slack.min_severity"},
		{"bad route", config.Slack{TokenEnv: "T", Channel: "#a", Routes: []config.Route{{MinSeverity: "high"}}}, "xoxb-1", "slack.routes[0].channel"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg, tt.secret, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.want)
			}
			if tt.secret != "" && strings.TrimSpace(tt.secret) != "" && strings.Contains(err.Error(), tt.secret) {
				t.Errorf("error shows the secret: %v", err)
			}
		})
	}
}

func TestClientAlwaysHasATimeout(t *testing.T) {
	for _, hc := range []*http.Client{nil, {}, {Timeout: 3 * time.Second}} {
		n, err := New(config.Slack{TokenEnv: "T", Channel: "#a"}, "xoxb-1", hc)
		if err != nil {
			t.Fatal(err)
		}
		want := DefaultTimeout
		if hc != nil && hc.Timeout != 0 {
			want = hc.Timeout
		}
		if n.hc.Timeout != want {
			t.Errorf("timeout %v, want %v", n.hc.Timeout, want)
		}
	}
}

func TestRoutesAndMinSeverity(t *testing.T) {
	s := startSink(t)
	s.AddChannel("#soc-critical")
	s.AddChannel("#soc-high")
	cfg := tokenConfig(s)
	cfg.MinSeverity = "low"
	cfg.Routes = []config.Route{{MinSeverity: "high", Channel: "#soc-high"}, {MinSeverity: "critical", Channel: "#soc-critical"}}
	n := newNotifier(t, cfg, s.Token())
	ctx := context.Background()
	want := map[inventory.Severity]string{
		inventory.SeverityLow: s.Channel(), inventory.SeverityMedium: s.Channel(),
		inventory.SeverityHigh: "#soc-high", inventory.SeverityCritical: "#soc-critical",
	}
	samples := Samples()
	if len(samples) != 5 {
		t.Fatalf("Samples has %d findings, want one per severity", len(samples))
	}
	for i, f := range samples {
		if f.Severity != inventory.Severity(i) {
			t.Fatalf("sample %d has severity %v", i, f.Severity)
		}
		if got := n.Wants(f); got != (f.Severity >= inventory.SeverityLow) {
			t.Errorf("Wants(%v) = %v", f.Severity, got)
		}
		if !n.Wants(f) {
			continue
		}
		if err := n.Send(ctx, f); err != nil {
			t.Fatalf("send %v: %v", f.Severity, err)
		}
	}
	msgs := s.Messages()
	if len(msgs) != 4 {
		t.Fatalf("got %d messages, want 4", len(msgs))
	}
	for i, m := range msgs {
		sev := inventory.Severity(i + 1)
		if m.Channel != want[sev] {
			t.Errorf("%v went to %s, want %s", sev, m.Channel, want[sev])
		}
	}
	suppressed := samples[4]
	suppressed.Suppressed = true
	if n.Wants(suppressed) {
		t.Error("Wants a suppressed finding")
	}
}

func TestCheck(t *testing.T) {
	s := startSink(t)
	ctx := context.Background()
	if err := newNotifier(t, tokenConfig(s), s.Token()).Check(ctx); err != nil {
		t.Fatalf("Check with the right token: %v", err)
	}
	err := newNotifier(t, tokenConfig(s), "xoxb-wrong").Check(ctx)
	if !errors.Is(err, ErrDestination) || !strings.Contains(err.Error(), "token_env") {
		t.Fatalf("Check with a wrong token: %v", err)
	}
}

func TestWebhookErrorsHideTheURL(t *testing.T) {
	s := startSink(t)
	url := s.WebhookURL()
	n := newNotifier(t, config.Slack{WebhookURLEnv: "W"}, url)
	_ = s.Close() // nothing listens any more: a network error quoting the URL
	err := n.Send(context.Background(), Samples()[0])
	if err == nil {
		t.Fatal("send to a closed sink succeeded")
	}
	key := url[strings.LastIndex(url, "/")+1:]
	if strings.Contains(err.Error(), key) {
		t.Fatalf("error shows the webhook secret: %v", err)
	}
}
