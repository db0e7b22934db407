package inventory

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// FindingID derives a finding's ID from its host, kind and identifying parts
// (record id and event time, or service key and inventory digest). The same
// inputs always give the same ID, so re-processing an observation can never
// produce a second alert: the store inserts findings by ID.
func FindingID(host string, kind Kind, parts ...string) string {
	h := sha256.New()
	h.Write([]byte(strings.ToLower(host)))
	h.Write([]byte{0x1f})
	h.Write([]byte(kind))
	for _, p := range parts {
		h.Write([]byte{0x1f})
		h.Write([]byte(p))
	}
	return hex.EncodeToString(h.Sum(nil))[:32]
}

// eventKey identifies an event across log generations: record ids restart at
// 1 after a clear, so the event time is part of the key.
func eventKey(e Event) []string {
	return []string{"rec", strconv.FormatUint(e.RecordID, 10), strconv.FormatInt(e.Time.UnixNano(), 10)}
}

// outageKey identifies one outage of a host by its last good poll, so the
// unreachable and recovered findings of the same outage pair up and raising
// either twice yields the same ID.
func outageKey(st State) string {
	if st.LastOK.IsZero() {
		return "never"
	}
	return strconv.FormatInt(st.LastOK.UnixNano(), 10)
}

// UnreachableFinding is raised once per outage, when a host has failed
// st.Failures polls in a row. errText is the last error (already safe to show:
// it names the host and the step).
func UnreachableFinding(host Host, st State, errText string, now time.Time) Finding {
	detail := fmt.Sprintf("%d polls in a row failed", st.Failures)
	if !st.LastOK.IsZero() {
		detail += "; last good poll " + st.LastOK.UTC().Format(time.RFC3339)
	}
	if errText != "" {
		detail += "; last error: " + errText
	}
	return Finding{
		ID:     FindingID(host.Name, KindUnreachable, outageKey(st)),
		Host:   host,
		Kind:   KindUnreachable,
		At:     now,
		Detail: detail,
	}
}

// RecoveredFinding is raised when a host that was reported unreachable
// answers again; st is the state before the successful poll.
func RecoveredFinding(host Host, st State, now time.Time) Finding {
	detail := "answering again"
	if !st.LastOK.IsZero() {
		detail += fmt.Sprintf(" after %s without a good poll", now.Sub(st.LastOK).Round(time.Second))
	}
	if st.Failures > 0 {
		detail += fmt.Sprintf(" (%d failed polls)", st.Failures)
	}
	return Finding{
		ID:     FindingID(host.Name, KindRecovered, outageKey(st)),
		Host:   host,
		Kind:   KindRecovered,
		At:     now,
		Detail: detail,
	}
}

// DirectoryHost is the pseudo-host that findings about discovery itself carry.
const DirectoryHost = "(directory)"

// DiscoveryFailedFinding reports that the monitored set could not be
// refreshed from the directory (the last known set keeps being polled).
func DiscoveryFailedFinding(errText string, now time.Time) Finding {
	return Finding{
		ID:     FindingID(DirectoryHost, KindUnreachable, strconv.FormatInt(now.UnixNano(), 10)),
		Host:   Host{Name: DirectoryHost},
		Kind:   KindUnreachable,
		At:     now,
		Detail: "directory discovery failed; still polling the last known hosts: " + errText,
	}
}

// ScopeFindings compares two monitored sets and reports each host that
// entered or left, and each host whose reasons changed (a member server
// promoted to DC). The caller decides whether the very first set is news.
// IDs derive from the previous set and the discovery time, so the same
// comparison never alerts twice, while a host that leaves (or enters) again
// later, with the rest of the set unchanged, is news again.
func ScopeFindings(old, new []Host, now time.Time) []Finding {
	before := make(map[string]Host, len(old))
	for _, h := range old {
		before[strings.ToLower(h.Name)] = h
	}
	after := make(map[string]Host, len(new))
	for _, h := range new {
		after[strings.ToLower(h.Name)] = h
	}
	stamp := scopeKey(old) + "@" + strconv.FormatInt(now.UnixNano(), 10)
	var fs []Finding
	for _, h := range new {
		key := strings.ToLower(h.Name)
		prev, ok := before[key]
		switch {
		case !ok:
			fs = append(fs, Finding{
				ID: FindingID(h.Name, KindScope, "entered", stamp), Host: h, Kind: KindScope, At: now,
				Detail: "entered the monitored set (" + reasonsOrNone(h) + ")",
			})
		case !sameReasons(prev.Reasons, h.Reasons):
			fs = append(fs, Finding{
				ID: FindingID(h.Name, KindScope, "reasons", stamp), Host: h, Kind: KindScope, At: now,
				Detail: "monitored for new reasons: was " + reasonsOrNone(prev) + ", now " + reasonsOrNone(h),
			})
		}
	}
	for _, h := range old {
		if _, ok := after[strings.ToLower(h.Name)]; ok {
			continue
		}
		fs = append(fs, Finding{
			ID: FindingID(h.Name, KindScope, "left", stamp), Host: h, Kind: KindScope, At: now,
			Detail: "left the monitored set (was " + reasonsOrNone(h) + ")",
		})
	}
	return fs
}

func reasonsOrNone(h Host) string {
	if len(h.Reasons) == 0 {
		return "no reason recorded"
	}
	return h.ReasonText()
}

func sameReasons(a, b []Reason) bool {
	key := func(rs []Reason) []string {
		out := make([]string, len(rs))
		for i, r := range rs {
			out[i] = strings.ToLower(r.String())
		}
		slices.Sort(out)
		return slices.Compact(out)
	}
	return slices.Equal(key(a), key(b))
}

// scopeKey identifies a monitored set by its sorted host names and reasons.
func scopeKey(hs []Host) string {
	names := make([]string, len(hs))
	for i, h := range hs {
		names[i] = strings.ToLower(h.Name) + "=" + h.ReasonText()
	}
	slices.Sort(names)
	h := sha256.Sum256([]byte(strings.Join(names, ",")))
	return hex.EncodeToString(h[:8])
}
