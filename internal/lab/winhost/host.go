// Package winhost simulates a Windows server for the svcwatch lab: a service
// and driver inventory, a System event log with increasing record ids, attack
// scenarios that change both the way the real tools do, and faults a real
// host can show. (*Host).Exec interprets the svcwatch collector request (see
// docs/internals.md, "The collector protocol (version 1)") from the host's
// state, the way the PowerShell collector would on Windows.
//
// A Host is safe for concurrent use.
package winhost

import (
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/svcwatch/svcwatch/internal/inventory"
)

// Log retention modes, as the collector reports them.
const (
	RetentionCircular   = "circular"   // overwrite events as needed (the default)
	RetentionRetain     = "retain"     // do not overwrite: new events are dropped when full
	RetentionAutoBackup = "autobackup" // archive the log when full and start a new one
)

// Defaults for Options.
const (
	DefaultOS          = "Microsoft Windows Server 2022 Datacenter"
	DefaultLogMaxBytes = 20 * 1024 * 1024 // Windows' default System log size
	DefaultSlowDelay   = 2 * time.Minute  // longer than any sane poll timeout
	DefaultDomainSID   = "S-1-5-21-3623811015-3361044348-30300820"
	// DefaultHugeBytes is the size of the "huge" fault's answer: above the
	// collector's default 8 MiB output cap.
	DefaultHugeBytes = 9 * 1024 * 1024
	// recordBytes is the average size of an .evtx record, to turn MaxBytes
	// into a record capacity.
	recordBytes = 1024
)

// Options configures a Host. The zero value is a member server with the full
// inventory and the real clock.
type Options struct {
	Role      Role   // RoleMember (default) or RoleDC
	OS        string // operatingSystem; default DefaultOS
	Small     bool   // a ~50-entry inventory for fast tests instead of ~260
	Domain    string // NetBIOS domain name used in 104 events; default "LAB"
	DomainSID string // the domain SID; the lab installer account is <DomainSID>-1104
	// Now is the host clock; default time.Now.
	Now func() time.Time
	// Seed makes random scenario names reproducible; default derived from the name.
	Seed uint64
	// LogMaxBytes and Retention configure the System log (default 20 MiB, circular).
	LogMaxBytes int64
	Retention   string
	// SlowDelay is how long the "slow" fault holds an answer back; default DefaultSlowDelay.
	SlowDelay time.Duration
	// HugeBytes is the stdout size of the "huge" fault; default DefaultHugeBytes.
	HugeBytes int64
}

// Fault kinds accepted by SetFault. The WS-Management level kinds (quota,
// access-denied, shell-leak) are stored here and acted on by package wsman.
const (
	FaultNone         = ""
	FaultSlow         = "slow"          // the answer comes after Options.SlowDelay
	FaultGarbage      = "garbage"       // stdout is not JSON
	FaultTruncated    = "truncated"     // stdout is the JSON answer cut in the middle
	FaultHuge         = "huge"          // stdout larger than the collector's 8 MiB cap
	FaultQuota        = "quota"         // WS-Man QuotaLimit fault on Create
	FaultAccessDenied = "access-denied" // HTTP 500 access-denied fault
	FaultShellLeak    = "shell-leak"    // Delete fails; shells pile up to the quota
	// FaultLogonFailure answers every request 401 as for a wrong password or
	// a locked account (not in DESIGN's list; for back-off tests).
	FaultLogonFailure = "logon-failure"
)

// Faults lists every fault kind (without FaultNone).
var Faults = []string{FaultSlow, FaultGarbage, FaultTruncated, FaultHuge, FaultQuota, FaultAccessDenied, FaultShellLeak, FaultLogonFailure}

// Host is one simulated Windows server.
type Host struct {
	name   string // DNS name, lower case
	netbio string // COMPUTERNAME
	opts   Options

	mu       sync.Mutex
	services []inventory.Service // shared with the catalog until the first change
	owned    bool                // services is a private copy
	digest   string              // cached canonical digest; "" when stale
	log      eventLog
	fault    string
	down     bool
	rng      *rand.Rand
	applied  []string // scenarios applied, in order
	runs     int      // commands executed
	collects int      // collector requests answered: v1 runs and v2 request lines (polls)
}

