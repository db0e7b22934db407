package triage

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/svcwatch/svcwatch/internal/config"
	"github.com/svcwatch/svcwatch/internal/inventory"
)

// allowance is one compiled allowlist entry (from config or built in).
type allowance struct {
	Label   string // "allow[3]" or "default:defender-mpksl"
	Index   int    // position in config.Allow; -1 for built-in entries
	Reason  string
	Owner   string
	Expires string    // as written, YYYY-MM-DD
	until   time.Time // first instant the entry no longer applies (zero: never)

	name, account *regexp.Regexp
	path          *regexp.Regexp
	pathIsRegex   bool
	hosts, groups []*regexp.Regexp
	kinds         []inventory.Kind
	extra         func(*subject) bool // built-in entries only
	key           string              // content fingerprint for the expiry finding's ID
}

// Expired is an allowlist entry past its expiry date.
type Expired struct {
	Label   string
	Index   int
	Expires string
	Owner   string
	Reason  string
}

// defaultKinds are what an entry without kinds applies to. Modified is left
// out on purpose: a binPath hijack of an expected service must still be
// reported unless the operator lists modified explicitly.
var defaultKinds = []inventory.Kind{inventory.KindInstalled, inventory.KindEphemeral, inventory.KindSilent, inventory.KindRemoved}

// serviceKindsAll are the kinds about one service.
var serviceKindsAll = []inventory.Kind{inventory.KindInstalled, inventory.KindEphemeral, inventory.KindSilent, inventory.KindModified, inventory.KindRemoved}

var knownKinds = inventory.AllowableKinds()

const dateLayout = "2006-01-02"

// compileAllow validates and compiles config entries; every error names the
// entry's index and field.
func compileAllow(entries []config.Allow) ([]*allowance, error) {
	var errs []error
	out := make([]*allowance, 0, len(entries))
	for i, e := range entries {
		label := fmt.Sprintf("allow[%d]", i)
		bad := func(field, format string, args ...any) {
			errs = append(errs, fmt.Errorf("triage: %s.%s: %s", label, field, fmt.Sprintf(format, args...)))
		}
		a := &allowance{Label: label, Index: i, Reason: e.Reason, Owner: e.Owner, Expires: e.Expires}
		var err error
		if a.name, err = compileGlob(e.Name); err != nil {
			bad("name", "%v", err)
		}
		if a.account, err = compileGlob(e.Account); err != nil {
			bad("account", "%v", err)
		}
		if a.path, a.pathIsRegex, err = compilePath(e.Path); err != nil {
			bad("path", "%v; fix the regular expression, or write a glob without the surrounding slashes", err)
		}
		for j, h := range e.Hosts {
			g, err := compileGlob(h)
			if err != nil || h == "" {
				bad(fmt.Sprintf("hosts[%d]", j), "%q is not a host name glob", h)
				continue
			}
			a.hosts = append(a.hosts, g)
		}
		for j, h := range e.Groups {
			g, err := compileGlob(h)
			if err != nil || h == "" {
				bad(fmt.Sprintf("groups[%d]", j), "%q is not a group, OU or reason glob", h)
				continue
			}
			a.groups = append(a.groups, g)
		}
		for j, k := range e.Kinds {
			kind := inventory.Kind(strings.ToLower(strings.TrimSpace(k)))
			if !slices.Contains(knownKinds, kind) {
				bad(fmt.Sprintf("kinds[%d]", j), "%q is not a finding kind (want one of %s)", k, inventory.JoinKinds(knownKinds))
				continue
			}
			a.kinds = append(a.kinds, kind)
		}
		if len(a.kinds) == 0 {
			a.kinds = defaultKinds
		}
		serviceMatch := e.Name != "" || e.Path != "" || e.Account != ""
		onlyHostKinds := len(e.Kinds) > 0 && !slices.ContainsFunc(a.kinds, func(k inventory.Kind) bool { return slices.Contains(serviceKindsAll, k) })
		if !serviceMatch && !(onlyHostKinds && len(a.hosts)+len(a.groups) > 0) {
			bad("name", "the entry would match every service; set at least one of name, path or account (or kinds of host findings with hosts or groups)")
		}
		if strings.TrimSpace(e.Reason) == "" {
			bad("reason", "is empty; say why this is expected, so the next responder can judge the exception")
		}
		if e.Expires != "" {
			t, err := time.Parse(dateLayout, e.Expires)
			if err != nil {
				bad("expires", "%q is not a date; write YYYY-MM-DD, e.g. 2027-06-30", e.Expires)
			} else {
				a.until = t.AddDate(0, 0, 1) // valid through the named day (UTC)
			}
		}
		a.key = strings.Join([]string{e.Name, e.Path, e.Account, strings.Join(e.Hosts, ","), strings.Join(e.Groups, ","), strings.Join(e.Kinds, ","), e.Expires}, "\x1f")
		out = append(out, a)
	}
	return out, errors.Join(errs...)
}

