package winhost

import (
	"encoding/base64"
	"fmt"
	"strings"
	"unicode/utf16"

	"github.com/svcwatch/svcwatch/internal/inventory"
)

// Scenario names accepted by Apply. Each changes the host the way the real
// tool does (image paths and names follow the public samples in
// shared/corpus/service-installs.jsonl).
const (
	ScenarioPsExec        = "psexec"                // 7045 PSEXESVC; stays installed while it runs
	ScenarioSmbExec       = "smbexec"               // Impacket smbexec: 7045 random name, %COMSPEC% echo ... execute.bat; deleted
	ScenarioCobaltStrike  = "cobaltstrike"          // 7045 random 7-char name, ADMIN$ exe or encoded PowerShell; deleted
	ScenarioGetSystem     = "meterpreter-getsystem" // 7045 cmd.exe /c echo x > \\.\pipe\x; deleted
	ScenarioMimidrv       = "mimidrv"               // 7045 kernel driver mimidrv from C:\Users\Public
	ScenarioBinPathHijack = "binpath-hijack"        // sc config binPath= on an existing service: no 7045
	ScenarioSilent        = "silent-registry"       // a service written into the registry: no 7045
	ScenarioLogClear      = "log-clear"             // 104 by a user; older records gone, ids continue
	ScenarioBenign        = "benign-install"        // a monitoring agent installed under Program Files
	ScenarioRemove        = "remove"                // a non-critical existing service removed
	ScenarioHostileName   = "hostile-name"          // name, display and path built to break renderers
)

// Scenarios lists every scenario name.
var Scenarios = []string{
	ScenarioPsExec, ScenarioSmbExec, ScenarioCobaltStrike, ScenarioGetSystem, ScenarioMimidrv,
	ScenarioBinPathHijack, ScenarioSilent, ScenarioLogClear, ScenarioBenign, ScenarioRemove, ScenarioHostileName,
}

// Well-known values the scenarios use, for tests that check their effect.
const (
	HijackedImagePath = `C:\Users\Public\Libraries\svchost.exe`
	SilentServiceName = "WinSvcUpdHelper"
	BenignServiceName = "Zabbix Agent 2"
	LabUserName       = "adm.jdoe" // the account behind the attacks (RID 1104)
)

// hijackTargets and removeTargets are demand-start, non-critical services an
// attacker (or an admin) would pick; the first present one is used.
var (
	hijackTargets = []string{"SNMPTRAP", "RpcLocator", "ALG", "PerfHost", "AppMgmt"}
	removeTargets = []string{"RpcLocator", "wbengine", "AppVClient", "SNMPTRAP", "PerfHost"}
)

