package triage

import (
	"strings"
	"testing"
	"time"

	"github.com/svcwatch/svcwatch/internal/config"
	"github.com/svcwatch/svcwatch/internal/inventory"
)

func TestAllowlist(t *testing.T) {
	zabbix := install("Zabbix Agent 2", `"C:\Program Files\Zabbix Agent 2\zabbix_agent2.exe" -c "C:\Program Files\Zabbix Agent 2\zabbix_agent2.conf"`, bySystem)
	zabbixDC := install("Zabbix Agent 2", `"C:\Program Files\Zabbix Agent 2\zabbix_agent2.exe"`, bySystem, onDC)
	printNotify := install("PrintNotify", `%SystemRoot%\system32\svchost.exe -k print`, display("Printer Extensions and Notifications"), bySystem)
	sqlAgent := install("SQLAgent", `"C:\Program Files\SQL\agent.exe"`, account(`CORP\svc_sql`), bySystem)
	mpksl := install("MpKsla2c6dbc0", `C:\ProgramData\Microsoft\Windows Defender\Definition Updates\{594DF311-C899-40AF-8AB8-3A6F47377D5E}\MpKslDrv.sys`, driver, bySystem)
	fakeMpksl := install("MpKsl1234abcd", `C:\Users\Public\MpKslDrv.sys`, driver)
	dotsMpksl := install("MpKsl1234abcd", `C:\ProgramData\Microsoft\Windows Defender\Definition Updates\x\..\..\..\..\..\Users\Public\MpKslDrv.sys`, driver, bySystem)
	perUser := install("CDPUserSvc_b0b5d", `C:\windows\system32\svchost.exe -k UnistackSvcGroup`, bySystem, func(f *inventory.Finding) { f.Service.Type = 0xe0 })
	fakePerUser := install("Evil_b0b5d", `C:\Users\Public\evil.exe`, func(f *inventory.Finding) { f.Service.Type = 0xe0 })
	// sc.exe create evil_1 type= userown binPath= "...svchost.exe -k x": a
	// template type (0x50), not an instance the SCM made at logon.
	userownTemplate := install("evil_1a2b3", `C:\Windows\System32\svchost.exe -k evilgroup`, bySystem, func(f *inventory.Finding) { f.Service.Type = 0x50 })
	// An instance-shaped svchost service whose ServiceDll sits in a user folder.
	instanceUserDLL := install("CDPUserSvc_b0b5d", `C:\windows\system32\svchost.exe -k UnistackSvcGroup`, bySystem, func(f *inventory.Finding) {
		f.Service.Type = 0xe0
		f.Service.ServiceDLL = `C:\Users\Public\evil.dll`
	})
	// The underscore is only in the display name.
	displayUnderscore := install("evilsvc", `C:\Windows\System32\svchost.exe -k evilgroup`, bySystem, display("Evil_b0b5d"), func(f *inventory.Finding) { f.Service.Type = 0xe0 })
	unreachable := inventory.Finding{Kind: inventory.KindUnreachable, Host: member, At: t0}

	entry := func(mod func(*config.Allow)) config.Allow {
		a := config.Allow{Reason: "monitoring agent", Owner: "it-ops"}
		mod(&a)
		return a
	}
	tests := []struct {
		name     string
		allow    []config.Allow
		defaults bool
		f        inventory.Finding
		want     string // SuppressedBy prefix; "" = not suppressed
	}{
		{"name glob", []config.Allow{entry(func(a *config.Allow) { a.Name = "zabbix*" })}, false, zabbix, "allow[0]: monitoring agent; owner it-ops"},
		{"display-name glob", []config.Allow{entry(func(a *config.Allow) { a.Name = "Printer Extensions*" })}, false, printNotify, "allow[0]"},
		{"name glob does not match", []config.Allow{entry(func(a *config.Allow) { a.Name = "zabbix" })}, false, zabbix, ""},
		{"path glob, written with quotes and case", []config.Allow{entry(func(a *config.Allow) { a.Path = `"C:\PROGRAM FILES\Zabbix Agent 2\*"` })}, false, zabbix, "allow[0]"},
		{"path glob with %SystemRoot%", []config.Allow{entry(func(a *config.Allow) { a.Path = `%SystemRoot%\System32\svchost.exe -k print` })}, false, printNotify, "allow[0]"},
		{"path glob does not match", []config.Allow{entry(func(a *config.Allow) { a.Path = `C:\Program Files\Other\*` })}, false, zabbix, ""},
		{"path regex", []config.Allow{entry(func(a *config.Allow) { a.Path = `/zabbix_agent2\.exe"? -c/` })}, false, zabbix, "allow[0]"},
		{"account glob", []config.Allow{entry(func(a *config.Allow) { a.Name = "SQL*"; a.Account = `corp\svc_*` })}, false, sqlAgent, "allow[0]"},
		{"account glob does not match", []config.Allow{entry(func(a *config.Allow) { a.Name = "SQL*"; a.Account = `corp\other` })}, false, sqlAgent, ""},
		{"host scope by short name", []config.Allow{entry(func(a *config.Allow) { a.Name = "Zabbix*"; a.Hosts = []string{"srv0?"} })}, false, zabbix, "allow[0]"},
		{"host scope excludes other hosts", []config.Allow{entry(func(a *config.Allow) { a.Name = "Zabbix*"; a.Hosts = []string{"srv02*"} })}, false, zabbix, ""},
		{"group scope: dc", []config.Allow{entry(func(a *config.Allow) { a.Name = "Zabbix*"; a.Groups = []string{"dc"} })}, false, zabbixDC, "allow[0]"},
		{"group scope: dc does not cover a member server", []config.Allow{entry(func(a *config.Allow) { a.Name = "Zabbix*"; a.Groups = []string{"dc"} })}, false, zabbix, ""},
		{"group scope: group name", []config.Allow{entry(func(a *config.Allow) { a.Name = "Zabbix*"; a.Groups = []string{"tier0 servers"} })}, false, zabbix, "allow[0]"},
		{"kinds: an installed-only entry leaves modified alone", []config.Allow{entry(func(a *config.Allow) { a.Name = "Zabbix*"; a.Kinds = []string{"installed"} })}, false,
			func() inventory.Finding {
				f := zabbix
				f.Kind = inventory.KindModified
				f.Changed = []string{inventory.ChangeImagePath}
				return f
			}(), ""},
		{"a name-only entry does not hide a hijack of the service", []config.Allow{entry(func(a *config.Allow) { a.Name = "Zabbix*" })}, false,
			func() inventory.Finding {
				f := zabbix
				f.Kind = inventory.KindModified
				f.Changed = []string{inventory.ChangeImagePath}
				return f
			}(), ""},
		{"modified listed explicitly", []config.Allow{entry(func(a *config.Allow) { a.Name = "Zabbix*"; a.Kinds = []string{"modified"} })}, false,
			func() inventory.Finding {
				f := zabbix
				f.Kind = inventory.KindModified
				f.Changed = []string{inventory.ChangeImagePath}
				return f
			}(), "allow[0]"},
		{"host kinds with a host scope", []config.Allow{entry(func(a *config.Allow) { a.Kinds = []string{"unreachable"}; a.Hosts = []string{"srv01*"} })}, false, unreachable, "allow[0]"},
		{"service entries do not cover host findings", []config.Allow{entry(func(a *config.Allow) { a.Name = "*" })}, false, unreachable, ""},
		{"first matching entry wins", []config.Allow{entry(func(a *config.Allow) { a.Name = "nope" }), entry(func(a *config.Allow) { a.Name = "Zabbix*"; a.Reason = "second" })}, false, zabbix, "allow[1]: second"},
		{"not yet expired (valid through the named day)", []config.Allow{entry(func(a *config.Allow) { a.Name = "Zabbix*"; a.Expires = "2026-12-04" })}, false, zabbix, "allow[0]"},
		{"default: Defender MpKsl driver", nil, true, mpksl, "default:defender-mpksl"},
		{"default off: MpKsl reported", nil, false, mpksl, ""},
		{"default: MpKsl name from a user folder is not Defender", nil, true, fakeMpksl, ""},
		{"default: a Defender prefix climbing out with .. is not Defender", nil, true, dotsMpksl, ""},
		{"default: per-user service instance", nil, true, perUser, "default:per-user-service"},
		{"default: per-user shape from a user folder is not Windows", nil, true, fakePerUser, ""},
		{"default: a userown template made with sc.exe is not an instance", nil, true, userownTemplate, ""},
		{"default: per-user instance with a ServiceDll outside system32", nil, true, instanceUserDLL, ""},
		{"default: per-user shape only in the display name", nil, true, displayUnderscore, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr, err := New(Options{Allow: tt.allow, DefaultAllow: tt.defaults})
			if err != nil {
				t.Fatal(err)
			}
			out := tr.Apply(t0, []inventory.Finding{tt.f})
			if len(out) != 1 {
				t.Fatalf("got %d findings", len(out))
			}
			f := out[0]
			if tt.want == "" {
				if f.Suppressed {
					t.Errorf("suppressed by %q", f.SuppressedBy)
				}
				return
			}
			if !f.Suppressed || !strings.HasPrefix(f.SuppressedBy, tt.want) {
				t.Errorf("suppressed=%v by %q, want %q", f.Suppressed, f.SuppressedBy, tt.want)
			}
			if len(f.Hits) == 0 {
				t.Error("a suppressed finding keeps its rating and reasons")
			}
		})
	}
}

