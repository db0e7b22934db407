package notify

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/svcwatch/svcwatch/internal/config"
	"github.com/svcwatch/svcwatch/internal/inventory"
	"github.com/svcwatch/svcwatch/internal/lab/slacksink"
)

// memOutbox is an in-memory outbox with the store's semantics.
type memOutbox struct {
	mu        sync.Mutex
	rows      []Outgoing // undelivered, by Seq
	nextSeq   int64
	nextBatch int64
	attempts  map[int64][]string
	delivered []int64
	skipped   []int64
}

func (o *memOutbox) commit(fs ...inventory.Finding) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.nextBatch++
	for _, f := range fs {
		o.nextSeq++
		o.rows = append(o.rows, Outgoing{Seq: o.nextSeq, Batch: o.nextBatch, Finding: f})
	}
}

func (o *memOutbox) Pending(_ context.Context, limit int) ([]Outgoing, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.rows[:min(limit, len(o.rows))]), nil
}

func (o *memOutbox) Delivered(_ context.Context, seqs ...int64) error {
	return o.remove(seqs, &o.delivered)
}

func (o *memOutbox) Skipped(_ context.Context, seqs ...int64) error {
	return o.remove(seqs, &o.skipped)
}

// remove takes seqs out of the outbox and records them in *into.
func (o *memOutbox) remove(seqs []int64, into *[]int64) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.rows = slices.DeleteFunc(o.rows, func(r Outgoing) bool { return slices.Contains(seqs, r.Seq) })
	*into = append(*into, seqs...)
	return nil
}

func (o *memOutbox) Attempted(_ context.Context, seq int64, errText string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.attempts == nil {
		o.attempts = map[int64][]string{}
	}
	o.attempts[seq] = append(o.attempts[seq], errText)
	for i := range o.rows {
		if o.rows[i].Seq == seq {
			o.rows[i].Attempts++
		}
	}
	return nil
}

func (o *memOutbox) pending() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.rows)
}

// fakeSleep records the waits instead of sleeping.
type fakeSleep struct {
	mu    sync.Mutex
	waits []time.Duration
}

func (s *fakeSleep) Sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.waits = append(s.waits, d)
	return ctx.Err()
}

func finding(host string, i int, sev inventory.Severity) inventory.Finding {
	return inventory.Finding{
		ID: fmt.Sprintf("%s-%03d", host, i), Host: inventory.Host{Name: host}, Kind: inventory.KindInstalled, Severity: sev, At: t0,
		Service: &inventory.Service{Name: fmt.Sprintf("Svc%03d", i), ImagePath: fmt.Sprintf(`C:\Temp\t%03d.exe`, i), Type: inventory.TypeOwnProcess},
	}
}

// sentIDs maps every accepted message back to the finding ids it carries,
// from the finding id the renderer puts in each single message's footer.
func sentIDs(msgs []slacksink.Message) []string {
	var ids []string
	for _, m := range msgs {
		for _, o := range m.TextObjects() {
			if id, ok := strings.CutPrefix(o.Text, "svcwatch · finding "); ok {
				ids = append(ids, id)
			}
		}
	}
	return ids
}

func TestDrainSurvivesOutageAndRateLimitsExactlyOnceInOrder(t *testing.T) {
	s := startSink(t)
	ob := &memOutbox{}
	var want []string
	for i := range 4 { // 3 hosts, 4 polls each, 1-2 findings per poll
		for _, h := range []string{"dc01", "dc02", "srv03"} {
			batch := []inventory.Finding{finding(h, 2*i, inventory.SeverityHigh)}
			if i%2 == 0 {
				batch = append(batch, finding(h, 2*i+1, inventory.SeverityMedium))
			}
			ob.commit(batch...)
			for _, f := range batch {
				want = append(want, f.ID)
			}
		}
	}
	s.Fail(503, 20)
	s.RateLimit(3*time.Second, 3)
	sl := &fakeSleep{}
	failures := map[string]int{}
	d := &Dispatcher{Outbox: ob, Notifier: newNotifier(t, tokenConfig(s), s.Token()), Sleep: sl.Sleep,
		OnFailure: func(class string) { failures[class]++ }}

	total, drains := 0, 0
	for ob.pending() > 0 && drains < 10 {
		drains++
		sent, err := d.Drain(context.Background())
		total += sent
		if err != nil && !errors.Is(err, ErrUnavailable) {
			t.Fatalf("drain %d: %v", drains, err)
		}
		if drains == 1 && (err == nil || sent != 0 || ob.pending() != len(want)) {
			t.Fatalf("first drain during the outage: sent %d, err %v, pending %d; want nothing marked delivered", sent, err, ob.pending())
		}
	}
	if ob.pending() != 0 || total != len(want) {
		t.Fatalf("after %d drains: %d pending, %d sent; want 0 and %d", drains, ob.pending(), total, len(want))
	}
	got := sentIDs(s.Messages())
	if !slices.Equal(got, want) {
		t.Fatalf("delivered %v\nwant      %v (each once, in outbox order)", got, want)
	}
	if a := s.Attempts(); a != len(want)+20+3 {
		t.Errorf("sink saw %d attempts, want %d (every message once plus 23 refused)", a, len(want)+23)
	}
	// Within a Drain the backoff doubles from 1s up to the 60s cap; after 8
	// attempts Drain gives up (ErrUnavailable) and the next one starts over;
	// rate limits wait exactly Retry-After.
	outage := seconds(1, 2, 4, 8, 16, 32, 60)
	wantWaits := slices.Concat(outage, outage, seconds(1, 2, 4, 8, 3, 3, 3))
	if !slices.Equal(sl.waits, wantWaits) {
		t.Errorf("waits %v\nwant  %v", sl.waits, wantWaits)
	}
	if drains != 3 {
		t.Errorf("took %d drains, want 3", drains)
	}
	if len(ob.attempts[1]) != 23 {
		t.Errorf("outbox recorded %d failed attempts for the first finding, want 23", len(ob.attempts[1]))
	}
	if failures["transient"] != 20 || failures["rate_limited"] != 3 || len(failures) != 2 {
		t.Errorf("OnFailure saw %v, want 20 transient and 3 rate_limited", failures)
	}
}

