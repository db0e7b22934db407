package inventory

import (
	"slices"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 4, 15, 0, 0, 0, time.UTC)

var dc01 = Host{Name: "dc01.corp.example", Reasons: []Reason{{Kind: ReasonDC}}}

func svc(name, display, path string) Service {
	return Service{Name: name, DisplayName: display, ImagePath: path, StartMode: StartDemand, Account: "LocalSystem", Type: TypeOwnProcess}
}

func ev7045(rec uint64, at time.Time, name, path string) Event {
	return Event{ID: EventServiceInstalled, RecordID: rec, Time: at, SID: "S-1-5-21-1-2-3-1104",
		Data: []string{name, path, "user mode service", "demand start", "LocalSystem"}}
}

func ev104(rec uint64, at time.Time) Event {
	return Event{ID: EventLogCleared, RecordID: rec, Time: at, Data: []string{"admin", "CORP", "System", ""}}
}

func ev7040(rec uint64, at time.Time, display, from, to, key string) Event {
	return Event{ID: EventStartTypeChanged, RecordID: rec, Time: at, Data: []string{display, from, to, key}}
}

var (
	spooler  = Service{Name: "Spooler", DisplayName: "Print Spooler", ImagePath: `%SystemRoot%\System32\spoolsv.exe`, StartMode: StartAuto, Account: "LocalSystem", Type: TypeOwnProcess}
	print    = Service{Name: "PrintNotify", DisplayName: "Printer Extensions and Notifications", ImagePath: `%SystemRoot%\system32\svchost.exe -k print`, StartMode: StartDemand, Account: "LocalSystem", Type: TypeShareProcess}
	psexesvc = svc("PSEXESVC", "PSEXESVC", `%SystemRoot%\PSEXESVC.exe`)
	baseline = []Service{spooler}
	logInfo  = LogInfo{OldestRecord: 1, NewestRecord: 5000, MaxBytes: 20 << 20, Retention: "circular"}
)

func baselined(svcs []Service, watermark uint64) State {
	return State{Host: dc01.Name, Baselined: true, Watermark: watermark, Digest: strings.Repeat("a", 64), Services: svcs, Log: logInfo}
}

func opts() DetectOptions { return DetectOptions{Lookback: 24 * time.Hour, Now: t0} }

type want struct {
	kind    Kind
	service string // Finding.Service.Name
	changed []string
	event   bool // an event is attached
	detail  string
}

