package directory

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/svcwatch/svcwatch/internal/inventory"
)

// AD userAccountControl bits and matching rules.
const (
	uacAccountDisable   = 0x2
	uacServerTrust      = 0x2000     // writable domain controller
	uacPartialSecrets   = 0x04000000 // read-only domain controller
	ruleBitAnd          = "1.2.840.113556.1.4.803"
	ruleInChain         = "1.2.840.113556.1.4.1941"
	maxHosts            = 100000
	filterEnabled       = "(!(userAccountControl:" + ruleBitAnd + ":=2))"
	filterComputer      = "(objectCategory=computer)"
	filterDomainControl = "(|(userAccountControl:" + ruleBitAnd + ":=8192)(userAccountControl:" + ruleBitAnd + ":=67108864))"
)

var hostAttrs = []string{"dNSHostName", "sAMAccountName", "operatingSystem", "userAccountControl", "lastLogonTimestamp"}

// Result is one discovery: the monitored hosts sorted by name, and what the
// operator should know (hosts that could not be used, selectors that matched
// nothing).
type Result struct {
	Hosts    []inventory.Host
	Warnings []string
}

type exclusion struct {
	raw    string
	filter string // "(...)": an LDAP filter
	dn     string // normalised DN
	name   string // lower-case host name or short name
}

func parseExclusion(x string) (exclusion, error) {
	x = strings.TrimSpace(x)
	ex := exclusion{raw: x}
	switch {
	case strings.HasPrefix(x, "("):
		if _, err := ldap.CompileFilter(x); err != nil {
			return ex, fmt.Errorf("directory: targets.exclude: %q is not a valid LDAP filter: %w", x, err)
		}
		ex.filter = x
	case strings.Contains(x, "="):
		n, err := normDN(x)
		if err != nil {
			return ex, fmt.Errorf("directory: targets.exclude: %q is neither a host name, a DN nor a filter in parentheses: %w", x, err)
		}
		ex.dn = n
	case x == "":
		return ex, fmt.Errorf("directory: targets.exclude: empty entry")
	default:
		ex.name = strings.ToLower(strings.TrimSuffix(x, "."))
	}
	return ex, nil
}

func normDN(dn string) (string, error) {
	p, err := ldap.ParseDN(dn)
	if err != nil {
		return "", err
	}
	var rdns []string
	for _, r := range p.RDNs {
		var parts []string
		for _, a := range r.Attributes {
			parts = append(parts, strings.ToLower(a.Type)+"="+strings.ToLower(a.Value))
		}
		slices.Sort(parts)
		rdns = append(rdns, strings.Join(parts, "+"))
	}
	return strings.Join(rdns, ","), nil
}

// selector is one way a host gets into the monitored set.
type selector struct {
	reason inventory.Reason // Kind dc is refined to rodc by userAccountControl
	base   string
	filter string
	// missingOK: a missing base (OU) is a warning, not a failed discovery
	missingOK bool
}

