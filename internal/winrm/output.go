package winrm

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/svcwatch/svcwatch/internal/inventory"
)

// Parser bounds (docs/internals.md, "Response").
const (
	maxServices     = 20000
	maxStringBytes  = 4096
	maxEventData    = 64  // properties per event; 7045 has 5
	maxScriptErrors = 100 // "errors" entries kept
)

// answer is a parsed collector answer.
type answer struct {
	Observation inventory.Observation
	Changed     bool
	Errors      []string // errors the script reported while still answering
}

// answerLog is the "log" object; records is informational.
type answerLog struct {
	Oldest    uint64 `json:"oldest"`
	Newest    uint64 `json:"newest"`
	Records   uint64 `json:"records"`
	MaxBytes  int64  `json:"max_bytes"`
	Retention string `json:"retention"`
}

type answerEvent struct {
	ID   int       `json:"id"`
	Rec  uint64    `json:"rec"`
	Time string    `json:"time"`
	SID  string    `json:"sid"`
	Data []*string `json:"data"`
}

type answerService struct {
	Name    string `json:"name"`
	Display string `json:"display"`
	Path    string `json:"path"`
	DLL     string `json:"dll"`
	Start   int32  `json:"start"`
	Delayed bool   `json:"delayed"`
	Account string `json:"account"`
	Type    uint32 `json:"type"`
	State   string `json:"state"`
}

// parseAnswer reads one collector answer strictly. req is the request the
// answer is for (its watermark and event bound are checked). Every error
// wraps ErrProtocol.
func parseAnswer(data []byte, req collectRequest) (ans answer, err error) {
	defer func() {
		if err != nil {
			err = fmt.Errorf("%w: collector answer: %v", ErrProtocol, err)
		}
	}()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := expectDelim(dec, '{'); err != nil {
		return ans, err
	}
	seen := map[string]bool{}
	var (
		version    json.Number
		now        string
		log        *answerLog
		events     []inventory.Event
		more       *bool
		digest     *string
		changed    *bool
		services   []inventory.Service
		haveSvcs   bool
		scriptErrs []string
	)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return ans, err
		}
		key, _ := tok.(string)
		if seen[key] {
			return ans, fmt.Errorf("field %q appears twice", key)
		}
		seen[key] = true
		switch key {
		case "v":
			err = dec.Decode(&version)
		case "host":
			var h string
			err = dec.Decode(&h) // informational: the host's own name
		case "now":
			err = dec.Decode(&now)
		case "log":
			log = new(answerLog)
			err = dec.Decode(log)
		case "events":
			events, err = decodeEvents(dec, req)
		case "more":
			more = new(bool)
			err = dec.Decode(more)
		case "digest":
			digest = new(string)
			err = dec.Decode(digest)
		case "changed":
			changed = new(bool)
			err = dec.Decode(changed)
		case "services":
			haveSvcs = true
			services, err = decodeServices(dec)
		case "errors":
			scriptErrs, err = decodeStrings(dec, maxScriptErrors)
		default:
			return ans, fmt.Errorf("unknown field %q", truncate(key))
		}
		if err != nil {
			return ans, fmt.Errorf("field %q: %w", key, err)
		}
	}
	if err := expectDelim(dec, '}'); err != nil {
		return ans, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return ans, errors.New("data after the JSON document")
	}

	if version.String() != "1" {
		return ans, fmt.Errorf("version %q, want 1 (is the host running another collector?)", truncate(version.String()))
	}
	at, err := parseTime(now)
	if err != nil {
		return ans, fmt.Errorf("field \"now\": %w", err)
	}
	if log == nil || more == nil || digest == nil || changed == nil || !seen["events"] {
		return ans, errors.New("missing one of the required fields log, events, more, digest, changed")
	}
	li, err := checkLog(*log)
	if err != nil {
		return ans, fmt.Errorf("field \"log\": %w", err)
	}
	if !isDigest(*digest) {
		return ans, fmt.Errorf("digest %q is not 64 lower-case hex characters", truncate(*digest))
	}
	if *changed != haveSvcs {
		return ans, fmt.Errorf("changed is %t but services are %s", *changed, map[bool]string{true: "present", false: "absent"}[haveSvcs])
	}
	if *changed && *digest == req.Digest {
		return ans, errors.New("changed is true but the digest equals the one sent")
	}
	if !*changed && *digest != req.Digest {
		return ans, errors.New("changed is false but the digest differs from the one sent")
	}
	if err := checkEventOrder(events, req.Watermark, li); err != nil {
		return ans, err
	}
	if *changed && services == nil {
		services = []inventory.Service{} // non-nil: "changed to empty", not "unchanged"
	}
	ans.Observation = inventory.Observation{
		At: at, Log: li, Events: events, More: *more, Digest: *digest, Services: services,
	}
	ans.Changed = *changed
	ans.Errors = scriptErrs
	return ans, nil
}