func TestDetect(t *testing.T) {
	tests := []struct {
		name      string
		prev      State
		obs       Observation
		want      []want
		watermark uint64
		services  []string // names in the new state (nil: don't check)
		digest    *string
		baselined bool
		lookback  *time.Duration
	}{
		{
			name: "first poll: baseline is silent, 7045 inside the look-back is reported",
			prev: State{},
			obs: Observation{At: t0, Log: logInfo, Digest: "d1", Services: []Service{spooler, psexesvc}, Events: []Event{
				ev7045(10, t0.Add(-48*time.Hour), "OldSvc", `C:\old.exe`),
				ev104(11, t0.Add(-2*time.Hour)),
				ev7040(12, t0.Add(-90*time.Minute), "Print Spooler", "auto start", "demand start", "Spooler"),
				ev7045(20, t0.Add(-time.Hour), "PSEXESVC", `%SystemRoot%\PSEXESVC.exe`),
			}},
			want:      []want{{kind: KindInstalled, service: "PSEXESVC", event: true}},
			watermark: 5000, services: []string{"Spooler", "PSEXESVC"}, baselined: true,
		},
		{
			name:      "first poll with no look-back reports nothing",
			prev:      State{},
			obs:       Observation{At: t0, Log: logInfo, Digest: "d1", Services: []Service{spooler}, Events: []Event{ev7045(20, t0.Add(-time.Minute), "X", `C:\x.exe`)}},
			watermark: 5000, baselined: true, lookback: ptr(time.Duration(0)),
		},
		{
			name: "first poll cut short keeps baselining and continues from the last record",
			prev: State{},
			obs: Observation{At: t0, Log: logInfo, Digest: "d1", More: true, Services: []Service{spooler}, Events: []Event{
				ev7045(20, t0.Add(-time.Hour), "Gone", `C:\gone.exe`),
			}},
			want:      []want{{kind: KindEphemeral, service: "Gone", event: true}},
			watermark: 20, baselined: false,
		},
		{
			name: "installed: 7045 and the new service yield exactly one finding",
			prev: baselined(baseline, 100),
			obs: Observation{At: t0, Log: logInfo, Digest: "d2", Services: []Service{spooler, psexesvc}, Events: []Event{
				ev7045(101, t0.Add(-time.Minute), "PSEXESVC", `%SystemRoot%\PSEXESVC.exe`),
			}},
			want:      []want{{kind: KindInstalled, service: "PSEXESVC", event: true}},
			watermark: 101, services: []string{"Spooler", "PSEXESVC"}, baselined: true,
		},
		{
			name: "installed: joined on the display name with a differently spelled path",
			prev: baselined(baseline, 100),
			obs: Observation{At: t0, Log: logInfo, Digest: "d2", Services: []Service{spooler, print}, Events: []Event{
				ev7045(101, t0.Add(-time.Minute), "printer extensions and notifications", `C:\Windows\System32\svchost.exe -k print`),
			}},
			want:      []want{{kind: KindInstalled, service: "PrintNotify", event: true}},
			watermark: 101, baselined: true,
		},
		{
			name: "ephemeral: 7045 for a service already deleted (create-run-delete)",
			prev: baselined(baseline, 100),
			obs: Observation{At: t0, Log: logInfo, Digest: "aaaa", Events: []Event{
				ev7045(150, t0.Add(-time.Minute), "BTOBTO", `%COMSPEC% /Q /c echo cd ^> \\127.0.0.1\C$\__output 2^>^&1 > %TEMP%\execute.bat`),
			}},
			want:      []want{{kind: KindEphemeral, service: "BTOBTO", event: true}},
			watermark: 150, services: []string{"Spooler"}, baselined: true,
		},
		{
			name:      "silent: new in the inventory with no 7045",
			prev:      baselined(baseline, 100),
			obs:       Observation{At: t0, Log: logInfo, Digest: "d2", Services: []Service{spooler, svc("updsvc", "Updater", `C:\ProgramData\upd.exe`)}},
			want:      []want{{kind: KindSilent, service: "updsvc"}},
			watermark: 100, baselined: true,
		},
		{
			name: "silent held back while events were cut at the bound",
			prev: baselined(baseline, 100),
			obs: Observation{At: t0, Log: logInfo, Digest: "d2", More: true, Services: []Service{spooler, psexesvc}, Events: []Event{
				ev7040(101, t0, "Print Spooler", "auto start", "auto start", "Spooler"),
			}},
			want:      []want{{kind: KindModified, service: "Spooler", event: true, changed: []string{ChangeStartMode}}},
			watermark: 101, services: []string{"Spooler"}, digest: ptr(""), baselined: true,
		},
		{
			name: "modified: binpath hijack",
			prev: baselined(baseline, 100),
			obs: Observation{At: t0, Log: logInfo, Digest: "d2", Services: []Service{
				{Name: "Spooler", DisplayName: "Print Spooler", ImagePath: `cmd.exe /c net user x y /add`, StartMode: StartAuto, Account: "LocalSystem", Type: TypeOwnProcess},
			}},
			want:      []want{{kind: KindModified, service: "Spooler", changed: []string{ChangeImagePath}, detail: `image path "%SystemRoot%\\System32\\spoolsv.exe" → "cmd.exe /c net user x y /add"`}},
			watermark: 100, baselined: true,
		},
		{
			name: "not modified: the same path spelled differently",
			prev: baselined(baseline, 100),
			obs: Observation{At: t0, Log: logInfo, Digest: "d2", Services: []Service{
				{Name: "Spooler", DisplayName: "Print Spooler", ImagePath: `"C:\WINDOWS\system32\spoolsv.exe"`, StartMode: StartAuto, Account: "localsystem", Type: TypeOwnProcess},
			}},
			watermark: 100, baselined: true,
		},
		{
			name: "modified: ServiceDll, account and start mode, with the 7040 attached",
			prev: baselined([]Service{spooler, {Name: "wuauserv", ImagePath: `%systemroot%\system32\svchost.exe -k netsvcs -p`, ServiceDLL: `%systemroot%\system32\wuaueng.dll`, StartMode: StartDemand, Account: "LocalSystem", Type: TypeShareProcess}}, 100),
			obs: Observation{At: t0, Log: logInfo, Digest: "d2", Services: []Service{spooler,
				{Name: "wuauserv", ImagePath: `%systemroot%\system32\svchost.exe -k netsvcs -p`, ServiceDLL: `C:\Users\Public\evil.dll`, StartMode: StartAuto, Account: `CORP\svc`, Type: TypeShareProcess}},
				Events: []Event{ev7040(101, t0, "Windows Update", "demand start", "auto start", "wuauserv")}},
			want:      []want{{kind: KindModified, service: "wuauserv", event: true, changed: []string{ChangeServiceDLL, ChangeAccount, ChangeStartMode}}},
			watermark: 101, baselined: true,
		},
		{
			name:      "modified: a 7040 that the inventory does not show (changed and changed back)",
			prev:      baselined(baseline, 100),
			obs:       Observation{At: t0, Log: logInfo, Digest: "aaaa", Events: []Event{ev7040(101, t0, "Windows Event Log", "auto start", "disabled", "EventLog")}},
			want:      []want{{kind: KindModified, service: "EventLog", event: true, changed: []string{ChangeStartMode}, detail: "from auto start to disabled"}},
			watermark: 101, baselined: true,
		},
		{
			name:      "removed",
			prev:      baselined([]Service{spooler, psexesvc}, 100),
			obs:       Observation{At: t0, Log: logInfo, Digest: "d2", Services: []Service{spooler}},
			want:      []want{{kind: KindRemoved, service: "PSEXESVC"}},
			watermark: 100, services: []string{"Spooler"}, baselined: true,
		},
		{
			name:      "unchanged digest keeps the stored inventory",
			prev:      baselined([]Service{spooler, psexesvc}, 100),
			obs:       Observation{At: t0, Log: logInfo, Digest: strings.Repeat("a", 64)},
			watermark: 100, services: []string{"Spooler", "PSEXESVC"}, baselined: true,
		},
		{
			name: "re-created with a new path: one installed finding that says what it replaced",
			prev: baselined([]Service{spooler, psexesvc}, 100),
			obs: Observation{At: t0, Log: logInfo, Digest: "d2", Services: []Service{spooler, svc("PSEXESVC", "PSEXESVC", `C:\Users\Public\p.exe`)}, Events: []Event{
				ev7045(101, t0, "PSEXESVC", `C:\Users\Public\p.exe`),
			}},
			want:      []want{{kind: KindInstalled, service: "PSEXESVC", event: true, changed: []string{ChangeImagePath}, detail: "replaces the previous definition"}},
			watermark: 101, baselined: true,
		},
		{
			name: "ephemeral over a stored service of the same name: one finding, not ephemeral + removed",
			prev: baselined([]Service{spooler, psexesvc}, 100),
			obs: Observation{At: t0, Log: logInfo, Digest: "d2", Services: []Service{spooler}, Events: []Event{
				ev7045(101, t0, "PSEXESVC", `%SystemRoot%\PSEXESVC.exe`),
			}},
			want:      []want{{kind: KindEphemeral, service: "PSEXESVC", event: true, detail: "which is gone as well"}},
			watermark: 101, services: []string{"Spooler"}, baselined: true,
		},
		{
			name: "tamper: 104 in the System log",
			prev: baselined(baseline, 100),
			obs: Observation{At: t0, Log: logInfo, Digest: "aaaa", Events: []Event{
				ev104(101, t0.Add(-time.Minute)),
			}},
			want:      []want{{kind: KindTamper, event: true, detail: `the System log was cleared by CORP\admin`}},
			watermark: 101, baselined: true,
		},
		{
			name: "tamper: log cleared, ids restart below the watermark; events after the clear are read, one finding for the clear",
			prev: baselined(baseline, 5000),
			obs: Observation{At: t0, Log: LogInfo{OldestRecord: 1, NewestRecord: 3, MaxBytes: 20 << 20, Retention: "circular"}, Digest: "d2",
				Services: []Service{spooler, psexesvc},
				Events:   []Event{ev104(1, t0.Add(-2*time.Minute)), ev7045(3, t0.Add(-time.Minute), "PSEXESVC", `%SystemRoot%\PSEXESVC.exe`)}},
			want: []want{
				{kind: KindTamper, event: true, detail: "went backwards"},
				{kind: KindInstalled, service: "PSEXESVC", event: true},
			},
			watermark: 3, baselined: true,
		},
		{
			name:      "tamper: record ids backwards with no 104 returned",
			prev:      baselined(baseline, 5000),
			obs:       Observation{At: t0, Log: LogInfo{OldestRecord: 1, NewestRecord: 40, MaxBytes: 20 << 20, Retention: "circular"}, Digest: "aaaa"},
			want:      []want{{kind: KindTamper, detail: "newest record 40 is below the last one processed, 5000"}},
			watermark: 0, baselined: true,
		},
		{
			name:      "tamper: oldest record moved back (cleared, then refilled past the watermark)",
			prev:      State{Baselined: true, Watermark: 30, Digest: "aaaa", Services: baseline, Log: LogInfo{OldestRecord: 20, NewestRecord: 30, MaxBytes: 20 << 20, Retention: "circular"}},
			obs:       Observation{At: t0, Log: LogInfo{OldestRecord: 1, NewestRecord: 90, MaxBytes: 20 << 20, Retention: "circular"}, Digest: "aaaa"},
			want:      []want{{kind: KindTamper, detail: "oldest record moved back from 20 to 1"}},
			watermark: 0, baselined: true, // the new log's records 1..30 are read next time
		},
		{
			name:      "tamper: gap in a log that never overwrites",
			prev:      State{Baselined: true, Watermark: 100, Digest: "aaaa", Services: baseline, Log: LogInfo{OldestRecord: 1, NewestRecord: 100, Retention: "retain"}},
			obs:       Observation{At: t0, Log: LogInfo{OldestRecord: 500, NewestRecord: 900, Retention: "retain"}, Digest: "aaaa"},
			want:      []want{{kind: KindTamper, detail: "399 System log records after the last one processed (100) are gone"}},
			watermark: 499, baselined: true,
		},
		{
			name:      "tamper: gap in a circular log far from full",
			prev:      State{Baselined: true, Watermark: 100, Digest: "aaaa", Services: baseline, Log: LogInfo{OldestRecord: 1, NewestRecord: 100, MaxBytes: 20 << 20, Retention: "circular"}},
			obs:       Observation{At: t0, Log: LogInfo{OldestRecord: 500, NewestRecord: 600, MaxBytes: 20 << 20, Retention: "circular"}, Digest: "aaaa"},
			want:      []want{{kind: KindTamper, detail: "cannot have wrapped"}},
			watermark: 499, baselined: true,
		},
		{
			name:      "no tamper: a full circular log wrapped",
			prev:      State{Baselined: true, Watermark: 100, Digest: "aaaa", Services: baseline, Log: LogInfo{OldestRecord: 1, NewestRecord: 100, MaxBytes: 1 << 20, Retention: "circular"}},
			obs:       Observation{At: t0, Log: LogInfo{OldestRecord: 5000, NewestRecord: 9000, MaxBytes: 1 << 20, Retention: "circular"}, Digest: "aaaa"},
			watermark: 4999, baselined: true,
		},
		{
			name:      "no tamper: an auto-backup log archived and restarted",
			prev:      State{Baselined: true, Watermark: 100, Digest: "aaaa", Services: baseline, Log: LogInfo{OldestRecord: 1, NewestRecord: 100, MaxBytes: 1 << 20, Retention: "autobackup"}},
			obs:       Observation{At: t0, Log: LogInfo{OldestRecord: 20001, NewestRecord: 20010, MaxBytes: 1 << 20, Retention: "autobackup"}, Digest: "aaaa"},
			watermark: 20000, baselined: true,
		},
		{
			name:      "no tamper when the collector could not read the log",
			prev:      baselined(baseline, 5000),
			obs:       Observation{At: t0, Digest: "aaaa"},
			watermark: 5000, baselined: true,
		},
		{
			name: "events at or below the watermark and duplicates are skipped",
			prev: baselined(baseline, 100),
			obs: Observation{At: t0, Log: logInfo, Digest: "aaaa", Events: []Event{
				ev7045(99, t0, "Old", `C:\o.exe`), ev7045(102, t0, "New", `C:\n.exe`), ev7045(102, t0, "New", `C:\n.exe`),
			}},
			want:      []want{{kind: KindEphemeral, service: "New", event: true}},
			watermark: 102, baselined: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := opts()
			if tt.lookback != nil {
				o.Lookback = *tt.lookback
			}
			next, fs := Detect(dc01, tt.prev, tt.obs, o)
			if len(fs) != len(tt.want) {
				t.Fatalf("got %d findings, want %d:\n%s", len(fs), len(tt.want), dump(fs))
			}
			for i, w := range tt.want {
				f := fs[i]
				if f.Kind != w.kind {
					t.Errorf("finding %d kind %s, want %s", i, f.Kind, w.kind)
				}
				if w.service != "" && (f.Service == nil || f.Service.Name != w.service) {
					t.Errorf("finding %d service %+v, want %s", i, f.Service, w.service)
				}
				if w.event != (f.Event != nil) {
					t.Errorf("finding %d event %+v, want attached=%v", i, f.Event, w.event)
				}
				if !slices.Equal(f.Changed, w.changed) {
					t.Errorf("finding %d changed %v, want %v", i, f.Changed, w.changed)
				}
				if !strings.Contains(f.Detail, w.detail) {
					t.Errorf("finding %d detail %q, want it to contain %q", i, f.Detail, w.detail)
				}
				if len(f.ID) != 32 || f.Host.Name != dc01.Name || f.At.IsZero() {
					t.Errorf("finding %d: bad id/host/time: %+v", i, f)
				}
				if f.Installer != nil {
					t.Errorf("finding %d: Installer set; the poller resolves it", i)
				}
			}
			if next.Watermark != tt.watermark {
				t.Errorf("watermark %d, want %d", next.Watermark, tt.watermark)
			}
			if next.Baselined != tt.baselined {
				t.Errorf("baselined %v, want %v", next.Baselined, tt.baselined)
			}
			if tt.services != nil {
				var names []string
				for _, s := range next.Services {
					names = append(names, s.Name)
				}
				if !sameSet(names, tt.services) {
					t.Errorf("state services %v, want %v", names, tt.services)
				}
			}
			if tt.digest != nil && next.Digest != *tt.digest {
				t.Errorf("digest %q, want %q", next.Digest, *tt.digest)
			} else if tt.digest == nil && next.Digest != tt.obs.Digest {
				t.Errorf("digest %q, want the observation's %q", next.Digest, tt.obs.Digest)
			}

			// Deterministic: the same inputs give the same findings.
			_, again := Detect(dc01, tt.prev, tt.obs, o)
			for i := range fs {
				if fs[i].ID != again[i].ID {
					t.Errorf("finding %d: ID %s then %s", i, fs[i].ID, again[i].ID)
				}
			}
			seen := map[string]bool{}
			for _, f := range fs {
				if seen[f.ID] {
					t.Errorf("duplicate ID %s", f.ID)
				}
				seen[f.ID] = true
			}
			// Polling again with nothing new reports nothing.
			if next.Baselined && !tt.obs.More {
				quiet := Observation{At: t0.Add(time.Minute), Log: tt.obs.Log, Digest: next.Digest}
				if _, fs2 := Detect(dc01, next, quiet, o); len(fs2) != 0 {
					t.Errorf("second, unchanged poll reported:\n%s", dump(fs2))
				}
			}
		})
	}
}