// Discover reads the monitored host set from AD. Any failed query fails the
// whole discovery (a partial set would look like hosts leaving scope); the
// caller keeps its last good set.
func (d *Directory) Discover(ctx context.Context) (Result, error) {
	if !d.cfg.Enabled() {
		return d.discoverStatic(), nil
	}
	c, err := d.connect(ctx)
	if err != nil {
		return Result{}, fmt.Errorf("directory: discover: %w", err)
	}
	defer c.close()
	base, err := d.baseDN(c)
	if err != nil {
		return Result{}, fmt.Errorf("directory: discover: %w", err)
	}
	var res Result
	hosts := map[string]*inventory.Host{}
	warned := map[string]bool{}
	warn := func(format string, args ...any) {
		w := fmt.Sprintf(format, args...)
		if !warned[w] {
			warned[w] = true
			res.Warnings = append(res.Warnings, w)
			d.log.Warn("directory: " + w)
		}
	}
	exclude := d.exclusionFilter()

	sels, err := d.selectors(c, base, warn)
	if err != nil {
		return Result{}, fmt.Errorf("directory: discover: %w", err)
	}
	for _, s := range sels {
		filter := "(&" + filterComputer + s.filter + filterEnabled + exclude + ")"
		entries, err := d.search(c, s.base, filter, hostAttrs)
		if err != nil {
			if s.missingOK && ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) {
				warn("%s %s: no such object under %s; check the DN in directory.targets", s.reason.Kind, s.reason.Detail, base)
				continue
			}
			return Result{}, fmt.Errorf("directory: discover: %s: search %s: %w%s", c.url, s.reason, err, searchHint(err))
		}
		if len(entries) == 0 && s.reason.Kind != inventory.ReasonDC {
			warn("%s matched no enabled computer", s.reason)
		}
		dcs := 0
		for _, e := range entries {
			h, ok := d.hostFromEntry(e, warn)
			if !ok || d.excludedHost(h) {
				continue
			}
			r := s.reason
			if r.Kind == inventory.ReasonDC {
				uac, _ := strconv.ParseInt(e.GetAttributeValue("userAccountControl"), 10, 64)
				switch {
				case uac&uacPartialSecrets != 0:
					r.Kind = inventory.ReasonRODC
				case uac&uacServerTrust == 0:
					continue
				}
				dcs++
			}
			addHost(hosts, h, r)
		}
		if s.reason.Kind == inventory.ReasonDC && dcs == 0 {
			warn("no domain controllers found under %s: check directory.base_dn and that the bind account can read computer objects", base)
		}
		if len(hosts) > maxHosts {
			return Result{}, fmt.Errorf("directory: discover: more than %d hosts selected; narrow directory.targets", maxHosts)
		}
	}
	if err := d.staticHosts(c, base, hosts, warn); err != nil {
		return Result{}, fmt.Errorf("directory: discover: %w", err)
	}
	for _, h := range hosts {
		slices.SortStableFunc(h.Reasons, func(a, b inventory.Reason) int { return reasonRank(a) - reasonRank(b) })
		res.Hosts = append(res.Hosts, *h)
	}
	slices.SortFunc(res.Hosts, func(a, b inventory.Host) int { return strings.Compare(a.Name, b.Name) })
	return res, nil
}

func searchHint(err error) string {
	switch {
	case ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject):
		return " (the search base does not exist: check directory.base_dn and the OU DNs)"
	case ldap.IsErrorWithCode(err, ldap.LDAPResultOperationsError):
		return " (the DC refused the search: is the bind accepted?)"
	case ldap.IsErrorWithCode(err, ldap.LDAPResultTimeLimitExceeded), ldap.IsErrorWithCode(err, ldap.ErrorNetwork):
		return " (raise directory.timeout or check the network path to the DC)"
	}
	return ""
}

func reasonRank(r inventory.Reason) int {
	return slices.Index([]inventory.ReasonKind{inventory.ReasonDC, inventory.ReasonRODC, inventory.ReasonGroup,
		inventory.ReasonOU, inventory.ReasonFilter, inventory.ReasonStatic}, r.Kind)
}

func addHost(hosts map[string]*inventory.Host, h inventory.Host, r inventory.Reason) {
	have, ok := hosts[h.Name]
	if !ok {
		h.Reasons = []inventory.Reason{r}
		hosts[h.Name] = &h
		return
	}
	if have.DN == "" {
		have.DN, have.OS, have.LastLogon = h.DN, h.OS, h.LastLogon
	}
	if !slices.Contains(have.Reasons, r) {
		have.Reasons = append(have.Reasons, r)
	}
}

