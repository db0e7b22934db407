package notify

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/svcwatch/svcwatch/internal/inventory"
)

// Slack's Block Kit limits (characters as Slack counts them).
const (
	maxBlocks      = 50
	maxText        = 3000 // section text, context element
	maxField       = 2000 // one section field
	maxFields      = 10   // fields per section
	maxHeader      = 150  // header plain_text
	maxFallback    = 500  // our own cap on the notification text
	maxHitLine     = 600  // one heuristic explanation
	maxDigestLine  = 300  // one finding in a digest
	digestReserved = 6    // blocks a digest uses besides its list
)

// Message is one rendered Slack message: Block Kit blocks and the plain
// fallback Slack shows in notifications. It marshals to the JSON Slack gets.
type Message struct {
	Text   string        `json:"text"`
	Blocks []slack.Block `json:"blocks"`
}

// JSON is the message as indented JSON (golden files, the lab's printout).
func (m Message) JSON() []byte {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil { // slack-go block types always marshal
		panic(fmt.Sprintf("notify: marshal message: %v", err))
	}
	return b
}

var severityMark = map[inventory.Severity]string{
	inventory.SeverityInfo:     "⬜",
	inventory.SeverityLow:      "🟦",
	inventory.SeverityMedium:   "🟨",
	inventory.SeverityHigh:     "🟧",
	inventory.SeverityCritical: "🟥",
}

func sevLabel(s inventory.Severity) string {
	mark, ok := severityMark[s]
	if !ok {
		mark = "⬜"
	}
	return mark + " " + strings.ToUpper(s.String())
}

// kindText is our own wording for each finding kind.
type kindText struct {
	title string // header
	what  string // first line of the body
	next  string // what to do next, one line
}

var kinds = map[inventory.Kind]kindText{
	inventory.KindInstalled: {
		"Service installed",
		"A service was installed (System event 7045) and is in the service inventory.",
		"Confirm with the host's owner that this install was planned; if not, isolate the host and collect the binary at the image path.",
	},
	inventory.KindEphemeral: {
		"Service installed and already gone",
		"A service was installed (System event 7045) and was gone by the next poll: the create-run-delete pattern of PsExec, smbexec and Cobalt Strike.",
		"Treat it as remote execution: find the installer's logon on this host (Security 4624/4648) and every other host that account reached.",
	},
	inventory.KindSilent: {
		"Service appeared without event 7045",
		"A service is in the inventory but no 7045 event announced it: written straight to the registry, or the log was cleared or wrapped.",
		"Find who wrote the service's registry key and check the System log for clearing; a silent service on a DC is persistence until proven otherwise.",
	},
	inventory.KindModified: {
		"Service changed",
		"An existing service's image path, ServiceDll, account or start mode changed. Windows logs no 7045 for this.",
		"Compare the new value with the vendor's; a changed binPath on an existing service is a classic hijack: restore it and find who changed it.",
	},
	inventory.KindRemoved: {
		"Service removed",
		"A service disappeared from the inventory.",
		"If nobody uninstalled it, look for an install finding just before: create-run-delete is how remote execution tools clean up.",
	},
	inventory.KindTamper: {
		"System log tampering",
		"The System log was cleared, its record ids went backwards, or more records are missing than the log size explains.",
		"Treat it as anti-forensics: preserve the remaining logs now (Security 1102 too) and review who has admin rights on this host.",
	},
	inventory.KindUnreachable: {
		"Host unreachable",
		"svcwatch could not poll this host several times in a row; nothing on it is being watched.",
		"Run `svcwatch check HOST`; if the host is up, someone may be blocking WinRM or the poller's account to hide activity.",
	},
	inventory.KindRecovered: {
		"Host reachable again",
		"The host answers polls again. Anything installed meanwhile is reported as it is found.",
		"Review this host's findings from the next poll; services added while it was dark show up as silent.",
	},
	inventory.KindScope: {
		"Monitored hosts changed",
		"A host entered or left the monitored set (a new domain controller, a group or OU change).",
		"Confirm the directory change was expected: a DC nobody promoted, or a sensitive host leaving scope, needs an answer.",
	},
}

func textFor(k inventory.Kind) kindText {
	if t, ok := kinds[k]; ok {
		return t
	}
	return kindText{
		title: "Finding",
		what:  "svcwatch reported a finding of a kind this version cannot describe.",
		next:  "Upgrade svcwatch or read the finding in its store.",
	}
}

// serviceView is what a message shows about the service, from the inventory
// entry when there is one, else from the 7045 event.
type serviceView struct {
	name, display, path, dll, account, start, kind string
}