// TestDetectDeferredSilentBecomesInstalled follows the More case across two
// polls: the new service waits for its 7045 and is reported once, as installed.
func TestDetectDeferredSilentBecomesInstalled(t *testing.T) {
	prev := baselined(baseline, 100)
	var filler []Event
	for i := uint64(101); i <= 110; i++ {
		filler = append(filler, ev7040(i, t0, "Background Intelligent Transfer Service", "auto start", "demand start", "BITS"))
	}
	obs1 := Observation{At: t0, Log: logInfo, Digest: "d2", More: true, Services: []Service{spooler, psexesvc}, Events: filler}
	st1, fs1 := Detect(dc01, prev, obs1, opts())
	for _, f := range fs1 {
		if f.Kind == KindSilent || f.Kind == KindInstalled {
			t.Fatalf("first poll reported %s before the events were read", f.Kind)
		}
	}
	if st1.Digest != "" || st1.Watermark != 110 {
		t.Fatalf("state after a cut poll: digest %q watermark %d", st1.Digest, st1.Watermark)
	}
	obs2 := Observation{At: t0.Add(time.Minute), Log: logInfo, Digest: "d2", Services: []Service{spooler, psexesvc},
		Events: []Event{ev7045(111, t0, "PSEXESVC", `%SystemRoot%\PSEXESVC.exe`)}}
	st2, fs2 := Detect(dc01, st1, obs2, opts())
	if len(fs2) != 1 || fs2[0].Kind != KindInstalled {
		t.Fatalf("second poll: want one installed finding, got:\n%s", dump(fs2))
	}
	if st2.Digest != "d2" || len(st2.Services) != 2 {
		t.Fatalf("state after the second poll: %+v", st2)
	}
}

