package ldapd

import (
	"bytes"
	"cmp"
	"errors"
	"strconv"
	"strings"

	ber "github.com/go-asn1-ber/asn1-ber"
)

// AD matching rules.
const (
	ruleBitAnd  = "1.2.840.113556.1.4.803"
	ruleBitOr   = "1.2.840.113556.1.4.804"
	ruleInChain = "1.2.840.113556.1.4.1941"
)

const maxFilterDepth = 64

var errFilter = errors.New("malformed filter")

// tri is RFC 4511's three-valued filter result.
type tri int

const (
	undefined tri = iota
	isFalse
	isTrue
)

func boolTri(b bool) tri {
	if b {
		return isTrue
	}
	return isFalse
}

// matcher evaluates one parsed filter against entries; the directory lock is held.
type matcher struct {
	d     *Directory
	chain map[string]map[string]bool // in-chain: assertion norm -> ancestor set, cached per search
}

// checkFilter validates the structure of a filter packet so that evaluation
// never has to guess; it rejects what AD would reject as a protocol error.
func checkFilter(p *ber.Packet, depth int) error {
	if p == nil || depth > maxFilterDepth || p.ClassType != ber.ClassContext {
		return errFilter
	}
	switch p.Tag {
	case 0, 1: // and, or
		if p.TagType != ber.TypeConstructed {
			return errFilter
		}
		for _, c := range p.Children {
			if err := checkFilter(c, depth+1); err != nil {
				return err
			}
		}
	case 2: // not
		if p.TagType != ber.TypeConstructed || len(p.Children) != 1 {
			return errFilter
		}
		return checkFilter(p.Children[0], depth+1)
	case 3, 5, 6, 8: // equality, >=, <=, approx
		if p.TagType != ber.TypeConstructed || len(p.Children) != 2 || !isOctets(p.Children[0]) || !isOctets(p.Children[1]) {
			return errFilter
		}
	case 4: // substrings
		if p.TagType != ber.TypeConstructed || len(p.Children) != 2 || !isOctets(p.Children[0]) {
			return errFilter
		}
		subs := p.Children[1]
		if subs.ClassType != ber.ClassUniversal || subs.Tag != ber.TagSequence || len(subs.Children) == 0 {
			return errFilter
		}
		for i, s := range subs.Children {
			if s.ClassType != ber.ClassContext || s.TagType != ber.TypePrimitive || s.Tag > 2 {
				return errFilter
			}
			if (s.Tag == 0 && i != 0) || (s.Tag == 2 && i != len(subs.Children)-1) {
				return errFilter
			}
		}
	case 7: // present
		if p.TagType != ber.TypePrimitive {
			return errFilter
		}
	case 9: // extensible
		if p.TagType != ber.TypeConstructed || len(p.Children) == 0 || len(p.Children) > 4 {
			return errFilter
		}
		var hasValue bool
		for _, c := range p.Children {
			if c.ClassType != ber.ClassContext || c.TagType != ber.TypePrimitive || c.Tag < 1 || c.Tag > 4 {
				return errFilter
			}
			hasValue = hasValue || c.Tag == 3
		}
		if !hasValue {
			return errFilter
		}
	default:
		return errFilter
	}
	return nil
}

func isOctets(p *ber.Packet) bool {
	return p.ClassType == ber.ClassUniversal && p.TagType == ber.TypePrimitive && p.Tag == ber.TagOctetString
}

// raw is the content octets of a primitive packet.
func raw(p *ber.Packet) []byte {
	if p == nil || p.Data == nil {
		return nil
	}
	return p.Data.Bytes()
}

func (m *matcher) eval(p *ber.Packet, e *entry) tri {
	switch p.Tag {
	case 0:
		res := isTrue
		for _, c := range p.Children {
			switch m.eval(c, e) {
			case isFalse:
				return isFalse
			case undefined:
				res = undefined
			}
		}
		return res
	case 1:
		res := isFalse
		for _, c := range p.Children {
			switch m.eval(c, e) {
			case isTrue:
				return isTrue
			case undefined:
				res = undefined
			}
		}
		return res
	case 2:
		switch m.eval(p.Children[0], e) {
		case isTrue:
			return isFalse
		case isFalse:
			return isTrue
		}
		return undefined
	case 3, 8:
		return m.equality(e, string(raw(p.Children[0])), raw(p.Children[1]))
	case 5, 6:
		return m.ordering(e, string(raw(p.Children[0])), string(raw(p.Children[1])), p.Tag == 5)
	case 4:
		return m.substrings(e, string(raw(p.Children[0])), p.Children[1])
	case 7:
		name := string(raw(p))
		if strings.EqualFold(name, "objectClass") {
			return isTrue
		}
		return boolTri(len(m.d.attrValues(e, name)) > 0)
	case 9:
		return m.extensible(e, p)
	}
	return undefined
}

// dnSyntax lists attributes compared as DNs.
var dnSyntax = map[string]bool{
	"member": true, "memberof": true, "distinguishedname": true, "objectcategory": true,
	"managedby": true, "manager": true,
}

// binarySyntax lists attributes compared byte for byte.
var binarySyntax = map[string]bool{"objectsid": true, "objectguid": true, "sidhistory": true}