// Apply runs a scenario on the host.
func (h *Host) Apply(scenario string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	var err error
	switch scenario {
	case ScenarioPsExec:
		// A second run finds the first session's service deleted at its exit.
		h.removeLocked("PSEXESVC")
		h.log.noise(2)
		h.installLocked(inventory.Service{
			Name: "PSEXESVC", DisplayName: "PSEXESVC", ImagePath: `%SystemRoot%\PSEXESVC.exe`,
			StartMode: inventory.StartDemand, Account: "LocalSystem", Type: inventory.TypeOwnProcess, State: "Running",
		}, true, h.InstallerSID())
		h.log.noise(1) // 7036: the PSEXESVC service entered the running state
	case ScenarioSmbExec:
		name := h.randName(8, upperLetters)
		h.ephemeralLocked(name, `%COMSPEC% /Q /c echo cd  ^> \\127.0.0.1\C$\__output 2^>^&1 > %TEMP%\execute.bat & %COMSPEC% /Q /c %TEMP%\execute.bat & del %TEMP%\execute.bat`)
	case ScenarioCobaltStrike:
		name := h.randName(7, lowerAlnum)
		path := `\\127.0.0.1\ADMIN$\` + h.randName(7, lowerAlnum) + ".exe"
		if h.countApplied(ScenarioCobaltStrike)%2 == 1 {
			path = `%COMSPEC% /b /c start /b /min powershell -nop -w hidden -encodedcommand ` + encodePS(
				`$s=New-Object IO.MemoryStream(,[Convert]::FromBase64String("H4sIAAAAAAAAAKtWKkktLlGyUlAqS8wpTVWqBQA="));IEX (New-Object IO.StreamReader(New-Object IO.Compression.GzipStream($s,[IO.Compression.CompressionMode]::Decompress))).ReadToEnd();`)
		}
		h.ephemeralLocked(name, path)
	case ScenarioGetSystem:
		name := h.randName(6, lowerLetters)
		h.ephemeralLocked(name, fmt.Sprintf(`cmd.exe /c echo %s > \\.\pipe\%s`, name, name))
	case ScenarioMimidrv:
		h.removeLocked("mimidrv")
		h.installLocked(inventory.Service{
			Name: "mimidrv", DisplayName: "mimikatz driver (mimidrv)", ImagePath: `C:\Users\Public\mimidrv.sys`,
			StartMode: inventory.StartAuto, Type: inventory.TypeKernelDriver, State: "Running",
		}, true, h.InstallerSID())
	case ScenarioBinPathHijack:
		err = h.hijackLocked()
	case ScenarioSilent:
		h.installLocked(inventory.Service{
			Name: SilentServiceName, DisplayName: "Windows Service Update Helper", ImagePath: `C:\Windows\Temp\wsuhelper.exe`,
			StartMode: inventory.StartAuto, Account: "LocalSystem", Type: inventory.TypeOwnProcess, State: "Stopped",
		}, false, "")
	case ScenarioLogClear:
		h.log.noise(3)
		h.log.clear(h.opts.Now(), h.InstallerSID(), []string{LabUserName, h.opts.Domain, "System", ""})
	case ScenarioBenign:
		h.installLocked(inventory.Service{
			Name: BenignServiceName, DisplayName: BenignServiceName,
			ImagePath: `"C:\Program Files\Zabbix Agent 2\zabbix_agent2.exe" -c "C:\Program Files\Zabbix Agent 2\zabbix_agent2.conf" -f=false`,
			StartMode: inventory.StartAuto, Account: "LocalSystem", Type: inventory.TypeOwnProcess, State: "Running",
		}, true, "S-1-5-18")
		h.log.noise(1)
	case ScenarioRemove:
		err = fmt.Errorf("winhost: %s: scenario remove: none of %s is installed", h.name, strings.Join(removeTargets, ", "))
		for _, name := range removeTargets {
			if h.removeLocked(name) {
				err = nil
				break
			}
		}
	case ScenarioHostileName:
		svc := HostileService()
		h.installLocked(svc, true, h.InstallerSID())
	default:
		return fmt.Errorf("winhost: unknown scenario %q (want one of %s)", scenario, strings.Join(Scenarios, ", "))
	}
	if err == nil {
		h.applied = append(h.applied, scenario)
	}
	return err
}

// ephemeralLocked installs a service, logs its 7045, runs it and deletes it:
// the create-run-delete pattern of smbexec, Cobalt Strike and getsystem.
func (h *Host) ephemeralLocked(name, path string) {
	h.installLocked(inventory.Service{
		Name: name, DisplayName: name, ImagePath: path,
		StartMode: inventory.StartDemand, Account: "LocalSystem", Type: inventory.TypeOwnProcess, State: "Stopped",
	}, true, h.InstallerSID())
	h.log.noise(1) // 7009/7000: the service did not respond (it was never a service)
	h.removeLocked(name)
}

func (h *Host) hijackLocked() error {
	for _, name := range hijackTargets {
		if i := h.indexLocked(name); i >= 0 {
			h.own()
			h.services[i].ImagePath = HijackedImagePath
			return nil
		}
	}
	return fmt.Errorf("winhost: %s: scenario binpath-hijack: none of %s is installed", h.name, strings.Join(hijackTargets, ", "))
}

// HijackTarget is the service binpath-hijack changes on a full or small inventory.
func HijackTarget() string { return hijackTargets[0] }

func (h *Host) countApplied(s string) int {
	n := 0
	for _, a := range h.applied {
		if a == s {
			n++
		}
	}
	return n
}

const (
	upperLetters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	lowerLetters = "abcdefghijklmnopqrstuvwxyz"
	lowerAlnum   = "abcdefghijklmnopqrstuvwxyz0123456789"
)

func (h *Host) randName(n int, alphabet string) string {
	for {
		b := make([]byte, n)
		for i := range b {
			b[i] = alphabet[h.rng.IntN(len(alphabet))]
		}
		if h.indexLocked(string(b)) < 0 {
			return string(b)
		}
	}
}

func encodePS(script string) string {
	u := utf16.Encode([]rune(script))
	b := make([]byte, 2*len(u))
	for i, c := range u {
		b[2*i], b[2*i+1] = byte(c), byte(c>>8)
	}
	return base64.StdEncoding.EncodeToString(b)
}

// HostileService is the hostile-name scenario's service: Slack mentions,
// links and mrkdwn, control characters, invalid UTF-8, a right-to-left
// override and a 100 KB image path.
func HostileService() inventory.Service {
	name := "<!channel>*bold*_it_~s~`code`<@U123>\x07\x1b[31m\xff\xfe\u202Eexe.txt"
	display := "<http://evil.example|click> <!here> <@U123> *bold* _it_ ~s~ `code` ```x``` &amp; \r\n\t\x00\x7f \xc3\x28 \u202Egpj.exe"
	var p strings.Builder
	p.WriteString(`C:\Users\Public\<!channel>\`)
	for p.Len() < 100*1024 {
		p.WriteString(`<@U123>\..\A*b_c~d` + "`" + `\`)
	}
	p.WriteString("\x01\xffpayload.exe")
	return inventory.Service{
		Name: name, DisplayName: display, ImagePath: p.String(), ServiceDLL: "<!everyone>.dll",
		StartMode: inventory.StartAuto, Account: `LAB\<@U123>`, Type: inventory.TypeOwnProcess, State: "Running",
	}
}
