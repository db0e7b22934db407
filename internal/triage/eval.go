package triage

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/svcwatch/svcwatch/internal/inventory"
)

// CorpusRecord is one line of the shared/corpus JSONL files: a real event
// with its label. Only the fields triage reads are kept.
type CorpusRecord struct {
	ID            string         `json:"id"`
	EventID       int            `json:"EventID"`
	EventRecordID *string        `json:"EventRecordID"`
	TimeCreated   *string        `json:"TimeCreated"`
	Computer      *string        `json:"Computer"`
	UserID        *string        `json:"UserID"`
	ServiceName   *string        `json:"ServiceName"`
	ImagePath     *string        `json:"ImagePath"`
	ServiceType   *string        `json:"ServiceType"`
	StartType     *string        `json:"StartType"`
	AccountName   *string        `json:"AccountName"`
	EventData     map[string]any `json:"event_data"`
	Label         string         `json:"label"`
	AttackType    string         `json:"attack_type"`
	SourceFile    string         `json:"source_file"`
}

// Finding builds the finding svcwatch would raise for the record: installed
// for 7045 and 4697, tamper for 104 and 1102, modified for 7040. ok is false
// for other events. The corpus has no host context, so the host is a member
// server and the installer is the bare SID (tier-0 membership unknown).
func (r CorpusRecord) Finding() (inventory.Finding, bool) {
	host := inventory.Host{Name: strings.ToLower(deref(r.Computer))}
	at := parseCorpusTime(deref(r.TimeCreated))
	ev := inventory.Event{ID: r.EventID, Time: at, SID: deref(r.UserID)}
	if rec, err := strconv.ParseUint(strings.TrimSpace(deref(r.EventRecordID)), 10, 64); err == nil {
		ev.RecordID = rec
	}
	f := inventory.Finding{Host: host, At: at}
	key := r.ID
	switch r.EventID {
	case inventory.EventServiceInstalled:
		ev.Data = []string{
			r.field("ServiceName", r.ServiceName), r.field("ImagePath", r.ImagePath),
			r.field("ServiceType", r.ServiceType), r.field("StartType", r.StartType), r.field("AccountName", r.AccountName),
		}
		in, _ := ev.Install()
		start, typ := inventory.ParseInstallFields(in.StartType, in.ServiceType)
		f.Kind = inventory.KindInstalled
		f.Service = &inventory.Service{Name: in.ServiceName, DisplayName: in.ServiceName, ImagePath: in.ImagePath,
			Account: in.Account, StartMode: start, Type: typ}
	case eventSecurityServiceInstalled:
		// 4697 names its fields differently; ServiceName is the key name.
		name, path := r.field("ServiceName", r.ServiceName), r.field("ServiceFileName", r.ImagePath)
		start, typ := inventory.ParseInstallFields(r.field("ServiceStartType", r.StartType), r.field("ServiceType", r.ServiceType))
		if sid := r.field("SubjectUserSid", nil); sid != "" {
			ev.SID = sid
		}
		ev.Data = []string{name, path, r.field("ServiceType", r.ServiceType), r.field("ServiceStartType", r.StartType), r.field("ServiceAccount", r.AccountName)}
		f.Kind = inventory.KindInstalled
		f.Service = &inventory.Service{Name: name, ImagePath: path, Account: r.field("ServiceAccount", r.AccountName), StartMode: start, Type: typ}
	case inventory.EventLogCleared, inventory.EventAuditLogCleared:
		channel := r.field("ClearedChannel", nil)
		if channel == "" && r.EventID == inventory.EventAuditLogCleared {
			channel = "Security"
		}
		ev.Data = []string{r.field("SubjectUserName", nil), r.field("SubjectDomainName", nil), channel, r.field("BackupPath", nil)}
		f.Kind = inventory.KindTamper
		f.Detail = fmt.Sprintf("the %s log was cleared", channel)
	case inventory.EventStartTypeChanged:
		ev.Data = []string{r.field("param1", nil), r.field("param2", nil), r.field("param3", nil), r.field("param4", nil)}
		now, _ := inventory.ParseInstallFields(ev.Field(2), "")
		before, _ := inventory.ParseInstallFields(ev.Field(1), "")
		f.Kind = inventory.KindModified
		f.Changed = []string{inventory.ChangeStartMode}
		f.Service = &inventory.Service{Name: ev.Field(3), DisplayName: ev.Field(0), StartMode: now}
		f.Previous = &inventory.Service{Name: ev.Field(3), DisplayName: ev.Field(0), StartMode: before}
	default:
		return inventory.Finding{}, false
	}
	f.Event = &ev
	f.ID = inventory.FindingID(host.Name, f.Kind, "corpus", key)
	return f, true
}

