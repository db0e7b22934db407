package winhost

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/svcwatch/svcwatch/internal/inventory"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func newTestHost(t *testing.T, opts Options) (*Host, *clock) {
	t.Helper()
	c := &clock{t: time.Date(2026, 12, 4, 15, 0, 0, 0, time.UTC)}
	opts.Now = c.Now
	return New("dc01.lab.example", opts), c
}

// collectorCommand builds the command line the collector sends.
func collectorCommand(preamble string) string {
	script := preamble + "\n" + CollectorMarker + "\n$ErrorActionPreference='Stop'\n# ... the rest of the body ...\n"
	return "powershell.exe -NoLogo -NoProfile -NonInteractive -ExecutionPolicy Bypass -EncodedCommand " + encodePS(script)
}

// answer is the collector response as a strict client would read it.
type answer struct {
	V    int    `json:"v"`
	Host string `json:"host"`
	Now  string `json:"now"`
	Log  struct {
		Oldest    uint64 `json:"oldest"`
		Newest    uint64 `json:"newest"`
		Records   uint64 `json:"records"`
		MaxBytes  int64  `json:"max_bytes"`
		Retention string `json:"retention"`
	} `json:"log"`
	Events   []inventory.Event   `json:"events"`
	More     bool                `json:"more"`
	Digest   string              `json:"digest"`
	Changed  bool                `json:"changed"`
	Services []inventory.Service `json:"services"`
	Errors   []string            `json:"errors"`
}

func collect(t *testing.T, h *Host, req CollectRequest) (answer, []byte) {
	t.Helper()
	stdout, stderr, exit := h.Run(collectorCommand(req.Preamble()))
	if exit != 0 || len(stderr) != 0 {
		t.Fatalf("collector exit %d, stderr %q", exit, stderr)
	}
	var a answer
	dec := json.NewDecoder(bytes.NewReader(stdout))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&a); err != nil {
		t.Fatalf("answer is not the protocol's JSON: %v\n%.500s", err, stdout)
	}
	if strings.Contains(string(stdout), `"services"`) != a.Changed {
		t.Fatalf("services present must equal changed (%v)", a.Changed)
	}
	return a, stdout
}

