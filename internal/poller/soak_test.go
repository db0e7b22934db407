package poller_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/svcwatch/svcwatch/internal/inventory"
	"github.com/svcwatch/svcwatch/internal/lab"
	"github.com/svcwatch/svcwatch/internal/lab/slacksink"
	"github.com/svcwatch/svcwatch/internal/poller"
	"github.com/svcwatch/svcwatch/internal/testutil"
)

// The soak test drives the real daemon (Poller.Run with gocron) against a
// 50-host lab on short real intervals rather than a fake clock: the lab's
// hosts, the WinRM and LDAP deadlines and the Slack client all run on real
// time, so a fake clock would only move the scheduler. Intervals of one
// second keep the whole run near 30 s even under -race on two CPUs.
const (
	soakHosts     = 50
	soakInterval  = time.Second
	soakDiscovery = time.Second
)

// soakAlert is one message the soak expects: a finding kind (as the message
// header words it), the host, and text the message must contain.
type soakAlert struct {
	kind, host string
	mentions   []string
}

func (a soakAlert) key() string { return a.kind + " @ " + a.host }

// Message headers word each finding kind; see notify's kind table.
var kindTitles = map[string]string{
	"Service installed":                   "installed",
	"Service installed and already gone":  "ephemeral",
	"Service appeared without event 7045": "silent",
	"Service changed":                     "modified",
	"Service removed":                     "removed",
	"System log tampering":                "tamper",
	"Host unreachable":                    "unreachable",
	"Host reachable again":                "recovered",
	"Monitored hosts changed":             "scope",
}

var hostLine = regexp.MustCompile(`(?m)^\s*Host: (\S+)$`)

// classify returns the finding kind and host a message is about.
func classify(m slacksink.Message) (kind, host string) {
	for _, t := range m.TextObjects() {
		if t.Block != "header" {
			continue
		}
		_, rest, _ := strings.Cut(t.Text, " · ")
		title, _, _ := strings.Cut(rest, ": ")
		kind = kindTitles[title]
		if kind == "" {
			kind = "unknown(" + title + ")"
		}
		break
	}
	if mm := hostLine.FindStringSubmatch(m.Readable()); mm != nil {
		host = strings.TrimSuffix(mm[1], "."+lab.DefaultDomain)
	}
	return kind, host
}

// openSockets counts this process's socket descriptors (Linux).
func openSockets(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("counting sockets needs /proc: %v", err)
	}
	n := 0
	for _, e := range ents {
		if target, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && strings.HasPrefix(target, "socket:") {
			n++
		}
	}
	return n
}