func (m *matcher) equality(e *entry, name string, want []byte) tri {
	lname := strings.ToLower(name)
	vals := m.d.attrValues(e, name)
	if len(vals) == 0 {
		return undefined
	}
	switch {
	case binarySyntax[lname]:
		for _, v := range vals {
			if bytes.Equal([]byte(v), want) {
				return isTrue
			}
		}
		return isFalse
	case lname == "objectcategory":
		w := m.d.expandCategory(string(want))
		for _, v := range vals {
			if n, err := normalizeDN(v); err == nil && n == w {
				return isTrue
			}
		}
		return isFalse
	case dnSyntax[lname]:
		w, err := normalizeDN(string(want))
		if err != nil {
			return undefined
		}
		for _, v := range vals {
			if n, err := normalizeDN(v); err == nil && n == w {
				return isTrue
			}
		}
		return isFalse
	}
	ws := string(want)
	for _, v := range vals {
		if strings.EqualFold(v, ws) {
			return isTrue
		}
		if a, err := strconv.ParseInt(v, 10, 64); err == nil {
			if b, err := strconv.ParseInt(ws, 10, 64); err == nil && a == b {
				return isTrue
			}
		}
	}
	return isFalse
}

// expandCategory applies AD's shorthand: objectCategory=computer means the
// defaultObjectCategory of class computer, i.e. CN=Computer,CN=Schema,...
func (d *Directory) expandCategory(v string) string {
	if strings.Contains(v, "=") {
		n, err := normalizeDN(v)
		if err == nil {
			return n
		}
		return strings.ToLower(v)
	}
	cat := map[string]string{
		"computer": "Computer", "user": "Person", "person": "Person", "group": "Group",
		"organizationalunit": "Organizational-Unit", "container": "Container", "domaindns": "Domain-DNS",
	}[strings.ToLower(v)]
	if cat == "" {
		cat = v
	}
	n, _ := normalizeDN("CN=" + cat + "," + d.schemaDN())
	return n
}

func (m *matcher) ordering(e *entry, name, want string, ge bool) tri {
	vals := m.d.attrValues(e, name)
	if len(vals) == 0 {
		return undefined
	}
	wn, werr := strconv.ParseInt(want, 10, 64)
	for _, v := range vals {
		var c int
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && werr == nil {
			c = cmp.Compare(n, wn)
		} else {
			c = strings.Compare(strings.ToLower(v), strings.ToLower(want))
		}
		if (ge && c >= 0) || (!ge && c <= 0) {
			return isTrue
		}
	}
	return isFalse
}

func (m *matcher) substrings(e *entry, name string, subs *ber.Packet) tri {
	vals := m.d.attrValues(e, name)
	if len(vals) == 0 {
		return undefined
	}
	for _, v := range vals {
		s := strings.ToLower(v)
		ok := true
		for _, sp := range subs.Children {
			part := strings.ToLower(string(raw(sp)))
			switch sp.Tag {
			case 0:
				if !strings.HasPrefix(s, part) {
					ok = false
				}
				s = strings.TrimPrefix(s, part)
			case 1:
				i := strings.Index(s, part)
				if i < 0 {
					ok = false
				} else {
					s = s[i+len(part):]
				}
			case 2:
				if !strings.HasSuffix(s, part) {
					ok = false
				}
			}
			if !ok {
				break
			}
		}
		if ok {
			return isTrue
		}
	}
	return isFalse
}

func (m *matcher) extensible(e *entry, p *ber.Packet) tri {
	var rule, name string
	var value []byte
	for _, c := range p.Children {
		switch c.Tag {
		case 1:
			rule = string(raw(c))
		case 2:
			name = string(raw(c))
		case 3:
			value = raw(c)
		}
	}
	if name == "" {
		return undefined // AD does not support matching a rule against every attribute
	}
	switch rule {
	case "":
		return m.equality(e, name, value)
	case ruleBitAnd, ruleBitOr:
		want, err := strconv.ParseInt(string(value), 10, 64)
		if err != nil {
			return undefined
		}
		vals := m.d.attrValues(e, name)
		if len(vals) == 0 {
			return undefined
		}
		for _, v := range vals {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				continue
			}
			// AD treats 32-bit attributes as unsigned: -2147483646 & 2 == 2.
			if (rule == ruleBitAnd && n&want == want) || (rule == ruleBitOr && n&want != 0) {
				return isTrue
			}
		}
		return isFalse
	case ruleInChain:
		target, err := normalizeDN(string(value))
		if err != nil || target == "" {
			return undefined
		}
		switch strings.ToLower(name) {
		case "memberof":
			return boolTri(m.ancestorsOf(e.norm)[target])
		case "member":
			return boolTri(m.ancestorsOf(target)[e.norm])
		}
		return m.equality(e, name, value)
	}
	return undefined
}

func (m *matcher) ancestorsOf(norm string) map[string]bool {
	if s, ok := m.chain[norm]; ok {
		return s
	}
	if m.chain == nil {
		m.chain = map[string]map[string]bool{}
	}
	s := m.d.ancestors(norm)
	m.chain[norm] = s
	return s
}

// attrValues includes the computed memberOf.
func (d *Directory) attrValues(e *entry, name string) []string {
	if strings.EqualFold(name, "memberOf") {
		return d.memberOf(e.norm)
	}
	return e.values(name)
}
