package triage

import (
	"regexp"
	"slices"
	"strings"

	"github.com/svcwatch/svcwatch/internal/inventory"
)

// Rule is one line of the heuristics table.
type Rule struct {
	ID       string
	Severity inventory.Severity
	// Raise marks context: instead of setting a floor, the rule raises the
	// finding's severity one level (findings already at low or above only).
	Raise bool
	// Why is the sentence shown in the alert.
	Why string
	// Follows names the public detection the rule follows (SigmaHQ titles).
	Follows string
	// Kinds the rule looks at; nil means the service kinds with a new
	// definition (installed, ephemeral, silent, and modified when the program,
	// DLL or account changed).
	Kinds []inventory.Kind

	match func(s *subject, c *batch) bool
}

// Rules returns a copy of the heuristics table, in evaluation order.
func Rules() []Rule { return slices.Clone(rules) }

var (
	serviceKinds = []inventory.Kind{inventory.KindInstalled, inventory.KindEphemeral, inventory.KindSilent, inventory.KindModified}
	sevInfo      = inventory.SeverityInfo
	sevLow       = inventory.SeverityLow
	sevMedium    = inventory.SeverityMedium
	sevHigh      = inventory.SeverityHigh
	sevCritical  = inventory.SeverityCritical
)

func kinds(k ...inventory.Kind) []inventory.Kind { return k }