// TestDetectRecordIDReuse: after a clear, record ids restart; an install with
// a reused record id is a new finding, not a duplicate of the old one.
func TestDetectRecordIDReuse(t *testing.T) {
	a := ev7045(7, t0.Add(-time.Hour), "PSEXESVC", `%SystemRoot%\PSEXESVC.exe`)
	b := ev7045(7, t0, "PSEXESVC", `%SystemRoot%\PSEXESVC.exe`)
	_, fa := Detect(dc01, baselined(baseline, 6), Observation{At: t0, Log: logInfo, Digest: "aaaa", Events: []Event{a}}, opts())
	_, fb := Detect(dc01, baselined(baseline, 6), Observation{At: t0, Log: logInfo, Digest: "aaaa", Events: []Event{b}}, opts())
	if len(fa) != 1 || len(fb) != 1 || fa[0].ID == fb[0].ID {
		t.Fatalf("reused record id must give a new finding ID: %v %v", fa, fb)
	}
}

func TestDetectDoesNotAliasObservation(t *testing.T) {
	obs := Observation{At: t0, Log: logInfo, Digest: "d1", Services: []Service{spooler}}
	st, _ := Detect(dc01, State{}, obs, opts())
	obs.Services[0].Name = "changed"
	if st.Services[0].Name != "Spooler" {
		t.Fatal("state shares the observation's service slice")
	}
}