func expectDelim(dec *json.Decoder, want json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if d, ok := tok.(json.Delim); !ok || d != want {
		return fmt.Errorf("expected %q, got %v", want, tok)
	}
	return nil
}

// startArray consumes '[' and reports false for JSON null (an empty list).
func startArray(dec *json.Decoder) (bool, error) {
	tok, err := dec.Token()
	if err != nil {
		return false, err
	}
	if tok == nil {
		return false, nil
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return false, fmt.Errorf("expected an array, got %v", tok)
	}
	return true, nil
}

func decodeEvents(dec *json.Decoder, req collectRequest) ([]inventory.Event, error) {
	ok, err := startArray(dec)
	if !ok || err != nil {
		return nil, err
	}
	var out []inventory.Event
	for dec.More() {
		if len(out) >= req.MaxEvents {
			return nil, fmt.Errorf("more than the %d events asked for", req.MaxEvents)
		}
		var raw answerEvent
		if err := dec.Decode(&raw); err != nil {
			return nil, fmt.Errorf("event %d: %w", len(out), err)
		}
		ev, err := convertEvent(raw)
		if err != nil {
			return nil, fmt.Errorf("event %d: %w", len(out), err)
		}
		out = append(out, ev)
	}
	return out, expectDelim(dec, ']')
}

func convertEvent(raw answerEvent) (inventory.Event, error) {
	switch raw.ID {
	case inventory.EventServiceInstalled, inventory.EventLogCleared, inventory.EventStartTypeChanged:
	default:
		return inventory.Event{}, fmt.Errorf("event id %d was not asked for", raw.ID)
	}
	if raw.Rec == 0 {
		return inventory.Event{}, errors.New("record id 0")
	}
	t, err := parseTime(raw.Time)
	if err != nil {
		return inventory.Event{}, err
	}
	if raw.SID != "" && !isSID(raw.SID) {
		return inventory.Event{}, fmt.Errorf("sid %q is not a SID", truncate(raw.SID))
	}
	if len(raw.Data) > maxEventData {
		return inventory.Event{}, fmt.Errorf("%d properties, more than %d", len(raw.Data), maxEventData)
	}
	ev := inventory.Event{ID: raw.ID, RecordID: raw.Rec, Time: t, SID: raw.SID}
	if len(raw.Data) > 0 {
		ev.Data = make([]string, len(raw.Data))
		for i, s := range raw.Data {
			if s != nil {
				ev.Data[i] = clean(*s)
			}
		}
	}
	return ev, nil
}

func checkEventOrder(events []inventory.Event, watermark uint64, li inventory.LogInfo) error {
	// A watermark beyond the newest record means the log was reset; the
	// host then answers from the oldest record on.
	reset := li.NewestRecord > 0 && watermark > li.NewestRecord
	prev := uint64(0)
	for i, ev := range events {
		if !reset && ev.RecordID <= watermark {
			return fmt.Errorf("event %d: record id %d is not after the watermark %d", i, ev.RecordID, watermark)
		}
		if ev.RecordID <= prev {
			return fmt.Errorf("event %d: record id %d is not ascending (previous %d)", i, ev.RecordID, prev)
		}
		prev = ev.RecordID
	}
	return nil
}