func viewOf(s *inventory.Service) serviceView {
	if s == nil {
		return serviceView{}
	}
	start := s.StartMode.String()
	if s.DelayedAuto {
		start += " (delayed)"
	}
	return serviceView{
		name: s.Name, display: s.DisplayName, path: s.ImagePath, dll: s.ServiceDLL,
		account: s.Account, start: start, kind: typeText(s.Type),
	}
}

func typeText(t uint32) string {
	switch {
	case t&inventory.TypeKernelDriver != 0:
		return "kernel driver"
	case t&inventory.TypeFileSystemDriver != 0:
		return "file system driver"
	case t&inventory.TypeOwnProcess != 0:
		return "service (own process)"
	case t&inventory.TypeShareProcess != 0:
		return "service (shared process)"
	}
	return "type 0x" + strconv.FormatUint(uint64(t), 16)
}

func findingView(f inventory.Finding) (now, before serviceView) {
	now = viewOf(f.Service)
	before = viewOf(f.Previous)
	if f.Service == nil && f.Previous != nil && f.Kind != inventory.KindModified {
		now = before // removed: show the service as last seen
	}
	if in, ok := eventInstall(f); ok && now.name == "" {
		now = serviceView{name: in.ServiceName, path: in.ImagePath, account: in.Account, start: in.StartType, kind: in.ServiceType}
	}
	return now, before
}

func eventInstall(f inventory.Finding) (inventory.Install, bool) {
	if f.Event == nil {
		return inventory.Install{}, false
	}
	return f.Event.Install()
}

// Render builds the message for one finding. It is pure and never fails:
// every untrusted value passes through safe, and every Slack limit is kept.
func Render(f inventory.Finding) Message {
	kt := textFor(f.Kind)
	now, before := findingView(f)
	subject := now.name
	if subject == "" {
		subject = f.Host.Name
	}

	var blocks []slack.Block
	where := ""
	if subject != f.Host.Name {
		where = f.Host.Name
	}
	blocks = append(blocks, header(sevLabel(f.Severity)+" · "+kt.title, subject, where))

	body := kt.what
	if f.Detail != "" {
		body += "\n" + safe(f.Detail, maxText-slackLen(body)-1, inPlain)
	}
	blocks = append(blocks, plainSection(body))

	var fields []string
	fields = append(fields, field("Host", f.Host.Name))
	if r := f.Host.ReasonText(); r != "" {
		fields = append(fields, field("Monitored as", r))
	}
	if now.name != "" || before.name != "" {
		name := cmp.Or(now.name, before.name)
		fields = append(fields, field("Service", name))
		if d := cmp.Or(now.display, before.display); d != "" && d != name {
			fields = append(fields, field("Display name", d))
		}
		fields = append(fields, changeField("Account", before.account, now.account, f.Kind))
		fields = append(fields, changeField("Start mode", before.start, now.start, f.Kind))
		if now.kind != "" {
			fields = append(fields, field("Type", now.kind))
		}
	}
	if f.Installer != nil {
		fields = append(fields, field(actorLabel(f.Kind), installerText(*f.Installer)))
	}
	fields = append(fields, timeFields(f)...)
	blocks = append(blocks, fieldSections(fields)...)

	if f.Kind == inventory.KindModified && before.path != now.path {
		blocks = append(blocks, codeSection("Image path was", before.path), codeSection("Image path now", now.path))
	} else if now.path != "" {
		blocks = append(blocks, codeSection("Image path", now.path))
	}
	if f.Kind == inventory.KindModified && before.dll != now.dll {
		blocks = append(blocks, codeSection("ServiceDll was", before.dll), codeSection("ServiceDll now", now.dll))
	} else if now.dll != "" {
		blocks = append(blocks, codeSection("ServiceDll", now.dll))
	}
	if len(f.Hits) > 0 {
		blocks = append(blocks, hitsSection(f.Hits))
	}
	blocks = append(blocks,
		slack.NewContextBlock("", mrkdwn("*Next:* "+kt.next)),
		slack.NewContextBlock("", plain(fitTrusted("svcwatch · finding ", maxText)+orNone(f.ID, 200, inPlain))),
	)

	text := sevLabel(f.Severity) + " · " + kt.title + ": " + safe(subject, 200, inProse)
	if subject != f.Host.Name {
		text += " on " + safe(f.Host.Name, 200, inProse)
	}
	return Message{Text: fitTrusted(text, maxFallback), Blocks: capBlocks(blocks)}
}

// header is a header block: our label, then the untrusted subject and the
// host it is on (if any), each cut to fit in what is left.
func header(label, subject, host string) slack.Block {
	label = fitTrusted(label, maxHeader)
	room := maxHeader - slackLen(label) - 2
	if host != "" {
		h := safe(host, room/2, inPlain)
		if s := safe(subject, room-slackLen(h)-4, inPlain); s != "" && h != "" {
			return slack.NewHeaderBlock(plain(label + ": " + s + " on " + h))
		}
	}
	if s := safe(subject, room, inPlain); s != "" {
		label += sep(label) + s
	}
	return slack.NewHeaderBlock(plain(label))
}