func TestFindingHelpers(t *testing.T) {
	st := State{Host: dc01.Name, Failures: 3, LastOK: t0.Add(-time.Hour), LastError: "dc01: dial: refused"}
	u1 := UnreachableFinding(dc01, st, st.LastError, t0)
	u2 := UnreachableFinding(dc01, st, st.LastError, t0.Add(time.Minute))
	if u1.ID != u2.ID || u1.Kind != KindUnreachable || !strings.Contains(u1.Detail, "3 polls in a row failed") || !strings.Contains(u1.Detail, "refused") {
		t.Errorf("unreachable: %+v / %+v", u1, u2)
	}
	r := RecoveredFinding(dc01, st, t0.Add(2*time.Hour))
	if r.Kind != KindRecovered || r.ID == u1.ID || !strings.Contains(r.Detail, "after 3h0m0s") {
		t.Errorf("recovered: %+v", r)
	}
	// A later outage is a new finding.
	st2 := st
	st2.LastOK = t0.Add(3 * time.Hour)
	if UnreachableFinding(dc01, st2, "", t0).ID == u1.ID {
		t.Error("a second outage reused the first outage's ID")
	}
	d := DiscoveryFailedFinding("ldap: timeout", t0)
	if d.Host.Name != DirectoryHost || d.Kind != KindUnreachable || d.ID == "" {
		t.Errorf("discovery failed: %+v", d)
	}
}

