// Package slacksink is a local stand-in for the Slack Web API and incoming
// webhooks, for tests, benchmarks and the lab. It speaks what slack-go sends
// (chat.postMessage as a form POST, auth.test, webhook JSON), answers the way
// Slack does (HTTP 200 with ok:false for API errors, 429 with Retry-After),
// rejects messages that break Slack's Block Kit limits, injects failures on
// request, and records every accepted message in order.
package slacksink

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// maxBody bounds a request body; Slack's own limit is of the same order.
const maxBody = 4 << 20

// Channel names and IDs the sink knows from the start.
const (
	DefaultChannel   = "#svcwatch-alerts"
	DefaultChannelID = "C0SVCWATCH1"
	teamID           = "T0SVCWATCH"
	botUserID        = "U0SVCWATCH"
)

// fault is one queued failure injection.
type fault struct {
	status     int
	code       string        // Slack error code answered with HTTP 200 (Reject)
	retryAfter time.Duration // 429 only
	left       int
}

// Sink is a running fake Slack. Its methods are safe for concurrent use.
type Sink struct {
	srv     *http.Server
	ln      net.Listener
	base    string
	token   string
	hookKey string
	done    chan struct{}

	mu        sync.Mutex
	channels  map[string]string // ID → "#name"
	faults    []fault
	messages  []Message
	attempts  int
	rejected  int
	arrived   chan struct{} // closed and replaced whenever a message is accepted
	subs      map[int]chan Message
	nextSub   int
	dropped   int
	closed    bool
	closeOnce sync.Once
}

// Start runs a sink on 127.0.0.1 with a random port, bot token and webhook path.
func Start() (*Sink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("slacksink: listen on loopback: %w", err)
	}
	s := &Sink{
		ln:       ln,
		base:     "http://" + ln.Addr().String(),
		token:    "xoxb-" + randomHex(12) + "-" + randomHex(12),
		hookKey:  randomHex(12),
		done:     make(chan struct{}),
		channels: map[string]string{DefaultChannelID: DefaultChannel},
		arrived:  make(chan struct{}),
		subs:     map[int]chan Message{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/api/chat.postMessage", s.postMessage)
	mux.HandleFunc("/api/auth.test", s.authTest)
	mux.HandleFunc("/services/"+teamID+"/B0SVCWATCH/"+s.hookKey, s.webhook)
	mux.HandleFunc("/services/", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.attempts++
		s.rejected++
		s.mu.Unlock()
		http.Error(w, "no_service", http.StatusNotFound)
	})
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"ok": false, "error": "unknown_method"})
	})
	mux.Handle("/slack/", s.Handler())
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		defer close(s.done)
		_ = s.srv.Serve(ln)
	}()
	return s, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b)
}

// URL is the Web API base; give slack-go OptionAPIURL(URL()+"/").
func (s *Sink) URL() string { return s.base + "/api" }

// WebhookURL is the incoming-webhook URL; it posts to DefaultChannel.
func (s *Sink) WebhookURL() string {
	return s.base + "/services/" + teamID + "/B0SVCWATCH/" + s.hookKey
}

// Token is the only bot token the sink accepts.
func (s *Sink) Token() string { return s.token }

// Channel is the channel the sink knows from the start.
func (s *Sink) Channel() string { return DefaultChannel }

// AddChannel makes another channel exist (for severity routes); name may
// carry a leading '#'. It returns the channel's ID.
func (s *Sink) AddChannel(name string) string {
	name = "#" + strings.TrimPrefix(name, "#")
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, n := range s.channels {
		if n == name {
			return id
		}
	}
	id := fmt.Sprintf("C0SVCWATCH%d", len(s.channels)+1)
	s.channels[id] = name
	return id
}

// resolve maps an ID, "#name" or "name" to the channel's "#name".
func (s *Sink) resolve(ch string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n, ok := s.channels[ch]; ok {
		return n, true
	}
	want := "#" + strings.TrimPrefix(ch, "#")
	for _, n := range s.channels {
		if n == want {
			return n, true
		}
	}
	return "", false
}

// Fail makes the next count message requests (chat.postMessage, auth.test
// and the webhook) answer with HTTP status. Injections queue in call order.
func (s *Sink) Fail(status, count int) {
	s.inject(fault{status: status, left: count})
}

