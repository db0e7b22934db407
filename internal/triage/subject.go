package triage

import (
	"regexp"
	"slices"
	"strings"

	"github.com/svcwatch/svcwatch/internal/inventory"
)

// Event IDs triage understands besides the System-log ones in inventory.
const eventSecurityServiceInstalled = 4697 // Security log: a service was installed

// subject is a finding reduced to what heuristics and allowlist entries look
// at, lower-cased and normalised once.
type subject struct {
	f       *inventory.Finding
	kind    inventory.Kind
	names   []string // key name, display name, the event's service name (lower case)
	raw     string   // image path as written (lower case)
	exe     string   // normalised program (lower case)
	base    string   // its file name
	dir     string   // its folder
	args    string   // arguments, lower case
	cmdline string   // exe + " " + args
	dll     string   // normalised ServiceDll
	account string   // lower case
	svcType uint32
	start   inventory.StartMode
	driver  bool

	installerSID string
	// content is true when the service's definition is new to us (installed,
	// ephemeral, silent) or its program, DLL or account changed (other than a
	// product updating itself into a new version folder): only then do
	// heuristics about what it runs apply.
	content bool
	// versionBump: the image path changed only in version-numbered folders.
	versionBump bool
}

func newSubject(f *inventory.Finding) *subject {
	s := &subject{f: f, kind: f.Kind}
	svc := f.Service
	if svc == nil {
		svc = f.Previous
	}
	var in inventory.Install
	if f.Event != nil {
		in, _ = f.Event.Install()
		s.installerSID = f.Event.SID
	}
	if f.Installer != nil && f.Installer.SID != "" {
		s.installerSID = f.Installer.SID
	}
	path, account := in.ImagePath, in.Account
	if svc != nil {
		s.names = appendName(s.names, svc.Name)
		s.names = appendName(s.names, svc.DisplayName)
		if svc.ImagePath != "" {
			path = svc.ImagePath
		}
		if svc.Account != "" || account == "" {
			account = svc.Account
		}
		s.dll = inventory.NormalizeFilePath(svc.ServiceDLL)
		s.svcType = svc.Type
		s.start = svc.StartMode
	} else if f.Event != nil && f.Event.ID == inventory.EventServiceInstalled {
		s.start, s.svcType = inventory.ParseInstallFields(in.StartType, in.ServiceType)
	}
	s.names = appendName(s.names, in.ServiceName)
	s.raw = strings.ToLower(strings.TrimSpace(path))
	exe, args := inventory.NormalizeImagePath(path)
	s.exe, s.args = exe, strings.ToLower(args)
	s.base, s.dir = inventory.BaseName(exe), inventory.DirName(exe)
	s.cmdline = strings.TrimSpace(s.exe + " " + s.args)
	s.account = strings.ToLower(strings.TrimSpace(account))
	s.driver = s.svcType&(inventory.TypeKernelDriver|inventory.TypeFileSystemDriver) != 0
	switch f.Kind {
	case inventory.KindInstalled, inventory.KindEphemeral, inventory.KindSilent:
		s.content = true
	case inventory.KindModified:
		for _, c := range f.Changed {
			if c != inventory.ChangeStartMode {
				s.content = true
			}
		}
		if f.Previous != nil && f.Service != nil && slices.Contains(f.Changed, inventory.ChangeImagePath) &&
			!slices.Contains(f.Changed, inventory.ChangeServiceDLL) && !slices.Contains(f.Changed, inventory.ChangeAccount) &&
			versionBump(f.Previous.ImagePath, f.Service.ImagePath) {
			s.versionBump, s.content = true, false
		}
	}
	return s
}

var versionSegment = regexp.MustCompile(`^[a-z]*[0-9][0-9a-z._-]*$`)

// versionBump reports whether two image paths differ only in folders named
// like versions (…\Application\118.0.2088.46\x.exe → …\119.0.1\x.exe) inside
// the Windows, Program Files or ProgramData trees, with the same arguments:
// a product updating itself.
func versionBump(old, cur string) bool {
	oe, oa := inventory.NormalizeImagePath(old)
	ce, ca := inventory.NormalizeImagePath(cur)
	if oe == ce || !strings.EqualFold(strings.Join(strings.Fields(oa), " "), strings.Join(strings.Fields(ca), " ")) {
		return false
	}
	if !(inSystemTrees(ce) || under(ce, `c:\programdata\`)) {
		return false
	}
	ol, cs := strings.Split(oe, `\`), strings.Split(ce, `\`)
	if len(ol) != len(cs) || ol[len(ol)-1] != cs[len(cs)-1] {
		return false
	}
	for i := range ol {
		if ol[i] != cs[i] && !(versionSegment.MatchString(ol[i]) && versionSegment.MatchString(cs[i])) {
			return false
		}
	}
	return true
}

func appendName(names []string, n string) []string {
	n = strings.ToLower(strings.TrimSpace(n))
	if n == "" {
		return names
	}
	for _, have := range names {
		if have == n {
			return names
		}
	}
	return append(names, n)
}

// keyName is the service's key name (lower case): the registry key, which
// the display name and a 7045's service name may differ from.
func (s *subject) keyName() string {
	switch {
	case s.f.Service != nil:
		return strings.ToLower(s.f.Service.Name)
	case s.f.Previous != nil:
		return strings.ToLower(s.f.Previous.Name)
	}
	if len(s.names) > 0 {
		return s.names[len(s.names)-1]
	}
	return ""
}

// text is everything a name or path pattern may be found in.
func (s *subject) text() string {
	return strings.Join(s.names, " ") + " " + s.cmdline + " " + s.dll
}

// anyName reports whether a name satisfies pred.
func (s *subject) anyName(pred func(string) bool) bool {
	for _, n := range s.names {
		if pred(n) {
			return true
		}
	}
	return false
}

func (s *subject) isCmd() bool {
	return s.base == "cmd.exe" || s.base == "cmd" || containsWord(s.cmdline, "cmd.exe") || strings.Contains(s.args, "%comspec%")
}

func (s *subject) isPowerShell() bool {
	return containsWord(s.cmdline, "powershell") || containsWord(s.cmdline, "pwsh") ||
		containsWord(s.cmdline, "powershell.exe") || containsWord(s.cmdline, "pwsh.exe")
}

// installerIsSystem reports whether the installer is known to be the machine
// itself (SYSTEM, LOCAL SERVICE, NETWORK SERVICE): Windows setup, roles, updates.
func (s *subject) installerKnownNotSystem() bool {
	switch strings.ToUpper(s.installerSID) {
	case "", "S-1-5-18", "S-1-5-19", "S-1-5-20":
		return false
	}
	return true
}

// containsWord reports whether needle occurs in hay with no letter or digit
// right before it (so "atera" does not match "lateral").
func containsWord(hay, needle string) bool {
	for from := 0; from <= len(hay)-len(needle); {
		i := strings.Index(hay[from:], needle)
		if i < 0 {
			return false
		}
		i += from
		if i == 0 || !isAlnum(hay[i-1]) {
			return true
		}
		from = i + 1
	}
	return false
}

func containsAnyWord(hay string, needles []string) bool {
	for _, n := range needles {
		if containsWord(hay, n) {
			return true
		}
	}
	return false
}

func containsAny(hay string, needles []string) bool {
	for _, n := range needles {
		if strings.Contains(hay, n) {
			return true
		}
	}
	return false
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// tokens splits arguments on white space.
func tokens(s string) []string { return strings.Fields(s) }
