// Package triage rates findings: one table of heuristics drawn from public
// detection knowledge gives each finding its severity and the sentences that
// explain it, context (a domain controller, a non-tier-0 installer, a service
// already gone, a log cleared nearby) raises the severity, and an allowlist
// marks expected services as suppressed. It is pure: no I/O, no clock.
package triage

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/svcwatch/svcwatch/internal/config"
	"github.com/svcwatch/svcwatch/internal/inventory"
)

// Options configure a Triager.
type Options struct {
	// Allow is the operator's allowlist (config `allow`).
	Allow []config.Allow
	// DefaultAllow enables the built-in allowlist of benign noise
	// (config `default_allow`, on unless set to false).
	DefaultAllow bool
}

// OptionsFromConfig builds Options from a loaded configuration.
func OptionsFromConfig(c *config.Config) Options {
	return Options{Allow: c.Allow, DefaultAllow: c.DefaultAllow == nil || *c.DefaultAllow}
}

// Triager applies the heuristics table and the allowlist.
type Triager struct {
	allow []*allowance // operator entries first, then the built-in ones
}

// New validates the allowlist and returns a Triager. Errors name the entry
// index and field: `triage: allow[2].path: ...`.
func New(opts Options) (*Triager, error) {
	allow, err := compileAllow(opts.Allow)
	if err != nil {
		return nil, err
	}
	if opts.DefaultAllow {
		allow = append(allow, builtinAllow()...)
	}
	return &Triager{allow: allow}, nil
}

// Expired lists the operator's allowlist entries that no longer apply at now
// (for a warning at start-up; Apply reports each one once as a finding when
// it stops suppressing something).
func (t *Triager) Expired(now time.Time) []Expired {
	var out []Expired
	for _, a := range t.allow {
		if a.expired(now) {
			out = append(out, Expired{Label: a.Label, Index: a.Index, Expires: a.Expires, Owner: a.Owner, Reason: a.Reason})
		}
	}
	return out
}

// tamperWindow is how close a log clear must be to a change to raise it.
const tamperWindow = time.Hour

// batch is what rules may know about the other findings of the same call.
type batch struct {
	tamper map[string][]time.Time // host → times of tamper findings
}

func newBatch(fs []inventory.Finding) *batch {
	b := &batch{tamper: map[string][]time.Time{}}
	for _, f := range fs {
		if f.Kind == inventory.KindTamper {
			b.tamper[f.Host.Name] = append(b.tamper[f.Host.Name], f.At)
		}
	}
	return b
}

func (b *batch) tamperNear(f *inventory.Finding) bool {
	for _, at := range b.tamper[f.Host.Name] {
		d := f.At.Sub(at)
		if d < 0 {
			d = -d
		}
		if d <= tamperWindow {
			return true
		}
	}
	return false
}

// Apply rates each finding (Severity, Hits) and marks those an allowlist
// entry covers as Suppressed (they are still returned: the store keeps
// them). When an expired entry would have suppressed a finding, the finding
// says so and an allow-expired finding with an ID derived from the entry is
// added, so the expiry is reported once however often it matches.
func (t *Triager) Apply(now time.Time, fs []inventory.Finding) []inventory.Finding {
	b := newBatch(fs)
	out := make([]inventory.Finding, 0, len(fs))
	var expiredOut []inventory.Finding
	reported := map[*allowance]bool{}
	for i := range fs {
		f := fs[i]
		s := newSubject(&f)
		f.Severity, f.Hits = rate(s, b)
		f.Suppressed, f.SuppressedBy = false, ""
		var lapsed *allowance
		for _, a := range t.allow {
			if !a.matches(s) {
				continue
			}
			if a.expired(now) {
				if lapsed == nil {
					lapsed = a
				}
				continue
			}
			f.Suppressed, f.SuppressedBy = true, a.describe()
			break
		}
		if lapsed != nil && !f.Suppressed {
			f.Hits = append(f.Hits, inventory.Hit{ID: "allow-expired", Severity: f.Severity,
				Why: fmt.Sprintf("Allowlist entry %s expired on %s and no longer suppresses this.", lapsed.Label, lapsed.Expires)})
			if !reported[lapsed] {
				reported[lapsed] = true
				expiredOut = append(expiredOut, expiryFinding(lapsed, f, b))
			}
		}
		out = append(out, f)
	}
	return append(out, expiredOut...)
}

func expiryFinding(a *allowance, matched inventory.Finding, b *batch) inventory.Finding {
	what := string(matched.Kind)
	if matched.Service != nil {
		what += " " + matched.Service.Name
	}
	f := inventory.Finding{
		ID:   inventory.FindingID("(config)", inventory.KindAllowExpired, a.key),
		Host: matched.Host, Kind: inventory.KindAllowExpired, At: matched.At,
		Detail: fmt.Sprintf("allowlist entry %s expired on %s and stopped suppressing findings (first: %s on %s)",
			a.describe(), a.Expires, what, matched.Host.Name),
	}
	f.Severity, f.Hits = rate(newSubject(&f), b)
	return f
}

// rate evaluates the table: floors first, then context raises.
func rate(s *subject, b *batch) (inventory.Severity, []inventory.Hit) {
	sev := inventory.SeverityInfo
	var hits []inventory.Hit
	for _, r := range rules {
		if r.Raise || !r.appliesTo(s) || !r.match(s, b) {
			continue
		}
		hits = append(hits, inventory.Hit{ID: r.ID, Severity: r.Severity, Why: r.Why, Follows: r.Follows})
		sev = max(sev, r.Severity)
	}
	// Strongest reasons first (the alert shows them in this order), context after.
	sort.SliceStable(hits, func(i, j int) bool { return hits[i].Severity > hits[j].Severity })
	if sev >= inventory.SeverityLow {
		for _, r := range rules {
			if !r.Raise || !r.appliesTo(s) || !r.match(s, b) {
				continue
			}
			sev = min(sev+1, inventory.SeverityCritical)
			hits = append(hits, inventory.Hit{ID: r.ID, Severity: sev, Why: r.Why, Follows: r.Follows})
		}
	}
	return sev, hits
}

func (r Rule) appliesTo(s *subject) bool {
	if r.Kinds == nil {
		return s.content
	}
	for _, k := range r.Kinds {
		if k == s.kind {
			return true
		}
	}
	return false
}

// Explain renders a finding's hits as lines for text output.
func Explain(f inventory.Finding) string {
	var b strings.Builder
	for _, h := range f.Hits {
		fmt.Fprintf(&b, "[%s] %s: %s", h.Severity, h.ID, h.Why)
		if h.Follows != "" {
			fmt.Fprintf(&b, " (follows %s)", h.Follows)
		}
		b.WriteByte('\n')
	}
	return b.String()
}