func seconds(ss ...int) []time.Duration {
	out := make([]time.Duration, len(ss))
	for i, s := range ss {
		out[i] = time.Duration(s) * time.Second
	}
	return out
}

func TestDrainBurstBecomesOneDigest(t *testing.T) {
	s := startSink(t)
	ob := &memOutbox{}
	ob.commit(finding("srv03", 0, inventory.SeverityMedium))
	var burst []inventory.Finding
	for i := range 50 {
		burst = append(burst, finding("dc01", i, inventory.SeverityHigh))
	}
	ob.commit(burst...)
	ob.commit(finding("dc01", 99, inventory.SeverityCritical))
	d := &Dispatcher{Outbox: ob, Notifier: newNotifier(t, tokenConfig(s), s.Token()), Sleep: (&fakeSleep{}).Sleep}
	sent, err := d.Drain(context.Background())
	if err != nil || sent != 52 {
		t.Fatalf("Drain = %d, %v; want 52, nil", sent, err)
	}
	msgs := s.Messages()
	if len(msgs) != 3 {
		t.Fatalf("got %d messages, want 3 (one, the digest, one)", len(msgs))
	}
	if !strings.Contains(msgs[1].Text, "50 findings on dc01") {
		t.Errorf("second message is not the digest: %q", msgs[1].Text)
	}
	js := string(msgs[1].Blocks)
	for _, f := range burst {
		if !strings.Contains(js, f.Service.Name) {
			t.Errorf("digest does not list %s", f.Service.Name)
		}
	}
	if got := sentIDs(msgs); !slices.Equal(got, []string{"srv03-000", "dc01-099"}) {
		t.Errorf("single messages %v", got)
	}
}

func TestDrainDigestNotSplitAcrossPages(t *testing.T) {
	s := startSink(t)
	ob := &memOutbox{}
	ob.commit(finding("dc02", 0, inventory.SeverityLow))
	var burst []inventory.Finding
	for i := range 30 {
		burst = append(burst, finding("dc01", i, inventory.SeverityHigh))
	}
	ob.commit(burst...)
	d := &Dispatcher{Outbox: ob, Notifier: newNotifier(t, tokenConfig(s), s.Token()), PageSize: 20, Sleep: (&fakeSleep{}).Sleep}
	if sent, err := d.Drain(context.Background()); err != nil || sent != 31 {
		t.Fatalf("Drain = %d, %v", sent, err)
	}
	if msgs := s.Messages(); len(msgs) != 2 || !strings.Contains(msgs[1].Text, "30 findings") {
		t.Fatalf("got %d messages; want the single one and one digest of 30", len(msgs))
	}
}

