package inventory

import (
	"strings"
	"testing"
	"unicode"
)

func TestNormalizeImagePath(t *testing.T) {
	tests := []struct {
		in, exe, args string
	}{
		{`"C:\Program Files\VMware\VMware Tools\vmtoolsd.exe"`, `c:\program files\vmware\vmware tools\vmtoolsd.exe`, ``},
		{`"C:\Program Files (x86)\Google\Update\GoogleUpdate.exe" /svc`, `c:\program files (x86)\google\update\googleupdate.exe`, `/svc`},
		{`%SystemRoot%\system32\svchost.exe -k print`, `c:\windows\system32\svchost.exe`, `-k print`},
		{`%systemroot%\System32\dns.exe`, `c:\windows\system32\dns.exe`, ``},
		{`%windir%\system32\foo.exe`, `c:\windows\system32\foo.exe`, ``},
		{`\SystemRoot\System32\drivers\vmusbmouse.sys`, `c:\windows\system32\drivers\vmusbmouse.sys`, ``},
		{`\??\C:\Windows\system32\drivers\x.sys`, `c:\windows\system32\drivers\x.sys`, ``},
		{`\\?\C:\Tools\x.sys`, `c:\tools\x.sys`, ``},
		{`System32\drivers\vmci.sys`, `c:\windows\system32\drivers\vmci.sys`, ``},
		{`system32\VBoxService.exe`, `c:\windows\system32\vboxservice.exe`, ``},
		{`%SystemRoot%\PSEXESVC.EXE`, `c:\windows\psexesvc.exe`, ``},
		{`%COMSPEC% /Q /c echo cd  ^> \\127.0.0.1\C$\__output 2^>^&1 > %TEMP%\execute.bat & %COMSPEC% /Q /c %TEMP%\execute.bat & del %TEMP%\execute.bat`,
			`c:\windows\system32\cmd.exe`, `/Q /c echo cd  ^> \\127.0.0.1\C$\__output 2^>^&1 > %TEMP%\execute.bat & %COMSPEC% /Q /c %TEMP%\execute.bat & del %TEMP%\execute.bat`},
		{`cmd.exe /c echo outmgo > \\.\pipe\outmgo`, `cmd.exe`, `/c echo outmgo > \\.\pipe\outmgo`},
		{`cmd.exe`, `cmd.exe`, ``},
		{`rundll32.exe C:\Users\PEDRO~1.GUS\AppData\Local\Temp\rtcpef.dll,a /p:rtcpef`, `rundll32.exe`, `C:\Users\PEDRO~1.GUS\AppData\Local\Temp\rtcpef.dll,a /p:rtcpef`},
		// Unquoted path with spaces: the program runs to its extension.
		{`C:\Program Files\Foo Bar\foo.exe -service`, `c:\program files\foo bar\foo.exe`, `-service`},
		{`C:\Program Files\Foo Bar\foo.exe`, `c:\program files\foo bar\foo.exe`, ``},
		{`C:\Users\mpowers\Desktop/Mnemosyne.sys`, `c:\users\mpowers\desktop\mnemosyne.sys`, ``},
		{`\\127.0.0.1\ADMIN$\a1b2c3d.exe`, `\\127.0.0.1\admin$\a1b2c3d.exe`, ``},
		{`C:\\Windows\\\\x.exe`, `c:\windows\x.exe`, ``},
		{`  "C:\a b\c.exe"  -x  `, `c:\a b\c.exe`, `-x`},
		{`"unterminated`, `unterminated`, ``},
		{``, ``, ``},
		{"C:\\x\x00.exe", `c:\x.exe`, ``},
		// Letters whose lower case is longer or shorter in UTF-8 do not shift the cut.
		{`C:\ȺȺȺȺȺȺ\x y\z.exe w`, `c:\ⱥⱥⱥⱥⱥⱥ\x y\z.exe`, `w`},
		{`C:\İİİİİİ\a b\c.exe d`, `c:\iiiiii\a b\c.exe`, `d`},
		// Dot folders are resolved: the prefix must not vouch for the real place.
		{`C:\Windows\System32\..\..\Users\Public\evil.exe -x`, `c:\users\public\evil.exe`, `-x`},
		{`"%SystemRoot%\.\System32\..\Temp\a.exe"`, `c:\windows\temp\a.exe`, ``},
		{`\??\C:\..\..\x.sys`, `c:\x.sys`, ``},
		{`\\srv\share\..\..\x.exe`, `\\srv\share\x.exe`, ``},
		{`..\..\x.exe`, `..\..\x.exe`, ``},
		{`a\..\..\x.exe`, `..\x.exe`, ``},
		{`C:\Program Files\Vendor.Name\v1.2\agent.exe`, `c:\program files\vendor.name\v1.2\agent.exe`, ``},
	}
	for _, tt := range tests {
		exe, args := NormalizeImagePath(tt.in)
		if exe != tt.exe || args != tt.args {
			t.Errorf("NormalizeImagePath(%q) = %q, %q; want %q, %q", tt.in, exe, args, tt.exe, tt.args)
		}
	}
}