// selectors turns the configured targets into searches.
func (d *Directory) selectors(c *conn, base string, warn func(string, ...any)) ([]selector, error) {
	t := d.cfg.Targets
	var out []selector
	if t.DomainControllers == nil || *t.DomainControllers {
		out = append(out, selector{reason: inventory.Reason{Kind: inventory.ReasonDC}, base: base, filter: filterDomainControl})
	}
	for _, g := range t.Groups {
		dn, err := d.groupDN(c, base, g)
		if err != nil {
			return nil, err
		}
		if dn == "" {
			warn("group %q not found in %s; check directory.targets.groups (a DN, sAMAccountName or CN)", g, base)
			continue
		}
		out = append(out, selector{reason: inventory.Reason{Kind: inventory.ReasonGroup, Detail: g}, base: base,
			filter: "(memberOf:" + ruleInChain + ":=" + ldap.EscapeFilter(dn) + ")"})
	}
	for _, ou := range t.OUs {
		out = append(out, selector{reason: inventory.Reason{Kind: inventory.ReasonOU, Detail: ou}, base: ou, filter: "", missingOK: true})
	}
	for _, f := range t.Filters {
		out = append(out, selector{reason: inventory.Reason{Kind: inventory.ReasonFilter, Detail: f}, base: base, filter: f})
	}
	return out, nil
}

// groupDN resolves a configured group (DN, sAMAccountName or CN) to its DN.
func (d *Directory) groupDN(c *conn, base, g string) (string, error) {
	if strings.Contains(g, "=") {
		if _, err := ldap.ParseDN(g); err != nil {
			return "", fmt.Errorf("targets.groups: %q is not a valid DN: %w", g, err)
		}
		return g, nil
	}
	e := ldap.EscapeFilter(g)
	entries, err := d.search(c, base, "(&(objectCategory=group)(|(sAMAccountName="+e+")(cn="+e+")))", []string{"dn"})
	if err != nil {
		return "", fmt.Errorf("%s: look up group %q: %w", c.url, g, err)
	}
	switch len(entries) {
	case 0:
		return "", nil
	case 1:
		return entries[0].DN, nil
	}
	return "", fmt.Errorf("targets.groups: %q matches %d groups; give its DN", g, len(entries))
}

// hostFromEntry validates an AD computer entry; AD data is untrusted.
func (d *Directory) hostFromEntry(e *ldap.Entry, warn func(string, ...any)) (inventory.Host, bool) {
	name := strings.ToLower(strings.TrimSuffix(strings.TrimSpace(e.GetAttributeValue("dNSHostName")), "."))
	if name == "" {
		warn("computer %s (sAMAccountName %s) has no dNSHostName and is not monitored: set its dNSHostName in AD or list its name in directory.targets.hosts",
			clip(e.DN), clip(e.GetAttributeValue("sAMAccountName")))
		return inventory.Host{}, false
	}
	if !inventory.ValidHostName(name) {
		warn("computer %s has an invalid dNSHostName %q and is not monitored", clip(e.DN), clip(name))
		return inventory.Host{}, false
	}
	h := inventory.Host{Name: name, DN: e.DN, OS: clip(e.GetAttributeValue("operatingSystem"))}
	if v, err := strconv.ParseInt(e.GetAttributeValue("lastLogonTimestamp"), 10, 64); err == nil && v > 0 {
		h.LastLogon = fileTime(v)
	}
	return h, true
}

// clip makes AD-supplied text (DNs, account and OS names) safe to show: valid
// UTF-8, no control or bidirectional-override characters (which could rewrite
// a terminal line or reorder what a reader sees), at most 256 bytes.
func clip(s string) string { return inventory.Truncate(inventory.Printable(s), 256) }

// fileTime converts a Windows FILETIME (100 ns since 1601) to UTC.
func fileTime(v int64) time.Time {
	const epochDiff = 116444736000000000
	return time.Unix(0, (v-epochDiff)*100).UTC()
}

func (d *Directory) exclusionFilter() string {
	var b strings.Builder
	for _, x := range d.excludes {
		if x.filter != "" {
			b.WriteString("(!" + x.filter + ")")
		}
	}
	return b.String()
}