// New returns a host named name (a DNS name such as "dc01.lab.example").
func New(name string, opts Options) *Host {
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	if opts.OS == "" {
		opts.OS = DefaultOS
	}
	if opts.Domain == "" {
		opts.Domain = "LAB"
	}
	if opts.DomainSID == "" {
		opts.DomainSID = DefaultDomainSID
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.LogMaxBytes <= 0 {
		opts.LogMaxBytes = DefaultLogMaxBytes
	}
	if opts.Retention == "" {
		opts.Retention = RetentionCircular
	}
	if opts.SlowDelay <= 0 {
		opts.SlowDelay = DefaultSlowDelay
	}
	if opts.HugeBytes <= 0 {
		opts.HugeBytes = DefaultHugeBytes
	}
	hf := fnv.New64a()
	hf.Write([]byte(name))
	sum := hf.Sum64()
	if opts.Seed == 0 {
		opts.Seed = sum
	}
	short, _, _ := strings.Cut(name, ".")
	h := &Host{
		name:     name,
		netbio:   strings.ToUpper(short),
		opts:     opts,
		services: baseInventory(opts.Role, opts.Small),
		rng:      rand.New(rand.NewPCG(opts.Seed, 0x5eed)),
	}
	h.log = newEventLog(uint64(opts.LogMaxBytes/recordBytes), opts.LogMaxBytes, opts.Retention)
	h.seedHistory(sum)
	return h
}

// Name is the host's DNS name (lower case).
func (h *Host) Name() string { return h.name }

// ComputerName is the NetBIOS name ($env:COMPUTERNAME), e.g. "DC01".
func (h *Host) ComputerName() string { return h.netbio }

// OS is the operatingSystem string.
func (h *Host) OS() string { return h.opts.OS }

// Role says whether the host is a domain controller.
func (h *Host) Role() Role { return h.opts.Role }

// InstallerSID is the lab user that the attack scenarios run as (RID 1104).
func (h *Host) InstallerSID() string { return h.opts.DomainSID + "-1104" }

// SetDown makes the host unreachable (package wsman resets its connections).
func (h *Host) SetDown(down bool) {
	h.mu.Lock()
	h.down = down
	h.mu.Unlock()
}

// Down reports whether the host is unreachable.
func (h *Host) Down() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.down
}

// SetFault injects a fault; "" or "none" clears it.
func (h *Host) SetFault(kind string) error {
	if kind == "none" {
		kind = FaultNone
	}
	if kind != FaultNone && !slices.Contains(Faults, kind) {
		return fmt.Errorf("winhost: unknown fault %q (want one of %s, or none)", kind, strings.Join(Faults, ", "))
	}
	h.mu.Lock()
	h.fault = kind
	h.mu.Unlock()
	return nil
}

// Fault is the injected fault kind, FaultNone when healthy.
func (h *Host) Fault() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.fault
}

// Services returns a copy of the current inventory.
func (h *Host) Services() []inventory.Service {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.services)
}

// Service returns the inventory entry with the given key name (case-insensitive).
func (h *Host) Service(name string) (inventory.Service, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if i := h.indexLocked(name); i >= 0 {
		return h.services[i], true
	}
	return inventory.Service{}, false
}

// Events returns a copy of the 7045/104/7040 records still in the log.
func (h *Host) Events() []inventory.Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.log.events)
}

// LogInfo describes the System log now.
func (h *Host) LogInfo() inventory.LogInfo {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.log.info()
}

// Digest is the canonical inventory digest (docs/internals.md).
func (h *Host) Digest() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.digestLocked()
}

// Applied lists the scenarios applied so far, in order.
func (h *Host) Applied() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.applied)
}

// Collects is the number of collector requests the host answered (or
// failed by its fault): one per poll in either protocol version.
func (h *Host) Collects() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.collects
}

// Runs is the number of commands the host executed (and, for the
// persistent collector, request lines it read).
func (h *Host) Runs() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.runs
}

// AddNoise appends n ordinary System-log records (service state changes, time
// sync, ...) that the collector does not return but that consume record ids
// and, on a full circular log, push old records out.
func (h *Host) AddNoise(n int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.log.noise(uint64(max(n, 0)))
}

// ResetLog replaces the System log with a new, empty file, as when the
// EventLog service is stopped and System.evtx deleted: record ids restart at
// 1 and no 104 is written. A few ordinary records follow (the service start).
func (h *Host) ResetLog() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.log.oldest, h.log.newest = 1, 0
	h.log.events = h.log.events[:0]
	h.log.noise(5)
}