// field prefers the raw event_data value, then the flattened top-level one.
func (r CorpusRecord) field(name string, top *string) string {
	if v, ok := r.EventData[name]; ok && v != nil {
		switch x := v.(type) {
		case string:
			return x
		case float64:
			return strconv.FormatFloat(x, 'f', -1, 64)
		default:
			return fmt.Sprint(x)
		}
	}
	return deref(top)
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

var corpusTimeLayouts = []string{time.RFC3339Nano, "2006-01-02 15:04:05.999999999", "2006-01-02 15:04:05", "2006-01-02T15:04:05.999999999"}

func parseCorpusTime(s string) time.Time {
	s = strings.TrimSpace(s)
	for _, l := range corpusTimeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t.UTC()
		}
	}
	return time.Time{}
}

// ReadCorpus parses a JSONL corpus (one record per line; blank lines skipped).
// Errors name the line.
func ReadCorpus(r io.Reader) ([]CorpusRecord, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	var out []CorpusRecord
	for line := 1; sc.Scan(); line++ {
		b := sc.Bytes()
		if len(strings.TrimSpace(string(b))) == 0 {
			continue
		}
		var rec CorpusRecord
		if err := json.Unmarshal(b, &rec); err != nil {
			return nil, fmt.Errorf("corpus line %d: %w; each line must be one JSON object in the shared/corpus format", line, err)
		}
		out = append(out, rec)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read corpus: %w", err)
	}
	return out, nil
}

// TypeResult is the detection of one malicious attack_type.
type TypeResult struct {
	AttackType string
	Total      int
	Flagged    int // at medium or above, not suppressed
}

// Summary is the outcome of Eval.
type Summary struct {
	Records          int
	Skipped          int // events that are not installs, clears or start-type changes
	Types            []TypeResult
	TypesFlagged     int // malicious attack types with at least one record flagged
	Malicious        int
	MaliciousFlagged int
	Benign           int
	BenignFlagged    int
	BenignHigh       int // benign records rated high or above, not allowlisted
	Unknown          int
	UnknownFlagged   int
	// Unexplained counts flagged records without an explanation (must be 0).
	Unexplained int
}

// BenignRate is the share of benign records flagged, in percent.
func (s Summary) BenignRate() float64 {
	if s.Benign == 0 {
		return 0
	}
	return 100 * float64(s.BenignFlagged) / float64(s.Benign)
}

// FlagThreshold is the severity at which eval counts a record as flagged.
const FlagThreshold = inventory.SeverityMedium

