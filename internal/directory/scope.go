package directory

import (
	"slices"
	"strings"
	"time"

	"github.com/svcwatch/svcwatch/internal/inventory"
)

// ScopeDiff compares two monitored sets by host name: hosts only in next
// were added, hosts only in prev were removed. Both results are sorted by name.
func ScopeDiff(prev, next []inventory.Host) (added, removed []inventory.Host) {
	in := func(hs []inventory.Host) map[string]bool {
		m := make(map[string]bool, len(hs))
		for _, h := range hs {
			m[strings.ToLower(h.Name)] = true
		}
		return m
	}
	was, now := in(prev), in(next)
	for _, h := range next {
		if !was[strings.ToLower(h.Name)] {
			added = append(added, h)
		}
	}
	for _, h := range prev {
		if !now[strings.ToLower(h.Name)] {
			removed = append(removed, h)
		}
	}
	byName := func(a, b inventory.Host) int { return strings.Compare(a.Name, b.Name) }
	slices.SortFunc(added, byName)
	slices.SortFunc(removed, byName)
	return added, removed
}

// ScopeFindings turns a scope change into one KindScope finding per host that
// entered or left the monitored set. An empty prev is the first discovery
// and yields nothing (there is no earlier scope to change). The ID is
// deterministic per host, direction and the previous set, so re-running the
// same comparison cannot alert twice. Severity is left for triage.
func ScopeFindings(at time.Time, prev, next []inventory.Host) []inventory.Finding {
	if len(prev) == 0 {
		return nil
	}
	added, removed := ScopeDiff(prev, next)
	gen := scopeKey(prev)
	var out []inventory.Finding
	for _, h := range added {
		out = append(out, inventory.Finding{
			ID: inventory.FindingID(h.Name, inventory.KindScope, "entered", gen), Host: h, Kind: inventory.KindScope, At: at,
			Detail: h.Name + " entered the monitored set (" + h.ReasonText() + ")",
		})
	}
	for _, h := range removed {
		out = append(out, inventory.Finding{
			ID: inventory.FindingID(h.Name, inventory.KindScope, "left", gen), Host: h, Kind: inventory.KindScope, At: at,
			Detail: h.Name + " left the monitored set (was: " + h.ReasonText() + ")",
		})
	}
	return out
}

// scopeKey identifies a monitored set by its sorted host names.
func scopeKey(hs []inventory.Host) string {
	names := make([]string, len(hs))
	for i, h := range hs {
		names[i] = strings.ToLower(h.Name)
	}
	slices.Sort(names)
	return strings.Join(names, ",")
}
