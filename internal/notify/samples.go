package notify

import (
	"time"

	"github.com/svcwatch/svcwatch/internal/inventory"
)

// Samples returns one made-up finding of each severity, info to critical,
// for `svcwatch test-alert` to show the message design in a workspace.
func Samples() []inventory.Finding {
	at := time.Date(2026, 12, 4, 14, 59, 1, 0, time.UTC)
	dc := inventory.Host{
		Name: "dc01.corp.example", OS: "Windows Server 2022 Datacenter",
		Reasons: []inventory.Reason{{Kind: inventory.ReasonDC}},
	}
	tier0 := inventory.Host{
		Name: "pki01.corp.example", OS: "Windows Server 2019 Standard",
		Reasons: []inventory.Reason{{Kind: inventory.ReasonGroup, Detail: "Tier0 Servers"}},
	}
	const note = "This is a sample alert from `svcwatch test-alert`: no host was changed."
	admin := &inventory.Account{SID: "S-1-5-21-1-2-3-1104", Name: `CORP\adm-jdoe`, Privileged: true, Groups: []string{"Domain Admins"}}
	return []inventory.Finding{
		{
			ID: "sample-info", Host: tier0, Kind: inventory.KindRecovered, Severity: inventory.SeverityInfo, At: at,
			Detail: note,
		},
		{
			ID: "sample-low", Host: tier0, Kind: inventory.KindRemoved, Severity: inventory.SeverityLow, At: at,
			Previous: &inventory.Service{
				Name: "AdobeARMservice", DisplayName: "Adobe Acrobat Update Service",
				ImagePath: `"C:\Program Files (x86)\Common Files\Adobe\ARM\1.0\armsvc.exe"`,
				StartMode: inventory.StartAuto, Account: "LocalSystem", Type: inventory.TypeOwnProcess,
			},
			Detail: note,
		},
		{
			ID: "sample-medium", Host: dc, Kind: inventory.KindSilent, Severity: inventory.SeverityMedium, At: at,
			Service: &inventory.Service{
				Name: "WinSysHelper", DisplayName: "Windows System Helper",
				ImagePath: `C:\ProgramData\WinSys\helper.exe`,
				StartMode: inventory.StartAuto, Account: "LocalSystem", Type: inventory.TypeOwnProcess,
			},
			Hits:   []inventory.Hit{{ID: "path-programdata", Severity: inventory.SeverityMedium, Why: `Image runs from C:\ProgramData, where any user can write.`}},
			Detail: note,
		},
		{
			ID: "sample-high", Host: dc, Kind: inventory.KindModified, Severity: inventory.SeverityHigh, At: at,
			Previous: &inventory.Service{
				Name: "Spooler", DisplayName: "Print Spooler", ImagePath: `C:\Windows\System32\spoolsv.exe`,
				StartMode: inventory.StartAuto, Account: "LocalSystem", Type: inventory.TypeOwnProcess,
			},
			Service: &inventory.Service{
				Name: "Spooler", DisplayName: "Print Spooler", ImagePath: `cmd.exe /c C:\Windows\Temp\s.bat`,
				StartMode: inventory.StartAuto, Account: "LocalSystem", Type: inventory.TypeOwnProcess,
			},
			Hits:   []inventory.Hit{{ID: "binpath-cmd", Severity: inventory.SeverityHigh, Why: "The image path now starts cmd.exe: a service binPath hijack runs commands as SYSTEM."}},
			Detail: note,
		},
		{
			ID: "sample-critical", Host: dc, Kind: inventory.KindEphemeral, Severity: inventory.SeverityCritical, At: at,
			Event: &inventory.Event{
				ID: inventory.EventServiceInstalled, RecordID: 5230, Time: at, SID: admin.SID,
				Data: []string{"PSEXESVC", `%SystemRoot%\PSEXESVC.exe`, "user mode service", "demand start", "LocalSystem"},
			},
			Installer: admin,
			Hits: []inventory.Hit{{
				ID: "psexec", Severity: inventory.SeverityCritical,
				Why:     "PSEXESVC is the service PsExec installs to run commands remotely.",
				Follows: "Sigma: PsExec Service Installation",
			}},
			Detail: note,
		},
	}
}