// compileGlob turns a case-insensitive glob (* and ?) into an anchored
// regexp; "" gives nil (matches anything).
func compileGlob(g string) (*regexp.Regexp, error) {
	if g == "" {
		return nil, nil
	}
	if len(g) > 1024 {
		return nil, fmt.Errorf("glob longer than 1024 characters")
	}
	var b strings.Builder
	b.WriteString(`(?is)^`)
	for _, r := range g {
		switch r {
		case '*':
			b.WriteString(`.*`)
		case '?':
			b.WriteString(`.`)
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	b.WriteString(`$`)
	return regexp.Compile(b.String())
}

// compilePath compiles a path pattern: /regex/ (case-insensitive) or a glob
// normalised like image paths (%SystemRoot%, \SystemRoot\, quotes, case).
func compilePath(p string) (*regexp.Regexp, bool, error) {
	if p == "" {
		return nil, false, nil
	}
	if len(p) >= 2 && p[0] == '/' && p[len(p)-1] == '/' {
		re, err := regexp.Compile(`(?i)` + p[1:len(p)-1])
		if err != nil {
			return nil, true, fmt.Errorf("%s does not compile as a regular expression (%v)", p, err)
		}
		return re, true, nil
	}
	re, err := compileGlob(normalizeGlob(p))
	return re, false, err
}

// normalizeGlob spells a path glob the way NormalizeImagePath spells paths;
// wildcards survive because they are not path prefixes.
func normalizeGlob(p string) string {
	exe, args := inventory.NormalizeImagePath(p)
	if args != "" {
		return exe + " " + strings.ToLower(args)
	}
	return exe
}

// typeUserServiceInstance is SERVICE_USERSERVICE_INSTANCE: the SCM sets it
// on the per-user copies it makes of a template at logon. A service created
// with sc.exe type= userown / usershare is a template (0x50 / 0x60), not an
// instance, and is not covered by the per-user default.
const typeUserServiceInstance = 0x80

// perUserInstanceName is "<template>_<logon LUID in hex>", e.g. CDPUserSvc_4a8c1.
var perUserInstanceName = regexp.MustCompile(`(?i)^[a-z0-9]+_[0-9a-f]{4,8}$`)

// builtinAllow is the default allowlist of known benign noise
// (config default_allow: false turns it off).
func builtinAllow() []*allowance {
	mustGlob := func(g string) *regexp.Regexp {
		re, err := compileGlob(g)
		if err != nil {
			panic(err)
		}
		return re
	}
	return []*allowance{
		{
			Label: "default:defender-mpksl", Index: -1, Owner: "svcwatch defaults",
			Reason: "Microsoft Defender definition-update driver (MpKslDrv), reinstalled under a new random MpKsl name with each engine update",
			name:   mustGlob("MpKsl*"),
			path:   mustGlob(`c:\programdata\microsoft\windows defender\definition updates\*\mpksl*.sys`),
			kinds:  []inventory.Kind{inventory.KindInstalled, inventory.KindEphemeral, inventory.KindSilent, inventory.KindRemoved},
			extra:  func(s *subject) bool { return s.driver },
		},
		{
			Label: "default:per-user-service", Index: -1, Owner: "svcwatch defaults",
			Reason: "per-user service instance (NAME_xxxxx) that Windows creates from a template at each interactive logon",
			name:   mustGlob("*_*"),
			kinds:  []inventory.Kind{inventory.KindInstalled, inventory.KindEphemeral, inventory.KindSilent, inventory.KindRemoved},
			extra: func(s *subject) bool {
				return s.svcType&typeUserServiceInstance != 0 && perUserInstanceName.MatchString(s.keyName()) &&
					s.dir == `c:\windows\system32` && (s.base == "svchost.exe" || s.base == "credentialenrollmentmanager.exe") &&
					(s.dll == "" || inventory.DirName(s.dll) == `c:\windows\system32`)
			},
		},
	}
}

// matches reports whether the entry covers the finding (expiry aside).
func (a *allowance) matches(s *subject) bool {
	if !slices.Contains(a.kinds, s.kind) {
		return false
	}
	if !a.inScope(s.f.Host) {
		return false
	}
	if a.name != nil && !s.anyName(a.name.MatchString) {
		return false
	}
	if a.account != nil && !a.account.MatchString(s.account) {
		return false
	}
	if a.path != nil && !a.matchPath(s) {
		return false
	}
	if a.extra != nil && !a.extra(s) {
		return false
	}
	return true
}

func (a *allowance) matchPath(s *subject) bool {
	cands := []string{s.exe, s.cmdline}
	if a.pathIsRegex {
		cands = append(cands, s.raw)
	}
	if s.dll != "" {
		cands = append(cands, s.dll)
	}
	for _, c := range cands {
		if c != "" && a.path.MatchString(c) {
			return true
		}
	}
	return false
}

func (a *allowance) inScope(h inventory.Host) bool {
	if len(a.hosts) == 0 && len(a.groups) == 0 {
		return true
	}
	short, _, _ := strings.Cut(h.Name, ".")
	for _, g := range a.hosts {
		if g.MatchString(h.Name) || g.MatchString(short) {
			return true
		}
	}
	for _, g := range a.groups {
		for _, r := range h.Reasons {
			if g.MatchString(string(r.Kind)) || (r.Detail != "" && g.MatchString(r.Detail)) || g.MatchString(r.String()) {
				return true
			}
		}
	}
	return false
}

func (a *allowance) expired(now time.Time) bool {
	return !a.until.IsZero() && !now.Before(a.until)
}

func (a *allowance) describe() string {
	var parts []string
	if a.Reason != "" {
		parts = append(parts, a.Reason)
	}
	if a.Owner != "" {
		parts = append(parts, "owner "+a.Owner)
	}
	if a.Expires != "" {
		parts = append(parts, "expires "+a.Expires)
	}
	if len(parts) == 0 {
		return a.Label
	}
	return a.Label + ": " + strings.Join(parts, "; ")
}
