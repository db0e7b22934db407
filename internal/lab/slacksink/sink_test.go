package slacksink

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"
)

func startSink(t *testing.T) *Sink {
	t.Helper()
	s, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func client(s *Sink, token string) *slack.Client {
	return slack.New(token, slack.OptionAPIURL(s.URL()+"/"), slack.OptionHTTPClient(&http.Client{Timeout: 5 * time.Second}))
}

func text(kind, s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(kind, s, false, false)
}

func section(s string) slack.Block { return slack.NewSectionBlock(text("plain_text", s), nil, nil) }

func TestPostMessageAccepted(t *testing.T) {
	s := startSink(t)
	c := client(s, s.Token())
	ctx := context.Background()
	blocks := []slack.Block{
		slack.NewHeaderBlock(text("plain_text", "CRITICAL · installed")),
		slack.NewSectionBlock(nil, []*slack.TextBlockObject{text("plain_text", "Host: dc01"), text("plain_text", "Service: PSEXESVC")}, nil),
		slack.NewContextBlock("", text("mrkdwn", "*Next:* isolate")),
	}
	ch, ts, err := c.PostMessageContext(ctx, s.Channel(), slack.MsgOptionText("fallback &lt;x&gt;", false), slack.MsgOptionBlocks(blocks...))
	if err != nil {
		t.Fatalf("PostMessage: %v", err)
	}
	if ch != DefaultChannelID || ts == "" {
		t.Errorf("got channel %q ts %q, want %q and a ts", ch, ts, DefaultChannelID)
	}
	// The channel may also be named by ID or without '#'.
	for _, name := range []string{DefaultChannelID, strings.TrimPrefix(DefaultChannel, "#")} {
		if _, _, err := c.PostMessageContext(ctx, name, slack.MsgOptionText("again", false)); err != nil {
			t.Errorf("channel %q: %v", name, err)
		}
	}
	msgs := s.Messages()
	if len(msgs) != 3 {
		t.Fatalf("got %d messages, want 3", len(msgs))
	}
	m := msgs[0]
	if m.Seq != 1 || m.Via != ViaAPI || m.Channel != DefaultChannel || m.Text != "fallback &lt;x&gt;" {
		t.Errorf("message = %+v", m)
	}
	objs := m.TextObjects()
	if len(objs) != 5 || objs[1].Block != "header" || objs[3].Pointer != "/blocks/1/fields/1" || objs[4].Type != "mrkdwn" {
		t.Errorf("text objects = %+v", objs)
	}
	if got := s.Attempts(); got != 3 {
		t.Errorf("Attempts = %d, want 3", got)
	}
}

func TestPostMessageRejected(t *testing.T) {
	long := func(n int) string { return strings.Repeat("a", n) }
	many := func(n int, b slack.Block) []slack.Block {
		out := make([]slack.Block, n)
		for i := range out {
			out[i] = b
		}
		return out
	}
	fields := func(n, size int) []*slack.TextBlockObject {
		out := make([]*slack.TextBlockObject, n)
		for i := range out {
			out[i] = text("plain_text", long(size))
		}
		return out
	}
	tests := []struct {
		name    string
		token   string // "" means the sink's
		channel string // "" means the sink's
		opts    []slack.MsgOption
		want    string
	}{
		{"wrong token", "xoxb-wrong", "", []slack.MsgOption{slack.MsgOptionText("x", false)}, "invalid_auth"},
		{"unknown channel", "", "#nope", []slack.MsgOption{slack.MsgOptionText("x", false)}, "channel_not_found"},
		{"no text", "", "", nil, "no_text"},
		{"text too long", "", "", []slack.MsgOption{slack.MsgOptionText(long(40001), false)}, "msg_too_long"},
		{"text object 3001", "", "", []slack.MsgOption{slack.MsgOptionBlocks(section(long(3001)))}, "invalid_blocks"},
		{"51 blocks", "", "", []slack.MsgOption{slack.MsgOptionBlocks(many(51, slack.NewDividerBlock())...)}, "invalid_blocks"},
		{"11 fields", "", "", []slack.MsgOption{slack.MsgOptionBlocks(slack.NewSectionBlock(nil, fields(11, 5), nil))}, "invalid_blocks"},
		{"field 2001", "", "", []slack.MsgOption{slack.MsgOptionBlocks(slack.NewSectionBlock(nil, fields(1, 2001), nil))}, "invalid_blocks"},
		{"header 151", "", "", []slack.MsgOption{slack.MsgOptionBlocks(slack.NewHeaderBlock(text("plain_text", long(151))))}, "invalid_blocks"},
		{"header mrkdwn", "", "", []slack.MsgOption{slack.MsgOptionBlocks(slack.NewHeaderBlock(text("mrkdwn", "x")))}, "invalid_blocks"},
		{"empty text object", "", "", []slack.MsgOption{slack.MsgOptionBlocks(section(""))}, "invalid_blocks"},
		{"astral chars count double", "", "", []slack.MsgOption{slack.MsgOptionBlocks(slack.NewHeaderBlock(text("plain_text", strings.Repeat("🟥", 76))))}, "invalid_blocks"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startSink(t)
			token, channel := s.Token(), s.Channel()
			if tt.token != "" {
				token = tt.token
			}
			if tt.channel != "" {
				channel = tt.channel
			}
			_, _, err := client(s, token).PostMessageContext(context.Background(), channel, tt.opts...)
			var se slack.SlackErrorResponse
			if !errors.As(err, &se) || se.Err != tt.want {
				t.Fatalf("err = %v, want Slack error %q", err, tt.want)
			}
			if tt.want == "invalid_blocks" && len(se.ResponseMetadata.Messages) == 0 {
				t.Errorf("invalid_blocks without response_metadata.messages")
			}
			if n := len(s.Messages()); n != 0 {
				t.Errorf("%d messages recorded, want 0", n)
			}
			if s.Rejected() != 1 {
				t.Errorf("Rejected = %d, want 1", s.Rejected())
			}
		})
	}
}

