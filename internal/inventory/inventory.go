// Package inventory holds svcwatch's domain types (hosts, services, events,
// observations, findings) and the pure detection that turns one observation of
// a host into findings against its stored state. It does no I/O.
package inventory

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Event IDs the collector returns from the System log.
const (
	EventServiceInstalled = 7045 // Service Control Manager: a service was installed
	EventLogCleared       = 104  // Microsoft-Windows-Eventlog: the System log was cleared
	EventStartTypeChanged = 7040 // Service Control Manager: start type changed
	EventAuditLogCleared  = 1102 // Security log: the audit log was cleared (not collected; corpus and future use)
)

// ReasonKind says why a host is monitored.
type ReasonKind string

const (
	ReasonDC     ReasonKind = "dc"     // writable domain controller (UAC 0x2000)
	ReasonRODC   ReasonKind = "rodc"   // read-only domain controller (UAC 0x04000000)
	ReasonGroup  ReasonKind = "group"  // member (possibly nested) of a configured group
	ReasonOU     ReasonKind = "ou"     // computer under a configured OU
	ReasonFilter ReasonKind = "filter" // matched a configured raw LDAP filter
	ReasonStatic ReasonKind = "static" // listed in directory.targets.hosts
)

// Reason is one cause for monitoring a host; Detail names the group, OU or filter.
type Reason struct {
	Kind   ReasonKind `json:"kind"`
	Detail string     `json:"detail,omitempty"`
}

func (r Reason) String() string {
	if r.Detail == "" {
		return string(r.Kind)
	}
	return string(r.Kind) + " " + r.Detail
}

// Host is one monitored Windows machine.
type Host struct {
	Name      string    `json:"name"` // DNS host name, lower case; the key everywhere
	DN        string    `json:"dn,omitempty"`
	OS        string    `json:"os,omitempty"`
	Reasons   []Reason  `json:"reasons,omitempty"`
	LastLogon time.Time `json:"last_logon,omitempty"`
}

// ValidHostName reports whether name can be a Host.Name: a lower-case DNS
// host name (labels of a-z, 0-9, '-' and '_', not starting or ending with
// '-', at most 63 bytes; at most 253 bytes in all). Host names come from AD,
// which an attacker may have written to, and go into URLs, SPNs and logs.
func ValidHostName(name string) bool {
	if name == "" || len(name) > 253 {
		return false
	}
	for _, label := range strings.Split(name, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			ch := label[i]
			if !(ch >= 'a' && ch <= 'z' || ch >= '0' && ch <= '9' || ch == '-' || ch == '_') {
				return false
			}
		}
	}
	return true
}

// IsDC reports whether the host is a writable or read-only domain controller.
func (h Host) IsDC() bool {
	for _, r := range h.Reasons {
		if r.Kind == ReasonDC || r.Kind == ReasonRODC {
			return true
		}
	}
	return false
}

// ReasonText is the reasons joined for display ("dc, group Tier0 Servers").
func (h Host) ReasonText() string {
	parts := make([]string, len(h.Reasons))
	for i, r := range h.Reasons {
		parts[i] = r.String()
	}
	return strings.Join(parts, ", ")
}

// StartMode is the service start type as the SCM stores it (registry Start value).
type StartMode int

const (
	StartBoot     StartMode = 0
	StartSystem   StartMode = 1
	StartAuto     StartMode = 2
	StartDemand   StartMode = 3
	StartDisabled StartMode = 4
)

func (m StartMode) String() string {
	switch m {
	case StartBoot:
		return "boot"
	case StartSystem:
		return "system"
	case StartAuto:
		return "auto"
	case StartDemand:
		return "demand"
	case StartDisabled:
		return "disabled"
	}
	return fmt.Sprintf("start(%d)", int(m))
}

// Service types (registry Type value bits).
const (
	TypeKernelDriver     = 0x1
	TypeFileSystemDriver = 0x2
	TypeOwnProcess       = 0x10
	TypeShareProcess     = 0x20
)

