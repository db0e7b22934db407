package triage

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/svcwatch/svcwatch/internal/inventory"
	"github.com/svcwatch/svcwatch/internal/refdata"
)

func sharedDir(t *testing.T) string { return refdata.Require(t) }

func openCorpus(t *testing.T, name string) *os.File {
	t.Helper()
	f, err := os.Open(filepath.Join(sharedDir(t), "corpus", name))
	if err != nil {
		t.Fatalf("open corpus: %v", err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

var lastLine = regexp.MustCompile(`^malicious types flagged (\d+)/(\d+), benign flagged (\d+\.\d)%$`)

// TestEvalServiceInstalls is the acceptance test of issue 5: every malicious
// attack_type flagged at medium or above, at most 5% of benign records, and
// every flagged record explained.
func TestEvalServiceInstalls(t *testing.T) {
	var out bytes.Buffer
	sum, err := Eval(openCorpus(t, "service-installs.jsonl"), &out)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", out.String())
	if sum.Records != 461 || sum.Skipped != 0 {
		t.Errorf("read %d records, skipped %d; want all 461", sum.Records, sum.Skipped)
	}
	if len(sum.Types) != 13 {
		t.Errorf("found %d malicious attack types, want 13", len(sum.Types))
	}
	for _, tr := range sum.Types {
		if tr.Flagged != tr.Total {
			t.Errorf("%s: flagged %d of %d records", tr.AttackType, tr.Flagged, tr.Total)
		}
	}
	if sum.TypesFlagged != len(sum.Types) {
		t.Errorf("malicious types flagged %d/%d", sum.TypesFlagged, len(sum.Types))
	}
	if sum.Benign != 170 || sum.BenignRate() > 5 {
		t.Errorf("benign flagged %d/%d (%.1f%%), want at most 5%%", sum.BenignFlagged, sum.Benign, sum.BenignRate())
	}
	if sum.BenignHigh != 0 {
		t.Errorf("%d benign records rated high or above", sum.BenignHigh)
	}
	if sum.Unexplained != 0 {
		t.Errorf("%d flagged records carry no explanation", sum.Unexplained)
	}
	lines := strings.Split(strings.TrimRight(out.String(), "\n"), "\n")
	m := lastLine.FindStringSubmatch(lines[len(lines)-1])
	if m == nil {
		t.Fatalf("last line %q does not match %s", lines[len(lines)-1], lastLine)
	}
	if m[1] != m[2] {
		t.Errorf("last line reports %s/%s types", m[1], m[2])
	}
}

// TestEvalLogEvents: every 104 and 1102 in the corpus is a tamper finding at
// high or above; the routine 7040 start-type changes stay below medium, the
// malicious ones (EventLog disabled) do not.
func TestEvalLogEvents(t *testing.T) {
	recs, err := ReadCorpus(openCorpus(t, "log-events.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	tr, err := New(Options{DefaultAllow: true})
	if err != nil {
		t.Fatal(err)
	}
	var clears, benign7040, benignFlagged int
	for _, r := range recs {
		f, ok := r.Finding()
		if !ok {
			t.Fatalf("record %s (event %d) not understood", r.ID, r.EventID)
		}
		f = tr.Apply(f.At, []inventory.Finding{f})[0]
		switch r.EventID {
		case inventory.EventLogCleared, inventory.EventAuditLogCleared:
			clears++
			if f.Kind != inventory.KindTamper || f.Severity < inventory.SeverityHigh || f.Suppressed {
				t.Errorf("record %s: %s %s suppressed=%v, want tamper at high", r.ID, f.Kind, f.Severity, f.Suppressed)
			}
		case inventory.EventStartTypeChanged:
			flagged := f.Severity >= FlagThreshold
			if r.Label == "malicious" && !flagged {
				t.Errorf("record %s (%s): %s, want flagged", r.ID, r.AttackType, f.Severity)
			}
			if r.Label == "benign" {
				benign7040++
				if flagged {
					benignFlagged++
				}
			}
		}
	}
	if clears != 245 {
		t.Errorf("saw %d log clears, want 245", clears)
	}
	if benign7040 == 0 || benignFlagged*100 > benign7040 {
		t.Errorf("benign 7040 flagged %d/%d", benignFlagged, benign7040)
	}
}

// TestCorpusLogClearsThroughDetect feeds each real 104 and 1102 to Detect as
// the collector would return it and checks that the pipeline raises tamper
// (critical: the host is a domain controller).
func TestCorpusLogClearsThroughDetect(t *testing.T) {
	recs, err := ReadCorpus(openCorpus(t, "log-events.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	tr, _ := New(Options{DefaultAllow: true})
	host := inventory.Host{Name: "dc01.corp.example", Reasons: []inventory.Reason{{Kind: inventory.ReasonDC}}}
	n := 0
	for _, r := range recs {
		if r.EventID != inventory.EventLogCleared && r.EventID != inventory.EventAuditLogCleared {
			continue
		}
		f, _ := r.Finding()
		ev := *f.Event
		if ev.RecordID == 0 {
			ev.RecordID = 1000 // the corpus lost some record ids; the collector always has one
		}
		at := ev.Time
		if at.IsZero() {
			at = time.Date(2026, 12, 4, 15, 0, 0, 0, time.UTC)
		}
		prev := inventory.State{Host: host.Name, Baselined: true, Watermark: ev.RecordID - 1, Digest: "d",
			Log: inventory.LogInfo{OldestRecord: 1, NewestRecord: ev.RecordID - 1, MaxBytes: 20 << 20, Retention: "circular"}}
		obs := inventory.Observation{Host: host.Name, At: at, Digest: "d", Events: []inventory.Event{ev},
			// After a clear the log holds little but the 104 itself.
			Log: inventory.LogInfo{OldestRecord: ev.RecordID, NewestRecord: ev.RecordID, MaxBytes: 20 << 20, Retention: "circular"}}
		next, fs := inventory.Detect(host, prev, obs, inventory.DetectOptions{Lookback: time.Hour, Now: at})
		fs = tr.Apply(at, fs)
		if len(fs) != 1 || fs[0].Kind != inventory.KindTamper || fs[0].Severity != inventory.SeverityCritical || fs[0].Event == nil {
			t.Fatalf("record %s: %+v", r.ID, fs)
		}
		if next.Watermark != ev.RecordID {
			t.Fatalf("record %s: watermark %d", r.ID, next.Watermark)
		}
		n++
	}
	if n != 245 {
		t.Errorf("checked %d clears, want 245", n)
	}
}

func TestEvalErrors(t *testing.T) {
	if _, err := Eval(strings.NewReader(""), &bytes.Buffer{}); !errors.Is(err, ErrNoRecords) {
		t.Errorf("empty corpus: %v", err)
	}
	_, err := Eval(strings.NewReader("{\"EventID\": 7045}\nnot json\n"), &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "corpus line 2") {
		t.Errorf("bad line: %v", err)
	}
	// Events other than installs, clears and start-type changes are counted, not judged.
	var out bytes.Buffer
	sum, err := Eval(strings.NewReader(`{"EventID": 7036, "label": "benign"}`+"\n"), &out)
	if err != nil || sum.Skipped != 1 || !strings.HasSuffix(out.String(), "malicious types flagged 0/0, benign flagged 0.0%\n") {
		t.Errorf("skip: %+v %v %q", sum, err, out.String())
	}
}

func TestCorpusRecordFinding4697(t *testing.T) {
	line := `{"EventID": 4697, "EventRecordID": "77", "TimeCreated": "2020-10-18 10:56:05.751", "Computer": "WKS5", "UserID": null,
	 "ServiceName": "ignored-top-level", "event_data": {"ServiceName": "BTOBTO", "ServiceFileName": "%COMSPEC% /Q /c echo x",
	 "ServiceType": "0x00000010", "ServiceStartType": "3", "ServiceAccount": "LocalSystem", "SubjectUserSid": "S-1-5-21-1-2-3-1111"},
	 "label": "malicious", "attack_type": "Impacket smbexec"}`
	recs, err := ReadCorpus(strings.NewReader(strings.ReplaceAll(line, "\n", "")))
	if err != nil {
		t.Fatal(err)
	}
	f, ok := recs[0].Finding()
	if !ok || f.Kind != inventory.KindInstalled || f.Service.Name != "BTOBTO" || f.Service.ImagePath != "%COMSPEC% /Q /c echo x" ||
		f.Service.StartMode != inventory.StartDemand || f.Service.Type != inventory.TypeOwnProcess || f.Event.SID != "S-1-5-21-1-2-3-1111" ||
		f.Event.RecordID != 77 || f.At.IsZero() || f.Host.Name != "wks5" {
		t.Errorf("4697 finding: %+v service %+v event %+v", f, f.Service, f.Event)
	}
}
