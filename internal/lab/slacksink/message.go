package slacksink

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode"
)

// How a message reached the sink.
const (
	ViaAPI     = "chat.postMessage"
	ViaWebhook = "webhook"
)

// Message is one accepted message, as Slack received it.
type Message struct {
	Seq      int             `json:"seq"` // 1-based arrival order
	Via      string          `json:"via"` // ViaAPI or ViaWebhook
	Channel  string          `json:"channel"`
	TS       string          `json:"ts"`
	Received time.Time       `json:"received"`
	Text     string          `json:"text,omitempty"`
	Blocks   json.RawMessage `json:"blocks,omitempty"`
	Parse    string          `json:"parse,omitempty"`
	Mrkdwn   string          `json:"mrkdwn,omitempty"`
}

// TextObject is one piece of text in a message: the top-level text (Type
// "text", Pointer "/text") or a Block Kit text object.
type TextObject struct {
	Pointer  string // JSON pointer, e.g. /blocks/2/fields/0
	Block    string // type of the enclosing block
	Type     string // text | plain_text | mrkdwn
	Text     string
	Verbatim bool
}

// TextObjects lists every text the message carries, top-level text first.
func (m Message) TextObjects() []TextObject {
	var out []TextObject
	if m.Text != "" {
		out = append(out, TextObject{Pointer: "/text", Type: "text", Text: m.Text})
	}
	var blocks []block
	if json.Unmarshal(m.Blocks, &blocks) != nil {
		return out
	}
	add := func(ptr, blockType string, raw json.RawMessage) {
		var t textObject
		if json.Unmarshal(raw, &t) == nil && t.Type != "" {
			out = append(out, TextObject{Pointer: ptr, Block: blockType, Type: t.Type, Text: t.Text, Verbatim: t.Verbatim != nil && *t.Verbatim})
		}
	}
	for i, b := range blocks {
		ptr := fmt.Sprintf("/blocks/%d", i)
		if b.Text != nil {
			out = append(out, TextObject{Pointer: ptr + "/text", Block: b.Type, Type: b.Text.Type, Text: b.Text.Text, Verbatim: b.Text.Verbatim != nil && *b.Text.Verbatim})
		}
		for j, f := range b.Fields {
			add(fmt.Sprintf("%s/fields/%d", ptr, j), b.Type, f)
		}
		for j, e := range b.Elements {
			add(fmt.Sprintf("%s/elements/%d", ptr, j), b.Type, e)
		}
	}
	return out
}

// Live lists the places where Slack would act on markup in the message: a
// raw '<' or '>' opens or closes a mention, channel ping or link, and a
// mrkdwn object without verbatim auto-links URLs, channel names and mentions.
// A renderer that escapes untrusted text leaves nothing here.
func (m Message) Live() []string {
	var out []string
	for _, t := range m.TextObjects() {
		if i := strings.IndexAny(t.Text, "<>"); i >= 0 {
			out = append(out, fmt.Sprintf("%s: raw %q at byte %d: %s", t.Pointer, t.Text[i], i, excerpt(t.Text, i)))
		}
		if t.Type == "mrkdwn" && !t.Verbatim {
			out = append(out, t.Pointer+": mrkdwn without verbatim (Slack auto-links its text)")
		}
	}
	return out
}

func excerpt(s string, i int) string {
	lo, hi := max(0, i-20), min(len(s), i+40)
	return strings.ToValidUTF8(s[lo:hi], "?")
}

// Readable renders the message for a terminal: the header, texts and fields
// one per line, entities decoded, code fences of mrkdwn dropped, and
// control characters removed so a hostile message cannot drive the terminal.
func (m Message) Readable() string {
	var b strings.Builder
	fmt.Fprintf(&b, "── %s · %s #%d ──\n", m.Channel, m.Via, m.Seq)
	var blocks []block
	if len(m.Blocks) == 0 || json.Unmarshal(m.Blocks, &blocks) != nil {
		b.WriteString(terminalSafe(m.Text, true))
		b.WriteString("\n")
		return b.String()
	}
	for _, t := range m.TextObjects() {
		if t.Type == "text" {
			continue // the fallback repeats what the blocks say
		}
		text := terminalSafe(t.Text, false)
		if t.Type == "mrkdwn" {
			text = readableMrkdwn(text)
		}
		switch {
		case t.Block == "header":
			b.WriteString("▌ " + text + "\n")
		case strings.Contains(t.Pointer, "/fields/") || t.Block == "context":
			b.WriteString("   " + strings.ReplaceAll(text, "\n", "\n   ") + "\n")
		default:
			b.WriteString(text + "\n")
		}
	}
	return b.String()
}

// readableMrkdwn drops the bold markers of a leading label ("*Next:* …")
// and shows code blocks indented without their fences.
func readableMrkdwn(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		switch {
		case strings.HasPrefix(l, "```"):
			lines[i] = "    " + strings.TrimSuffix(strings.TrimPrefix(l, "```"), "```")
		case strings.HasPrefix(l, "*"):
			if end := strings.Index(l[1:], "*"); end > 0 {
				lines[i] = l[1:end+1] + l[end+2:]
			}
		}
	}
	return strings.Join(lines, "\n")
}

var entities = strings.NewReplacer("&lt;", "<", "&gt;", ">", "&amp;", "&")

func terminalSafe(s string, mrkdwn bool) string {
	if mrkdwn {
		s = strings.ReplaceAll(s, "```", "")
	}
	s = entities.Replace(strings.ToValidUTF8(s, "\uFFFD"))
	return strings.Map(func(r rune) rune {
		if r == '\n' {
			return r
		}
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return -1
		}
		return r
	}, strings.TrimRight(s, "\n"))
}
