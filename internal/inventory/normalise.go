package inventory

import (
	"strings"
	"unicode/utf8"
)

// windowsDir is the canonical spelling of the Windows directory after
// normalisation. The real drive letter is unknown to the poller and does not
// matter for comparison: every spelling of SystemRoot maps here.
const windowsDir = `c:\windows`

// maxPathLen bounds the work done on an image path from a host.
const maxPathLen = 32 << 10

// prefixes SCM and installers use for the Windows directory and friends,
// lower case, longest first where one is a prefix of another.
var pathPrefixes = []struct{ from, to string }{
	{`\??\`, ``},
	{`\\?\`, ``},
	{`\systemroot\`, windowsDir + `\`},
	{`%systemroot%\`, windowsDir + `\`},
	{`%windir%\`, windowsDir + `\`},
	{`%programfiles(x86)%\`, `c:\program files (x86)\`},
	{`%programfiles%\`, `c:\program files\`},
	{`%programw6432%\`, `c:\program files\`},
	{`%commonprogramfiles%\`, `c:\program files\common files\`},
	{`%programdata%\`, `c:\programdata\`},
	{`%allusersprofile%\`, `c:\programdata\`},
	{`%systemdrive%\`, `c:\`},
	// Relative paths are relative to SystemRoot (drivers are usually written so).
	{`system32\`, windowsDir + `\system32\`},
	{`syswow64\`, windowsDir + `\syswow64\`},
}

// NormalizeImagePath splits a service image path (or command line) into the
// executable and its arguments and puts the executable in a canonical form, so
// that the many spellings Windows accepts compare equal:
//
//	"C:\Program Files\X\x.exe" -svc       → c:\program files\x\x.exe, -svc
//	%SystemRoot%\System32\svchost.exe -k  → c:\windows\system32\svchost.exe, -k
//	\SystemRoot\System32\drivers\x.sys    → c:\windows\system32\drivers\x.sys
//	\??\C:\Windows\x.sys                  → c:\windows\x.sys
//	System32\drivers\x.sys                → c:\windows\system32\drivers\x.sys
//	%COMSPEC% /c echo                     → c:\windows\system32\cmd.exe, /c echo
//
// The executable is lower case with forward slashes turned into backslashes
// and doubled separators collapsed; the arguments are trimmed but keep their
// case (encoded PowerShell is case sensitive). A path without a folder
// ("cmd.exe") stays without one.
func NormalizeImagePath(p string) (exe, args string) {
	if len(p) > maxPathLen {
		p = p[:maxPathLen]
	}
	if !utf8.ValidString(p) {
		p = strings.ToValidUTF8(p, "\uFFFD")
	}
	p = strings.TrimSpace(strings.ReplaceAll(p, "\x00", ""))
	if p == "" {
		return "", ""
	}
	exe, args = splitCommand(p)
	return canonicalExe(exe), strings.TrimSpace(args)
}

// NormalizeFilePath canonicalises a path that has no arguments (ServiceDll).
func NormalizeFilePath(p string) string {
	p = strings.TrimSpace(strings.ReplaceAll(p, "\x00", ""))
	if len(p) > maxPathLen {
		p = p[:maxPathLen]
	}
	p = strings.Trim(p, `"`)
	return canonicalExe(p)
}

// executable extensions that end the program part of an unquoted command line.
var exeExtensions = []string{".exe", ".sys", ".dll", ".com", ".bat", ".cmd", ".scr", ".ps1", ".vbs", ".js"}

// splitCommand separates the program from its arguments the way the SCM
// would find it: a quoted program ends at the closing quote; an unquoted one at
// its first space, unless that leaves a folder path without an extension
// ("C:\Program Files\X\x.exe"), in which case the program runs to the first
// executable extension followed by a space, provided nothing before it looks
// like an argument.
func splitCommand(p string) (string, string) {
	if p[0] == '"' {
		if end := strings.IndexByte(p[1:], '"'); end >= 0 {
			return p[1 : 1+end], p[2+end:]
		}
		return strings.Trim(p, `"`), ""
	}
	sp := strings.IndexAny(p, " \t")
	if sp < 0 {
		return p, ""
	}
	first := strings.ToLower(p[:sp])
	if hasExeExtension(first) || !strings.ContainsAny(first, `\/`) {
		return p[:sp], p[sp:]
	}
	// Lower-case ASCII only: the indexes found in lower cut p, and
	// strings.ToLower changes the byte length of some letters (U+023A Ⱥ
	// becomes 3 bytes), which made a hostile image path cut p out of range.
	lower := lowerASCII(p)
	// A candidate lower[:i] stops qualifying once it holds a shell
	// metacharacter, " /" or " -"; since candidates only grow, that is from a
	// fixed length on (limit), found once: the scan stays linear even for a
	// hostile path of thousands of spaces.
	limit := len(lower) + 1
	if m := strings.IndexAny(lower, `"<>|&^,`); m >= 0 {
		limit = min(limit, m+1)
	}
	for _, arg := range []string{" /", " -"} {
		if m := strings.Index(lower, arg); m >= 0 {
			limit = min(limit, m+len(arg))
		}
	}
	for i := sp; i < len(lower) && i < limit; i++ {
		if lower[i] != ' ' && lower[i] != '\t' {
			continue
		}
		if (i >= 3 && lower[i-3] == '.' || i >= 4 && lower[i-4] == '.') && hasExeExtension(lower[:i]) { // extensions are 2 or 3 letters
			return p[:i], p[i:]
		}
	}
	if hasExeExtension(lower) && !strings.ContainsAny(lower, `"<>|&^,`) && !strings.Contains(lower, " /") && !strings.Contains(lower, " -") {
		return p, ""
	}
	return p[:sp], p[sp:]
}

// lowerASCII lower-cases A-Z and keeps every other byte, so indexes into the
// result are indexes into s.
func lowerASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + ('a' - 'A')
		}
	}
	return string(b)
}

