package ldapd

import (
	"crypto/rand"
	"encoding/hex"
	"strings"

	ber "github.com/go-asn1-ber/asn1-ber"
)

type pageState struct {
	rest  []*entry
	attrs []string
	types bool
	seq   int
}

type searchRequest struct {
	base      string
	scope     int64
	sizeLimit int64
	typesOnly bool
	filter    *ber.Packet
	attrs     []string
}

func parseSearch(op *ber.Packet) (searchRequest, bool) {
	var sr searchRequest
	c := op.Children
	if op.TagType != ber.TypeConstructed || len(c) != 8 || !isOctets(c[0]) {
		return sr, false
	}
	for _, i := range []int{1, 2} {
		if c[i].ClassType != ber.ClassUniversal || c[i].Tag != ber.TagEnumerated {
			return sr, false
		}
	}
	for _, i := range []int{3, 4} {
		if c[i].ClassType != ber.ClassUniversal || c[i].Tag != ber.TagInteger {
			return sr, false
		}
	}
	if c[5].ClassType != ber.ClassUniversal || c[5].Tag != ber.TagBoolean {
		return sr, false
	}
	if c[7].ClassType != ber.ClassUniversal || c[7].Tag != ber.TagSequence {
		return sr, false
	}
	sr.base = string(raw(c[0]))
	sr.scope, _ = c[1].Value.(int64)
	sr.sizeLimit, _ = c[3].Value.(int64)
	sr.typesOnly, _ = c[5].Value.(bool)
	if sr.scope < 0 || sr.scope > 2 || sr.sizeLimit < 0 {
		return sr, false
	}
	if checkFilter(c[6], 0) != nil {
		return sr, false
	}
	sr.filter = c[6]
	for _, a := range c[7].Children {
		if !isOctets(a) {
			return sr, false
		}
		sr.attrs = append(sr.attrs, string(raw(a)))
	}
	return sr, true
}

func (cs *session) search(id int64, op *ber.Packet, controls []control) bool {
	sr, ok := parseSearch(op)
	if !ok {
		return cs.result(id, opSearchDone, resultProtocolError, "", "malformed search request", nil)
	}
	var paging *control
	for i, c := range controls {
		switch {
		case c.oid == oidPaging:
			paging = &controls[i]
		case c.critical:
			return cs.result(id, opSearchDone, resultUnavailableCriticalExtension, "", "unsupported critical control "+c.oid, nil)
		}
	}
	srv := cs.srv
	rootDSE := strings.TrimSpace(sr.base) == "" && sr.scope == 0
	if cs.bound == "" && !rootDSE {
		return cs.result(id, opSearchDone, resultOperationsError, "", errNeedBind, nil)
	}
	if rootDSE {
		e := srv.rootDSE()
		m := &matcher{d: srv.dir}
		if m.eval(sr.filter, e) == isTrue {
			if !cs.sendEntry(id, e, sr.attrs, sr.typesOnly) {
				return false
			}
		}
		return cs.result(id, opSearchDone, resultSuccess, "", "", nil)
	}

	var pageSize int
	var cookie string
	if paging != nil {
		size, ck, ok := parsePaging(paging.value)
		if !ok {
			return cs.result(id, opSearchDone, resultProtocolError, "", "malformed paged results control", nil)
		}
		pageSize, cookie = size, ck
	}
	if cookie != "" {
		st, ok := cs.pages[cookie]
		if !ok {
			return cs.result(id, opSearchDone, resultUnwillingToPerform, "", "00000057: LdapErr: DSID-0C090A3E, comment: Error processing control, data 0, v4563 (unknown paged results cookie)", nil)
		}
		delete(cs.pages, cookie)
		if pageSize == 0 {
			return cs.result(id, opSearchDone, resultSuccess, "", "", pagingControl(""))
		}
		return cs.sendPage(id, st.rest, st.attrs, st.types, pageSize)
	}

	matches, code, matched := srv.dir.find(sr)
	if code != resultSuccess {
		return cs.result(id, opSearchDone, code, matched, "0000208D: NameErr: DSID-03100241, problem 2001 (NO_OBJECT), data 0, best match of:\n\t'"+matched+"'", nil)
	}
	if paging != nil {
		if pageSize == 0 {
			return cs.result(id, opSearchDone, resultSuccess, "", "", pagingControl(""))
		}
		return cs.sendPage(id, matches, sr.attrs, sr.typesOnly, pageSize)
	}
	limit := srv.opts.MaxPageSize
	if sr.sizeLimit > 0 && int(sr.sizeLimit) < limit {
		limit = int(sr.sizeLimit)
	}
	code = resultSuccess
	if len(matches) > limit {
		matches, code = matches[:limit], resultSizeLimitExceeded
	}
	for _, e := range matches {
		if !cs.sendEntry(id, e, sr.attrs, sr.typesOnly) {
			return false
		}
	}
	return cs.result(id, opSearchDone, code, "", "", nil)
}