// SetLog changes the log's maximum size and retention mode.
func (h *Host) SetLog(maxBytes int64, retention string) error {
	switch retention {
	case RetentionCircular, RetentionRetain, RetentionAutoBackup:
	default:
		return fmt.Errorf("winhost: unknown retention %q (want circular, retain or autobackup)", retention)
	}
	if maxBytes < 64*1024 {
		return fmt.Errorf("winhost: log size %d is below the Windows minimum of 64 KiB", maxBytes)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.log.maxBytes, h.log.capacity, h.log.retention = maxBytes, uint64(maxBytes/recordBytes), retention
	h.log.trim()
	return nil
}

// InstallService adds (or replaces) a service in the inventory. When logged is
// true a 7045 event is written by installerSID, as the SCM does for
// CreateService; false models a service written straight into the registry.
func (h *Host) InstallService(svc inventory.Service, logged bool, installerSID string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.installLocked(svc, logged, installerSID)
}

// RemoveService deletes a service from the inventory (no event: the SCM logs
// none for DeleteService). It reports whether the service existed.
func (h *Host) RemoveService(name string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.removeLocked(name)
}

func (h *Host) indexLocked(name string) int {
	for i := range h.services {
		if strings.EqualFold(h.services[i].Name, name) {
			return i
		}
	}
	return -1
}

// own makes services a private copy before the first modification, so that
// thousands of benchmark hosts share one catalog slice until they change.
func (h *Host) own() {
	if !h.owned {
		h.services = slices.Clone(h.services)
		h.owned = true
	}
	h.digest = ""
}

func (h *Host) installLocked(svc inventory.Service, logged bool, sid string) {
	h.own()
	if i := h.indexLocked(svc.Name); i >= 0 {
		h.services[i] = svc
	} else {
		h.services = append(h.services, svc)
	}
	if logged {
		h.log.add(h.opts.Now(), inventory.EventServiceInstalled, sid, installData(svc))
	}
}

func (h *Host) removeLocked(name string) bool {
	i := h.indexLocked(name)
	if i < 0 {
		return false
	}
	h.own()
	h.services = slices.Delete(h.services, i, i+1)
	return true
}

// installData renders the 7045 properties the way the SCM does.
func installData(s inventory.Service) []string {
	return []string{s.DisplayName, s.ImagePath, typeText(s.Type), startText(s.StartMode), s.Account}
}

func typeText(t uint32) string {
	switch {
	case t&inventory.TypeKernelDriver != 0:
		return "kernel mode driver"
	case t&inventory.TypeFileSystemDriver != 0:
		return "file system driver"
	case t&inventory.TypeShareProcess != 0:
		return "user mode service" // SCM reports shared-process services the same way
	}
	return "user mode service"
}

func startText(m inventory.StartMode) string {
	switch m {
	case inventory.StartBoot:
		return "boot start"
	case inventory.StartSystem:
		return "system start"
	case inventory.StartAuto:
		return "auto start"
	case inventory.StartDemand:
		return "demand start"
	case inventory.StartDisabled:
		return "disabled"
	}
	return fmt.Sprint(int(m))
}

// seedHistory fills the log as a server that has run for months: tens of
// thousands of records, the installs of its third-party software long ago and
// routine start-type changes, none of them inside any sane look-back window.
func (h *Host) seedHistory(sum uint64) {
	now := h.opts.Now()
	first := 30000 + sum%20000
	h.log.newest = first - 1
	h.log.oldest = first
	old := now.Add(-200 * 24 * time.Hour)
	for i, name := range []string{"VMTools", "VGAuthService", "vm3dservice", "edgeupdate", "edgeupdatem", "MicrosoftEdgeElevationService", "Sense"} {
		if idx := h.indexLocked(name); idx >= 0 {
			h.log.noise(uint64(3 + i))
			h.log.add(old.Add(time.Duration(i)*time.Minute), inventory.EventServiceInstalled, "S-1-5-18", installData(h.services[idx]))
		}
	}
	h.log.noise(1500)
	mid := now.Add(-90 * 24 * time.Hour)
	h.log.add(mid, inventory.EventStartTypeChanged, "S-1-5-18",
		[]string{"Background Intelligent Transfer Service", "auto start", "demand start", "BITS"})
	h.log.noise(4000 + sum%3000)
	h.log.lastTime = now.Add(-3 * time.Minute)
}