// rules is THE heuristics table. Patterns are written from public knowledge
// of the tools; the Follows column names the SigmaHQ rule with the same aim.
var rules = []Rule{
	// What happened, by finding kind: every finding gets at least one sentence.
	{ID: "service-installed", Severity: sevLow, Kinds: kinds(inventory.KindInstalled, inventory.KindEphemeral),
		Why:   "A new service was installed; services run at boot or on demand, usually as SYSTEM.",
		match: always},
	{ID: "service-silent", Severity: sevMedium, Kinds: kinds(inventory.KindSilent),
		Why:   "The service appeared without a 7045 event: it was written straight into the registry, or its event was lost or cleared.",
		match: always},
	{ID: "image-path-changed", Severity: sevMedium, Kinds: kinds(inventory.KindModified),
		Why: "The service's program was changed in place (sc config binPath=), which Windows does not log as an install.",
		match: func(s *subject, c *batch) bool {
			return !s.versionBump && changed(inventory.ChangeImagePath)(s, c)
		}},
	{ID: "image-path-version-update", Severity: sevLow, Kinds: kinds(inventory.KindModified),
		Why:   "The service's program moved to a new version folder of the same product, as self-updating software does.",
		match: func(s *subject, _ *batch) bool { return s.versionBump }},
	{ID: "service-dll-changed", Severity: sevHigh, Kinds: kinds(inventory.KindModified),
		Why:   "The ServiceDll of a shared-process service was replaced, a quiet way to run code inside a trusted svchost.",
		match: changed(inventory.ChangeServiceDLL)},
	{ID: "account-changed", Severity: sevMedium, Kinds: kinds(inventory.KindModified),
		Why:   "The account the service runs as was changed.",
		match: changed(inventory.ChangeAccount)},
	{ID: "start-mode-changed", Severity: sevInfo, Kinds: kinds(inventory.KindModified),
		Why:   "The service's start mode changed; Windows Update and installers do this routinely.",
		match: changed(inventory.ChangeStartMode)},
	{ID: "defense-service-disabled", Severity: sevHigh, Kinds: kinds(inventory.KindModified),
		Why:     "A logging or security service was set to disabled, which blinds the defenders after the next restart.",
		Follows: "Windows Defender Threat Detection Service Disabled",
		match:   defenseDisabled},
	{ID: "service-removed", Severity: sevInfo, Kinds: kinds(inventory.KindRemoved),
		Why:   "The service was removed.",
		match: always},
	{ID: "log-cleared", Severity: sevHigh, Kinds: kinds(inventory.KindTamper),
		Why:     "An event log was cleared, which erases the record of what happened before it.",
		Follows: "Eventlog Cleared; Important Windows Eventlog Cleared; Security Eventlog Cleared",
		match:   func(s *subject, _ *batch) bool { return s.f.Event != nil }},
	{ID: "log-records-missing", Severity: sevHigh, Kinds: kinds(inventory.KindTamper),
		Why:   "System log records disappeared or restarted in a way the log's retention cannot explain: the log was cleared, replaced or edited.",
		match: func(s *subject, _ *batch) bool { return s.f.Event == nil }},
	{ID: "host-unreachable", Severity: sevMedium, Kinds: kinds(inventory.KindUnreachable),
		Why:   "The host stopped answering the poller: an outage, expired credentials, or someone blocking WinRM to blind monitoring.",
		match: always},
	{ID: "host-recovered", Severity: sevLow, Kinds: kinds(inventory.KindRecovered),
		Why:   "The host answers the poller again; anything installed during the outage is reported from its event log.",
		match: always},
	{ID: "scope-dc", Severity: sevMedium, Kinds: kinds(inventory.KindScope),
		Why:   "A domain controller entered or left the monitored set: check that the promotion or removal was planned.",
		match: func(s *subject, _ *batch) bool { return s.f.Host.IsDC() }},
	{ID: "scope-change", Severity: sevLow, Kinds: kinds(inventory.KindScope),
		Why:   "The set of monitored hosts changed.",
		match: func(s *subject, _ *batch) bool { return !s.f.Host.IsDC() }},
	{ID: "allow-expired", Severity: sevMedium, Kinds: kinds(inventory.KindAllowExpired),
		Why:   "An allowlist entry has expired, so findings it used to suppress are reported again; renew or remove it.",
		match: always},

	// Remote execution tools.
	{ID: "psexec-clone", Severity: sevHigh,
		Why:     "PsExec or a clone (PAExec, RemCom, CSExec, winexe) installed its service: a remote command ran as SYSTEM.",
		Follows: "PsExec Service Installation; PAExec Service Installation; RemCom Service Installation; CSExec Service Installation",
		match:   psexecClone},
	{ID: "impacket-psexec", Severity: sevHigh,
		Why:     "A randomly named binary in the Windows folder under a random service name: the Impacket / Metasploit psexec pattern.",
		Follows: "Metasploit Or Impacket Service Installation Via SMB PsExec",
		match:   impacketPsexec},
	{ID: "smbexec", Severity: sevCritical,
		Why:     "The service writes a batch file with echo, runs it and deletes it: Impacket smbexec's way of running one command.",
		Follows: "smbexec.py Service Installation",
		match:   smbexec},
	{ID: "getsystem-pipe", Severity: sevCritical,
		Why:     "The service echoes into a named pipe (or loads a DLL with rundll32 ,a /p:): Meterpreter / Cobalt Strike getsystem impersonating SYSTEM.",
		Follows: "Meterpreter or Cobalt Strike Getsystem Service Installation - System",
		match:   getsystem},
	{ID: "loopback-admin-share", Severity: sevCritical,
		Why:     "The service runs from or writes to \\\\127.0.0.1\\ADMIN$ or C$: the loopback share Cobalt Strike and smbexec use.",
		Follows: "CobaltStrike Service Installations - System; Service Installation in Suspicious Folder",
		match:   loopbackShare},
	{ID: "network-binary", Severity: sevHigh,
		Why:     "The service's program is on a network share, so it runs code staged over SMB.",
		Follows: "Suspicious Service Installation",
		match:   networkBinary},

	// What the service runs.
	{ID: "powershell-encoded", Severity: sevHigh,
		Why:     "The service starts PowerShell with an encoded, hidden or downloading command: a launcher, not a service.",
		Follows: "PowerShell Scripts Installed as Services; Suspicious Service Installation; CobaltStrike Service Installations - System; Invoke-Obfuscation launchers - System",
		match:   powershellEncoded},
	{ID: "powershell-service", Severity: sevMedium,
		Why:     "The service runs PowerShell; real services are programs, so this runs a script as SYSTEM.",
		Follows: "PowerShell Scripts Installed as Services",
		match:   func(s *subject, _ *batch) bool { return s.isPowerShell() }},
	{ID: "cmd-shell", Severity: sevMedium,
		Why:     "The service runs a cmd.exe command line instead of a service program, typical of remote execution.",
		Follows: "Suspicious Service Installation Script",
		match:   cmdShell},
	{ID: "cmd-echo-redirect", Severity: sevHigh,
		Why:     "The service's command line chains commands, echoes or redirects output: a command smuggled in as a service.",
		Follows: "Suspicious Service Installation Script; Suspicious Service Installation",
		match:   cmdEchoRedirect},
	{ID: "not-a-service-program", Severity: sevHigh,
		Why:     "The service runs a console or scripting program that cannot act as a service: it exists to run one command as SYSTEM.",
		Follows: "Suspicious Service Installation Script",
		match:   notAServiceProgram},
	{ID: "lolbin", Severity: sevHigh,
		Why:     "The service runs a Windows binary that proxies code execution (rundll32, regsvr32, mshta, certutil, bitsadmin, ...).",
		Follows: "Invoke-Obfuscation Via Use Rundll32 - System; Invoke-Obfuscation Via Use MSHTA - System; Suspicious Service Installation Script",
		match:   lolbin},
	{ID: "tscon-hijack", Severity: sevHigh,
		Why: "The service runs tscon with /dest: as SYSTEM, which takes over another user's RDP session without their password.",
		match: func(s *subject, _ *batch) bool {
			return containsWord(s.cmdline, "tscon") && strings.Contains(s.args, "/dest:")
		}},
	{ID: "lsass-dump", Severity: sevCritical,
		Why:     "The service dumps LSASS memory (procdump or comsvcs MiniDump): credential theft.",
		Follows: "Credential Dumping Tools Service Execution - System",
		match:   lsassDump},

	// Where the program lives.
	{ID: "user-writable-path", Severity: sevHigh,
		Why:     "The service's program is in a user-writable or temporary folder (Users, AppData, Temp, Public, PerfLogs), where droppers stage payloads.",
		Follows: "Service Installation in Suspicious Folder; Uncommon Service Installation Image Path",
		match:   userWritablePath},
	{ID: "programdata-path", Severity: sevMedium,
		Why:     "The service's program is under ProgramData, which any user may write to by default.",
		Follows: "Service Installation with Suspicious Folder Pattern",
		match: func(s *subject, _ *batch) bool {
			return under(s.exe, `c:\programdata\`) || under(s.dll, `c:\programdata\`)
		}},
	{ID: "no-folder", Severity: sevMedium,
		Why:   "The image path names a bare file with no folder; installers always register a full path, sc.exe one-liners do not.",
		match: func(s *subject, _ *batch) bool { return s.exe != "" && s.dir == "" && !strings.HasPrefix(s.exe, "%") }},
	{ID: "driver-outside-system-trees", Severity: sevMedium,
		Why:   "A kernel driver loads from outside the Windows and Program Files folders, as bring-your-own-driver and rootkit loaders do.",
		match: driverOutsideTrees},
	{ID: "system-folder-drop", Severity: sevMedium,
		Why:   "A plain program was dropped straight into the Windows or System32 folder and installed as a service by an account other than SYSTEM; Windows' own services come with Windows.",
		match: systemFolderDrop},
	{ID: "system-binary-masquerade", Severity: sevHigh,
		Why:     "The program carries the name of a core Windows binary but lives outside System32, a masquerade to pass a glance at the process list.",
		Follows: "System File Execution Location Anomaly",
		match:   masquerade},
	{ID: "unquoted-path", Severity: sevLow,
		Why: "The image path has spaces and no quotes, so a writable parent folder can hijack it.",
		match: func(s *subject, _ *batch) bool {
			return !s.driver && !strings.HasPrefix(s.raw, `"`) && strings.Contains(s.exe, " ")
		}},

	// Who and what it is.
	{ID: "credential-dumper", Severity: sevCritical,
		Why:     "The service is a known credential dumping tool (Mimikatz driver, WCE, gsecdump, pwdump, ...).",
		Follows: "Credential Dumping Tools Service Execution - System; HackTool Service Registration or Execution",
		match:   func(s *subject, _ *batch) bool { return containsAny(s.text(), credDumpers) }},
	{ID: "offensive-tool", Severity: sevCritical,
		Why:     "The service name belongs to a known offensive tool (KrbRelayUp, Sliver, UAC bypass helpers).",
		Follows: "KrbRelayUp Service Installation; Sliver C2 Default Service Installation; HackTool Service Registration or Execution",
		match: func(s *subject, _ *batch) bool {
			return s.anyName(func(n string) bool { return slices.Contains(offensiveNames, n) })
		}},
	{ID: "vulnerable-driver", Severity: sevHigh,
		Why:     "The driver is a known vulnerable or abused driver used to kill EDR or read kernel memory (bring your own vulnerable driver).",
		Follows: "RTCore Suspicious Service Installation; ProcessHacker Privilege Elevation; Moriya Rootkit - System",
		match:   vulnerableDriver},
	{ID: "remote-access-tool", Severity: sevMedium,
		Why:     "A remote-access tool was installed; attackers use them for hands-on access that blends in with IT support.",
		Follows: "Remote Access Tool Services Have Been Installed - System; Anydesk Remote Access Software Service Installation; Mesh Agent Service Installation; TacticalRMM Service Installation; NetSupport Manager Service Install; Remote Utilities Host Service Install",
		match:   func(s *subject, _ *batch) bool { return containsAnyWord(s.text(), remoteAccessTools) }},
	{ID: "capture-or-tunnel-driver", Severity: sevLow,
		Why:     "A packet-capture or tunnel driver was installed: sniffing or a covert network path on a sensitive host.",
		Follows: "Windows Pcap Drivers; Tap Driver Installation",
		match:   func(s *subject, _ *batch) bool { return containsAnyWord(s.text(), captureDrivers) }},
	{ID: "base64-name", Severity: sevHigh,
		Why:   "The service name is a long base64 string: tools smuggle payload chunks through service names and display names.",
		match: func(s *subject, _ *batch) bool { return s.anyNameRaw(looksBase64) }},
	{ID: "random-name", Severity: sevLow,
		Why:   "The service name looks randomly generated, as remote execution tools make them.",
		match: func(s *subject, _ *batch) bool { return s.anyNameRaw(looksRandom) }},
	{ID: "user-account-user-path", Severity: sevHigh,
		Why:   "The service runs as a user account from a user folder: persistence planted by that user, not an installed product.",
		match: func(s *subject, c *batch) bool { return userAccount(s) && userWritablePath(s, c) }},
	{ID: "user-account", Severity: sevLow,
		Why:   "The service runs as a named account, whose password Windows keeps as an LSA secret any local administrator can read.",
		match: func(s *subject, _ *batch) bool { return userAccount(s) }},

	// Context: each raises the severity one level.
	{ID: "context-dc", Raise: true, Kinds: append(slices.Clone(serviceKinds), inventory.KindTamper),
		Why:   "The host is a domain controller: code running there controls the domain, and its logs are the domain's record.",
		match: func(s *subject, _ *batch) bool { return s.f.Host.IsDC() }},
	{ID: "context-ephemeral", Raise: true, Kinds: kinds(inventory.KindEphemeral),
		Why:   "The service was deleted again before the next poll: the create, run, delete pattern of PsExec, smbexec and Cobalt Strike.",
		match: always},
	{ID: "context-installer-not-tier0", Raise: true, Kinds: serviceKinds,
		Why: "The installing account is not a tier-0 administrator, yet it could install a service here.",
		match: func(s *subject, _ *batch) bool {
			a := s.f.Installer
			return a != nil && a.Name != "" && !a.Privileged
		}},
	{ID: "context-log-tamper", Raise: true, Kinds: serviceKinds,
		Why:   "The event log of this host was cleared or lost records within an hour of this change.",
		match: func(s *subject, c *batch) bool { return c.tamperNear(s.f) }},
}

func always(*subject, *batch) bool { return true }

func changed(what string) func(*subject, *batch) bool {
	return func(s *subject, _ *batch) bool { return slices.Contains(s.f.Changed, what) }
}

// defenseServices are services whose disabling blinds logging or protection
// (netprofm: stopping it breaks the EventLog service after a restart).
var defenseServices = []string{
	"eventlog", "netprofm", "windefend", "wdnissvc", "wdnisdrv", "wdfilter", "wdboot", "sense",
	"securityhealthservice", "wscsvc", "mpssvc", "bfe", "sysmon", "sysmon64", "sysmondrv", "winrm",
}

func defenseDisabled(s *subject, _ *batch) bool {
	disabled := s.start == inventory.StartDisabled
	if e := s.f.Event; e != nil && e.ID == inventory.EventStartTypeChanged {
		disabled = strings.HasPrefix(strings.ToLower(e.Field(2)), "disabled") || strings.TrimSpace(e.Field(2)) == "4"
	}
	if !disabled || !slices.Contains(s.f.Changed, inventory.ChangeStartMode) {
		return false
	}
	return s.anyName(func(n string) bool { return slices.Contains(defenseServices, n) }) ||
		(s.f.Event != nil && slices.Contains(defenseServices, strings.ToLower(s.f.Event.Field(3))))
}

var psexecBinaries = []string{"psexesvc.exe", "paexec", "remcomsvc.exe", "csexecsvc.exe", "winexesvc.exe", "xcmdsvc.exe"}
var psexecNames = []string{"psexesvc", "paexec", "remcom", "csexecsvc", "csexec", "winexesvc", "xcmdsvc"}

func psexecClone(s *subject, _ *batch) bool {
	for _, b := range psexecBinaries {
		if strings.HasPrefix(s.base, b) {
			return true
		}
	}
	return s.anyName(func(n string) bool {
		for _, p := range psexecNames {
			if n == p || strings.HasPrefix(n, p+"-") || strings.HasPrefix(n, p+"_") || (p == "paexec" && strings.HasPrefix(n, p)) {
				return true
			}
		}
		return false
	})
}

var (
	impacketExe  = regexp.MustCompile(`^[a-z]{8}\.exe$`)
	impacketName = regexp.MustCompile(`^([a-z]{4}|[a-z]{8}|[a-z]{16})$`)
)

// impacketPsexec: the tools name the service and the binary independently
// at random (letters only); installers name the binary after the product.
func impacketPsexec(s *subject, _ *batch) bool {
	if s.dir != `c:\windows` || s.args != "" || !impacketExe.MatchString(s.base) {
		return false
	}
	stem := strings.TrimSuffix(s.base, ".exe")
	return s.anyName(func(n string) bool { return n != stem && impacketName.MatchString(n) })
}

func smbexec(s *subject, _ *batch) bool {
	if !s.isCmd() || !containsWord(s.args, "echo") {
		return false
	}
	return strings.Contains(s.args, `__output`) || (strings.Contains(s.args, ".bat") && containsWord(s.args, "del"))
}

func getsystem(s *subject, _ *batch) bool {
	if strings.Contains(s.cmdline, `\\.\pipe\`) && (s.isCmd() || containsWord(s.args, "echo")) {
		return true
	}
	return s.base == "rundll32.exe" && strings.Contains(s.args, ",a /p:")
}

func loopbackShare(s *subject, _ *batch) bool {
	return containsAny(s.cmdline, []string{`\\127.0.0.1\`, `\\localhost\`, `\\[::1]\`, `\\::1\`})
}

func networkBinary(s *subject, c *batch) bool {
	return strings.HasPrefix(s.exe, `\\`) && !strings.HasPrefix(s.exe, `\\.\`) && !loopbackShare(s, c)
}

// PowerShell markers of launchers: download cradles, decoding, invocation of
// built strings, obfuscation helpers.
var powershellMarkers = []string{
	"frombase64string", "gzipstream", "deflatestream", "memorystream", "downloadstring", "downloadfile",
	"downloaddata", "net.webclient", "invoke-webrequest", "invoke-restmethod", "start-bitstransfer",
	"invoke-expression", "[scriptblock]::create", "[char]", "-join", "iex ", "iex(", "|iex", "| iex",
	"bypass", "-nop ", "-noprofile ", "-sta ", "-noni ",
}

func powershellEncoded(s *subject, _ *batch) bool {
	if !s.isPowerShell() {
		return false
	}
	toks := tokens(s.args)
	for i, t := range toks {
		if len(t) < 2 || (t[0] != '-' && t[0] != '/') {
			continue
		}
		opt := t[1:]
		if opt == "ec" || (opt[0] == 'e' && strings.HasPrefix("encodedcommand", opt)) {
			return true
		}
		if opt[0] == 'w' && strings.HasPrefix("windowstyle", opt) && i+1 < len(toks) {
			if v := toks[i+1]; strings.HasPrefix("hidden", v) || v == "1" {
				return true
			}
		}
	}
	return containsAny(s.args+" ", powershellMarkers)
}

func cmdShell(s *subject, _ *batch) bool {
	if !s.isCmd() {
		return false
	}
	for _, t := range tokens(s.args) {
		switch t {
		case "/c", "/k", "/r", "/q":
			return true
		}
	}
	return strings.Contains(s.args, "/c ") || strings.Contains(s.args, "/k ")
}

func cmdEchoRedirect(s *subject, _ *batch) bool {
	if !s.isCmd() {
		return false
	}
	return containsWord(s.args, "echo") || containsAny(s.args, []string{">", "|", "&&", " & ", "^&"})
}

// interactivePrograms cannot answer the SCM: a service pointing at one exists
// to run a command once.
var interactivePrograms = []string{
	"cmd.exe", "cmd", "powershell.exe", "pwsh.exe", "powershell_ise.exe", "calc.exe", "notepad.exe", "mspaint.exe",
	"write.exe", "wordpad.exe", "explorer.exe", "taskmgr.exe", "regedit.exe", "conhost.exe", "wscript.exe",
	"cscript.exe", "mshta.exe", "rundll32.exe", "regsvr32.exe", "net.exe", "net1.exe", "sc.exe", "reg.exe",
	"schtasks.exe", "at.exe", "wmic.exe", "whoami.exe", "certutil.exe", "bitsadmin.exe", "tscon.exe",
	"ntdsutil.exe", "vssadmin.exe", "wevtutil.exe", "bcdedit.exe", "nltest.exe", "curl.exe", "ftp.exe",
	"tftp.exe", "forfiles.exe", "msbuild.exe", "installutil.exe", "hh.exe", "bash.exe", "wsl.exe",
}

func notAServiceProgram(s *subject, _ *batch) bool {
	return !s.driver && slices.Contains(interactivePrograms, s.base)
}

var lolbins = []string{
	"rundll32", "regsvr32", "mshta", "certutil", "bitsadmin", "msbuild", "installutil", "regasm", "regsvcs",
	"msxsl", "odbcconf", "cmstp", "wmic", "mavinject", "forfiles", "pcalua", "presentationhost", "ieexec",
	"msdt", "wscript", "cscript", "hh.exe", "control.exe",
}

func lolbin(s *subject, _ *batch) bool {
	base := strings.TrimSuffix(s.base, ".exe")
	if slices.Contains(lolbins, base) || slices.Contains(lolbins, s.base) {
		return true
	}
	if !s.isCmd() && !s.isPowerShell() {
		return false
	}
	for _, l := range lolbins {
		if containsWord(s.args, l) {
			return true
		}
	}
	return false
}

func lsassDump(s *subject, _ *batch) bool {
	t := s.cmdline
	return (containsWord(t, "procdump") || containsWord(t, "procdump64")) && strings.Contains(t, "lsass") ||
		strings.Contains(t, "comsvcs") && strings.Contains(t, "minidump")
}

// userWritableMarkers locate folders a non-administrator can write to.
var userWritableMarkers = []string{
	`\users\`, `\appdata\`, `\temp\`, `\tmp\`, `%temp%`, `%tmp%`, `%appdata%`, `%localappdata%`,
	`%userprofile%`, `%public%`, `\perflogs\`, `\$recycle.bin\`, `\windows\tasks\`, `\windows\tracing\`,
	`\downloads\`, `\desktop\`,
}

func userWritablePath(s *subject, _ *batch) bool {
	return containsAny(s.cmdline, userWritableMarkers) || containsAny(s.dll, userWritableMarkers) ||
		strings.HasPrefix(s.cmdline, `c:\users`) || strings.HasPrefix(s.exe, `c:\temp`)
}

func under(p, dir string) bool { return p != "" && strings.HasPrefix(p, dir) }

func inSystemTrees(p string) bool {
	return under(p, `c:\windows\`) || under(p, `c:\program files\`) || under(p, `c:\program files (x86)\`)
}

func driverOutsideTrees(s *subject, _ *batch) bool {
	return s.driver && s.exe != "" && !inSystemTrees(s.exe)
}

// inboxHosts are Windows' own service programs that live directly in
// System32; a new service using one of them is not a dropped binary.
var inboxHosts = []string{"svchost.exe", "lsass.exe", "services.exe", "dllhost.exe", "spoolsv.exe", "msiexec.exe", "wininit.exe"}

func systemFolderDrop(s *subject, _ *batch) bool {
	if s.driver || !s.installerKnownNotSystem() {
		return false
	}
	switch s.dir {
	case `c:\windows`, `c:\windows\system32`, `c:\windows\syswow64`:
	default:
		return false
	}
	return strings.HasSuffix(s.base, ".exe") && !slices.Contains(inboxHosts, s.base) && !slices.Contains(interactivePrograms, s.base)
}

// coreBinaries exist only in System32 (and SysWOW64); a copy elsewhere is a disguise.
var coreBinaries = []string{
	"svchost.exe", "lsass.exe", "services.exe", "csrss.exe", "winlogon.exe", "smss.exe", "wininit.exe",
	"spoolsv.exe", "lsm.exe", "taskhost.exe", "taskhostw.exe", "dllhost.exe", "conhost.exe", "rundll32.exe",
	"searchindexer.exe", "wmiprvse.exe", "dwm.exe", "sihost.exe", "ctfmon.exe",
}

func masquerade(s *subject, _ *batch) bool {
	if !slices.Contains(coreBinaries, s.base) || s.dir == "" {
		return false
	}
	switch s.dir {
	case `c:\windows\system32`, `c:\windows\syswow64`:
		return false
	}
	return !strings.HasPrefix(s.dir, `c:\windows\winsxs\`)
}

var credDumpers = []string{
	"mimikatz", "mimidrv", "mimilib", "wceservice", "wce service", `\wce.exe`, `\wce64.exe`, "gsecdump", "pwdump",
	"fgdump", "fgexec", "cachedump", "dumpsvc", "servpw", "lsadump", "nanodump", "dumpert", "safetykatz",
}

var offensiveNames = []string{"krbscm", "sliver", "uacbypassedservice", "remotesvc_bypass"}

var vulnerableDrivers = []string{
	"rtcore64.sys", "rtcore32.sys", "dbutil_2_3.sys", "dbutildrv2.sys", "gdrv.sys", "asio.sys", "asio64.sys",
	"asio2.sys", "asrdrv101.sys", "atszio64.sys", "aswarpot.sys", "capcom.sys", "cpuz141.sys", "directio64.sys",
	"elrawdsk.sys", "ene.sys", "glckio2.sys", "iqvw64e.sys", "kprocesshacker.sys", "mhyprot.sys", "mhyprot2.sys",
	"msio64.sys", "ntiolib_x64.sys", "phymem64.sys", "physmem.sys", "rwdrv.sys", "speedfan.sys", "truesight.sys",
	"viragt64.sys", "winio64.sys", "winring0x64.sys", "winring0.sys", "zam64.sys", "zamguard64.sys",
	"gmer64.sys", "blackbonedrv10.sys", "procexp.sys",
}

var vulnerableDriverNames = []string{"rtcore64", "rtcore32", "kprocesshacker2", "kprocesshacker3", "moriyastreamwatchmen", "moriya", "gdrv", "capcom", "zemana", "mhyprot2", "aswarpot"}

func vulnerableDriver(s *subject, _ *batch) bool {
	if slices.Contains(vulnerableDrivers, s.base) {
		return true
	}
	return s.anyName(func(n string) bool { return slices.Contains(vulnerableDriverNames, n) })
}

var captureDrivers = []string{"npcap", "npf.sys", "winpcap", "pcap", "tap0901", "tapwindows", "tap-windows", "wintun", "netfilter2", "windivert"}

var remoteAccessTools = []string{
	"anydesk", "teamviewer", "screenconnect", "connectwise", "atera", "splashtop", "rustdesk", "netsupport",
	"client32.exe", "rutserv", "remote utilities", "rmanservice", "radmin", "rserver3", "logmein",
	"lmiguardian", "gotoassist", "gotomypc", "chromoting", "remoting_host", "tightvnc", "tvnserver", "uvnc",
	"winvnc", "vncserver", "realvnc", "meshagent", "mesh agent", "simplehelp", "tacticalrmm", "tacticalagent",
	"zohoassist", "zoho assist", "ammyy", "dwagent", "dwservice", "action1", "kaseya", "parsec", "supremo",
	"bomgar", "beyondtrust remote", "ngrok", "basupport", "remotepc", "ultraviewer", "aeroadmin",
}

func userAccount(s *subject) bool {
	a := s.account
	switch {
	case a == "", a == "localsystem", a == `.\localsystem`, a == "system", a == "localservice", a == "networkservice":
		return false
	case strings.HasPrefix(a, `nt authority\`), strings.HasPrefix(a, `nt service\`):
		return false
	case strings.HasSuffix(a, "$"): // group-managed service or computer account
		return false
	}
	return true
}

// anyNameRaw is anyName on the names as written (case matters for some tests).
func (s *subject) anyNameRaw(pred func(string) bool) bool {
	var raw []string
	if svc := s.f.Service; svc != nil {
		raw = append(raw, svc.Name, svc.DisplayName)
	}
	if s.f.Event != nil {
		if in, ok := s.f.Event.Install(); ok {
			raw = append(raw, in.ServiceName)
		}
	}
	for _, n := range raw {
		if n != "" && pred(n) {
			return true
		}
	}
	return false
}

var base64Name = regexp.MustCompile(`^[A-Za-z0-9+/]{32,}={0,2}$`)

func looksBase64(n string) bool {
	if !base64Name.MatchString(n) {
		return false
	}
	var upper, lower, digit bool
	for _, c := range n {
		switch {
		case c >= 'A' && c <= 'Z':
			upper = true
		case c >= 'a' && c <= 'z':
			lower = true
		case c >= '0' && c <= '9' || c == '+' || c == '/':
			digit = true
		}
	}
	return upper && lower && digit
}

var hexWithDigits = regexp.MustCompile(`^[0-9a-f]{6,}$`)

// looksRandom flags names without the shape of words: irregular mixed case
// (many case flips in short runs), hex strings, or no vowels at all.
func looksRandom(n string) bool {
	if len(n) < 5 || len(n) > 24 {
		return false
	}
	letters, flips, prevUpper := 0, 0, false
	vowels := 0
	for i := 0; i < len(n); i++ {
		c := n[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case c >= '0' && c <= '9':
			continue
		default:
			return false
		}
		up := c >= 'A' && c <= 'Z'
		if letters > 0 && up != prevUpper {
			flips++
		}
		prevUpper = up
		letters++
		if strings.IndexByte("aeiouyAEIOUY", c) >= 0 {
			vowels++
		}
	}
	if letters == 0 {
		return false
	}
	if flips >= 4 && letters/(flips+1) < 3 {
		return true
	}
	low := strings.ToLower(n)
	if hexWithDigits.MatchString(low) && strings.ContainsAny(low, "0123456789") && strings.ContainsAny(low, "abcdef") {
		return true
	}
	return letters >= 6 && vowels == 0
}
