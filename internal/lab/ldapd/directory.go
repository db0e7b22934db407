// Package ldapd is an in-process LDAP v3 server for tests and the lab. It
// answers the way Active Directory does for the parts svcwatch relies on:
// simple and NTLM binds, rootDSE, searches with AD's matching rules
// (bit-and, bit-or, in-chain), computed memberOf, binary objectSid, paged
// results, StartTLS and LDAPS. It is not a general directory: there is no
// schema, and the LDAP write operations are refused (use the Go API).
package ldapd

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/go-ldap/ldap/v3"
)

// Errors returned by the Directory methods; the server maps them to result codes.
var (
	ErrExists   = errors.New("entry already exists")
	ErrNoParent = errors.New("parent entry does not exist")
	ErrNotFound = errors.New("no such entry")
	ErrBadDN    = errors.New("invalid DN")
)

// Directory is an in-memory tree of entries under one naming context. It is
// safe for concurrent use.
type Directory struct {
	mu        sync.RWMutex
	baseDN    string
	baseNorm  string
	domainSID string
	nextRID   uint32
	entries   map[string]*entry // by normalised DN
	order     []string          // normalised DNs in insertion order
	groupsOf  map[string][]string
	indexOK   bool
}

type entry struct {
	dn    string
	norm  string
	attrs []*attribute
}

type attribute struct {
	name string
	vals []string
}

func (e *entry) get(name string) *attribute {
	for _, a := range e.attrs {
		if strings.EqualFold(a.name, name) {
			return a
		}
	}
	return nil
}

func (e *entry) values(name string) []string {
	if a := e.get(name); a != nil {
		return a.vals
	}
	return nil
}

func (e *entry) set(name string, vals []string) {
	if a := e.get(name); a != nil {
		a.vals = vals
		return
	}
	e.attrs = append(e.attrs, &attribute{name: name, vals: vals})
}

func (e *entry) clone() *entry {
	c := &entry{dn: e.dn, norm: e.norm, attrs: make([]*attribute, len(e.attrs))}
	for i, a := range e.attrs {
		c.attrs[i] = &attribute{name: a.name, vals: slices.Clone(a.vals)}
	}
	return c
}

// NewDirectory returns a directory holding only the domain object baseDN
// (e.g. "DC=corp,DC=example"). Its domain SID is derived from baseDN so that
// the same base always gives the same SIDs.
func NewDirectory(baseDN string) *Directory {
	norm, err := normalizeDN(baseDN)
	if err != nil || norm == "" {
		norm = strings.ToLower(baseDN)
	}
	sum := sha256.Sum256([]byte(norm))
	sid := fmt.Sprintf("S-1-5-21-%d-%d-%d",
		binary.LittleEndian.Uint32(sum[0:4]), binary.LittleEndian.Uint32(sum[4:8]), binary.LittleEndian.Uint32(sum[8:12]))
	d := &Directory{
		baseDN: baseDN, baseNorm: norm, domainSID: sid, nextRID: 1100,
		entries: map[string]*entry{},
	}
	root := &entry{dn: baseDN, norm: norm}
	root.set("objectClass", []string{"top", "domain", "domainDNS"})
	root.set("distinguishedName", []string{baseDN})
	root.set("objectSid", []string{string(mustSID(sid))})
	root.set("objectCategory", []string{"CN=Domain-DNS," + d.schemaDN()})
	if dc := firstRDNValue(baseDN); dc != "" {
		root.set("dc", []string{dc})
		root.set("name", []string{dc})
	}
	d.entries[norm] = root
	d.order = append(d.order, norm)
	return d
}

// BaseDN is the naming context the directory was created with.
func (d *Directory) BaseDN() string { return d.baseDN }

// DomainSID is the domain's SID (S-1-5-21-...); objects added without an
// objectSid get the next RID under it.
func (d *Directory) DomainSID() string { return d.domainSID }

// DNSDomain is the DNS name formed from the DC= components of the base DN.
func (d *Directory) DNSDomain() string {
	dn, err := ldap.ParseDN(d.baseDN)
	if err != nil {
		return ""
	}
	var parts []string
	for _, r := range dn.RDNs {
		for _, a := range r.Attributes {
			if strings.EqualFold(a.Type, "dc") {
				parts = append(parts, strings.ToLower(a.Value))
			}
		}
	}
	return strings.Join(parts, ".")
}

// NetBIOSDomain is the first DNS label upper-cased (CORP for corp.example).
func (d *Directory) NetBIOSDomain() string {
	dom := d.DNSDomain()
	if i := strings.IndexByte(dom, '.'); i >= 0 {
		dom = dom[:i]
	}
	return strings.ToUpper(dom)
}

func (d *Directory) schemaDN() string { return "CN=Schema,CN=Configuration," + d.baseDN }