func TestLimitsAtTheEdgeAccepted(t *testing.T) {
	s := startSink(t)
	fields := make([]*slack.TextBlockObject, 10)
	for i := range fields {
		fields[i] = text("plain_text", strings.Repeat("f", 2000))
	}
	blocks := []slack.Block{
		slack.NewHeaderBlock(text("plain_text", strings.Repeat("h", 150))),
		section(strings.Repeat("é", 3000)),
		slack.NewSectionBlock(nil, fields, nil),
	}
	for len(blocks) < 50 {
		blocks = append(blocks, slack.NewDividerBlock())
	}
	if _, _, err := client(s, s.Token()).PostMessageContext(context.Background(), s.Channel(), slack.MsgOptionBlocks(blocks...)); err != nil {
		t.Fatalf("a message exactly at the limits was rejected: %v", err)
	}
}

func TestFailuresInjectedInOrder(t *testing.T) {
	s := startSink(t)
	c := client(s, s.Token())
	s.Fail(503, 2)
	s.RateLimit(1500*time.Millisecond, 1)
	ctx := context.Background()
	post := func() error {
		_, _, err := c.PostMessageContext(ctx, s.Channel(), slack.MsgOptionText("x", false))
		return err
	}
	for i := range 2 {
		var sc slack.StatusCodeError
		if err := post(); !errors.As(err, &sc) || sc.Code != 503 {
			t.Fatalf("attempt %d: err = %v, want 503", i+1, err)
		}
	}
	var rl *slack.RateLimitedError
	if err := post(); !errors.As(err, &rl) || rl.RetryAfter != 2*time.Second {
		t.Fatalf("err = %v, want RateLimitedError retry after 2s (1.5s rounded up)", err)
	}
	if err := post(); err != nil {
		t.Fatalf("after the injected failures: %v", err)
	}
	s.Reject("not_in_channel", 1)
	var se slack.SlackErrorResponse
	if err := post(); !errors.As(err, &se) || se.Err != "not_in_channel" {
		t.Fatalf("err = %v, want not_in_channel", err)
	}
	if s.Attempts() != 5 || len(s.Messages()) != 1 {
		t.Errorf("attempts %d, messages %d; want 5 and 1", s.Attempts(), len(s.Messages()))
	}
}

