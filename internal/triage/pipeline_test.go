package triage

import (
	"strings"
	"testing"
	"time"

	"github.com/svcwatch/svcwatch/internal/config"
	"github.com/svcwatch/svcwatch/internal/inventory"
)

// TestScenariosThroughDetect runs the lab's attack scenarios, as the
// collector would report them, through Detect and Apply: each must give one
// finding of the right kind at the right severity, with its reasons.
func TestScenariosThroughDetect(t *testing.T) {
	now := time.Date(2026, 12, 4, 15, 0, 0, 0, time.UTC)
	host := inventory.Host{Name: "dc01.lab.example", Reasons: []inventory.Reason{{Kind: inventory.ReasonDC}}}
	member := inventory.Host{Name: "srv01.lab.example", Reasons: []inventory.Reason{{Kind: inventory.ReasonStatic}}}
	const sid = "S-1-5-21-1-2-3-1104"
	snmptrap := inventory.Service{Name: "SNMPTRAP", DisplayName: "SNMP Trap", ImagePath: `%SystemRoot%\System32\snmptrap.exe`,
		StartMode: inventory.StartDemand, Account: "LocalSystem", Type: inventory.TypeOwnProcess}
	locator := inventory.Service{Name: "RpcLocator", DisplayName: "Remote Procedure Call (RPC) Locator", ImagePath: `%SystemRoot%\system32\locator.exe`,
		StartMode: inventory.StartDemand, Account: `NT AUTHORITY\NetworkService`, Type: inventory.TypeOwnProcess}
	base := []inventory.Service{snmptrap, locator}
	logInfo := inventory.LogInfo{OldestRecord: 1, NewestRecord: 1000, MaxBytes: 20 << 20, Retention: "circular"}
	prev := inventory.State{Baselined: true, Watermark: 1000, Digest: "d0", Services: base, Log: logInfo}

	ev := func(rec uint64, name, path, typ, start, acct string) inventory.Event {
		return inventory.Event{ID: inventory.EventServiceInstalled, RecordID: rec, Time: now.Add(-time.Minute), SID: sid,
			Data: []string{name, path, typ, start, acct}}
	}
	with := func(extra ...inventory.Service) []inventory.Service {
		return append(append([]inventory.Service{}, base...), extra...)
	}
	hijacked := snmptrap
	hijacked.ImagePath = `C:\Users\Public\Libraries\svchost.exe`
	zabbix := inventory.Service{Name: "Zabbix Agent 2", DisplayName: "Zabbix Agent 2",
		ImagePath: `"C:\Program Files\Zabbix Agent 2\zabbix_agent2.exe" -c "C:\Program Files\Zabbix Agent 2\zabbix_agent2.conf" -f=false`,
		StartMode: inventory.StartAuto, Account: "LocalSystem", Type: inventory.TypeOwnProcess}
	mimidrv := inventory.Service{Name: "mimidrv", DisplayName: "mimikatz driver (mimidrv)", ImagePath: `C:\Users\Public\mimidrv.sys`,
		StartMode: inventory.StartAuto, Type: inventory.TypeKernelDriver}
	silentSvc := inventory.Service{Name: "WinSvcUpdHelper", DisplayName: "Windows Service Update Helper", ImagePath: `C:\Windows\Temp\wsuhelper.exe`,
		StartMode: inventory.StartAuto, Account: "LocalSystem", Type: inventory.TypeOwnProcess}
	psexec := inventory.Service{Name: "PSEXESVC", DisplayName: "PSEXESVC", ImagePath: `%SystemRoot%\PSEXESVC.exe`,
		StartMode: inventory.StartDemand, Account: "LocalSystem", Type: inventory.TypeOwnProcess}

	tests := []struct {
		scenario string
		host     inventory.Host
		obs      inventory.Observation
		kind     inventory.Kind
		sev      inventory.Severity
		hit      string
	}{
		{"psexec", host, inventory.Observation{Digest: "d1", Services: with(psexec), Events: []inventory.Event{
			ev(1003, "PSEXESVC", `%SystemRoot%\PSEXESVC.exe`, "user mode service", "demand start", "LocalSystem")}},
			inventory.KindInstalled, inventory.SeverityCritical, "psexec-clone"},
		{"psexec on a member server", member, inventory.Observation{Digest: "d1", Services: with(psexec), Events: []inventory.Event{
			ev(1003, "PSEXESVC", `%SystemRoot%\PSEXESVC.exe`, "user mode service", "demand start", "LocalSystem")}},
			inventory.KindInstalled, inventory.SeverityHigh, "psexec-clone"},
		{"smbexec", member, inventory.Observation{Digest: "d0", Events: []inventory.Event{
			ev(1002, "QWERTYUI", `%COMSPEC% /Q /c echo cd  ^> \\127.0.0.1\C$\__output 2^>^&1 > %TEMP%\execute.bat & %COMSPEC% /Q /c %TEMP%\execute.bat & del %TEMP%\execute.bat`, "user mode service", "demand start", "LocalSystem")}},
			inventory.KindEphemeral, inventory.SeverityCritical, "smbexec"},
		{"cobaltstrike (ADMIN$)", member, inventory.Observation{Digest: "d0", Events: []inventory.Event{
			ev(1002, "k3j9x0a", `\\127.0.0.1\ADMIN$\p0o9i8u.exe`, "user mode service", "demand start", "LocalSystem")}},
			inventory.KindEphemeral, inventory.SeverityCritical, "loopback-admin-share"},
		{"cobaltstrike (PowerShell)", member, inventory.Observation{Digest: "d0", Events: []inventory.Event{
			ev(1002, "k3j9x0a", `%COMSPEC% /b /c start /b /min powershell -nop -w hidden -encodedcommand JABzAD0ATgBlAHcALQBPAGIAagBlAGMAdAA=`, "user mode service", "demand start", "LocalSystem")}},
			inventory.KindEphemeral, inventory.SeverityCritical, "powershell-encoded"},
		{"meterpreter-getsystem", member, inventory.Observation{Digest: "d0", Events: []inventory.Event{
			ev(1002, "abcdef", `cmd.exe /c echo abcdef > \\.\pipe\abcdef`, "user mode service", "demand start", "LocalSystem")}},
			inventory.KindEphemeral, inventory.SeverityCritical, "getsystem-pipe"},
		{"mimidrv", member, inventory.Observation{Digest: "d1", Services: with(mimidrv), Events: []inventory.Event{
			ev(1002, "mimikatz driver (mimidrv)", `C:\Users\Public\mimidrv.sys`, "kernel mode driver", "auto start", "")}},
			inventory.KindInstalled, inventory.SeverityCritical, "credential-dumper"},
		{"binpath-hijack", member, inventory.Observation{Digest: "d1", Services: []inventory.Service{hijacked, locator}},
			inventory.KindModified, inventory.SeverityHigh, "user-writable-path"},
		{"silent-registry", member, inventory.Observation{Digest: "d1", Services: with(silentSvc)},
			inventory.KindSilent, inventory.SeverityHigh, "user-writable-path"},
		{"log-clear", host, inventory.Observation{Digest: "d0", Log: inventory.LogInfo{OldestRecord: 1004, NewestRecord: 1004, MaxBytes: 20 << 20, Retention: "circular"},
			Events: []inventory.Event{{ID: inventory.EventLogCleared, RecordID: 1004, Time: now, SID: sid, Data: []string{"adm.jdoe", "LAB", "System", ""}}}},
			inventory.KindTamper, inventory.SeverityCritical, "log-cleared"},
		{"benign-install", member, inventory.Observation{Digest: "d1", Services: with(zabbix), Events: []inventory.Event{
			{ID: inventory.EventServiceInstalled, RecordID: 1002, Time: now, SID: "S-1-5-18", Data: []string{"Zabbix Agent 2", zabbix.ImagePath, "user mode service", "auto start", "LocalSystem"}}}},
			inventory.KindInstalled, inventory.SeverityLow, "service-installed"},
		{"remove", member, inventory.Observation{Digest: "d1", Services: []inventory.Service{snmptrap}},
			inventory.KindRemoved, inventory.SeverityInfo, "service-removed"},
	}
	tr, err := New(Options{DefaultAllow: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.scenario, func(t *testing.T) {
			obs := tt.obs
			obs.At = now
			if obs.Log == (inventory.LogInfo{}) {
				obs.Log = inventory.LogInfo{OldestRecord: 1, NewestRecord: 1004, MaxBytes: 20 << 20, Retention: "circular"}
			}
			_, fs := inventory.Detect(tt.host, prev, obs, inventory.DetectOptions{Lookback: time.Hour, Now: now})
			fs = tr.Apply(now, fs)
			if len(fs) != 1 {
				t.Fatalf("got %d findings, want 1: %+v", len(fs), fs)
			}
			f := fs[0]
			if f.Kind != tt.kind || f.Severity != tt.sev || f.Suppressed {
				t.Errorf("got %s at %s (suppressed %v), want %s at %s; reasons:\n%s", f.Kind, f.Severity, f.Suppressed, tt.kind, tt.sev, Explain(f))
			}
			if !strings.Contains(Explain(f), tt.hit+":") {
				t.Errorf("reason %s missing:\n%s", tt.hit, Explain(f))
			}
		})
	}

	// The allowlisted benign install is still returned (the store keeps it), suppressed.
	allowed, err := New(Options{DefaultAllow: true, Allow: []config.Allow{{Name: "Zabbix Agent*", Path: `C:\Program Files\Zabbix Agent 2\*`, Reason: "monitoring", Owner: "it-ops"}}})
	if err != nil {
		t.Fatal(err)
	}
	_, fs := inventory.Detect(member, prev, tests[len(tests)-2].obs, inventory.DetectOptions{Lookback: time.Hour, Now: now})
	fs = allowed.Apply(now, fs)
	if len(fs) != 1 || !fs[0].Suppressed || fs[0].Kind != inventory.KindInstalled {
		t.Errorf("allowlisted benign install: %+v", fs)
	}
}