// Add creates an entry. Its parent must exist. Attribute names are case
// insensitive. An objectSid given as "S-1-..." text is stored in binary form
// as AD does; users, computers and groups without one get a fresh domain SID.
// objectClass is completed with the AD superclasses and objectCategory,
// distinguishedName, cn and name are filled in when absent.
func (d *Directory) Add(dn string, attrs map[string][]string) error {
	norm, err := normalizeDN(dn)
	if err != nil {
		return fmt.Errorf("ldapd: add %q: %w: %v", dn, ErrBadDN, err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.entries[norm]; ok {
		return fmt.Errorf("ldapd: add %q: %w", dn, ErrExists)
	}
	if !strings.HasSuffix(norm, ","+d.baseNorm) {
		return fmt.Errorf("ldapd: add %q: %w (not under %s)", dn, ErrNoParent, d.baseDN)
	}
	if _, ok := d.entries[parentNorm(norm)]; !ok {
		return fmt.Errorf("ldapd: add %q: %w", dn, ErrNoParent)
	}
	e := &entry{dn: dn, norm: norm}
	names := make([]string, 0, len(attrs))
	for k := range attrs {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		vals := slices.Clone(attrs[k])
		if strings.EqualFold(k, "objectSid") {
			for i, v := range vals {
				if strings.HasPrefix(v, "S-") {
					b, err := encodeSID(v)
					if err != nil {
						return fmt.Errorf("ldapd: add %q: objectSid: %w", dn, err)
					}
					vals[i] = string(b)
				}
			}
		}
		e.set(k, vals)
	}
	d.complete(e)
	d.entries[norm] = e
	d.order = append(d.order, norm)
	d.indexOK = false
	return nil
}

// complete fills in what AD would compute for a new object.
func (d *Directory) complete(e *entry) {
	classes := e.values("objectClass")
	has := func(c string) bool {
		return slices.ContainsFunc(classes, func(v string) bool { return strings.EqualFold(v, c) })
	}
	var category string
	switch {
	case has("computer"):
		classes = mergeClasses(classes, "top", "person", "organizationalPerson", "user", "computer")
		category = "Computer"
	case has("user"):
		classes = mergeClasses(classes, "top", "person", "organizationalPerson", "user")
		category = "Person"
	case has("group"):
		classes = mergeClasses(classes, "top", "group")
		category = "Group"
	case has("organizationalUnit"):
		classes = mergeClasses(classes, "top", "organizationalUnit")
		category = "Organizational-Unit"
	case has("container"):
		classes = mergeClasses(classes, "top", "container")
		category = "Container"
	}
	if len(classes) > 0 {
		e.set("objectClass", classes)
	}
	if category != "" && e.get("objectCategory") == nil {
		e.set("objectCategory", []string{"CN=" + category + "," + d.schemaDN()})
	}
	if e.get("distinguishedName") == nil {
		e.set("distinguishedName", []string{e.dn})
	}
	if rdn := firstRDNValue(e.dn); rdn != "" {
		if e.get("name") == nil {
			e.set("name", []string{rdn})
		}
		if strings.HasPrefix(strings.ToLower(e.norm), "cn=") && e.get("cn") == nil {
			e.set("cn", []string{rdn})
		}
	}
	if (category == "Computer" || category == "Person" || category == "Group") && e.get("objectSid") == nil {
		e.set("objectSid", []string{string(mustSID(fmt.Sprintf("%s-%d", d.domainSID, d.nextRID)))})
		d.nextRID++
	}
}

func mergeClasses(have []string, want ...string) []string {
	out := slices.Clone(want)
	for _, c := range have {
		if !slices.ContainsFunc(out, func(v string) bool { return strings.EqualFold(v, c) }) {
			out = append(out, c)
		}
	}
	return out
}

// Delete removes a leaf entry and every member value that named it.
func (d *Directory) Delete(dn string) error {
	norm, err := normalizeDN(dn)
	if err != nil {
		return fmt.Errorf("ldapd: delete %q: %w: %v", dn, ErrBadDN, err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.entries[norm]; !ok || norm == d.baseNorm {
		return fmt.Errorf("ldapd: delete %q: %w", dn, ErrNotFound)
	}
	for _, n := range d.order {
		if strings.HasSuffix(n, ","+norm) {
			return fmt.Errorf("ldapd: delete %q: entry has children (notAllowedOnNonLeaf)", dn)
		}
	}
	delete(d.entries, norm)
	d.order = slices.DeleteFunc(d.order, func(n string) bool { return n == norm })
	for _, e := range d.entries {
		if a := e.get("member"); a != nil {
			a.vals = slices.DeleteFunc(a.vals, func(v string) bool { n, _ := normalizeDN(v); return n == norm })
		}
	}
	d.indexOK = false
	return nil
}

// Replace sets attribute name of entry dn to vals (none: removes it).
func (d *Directory) Replace(dn, name string, vals ...string) error {
	return d.modify(dn, func(e *entry) {
		if len(vals) == 0 {
			e.attrs = slices.DeleteFunc(e.attrs, func(a *attribute) bool { return strings.EqualFold(a.name, name) })
		} else {
			e.set(name, slices.Clone(vals))
		}
	})
}

// AddValues appends values to attribute name of entry dn (e.g. a group member).
func (d *Directory) AddValues(dn, name string, vals ...string) error {
	return d.modify(dn, func(e *entry) {
		e.set(name, append(slices.Clone(e.values(name)), vals...))
	})
}

// modify applies change to entry dn under the lock and invalidates the index.
func (d *Directory) modify(dn string, change func(e *entry)) error {
	norm, err := normalizeDN(dn)
	if err != nil {
		return fmt.Errorf("ldapd: modify %q: %w: %v", dn, ErrBadDN, err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	e, ok := d.entries[norm]
	if !ok {
		return fmt.Errorf("ldapd: modify %q: %w", dn, ErrNotFound)
	}
	change(e)
	d.indexOK = false
	return nil
}

// Len is the number of entries, the domain object included.
func (d *Directory) Len() int {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return len(d.entries)
}

// buildIndex computes the memberOf back-links; the caller holds d.mu for writing.
func (d *Directory) buildIndex() {
	if d.indexOK {
		return
	}
	idx := map[string][]string{}
	for _, n := range d.order {
		e := d.entries[n]
		for _, m := range e.values("member") {
			mn, err := normalizeDN(m)
			if err != nil {
				continue
			}
			idx[mn] = append(idx[mn], e.norm)
		}
	}
	d.groupsOf = idx
	d.indexOK = true
}

// ancestors is every group norm containing norm, directly or nested; the
// caller holds d.mu and the index is built.
func (d *Directory) ancestors(norm string) map[string]bool {
	seen := map[string]bool{}
	queue := []string{norm}
	for len(queue) > 0 {
		n := queue[0]
		queue = queue[1:]
		for _, g := range d.groupsOf[n] {
			if !seen[g] {
				seen[g] = true
				queue = append(queue, g)
			}
		}
	}
	return seen
}

// memberOf is the computed back-link values of an entry, as DNs.
func (d *Directory) memberOf(norm string) []string {
	var out []string
	for _, g := range d.groupsOf[norm] {
		if e, ok := d.entries[g]; ok {
			out = append(out, e.dn)
		}
	}
	return out
}

// normalizeDN returns a canonical lower-case form of dn for comparisons.
func normalizeDN(dn string) (string, error) {
	if strings.TrimSpace(dn) == "" {
		return "", nil
	}
	p, err := ldap.ParseDN(dn)
	if err != nil {
		return "", err
	}
	rdns := make([]string, 0, len(p.RDNs))
	for _, r := range p.RDNs {
		parts := make([]string, 0, len(r.Attributes))
		for _, a := range r.Attributes {
			parts = append(parts, strings.ToLower(strings.TrimSpace(a.Type))+"="+strings.ToLower(a.Value))
		}
		slices.Sort(parts)
		rdns = append(rdns, strings.Join(parts, "+"))
	}
	return strings.Join(rdns, ","), nil
}

// parentNorm strips the first RDN of a normalised DN. Values in a normalised
// DN are unescaped, so this is only used on DNs we built and checked.
func parentNorm(norm string) string {
	for i := 0; i < len(norm); i++ {
		if norm[i] == ',' {
			return norm[i+1:]
		}
	}
	return ""
}

func firstRDNValue(dn string) string {
	p, err := ldap.ParseDN(dn)
	if err != nil || len(p.RDNs) == 0 || len(p.RDNs[0].Attributes) == 0 {
		return ""
	}
	return p.RDNs[0].Attributes[0].Value
}

// encodeSID turns S-1-5-21-... into the binary form AD stores.
func encodeSID(s string) ([]byte, error) {
	parts := strings.Split(s, "-")
	if len(parts) < 3 || parts[0] != "S" || len(parts)-3 > 15 {
		return nil, fmt.Errorf("invalid SID %q", s)
	}
	rev, err := strconv.ParseUint(parts[1], 10, 8)
	if err != nil {
		return nil, fmt.Errorf("invalid SID %q: revision", s)
	}
	auth, err := strconv.ParseUint(parts[2], 10, 48)
	if err != nil {
		return nil, fmt.Errorf("invalid SID %q: authority", s)
	}
	b := make([]byte, 8, 8+4*(len(parts)-3))
	b[0] = byte(rev)
	b[1] = byte(len(parts) - 3)
	for i := 0; i < 6; i++ {
		b[2+i] = byte(auth >> (8 * (5 - i)))
	}
	for _, p := range parts[3:] {
		v, err := strconv.ParseUint(p, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("invalid SID %q: sub-authority %q", s, p)
		}
		b = binary.LittleEndian.AppendUint32(b, uint32(v))
	}
	return b, nil
}

func mustSID(s string) []byte {
	b, err := encodeSID(s)
	if err != nil {
		panic(err) // only called with SIDs we formatted ourselves
	}
	return b
}

// decodeSID is the inverse of encodeSID; ok is false for malformed input.
func decodeSID(b []byte) (string, bool) {
	if len(b) < 8 || int(b[1]) > 15 || len(b) != 8+4*int(b[1]) {
		return "", false
	}
	var auth uint64
	for i := 0; i < 6; i++ {
		auth = auth<<8 | uint64(b[2+i])
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "S-%d-%d", b[0], auth)
	for i := 0; i < int(b[1]); i++ {
		fmt.Fprintf(&sb, "-%d", binary.LittleEndian.Uint32(b[8+4*i:]))
	}
	return sb.String(), true
}