// RateLimit makes the next count message requests answer 429 with a
// Retry-After of retryAfter (whole seconds, rounded up) and Slack's
// {"ok":false,"error":"ratelimited"}. Injections queue in call order.
func (s *Sink) RateLimit(retryAfter time.Duration, count int) {
	s.inject(fault{status: http.StatusTooManyRequests, retryAfter: retryAfter, left: count})
}

// Reject makes the next count message requests answer like Slack refusing
// them: HTTP 200 with {"ok":false,"error":code} (e.g. not_in_channel,
// account_inactive, invalid_blocks); a webhook gets the code as a 400, 403
// or 404 body as Slack's webhooks do. Injections queue in call order.
func (s *Sink) Reject(code string, count int) {
	s.inject(fault{status: http.StatusOK, code: code, left: count})
}

// Recover drops every queued failure: the next request is accepted.
func (s *Sink) Recover() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

func (s *Sink) inject(f fault) {
	if f.left <= 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, f)
}

// count records an attempt and returns the fault to answer with, if any.
func (s *Sink) count() (fault, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.attempts++
	if len(s.faults) == 0 {
		return fault{}, false
	}
	f := s.faults[0]
	s.faults[0].left--
	if s.faults[0].left == 0 {
		s.faults = s.faults[1:]
	}
	return f, true
}

// Attempts is how many message requests arrived, failed or not.
func (s *Sink) Attempts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.attempts
}

// Rejected is how many message requests were refused for their content,
// token or channel (not counting injected failures).
func (s *Sink) Rejected() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rejected
}

// Messages returns every accepted message, in arrival order.
func (s *Sink) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.messages...)
}

// Wait blocks until at least n messages were accepted and returns them all.
func (s *Sink) Wait(ctx context.Context, n int) ([]Message, error) {
	for {
		s.mu.Lock()
		if len(s.messages) >= n {
			out := append([]Message(nil), s.messages...)
			s.mu.Unlock()
			return out, nil
		}
		have, arrived := len(s.messages), s.arrived
		s.mu.Unlock()
		select {
		case <-arrived:
		case <-ctx.Done():
			return nil, fmt.Errorf("slacksink: waiting for %d messages, have %d: %w", n, have, ctx.Err())
		}
	}
}

// Subscribe returns a channel that receives each message as it is accepted,
// and a function that stops the subscription and closes the channel. A slow
// reader loses messages past a buffer of 1024 (Messages still has them).
func (s *Sink) Subscribe() (<-chan Message, func()) {
	ch := make(chan Message, 1024)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		close(ch)
		return ch, func() {}
	}
	id := s.nextSub
	s.nextSub++
	s.subs[id] = ch
	return ch, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if c, ok := s.subs[id]; ok {
			delete(s.subs, id)
			close(c)
		}
	}
}

func (s *Sink) accept(m Message) Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	m.Seq = len(s.messages) + 1
	m.Received = time.Now().UTC()
	m.TS = fmt.Sprintf("%d.%06d", m.Received.Unix(), m.Seq)
	s.messages = append(s.messages, m)
	close(s.arrived)
	s.arrived = make(chan struct{})
	for _, c := range s.subs {
		select {
		case c <- m:
		default:
			s.dropped++
		}
	}
	return m
}

func (s *Sink) reject() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rejected++
}

// Close stops the server and closes subscriptions.
func (s *Sink) Close() error {
	var err error
	s.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err = s.srv.Shutdown(ctx)
		<-s.done
		s.mu.Lock()
		defer s.mu.Unlock()
		s.closed = true
		for id, c := range s.subs {
			delete(s.subs, id)
			close(c)
		}
	})
	return err
}

