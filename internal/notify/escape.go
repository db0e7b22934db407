package notify

import (
	"fmt"
	"iter"
	"strings"
	"unicode"
	"unicode/utf16"
)

// place is where a piece of untrusted text ends up in a Slack message.
type place int

const (
	// inPlain is a plain_text object: Slack parses no mentions, links or
	// formatting there, but still decodes &amp; &lt; &gt;.
	inPlain place = iota
	// inCode is between ``` fences of a verbatim mrkdwn object: a backtick
	// would close the fence, so it is replaced by a look-alike.
	inCode
	// inProse is the top-level fallback text, which Slack reads as mrkdwn:
	// formatting characters and '@' are replaced by look-alikes.
	inProse
)

// lookalikes replace characters that would be markup in a place.
var (
	codeLookalikes  = map[rune]rune{'`': 'ˋ'}
	proseLookalikes = map[rune]rune{'`': 'ˋ', '*': '∗', '_': 'ˍ', '~': '∼', '@': '＠'}
)

// safe is the one way untrusted text (anything from a monitored host or AD)
// enters a message. It replaces invalid UTF-8, drops control and invisible
// formatting characters (newlines and tabs become spaces), neutralises markup
// for place p, escapes &, < and >, and fits the result in limit characters
// as Slack counts them, ending with a visible marker when it had to cut.
// It never fails; it returns "" for empty input or a limit too small.
func safe(s string, limit int, p place) string {
	if limit <= 0 || s == "" {
		return ""
	}
	total, count := 0, 0
	for piece := range pieces(s, p) {
		total += slackLen(piece)
		count++
	}
	var b strings.Builder
	if total <= limit {
		for piece := range pieces(s, p) {
			b.WriteString(piece)
		}
		return b.String()
	}
	// Reserve room for the marker with the widest count it can show.
	budget := limit - slackLen(marker(count))
	if budget < 0 {
		return "…" // not even the marker fits
	}
	used, kept := 0, 0
	for piece := range pieces(s, p) {
		n := slackLen(piece)
		if used+n > budget {
			break
		}
		b.WriteString(piece)
		used += n
		kept++
	}
	b.WriteString(marker(count - kept))
	return b.String()
}

// pieces yields s cleaned for place p, one escaped piece per kept character.
func pieces(s string, p place) iter.Seq[string] {
	var look map[rune]rune
	switch p {
	case inCode:
		look = codeLookalikes
	case inProse:
		look = proseLookalikes
	}
	return func(yield func(string) bool) {
		for _, r := range s { // ranging a string yields U+FFFD for invalid bytes
			switch {
			case r == '\t' || r == '\n' || r == '\r':
				r = ' '
			case unicode.IsControl(r) || unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp):
				continue
			}
			if l, ok := look[r]; ok {
				r = l
			}
			piece := string(r)
			switch r {
			case '&':
				piece = "&amp;"
			case '<':
				piece = "&lt;"
			case '>':
				piece = "&gt;"
			}
			if !yield(piece) {
				return
			}
		}
	}
}

// marker tells the reader that n characters were cut.
func marker(n int) string {
	return fmt.Sprintf("… [truncated: %d more characters]", n)
}

// orNone is safe(s) or a trusted placeholder when nothing is left.
func orNone(s string, limit int, p place) string {
	if v := safe(s, limit, p); strings.TrimSpace(v) != "" {
		return v
	}
	return "(none)"
}

// fitTrusted cuts our own text to limit characters (it needs no escaping).
func fitTrusted(s string, limit int) string {
	if slackLen(s) <= limit {
		return s
	}
	var b strings.Builder
	n := 0
	for _, r := range s {
		w := slackLen(string(r))
		if n+w > limit-1 {
			break
		}
		b.WriteRune(r)
		n += w
	}
	b.WriteString("…")
	return b.String()
}

// slackLen counts characters the way Slack's limits do: UTF-16 code units,
// so a character outside the BMP (most emoji) counts as two.
func slackLen(s string) int {
	n := 0
	for _, r := range s {
		n += max(1, utf16.RuneLen(r))
	}
	return n
}