func TestAllowExpiry(t *testing.T) {
	allow := []config.Allow{{Name: "Zabbix*", Reason: "pilot", Owner: "it-ops", Expires: "2026-11-30"}}
	tr, err := New(Options{Allow: allow})
	if err != nil {
		t.Fatal(err)
	}
	zabbix := install("Zabbix Agent 2", `"C:\Program Files\Zabbix Agent 2\zabbix_agent2.exe"`, bySystem)
	other := install("Zabbix Agent 2", `"C:\Program Files\Zabbix Agent 2\zabbix_agent2.exe"`, bySystem, onDC)

	before := tr.Apply(time.Date(2026, 11, 30, 23, 59, 0, 0, time.UTC), []inventory.Finding{zabbix})
	if len(before) != 1 || !before[0].Suppressed {
		t.Fatalf("entry should suppress through its last day: %+v", before)
	}
	if got := tr.Expired(time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)); len(got) != 0 {
		t.Fatalf("Expired before the date: %+v", got)
	}

	after := tr.Apply(t0, []inventory.Finding{zabbix, other})
	if len(after) != 3 {
		t.Fatalf("want the two findings and one allow-expired finding, got %d", len(after))
	}
	for _, f := range after[:2] {
		if f.Suppressed {
			t.Error("an expired entry still suppresses")
		}
		if !strings.Contains(Explain(f), "allow-expired") {
			t.Errorf("finding does not say the entry expired: %v", hitIDList(f))
		}
	}
	exp := after[2]
	if exp.Kind != inventory.KindAllowExpired || exp.Severity < inventory.SeverityMedium || !strings.Contains(exp.Detail, "allow[0]: pilot; owner it-ops; expires 2026-11-30") {
		t.Errorf("allow-expired finding: %+v", exp)
	}
	// Reported once: the next batch derives the same ID, so the store keeps one.
	again := tr.Apply(t0.Add(24*time.Hour), []inventory.Finding{other})
	if len(again) != 2 || again[1].ID != exp.ID {
		t.Errorf("expiry finding ID changed between batches: %s vs %+v", exp.ID, again)
	}
	if got := tr.Expired(t0); len(got) != 1 || got[0].Label != "allow[0]" || got[0].Owner != "it-ops" {
		t.Errorf("Expired = %+v", got)
	}
	// A valid entry behind the expired one still suppresses, and nothing is reported.
	tr2, err := New(Options{Allow: append(allow, config.Allow{Name: "Zabbix*", Reason: "renewed"})})
	if err != nil {
		t.Fatal(err)
	}
	out := tr2.Apply(t0, []inventory.Finding{zabbix})
	if len(out) != 1 || !out[0].Suppressed || !strings.HasPrefix(out[0].SuppressedBy, "allow[1]") {
		t.Errorf("renewed entry: %+v", out)
	}
}