func (d *Directory) excludedHost(h inventory.Host) bool {
	short, _, _ := strings.Cut(h.Name, ".")
	for _, x := range d.excludes {
		switch {
		case x.name != "" && (x.name == h.Name || x.name == short):
			return true
		case x.dn != "" && h.DN != "":
			if n, err := normDN(h.DN); err == nil && n == x.dn {
				return true
			}
		}
	}
	return false
}

// staticHosts adds targets.hosts, with OS and DN from AD when a computer has
// that dNSHostName. Listed hosts stay even when disabled in AD (with a warning).
func (d *Directory) staticHosts(c *conn, base string, hosts map[string]*inventory.Host, warn func(string, ...any)) error {
	static := d.cfg.Targets.Hosts
	if len(static) == 0 {
		return nil
	}
	var or strings.Builder
	for _, n := range static {
		or.WriteString("(dNSHostName=" + ldap.EscapeFilter(strings.ToLower(strings.TrimSuffix(strings.TrimSpace(n), "."))) + ")")
	}
	entries, err := d.search(c, base, "(&"+filterComputer+"(|"+or.String()+"))", hostAttrs)
	if err != nil {
		return fmt.Errorf("%s: look up static hosts: %w", c.url, err)
	}
	known := map[string]*ldap.Entry{}
	for _, e := range entries {
		known[strings.ToLower(e.GetAttributeValue("dNSHostName"))] = e
	}
	for _, n := range static {
		name := strings.ToLower(strings.TrimSuffix(strings.TrimSpace(n), "."))
		if !inventory.ValidHostName(name) {
			warn("targets.hosts: %q is not a valid host name; skipped", clip(n))
			continue
		}
		h := inventory.Host{Name: name}
		if e, ok := known[name]; ok {
			if eh, ok := d.hostFromEntry(e, warn); ok {
				h = eh
			}
			if uac, _ := strconv.ParseInt(e.GetAttributeValue("userAccountControl"), 10, 64); uac&uacAccountDisable != 0 {
				warn("static host %s is disabled in AD; monitored anyway because it is listed in directory.targets.hosts", name)
			}
		}
		if d.excludedHost(h) {
			continue
		}
		addHost(hosts, h, inventory.Reason{Kind: inventory.ReasonStatic})
	}
	return nil
}

// discoverStatic is discovery without LDAP: the static hosts minus exclusions
// by name, and a warning for each selector that needs AD.
func (d *Directory) discoverStatic() Result {
	var res Result
	t := d.cfg.Targets
	if t.DomainControllers != nil && *t.DomainControllers {
		res.Warnings = append(res.Warnings, "targets.domain_controllers needs LDAP: set directory.urls or directory.domain")
	}
	for _, sel := range []struct {
		key string
		n   int
	}{{"groups", len(t.Groups)}, {"ous", len(t.OUs)}, {"filters", len(t.Filters)}} {
		if sel.n > 0 {
			res.Warnings = append(res.Warnings, "targets."+sel.key+" needs LDAP: set directory.urls or directory.domain")
		}
	}
	seen := map[string]bool{}
	for _, n := range t.Hosts {
		name := strings.ToLower(strings.TrimSuffix(strings.TrimSpace(n), "."))
		if !inventory.ValidHostName(name) {
			res.Warnings = append(res.Warnings, fmt.Sprintf("targets.hosts: %q is not a valid host name; skipped", clip(n)))
			continue
		}
		h := inventory.Host{Name: name, Reasons: []inventory.Reason{{Kind: inventory.ReasonStatic}}}
		if seen[name] || d.excludedHost(h) {
			continue
		}
		seen[name] = true
		res.Hosts = append(res.Hosts, h)
	}
	slices.SortFunc(res.Hosts, func(a, b inventory.Host) int { return strings.Compare(a.Name, b.Name) })
	return res
}