// Eval runs triage (built-in allowlist on, no operator entries) over a corpus
// and prints the detection per malicious attack_type, the benign records it
// flags with their reasons, and a last line
// `malicious types flagged N/M, benign flagged X%`.
func Eval(r io.Reader, w io.Writer) (Summary, error) {
	recs, err := ReadCorpus(r)
	if err != nil {
		return Summary{}, err
	}
	if len(recs) == 0 {
		return Summary{}, ErrNoRecords
	}
	t, err := New(Options{DefaultAllow: true})
	if err != nil {
		return Summary{}, err
	}
	var sum Summary
	byType := map[string]*TypeResult{}
	var benignFlagged []string
	for _, rec := range recs {
		sum.Records++
		f, ok := rec.Finding()
		if !ok {
			sum.Skipped++
			continue
		}
		f = t.Apply(f.At, []inventory.Finding{f})[0]
		flagged := f.Severity >= FlagThreshold && !f.Suppressed
		if flagged && !explained(f) {
			sum.Unexplained++
		}
		switch rec.Label {
		case "malicious":
			sum.Malicious++
			tr := byType[rec.AttackType]
			if tr == nil {
				tr = &TypeResult{AttackType: rec.AttackType}
				byType[rec.AttackType] = tr
			}
			tr.Total++
			if flagged {
				sum.MaliciousFlagged++
				tr.Flagged++
			}
		case "benign":
			sum.Benign++
			if f.Severity >= inventory.SeverityHigh && !f.Suppressed {
				sum.BenignHigh++
			}
			if flagged {
				sum.BenignFlagged++
				benignFlagged = append(benignFlagged, fmt.Sprintf("  %s %s: %s", f.Severity, recordName(f), hitIDs(f)))
			}
		default:
			sum.Unknown++
			if flagged {
				sum.UnknownFlagged++
			}
		}
	}
	for _, tr := range byType {
		sum.Types = append(sum.Types, *tr)
		if tr.Flagged > 0 {
			sum.TypesFlagged++
		}
	}
	sort.Slice(sum.Types, func(i, j int) bool { return sum.Types[i].AttackType < sum.Types[j].AttackType })

	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "%d records (%d malicious, %d benign, %d unknown, %d skipped); flagged = %s or above, not allowlisted\n\n",
		sum.Records, sum.Malicious, sum.Benign, sum.Unknown, sum.Skipped, FlagThreshold)
	fmt.Fprintf(bw, "%-8s  %s\n", "flagged", "malicious attack_type")
	for _, tr := range sum.Types {
		fmt.Fprintf(bw, "%3d/%-4d  %s\n", tr.Flagged, tr.Total, tr.AttackType)
	}
	fmt.Fprintf(bw, "\nbenign records flagged: %d/%d\n", sum.BenignFlagged, sum.Benign)
	for _, l := range benignFlagged {
		fmt.Fprintln(bw, l)
	}
	if sum.Unknown > 0 {
		fmt.Fprintf(bw, "unknown-label records flagged: %d/%d\n", sum.UnknownFlagged, sum.Unknown)
	}
	if sum.Unexplained > 0 {
		fmt.Fprintf(bw, "flagged records without an explanation: %d\n", sum.Unexplained)
	}
	fmt.Fprintf(bw, "malicious types flagged %d/%d, benign flagged %.1f%%\n", sum.TypesFlagged, len(sum.Types), sum.BenignRate())
	if err := bw.Flush(); err != nil {
		return sum, fmt.Errorf("write eval report: %w", err)
	}
	return sum, nil
}

func explained(f inventory.Finding) bool {
	for _, h := range f.Hits {
		if strings.TrimSpace(h.Why) != "" && h.Severity >= FlagThreshold {
			return true
		}
	}
	return false
}

func recordName(f inventory.Finding) string {
	if f.Service == nil {
		return string(f.Kind)
	}
	name := []rune(f.Service.Name)
	if len(name) > 60 {
		return strconv.Quote(string(name[:60])) + "…"
	}
	return strconv.Quote(string(name))
}

func hitIDs(f inventory.Finding) string {
	var ids []string
	for _, h := range f.Hits {
		if h.Severity >= FlagThreshold {
			ids = append(ids, h.ID)
		}
	}
	return strings.Join(ids, ", ")
}

// ErrNoRecords is returned by Eval for an empty corpus.
var ErrNoRecords = errors.New("the corpus has no records; pass a JSONL file in the shared/corpus format")