func (cs *session) sendPage(id int64, rest []*entry, attrs []string, types bool, size int) bool {
	if size > cs.srv.opts.MaxPageSize {
		size = cs.srv.opts.MaxPageSize
	}
	page := rest
	if len(page) > size {
		page = rest[:size]
	}
	for _, e := range page {
		if !cs.sendEntry(id, e, attrs, types) {
			return false
		}
	}
	cookie := ""
	if len(rest) > len(page) {
		var b [12]byte
		rand.Read(b[:])
		cookie = hex.EncodeToString(b[:])
		if cs.pages == nil {
			cs.pages = map[string]*pageState{}
		}
		cs.seq++
		if len(cs.pages) >= maxPagedCookies { // drop the oldest
			oldest := ""
			for k, v := range cs.pages {
				if oldest == "" || v.seq < cs.pages[oldest].seq {
					oldest = k
				}
			}
			delete(cs.pages, oldest)
		}
		cs.pages[cookie] = &pageState{rest: rest[len(page):], attrs: attrs, types: types, seq: cs.seq}
	}
	return cs.result(id, opSearchDone, resultSuccess, "", "", pagingControl(cookie))
}

func parsePaging(v []byte) (int, string, bool) {
	p, err := ber.DecodePacketErr(v)
	if err != nil || p == nil || p.Tag != ber.TagSequence || len(p.Children) != 2 {
		return 0, "", false
	}
	size, ok := p.Children[0].Value.(int64)
	if !ok || p.Children[0].Tag != ber.TagInteger || size < 0 || !isOctets(p.Children[1]) {
		return 0, "", false
	}
	if size > 1<<31-1 {
		size = 1<<31 - 1
	}
	return int(size), string(raw(p.Children[1])), true
}

func pagingControl(cookie string) *ber.Packet {
	ctls := ber.Encode(ber.ClassContext, ber.TypeConstructed, 0, nil, "Controls")
	c := ber.NewSequence("Control")
	c.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, oidPaging, "controlType"))
	val := ber.NewSequence("PagedResults")
	val.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, int64(0), "size"))
	val.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, cookie, "cookie"))
	c.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, string(val.Bytes()), "controlValue"))
	ctls.AppendChild(c)
	return ctls
}

// find evaluates a search under the directory lock and returns snapshots of
// the matching entries (with memberOf materialised), in insertion order.
func (d *Directory) find(sr searchRequest) ([]*entry, int, string) {
	norm, err := normalizeDN(sr.base)
	d.mu.Lock()
	defer d.mu.Unlock()
	if err != nil {
		return nil, resultNoSuchObject, ""
	}
	if _, ok := d.entries[norm]; !ok {
		return nil, resultNoSuchObject, d.closest(norm)
	}
	d.buildIndex()
	m := &matcher{d: d}
	var out []*entry
	for _, n := range d.order {
		var in bool
		switch sr.scope {
		case 0:
			in = n == norm
		case 1:
			in = parentNorm(n) == norm && n != norm
		case 2:
			in = n == norm || strings.HasSuffix(n, ","+norm)
		}
		if !in {
			continue
		}
		e := d.entries[n]
		if m.eval(sr.filter, e) != isTrue {
			continue
		}
		c := e.clone()
		if mo := d.memberOf(n); len(mo) > 0 {
			c.set("memberOf", mo)
		}
		out = append(out, c)
	}
	return out, resultSuccess, ""
}

// closest is the DN of the nearest existing ancestor, for matchedDN.
func (d *Directory) closest(norm string) string {
	for n := parentNorm(norm); n != ""; n = parentNorm(n) {
		if e, ok := d.entries[n]; ok {
			return e.dn
		}
	}
	return ""
}

func (cs *session) sendEntry(id int64, e *entry, want []string, typesOnly bool) bool {
	env := envelope(id)
	r := ber.Encode(ber.ClassApplication, ber.TypeConstructed, opSearchEntry, nil, "SearchResultEntry")
	r.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, e.dn, "objectName"))
	list := ber.NewSequence("attributes")
	for _, a := range selectAttrs(e, want) {
		pa := ber.NewSequence("PartialAttribute")
		pa.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, a.name, "type"))
		set := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSet, nil, "vals")
		if !typesOnly {
			for _, v := range a.vals {
				set.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, v, "val"))
			}
		}
		pa.AppendChild(set)
		list.AppendChild(pa)
	}
	r.AppendChild(list)
	env.AppendChild(r)
	return cs.write(env)
}

func selectAttrs(e *entry, want []string) []*attribute {
	all := len(want) == 0
	for _, w := range want {
		if w == "*" {
			all = true
		}
	}
	if all {
		return e.attrs
	}
	var out []*attribute
	for _, w := range want {
		if a := e.get(w); a != nil && len(a.vals) > 0 {
			dup := false
			for _, o := range out {
				dup = dup || o == a
			}
			if !dup {
				out = append(out, a)
			}
		}
	}
	return out
}