func plain(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.PlainTextType, s, false, false)
}

// mrkdwn is only ever used for our own text or safe(…, inCode) inside fences;
// verbatim stops Slack from auto-linking anything in it.
func mrkdwn(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.MarkdownType, s, false, true)
}

func plainSection(s string) slack.Block {
	return slack.NewSectionBlock(plain(fitTrusted(s, maxText)), nil, nil)
}

// field is "Label: value" with the untrusted value made safe to fit a field.
func field(label, value string) string {
	prefix := label + ": "
	return prefix + orNone(value, maxField-slackLen(prefix), inPlain)
}

// changeField shows "was → now" for a modified service when the value changed.
func changeField(label, was, now string, k inventory.Kind) string {
	if k != inventory.KindModified || was == now {
		return field(label, now)
	}
	prefix := label + ": "
	half := (maxField - slackLen(prefix) - 3) / 2
	return prefix + orNone(was, half, inPlain) + " → " + orNone(now, half, inPlain)
}

// actorLabel names the account behind a finding (Finding.Installer).
func actorLabel(k inventory.Kind) string {
	switch k {
	case inventory.KindTamper:
		return "Cleared by"
	case inventory.KindModified:
		return "Changed by"
	case inventory.KindInstalled, inventory.KindEphemeral, inventory.KindSilent:
		return "Installed by"
	}
	return "Account"
}

func installerText(a inventory.Account) string {
	who := a.Name
	if who == "" {
		who = a.SID + " (unresolved)"
	}
	if !a.Privileged {
		return who + ", not privileged"
	}
	if len(a.Groups) == 0 {
		return who + ", PRIVILEGED"
	}
	return who + ", PRIVILEGED (" + strings.Join(a.Groups, ", ") + ")"
}

