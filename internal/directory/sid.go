package directory

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/svcwatch/svcwatch/internal/inventory"
)

const maxCachedSIDs = 10000

type cachedAccount struct {
	acct    inventory.Account
	expires time.Time
}

// wellKnown are SIDs every Windows machine resolves locally (MS-DTYP 2.4.2.4).
var wellKnown = map[string]inventory.Account{
	"S-1-0-0":      {Name: `NULL SID`},
	"S-1-1-0":      {Name: `Everyone`},
	"S-1-5-4":      {Name: `NT AUTHORITY\INTERACTIVE`},
	"S-1-5-6":      {Name: `NT AUTHORITY\SERVICE`},
	"S-1-5-7":      {Name: `NT AUTHORITY\ANONYMOUS LOGON`},
	"S-1-5-11":     {Name: `NT AUTHORITY\Authenticated Users`},
	"S-1-5-18":     {Name: `NT AUTHORITY\SYSTEM`, Privileged: true},
	"S-1-5-19":     {Name: `NT AUTHORITY\LOCAL SERVICE`},
	"S-1-5-20":     {Name: `NT AUTHORITY\NETWORK SERVICE`},
	"S-1-5-32-544": {Name: `BUILTIN\Administrators`, Privileged: true, Groups: []string{"Administrators"}},
	"S-1-5-32-545": {Name: `BUILTIN\Users`},
	"S-1-5-32-548": {Name: `BUILTIN\Account Operators`, Privileged: true, Groups: []string{"Account Operators"}},
	"S-1-5-32-549": {Name: `BUILTIN\Server Operators`, Privileged: true, Groups: []string{"Server Operators"}},
	"S-1-5-32-550": {Name: `BUILTIN\Print Operators`, Privileged: true, Groups: []string{"Print Operators"}},
	"S-1-5-32-551": {Name: `BUILTIN\Backup Operators`, Privileged: true, Groups: []string{"Backup Operators"}},
	"S-1-5-80-0":   {Name: `NT SERVICE\ALL SERVICES`},
}

// privileged domain RIDs and builtin SIDs (Domain Admins, Enterprise Admins,
// Administrators); configured tier0_groups add to them.
var privilegedRIDs = []uint32{512, 519}

const builtinAdmins = "S-1-5-32-544"

// ResolveSID names the account behind a SID ("CORP\alice") and says whether
// it is privileged: a member, directly or nested, of Domain Admins,
// Enterprise Admins, Administrators or a configured tier-0 group. Well-known
// SIDs resolve without LDAP. A SID AD does not know (another domain, a local
// account) gives an Account with only SID set and no error. Results are
// cached for sid_cache_ttl.
func (d *Directory) ResolveSID(ctx context.Context, sid string) (inventory.Account, error) {
	bin, err := encodeSID(sid)
	if err != nil {
		return inventory.Account{}, fmt.Errorf("directory: resolve SID: %w", err)
	}
	if a, ok := wellKnown[sid]; ok {
		a.SID = sid
		a.Groups = slices.Clone(a.Groups)
		return a, nil
	}
	now := d.now()
	d.mu.Lock()
	if c, ok := d.cache[sid]; ok && now.Before(c.expires) {
		d.mu.Unlock()
		a := c.acct
		a.Groups = slices.Clone(a.Groups)
		return a, nil
	}
	d.mu.Unlock()

	if !d.cfg.Enabled() {
		return inventory.Account{SID: sid}, nil
	}
	acct, err := d.lookupSID(ctx, sid, bin)
	if err != nil {
		return inventory.Account{}, fmt.Errorf("directory: resolve %s: %w", sid, err)
	}
	d.mu.Lock()
	if len(d.cache) >= maxCachedSIDs {
		clear(d.cache)
	}
	d.cache[sid] = cachedAccount{acct: acct, expires: now.Add(d.cfg.SIDCacheTTL)}
	d.mu.Unlock()
	acct.Groups = slices.Clone(acct.Groups)
	return acct, nil
}