// answerFault writes an injected failure; Slack's edge sends HTML with 5xx.
func answerFault(w http.ResponseWriter, f fault, webhook bool) {
	if f.code != "" {
		if webhook {
			http.Error(w, f.code, webhookStatus(f.code))
			return
		}
		apiError(w, f.code, nil)
		return
	}
	if f.status == http.StatusTooManyRequests {
		secs := int64((f.retryAfter + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
		writeJSON(w, f.status, map[string]any{"ok": false, "error": "ratelimited"})
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(f.status)
	_, _ = fmt.Fprintf(w, "<html><body>%d %s (injected by slacksink)</body></html>\n", f.status, http.StatusText(f.status))
}

// webhookStatus is the HTTP status Slack's webhooks use for an error code.
func webhookStatus(code string) int {
	switch code {
	case "invalid_token", "action_prohibited":
		return http.StatusForbidden
	case "no_service", "channel_not_found", "no_team":
		return http.StatusNotFound
	case "channel_is_archived":
		return http.StatusGone
	}
	return http.StatusBadRequest
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func apiError(w http.ResponseWriter, code string, msgs []string) {
	body := map[string]any{"ok": false, "error": code}
	if len(msgs) > 0 {
		body["response_metadata"] = map[string]any{"messages": msgs}
	}
	writeJSON(w, http.StatusOK, body)
}

// form reads a Web API request's parameters: a form body, or JSON with a
// Bearer token. The token may be in the form or the Authorization header.
func readParams(w http.ResponseWriter, r *http.Request) (params map[string]string, token string, err error) {
	if r.Method != http.MethodPost && r.Method != http.MethodGet {
		return nil, "", errors.New("invalid_request_method")
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	params = map[string]string{}
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		var body map[string]json.RawMessage
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			return nil, "", errors.New("invalid_json")
		}
		for k, v := range body {
			var str string
			if json.Unmarshal(v, &str) == nil {
				params[k] = str
			} else {
				params[k] = string(v) // blocks, attachments: keep the JSON
			}
		}
	} else {
		if err := r.ParseForm(); err != nil {
			return nil, "", errors.New("invalid_form_data")
		}
		for k := range r.Form {
			params[k] = r.Form.Get(k)
		}
	}
	token = params["token"]
	if h := r.Header.Get("Authorization"); strings.HasPrefix(h, "Bearer ") {
		token = strings.TrimPrefix(h, "Bearer ")
	}
	return params, token, nil
}

func (s *Sink) checkToken(w http.ResponseWriter, token string) bool {
	switch {
	case token == "":
		apiError(w, "not_authed", nil)
	case token != s.token:
		apiError(w, "invalid_auth", nil)
	default:
		return true
	}
	s.reject()
	return false
}

func (s *Sink) authTest(w http.ResponseWriter, r *http.Request) {
	if f, ok := s.count(); ok {
		answerFault(w, f, false)
		return
	}
	_, token, err := readParams(w, r)
	if err != nil {
		apiError(w, err.Error(), nil)
		return
	}
	if !s.checkToken(w, token) {
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"ok": true, "url": s.base + "/", "team": "svcwatch lab", "user": "svcwatch",
		"team_id": teamID, "user_id": botUserID, "bot_id": "B0SVCWATCH",
	})
}

func (s *Sink) postMessage(w http.ResponseWriter, r *http.Request) {
	if f, ok := s.count(); ok {
		answerFault(w, f, false)
		return
	}
	p, token, err := readParams(w, r)
	if err != nil {
		s.reject()
		apiError(w, err.Error(), nil)
		return
	}
	if !s.checkToken(w, token) {
		return
	}
	channel, ok := s.resolve(p["channel"])
	if !ok {
		s.reject()
		apiError(w, "channel_not_found", nil)
		return
	}
	m := Message{Via: ViaAPI, Channel: channel, Text: p["text"], Parse: p["parse"], Mrkdwn: p["mrkdwn"]}
	if b := p["blocks"]; b != "" {
		m.Blocks = json.RawMessage(b)
	}
	if code, msgs := checkContent(m); code != "" {
		s.reject()
		apiError(w, code, msgs)
		return
	}
	m = s.accept(m)
	writeJSON(w, http.StatusOK, map[string]any{
		"ok": true, "channel": channelID(s, channel), "ts": m.TS,
		"message": map[string]any{"type": "message", "text": m.Text, "ts": m.TS, "bot_id": "B0SVCWATCH"},
	})
}

func channelID(s *Sink, name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, n := range s.channels {
		if n == name {
			return id
		}
	}
	return ""
}

// checkContent applies Slack's content rules; it returns "" when acceptable.
func checkContent(m Message) (code string, msgs []string) {
	if m.Text == "" && len(m.Blocks) == 0 {
		return "no_text", nil
	}
	if !utf8.ValidString(m.Text) {
		return "invalid_arguments", []string{"[ERROR] text is not valid UTF-8 [json-pointer:/text]"}
	}
	if Length(m.Text) > MaxMessageText {
		return "msg_too_long", nil
	}
	if len(m.Blocks) > 0 {
		return validateBlocks(m.Blocks)
	}
	return "", nil
}

// webhookPayload is what an incoming webhook accepts (the fields we check).
type webhookPayload struct {
	Text   string          `json:"text"`
	Blocks json.RawMessage `json:"blocks"`
	Parse  string          `json:"parse"`
}

func (s *Sink) webhook(w http.ResponseWriter, r *http.Request) {
	if f, ok := s.count(); ok {
		answerFault(w, f, true)
		return
	}
	if r.Method != http.MethodPost {
		s.reject()
		http.Error(w, "invalid_request_method", http.StatusMethodNotAllowed)
		return
	}
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		s.reject()
		http.Error(w, "invalid_payload", http.StatusBadRequest)
		return
	}
	var p webhookPayload
	if err := json.Unmarshal(raw, &p); err != nil {
		s.reject()
		http.Error(w, "invalid_payload", http.StatusBadRequest)
		return
	}
	m := Message{Via: ViaWebhook, Channel: DefaultChannel, Text: p.Text, Parse: p.Parse}
	if len(p.Blocks) > 0 && string(p.Blocks) != "null" {
		m.Blocks = p.Blocks
	}
	if code, _ := checkContent(m); code != "" {
		s.reject()
		http.Error(w, code, webhookStatus(code))
		return
	}
	s.accept(m)
	w.Header().Set("Content-Type", "text/html")
	_, _ = io.WriteString(w, "ok")
}

// Handler serves the control routes of the lab API:
//
//	POST /slack/fail?status=503&count=N
//	POST /slack/ratelimit?retry_after=S&count=N
//	POST /slack/reject?error=not_in_channel&count=N
//	GET  /slack/messages   every accepted message, in order
//	GET  /slack/stats      {"attempts":A,"accepted":M,"rejected":R}
func (s *Sink) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /slack/fail", func(w http.ResponseWriter, r *http.Request) {
		status, err1 := queryInt(r, "status", 100, 599)
		count, err2 := queryInt(r, "count", 1, 1_000_000)
		if err := errors.Join(err1, err2); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s.Fail(status, count)
		writeJSON(w, http.StatusOK, map[string]any{"status": status, "count": count})
	})
	mux.HandleFunc("POST /slack/ratelimit", func(w http.ResponseWriter, r *http.Request) {
		secs, err1 := queryInt(r, "retry_after", 0, 3600)
		count, err2 := queryInt(r, "count", 1, 1_000_000)
		if err := errors.Join(err1, err2); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s.RateLimit(time.Duration(secs)*time.Second, count)
		writeJSON(w, http.StatusOK, map[string]any{"retry_after": secs, "count": count})
	})
	mux.HandleFunc("POST /slack/reject", func(w http.ResponseWriter, r *http.Request) {
		code := r.URL.Query().Get("error")
		count, err := queryInt(r, "count", 1, 1_000_000)
		if code == "" || len(code) > 64 || err != nil {
			http.Error(w, "want error=<slack error code> and count=N", http.StatusBadRequest)
			return
		}
		s.Reject(code, count)
		writeJSON(w, http.StatusOK, map[string]any{"error": code, "count": count})
	})
	mux.HandleFunc("DELETE /slack/faults", func(w http.ResponseWriter, r *http.Request) {
		s.Recover()
		writeJSON(w, http.StatusOK, map[string]any{"faults": 0})
	})
	mux.HandleFunc("GET /slack/messages", func(w http.ResponseWriter, r *http.Request) {
		msgs := s.Messages()
		if msgs == nil {
			msgs = []Message{}
		}
		writeJSON(w, http.StatusOK, msgs)
	})
	mux.HandleFunc("GET /slack/stats", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		body := map[string]int{"attempts": s.attempts, "accepted": len(s.messages), "rejected": s.rejected}
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, body)
	})
	return mux
}

func queryInt(r *http.Request, key string, lo, hi int) (int, error) {
	v := r.URL.Query().Get(key)
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("query parameter %s=%q: want an integer from %d to %d", key, v, lo, hi)
	}
	return n, nil
}