func TestNewValidation(t *testing.T) {
	tests := []struct {
		allow []config.Allow
		want  []string
	}{
		{[]config.Allow{{Reason: "x"}}, []string{"triage: allow[0].name: the entry would match every service"}},
		{[]config.Allow{{Name: "a", Reason: "x"}, {Name: "b", Path: "/[/", Reason: "y"}}, []string{"triage: allow[1].path: /[/ does not compile as a regular expression"}},
		{[]config.Allow{{Name: "a"}}, []string{"triage: allow[0].reason: is empty"}},
		{[]config.Allow{{Name: "a", Reason: "x", Expires: "30/11/2026"}}, []string{`triage: allow[0].expires: "30/11/2026" is not a date; write YYYY-MM-DD`}},
		{[]config.Allow{{Name: "a", Reason: "x", Kinds: []string{"installed", "bogus"}}}, []string{`triage: allow[0].kinds[1]: "bogus" is not a finding kind`}},
		{[]config.Allow{{Name: "a", Reason: "x", Hosts: []string{""}, Groups: []string{""}}}, []string{`triage: allow[0].hosts[0]:`, `triage: allow[0].groups[0]:`}},
		{[]config.Allow{{Kinds: []string{"unreachable"}, Reason: "x"}}, []string{"triage: allow[0].name:"}},
	}
	for _, tt := range tests {
		_, err := New(Options{Allow: tt.allow})
		if err == nil {
			t.Errorf("New(%+v) accepted", tt.allow)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("New(%+v) = %q, want it to contain %q", tt.allow, err, w)
			}
		}
	}
	if _, err := New(Options{Allow: []config.Allow{{Kinds: []string{"unreachable"}, Hosts: []string{"lab-*"}, Reason: "lab hosts sleep at night"}}}); err != nil {
		t.Errorf("host-kind entry with a scope rejected: %v", err)
	}
}