func TestDrainStopsOnPermanentErrors(t *testing.T) {
	tests := []struct {
		name    string
		token   string // "" means the sink's
		channel string // "" means the sink's
		reject  string // injected Slack error
		hint    string
	}{
		{name: "invalid_auth", token: "xoxb-revoked", hint: "token_env"},
		{name: "channel_not_found", channel: "#gone", hint: `channel "#gone"`},
		{name: "not_in_channel", reject: "not_in_channel", hint: "/invite"},
		{name: "account_inactive", reject: "account_inactive", hint: "bot token is not valid"},
		{name: "token_revoked", reject: "token_revoked", hint: "bot token is not valid"},
		{name: "unknown code", reject: "something_new", hint: "does not know"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startSink(t)
			cfg := tokenConfig(s)
			token := s.Token()
			if tt.token != "" {
				token = tt.token
			}
			if tt.channel != "" {
				cfg.Channel = tt.channel
			}
			if tt.reject != "" {
				s.Reject(tt.reject, 100)
			}
			ob := &memOutbox{}
			ob.commit(finding("dc01", 0, inventory.SeverityHigh))
			ob.commit(finding("dc02", 1, inventory.SeverityHigh))
			sl := &fakeSleep{}
			d := &Dispatcher{Outbox: ob, Notifier: newNotifier(t, cfg, token), Sleep: sl.Sleep}
			sent, err := d.Drain(context.Background())
			if !errors.Is(err, ErrDestination) || !strings.Contains(err.Error(), tt.hint) {
				t.Fatalf("err = %v; want ErrDestination with %q", err, tt.hint)
			}
			if sent != 0 || ob.pending() != 2 || s.Attempts() != 1 || len(sl.waits) != 0 {
				t.Errorf("sent %d, pending %d, attempts %d, waits %v; want 0, 2, 1 and none", sent, ob.pending(), s.Attempts(), sl.waits)
			}
			if strings.Contains(err.Error(), s.Token()) {
				t.Errorf("error shows the token")
			}
		})
	}
}

func TestDrainRejectedMessageBlocksOnlyItsHost(t *testing.T) {
	s := startSink(t)
	ob := &memOutbox{}
	ob.commit(finding("dc01", 0, inventory.SeverityHigh))
	ob.commit(finding("dc02", 1, inventory.SeverityHigh))
	ob.commit(finding("dc01", 2, inventory.SeverityHigh))
	ob.commit(finding("dc02", 3, inventory.SeverityHigh))
	s.Reject("invalid_blocks", 1)
	d := &Dispatcher{Outbox: ob, Notifier: newNotifier(t, tokenConfig(s), s.Token()), Sleep: (&fakeSleep{}).Sleep}
	sent, err := d.Drain(context.Background())
	if !errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), `"dc01-000"`) || sent != 2 {
		t.Fatalf("Drain = %d, %v; want 2 sent and ErrRejected naming dc01-000", sent, err)
	}
	if got := sentIDs(s.Messages()); !slices.Equal(got, []string{"dc02-001", "dc02-003"}) {
		t.Fatalf("delivered %v; dc01's later finding must wait behind its rejected one", got)
	}
	// Once Slack takes it (a fixed renderer), dc01's findings go in order.
	if sent, err := d.Drain(context.Background()); err != nil || sent != 2 {
		t.Fatalf("second Drain = %d, %v", sent, err)
	}
	if got := sentIDs(s.Messages()); !slices.Equal(got[2:], []string{"dc01-000", "dc01-002"}) {
		t.Fatalf("delivered %v", got)
	}
}

func TestDrainSkipsBelowMinSeverity(t *testing.T) {
	s := startSink(t)
	cfg := tokenConfig(s)
	cfg.MinSeverity = "high"
	ob := &memOutbox{}
	ob.commit(finding("dc01", 0, inventory.SeverityLow), finding("dc01", 1, inventory.SeverityCritical))
	supp := finding("dc01", 2, inventory.SeverityCritical)
	supp.Suppressed = true
	ob.commit(supp)
	d := &Dispatcher{Outbox: ob, Notifier: newNotifier(t, cfg, s.Token())}
	sent, err := d.Drain(context.Background())
	if err != nil || sent != 1 || ob.pending() != 0 {
		t.Fatalf("Drain = %d, %v, pending %d; want 1 sent, none pending", sent, err, ob.pending())
	}
	if got := sentIDs(s.Messages()); !slices.Equal(got, []string{"dc01-001"}) {
		t.Fatalf("delivered %v", got)
	}
	// The outbox is told which left it as a message and which did not (the
	// store never queues suppressed findings; this outbox does, and they
	// are skipped too).
	if !slices.Equal(ob.delivered, []int64{2}) || !slices.Equal(ob.skipped, []int64{1, 3}) {
		t.Errorf("marked delivered %v and skipped %v; want [2] and [1 3]", ob.delivered, ob.skipped)
	}
}