// Service is one entry of a host's service inventory (services and drivers).
type Service struct {
	Name        string    `json:"name"` // registry key name
	DisplayName string    `json:"display,omitempty"`
	ImagePath   string    `json:"path,omitempty"`
	ServiceDLL  string    `json:"dll,omitempty"`
	StartMode   StartMode `json:"start"`
	DelayedAuto bool      `json:"delayed,omitempty"`
	Account     string    `json:"account,omitempty"`
	Type        uint32    `json:"type"`
	State       string    `json:"state,omitempty"` // Running, Stopped, ... (not part of the digest)
}

// IsDriver reports whether the entry is a kernel or file-system driver.
func (s Service) IsDriver() bool { return s.Type&(TypeKernelDriver|TypeFileSystemDriver) != 0 }

// Event is one System-log record returned by the collector. Data holds the
// event's properties by position (so localised Windows parses the same):
//
//	7045: [0]ServiceName [1]ImagePath [2]ServiceType [3]StartType [4]AccountName
//	7040: [0]display name [1]old start type [2]new start type [3]service key name
//	104:  [0]SubjectUserName [1]SubjectDomainName [2]Channel [3]BackupPath
type Event struct {
	ID       int       `json:"id"`
	RecordID uint64    `json:"rec"`
	Time     time.Time `json:"time"`
	SID      string    `json:"sid,omitempty"` // the account that caused the event (installer)
	Data     []string  `json:"data,omitempty"`
}

// Field returns Data[i] or "" when the event has fewer properties.
func (e Event) Field(i int) string {
	if i < 0 || i >= len(e.Data) {
		return ""
	}
	return e.Data[i]
}

// Install is the 7045 view of an event.
type Install struct {
	ServiceName string // often the display name, not the key name
	ImagePath   string
	ServiceType string
	StartType   string
	Account     string
}

// Install returns the 7045 fields; ok is false for other event IDs.
func (e Event) Install() (Install, bool) {
	if e.ID != EventServiceInstalled {
		return Install{}, false
	}
	return Install{
		ServiceName: e.Field(0), ImagePath: e.Field(1), ServiceType: e.Field(2),
		StartType: e.Field(3), Account: e.Field(4),
	}, true
}

// LogInfo describes the System log at collection time, to tell a wrap from a clear.
type LogInfo struct {
	OldestRecord uint64 `json:"oldest"`
	NewestRecord uint64 `json:"newest"`
	MaxBytes     int64  `json:"max_bytes,omitempty"`
	Retention    string `json:"retention,omitempty"` // circular | retain | autobackup
}

// Observation is what one poll of one host returned.
type Observation struct {
	Host   string    `json:"host"`
	At     time.Time `json:"at"` // host clock (UTC) when collected
	Log    LogInfo   `json:"log"`
	Events []Event   `json:"events,omitempty"` // record id > request watermark, ascending
	More   bool      `json:"more,omitempty"`   // events were cut at the per-poll bound
	Digest string    `json:"digest"`           // inventory digest (hex SHA-256)
	// Services is the full inventory, or nil when the digest equals the
	// digest sent in the request (the host answered "unchanged").
	Services []Service `json:"services,omitempty"`
}

// CollectRequest is what the poller asks a host for.
type CollectRequest struct {
	Watermark uint64        // highest System-log record id already processed (0: first poll)
	Digest    string        // inventory digest from the last poll ("" to force the full list)
	Lookback  time.Duration // first poll only: how far back to return events
	MaxEvents int           // bound on events per poll
}

// State is what svcwatch remembers about a host between polls.
type State struct {
	Host      string    `json:"host"`
	Baselined bool      `json:"baselined"`
	Watermark uint64    `json:"watermark"`
	Digest    string    `json:"digest"`
	Services  []Service `json:"services,omitempty"` // the store keeps it in its own column
	Log       LogInfo   `json:"log"`
	LastPoll  time.Time `json:"last_poll"`
	LastOK    time.Time `json:"last_ok"`
	Failures  int       `json:"failures"` // consecutive failed polls
	LastError string    `json:"last_error,omitempty"`
	Down      bool      `json:"down,omitempty"` // an unreachable finding was raised and not yet recovered
}

// Kind is a finding kind.
type Kind string