func TestOptionsFromConfig(t *testing.T) {
	off := false
	if o := OptionsFromConfig(&config.Config{}); !o.DefaultAllow {
		t.Error("defaults should be on when default_allow is unset")
	}
	if o := OptionsFromConfig(&config.Config{DefaultAllow: &off}); o.DefaultAllow {
		t.Error("default_allow: false ignored")
	}
}

// TestApplyConcurrent: one Triager serves the poller's worker pool.
func TestApplyConcurrent(t *testing.T) {
	tr, err := New(Options{DefaultAllow: true, Allow: []config.Allow{{Name: "Zabbix*", Reason: "agent", Expires: "2026-01-01"}}})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	for i := 0; i < 8; i++ {
		go func() {
			defer func() { done <- struct{}{} }()
			for j := 0; j < 50; j++ {
				out := tr.Apply(t0, []inventory.Finding{install("Zabbix Agent 2", `C:\Users\Public\z.exe`), install("PSEXESVC", `%SystemRoot%\PSEXESVC.exe`, onDC)})
				if len(out) != 3 || out[1].Severity != inventory.SeverityCritical {
					t.Errorf("concurrent Apply: %d findings", len(out))
					return
				}
			}
		}()
	}
	for i := 0; i < 8; i++ {
		<-done
	}
}
