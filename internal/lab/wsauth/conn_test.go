package wsauth

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fakeClock) Advance(d time.Duration) {
	f.mu.Lock()
	f.now = f.now.Add(d)
	f.mu.Unlock()
}

func TestContextEviction(t *testing.T) {
	clock := &fakeClock{now: time.Date(2026, 12, 4, 15, 0, 0, 0, time.UTC)}
	a := New(Options{Now: clock.Now, IdleTimeout: time.Minute})
	req := func(i int) *http.Request {
		r := httptest.NewRequest(http.MethodPost, "/wsman", nil)
		r.RemoteAddr = fmt.Sprintf("127.0.0.%d:%d", 1+i/60000, 1024+i%60000)
		return r
	}
	for i := range maxConns {
		a.conn(req(i))
	}
	if a.Contexts() != maxConns {
		t.Fatalf("%d contexts", a.Contexts())
	}
	// Full and nothing idle: the oldest goes.
	clock.Advance(time.Second)
	a.conn(req(maxConns))
	if a.Contexts() != maxConns {
		t.Fatalf("%d contexts after evicting the oldest", a.Contexts())
	}
	// Everything idle past the timeout: all but the newest go.
	clock.Advance(2 * time.Minute)
	a.conn(req(maxConns + 1))
	if a.Contexts() != 1 {
		t.Fatalf("%d contexts after idle eviction", a.Contexts())
	}
}

func TestRejectHook(t *testing.T) {
	for _, method := range []string{"ntlm", "basic"} {
		t.Run(method, func(t *testing.T) {
			rec := &attempts{}
			o := labOptions(rec)
			o.Reject = func(user string) bool { return user == `LAB\svcwatch` }
			a := New(o)
			srv := startTLS(t, a, nil)
			c := &testClient{t: t, user: "svcwatch", domain: "LAB", password: "S3cret!pw", http: srv.Client(), url: srv.URL}
			var status int
			if method == "ntlm" {
				resp, _ := c.login("")
				status = resp.StatusCode
			} else {
				resp, _ := post(t, srv.Client(), srv.URL, `LAB\svcwatch`, "S3cret!pw", "<b/>")
				status = resp.StatusCode
			}
			if status != 401 || rec.count(true) != 0 {
				t.Errorf("status %d, attempts %+v", status, rec.all)
			}
			// Other users are unaffected.
			resp, _ := post(t, srv.Client(), srv.URL, "auditor@lab.example", "Aud1tor#", "<b/>")
			if resp.StatusCode != 200 {
				t.Errorf("other user: %d", resp.StatusCode)
			}
		})
	}
}

// TestNTLMSchemeEchoed: a client using the "NTLM" scheme gets its challenge
// under the same scheme.
func TestNTLMSchemeEchoed(t *testing.T) {
	a := New(labOptions(&attempts{}))
	srv := startTLS(t, a, nil)
	c := &testClient{t: t, user: "svcwatch", domain: "LAB", password: "S3cret!pw", http: srv.Client(), url: srv.URL}
	resp, _ := c.do("NTLM "+base64.StdEncoding.EncodeToString(c.negotiateMessage()), "", nil)
	h := resp.Header.Get("WWW-Authenticate")
	if resp.StatusCode != 401 || !strings.HasPrefix(h, "NTLM ") {
		t.Fatalf("status %d WWW-Authenticate %q", resp.StatusCode, h)
	}
	raw, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(h, "NTLM "))
	resp, body := c.do("NTLM "+base64.StdEncoding.EncodeToString(c.authenticateMessage(raw)), soapContentType, []byte("<n/>"))
	if resp.StatusCode != 200 || !strings.HasSuffix(string(body), "body=<n/>") {
		t.Fatalf("status %d body %q", resp.StatusCode, body)
	}
}