func TestAuthTest(t *testing.T) {
	s := startSink(t)
	ctx := context.Background()
	resp, err := client(s, s.Token()).AuthTestContext(ctx)
	if err != nil || resp.TeamID != teamID {
		t.Fatalf("auth.test = %+v, %v", resp, err)
	}
	_, err = client(s, "xoxb-nope").AuthTestContext(ctx)
	if err == nil || err.Error() != "invalid_auth" {
		t.Fatalf("auth.test with a wrong token: %v, want invalid_auth", err)
	}
}

func TestWebhook(t *testing.T) {
	s := startSink(t)
	hc := &http.Client{Timeout: 5 * time.Second}
	ctx := context.Background()
	ok := &slack.WebhookMessage{Text: "hello", Blocks: &slack.Blocks{BlockSet: []slack.Block{section("hi")}}}
	if err := slack.PostWebhookCustomHTTPContext(ctx, s.WebhookURL(), hc, ok); err != nil {
		t.Fatalf("webhook: %v", err)
	}
	bad := &slack.WebhookMessage{Blocks: &slack.Blocks{BlockSet: []slack.Block{section(strings.Repeat("x", 3001))}}}
	var sc slack.StatusCodeError
	if err := slack.PostWebhookCustomHTTPContext(ctx, s.WebhookURL(), hc, bad); !errors.As(err, &sc) || sc.Code != 400 {
		t.Fatalf("oversized block via webhook: %v, want 400", err)
	}
	if err := slack.PostWebhookCustomHTTPContext(ctx, s.WebhookURL()+"x", hc, ok); !errors.As(err, &sc) || sc.Code != 404 {
		t.Fatalf("wrong webhook URL: %v, want 404", err)
	}
	s.Reject("invalid_token", 1)
	if err := slack.PostWebhookCustomHTTPContext(ctx, s.WebhookURL(), hc, ok); !errors.As(err, &sc) || sc.Code != 403 {
		t.Fatalf("revoked webhook: %v, want 403", err)
	}
	s.RateLimit(time.Second, 1)
	var rl *slack.RateLimitedError
	if err := slack.PostWebhookCustomHTTPContext(ctx, s.WebhookURL(), hc, ok); !errors.As(err, &rl) {
		t.Fatalf("rate-limited webhook: %v", err)
	}
	msgs := s.Messages()
	if len(msgs) != 1 || msgs[0].Via != ViaWebhook || msgs[0].Channel != DefaultChannel || msgs[0].Text != "hello" {
		t.Fatalf("messages = %+v", msgs)
	}
}