func TestCollectorProtocol(t *testing.T) {
	const day = 86400
	type step struct {
		apply   string                             // scenario before the poll ("" none)
		advance time.Duration                      // clock advance before the poll
		req     func(prev answer) CollectRequest   // request built from the previous answer
		check   func(t *testing.T, a, prev answer) // assertions
	}
	next := func(p answer) CollectRequest {
		return CollectRequest{Watermark: p.Log.Newest, Digest: p.Digest, MaxEvents: 1000, Lookback: day}
	}
	first := func(answer) CollectRequest { return CollectRequest{Digest: "0", MaxEvents: 1000, Lookback: day} }
	tests := []struct {
		name  string
		steps []step
	}{
		{"first poll: baseline, history outside the look-back", []step{{req: first, check: func(t *testing.T, a, _ answer) {
			if len(a.Events) != 0 || !a.Changed || len(a.Services) < 40 || a.V != 1 || a.Host != "DC01" {
				t.Errorf("events %d changed %v services %d v %d host %q", len(a.Events), a.Changed, len(a.Services), a.V, a.Host)
			}
			if a.Log.Oldest == 0 || a.Log.Newest < a.Log.Oldest || a.Log.Records != a.Log.Newest-a.Log.Oldest+1 || a.Log.Retention != "circular" {
				t.Errorf("log info %+v", a.Log)
			}
		}}}},
		{"unchanged digest: no services, nothing new", []step{
			{req: first},
			{req: next, check: func(t *testing.T, a, prev answer) {
				if a.Changed || a.Services != nil || len(a.Events) != 0 || a.Digest != prev.Digest {
					t.Errorf("changed %v services %d events %d", a.Changed, len(a.Services), len(a.Events))
				}
			}},
		}},
		{"psexec after baseline: one 7045 above the watermark", []step{
			{req: first},
			{apply: ScenarioPsExec, advance: time.Minute, req: next, check: func(t *testing.T, a, prev answer) {
				if len(a.Events) != 1 {
					t.Fatalf("events %+v", a.Events)
				}
				e := a.Events[0]
				if e.ID != 7045 || e.RecordID <= prev.Log.Newest || e.Field(0) != "PSEXESVC" || e.Field(1) != `%SystemRoot%\PSEXESVC.exe` ||
					e.Field(2) != "user mode service" || e.Field(3) != "demand start" || e.Field(4) != "LocalSystem" || !strings.HasSuffix(e.SID, "-1104") {
					t.Errorf("event %+v", e)
				}
				if !a.Changed || !hasService(a.Services, "PSEXESVC") {
					t.Errorf("PSEXESVC not in the changed inventory")
				}
			}},
		}},
		{"ephemeral smbexec: event but the service is gone", []step{
			{req: first},
			{apply: ScenarioSmbExec, req: next, check: func(t *testing.T, a, prev answer) {
				if len(a.Events) != 1 || !strings.Contains(a.Events[0].Field(1), `\\127.0.0.1\C$\__output`) {
					t.Fatalf("events %+v", a.Events)
				}
				if a.Changed || hasService(a.Services, a.Events[0].Field(0)) {
					t.Errorf("smbexec service must be deleted again (changed %v)", a.Changed)
				}
			}},
		}},
		{"binpath-hijack: digest changes, no event", []step{
			{req: first},
			{apply: ScenarioBinPathHijack, req: next, check: func(t *testing.T, a, prev answer) {
				if len(a.Events) != 0 || !a.Changed || a.Digest == prev.Digest {
					t.Fatalf("events %d changed %v", len(a.Events), a.Changed)
				}
				for _, s := range a.Services {
					if s.Name == HijackTarget() && s.ImagePath != HijackedImagePath {
						t.Errorf("%s path %q", s.Name, s.ImagePath)
					}
				}
			}},
		}},
		{"look-back bounds the first poll", []step{
			{apply: ScenarioPsExec, req: func(answer) CollectRequest { return CollectRequest{Digest: "0", MaxEvents: 10, Lookback: 3600} }, check: func(t *testing.T, a, _ answer) {
				if len(a.Events) != 1 {
					t.Errorf("events inside the look-back: %d, want 1", len(a.Events))
				}
			}},
			{advance: 2 * time.Hour, req: func(answer) CollectRequest { return CollectRequest{Digest: "0", MaxEvents: 10, Lookback: 3600} }, check: func(t *testing.T, a, _ answer) {
				if len(a.Events) != 0 {
					t.Errorf("events two hours later with a 1 h look-back: %d, want 0", len(a.Events))
				}
			}},
		}},
		{"watermark above newest: reset, from the oldest record, no time bound", []step{
			{req: first},
			{req: func(p answer) CollectRequest {
				return CollectRequest{Watermark: p.Log.Newest + 1000, Digest: p.Digest, MaxEvents: 100, Lookback: 60}
			}, check: func(t *testing.T, a, _ answer) {
				if len(a.Events) < 3 || a.Events[0].RecordID < a.Log.Oldest {
					t.Fatalf("reset returned %d events", len(a.Events))
				}
				for i := 1; i < len(a.Events); i++ {
					if a.Events[i].RecordID <= a.Events[i-1].RecordID {
						t.Errorf("events not ascending")
					}
				}
			}},
		}},
		{"log file replaced: ids restart, the old watermark is above newest", []step{
			{req: first},
			{apply: ScenarioPsExec, req: next},
			{apply: "reset-log", req: next, check: func(t *testing.T, a, prev answer) {
				if a.Log.Oldest != 1 || a.Log.Newest >= prev.Log.Newest || len(a.Events) != 0 {
					t.Errorf("after reset: log %+v, %d events", a.Log, len(a.Events))
				}
			}},
		}},
		{"at most N events, more set", []step{
			{req: first},
			{apply: ScenarioSmbExec},
			{apply: ScenarioGetSystem},
			{apply: ScenarioCobaltStrike, req: func(p answer) CollectRequest {
				return CollectRequest{Watermark: p.Log.Newest, Digest: p.Digest, MaxEvents: 2, Lookback: day}
			}, check: func(t *testing.T, a, _ answer) {
				if len(a.Events) != 2 || !a.More {
					t.Errorf("events %d more %v, want 2 true", len(a.Events), a.More)
				}
			}},
		}},
		{"log-clear: a 104, ids continue, older records gone", []step{
			{req: first},
			{apply: ScenarioLogClear, req: next, check: func(t *testing.T, a, prev answer) {
				if len(a.Events) != 1 || a.Events[0].ID != 104 || a.Events[0].Field(0) != LabUserName || a.Events[0].Field(2) != "System" {
					t.Fatalf("events %+v", a.Events)
				}
				if a.Log.Oldest != a.Events[0].RecordID || a.Log.Oldest <= prev.Log.Newest || a.Log.Records != 1 {
					t.Errorf("log %+v after clear (previous newest %d)", a.Log, prev.Log.Newest)
				}
			}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, c := newTestHost(t, Options{Role: RoleDC, Small: true})
			var prev answer
			for i, s := range tt.steps {
				if s.apply == "reset-log" {
					h.ResetLog()
				} else if s.apply != "" {
					if err := h.Apply(s.apply); err != nil {
						t.Fatal(err)
					}
				}
				c.Add(s.advance)
				if s.req == nil {
					continue
				}
				a, _ := collect(t, h, s.req(prev))
				if s.check != nil {
					t.Run(string(rune('0'+i)), func(t *testing.T) { s.check(t, a, prev) })
				}
				if a.Digest != h.Digest() || len(a.Digest) != 64 {
					t.Errorf("digest %q, host digest %q", a.Digest, h.Digest())
				}
				prev = a
			}
		})
	}
}

func hasService(list []inventory.Service, name string) bool {
	for _, s := range list {
		if s.Name == name {
			return true
		}
	}
	return false
}

func TestIdleAnswerIsSmall(t *testing.T) {
	h, _ := newTestHost(t, Options{Role: RoleDC})
	a, _ := collect(t, h, CollectRequest{Digest: "0", MaxEvents: 1000, Lookback: 86400})
	if n := len(a.Services); n < 230 || n > 300 {
		t.Errorf("full inventory has %d entries, want ~250", n)
	}
	_, raw := collect(t, h, CollectRequest{Watermark: a.Log.Newest, Digest: a.Digest, MaxEvents: 1000, Lookback: 86400})
	if len(raw) > 400 {
		t.Errorf("idle answer is %d bytes: %s", len(raw), raw)
	}
}

func TestCollectorRejectsBadRequests(t *testing.T) {
	good := CollectRequest{Digest: "0", MaxEvents: 10, Lookback: 0}.Preamble()
	hex64 := strings.Repeat("a", 64)
	tests := []struct {
		name, cmd, want string
	}{
		{"letters in W", collectorCommand("$W=abc;$D='0';$N=10;$B=0;"), "Unexpected token"},
		{"leading zero", collectorCommand("$W=01;$D='0';$N=10;$B=0;"), "Unexpected token"},
		{"upper-case digest", collectorCommand("$W=1;$D='" + strings.ToUpper(hex64) + "';$N=10;$B=0;"), "Unexpected token"},
		{"short digest", collectorCommand("$W=1;$D='abc';$N=10;$B=0;"), "Unexpected token"},
		{"injection after preamble", collectorCommand(good + "Remove-Item C:\\ -Recurse;"), "Unexpected token"},
		{"N zero", collectorCommand("$W=1;$D='0';$N=0;$B=0;"), "Unexpected token"},
		{"N too large", collectorCommand("$W=1;$D='0';$N=10001;$B=0;"), "$N=10001"},
		{"B too large", collectorCommand("$W=1;$D='0';$N=1;$B=31536001;"), "$B=31536001"},
		{"W beyond uint64", collectorCommand("$W=18446744073709551616;$D='0';$N=1;$B=0;"), "out of range"},
		{"fields reordered", collectorCommand("$D='0';$W=1;$N=1;$B=0;"), "is not recognized"},
		{"wrong marker", "powershell.exe -EncodedCommand " + encodePS(good+"\n# svcwatch-collector v2\n"), "does not start with"},
		{"no body", "powershell.exe -EncodedCommand " + encodePS(good), "no body"},
		{"not base64", "powershell.exe -NoProfile -EncodedCommand %%%", "not properly encoded"},
		{"odd UTF-16", "powershell.exe -EncodedCommand QUJD", "not properly encoded"},
		{"too long for cmd.exe", "powershell.exe -EncodedCommand " + strings.Repeat("A", MaxCommandLine), "The command line is too long."},
		{"unknown program", "net.exe user", "'net.exe' is not recognized"},
	}
	h, _ := newTestHost(t, Options{Small: true})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, exit := h.Run(tt.cmd)
			if exit == 0 || len(stdout) != 0 || !strings.Contains(string(stderr), tt.want) {
				t.Errorf("exit %d stdout %q stderr %q, want failure mentioning %q", exit, stdout, stderr, tt.want)
			}
		})
	}
	// The same preamble, well formed, with \r\n line ends, is accepted.
	stdout, _, exit := h.Run("powershell.exe -EncodedCommand " + encodePS(good+"\r\n"+CollectorMarker+"\r\n"))
	if exit != 0 || !json.Valid(stdout) {
		t.Errorf("CRLF request: exit %d", exit)
	}
}