func (d *Directory) lookupSID(ctx context.Context, sid string, bin []byte) (inventory.Account, error) {
	c, err := d.connect(ctx)
	if err != nil {
		return inventory.Account{}, err
	}
	defer c.close()
	base, err := d.baseDN(c)
	if err != nil {
		return inventory.Account{}, err
	}
	acct := inventory.Account{SID: sid}
	entries, err := d.search(c, base, "(objectSid="+escapeBinary(bin)+")", []string{"sAMAccountName"})
	if err != nil {
		return acct, fmt.Errorf("%s: search objectSid: %w%s", c.url, err, searchHint(err))
	}
	if len(entries) != 1 {
		return acct, nil
	}
	e := entries[0]
	sam := clip(e.GetAttributeValue("sAMAccountName"))
	nb, err := d.netBIOS(c, base)
	if err != nil {
		return acct, err
	}
	acct.Name = nb + `\` + sam
	if strings.HasPrefix(sid, "S-1-5-32-") {
		acct.Name = `BUILTIN\` + sam
	}
	groups, err := d.search(c, base, "(member:"+ruleInChain+":="+ldap.EscapeFilter(e.DN)+")", []string{"objectSid", "sAMAccountName"})
	if err != nil {
		return acct, fmt.Errorf("%s: search nested groups of %s: %w", c.url, clip(e.DN), err)
	}
	for _, g := range groups {
		if d.privilegedGroup(g) {
			acct.Groups = append(acct.Groups, clip(g.GetAttributeValue("sAMAccountName")))
		}
	}
	slices.Sort(acct.Groups)
	acct.Groups = slices.Compact(acct.Groups)
	acct.Privileged = len(acct.Groups) > 0
	return acct, nil
}

func (d *Directory) privilegedGroup(g *ldap.Entry) bool {
	if s, ok := decodeSID(g.GetRawAttributeValue("objectSid")); ok {
		if s == builtinAdmins {
			return true
		}
		if i := strings.LastIndexByte(s, '-'); i > 0 && strings.HasPrefix(s, "S-1-5-21-") {
			rid, _ := strconv.ParseUint(s[i+1:], 10, 32)
			if slices.Contains(privilegedRIDs, uint32(rid)) {
				return true
			}
		}
	}
	sam := g.GetAttributeValue("sAMAccountName")
	gdn, _ := normDN(g.DN)
	for _, t := range d.cfg.Tier0Groups {
		if strings.Contains(t, "=") {
			if n, err := normDN(t); err == nil && n == gdn {
				return true
			}
		} else if strings.EqualFold(t, sam) {
			return true
		}
	}
	return false
}

// netBIOS learns the domain's NetBIOS name from its crossRef in the
// configuration partition; when that is unreadable it falls back to the
// first DC= label upper-cased (right for most domains).
func (d *Directory) netBIOS(c *conn, base string) (string, error) {
	d.mu.Lock()
	nb := d.netbios
	d.mu.Unlock()
	if nb != "" {
		return nb, nil
	}
	res, err := c.Search(ldap.NewSearchRequest("CN=Partitions,CN=Configuration,"+base, ldap.ScopeSingleLevel, ldap.NeverDerefAliases, 0,
		int(d.cfg.Timeout.Seconds()), false, "(&(objectClass=crossRef)(nCName="+ldap.EscapeFilter(base)+"))", []string{"nETBIOSName"}, nil))
	if err == nil && len(res.Entries) > 0 {
		nb = res.Entries[0].GetAttributeValue("nETBIOSName")
	}
	if nb == "" {
		if err != nil && !ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) {
			return "", fmt.Errorf("%s: read the domain's NetBIOS name: %w", c.url, err)
		}
		p, perr := ldap.ParseDN(base)
		if perr != nil || len(p.RDNs) == 0 || len(p.RDNs[0].Attributes) == 0 {
			return "", fmt.Errorf("base DN %q: cannot derive the NetBIOS domain name", base)
		}
		nb = strings.ToUpper(p.RDNs[0].Attributes[0].Value)
	}
	nb = clip(nb)
	d.mu.Lock()
	d.netbios = nb
	d.mu.Unlock()
	return nb, nil
}

// escapeBinary escapes every byte, as AD expects for binary attributes in filters.
func escapeBinary(b []byte) string {
	const hex = "0123456789abcdef"
	out := make([]byte, 0, 3*len(b))
	for _, c := range b {
		out = append(out, '\\', hex[c>>4], hex[c&0xf])
	}
	return string(out)
}

// encodeSID converts S-R-I-S-S... to the binary form stored in objectSid.
func encodeSID(s string) ([]byte, error) {
	parts := strings.Split(s, "-")
	if len(parts) < 3 || parts[0] != "S" || len(parts)-3 > 15 {
		return nil, fmt.Errorf("%q is not a SID", s)
	}
	rev, err := strconv.ParseUint(parts[1], 10, 8)
	if err != nil || rev != 1 {
		return nil, fmt.Errorf("%q is not a SID (revision)", s)
	}
	auth, err := strconv.ParseUint(parts[2], 10, 48)
	if err != nil {
		return nil, fmt.Errorf("%q is not a SID (authority)", s)
	}
	b := make([]byte, 8, 8+4*(len(parts)-3))
	b[0], b[1] = byte(rev), byte(len(parts)-3)
	for i := 0; i < 6; i++ {
		b[2+i] = byte(auth >> (8 * (5 - i)))
	}
	for _, p := range parts[3:] {
		v, err := strconv.ParseUint(p, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("%q is not a SID (sub-authority %q)", s, p)
		}
		b = binary.LittleEndian.AppendUint32(b, uint32(v))
	}
	return b, nil
}

func decodeSID(b []byte) (string, bool) {
	if len(b) < 8 || b[0] != 1 || int(b[1]) > 15 || len(b) != 8+4*int(b[1]) {
		return "", false
	}
	var auth uint64
	for i := 0; i < 6; i++ {
		auth = auth<<8 | uint64(b[2+i])
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "S-1-%d", auth)
	for i := 0; i < int(b[1]); i++ {
		fmt.Fprintf(&sb, "-%d", binary.LittleEndian.Uint32(b[8+4*i:]))
	}
	return sb.String(), true
}