func TestScopeFindings(t *testing.T) {
	dc02 := Host{Name: "dc02.corp.example", Reasons: []Reason{{Kind: ReasonDC}}}
	srv := Host{Name: "srv01.corp.example", Reasons: []Reason{{Kind: ReasonGroup, Detail: "Tier0 Servers"}}}
	srvPromoted := Host{Name: "SRV01.corp.example", Reasons: []Reason{{Kind: ReasonDC}, {Kind: ReasonGroup, Detail: "Tier0 Servers"}}}
	tests := []struct {
		name     string
		old, new []Host
		want     []string // detail prefixes, in order
	}{
		{"none", []Host{dc01, srv}, []Host{srv, dc01}, nil},
		{"entered", []Host{dc01}, []Host{dc01, dc02}, []string{"entered the monitored set (dc)"}},
		{"left", []Host{dc01, dc02}, []Host{dc01}, []string{"left the monitored set (was dc)"}},
		{"promoted", []Host{dc01, srv}, []Host{dc01, srvPromoted}, []string{"monitored for new reasons: was group Tier0 Servers, now dc, group Tier0 Servers"}},
		{"both", []Host{dc01}, []Host{dc02}, []string{"entered", "left"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := ScopeFindings(tt.old, tt.new, t0)
			if len(fs) != len(tt.want) {
				t.Fatalf("got %s", dump(fs))
			}
			for i, w := range tt.want {
				if fs[i].Kind != KindScope || !strings.HasPrefix(fs[i].Detail, w) {
					t.Errorf("finding %d: %+v, want detail %q", i, fs[i], w)
				}
			}
			again := ScopeFindings(tt.old, tt.new, t0)
			for i := range fs {
				if fs[i].ID != again[i].ID {
					t.Error("scope IDs not deterministic")
				}
			}
		})
	}
}

