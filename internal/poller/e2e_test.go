package poller_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/svcwatch/svcwatch/internal/lab"
	"github.com/svcwatch/svcwatch/internal/lab/slacksink"
	"github.com/svcwatch/svcwatch/internal/poller"
)

// startLab runs a small lab and the real pipeline built from its config.
func startLab(t *testing.T, opts lab.Options) (*lab.Lab, *poller.Service) {
	t.Helper()
	ctx := t.Context()
	opts.Small = true
	l, err := lab.Start(ctx, opts)
	if err != nil {
		t.Fatalf("lab: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	svc, err := poller.Open(ctx, l.Config(), poller.BuildOptions{})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { svc.Close() })
	return l, svc
}

// cycle runs one discovery + poll of every host + delivery and returns the
// Slack messages that arrived during it.
func cycle(t *testing.T, l *lab.Lab, svc *poller.Service) []slacksink.Message {
	t.Helper()
	before := len(l.Slack().Messages())
	rep, err := svc.Poller.Once(t.Context())
	if err != nil {
		t.Fatalf("once: %v", err)
	}
	if len(rep.Failed) > 0 || rep.Deliver != nil {
		t.Fatalf("once: failed %v, deliver %v", rep.Failed, rep.Deliver)
	}
	return l.Slack().Messages()[before:]
}

func applyScenario(t *testing.T, l *lab.Lab, host, scenario string) {
	t.Helper()
	h, ok := l.Lookup(host)
	if !ok {
		t.Fatalf("no lab host %s", host)
	}
	if err := h.Apply(scenario); err != nil {
		t.Fatalf("apply %s on %s: %v", scenario, host, err)
	}
}

func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: starts the lab")
	}
	for _, scheme := range []string{"https", "http"} {
		t.Run(scheme, func(t *testing.T) {
			l, svc := startLab(t, lab.Options{Scheme: scheme})

			if got := cycle(t, l, svc); len(got) != 0 {
				t.Fatalf("baseline produced %d Slack messages, want none: %s", len(got), got[0].Readable())
			}
			if got := cycle(t, l, svc); len(got) != 0 {
				t.Fatalf("idle cycle produced %d messages", len(got))
			}

			steps := []struct {
				host, scenario string
				want           []string // every one in the single message
			}{
				{"dc01", "psexec", []string{"dc01.lab.example", "PSEXESVC"}},
				{"dc02", "binpath-hijack", []string{"dc02.lab.example", "Service changed", "image path"}},
			}
			for _, s := range steps {
				applyScenario(t, l, s.host, s.scenario)
				got := cycle(t, l, svc)
				if len(got) != 1 {
					var texts []string
					for _, m := range got {
						texts = append(texts, m.Readable())
					}
					t.Fatalf("%s on %s: %d Slack messages, want exactly 1:\n%s", s.scenario, s.host, len(got), strings.Join(texts, "\n---\n"))
				}
				text := got[0].Readable()
				for _, w := range s.want {
					if !strings.Contains(text, w) {
						t.Errorf("%s: message does not mention %q:\n%s", s.scenario, w, text)
					}
				}
				if again := cycle(t, l, svc); len(again) != 0 {
					t.Fatalf("%s: a second poll with no change sent %d more messages", s.scenario, len(again))
				}
			}
		})
	}
}

func TestEndToEndRunDaemon(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: starts the lab")
	}
	l, svc := startLab(t, lab.Options{PollInterval: time.Second})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- svc.Poller.Run(ctx) }()

	deadline := time.Now().Add(30 * time.Second)
	for {
		all := true
		for _, name := range l.HostNames() {
			st, err := svc.Store.State(ctx, name)
			if err != nil || !st.Baselined {
				all = false
			}
		}
		if all {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("hosts not baselined within 30s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	applyScenario(t, l, "dc03", "psexec")
	wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
	defer wcancel()
	msgs, err := l.Slack().Wait(wctx, 1)
	if err != nil {
		t.Fatalf("no alert from the daemon: %v", err)
	}
	if !strings.Contains(msgs[0].Readable(), "PSEXESVC") {
		t.Fatalf("alert does not name PSEXESVC:\n%s", msgs[0].Readable())
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not stop within 20s of cancel")
	}
}