func TestFaults(t *testing.T) {
	cmd := collectorCommand(CollectRequest{Digest: "0", MaxEvents: 10, Lookback: 60}.Preamble())
	for _, kind := range []string{FaultGarbage, FaultTruncated} {
		t.Run(kind, func(t *testing.T) {
			h, _ := newTestHost(t, Options{Small: true})
			if err := h.SetFault(kind); err != nil {
				t.Fatal(err)
			}
			stdout, _, _ := h.Run(cmd)
			if len(stdout) == 0 || json.Valid(stdout) {
				t.Errorf("%s: stdout is valid JSON (or empty): %.200q", kind, stdout)
			}
			if err := h.SetFault("none"); err != nil || h.Fault() != FaultNone {
				t.Fatalf("clearing: %v", err)
			}
			if stdout, _, _ := h.Run(cmd); !json.Valid(stdout) {
				t.Errorf("after clearing the fault the answer is not JSON")
			}
		})
	}
	t.Run("huge is streamed", func(t *testing.T) {
		h, _ := newTestHost(t, Options{Small: true})
		h.SetFault(FaultHuge)
		pr, pw := io.Pipe()
		w := &maxWrite{w: pw}
		go func() {
			_, err := h.Exec(context.Background(), cmd, w, io.Discard)
			pw.CloseWithError(err)
		}()
		total := countingReader{r: pr}
		head := make([]byte, 7)
		io.ReadFull(&total, head)
		tail := &tailWriter{}
		io.Copy(tail, &total)
		if string(head) != `{"v":1,` || !strings.HasSuffix(string(tail.last), "}]}\r\n") {
			t.Errorf("huge answer is not a complete document: %q ... %q", head, tail.last)
		}
		if total.n <= 8<<20 {
			t.Errorf("huge answer is %d bytes, want more than 8 MiB", total.n)
		}
		if w.max > 256<<10 {
			t.Errorf("largest single write %d bytes: not streamed", w.max)
		}
	})
	t.Run("slow honours the context", func(t *testing.T) {
		h, _ := newTestHost(t, Options{Small: true, SlowDelay: 5 * time.Second})
		h.SetFault(FaultSlow)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		start := time.Now()
		if _, err := h.Exec(ctx, cmd, io.Discard, io.Discard); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("err %v, want deadline exceeded", err)
		}
		if time.Since(start) > 4*time.Second {
			t.Errorf("Exec ignored the context")
		}
	})
	t.Run("slow answers late", func(t *testing.T) {
		h, _ := newTestHost(t, Options{Small: true, SlowDelay: 200 * time.Millisecond})
		h.SetFault(FaultSlow)
		start := time.Now()
		if stdout, _, exit := h.Run(cmd); exit != 0 || !json.Valid(stdout) || time.Since(start) < 200*time.Millisecond {
			t.Errorf("slow answer: exit %d after %v", exit, time.Since(start))
		}
	})
	t.Run("unknown fault", func(t *testing.T) {
		h, _ := newTestHost(t, Options{Small: true})
		if err := h.SetFault("meteor"); err == nil {
			t.Error("unknown fault accepted")
		}
	})
}

type maxWrite struct {
	w   io.Writer
	max int
}

func (m *maxWrite) Write(p []byte) (int, error) {
	m.max = max(m.max, len(p))
	return m.w.Write(p)
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

type tailWriter struct{ last []byte }

func (w *tailWriter) Write(p []byte) (int, error) {
	w.last = append(w.last, p...)
	if len(w.last) > 16 {
		w.last = w.last[len(w.last)-16:]
	}
	return len(p), nil
}