func decodeServices(dec *json.Decoder) ([]inventory.Service, error) {
	ok, err := startArray(dec)
	if err != nil {
		return nil, err
	}
	out := []inventory.Service{}
	if !ok {
		return out, nil
	}
	for dec.More() {
		if len(out) >= maxServices {
			return nil, fmt.Errorf("more than %d services", maxServices)
		}
		var raw answerService
		if err := dec.Decode(&raw); err != nil {
			return nil, fmt.Errorf("service %d: %w", len(out), err)
		}
		if raw.Name == "" {
			return nil, fmt.Errorf("service %d: empty name", len(out))
		}
		out = append(out, inventory.Service{
			Name: clean(raw.Name), DisplayName: clean(raw.Display), ImagePath: clean(raw.Path),
			ServiceDLL: clean(raw.DLL), StartMode: inventory.StartMode(raw.Start), DelayedAuto: raw.Delayed,
			Account: clean(raw.Account), Type: raw.Type, State: clean(raw.State),
		})
	}
	return out, expectDelim(dec, ']')
}

func decodeStrings(dec *json.Decoder, limit int) ([]string, error) {
	ok, err := startArray(dec)
	if !ok || err != nil {
		return nil, err
	}
	var out []string
	for dec.More() {
		var s *string
		if err := dec.Decode(&s); err != nil {
			return nil, err
		}
		if len(out) < limit && s != nil {
			out = append(out, clean(*s))
		}
	}
	return out, expectDelim(dec, ']')
}

func checkLog(l answerLog) (inventory.LogInfo, error) {
	switch l.Retention {
	case "", "circular", "retain", "autobackup":
	default:
		return inventory.LogInfo{}, fmt.Errorf("retention %q is not circular, retain or autobackup", truncate(l.Retention))
	}
	if l.Oldest > l.Newest {
		return inventory.LogInfo{}, fmt.Errorf("oldest record %d is after the newest %d", l.Oldest, l.Newest)
	}
	if l.MaxBytes < 0 {
		return inventory.LogInfo{}, fmt.Errorf("negative max_bytes %d", l.MaxBytes)
	}
	return inventory.LogInfo{OldestRecord: l.Oldest, NewestRecord: l.Newest, MaxBytes: l.MaxBytes, Retention: l.Retention}, nil
}

// parseTime accepts RFC 3339 UTC times ("Z") with up to 9 fractional digits.
func parseTime(s string) (time.Time, error) {
	if len(s) < len("2006-01-02T15:04:05Z") || len(s) > 40 || !strings.HasSuffix(s, "Z") || s[10] != 'T' {
		return time.Time{}, fmt.Errorf("time %q is not RFC 3339 UTC", truncate(s))
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("time %q is not RFC 3339 UTC", truncate(s))
	}
	return t.UTC(), nil
}

// isSID accepts the string form of a Windows SID: S-1-<authority>(-<sub>)*.
func isSID(s string) bool {
	if len(s) > 184 || !strings.HasPrefix(s, "S-1-") {
		return false
	}
	parts := strings.Split(s[4:], "-")
	for _, p := range parts {
		if p == "" || len(p) > 20 {
			return false
		}
		for i := 0; i < len(p); i++ {
			if p[i] < '0' || p[i] > '9' {
				return false
			}
		}
	}
	return true
}

// clean replaces invalid UTF-8 and truncates to maxStringBytes (on a rune
// boundary) with a marker saying how much was cut.
func clean(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= maxStringBytes {
		return s
	}
	kept := strings.TrimSuffix(inventory.Truncate(s, maxStringBytes), "…")
	return kept + fmt.Sprintf("…[truncated %d bytes]", len(s)-len(kept))
}

// truncate shortens untrusted text quoted in error messages.
func truncate(s string) string { return inventory.Truncate(s, 64) }
