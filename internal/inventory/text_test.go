package inventory

import (
	"testing"
	"unicode/utf8"
)

func TestPrintable(t *testing.T) {
	tests := []struct{ in, want string }{
		{"dc01.corp.example", "dc01.corp.example"},
		{"evil\r\nINFO fake log line", "evil??INFO fake log line"},
		{"\x1b[2Jclear", "?[2Jclear"},
		{"name\u202eexe.txt", "name?exe.txt"},
		{"bad\xffutf8", "bad\uFFFDutf8"},
		{"C1\u0085next", "C1?next"},
		{"ünïcode ok", "ünïcode ok"},
	}
	for _, tt := range tests {
		if got := Printable(tt.in); got != tt.want {
			t.Errorf("Printable(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestTruncate(t *testing.T) {
	tests := []struct {
		in   string
		max  int
		want string
	}{
		{"short", 10, "short"},
		{"exactly10!", 10, "exactly10!"},
		{"this is too long", 7, "this is…"},
		{"ééééé", 3, "é…"},         // never splits a two-byte character
		{"\xff\xfe", 10, "\uFFFD"}, // a run of invalid bytes becomes one replacement
	}
	for _, tt := range tests {
		got := Truncate(tt.in, tt.max)
		if got != tt.want || !utf8.ValidString(got) {
			t.Errorf("Truncate(%q, %d) = %q, want %q", tt.in, tt.max, got, tt.want)
		}
	}
}
