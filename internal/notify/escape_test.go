package notify

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestSafe(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		limit int
		p     place
		want  string
	}{
		{"plain passes", `C:\Windows\PSEXESVC.exe`, 100, inPlain, `C:\Windows\PSEXESVC.exe`},
		{"escapes the three", "a&b<c>d", 100, inPlain, "a&amp;b&lt;c&gt;d"},
		{"user mention", "<@U123>", 100, inPlain, "&lt;@U123&gt;"},
		{"channel ping", "<!channel> <!here|here>", 100, inPlain, "&lt;!channel&gt; &lt;!here|here&gt;"},
		{"link", "<http://x|y>", 100, inPlain, "&lt;http://x|y&gt;"},
		{"already escaped is escaped again", "&lt;", 100, inPlain, "&amp;lt;"},
		{"control chars dropped, whitespace to space", "a\x00b\x1b[31mc\td\ne\rf\x7fg", 100, inPlain, "ab[31mc d e fg"},
		{"C1 and bidi and zero-width dropped", "a\u0085b\u202Ec\u200Bd\u2066e\uFEFFf\u2028g", 100, inPlain, "abcdefg"},
		{"invalid UTF-8 replaced", "a\xffb\xc3", 100, inPlain, "a\uFFFDb\uFFFD"},
		{"backtick in code", "a```b`c", 100, inCode, "aˋˋˋbˋc"},
		{"mrkdwn stays in plain", "*b* _i_ ~s~", 100, inPlain, "*b* _i_ ~s~"},
		{"prose neutralises mrkdwn and @", "*b* _i_ ~s~ `c` @channel", 100, inProse, "∗b∗ ˍiˍ ∼s∼ ˋcˋ ＠channel"},
		{"empty", "", 10, inPlain, ""},
		{"zero limit", "abc", 0, inPlain, ""},
		{"exact fit", "abcde", 5, inPlain, "abcde"},
		{"cut with marker", strings.Repeat("x", 100), 45, inPlain, "xxxxxxxxxxx… [truncated: 89 more characters]"},
		{"cut never splits an entity", strings.Repeat("<", 20), 45, inPlain, "&lt;&lt;&lt;… [truncated: 17 more characters]"},
		{"marker does not fit", strings.Repeat("x", 100), 10, inPlain, "…"},
		{"astral chars count two", strings.Repeat("🟥", 40), 50, inPlain, "🟥🟥🟥🟥🟥🟥🟥🟥… [truncated: 32 more characters]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := safe(tt.in, tt.limit, tt.p)
			if got != tt.want {
				t.Errorf("safe(%q, %d) = %q, want %q", tt.in, tt.limit, got, tt.want)
			}
			if slackLen(got) > max(tt.limit, 0) && tt.limit > 0 {
				t.Errorf("length %d over limit %d", slackLen(got), tt.limit)
			}
		})
	}
}

// FuzzSafe checks the promises of safe for any input: valid UTF-8, within the
// limit, no raw angle bracket, no control or invisible formatting character,
// no backtick in code, no mrkdwn or @ in prose, and every '&' starts one of
// the three entities.
func FuzzSafe(f *testing.F) {
	seeds := []string{
		"", "PSEXESVC", "<@U123> <!channel> <http://x|y>", "*bold* _it_ ~st~ `code` ```block```",
		"a\x00\x1b\x7f\u0085\u202e\u200b", "\xff\xfe\xc3", "&amp;&lt;&gt;&", strings.Repeat("<&>", 2000),
		"🟥🟥🟥", "@here @channel @everyone", "C:\\Windows\\System32\\svchost.exe -k netsvcs",
	}
	for _, s := range seeds {
		for _, limit := range []int{1, 37, 150, 3000} {
			f.Add(s, limit, uint8(0))
			f.Add(s, limit, uint8(1))
			f.Add(s, limit, uint8(2))
		}
	}
	f.Fuzz(func(t *testing.T, in string, limit int, p uint8) {
		limit = limit%5000 + 1
		if limit <= 0 {
			limit = -limit + 1
		}
		pl := place(p % 3)
		got := safe(in, limit, pl)
		if !utf8.ValidString(got) {
			t.Fatalf("invalid UTF-8: %q", got)
		}
		if slackLen(got) > limit {
			t.Fatalf("length %d > limit %d: %q", slackLen(got), limit, got)
		}
		if strings.ContainsAny(got, "<>") {
			t.Fatalf("raw angle bracket: %q", got)
		}
		for _, r := range got {
			if unicode.IsControl(r) || unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp) {
				t.Fatalf("control or format character %U in %q", r, got)
			}
		}
		if pl != inPlain && strings.Contains(got, "`") {
			t.Fatalf("backtick in code or prose: %q", got)
		}
		if pl == inProse && strings.ContainsAny(got, "*_~@") {
			t.Fatalf("mrkdwn or @ in prose: %q", got)
		}
		rest := got
		for {
			i := strings.IndexByte(rest, '&')
			if i < 0 {
				break
			}
			rest = rest[i:]
			if !strings.HasPrefix(rest, "&amp;") && !strings.HasPrefix(rest, "&lt;") && !strings.HasPrefix(rest, "&gt;") {
				t.Fatalf("bare '&' in %q", got)
			}
			rest = rest[1:]
		}
	})
}