func TestSameImage(t *testing.T) {
	tests := []struct {
		a, b string
		same bool
	}{
		{`%SystemRoot%\system32\svchost.exe -k netsvcs`, `C:\Windows\System32\svchost.exe -k netsvcs`, true},
		{`"C:\Program Files\X\x.exe"`, `C:\Program Files\X\x.exe`, true},
		{`\SystemRoot\System32\drivers\a.sys`, `System32\drivers\a.sys`, true},
		{`C:\x\a.exe -a`, `C:\x\a.exe -b`, false},
		{`C:\x\a.exe`, `C:\x\b.exe`, false},
		{`C:\x\a.exe  -A   1`, `c:\X\A.EXE -a 1`, true},
	}
	for _, tt := range tests {
		if got := SameImage(tt.a, tt.b); got != tt.same {
			t.Errorf("SameImage(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.same)
		}
	}
}

func TestNormalizeFilePath(t *testing.T) {
	if got := NormalizeFilePath(`"%SystemRoot%\System32\wuaueng.dll"`); got != `c:\windows\system32\wuaueng.dll` {
		t.Errorf("got %q", got)
	}
	if got := BaseName(`c:\windows\system32\x.dll`); got != "x.dll" {
		t.Errorf("BaseName = %q", got)
	}
	if got := DirName(`c:\windows\system32\x.dll`); got != `c:\windows\system32` {
		t.Errorf("DirName = %q", got)
	}
	if got := DirName(`x.dll`); got != `` {
		t.Errorf("DirName = %q", got)
	}
}

func FuzzNormalizeImagePath(f *testing.F) {
	for _, s := range []string{`"C:\a b\c.exe" -x`, `%COMSPEC% /c echo`, `\??\C:\x.sys`, `\\host\share\x.exe`, `"`, `\\`, "\xff\xfe", strings.Repeat(`a\`, 100), `C:\Windows\..\..\x.exe`, `\\srv\..\x.exe`, `.\..\.`, `c:..\x`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		exe, args := NormalizeImagePath(s)
		if exe != strings.ToLower(exe) {
			t.Fatalf("exe %q not lower case", exe)
		}
		if strings.Contains(strings.TrimPrefix(exe, `\\`), `\\`) {
			t.Fatalf("exe %q has doubled separators", exe)
		}
		// Normalising is idempotent on the program part.
		if exe != "" && !strings.ContainsFunc(exe, func(r rune) bool { return unicode.IsSpace(r) || r == '"' || r == 0x85 || r == 0xA0 }) {
			if again, _ := NormalizeImagePath(exe); again != exe {
				t.Fatalf("not idempotent: %q → %q", exe, again)
			}
		}
		_ = args
	})
}

func TestValidHostName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"dc01.corp.example", true},
		{"dc_01.corp.example", true},
		{"dc01", true},
		{strings.Repeat("a", 63) + ".example", true},
		{strings.Repeat("a", 64) + ".example", false},
		{strings.Repeat("a.", 126) + "a", true},
		{strings.Repeat("a.", 127) + "a", false},
		{"", false},
		{"DC01.corp.example", false}, // callers lower-case first
		{"dc01..corp", false},
		{"dc01.corp.", false},
		{"-dc01.corp", false},
		{"dc01-.corp", false},
		{"dc01.corp.example:5986", false},
		{"dc01.corp.example/wsman?x", false},
		{"dc01 corp", false},
		{"dc01\x00.corp", false},
		{"[::1]", false},
	}
	for _, tt := range tests {
		if got := ValidHostName(tt.name); got != tt.ok {
			t.Errorf("ValidHostName(%q) = %v, want %v", tt.name, got, tt.ok)
		}
	}
}

// splitCommandQuadratic is the earlier, obviously correct form of the
// unquoted-path search: every candidate rescanned in full.
func splitCommandQuadratic(p string) (string, string) {
	if p[0] == '"' {
		return splitCommand(p)
	}
	sp := strings.IndexAny(p, " \t")
	if sp < 0 {
		return p, ""
	}
	first := strings.ToLower(p[:sp])
	if hasExeExtension(first) || !strings.ContainsAny(first, `\/`) {
		return p[:sp], p[sp:]
	}
	lower := lowerASCII(p)
	for i := sp; i < len(lower); i++ {
		if lower[i] != ' ' && lower[i] != '\t' {
			continue
		}
		cand := lower[:i]
		if strings.ContainsAny(cand, `"<>|&^,`) || strings.Contains(cand, " /") || strings.Contains(cand, " -") {
			break
		}
		if hasExeExtension(cand) {
			return p[:i], p[i:]
		}
	}
	if hasExeExtension(lower) && !strings.ContainsAny(lower, `"<>|&^,`) && !strings.Contains(lower, " /") && !strings.Contains(lower, " -") {
		return p, ""
	}
	return p[:sp], p[sp:]
}

func TestSplitCommandLinear(t *testing.T) {
	inputs := []string{
		`C:\Program Files\Foo Bar\foo.exe -service`, `C:\Program Files\Foo Bar\foo.exe`, `C:\a b\c.exe /x d.exe e`,
		`C:\a b\c d.exe`, `C:\a b,c\d.exe x`, `C:\a -b\c.exe x`, `C:\a\b c.exe -x c.exe y`, `C:\a b\c.exe"x d.exe`,
		`C:\x /y\z.exe w`, "C:\\a\tb\\c.exe\td", `C:\a b\c.exe  `, `C:\a b -`, `C:\a b /`, `C:\a b\c.ex e.exe f`,
	}
	for _, in := range inputs {
		e1, a1 := splitCommand(in)
		e2, a2 := splitCommandQuadratic(in)
		if e1 != e2 || a1 != a2 {
			t.Errorf("splitCommand(%q) = %q, %q; want %q, %q", in, e1, a1, e2, a2)
		}
	}
}

// BenchmarkNormalizeImagePathSpaces: a 4 KB unquoted path of spaces with no
// extension (every space a candidate) once cost a full rescan per space.
func BenchmarkNormalizeImagePathSpaces(b *testing.B) {
	hostile := `C:\x\` + strings.Repeat("a ", 2045)
	for b.Loop() {
		NormalizeImagePath(hostile)
	}
}

func FuzzSplitCommandMatchesReference(f *testing.F) {
	for _, s := range []string{`C:\a b\c.exe -x`, `C:\a b\c d.exe /y`, `C:\a,b c.exe`, `x\y z.sys w`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if s == "" {
			return
		}
		e1, a1 := splitCommand(s)
		e2, a2 := splitCommandQuadratic(s)
		if e1 != e2 || a1 != a2 {
			t.Fatalf("splitCommand(%q) = %q, %q; reference %q, %q", s, e1, a1, e2, a2)
		}
	})
}