func hasExeExtension(s string) bool {
	for _, ext := range exeExtensions {
		if strings.HasSuffix(s, ext) {
			return true
		}
	}
	return false
}

func canonicalExe(exe string) string {
	e := strings.ToLower(strings.TrimSpace(exe))
	e = strings.ReplaceAll(e, "/", `\`)
	switch e {
	case "%comspec%":
		return windowsDir + `\system32\cmd.exe`
	}
	unc := strings.HasPrefix(e, `\\`) && !strings.HasPrefix(e, `\\?\`)
	for _, pre := range pathPrefixes {
		if strings.HasPrefix(e, pre.from) {
			e = pre.to + e[len(pre.from):]
			unc = false
			// \??\ may precede another prefix (\??\C:\..., rarely \??\%SystemRoot%).
			if pre.from == `\??\` || pre.from == `\\?\` {
				continue
			}
			break
		}
	}
	if strings.HasPrefix(e, "%systemroot%") || strings.HasPrefix(e, "%windir%") {
		e = windowsDir + e[strings.IndexByte(e[1:], '%')+2:]
	}
	// Collapse doubled separators (keep a UNC path's leading pair).
	lead := ""
	if unc {
		lead, e = `\\`, strings.TrimLeft(e, `\`)
	}
	for strings.Contains(e, `\\`) {
		e = strings.ReplaceAll(e, `\\`, `\`)
	}
	return lead + dropDotSegments(e, unc)
}

// dropDotSegments resolves "." and ".." folders as Windows does when it
// opens the file, so c:\windows\..\users\public\x.exe is judged by where
// it really is, not by its c:\windows prefix. The drive (or a UNC path's
// server and share) is never removed; a relative path keeps leading "..".
func dropDotSegments(p string, unc bool) string {
	if !strings.Contains(p, ".") {
		return p
	}
	segs := strings.Split(p, `\`)
	root := 0
	switch {
	case unc:
		root = min(2, len(segs))
	case len(segs[0]) == 2 && segs[0][1] == ':':
		root = 1
	}
	out := append(make([]string, 0, len(segs)), segs[:root]...)
	changed := false
	for _, s := range segs[root:] {
		switch s {
		case ".":
			changed = true
			continue
		case "..":
			switch {
			case len(out) > root && out[len(out)-1] != "..":
				out = out[:len(out)-1]
				changed = true
				continue
			case root > 0:
				changed = true
				continue // above the root is the root
			}
		}
		out = append(out, s)
	}
	if !changed {
		return p
	}
	return strings.Join(out, `\`)
}

// BaseName is the file name of a normalised path ("c:\x\y.exe" → "y.exe").
func BaseName(p string) string {
	if i := strings.LastIndexAny(p, `\/`); i >= 0 {
		return p[i+1:]
	}
	return p
}

// DirName is the folder of a normalised path without the trailing separator,
// or "" when the path has no folder.
func DirName(p string) string {
	if i := strings.LastIndexAny(p, `\/`); i >= 0 {
		return p[:i]
	}
	return ""
}

// SameImage reports whether two image paths name the same program with the
// same arguments once normalised (argument case is ignored).
func SameImage(a, b string) bool {
	ea, aa := NormalizeImagePath(a)
	eb, ab := NormalizeImagePath(b)
	return ea == eb && strings.EqualFold(strings.Join(strings.Fields(aa), " "), strings.Join(strings.Fields(ab), " "))
}