// settled waits until f() stays at or under want, or the time runs out,
// and returns the last value seen.
func settled(f func() int, want int, within time.Duration) int {
	deadline := time.Now().Add(within)
	for {
		n := f()
		if n <= want || time.Now().After(deadline) {
			return n
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// steadyGoroutines waits for the goroutine count to stop moving (earlier
// tests' servers winding down) and returns it.
func steadyGoroutines() int {
	last := runtime.NumGoroutine()
	for range 30 {
		time.Sleep(100 * time.Millisecond)
		n := runtime.NumGoroutine()
		if n == last {
			return n
		}
		last = n
	}
	return last
}

// TestSoak counts the whole process's goroutines and sockets: it must not
// run in parallel with other tests (no t.Parallel here or beside it).
func TestSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("soak: 50 simulated hosts for about half a minute")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Second)
	defer cancel()

	l, err := lab.Start(ctx, lab.Options{
		Hosts: soakHosts, Small: true,
		PollInterval: soakInterval, DiscoveryInterval: soakDiscovery,
	})
	if err != nil {
		t.Fatalf("lab: %v", err)
	}
	defer l.Close()

	// Start values: the lab listens, nothing of the poller exists yet.
	startGoroutines := steadyGoroutines()
	startSockets := openSockets(t)

	logs := &testutil.Buffer{}
	cfg := l.Config()
	svc, err := poller.Open(ctx, cfg, poller.BuildOptions{
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo})),
		Tune: func(o *poller.Options) {
			o.UnreachableAfter = 2
			o.MaxBackoff = 2 * soakInterval
			o.DeliveryInterval = 250 * time.Millisecond
		},
	})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	closed := false
	closeSvc := func() {
		if !closed {
			closed = true
			if err := svc.Close(); err != nil {
				t.Errorf("close: %v", err)
			}
		}
	}
	defer closeSvc()
	defer func() {
		if t.Failed() {
			t.Logf("last poller log lines:\n%s", logs.Tail(60))
		}
	}()

	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	runDone := make(chan error, 1)
	go func() { runDone <- svc.Poller.Run(runCtx) }()

	baselined := func(hosts ...string) bool {
		for _, h := range hosts {
			st, err := svc.Store.State(ctx, h+"."+lab.DefaultDomain)
			if err != nil || !st.Baselined {
				return false
			}
		}
		return true
	}
	waitFor := func(what string, within time.Duration, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(within)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("soak: %s did not happen within %s", what, within)
			}
			select {
			case <-ctx.Done():
				t.Fatalf("soak: %s: %v", what, ctx.Err())
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	shortNames := func() []string {
		var out []string
		for _, n := range l.HostNames() {
			out = append(out, strings.TrimSuffix(n, "."+lab.DefaultDomain))
		}
		return out
	}
	have := func(kind, host string) bool {
		for _, m := range l.Slack().Messages() {
			if k, h := classify(m); k == kind && h == host {
				return true
			}
		}
		return false
	}
	apply := func(host, scenario string) {
		t.Helper()
		if err := l.Host(host).Apply(scenario); err != nil {
			t.Fatalf("apply %s on %s: %v", scenario, host, err)
		}
	}

	start := time.Now()
	waitFor("the baseline of every host", 30*time.Second, func() bool { return baselined(shortNames()...) })
	t.Logf("baseline of %d hosts after %s", soakHosts, time.Since(start).Round(time.Millisecond))
	if got := l.Slack().Messages(); len(got) != 0 {
		t.Fatalf("the baseline sent %d messages, want none; first:\n%s", len(got), got[0].Readable())
	}

	var want []soakAlert
	attack := func(host, scenario, kind, mention string) {
		t.Helper()
		apply(host, scenario)
		want = append(want, soakAlert{kind, host, []string{mention}})
	}
	pause := func() { time.Sleep(soakInterval * 7 / 10) }

	// Wave 1 of attacks, spread over a few poll intervals.
	attack("dc01", "psexec", "installed", "PSEXESVC")
	pause()
	attack("srv02", "smbexec", "ephemeral", `\\127.0.0.1\C$`)
	pause()
	attack("srv03", "cobaltstrike", "ephemeral", `\\127.0.0.1\ADMIN$`)
	pause()
	attack("dc03", "meterpreter-getsystem", "ephemeral", `\\.\pipe\`)

	// The directory changes: a DC is promoted, a server joins Tier0, two leave.
	for _, c := range []lab.Computer{{Name: "dc04", Role: lab.RoleDC}, {Name: "srv48", Role: lab.RoleMember}} {
		if _, err := l.AddComputer(c); err != nil {
			t.Fatalf("add %s: %v", c.Name, err)
		}
		want = append(want, soakAlert{"scope", c.Name, []string{"entered the monitored set"}})
	}
	for _, name := range []string{"srv40", "srv41"} {
		if err := l.RemoveComputer(name); err != nil {
			t.Fatalf("remove %s: %v", name, err)
		}
		want = append(want, soakAlert{"scope", name, []string{"left the monitored set"}})
	}

	// Two outages; one host is attacked while it is dark.
	outages := []string{"dc02", "srv10"}
	for _, h := range outages {
		l.Host(h).SetDown(true)
		want = append(want,
			// The unreachable alert says how many polls failed and the last error in words.
			soakAlert{"unreachable", h, []string{"Host unreachable", "2 polls in a row failed", "last error: "}},
			soakAlert{"recovered", h, []string{"Host reachable again", "answering again"}})
	}
	attack("srv10", "mimidrv", "installed", "mimidrv")

	// Wave 2 while the outages last.
	pause()
	attack("srv05", "binpath-hijack", "modified", `C:\Users\Public\Libraries\svchost.exe`)
	pause()
	attack("srv07", "silent-registry", "silent", "WinSvcUpdHelper")
	pause()
	attack("srv08", "log-clear", "tamper", "cleared")
	pause()
	attack("srv09", "cobaltstrike", "ephemeral", `\\127.0.0.1\ADMIN$`)

	for _, h := range outages {
		waitFor("the unreachable alert for "+h, 20*time.Second, func() bool { return have("unreachable", h) })
	}
	// Let the hosts stay dark for a few more polls: still one alert each.
	time.Sleep(3 * soakInterval)
	for _, h := range outages {
		l.Host(h).SetDown(false)
	}
	for _, h := range outages {
		waitFor("the recovered alert for "+h, 20*time.Second, func() bool { return have("recovered", h) })
	}

	// The new DC gets its baseline silently, then is attacked too.
	waitFor("the baseline of the added hosts", 20*time.Second, func() bool { return baselined("dc04", "srv48") })
	attack("dc04", "psexec", "installed", "PSEXESVC")
	pause()
	// dc01, attacked before, is attacked again with another tool.
	attack("dc01", "smbexec", "ephemeral", `\\127.0.0.1\C$`)

	waitFor(fmt.Sprintf("%d messages", len(want)), 30*time.Second, func() bool { return len(l.Slack().Messages()) >= len(want) })
	// Quiet time: several more polls of every host must send nothing more.
	time.Sleep(4 * soakInterval)

	stop()
	select {
	case err := <-runDone:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not stop within 30s of cancel")
	}
	t.Logf("soak ran %s", time.Since(start).Round(time.Millisecond))

	// Every expected alert exactly once, and nothing else.
	msgs := l.Slack().Messages()
	got := map[string][]slacksink.Message{}
	for _, m := range msgs {
		k, h := classify(m)
		got[k+" @ "+h] = append(got[k+" @ "+h], m)
	}
	wantKeys := map[string]soakAlert{}
	for _, a := range want {
		if _, dup := wantKeys[a.key()]; dup {
			// Two attacks of one kind on one host: count them together.
			continue
		}
		wantKeys[a.key()] = a
	}
	wantCount := map[string]int{}
	for _, a := range want {
		wantCount[a.key()]++
	}
	for key, n := range wantCount {
		ms := got[key]
		if len(ms) != n {
			t.Errorf("%s: %d messages, want %d", key, len(ms), n)
			for _, m := range ms {
				t.Logf("%s", m.Readable())
			}
			continue
		}
		for _, m := range ms {
			text := m.Readable()
			for _, mention := range wantKeys[key].mentions {
				if !strings.Contains(text, mention) {
					t.Errorf("%s: message does not mention %q:\n%s", key, mention, text)
				}
			}
		}
	}
	var extra []string
	for key, ms := range got {
		if wantCount[key] == 0 {
			for _, m := range ms {
				extra = append(extra, m.Readable())
			}
		}
	}
	sort.Strings(extra)
	if len(extra) > 0 {
		t.Errorf("%d unexpected messages:\n%s", len(extra), strings.Join(extra, "\n"))
	}
	if len(msgs) != len(want) {
		t.Errorf("%d messages in all, want %d", len(msgs), len(want))
	}
	// The outbox is empty: everything found was delivered.
	if n, err := svc.Store.OutboxDepth(context.WithoutCancel(ctx)); err != nil || n != 0 {
		t.Errorf("outbox depth after the run = %d, %v; want 0", n, err)
	}
	// The removed hosts are no longer polled (no jobs left behind).
	if hosts := svc.Poller.Hosts(); slices.ContainsFunc(hosts, func(h inventory.Host) bool {
		return strings.HasPrefix(h.Name, "srv40.") || strings.HasPrefix(h.Name, "srv41.")
	}) {
		t.Errorf("removed hosts still monitored: %v", hosts)
	}

	// The removed hosts' kept shells were deleted when they left the
	// monitored set (in the background, so allow a moment).
	for _, name := range l.HostNames() {
		if !strings.HasPrefix(name, "srv40.") && !strings.HasPrefix(name, "srv41.") {
			continue
		}
		deadline := time.Now().Add(5 * time.Second)
		for l.WSMan().OpenShells(name) != 0 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if n := l.WSMan().OpenShells(name); n != 0 {
			t.Errorf("%s left the monitored set but keeps %d WinRM shells open", name, n)
		}
	}
	// Closing svcwatch deletes every other kept shell.
	closeSvc()
	for _, name := range l.HostNames() {
		if n := l.WSMan().OpenShells(name); n != 0 {
			t.Errorf("%s: %d WinRM shells left open after Close", name, n)
		}
	}

	// Resources back to their start values once the service is closed.
	closeSvc()
	if n := settled(runtime.NumGoroutine, startGoroutines, 15*time.Second); n > startGoroutines {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		t.Errorf("goroutines: %d at the end, %d at the start\n%s", n, startGoroutines, buf)
	}
	if n := settled(func() int { return openSockets(t) }, startSockets, 15*time.Second); n > startSockets {
		t.Errorf("open sockets: %d at the end, %d at the start", n, startSockets)
	}
}