func TestDrainRetriesTimeouts(t *testing.T) {
	s := startSink(t)
	target, _ := url.Parse(s.URL())
	proxy := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: target.Scheme, Host: target.Host})
	var hung atomic.Int32
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hung.Add(1) <= 2 { // the first two requests never answer in time
			_, _ = io.Copy(io.Discard, r.Body) // lets the server notice the client hanging up
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	defer slow.Close()
	cfg := tokenConfig(s)
	cfg.APIURL = slow.URL + "/api"
	n, err := New(cfg, s.Token(), &http.Client{Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ob := &memOutbox{}
	ob.commit(finding("dc01", 0, inventory.SeverityHigh))
	sl := &fakeSleep{}
	d := &Dispatcher{Outbox: ob, Notifier: n, Sleep: sl.Sleep}
	if sent, err := d.Drain(context.Background()); err != nil || sent != 1 {
		t.Fatalf("Drain = %d, %v", sent, err)
	}
	if !slices.Equal(sl.waits, seconds(1, 2)) || len(s.Messages()) != 1 {
		t.Fatalf("waits %v, messages %d; want two backoffs and one message", sl.waits, len(s.Messages()))
	}
}

func TestDrainCancelledKeepsEverything(t *testing.T) {
	s := startSink(t)
	s.RateLimit(30*time.Second, 1)
	ob := &memOutbox{}
	ob.commit(finding("dc01", 0, inventory.SeverityHigh))
	ctx, cancel := context.WithCancel(context.Background())
	d := &Dispatcher{Outbox: ob, Notifier: newNotifier(t, tokenConfig(s), s.Token()), Sleep: func(ctx context.Context, d time.Duration) error {
		cancel() // shutdown arrives while we wait out the rate limit
		return ctx.Err()
	}}
	sent, err := d.Drain(ctx)
	if !errors.Is(err, context.Canceled) || sent != 0 || ob.pending() != 1 {
		t.Fatalf("Drain = %d, %v, pending %d", sent, err, ob.pending())
	}
}

func TestDrainWebhook(t *testing.T) {
	s := startSink(t)
	ob := &memOutbox{}
	ob.commit(finding("dc01", 0, inventory.SeverityHigh))
	s.Fail(502, 1)
	s.Reject("invalid_token", 1)
	d := &Dispatcher{Outbox: ob, Notifier: newNotifier(t, config.Slack{WebhookURLEnv: "W"}, s.WebhookURL()), Sleep: (&fakeSleep{}).Sleep}
	_, err := d.Drain(context.Background())
	if !errors.Is(err, ErrDestination) || !strings.Contains(err.Error(), "webhook_url_env") {
		t.Fatalf("revoked webhook: %v", err)
	}
	if sent, err := d.Drain(context.Background()); err != nil || sent != 1 {
		t.Fatalf("Drain = %d, %v", sent, err)
	}
}

// crashingOutbox loses the process right after Slack accepted the n-th
// message: Delivered fails, as if svcwatch was killed before recording it.
type crashingOutbox struct {
	*memOutbox
	n, calls int
}

func (c *crashingOutbox) Delivered(ctx context.Context, seqs ...int64) error {
	c.calls++
	if c.calls == c.n {
		return errors.New("killed")
	}
	return c.memOutbox.Delivered(ctx, seqs...)
}

func TestKilledBetweenAcceptAndMarkRepeatsOnlyTheInFlightMessage(t *testing.T) {
	s := startSink(t)
	ob := &memOutbox{}
	for i := range 5 {
		ob.commit(finding("dc01", i, inventory.SeverityHigh))
	}
	n := newNotifier(t, tokenConfig(s), s.Token())
	first := &Dispatcher{Outbox: &crashingOutbox{memOutbox: ob, n: 3}, Notifier: n}
	if sent, err := first.Drain(context.Background()); err == nil || sent != 2 {
		t.Fatalf("first run = %d, %v; want 2 recorded and an error", sent, err)
	}
	restarted := &Dispatcher{Outbox: ob, Notifier: n}
	if sent, err := restarted.Drain(context.Background()); err != nil || sent != 3 {
		t.Fatalf("after restart = %d, %v; want 3", sent, err)
	}
	want := []string{"dc01-000", "dc01-001", "dc01-002", "dc01-002", "dc01-003", "dc01-004"}
	if got := sentIDs(s.Messages()); !slices.Equal(got, want) {
		t.Fatalf("delivered %v\nwant      %v (only the in-flight one twice)", got, want)
	}
}

// forgetfulOutbox never removes anything: a broken store.
type forgetfulOutbox struct{ *memOutbox }

func (forgetfulOutbox) Delivered(context.Context, ...int64) error { return nil }

func TestDrainStopsWhenTheOutboxForgetsDeliveries(t *testing.T) {
	s := startSink(t)
	ob := &memOutbox{}
	ob.commit(finding("dc01", 0, inventory.SeverityHigh))
	d := &Dispatcher{Outbox: forgetfulOutbox{ob}, Notifier: newNotifier(t, tokenConfig(s), s.Token())}
	sent, err := d.Drain(context.Background())
	if err == nil || sent != 1 || len(s.Messages()) != 1 {
		t.Fatalf("Drain = %d, %v, %d messages; want one message and an error", sent, err, len(s.Messages()))
	}
}