const (
	KindInstalled   Kind = "installed"   // 7045 and the service is in the inventory
	KindEphemeral   Kind = "ephemeral"   // 7045 but the service is already gone
	KindSilent      Kind = "silent"      // new in the inventory with no 7045
	KindModified    Kind = "modified"    // image path, ServiceDll, account or start mode changed
	KindRemoved     Kind = "removed"     // gone from the inventory
	KindTamper      Kind = "tamper"      // log cleared, record ids backwards, unexplained gap
	KindUnreachable Kind = "unreachable" // N failed polls in a row
	KindRecovered   Kind = "recovered"   // answered again after unreachable
	KindScope       Kind = "scope"       // host entered or left the monitored set
	// KindAllowExpired reports, once, that an allowlist entry has expired and
	// stopped suppressing a finding it would have matched.
	KindAllowExpired Kind = "allow-expired"
)

// Kinds lists every finding kind, in the order above.
var Kinds = []Kind{KindInstalled, KindEphemeral, KindSilent, KindModified, KindRemoved,
	KindTamper, KindUnreachable, KindRecovered, KindScope, KindAllowExpired}

// AllowableKinds are the kinds an allowlist entry may name: all but
// allow-expired, which reports on the allowlist itself.
func AllowableKinds() []Kind {
	return slices.DeleteFunc(slices.Clone(Kinds), func(k Kind) bool { return k == KindAllowExpired })
}

// JoinKinds spells ks as "a, b, c" for messages.
func JoinKinds(ks []Kind) string {
	names := make([]string, len(ks))
	for i, k := range ks {
		names[i] = string(k)
	}
	return strings.Join(names, ", ")
}

// Changes a modified finding can report (Finding.Changed).
const (
	ChangeImagePath  = "path"
	ChangeServiceDLL = "dll"
	ChangeAccount    = "account"
	ChangeStartMode  = "start"
)

// Severity orders findings; the zero value is SeverityInfo.
type Severity int

const (
	SeverityInfo Severity = iota
	SeverityLow
	SeverityMedium
	SeverityHigh
	SeverityCritical
)

var severityNames = [...]string{"info", "low", "medium", "high", "critical"}

func (s Severity) String() string {
	if s < 0 || int(s) >= len(severityNames) {
		return fmt.Sprintf("severity(%d)", int(s))
	}
	return severityNames[s]
}

// ParseSeverity accepts the names String returns.
func ParseSeverity(name string) (Severity, error) {
	for i, n := range severityNames {
		if strings.EqualFold(name, n) {
			return Severity(i), nil
		}
	}
	return 0, fmt.Errorf("unknown severity %q (want one of %s)", name, strings.Join(severityNames[:], ", "))
}

func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

func (s *Severity) UnmarshalText(b []byte) error {
	v, err := ParseSeverity(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// Account is a resolved Windows account (the installer of a service).
type Account struct {
	SID        string   `json:"sid,omitempty"`
	Name       string   `json:"name,omitempty"` // DOMAIN\user, or "" when unresolved
	Privileged bool     `json:"privileged,omitempty"`
	Groups     []string `json:"groups,omitempty"` // privileged groups it belongs to
}

// Hit is one heuristic that fired, with its explanation for the alert.
type Hit struct {
	ID       string   `json:"id"`
	Severity Severity `json:"severity"`
	Why      string   `json:"why"`
	Follows  string   `json:"follows,omitempty"` // the public detection it follows (Sigma rule)
}

// Finding is one thing worth telling a responder about a host.
type Finding struct {
	// ID is deterministic (host, kind, record id or service key, digest), so
	// re-processing the same observation can never create a second alert.
	ID       string    `json:"id"`
	Host     Host      `json:"host"`
	Kind     Kind      `json:"kind"`
	Severity Severity  `json:"severity"`
	At       time.Time `json:"at"` // event time, or observation time

	Service   *Service `json:"service,omitempty"`  // the service now (or as last seen)
	Previous  *Service `json:"previous,omitempty"` // modified/removed: before
	Event     *Event   `json:"event,omitempty"`    // the 7045/104/7040 behind it
	Installer *Account `json:"installer,omitempty"`

	Detail  string   `json:"detail,omitempty"`  // one line in words: what changed, the last error, ...
	Changed []string `json:"changed,omitempty"` // modified: which of path, dll, account, start changed
	Hits    []Hit    `json:"hits,omitempty"`    // heuristics that fired

	Suppressed   bool   `json:"suppressed,omitempty"` // matched an allowlist entry: stored, not sent
	SuppressedBy string `json:"suppressed_by,omitempty"`
}
