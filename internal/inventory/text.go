package inventory

import (
	"strings"
	"unicode/utf8"
)

// Text from monitored hosts and from AD is untrusted: an attacker chooses a
// service's name and path. These helpers make it safe to print on a terminal
// or in a log line; Slack rendering (notify) applies its own escaping on top.

// Printable returns s as valid UTF-8 with control characters (C0, DEL, C1)
// and bidirectional overrides replaced by '?', so it cannot move the cursor,
// fake a line or reorder what a reader sees.
func Printable(s string) string {
	return strings.Map(func(r rune) rune {
		if Unprintable(r) {
			return '?'
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
}

// Unprintable reports whether a terminal or a reader would act on r rather
// than show it: C0 and C1 controls, DEL, bidirectional overrides and isolates.
func Unprintable(r rune) bool {
	return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069)
}

// Truncate returns s as valid UTF-8 of at most max bytes plus the marker
// "…" when it had to cut, never splitting a character.
func Truncate(s string, max int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