func timeFields(f inventory.Finding) []string {
	var out []string
	if f.Event != nil {
		if !f.Event.Time.IsZero() {
			out = append(out, "Event time: "+utc(f.Event.Time))
		}
		out = append(out, fmt.Sprintf("Record id: %d (event %d)", f.Event.RecordID, f.Event.ID))
		if f.Event.ID == inventory.EventLogCleared && f.Installer == nil {
			who := f.Event.Field(1) + `\` + f.Event.Field(0)
			if who == `\` {
				who = ""
			}
			out = append(out, field("Cleared by", who))
		}
	} else if !f.At.IsZero() {
		out = append(out, "Seen at: "+utc(f.At))
	}
	return out
}

func utc(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") }

// fieldSections puts ready field texts into sections of at most ten.
func fieldSections(fields []string) []slack.Block {
	var out []slack.Block
	for chunk := range slices.Chunk(fields, maxFields) {
		objs := make([]*slack.TextBlockObject, len(chunk))
		for i, s := range chunk {
			objs[i] = plain(fitTrusted(s, maxField))
		}
		out = append(out, slack.NewSectionBlock(nil, objs, nil))
	}
	return out
}

// codeSection shows an untrusted value in a code block under a bold label.
func codeSection(label, value string) slack.Block {
	if value == "" {
		return slack.NewSectionBlock(mrkdwn("*"+label+"*\n(none)"), nil, nil)
	}
	open := "*" + label + "*\n```"
	return slack.NewSectionBlock(mrkdwn(open+safe(value, maxText-slackLen(open)-3, inCode)+"```"), nil, nil)
}

func hitsSection(hits []inventory.Hit) slack.Block {
	lines := make([]string, 0, len(hits))
	for _, h := range hits {
		line := "• " + safe(h.Why, maxHitLine, inPlain) + " (" + h.Severity.String() + ", " + safe(h.ID, 100, inPlain)
		if h.Follows != "" {
			line += "; follows " + safe(h.Follows, 200, inPlain)
		}
		line += ")"
		lines = append(lines, line)
	}
	return listSections("Why it was flagged:", lines, 1)[0]
}

// listSections packs lines into at most maxSections plain_text sections of
// maxText characters, ending with a count of the lines that did not fit.
func listSections(title string, lines []string, maxSections int) []slack.Block {
	var out []slack.Block
	cur := title
	more := func(n int) string { return fmt.Sprintf("… and %d more not shown here", n) }
	for i, line := range lines {
		room := maxText
		if len(out) == maxSections-1 {
			room -= slackLen(more(len(lines))) + 1 // the last section keeps room for the count
		}
		if cur != "" && slackLen(cur)+1+slackLen(line) > room {
			if len(out) == maxSections-1 {
				cur += "\n" + more(len(lines)-i)
				return append(out, plainSection(cur))
			}
			out = append(out, plainSection(cur))
			cur = ""
		}
		if cur != "" {
			cur += "\n"
		}
		cur += line
	}
	return append(out, plainSection(cur))
}

// capBlocks keeps a message within 50 blocks (it cannot exceed it today; this
// guards future additions) by dropping the blocks before the two trailers.
func capBlocks(blocks []slack.Block) []slack.Block {
	if len(blocks) <= maxBlocks {
		return blocks
	}
	out := append([]slack.Block(nil), blocks[:maxBlocks-3]...)
	out = append(out, plainSection(fmt.Sprintf("… %d blocks left out (Slack allows %d)", len(blocks)-maxBlocks+2, maxBlocks)))
	return append(out, blocks[len(blocks)-2:]...)
}

// RenderDigest builds one message for a burst of findings (one host, one
// poll) that would otherwise flood the channel: highest severity first, one
// line each, within Slack's limits whatever the count.
func RenderDigest(fs []inventory.Finding) Message {
	if len(fs) == 0 {
		return Message{Text: "svcwatch: empty digest", Blocks: []slack.Block{plainSection("svcwatch: no findings.")}}
	}
	sorted := slices.Clone(fs)
	slices.SortStableFunc(sorted, func(a, b inventory.Finding) int { return cmp.Compare(b.Severity, a.Severity) })
	top := sorted[0].Severity
	host := fs[0].Host

	hosts := map[string]bool{}
	byKind := map[inventory.Kind]int{}
	var latest time.Time
	for _, f := range fs {
		hosts[f.Host.Name] = true
		byKind[f.Kind]++
		if f.At.After(latest) {
			latest = f.At
		}
	}
	subject := host.Name
	if len(hosts) > 1 {
		subject = fmt.Sprintf("%d hosts", len(hosts))
	}
	label := fmt.Sprintf("%s · %d findings", sevLabel(top), len(fs))

	var blocks []slack.Block
	blocks = append(blocks, header(label+" on", subject, ""))
	blocks = append(blocks, plainSection(fmt.Sprintf(
		"%d findings in one poll, grouped into one message instead of %d. Highest severity first; each is stored with its full details.",
		len(fs), len(fs))))

	fields := []string{field("Host", subject)}
	if r := host.ReasonText(); r != "" && len(hosts) == 1 {
		fields = append(fields, field("Monitored as", r))
	}
	fields = append(fields, "Findings: "+kindCounts(byKind))
	if !latest.IsZero() {
		fields = append(fields, "Latest: "+utc(latest))
	}
	blocks = append(blocks, fieldSections(fields)...)

	lines := make([]string, len(sorted))
	for i, f := range sorted {
		lines[i] = digestLine(f, len(hosts) > 1)
	}
	blocks = append(blocks, listSections("Findings:", lines, maxBlocks-digestReserved)...)
	blocks = append(blocks, slack.NewContextBlock("", mrkdwn(
		"*Next:* many changes at once are a software rollout or an attacker deploying tools: check the installer accounts and the critical lines first.")))

	text := fmt.Sprintf("%s · %d findings on %s", sevLabel(top), len(fs), safe(subject, 200, inProse))
	return Message{Text: fitTrusted(text, maxFallback), Blocks: capBlocks(blocks)}
}

func kindCounts(byKind map[inventory.Kind]int) string {
	keys := make([]string, 0, len(byKind))
	for k := range byKind {
		keys = append(keys, string(k))
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", safe(k, 40, inPlain), byKind[inventory.Kind(k)])
	}
	return strings.Join(parts, ", ")
}

func digestLine(f inventory.Finding, withHost bool) string {
	now, _ := findingView(f)
	var parts []string
	if withHost {
		parts = append(parts, f.Host.Name)
	}
	if now.name != "" {
		parts = append(parts, now.name)
	}
	if now.path != "" {
		parts = append(parts, now.path)
	}
	if len(f.Hits) > 0 {
		parts = append(parts, f.Hits[0].Why)
	} else if f.Detail != "" {
		parts = append(parts, f.Detail)
	}
	// Severity and kind are ours; the rest is untrusted and safe'd as one.
	return "• " + strings.ToUpper(f.Severity.String()) + " " + safe(string(f.Kind), 40, inPlain) + " " +
		orNone(strings.Join(parts, " — "), maxDigestLine, inPlain)
}

// sep joins a header label to its subject: "… 50 findings on dc01", "…: PSEXESVC".
func sep(label string) string {
	if strings.HasSuffix(label, " on") {
		return " "
	}
	return ": "
}
