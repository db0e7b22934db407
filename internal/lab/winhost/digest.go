package winhost

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/svcwatch/svcwatch/internal/inventory"
)

// Digest is the canonical inventory digest of docs/internals.md: services
// sorted by upper-cased Name (ordinal, i.e. UTF-16 code unit order as .NET
// compares), each rendered as name, display, path, dll, start, delayed (0|1),
// account, type joined by U+001F, records joined by U+001E, UTF-8, SHA-256,
// lower-case hex. Invalid UTF-8 is replaced first, as PowerShell would.
func Digest(services []inventory.Service) string {
	type keyed struct {
		key string
		svc *inventory.Service
	}
	sorted := make([]keyed, len(services))
	for i := range services {
		sorted[i] = keyed{strings.ToUpper(Sanitize(services[i].Name)), &services[i]}
	}
	slices.SortStableFunc(sorted, func(a, b keyed) int { return compareUTF16(a.key, b.key) })

	h := sha256.New()
	var buf []byte
	for i, k := range sorted {
		s := k.svc
		buf = buf[:0]
		if i > 0 {
			buf = append(buf, 0x1e)
		}
		delayed := "0"
		if s.DelayedAuto {
			delayed = "1"
		}
		for j, f := range []string{
			Sanitize(s.Name), Sanitize(s.DisplayName), Sanitize(s.ImagePath), Sanitize(s.ServiceDLL),
			strconv.Itoa(int(s.StartMode)), delayed, Sanitize(s.Account), strconv.FormatUint(uint64(s.Type), 10),
		} {
			if j > 0 {
				buf = append(buf, 0x1f)
			}
			buf = append(buf, f...)
		}
		h.Write(buf)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Sanitize replaces each byte of invalid UTF-8 with U+FFFD, as a .NET string
// holding unpaired surrogates comes out of UTF-8 encoding.
func Sanitize(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b.WriteRune(utf8.RuneError)
		} else {
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// compareUTF16 orders strings by UTF-16 code units (.NET ordinal comparison):
// it differs from byte order only for characters above U+FFFF against
// U+E000..U+FFFF.
func compareUTF16(a, b string) int {
	for a != "" && b != "" {
		ra, na := utf8.DecodeRuneInString(a)
		rb, nb := utf8.DecodeRuneInString(b)
		if ra != rb {
			return cmp.Compare(utf16Key(ra), utf16Key(rb))
		}
		a, b = a[na:], b[nb:]
	}
	return len(a) - len(b)
}

// utf16Key maps a rune to a value ordered like its UTF-16 encoding.
func utf16Key(r rune) int64 {
	if r >= 0x10000 {
		v := int64(r - 0x10000)
		return (0xD800+v>>10)<<10 | v&0x3FF
	}
	return int64(r) << 10
}