func TestControlRoutes(t *testing.T) {
	s := startSink(t)
	ctl := httptest.NewServer(s.Handler())
	defer ctl.Close()
	do := func(method, path string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, ctl.URL+path, nil)
		resp, err := ctl.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	if r := do("POST", "/slack/fail?status=503&count=1"); r.StatusCode != 200 {
		t.Fatalf("fail: %d", r.StatusCode)
	}
	if r := do("POST", "/slack/ratelimit?retry_after=1&count=1"); r.StatusCode != 200 {
		t.Fatalf("ratelimit: %d", r.StatusCode)
	}
	if r := do("POST", "/slack/reject?error=account_inactive&count=1"); r.StatusCode != 200 {
		t.Fatalf("reject: %d", r.StatusCode)
	}
	if r := do("POST", "/slack/fail?status=abc&count=1"); r.StatusCode != 400 {
		t.Fatalf("bad status accepted: %d", r.StatusCode)
	}
	c := client(s, s.Token())
	for range 3 {
		if _, _, err := c.PostMessage(s.Channel(), slack.MsgOptionText("x", false)); err == nil {
			t.Fatal("injected failure did not happen")
		}
	}
	if _, _, err := c.PostMessage(s.Channel(), slack.MsgOptionText("<@U1> & co", false), slack.MsgOptionBlocks(section("a"))); err != nil {
		t.Fatal(err)
	}
	var got []Message
	if err := json.NewDecoder(do("GET", "/slack/messages").Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Text != "<@U1> & co" || string(got[0].Blocks) == "" {
		t.Fatalf("GET /slack/messages = %+v", got)
	}
	var stats map[string]int
	if err := json.NewDecoder(do("GET", "/slack/stats").Body).Decode(&stats); err != nil || stats["attempts"] != 4 || stats["accepted"] != 1 {
		t.Fatalf("stats = %v, %v", stats, err)
	}
	if live := got[0].Live(); len(live) != 1 || !strings.HasPrefix(live[0], "/text: raw '<'") {
		t.Errorf("Live = %q, want the raw mention in /text", live)
	}
	// DELETE /slack/faults drops queued failures: the sink recovers at once.
	do("POST", "/slack/fail?status=503&count=1000")
	if r := do("DELETE", "/slack/faults"); r.StatusCode != 200 {
		t.Fatalf("delete faults: %d", r.StatusCode)
	}
	if _, _, err := c.PostMessage(s.Channel(), slack.MsgOptionText("after", false)); err != nil {
		t.Fatalf("still failing after DELETE /slack/faults: %v", err)
	}
}

func TestWaitAndSubscribe(t *testing.T) {
	s := startSink(t)
	sub, stop := s.Subscribe()
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	go func() {
		c := client(s, s.Token())
		for _, txt := range []string{"one", "two"} {
			_, _, _ = c.PostMessage(s.Channel(), slack.MsgOptionText(txt, false))
		}
	}()
	msgs, err := s.Wait(ctx, 2)
	if err != nil || len(msgs) != 2 || msgs[0].Text != "one" || msgs[1].Text != "two" {
		t.Fatalf("Wait = %+v, %v", msgs, err)
	}
	for _, want := range []string{"one", "two"} {
		if m := <-sub; m.Text != want {
			t.Errorf("subscription got %q, want %q", m.Text, want)
		}
	}
	short, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel2()
	if _, err := s.Wait(short, 3); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Wait beyond what arrives: %v, want deadline exceeded", err)
	}
}

func TestReadableIsTerminalSafe(t *testing.T) {
	blocks, _ := json.Marshal([]slack.Block{
		slack.NewHeaderBlock(text("plain_text", "HIGH · modified")),
		slack.NewSectionBlock(nil, []*slack.TextBlockObject{text("plain_text", "Service: evil\x1b[2Jname &lt;x&gt;")}, nil),
		slack.NewSectionBlock(text("mrkdwn", "*Image path*\n```C:\\x.exe```"), nil, nil),
		slack.NewContextBlock("", text("mrkdwn", "*Next:* isolate *it*")),
	})
	m := Message{Seq: 1, Via: ViaAPI, Channel: DefaultChannel, Text: "fallback", Blocks: blocks}
	got := m.Readable()
	want := "── #svcwatch-alerts · chat.postMessage #1 ──\n" +
		"▌ HIGH · modified\n" +
		"   Service: evil[2Jname <x>\n" +
		"Image path\n    C:\\x.exe\n" +
		"   Next: isolate *it*\n"
	if got != want {
		t.Errorf("Readable =\n%s\nwant\n%s", got, want)
	}
}

func TestPostMessageJSONWithBearer(t *testing.T) {
	s := startSink(t)
	post := func(auth, body string) map[string]any {
		t.Helper()
		req, _ := http.NewRequest("POST", s.URL()+"/chat.postMessage", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json; charset=utf-8")
		if auth != "" {
			req.Header.Set("Authorization", "Bearer "+auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 200 {
			t.Fatalf("status %d, %v", resp.StatusCode, err)
		}
		return out
	}
	body := `{"channel":"` + s.Channel() + `","text":"hi","blocks":[{"type":"divider"}]}`
	if out := post(s.Token(), body); out["ok"] != true {
		t.Fatalf("JSON with the right bearer token: %v", out)
	}
	if out := post("", body); out["error"] != "not_authed" {
		t.Fatalf("JSON without a token: %v", out)
	}
	if out := post(s.Token(), `{"channel":`); out["error"] != "invalid_json" {
		t.Fatalf("truncated JSON: %v", out)
	}
	if m := s.Messages(); len(m) != 1 || string(m[0].Blocks) != `[{"type":"divider"}]` {
		t.Fatalf("messages = %+v", m)
	}
}
