package winrm

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/svcwatch/svcwatch/internal/triage"
)

const testDigest = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// validAnswer is a collector answer as a generic map, to mutate in tests.
func validAnswer() map[string]any {
	return map[string]any{
		"v": 1, "host": "DC01", "now": "2026-12-04T15:00:00.000Z",
		"log": map[string]any{"oldest": 1, "newest": 5234, "records": 5234, "max_bytes": 20971520, "retention": "circular"},
		"events": []any{map[string]any{
			"id": 7045, "rec": 5230, "time": "2026-12-04T14:59:01.1234567Z", "sid": "S-1-5-21-1-2-3-1104",
			"data": []any{"PSEXESVC", `%SystemRoot%\PSEXESVC.exe`, "user mode service", "demand start", "LocalSystem"},
		}},
		"more": false, "digest": testDigest, "changed": true,
		"services": []any{map[string]any{
			"name": "PSEXESVC", "display": "PSEXESVC", "path": `%SystemRoot%\PSEXESVC.exe`, "dll": "",
			"start": 3, "delayed": false, "account": "LocalSystem", "type": 16, "state": "Running",
		}},
	}
}

func encode(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var testReq = collectRequest{Watermark: 5000, MaxEvents: 100}

func TestParseAnswerValid(t *testing.T) {
	ans, err := parseAnswer(append(encode(t, validAnswer()), " \r\n"...), testReq)
	if err != nil {
		t.Fatal(err)
	}
	o := ans.Observation
	if !o.At.Equal(time.Date(2026, 12, 4, 15, 0, 0, 0, time.UTC)) || o.Log.NewestRecord != 5234 || o.Log.Retention != "circular" || o.Digest != testDigest || !ans.Changed {
		t.Errorf("observation header: %+v", o)
	}
	if len(o.Events) != 1 || o.Events[0].RecordID != 5230 || o.Events[0].Time.Nanosecond() != 123456700 {
		t.Fatalf("events: %+v", o.Events)
	}
	in, ok := o.Events[0].Install()
	if !ok || in.ServiceName != "PSEXESVC" || in.Account != "LocalSystem" {
		t.Errorf("install: %+v", in)
	}
	if len(o.Services) != 1 || o.Services[0].StartMode != 3 || o.Services[0].Type != 16 || o.Services[0].State != "Running" {
		t.Errorf("services: %+v", o.Services)
	}

	// Unchanged: no services, nil slice (the poller's "unchanged").
	a := validAnswer()
	a["changed"] = false
	delete(a, "services")
	ans, err = parseAnswer(encode(t, a), collectRequest{Watermark: 5000, MaxEvents: 10, Digest: testDigest})
	if err != nil || ans.Observation.Services != nil {
		t.Fatalf("unchanged: %v %+v", err, ans.Observation.Services)
	}

	// Changed to empty: non-nil empty slice.
	a = validAnswer()
	a["services"] = []any{}
	ans, err = parseAnswer(encode(t, a), testReq)
	if err != nil || ans.Observation.Services == nil || len(ans.Observation.Services) != 0 {
		t.Fatalf("empty inventory: %v %#v", err, ans.Observation.Services)
	}

	// Log reset: watermark beyond newest, events from the start are fine.
	a = validAnswer()
	a["log"] = map[string]any{"oldest": 1, "newest": 40, "retention": "circular"}
	a["events"] = []any{map[string]any{"id": 104, "rec": 1, "time": "2026-12-04T14:59:01Z", "sid": "S-1-5-18", "data": []any{"admin", "CORP", "System", ""}}}
	if _, err := parseAnswer(encode(t, a), testReq); err != nil {
		t.Fatalf("log reset: %v", err)
	}

	// Script errors are carried, not fatal.
	a = validAnswer()
	a["errors"] = []any{"events: Attempted to perform an unauthorized operation."}
	ans, err = parseAnswer(encode(t, a), testReq)
	if err != nil || len(ans.Errors) != 1 {
		t.Fatalf("errors: %v %v", err, ans.Errors)
	}
}

func TestParseAnswerStringBounds(t *testing.T) {
	a := validAnswer()
	long := strings.Repeat("é", 3000) // 6000 bytes
	a["services"].([]any)[0].(map[string]any)["path"] = long
	ans, err := parseAnswer(encode(t, a), testReq)
	if err != nil {
		t.Fatal(err)
	}
	got := ans.Observation.Services[0].ImagePath
	if !strings.HasPrefix(got, strings.Repeat("é", 2048)) || !strings.HasSuffix(got, "…[truncated 1904 bytes]") {
		t.Errorf("truncated to %d bytes: ...%q", len(got), got[len(got)-40:])
	}
	// Invalid UTF-8 inside a JSON string is replaced.
	raw := bytes.Replace(encode(t, validAnswer()), []byte(`"display":"PSEXESVC"`), []byte("\"display\":\"PS\xffEXE\""), 1)
	ans, err = parseAnswer(raw, testReq)
	if err != nil {
		t.Fatal(err)
	}
	if d := ans.Observation.Services[0].DisplayName; d != "PS\uFFFDEXE" {
		t.Errorf("display %q", d)
	}
}

func TestParseAnswerRejects(t *testing.T) {
	ev := func(a map[string]any) map[string]any { return a["events"].([]any)[0].(map[string]any) }
	svc := func(a map[string]any) map[string]any { return a["services"].([]any)[0].(map[string]any) }
	tests := []struct {
		name string
		mod  func(a map[string]any)
		raw  string
		req  *collectRequest
	}{
		{name: "version 2", mod: func(a map[string]any) { a["v"] = 2 }},
		{name: "version missing", mod: func(a map[string]any) { delete(a, "v") }},
		{name: "unknown field", mod: func(a map[string]any) { a["extra"] = 1 }},
		{name: "digest short", mod: func(a map[string]any) { a["digest"] = "abc" }},
		{name: "digest upper", mod: func(a map[string]any) { a["digest"] = strings.ToUpper(testDigest) }},
		{name: "changed without services", mod: func(a map[string]any) { delete(a, "services") }},
		{name: "services without changed", mod: func(a map[string]any) { a["changed"] = false }},
		{name: "changed but same digest", mod: func(a map[string]any) {}, req: &collectRequest{Watermark: 5000, MaxEvents: 10, Digest: testDigest}},
		{name: "missing more", mod: func(a map[string]any) { delete(a, "more") }},
		{name: "missing events", mod: func(a map[string]any) { delete(a, "events") }},
		{name: "missing log", mod: func(a map[string]any) { delete(a, "log") }},
		{name: "now not UTC", mod: func(a map[string]any) { a["now"] = "2026-12-04T15:00:00+01:00" }},
		{name: "now garbage", mod: func(a map[string]any) { a["now"] = "yesterday" }},
		{name: "event time no zone", mod: func(a map[string]any) { ev(a)["time"] = "2026-12-04 14:59:01" }},
		{name: "event id not asked", mod: func(a map[string]any) { ev(a)["id"] = 4624 }},
		{name: "event at watermark", mod: func(a map[string]any) { ev(a)["rec"] = 5000 }},
		{name: "event record zero", mod: func(a map[string]any) { ev(a)["rec"] = 0 }},
		{name: "event record negative", mod: func(a map[string]any) { ev(a)["rec"] = -1 }},
		{name: "bad sid", mod: func(a map[string]any) { ev(a)["sid"] = "<@U123>" }},
		{name: "data not strings", mod: func(a map[string]any) { ev(a)["data"] = []any{1, 2} }},
		{name: "too many events", mod: func(a map[string]any) {}, req: &collectRequest{Watermark: 5000, MaxEvents: 1, Digest: ""}, raw: ""},
		{name: "events descending", mod: func(a map[string]any) {
			a["events"] = append(a["events"].([]any), map[string]any{"id": 7045, "rec": 5229, "time": "2026-12-04T14:59:01Z"})
		}},
		{name: "service without name", mod: func(a map[string]any) { svc(a)["name"] = "" }},
		{name: "service type negative", mod: func(a map[string]any) { svc(a)["type"] = -1 }},
		{name: "service start float", mod: func(a map[string]any) { svc(a)["start"] = 2.5 }},
		{name: "retention unknown", mod: func(a map[string]any) { a["log"].(map[string]any)["retention"] = "forever" }},
		{name: "oldest after newest", mod: func(a map[string]any) { a["log"].(map[string]any)["oldest"] = 9999 }},
		{name: "trailing data", raw: `{"v":1} {"v":1}`},
		{name: "duplicate key", raw: `{"v":1,"v":1}`},
		{name: "array", raw: `[]`},
		{name: "empty", raw: ``},
		{name: "truncated", raw: `{"v":1,"host":"DC`},
		{name: "utf-16 output", raw: "{\x00\"\x00v\x00\"\x00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := []byte(tt.raw)
			if tt.mod != nil {
				a := validAnswer()
				tt.mod(a)
				if tt.name == "too many events" {
					a["events"] = append(a["events"].([]any), map[string]any{"id": 7045, "rec": 5231, "time": "2026-12-04T14:59:01Z"})
				}
				data = encode(t, a)
			}
			req := testReq
			if tt.req != nil {
				req = *tt.req
			}
			_, err := parseAnswer(data, req)
			if !errors.Is(err, ErrProtocol) {
				t.Fatalf("got %v, want ErrProtocol", err)
			}
		})
	}
	// More than 20,000 services.
	a := validAnswer()
	many := make([]any, maxServices+1)
	for i := range many {
		many[i] = map[string]any{"name": "s" + strconv.Itoa(i), "start": 3, "type": 16}
	}
	a["services"] = many
	if _, err := parseAnswer(encode(t, a), testReq); !errors.Is(err, ErrProtocol) || !strings.Contains(err.Error(), "20000") {
		t.Fatalf("too many services: %v", err)
	}
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// TestParseCorpusEvents turns every real System 7045 record of the corpus
// into collector events (one answer per source log, ascending), parses them
// and checks each field survives.
func TestParseCorpusEvents(t *testing.T) {
	data := readShared(t, filepath.Join("corpus", "service-installs.jsonl"))
	records, err := triage.ReadCorpus(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	byFile := map[string][]triage.CorpusRecord{}
	for _, r := range records {
		if r.EventID == 7045 { // System log only: the Security copies are 4697
			byFile[r.SourceFile] = append(byFile[r.SourceFile], r)
		}
	}
	total := 0
	for file, recs := range byFile {
		seen := map[uint64]bool{}
		var events []any
		var want []triage.CorpusRecord
		sort.Slice(recs, func(i, j int) bool { return atou(str(recs[i].EventRecordID)) < atou(str(recs[j].EventRecordID)) })
		for _, r := range recs {
			rec := atou(str(r.EventRecordID))
			if rec == 0 || seen[rec] {
				continue
			}
			seen[rec] = true
			ts, err := time.Parse("2006-01-02 15:04:05.999999", str(r.TimeCreated))
			if err != nil {
				ts, err = time.Parse(time.RFC3339Nano, str(r.TimeCreated))
			}
			if err != nil {
				t.Fatalf("%s: time %q: %v", file, str(r.TimeCreated), err)
			}
			events = append(events, map[string]any{
				"id": 7045, "rec": rec, "time": ts.UTC().Format("2006-01-02T15:04:05.0000000Z"), "sid": str(r.UserID),
				"data": []any{str(r.ServiceName), str(r.ImagePath), str(r.ServiceType), str(r.StartType), str(r.AccountName)},
			})
			want = append(want, r)
		}
		if len(want) == 0 {
			continue // the source had no record ids
		}
		a := validAnswer()
		a["events"] = events
		a["log"] = map[string]any{"oldest": 1, "newest": atou(str(want[len(want)-1].EventRecordID)), "retention": "circular"}
		ans, err := parseAnswer(encode(t, a), collectRequest{MaxEvents: maxEventsLimit})
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		for i, ev := range ans.Observation.Events {
			in, _ := ev.Install()
			r := want[i]
			if in.ServiceName != clean(str(r.ServiceName)) || in.ImagePath != clean(str(r.ImagePath)) || in.Account != str(r.AccountName) || ev.SID != str(r.UserID) {
				t.Errorf("%s record %s: got %+v sid %q", file, str(r.EventRecordID), in, ev.SID)
			}
		}
		total += len(ans.Observation.Events)
	}
	if total < 100 {
		t.Fatalf("only %d corpus events parsed", total)
	}
	t.Logf("%d real 7045 events from %d logs parsed", total, len(byFile))
}

func atou(s string) uint64 {
	n, _ := strconv.ParseUint(s, 10, 64)
	return n
}

func FuzzParseAnswer(f *testing.F) {
	f.Add(encode(f, validAnswer()), uint64(5000), "")
	a := validAnswer()
	a["changed"] = false
	delete(a, "services")
	f.Add(encode(f, a), uint64(0), testDigest)
	f.Add([]byte(`{"v":1,"now":"2026-12-04T15:00:00Z","log":{},"events":null,"more":false,"digest":"`+testDigest+`","changed":true,"services":null}`), uint64(0), "")
	f.Add([]byte(`{"v":1,"errors":["x"],"events":[{"id":104,"rec":1,"time":"2026-01-01T00:00:00Z","data":[null]}]}`), uint64(7), "")
	f.Fuzz(func(t *testing.T, data []byte, watermark uint64, digest string) {
		req := collectRequest{Watermark: watermark, Digest: digest, MaxEvents: 50}
		ans, err := parseAnswer(data, req)
		if err != nil {
			if !errors.Is(err, ErrProtocol) {
				t.Fatalf("error does not wrap ErrProtocol: %v", err)
			}
			return
		}
		o := ans.Observation
		if len(o.Events) > req.MaxEvents || !isDigest(o.Digest) || (ans.Changed != (o.Services != nil)) {
			t.Fatalf("accepted an out-of-bounds answer: %+v", ans)
		}
		for _, s := range o.Services {
			for _, v := range []string{s.Name, s.DisplayName, s.ImagePath, s.ServiceDLL, s.Account, s.State} {
				if len(v) > maxStringBytes+64 {
					t.Fatalf("string of %d bytes kept", len(v))
				}
			}
		}
		_ = fmt.Sprint(o)
	})
}

// evtxEvent is the XML rendering of one real System-log record.
type evtxEvent struct {
	System struct {
		EventID     int `xml:"EventID"`
		TimeCreated struct {
			SystemTime string `xml:"SystemTime,attr"`
		} `xml:"TimeCreated"`
		EventRecordID uint64 `xml:"EventRecordID"`
		Security      struct {
			UserID string `xml:"UserID,attr"`
		} `xml:"Security"`
	} `xml:"System"`
	Data []struct {
		Name  string `xml:"Name,attr"`
		Value string `xml:",chardata"`
	} `xml:"EventData>Data"`
}

// TestParseRealEvtxRecords renders the real 7045 records in
// shared/wire/windows the way the collector does (properties by position,
// the record's own SystemTime with 7 fractional digits) and checks the
// names Windows gives those positions come out of Install().
func TestParseRealEvtxRecords(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(sharedDir(t), "wire", "windows", "event-7045", "*.record*.DERIVED-libevtx.xml"))
	if len(files) < 4 {
		t.Fatalf("found %d record files", len(files))
	}
	byLog := map[string][]evtxEvent{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var e evtxEvent
		if err := xml.Unmarshal(raw, &e); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		log := strings.SplitN(filepath.Base(f), ".", 2)[0]
		byLog[log] = append(byLog[log], e)
	}
	for log, evs := range byLog {
		sort.Slice(evs, func(i, j int) bool { return evs[i].System.EventRecordID < evs[j].System.EventRecordID })
		var events []any
		for _, e := range evs {
			data := []any{}
			for _, d := range e.Data {
				data = append(data, d.Value)
			}
			events = append(events, map[string]any{"id": e.System.EventID, "rec": e.System.EventRecordID,
				"time": e.System.TimeCreated.SystemTime, "sid": e.System.Security.UserID, "data": data})
		}
		a := validAnswer()
		a["events"] = events
		a["log"] = map[string]any{"oldest": 1, "newest": evs[len(evs)-1].System.EventRecordID, "retention": "circular"}
		ans, err := parseAnswer(encode(t, a), collectRequest{Watermark: 1, MaxEvents: 10})
		if err != nil {
			t.Fatalf("%s: %v", log, err)
		}
		for i, ev := range ans.Observation.Events {
			in, ok := ev.Install()
			if !ok {
				t.Fatalf("%s: event %d is not an install", log, i)
			}
			named := map[string]string{}
			for _, d := range evs[i].Data {
				named[d.Name] = d.Value
			}
			got := map[string]string{"ServiceName": in.ServiceName, "ImagePath": in.ImagePath, "ServiceType": in.ServiceType, "StartType": in.StartType, "AccountName": in.Account}
			for k, v := range got {
				if named[k] != v {
					t.Errorf("%s record %d: %s = %q, Windows says %q", log, ev.RecordID, k, v, named[k])
				}
			}
			if ev.Time.IsZero() || ev.Time.Nanosecond()%100 != 0 || !strings.HasPrefix(ev.SID, "S-1-5-21-") {
				t.Errorf("%s record %d: time %v sid %q", log, ev.RecordID, ev.Time, ev.SID)
			}
		}
	}
}
