package poller_test

import (
	"strings"
	"testing"

	"github.com/svcwatch/svcwatch/internal/config"
	"github.com/svcwatch/svcwatch/internal/inventory"
	"github.com/svcwatch/svcwatch/internal/lab"
	"github.com/svcwatch/svcwatch/internal/lab/winhost"
	"github.com/svcwatch/svcwatch/internal/poller"
)

// TestScenarios drives every attack and change the lab can script through
// the whole pipeline and checks the finding kind, its severity, and what
// reaches Slack.
func TestScenarios(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a lab per scenario")
	}
	allowBenign := func(c *config.Config) {
		c.Allow = append(c.Allow, config.Allow{
			Name: winhost.BenignServiceName, Path: `C:\Program Files\Zabbix Agent 2\*`,
			Reason: "monitoring agent rolled out by the infra team", Owner: "infra@lab.example", Expires: "2099-01-01",
		})
	}
	tests := []struct {
		host, scenario string
		configure      func(*config.Config)
		kind           inventory.Kind
		minSeverity    inventory.Severity
		messages       int    // Slack messages the cycle sends
		mention        string // text the message must contain
		suppressed     bool
	}{
		{"dc01", "psexec", nil, inventory.KindInstalled, inventory.SeverityHigh, 1, "PSEXESVC", false},
		{"dc01", "smbexec", nil, inventory.KindEphemeral, inventory.SeverityHigh, 1, "__output", false},
		{"srv01", "cobaltstrike", nil, inventory.KindEphemeral, inventory.SeverityHigh, 1, "ADMIN$", false},
		{"dc02", "meterpreter-getsystem", nil, inventory.KindEphemeral, inventory.SeverityHigh, 1, `\\.\pipe\`, false},
		{"srv02", "mimidrv", nil, inventory.KindInstalled, inventory.SeverityHigh, 1, "mimidrv", false},
		{"dc02", "binpath-hijack", nil, inventory.KindModified, inventory.SeverityHigh, 1, winhost.HijackedImagePath, false},
		{"dc03", "silent-registry", nil, inventory.KindSilent, inventory.SeverityMedium, 1, winhost.SilentServiceName, false},
		{"dc01", "log-clear", nil, inventory.KindTamper, inventory.SeverityHigh, 1, "clear", false},
		{"srv01", "benign-install", nil, inventory.KindInstalled, inventory.SeverityInfo, 1, winhost.BenignServiceName, false},
		{"srv01", "benign-install", allowBenign, inventory.KindInstalled, inventory.SeverityInfo, 0, "", true},
		// An ordinary removal is stored but below the default slack.min_severity (low).
		{"srv02", "remove", nil, inventory.KindRemoved, inventory.SeverityInfo, 0, "", false},
	}
	for _, tt := range tests {
		name := tt.scenario + "/" + tt.host
		if tt.configure != nil {
			name += "/allowlisted"
		}
		t.Run(name, func(t *testing.T) {
			l, svc := startLabWith(t, lab.Options{}, tt.configure)
			if got := cycle(t, l, svc); len(got) != 0 {
				t.Fatalf("baseline sent %d messages", len(got))
			}
			applyScenario(t, l, tt.host, tt.scenario)
			got := cycle(t, l, svc)
			if len(got) != tt.messages {
				var texts []string
				for _, m := range got {
					texts = append(texts, m.Readable())
				}
				t.Fatalf("%d Slack messages, want %d:\n%s", len(got), tt.messages, strings.Join(texts, "\n---\n"))
			}
			if tt.messages > 0 && !strings.Contains(got[0].Readable(), tt.mention) {
				t.Errorf("message does not mention %q:\n%s", tt.mention, got[0].Readable())
			}
			h, _ := l.Lookup(tt.host)
			stored, err := svc.Store.Findings(t.Context(), h.Name(), 100)
			if err != nil {
				t.Fatal(err)
			}
			var match []inventory.Finding
			for _, f := range stored {
				if f.Kind == tt.kind {
					match = append(match, f)
				}
			}
			if len(match) != 1 {
				t.Fatalf("stored %d %s findings, want 1 (all: %v)", len(match), tt.kind, kinds(stored))
			}
			f := match[0]
			if f.Severity < tt.minSeverity {
				t.Errorf("severity %s, want at least %s (hits %v)", f.Severity, tt.minSeverity, f.Hits)
			}
			if f.Suppressed != tt.suppressed {
				t.Errorf("suppressed = %v, want %v (by %q)", f.Suppressed, tt.suppressed, f.SuppressedBy)
			}
			if f.Severity >= inventory.SeverityMedium && len(f.Hits) == 0 {
				t.Errorf("a %s finding carries no explanation", f.Severity)
			}
			if again := cycle(t, l, svc); len(again) != 0 {
				t.Fatalf("a second poll with no change sent %d messages", len(again))
			}
		})
	}
}

// TestHostileNameCannotControlSlack: a service named and pathed to break the
// renderer produces one message in which nothing is live (no mention, channel
// ping, link or formatting from the host) and nothing exceeds Slack's limits
// (the lab sink rejects oversize messages like Slack does).
func TestHostileNameCannotControlSlack(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the lab")
	}
	l, svc := startLabWith(t, lab.Options{}, nil)
	cycle(t, l, svc)
	applyScenario(t, l, "dc01", "hostile-name")
	got := cycle(t, l, svc)
	if len(got) != 1 {
		t.Fatalf("%d messages, want 1", len(got))
	}
	if live := got[0].Live(); len(live) != 0 {
		t.Fatalf("host-controlled text is live in Slack: %q", live)
	}
	if l.Slack().Rejected() != 0 {
		t.Fatalf("the sink rejected %d messages (over Slack's limits or malformed)", l.Slack().Rejected())
	}
}

func startLabWith(t *testing.T, opts lab.Options, configure func(*config.Config)) (*lab.Lab, *poller.Service) {
	t.Helper()
	opts.Small = true
	l, err := lab.Start(t.Context(), opts)
	if err != nil {
		t.Fatalf("lab: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	cfg := l.Config()
	if configure != nil {
		configure(cfg)
		if err := cfg.Validate(); err != nil {
			t.Fatalf("config: %v", err)
		}
	}
	svc, err := poller.Open(t.Context(), cfg, poller.BuildOptions{})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { svc.Close() })
	return l, svc
}

func kinds(fs []inventory.Finding) []inventory.Kind {
	out := make([]inventory.Kind, len(fs))
	for i, f := range fs {
		out[i] = f.Kind
	}
	return out
}