func TestParseInstallFields(t *testing.T) {
	tests := []struct {
		start, typ string
		mode       StartMode
		kind       uint32
	}{
		{"demand start", "user mode service", StartDemand, TypeOwnProcess},
		{"auto start", "kernel mode driver", StartAuto, TypeKernelDriver},
		{"boot start", "file system driver", StartBoot, TypeFileSystemDriver},
		{"2", "0x10", StartAuto, TypeOwnProcess},
		{"4", "0x00000001", StartDisabled, TypeKernelDriver},
		{"system start", "0xe0", StartSystem, 0xe0},
		{"", "", StartDemand, TypeOwnProcess},
	}
	for _, tt := range tests {
		m, k := ParseInstallFields(tt.start, tt.typ)
		if m != tt.mode || k != tt.kind {
			t.Errorf("ParseInstallFields(%q, %q) = %v, %#x; want %v, %#x", tt.start, tt.typ, m, k, tt.mode, tt.kind)
		}
	}
}

func dump(fs []Finding) string {
	var b strings.Builder
	for _, f := range fs {
		name := ""
		if f.Service != nil {
			name = f.Service.Name
		}
		b.WriteString("  " + string(f.Kind) + " " + name + ": " + f.Detail + "\n")
	}
	return b.String()
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func ptr[T any](v T) *T { return &v }

// FuzzDetect: untrusted observations never panic Detect, never produce two
// findings with one ID, and never move the watermark backwards without a
// reported reset.
func FuzzDetect(f *testing.F) {
	f.Add("PSEXESVC", `%SystemRoot%\PSEXESVC.exe`, uint64(101), uint64(1), uint64(5000), uint64(100), true, false)
	f.Add("Print Spooler", `"C:\x y\z.exe" -a`, uint64(3), uint64(1), uint64(3), uint64(5000), false, true)
	f.Add("", "", uint64(0), uint64(0), uint64(0), uint64(0), false, false)
	f.Fuzz(func(t *testing.T, name, path string, rec, oldest, newest, watermark uint64, withServices, more bool) {
		prev := baselined([]Service{spooler, print, svc(name, name+" display", path)}, watermark)
		obs := Observation{At: t0, Log: LogInfo{OldestRecord: oldest, NewestRecord: newest, Retention: "retain"}, Digest: "d2", More: more,
			Events: []Event{ev7045(rec, t0, name, path), ev104(rec+1, t0), ev7040(rec+2, t0, name, "auto start", "disabled", name), ev7045(rec, t0, name, path)}}
		if withServices {
			obs.Services = []Service{print, svc(strings.ToUpper(name), name, path+" x")}
		}
		next, fs := Detect(dc01, prev, obs, opts())
		seen := map[string]bool{}
		tampered := false
		for _, f := range fs {
			if seen[f.ID] {
				t.Fatalf("duplicate finding ID %s", f.ID)
			}
			seen[f.ID] = true
			if f.Kind == KindTamper {
				tampered = true
			}
		}
		if next.Watermark < watermark && !tampered {
			t.Fatalf("watermark went from %d to %d without a tamper finding", watermark, next.Watermark)
		}
		_, again := Detect(dc01, prev, obs, opts())
		if len(again) != len(fs) {
			t.Fatal("not deterministic")
		}
	})
}

// A host that leaves, comes back and leaves again (the rest of the set
// unchanged) must alert each time: the second "left" is not the first one.
func TestScopeFindingsFlapping(t *testing.T) {
	dc02 := Host{Name: "dc02.corp.example", Reasons: []Reason{{Kind: ReasonDC}}}
	with, without := []Host{dc01, dc02}, []Host{dc01}
	seen := map[string]bool{}
	at := t0
	for i, step := range [][2][]Host{{with, without}, {without, with}, {with, without}, {without, with}} {
		fs := ScopeFindings(step[0], step[1], at)
		if len(fs) != 1 {
			t.Fatalf("step %d: got %s", i, dump(fs))
		}
		if seen[fs[0].ID] {
			t.Fatalf("step %d: %q reuses the ID of an earlier scope finding; the store would drop it", i, fs[0].Detail)
		}
		seen[fs[0].ID] = true
		at = at.Add(time.Hour)
	}
}

// A log cleared and refilled past the watermark between two polls: the
// attacker's install at record 2 of the new log is below the watermark. It
// must still be reported (on the next poll, which re-reads the new log), and
// what the first poll already reported must keep its IDs.
func TestDetectLogRestartedPastWatermarkReadsTheNewLog(t *testing.T) {
	prev := State{Host: dc01.Name, Baselined: true, Watermark: 30, Digest: "aaaa", Services: baseline,
		Log: LogInfo{OldestRecord: 20, NewestRecord: 30, MaxBytes: 20 << 20, Retention: "circular"}}
	newLog := LogInfo{OldestRecord: 1, NewestRecord: 90, MaxBytes: 20 << 20, Retention: "circular"}
	clear := ev104(1, t0.Add(-10*time.Minute))
	hidden := ev7045(2, t0.Add(-9*time.Minute), "EvilSvc", `C:\Users\Public\e.exe`)
	later := ev7045(35, t0.Add(-time.Minute), "Later", `C:\l.exe`)

	// Poll 1: the host answers from the watermark on.
	st, fs := Detect(dc01, prev, Observation{At: t0, Log: newLog, Digest: "aaaa", Events: []Event{later}}, opts())
	first := map[string]Kind{}
	for _, f := range fs {
		first[f.ID] = f.Kind
	}
	if len(fs) != 2 || st.Watermark != 0 {
		t.Fatalf("poll 1: watermark %d, findings:\n%s", st.Watermark, dump(fs))
	}
	// Poll 2: watermark 0, so the host answers the whole (recent) new log.
	o := opts()
	o.Now = t0.Add(time.Minute)
	st, fs = Detect(dc01, st, Observation{At: o.Now, Log: newLog, Digest: "aaaa", Events: []Event{clear, hidden, later}}, o)
	var sawHidden bool
	for _, f := range fs {
		if f.Service != nil && f.Service.Name == "EvilSvc" {
			sawHidden = true
		}
		if f.Service != nil && f.Service.Name == "Later" {
			if _, ok := first[f.ID]; !ok {
				t.Errorf("the re-read 7045 at record 35 got a new ID: it would be alerted twice")
			}
		}
	}
	if !sawHidden {
		t.Errorf("the 7045 at record 2 of the new log was never reported:\n%s", dump(fs))
	}
	if st.Watermark != 35 {
		t.Errorf("watermark after the re-read = %d, want 35", st.Watermark)
	}
}
