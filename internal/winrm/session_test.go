package winrm

import (
	"context"
	"encoding/base64"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/svcwatch/svcwatch/internal/config"
	"github.com/svcwatch/svcwatch/internal/inventory"
	"github.com/svcwatch/svcwatch/internal/lab/winhost"
	"github.com/svcwatch/svcwatch/internal/lab/wsman"
	"github.com/svcwatch/svcwatch/internal/testutil"
)

// keptModes are the session modes that keep a shell per host.
var keptModes = []string{SessionShell, SessionPersistent}

// sessionLab is lab hosts behind a WS-Management server and a Collector in
// mode (shell or persistent) for them.
func sessionLab(t *testing.T, mode, scheme string, hosts ...*winhost.Host) (*Collector, *wsman.Server, config.WinRM) {
	t.Helper()
	addr, ca, ws := labServerWS(t, scheme == "https", nil, hosts...)
	cfg := config.WinRM{Scheme: scheme, Auth: "ntlm", Username: `LAB\svcwatch`, CAFile: ca, TLSServerName: "example.com",
		ConnectTo: addr, Timeout: 10 * time.Second, Session: mode}
	c, err := New(cfg, "Lab-Passw0rd!", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, ws, cfg
}

// settledStats returns host's counters once they stop moving: the server
// counts a request after its answer is written, so the client can be a
// little ahead of them.
func settledStats(ws *wsman.Server, host string) wsman.Stats {
	prev := ws.Stats(host)
	for i := 0; i < 100; i++ {
		time.Sleep(20 * time.Millisecond)
		cur := ws.Stats(host)
		if cur == prev {
			return cur
		}
		prev = cur
	}
	return prev
}

// idlePoller polls one host as the poller does: the watermark and digest of
// the previous answer go into the next request.
type idlePoller struct {
	c    *Collector
	host inventory.Host
	req  inventory.CollectRequest
}

func (p *idlePoller) poll(t *testing.T) inventory.Observation {
	t.Helper()
	obs, err := p.c.Collect(context.Background(), p.host, p.req)
	if err != nil {
		t.Fatalf("poll: %v", err)
	}
	p.req.Watermark = max(p.req.Watermark, obs.Log.NewestRecord)
	p.req.Digest = obs.Digest
	return obs
}

func TestSessionRecycledAfterMaxPolls(t *testing.T) {
	forKeptModes(t, testSessionRecycledAfterMaxPolls)
}

func testSessionRecycledAfterMaxPolls(t *testing.T, mode string) {
	dc := winhost.New("dc01.lab.example", winhost.Options{Role: winhost.RoleDC, Small: true})
	c, ws, _ := sessionLab(t, mode, "https", dc)
	c.sessions.maxPolls = 3
	p := &idlePoller{c: c, host: inventory.Host{Name: dc.Name()}, req: inventory.CollectRequest{MaxEvents: 50, Lookback: time.Hour}}
	for i := 0; i < 7; i++ {
		p.poll(t)
		if i == 0 {
			// shell: Create, Command, Receive; persistent: Create,
			// Command, one Send (script and request), Receive.
			want := map[string]int64{SessionShell: 3, SessionPersistent: 4}[mode]
			if st := settledStats(ws, dc.Name()); st.Requests != want {
				t.Errorf("a new session's poll took %d requests, want %d", st.Requests, want)
			}
		}
		if n := ws.OpenShells(dc.Name()); n != 1 {
			t.Fatalf("after poll %d: %d shells open, want 1", i+1, n)
		}
	}
	// Polls 1-3, 4-6 and 7: three shells, each deleted before the next.
	if got := ws.Stats(dc.Name()).ShellsCreated; got != 3 {
		t.Errorf("%d shells created for 7 polls at 3 polls per shell, want 3", got)
	}
	closeLeavesNoShells(t, c, ws, dc.Name())
}

// forKeptModes runs test once per session mode that keeps a shell.
func forKeptModes(t *testing.T, test func(t *testing.T, mode string)) {
	for _, mode := range keptModes {
		t.Run(mode, func(t *testing.T) { test(t, mode) })
	}
}

// closeLeavesNoShells closes c and checks the lab holds no shell of hosts.
func closeLeavesNoShells(t *testing.T, c *Collector, ws *wsman.Server, hosts ...string) {
	t.Helper()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	for _, h := range hosts {
		if n := ws.OpenShells(h); n != 0 {
			t.Errorf("%s: %d shells open after Close, want 0", h, n)
		}
	}
}

// fakeSessionClock gives c's sessions a clock that moves only when the
// returned advance is called.
func fakeSessionClock(c *Collector) (advance func(time.Duration)) {
	var mu sync.Mutex
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	c.sessions.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	return func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
}

func TestSessionRecycledWhenIdle(t *testing.T) { forKeptModes(t, testSessionRecycledWhenIdle) }

func testSessionRecycledWhenIdle(t *testing.T, mode string) {
	dc := winhost.New("dc01.lab.example", winhost.Options{Role: winhost.RoleDC, Small: true})
	c, ws, _ := sessionLab(t, mode, "http", dc)
	advance := fakeSessionClock(c)
	p := &idlePoller{c: c, host: inventory.Host{Name: dc.Name()}, req: inventory.CollectRequest{MaxEvents: 50}}
	p.poll(t)
	advance(c.sessions.maxIdle - time.Second)
	p.poll(t)
	if got := ws.Stats(dc.Name()).ShellsCreated; got != 1 {
		t.Fatalf("%d shells after a poll within the idle limit, want 1", got)
	}
	advance(c.sessions.maxIdle + time.Second)
	p.poll(t)
	if got := ws.Stats(dc.Name()).ShellsCreated; got != 2 {
		t.Errorf("%d shells after a poll past the idle limit, want 2 (recycled)", got)
	}
	if n := ws.OpenShells(dc.Name()); n != 1 {
		t.Errorf("%d shells open, want 1 (the idle one deleted)", n)
	}
}

// TestSessionSweepsHostsNoLongerPolled: a host that is not polled any more
// (removed from AD) loses its kept shell once idle, when another host polls.
func TestSessionSweepsHostsNoLongerPolled(t *testing.T) {
	forKeptModes(t, testSessionSweepsHostsNoLongerPolled)
}

func testSessionSweepsHostsNoLongerPolled(t *testing.T, mode string) {
	gone := winhost.New("srv01.lab.example", winhost.Options{Small: true})
	kept := winhost.New("srv02.lab.example", winhost.Options{Small: true})
	c, ws, _ := sessionLab(t, mode, "https", gone, kept)
	advance := fakeSessionClock(c)
	req := inventory.CollectRequest{MaxEvents: 10}
	for _, h := range []*winhost.Host{gone, kept} {
		if _, err := c.Collect(context.Background(), inventory.Host{Name: h.Name()}, req); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 4; i++ { // only srv02 is polled from now on
		advance(c.sessions.maxIdle / 3)
		if _, err := c.Collect(context.Background(), inventory.Host{Name: kept.Name()}, req); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for ws.OpenShells(gone.Name()) != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := ws.OpenShells(gone.Name()); n != 0 {
		t.Errorf("%s: %d shells open after it went idle, want 0", gone.Name(), n)
	}
	if n := ws.OpenShells(kept.Name()); n != 1 {
		t.Errorf("%s: %d shells open, want 1", kept.Name(), n)
	}
	c.sessions.mu.Lock()
	_, known := c.sessions.byHost[gone.Name()]
	c.sessions.mu.Unlock()
	if known {
		t.Errorf("the idle host's session is still held")
	}
	closeLeavesNoShells(t, c, ws, kept.Name())
}

// TestSessionScenariosBetweenPolls: the kept collector answers from the
// host's state at each poll, not from its state when the session started.
func TestSessionScenariosBetweenPolls(t *testing.T) {
	forKeptModes(t, testSessionScenariosBetweenPolls)
}

func testSessionScenariosBetweenPolls(t *testing.T, mode string) {
	dc := winhost.New("dc01.lab.example", winhost.Options{Role: winhost.RoleDC, Small: true})
	c, ws, _ := sessionLab(t, mode, "https", dc)
	p := &idlePoller{c: c, host: inventory.Host{Name: dc.Name()}, req: inventory.CollectRequest{MaxEvents: 50, Lookback: time.Hour}}
	first := p.poll(t)
	if first.Services == nil {
		t.Fatal("first poll without an inventory")
	}
	if idle := p.poll(t); idle.Services != nil || len(idle.Events) != 0 {
		t.Fatalf("idle poll: %d services, %d events", len(idle.Services), len(idle.Events))
	}
	if err := dc.Apply("psexec"); err != nil {
		t.Fatal(err)
	}
	after := p.poll(t)
	if after.Services == nil || after.Digest == first.Digest {
		t.Errorf("after psexec: digest unchanged or no inventory")
	}
	found := false
	for _, ev := range after.Events {
		if in, ok := ev.Install(); ok && strings.Contains(strings.ToUpper(in.ServiceName), "PSEXE") {
			found = true
		}
	}
	if !found {
		t.Errorf("no 7045 for PSEXESVC: %+v", after.Events)
	}
	if got := ws.Stats(dc.Name()).ShellsCreated; got != 1 {
		t.Errorf("%d shells for 3 polls, want 1", got)
	}
}

func TestSessionRecoversFromDeadShell(t *testing.T) {
	forKeptModes(t, testSessionRecoversFromDeadShell)
}

func testSessionRecoversFromDeadShell(t *testing.T, mode string) {
	dc := winhost.New("dc01.lab.example", winhost.Options{Role: winhost.RoleDC, Small: true})
	c, ws, _ := sessionLab(t, mode, "https", dc)
	p := &idlePoller{c: c, host: inventory.Host{Name: dc.Name()}, req: inventory.CollectRequest{MaxEvents: 50}}
	p.poll(t)

	t.Run("shell dropped by the host", func(t *testing.T) {
		// WinRM restarted or reclaimed the shell: the client still holds its id.
		s, _ := c.sessions.get(dc.Name())
		if err := c.tr.deleteShell(context.Background(), dc.Name(), c.params, s.shellID); err != nil {
			t.Fatal(err)
		}
		before := ws.Stats(dc.Name()).ShellsCreated
		p.poll(t) // the same poll starts over once
		if got := ws.Stats(dc.Name()).ShellsCreated - before; got != 1 {
			t.Errorf("%d new shells, want 1", got)
		}
	})

	t.Run("host down then up", func(t *testing.T) {
		dc.SetDown(true)
		defer dc.SetDown(false)
		// The connection is reset (during the NTLM handshake, reported as
		// a protocol error by ntlmtransport).
		_, err := c.Collect(context.Background(), p.host, p.req)
		if err == nil || !strings.HasPrefix(err.Error(), dc.Name()+": ") {
			t.Fatalf("host down: got %v, want an error for the host", err)
		}
		if s, _ := c.sessions.get(dc.Name()); s.shellID != "" {
			t.Errorf("a failed poll kept its session")
		}
		dc.SetDown(false)
		p.poll(t)
	})

	t.Run("collector process ended", func(t *testing.T) {
		if mode != SessionPersistent {
			t.Skip("shell: each poll's collector is its own command")
		}
		// Terminate the collector behind the client's back: the poll fails
		// cleanly, the next one starts a new session.
		s, _ := c.sessions.get(dc.Name())
		c.tr.terminate(context.Background(), dc.Name(), c.params, s.shellID, s.commandID)
		_, err := c.Collect(context.Background(), p.host, p.req)
		if err == nil {
			t.Fatal("poll of an ended collector succeeded")
		}
		if !errors.Is(err, ErrScript) && !errors.Is(err, ErrShellNotFound) && !errors.Is(err, ErrProtocol) {
			t.Errorf("got %v, want ErrScript, ErrShellNotFound or ErrProtocol", err)
		}
		p.poll(t)
	})
	closeLeavesNoShells(t, c, ws, dc.Name())
}

func TestSessionCloseDeletesEveryShell(t *testing.T) {
	forKeptModes(t, testSessionCloseDeletesEveryShell)
}

func testSessionCloseDeletesEveryShell(t *testing.T, mode string) {
	var hosts []*winhost.Host
	for _, n := range []string{"dc01", "dc02", "srv01", "srv02"} {
		hosts = append(hosts, winhost.New(n+".lab.example", winhost.Options{Small: true}))
	}
	c, ws, _ := sessionLab(t, mode, "http", hosts...)
	var wg sync.WaitGroup
	for _, h := range hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.Collect(context.Background(), inventory.Host{Name: h.Name()}, inventory.CollectRequest{MaxEvents: 10}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	for _, h := range hosts {
		if n := ws.OpenShells(h.Name()); n != 1 {
			t.Errorf("%s: %d shells open between polls, want 1", h.Name(), n)
		}
	}
	var names []string
	for _, h := range hosts {
		names = append(names, h.Name())
	}
	closeLeavesNoShells(t, c, ws, names...)
	if _, err := c.Collect(context.Background(), inventory.Host{Name: hosts[0].Name()}, inventory.CollectRequest{MaxEvents: 10}); err == nil {
		t.Error("Collect after Close succeeded")
	}
	if n := ws.OpenShells(hosts[0].Name()); n != 0 {
		t.Errorf("Collect after Close opened a shell")
	}
}

// TestSessionOnePollAtATime: concurrent polls of one host share its session
// one after the other and all get answers.
func TestSessionOnePollAtATime(t *testing.T) { forKeptModes(t, testSessionOnePollAtATime) }

func testSessionOnePollAtATime(t *testing.T, mode string) {
	dc := winhost.New("dc01.lab.example", winhost.Options{Role: winhost.RoleDC, Small: true})
	c, ws, _ := sessionLab(t, mode, "https", dc)
	var wg sync.WaitGroup
	for i := 0; i < 6; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.Collect(context.Background(), inventory.Host{Name: dc.Name()}, inventory.CollectRequest{MaxEvents: 10}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if got := ws.Stats(dc.Name()).ShellsCreated; got != 1 {
		t.Errorf("%d shells for 6 concurrent polls of one host, want 1", got)
	}
}

// TestWireIdlePoll measures an idle poll (nothing changed on the host) in
// both modes over https+ntlm and http+ntlm (sealed), with the lab's wire
// counters. It logs the figures (issue 8: idle poll ≤ 2 KB, ≤ 5 requests).
func TestWireIdlePoll(t *testing.T) {
	const polls = 5
	for _, scheme := range []string{"https", "http"} {
		bytesPerPoll := map[string]float64{}
		for _, mode := range sessionModes {
			dc := winhost.New("dc01.lab.example", winhost.Options{Role: winhost.RoleDC, Small: true})
			addr, ca, ws := labServerWS(t, scheme == "https", nil, dc)
			cfg := config.WinRM{Scheme: scheme, Auth: "ntlm", Username: `LAB\svcwatch`, CAFile: ca, TLSServerName: "example.com",
				ConnectTo: addr, Timeout: 10 * time.Second, Session: mode}
			c, err := New(cfg, "Lab-Passw0rd!", nil)
			if err != nil {
				t.Fatal(err)
			}
			p := &idlePoller{c: c, host: inventory.Host{Name: dc.Name()}, req: inventory.CollectRequest{MaxEvents: 50, Lookback: time.Hour}}
			p.poll(t) // baseline: inventory, NTLM handshake, session start
			settledStats(ws, dc.Name())
			ws.ResetStats()
			for i := 0; i < polls; i++ {
				if obs := p.poll(t); obs.Services != nil {
					t.Fatalf("%s/%s: poll %d was not idle", scheme, mode, i)
				}
			}
			st := settledStats(ws, dc.Name())
			c.Close()
			perPoll := float64(st.WireIn+st.WireOut) / polls
			reqs := float64(st.HTTPRequests) / polls
			bytesPerPoll[mode] = perPoll
			t.Logf("%s+ntlm %-10s idle poll: %.0f bytes on the wire (in %.0f, out %.0f), %.1f HTTP requests, %.1f WS-Management requests",
				scheme, mode, perPoll, float64(st.WireIn)/polls, float64(st.WireOut)/polls, reqs, float64(st.Requests)/polls)
			if mode != SessionPerPoll && reqs > 2 {
				t.Errorf("%s %s: %.1f HTTP requests per idle poll, want ≤ 2 (Command or Send, Receive)", scheme, mode, reqs)
			}
		}
		if bytesPerPoll[SessionPersistent] >= bytesPerPoll[SessionPerPoll] {
			t.Errorf("%s: persistent idle poll %.0f bytes, not less than per-poll %.0f", scheme, bytesPerPoll[SessionPersistent], bytesPerPoll[SessionPerPoll])
		}
	}
}

func TestSessionScript(t *testing.T) {
	if sessionBootstrap != winhost.SessionBootstrap {
		t.Fatalf("the client's bootstrap differs from the lab's:\n%s\n%s", sessionBootstrap, winhost.SessionBootstrap)
	}
	if !strings.HasPrefix(sessionBody, collectorV2Line+"\nfunction C($W,$D,$N,$B){\n") || collectorV2Line != winhost.CollectorMarkerV2 {
		t.Fatalf("v2 body starts %q", sessionBody[:min(80, len(sessionBody))])
	}
	if strings.Count(sessionBody, "svcwatch-collector v1") != 0 {
		t.Error("the v1 version line is inside the v2 body")
	}
	line := sessionScriptLine()
	if len(line) > maxCommandLine*2 || line[len(line)-1] != '\n' {
		t.Errorf("script line: %d bytes", len(line))
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSuffix(string(line), "\n"))
	if err != nil || string(raw) != sessionBody {
		t.Fatalf("script line does not decode to the body: %v", err)
	}
	if len(sessionCommand) > 512 || strings.ContainsAny(sessionBootstrap, `"%^&|<>!`) {
		t.Errorf("bootstrap command %q: too long or has characters cmd.exe would interpret", sessionCommand)
	}
	tests := []struct {
		req  collectRequest
		want string
		ok   bool
	}{
		{collectRequest{Watermark: 41, MaxEvents: 100, Lookback: time.Hour}, "41 0 100 3600\n", true},
		{collectRequest{Watermark: 1<<63 - 1, Digest: strings.Repeat("ab", 32), MaxEvents: 10000, Lookback: maxLookback}, "9223372036854775807 " + strings.Repeat("ab", 32) + " 10000 31536000\n", true},
		{collectRequest{Watermark: 1 << 63, MaxEvents: 1}, "", false},
		{collectRequest{Digest: "'; Remove-Item C:\\ ; '", MaxEvents: 1}, "", false},
		{collectRequest{MaxEvents: 0}, "", false},
	}
	for _, tt := range tests {
		got, err := requestLine(tt.req)
		if (err == nil) != tt.ok || string(got) != tt.want {
			t.Errorf("requestLine(%+v) = %q, %v; want %q ok=%v", tt.req, got, err, tt.want, tt.ok)
			continue
		}
		if tt.ok {
			// The lab reads it exactly as the script's regex does.
			if _, err := winhost.ParseRequestLine(strings.TrimSuffix(tt.want, "\n")); err != nil {
				t.Errorf("lab refuses %q: %v", tt.want, err)
			}
		}
	}
}

// TestSessionScriptSyntax parses the v2 script as sent (minified, with the
// v1 collection inside C) with the PowerShell grammar of tools/pscheck.
func TestSessionScriptSyntax(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not installed (make pscheck checks the .ps1 files)")
	}
	dir, err := filepath.Abs("../../tools/pscheck")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "web-tree-sitter")); err != nil {
		t.Skip("tools/pscheck has no node_modules (run make pscheck once)")
	}
	tmp := t.TempDir()
	body := filepath.Join(tmp, "session-body.ps1")
	boot := filepath.Join(tmp, "bootstrap.ps1")
	if err := os.WriteFile(body, []byte(sessionBody), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(boot, []byte(sessionBootstrap+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "pscheck.js", body, boot)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("pscheck: %v\n%s", err, out)
	}
}

// TestKeepAliveBetweenPolls: winrm.keep_alive decides whether the next poll
// reuses the authenticated connection (2 HTTP requests in shell mode) or
// logs on again (NTLM legs on top).
func TestKeepAliveBetweenPolls(t *testing.T) {
	for _, tt := range []struct {
		keepAlive time.Duration
		reused    bool
	}{
		{time.Hour, true},
		{100 * time.Millisecond, false},
	} {
		t.Run(tt.keepAlive.String(), func(t *testing.T) {
			dc := winhost.New("dc01.lab.example", winhost.Options{Role: winhost.RoleDC, Small: true})
			addr, ca, ws := labServerWS(t, true, nil, dc)
			c, err := New(config.WinRM{Scheme: "https", Auth: "ntlm", Username: `LAB\svcwatch`, CAFile: ca, TLSServerName: "example.com",
				ConnectTo: addr, Timeout: 10 * time.Second, Session: SessionShell, KeepAlive: tt.keepAlive}, "Lab-Passw0rd!", nil)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			p := &idlePoller{c: c, host: inventory.Host{Name: dc.Name()}, req: inventory.CollectRequest{MaxEvents: 50}}
			p.poll(t)
			settledStats(ws, dc.Name())
			time.Sleep(300 * time.Millisecond)
			ws.ResetStats()
			p.poll(t)
			st := settledStats(ws, dc.Name())
			if reused := st.HTTPRequests == 2; reused != tt.reused {
				t.Errorf("keep_alive %s: %d HTTP requests for an idle poll 300ms later; want the connection reused: %v",
					tt.keepAlive, st.HTTPRequests, tt.reused)
			}
		})
	}
}

// TestForgetDeletesTheKeptShell: a host the poller no longer polls loses its
// kept shell at once, also when Forget comes during one of its polls.
func TestForgetDeletesTheKeptShell(t *testing.T) {
	for _, mode := range keptModes {
		t.Run(mode, func(t *testing.T) {
			gone := winhost.New("srv01.lab.example", winhost.Options{Small: true})
			kept := winhost.New("srv02.lab.example", winhost.Options{Small: true})
			busy := winhost.New("srv03.lab.example", winhost.Options{Small: true, SlowDelay: 300 * time.Millisecond})
			c, ws, _ := sessionLab(t, mode, "https", gone, kept, busy)
			req := inventory.CollectRequest{MaxEvents: 10}
			for _, h := range []*winhost.Host{gone, kept, busy} {
				if _, err := c.Collect(context.Background(), inventory.Host{Name: h.Name()}, req); err != nil {
					t.Fatal(err)
				}
			}
			waitShells := func(h *winhost.Host, want int) {
				t.Helper()
				deadline := time.Now().Add(5 * time.Second)
				for ws.OpenShells(h.Name()) != want && time.Now().Before(deadline) {
					time.Sleep(10 * time.Millisecond)
				}
				if n := ws.OpenShells(h.Name()); n != want {
					t.Errorf("%s: %d shells open, want %d", h.Name(), n, want)
				}
			}
			c.Forget(strings.ToUpper(gone.Name()) + ".") // any spelling of the name
			waitShells(gone, 0)
			waitShells(kept, 1)

			// Forget while the host's poll runs: that poll deletes the shell.
			if err := busy.SetFault(winhost.FaultSlow); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() {
				_, err := c.Collect(context.Background(), inventory.Host{Name: busy.Name()}, req)
				done <- err
			}()
			time.Sleep(100 * time.Millisecond)
			c.Forget(busy.Name())
			if err := <-done; err != nil {
				t.Fatalf("the poll running when Forget came: %v", err)
			}
			waitShells(busy, 0)
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
			waitShells(kept, 0)
		})
	}
}

// TestForgetUnreachableHost: the kept shell of a host that is forgotten
// while switched off is tried once, logged, and left to the host's idle
// timeout; it does not hold up Close.
func TestForgetUnreachableHost(t *testing.T) {
	for _, mode := range keptModes {
		t.Run(mode, func(t *testing.T) {
			off := winhost.New("srv01.lab.example", winhost.Options{Small: true})
			addr, ca, ws := labServerWS(t, true, nil, off)
			var logs testutil.Buffer
			c, err := New(config.WinRM{Scheme: "https", Auth: "ntlm", Username: `LAB\svcwatch`, CAFile: ca, TLSServerName: "example.com",
				ConnectTo: addr, Timeout: 10 * time.Second, Session: mode, KeepAlive: 50 * time.Millisecond}, "Lab-Passw0rd!", newTestLogger(&logs))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Collect(context.Background(), inventory.Host{Name: off.Name()}, inventory.CollectRequest{MaxEvents: 10}); err != nil {
				t.Fatal(err)
			}
			time.Sleep(200 * time.Millisecond) // the connection idles out: the delete must dial
			off.SetDown(true)
			c.Forget(off.Name())
			deadline := time.Now().Add(5 * time.Second)
			for !strings.Contains(logs.String(), "no longer polled") && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if !strings.Contains(logs.String(), "no longer polled") {
				t.Errorf("no warning about the shell left behind; logs:\n%s", logs.String())
			}
			start := time.Now()
			if err := c.Close(); err != nil {
				t.Errorf("Close: %v (the forgotten host is not Close's to report)", err)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("Close took %s", d)
			}
			if n := ws.OpenShells(off.Name()); n != 1 {
				t.Errorf("%d shells open on the switched-off host, want 1 (left to its idle timeout)", n)
			}
		})
	}
}
