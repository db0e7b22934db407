package inventory

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// DetectOptions are the inputs to Detect besides the host's state and the
// observation.
type DetectOptions struct {
	// Lookback bounds which 7045 events the first poll of a host reports.
	Lookback time.Duration
	// Now is the poller's clock at collection; the look-back ends here.
	Now time.Time
}

// minRecordBytes is a generous upper bound on the average size of a System
// log record: a log holding fewer than MaxBytes/minRecordBytes records cannot
// be full, so it cannot have wrapped.
const minRecordBytes = 4096

// Detect compares one observation of a host with the host's stored state and
// returns the new state and what changed. It is pure: no I/O, no clock.
//
//   - The first poll (!prev.Baselined) records the inventory and watermark
//     silently and reports only 7045 events inside opts.Lookback before
//     opts.Now.
//   - A 7045 is joined to the inventory on key name or display name (7045's
//     ServiceName is usually the display name): installed when the service is
//     there, ephemeral when it is already gone. A service new in the inventory
//     with no 7045 is silent; one gone is removed; one whose image path,
//     ServiceDll, account or start mode changed is modified (a 7040 for it is
//     attached). A new service joined to a 7045 yields exactly one finding.
//   - 104 (log cleared), record ids going backwards and a gap between the
//     watermark and the oldest record that the log's retention cannot explain
//     are tamper findings.
//   - obs.Services == nil means the inventory is unchanged: prev.Services is kept.
//
// Finding IDs are derived from the host, the kind and the record id and event
// time, or the service key, inventory digest and observation time, so
// processing the same observation twice yields the same findings.
// Installer is left nil for the poller to resolve from Event.SID.
func Detect(host Host, prev State, obs Observation, opts DetectOptions) (State, []Finding) {
	d := &detector{host: host, prev: prev, obs: obs, opts: opts, first: !prev.Baselined}
	if d.opts.Now.IsZero() {
		d.opts.Now = obs.At
	}
	d.at = obs.At
	if d.at.IsZero() {
		d.at = d.opts.Now
	}
	return d.run()
}

type detector struct {
	host  Host
	prev  State
	obs   Observation
	opts  DetectOptions
	first bool
	at    time.Time // observation time for inventory findings
	gapTo uint64    // the log lost records up to here (a wrap or a deletion)
	// rewind: the log restarted and refilled past the watermark; the records
	// of the new log up to it are read on the next poll (watermark 0).
	rewind bool

	cur      []Service
	curIdx   serviceIndex
	prevIdx  serviceIndex    // curIdx is the same index when the inventory is unchanged (read-only)
	joined   map[string]bool // upper-cased key names a 7045 of this observation joined
	gone     map[string]bool // upper-cased key names of stored services an ephemeral 7045 explains
	starts   []Event         // 7040 events not yet attached to a finding
	findings []Finding
}

func (d *detector) run() (State, []Finding) {
	next := d.prev
	if next.Host == "" {
		next.Host = d.host.Name
	}
	changed := d.obs.Services != nil
	d.prevIdx = newServiceIndex(d.prev.Services)
	d.cur, d.curIdx = d.prev.Services, d.prevIdx
	if changed {
		d.cur = slices.Clone(d.obs.Services)
		d.curIdx = newServiceIndex(d.cur)
	}
	d.joined = map[string]bool{}
	d.gone = map[string]bool{}

	reset := false
	var logTamper *Finding
	if !d.first {
		logTamper, reset = d.checkLog()
	}
	floor := d.prev.Watermark
	if reset || d.first {
		floor = 0
	}
	maxRec := d.events(floor)
	if logTamper != nil {
		d.addLogTamper(*logTamper)
	}

	switch {
	case d.first:
		next.Watermark = maxRec
		if !d.obs.More && d.obs.Log.NewestRecord > maxRec {
			// Older records are the baseline: start after the newest so
			// clears and start-type changes before the first poll stay history.
			next.Watermark = d.obs.Log.NewestRecord
		}
	case reset:
		next.Watermark = maxRec
	case d.rewind:
		// Events re-read next time keep their IDs (record id and time), so
		// those already reported now are not reported twice.
		next.Watermark = 0
	default:
		next.Watermark = max(d.prev.Watermark, maxRec, d.gapTo)
	}

	next.Services = d.cur
	next.Digest = d.obs.Digest
	if !d.first && changed {
		var deferred bool
		next.Services, deferred = d.diff()
		if deferred {
			next.Digest = "" // ask for the full inventory next time
		}
	}
	d.orphanStarts()
	if !d.obs.Log.isZero() {
		next.Log = d.obs.Log
	}
	// A first poll cut short keeps baselining until the look-back is read.
	next.Baselined = !(d.first && d.obs.More)
	return next, d.findings
}

// events walks the observation's events above floor, oldest first, and
// returns the highest record id seen.
func (d *detector) events(floor uint64) uint64 {
	evs := slices.Clone(d.obs.Events)
	slices.SortStableFunc(evs, func(a, b Event) int { return cmp.Compare(a.RecordID, b.RecordID) })
	var maxRec uint64
	var last *Event
	for i := range evs {
		e := evs[i]
		if e.RecordID <= floor {
			continue
		}
		if last != nil && last.RecordID == e.RecordID && last.ID == e.ID && last.Time.Equal(e.Time) {
			continue // the same record twice
		}
		last = &evs[i]
		maxRec = max(maxRec, e.RecordID)
		switch e.ID {
		case EventServiceInstalled:
			if d.first && !d.inLookback(e) {
				continue
			}
			d.install(e)
		case EventLogCleared, EventAuditLogCleared:
			if !d.first {
				d.cleared(e)
			}
		case EventStartTypeChanged:
			if !d.first {
				d.starts = append(d.starts, e)
			}
		}
	}
	return maxRec
}

func (d *detector) inLookback(e Event) bool {
	if d.opts.Lookback <= 0 || e.Time.IsZero() {
		return false
	}
	return !e.Time.Before(d.opts.Now.Add(-d.opts.Lookback))
}

// install turns one 7045 into an installed or ephemeral finding.
func (d *detector) install(e Event) {
	in, _ := e.Install()
	ev := e
	f := Finding{Host: d.host, At: e.Time, Event: &ev}
	if f.At.IsZero() {
		f.At = d.at
	}
	if svc, ok := d.curIdx.join(in.ServiceName, in.ImagePath); ok {
		s := svc
		f.Kind = KindInstalled
		f.Service = &s
		f.Detail = "service installed: " + describe(s)
		d.joined[strings.ToUpper(s.Name)] = true
	} else {
		s := serviceFromInstall(in)
		f.Kind = KindEphemeral
		f.Service = &s
		f.Detail = "service installed and already gone from the inventory: " + describe(s)
		if old, ok := d.prevIdx.join(in.ServiceName, in.ImagePath); ok && d.obs.Services != nil {
			if _, still := d.curIdx.byKey[strings.ToUpper(old.Name)]; !still {
				// One event, one finding: the stored service it replaced is gone too.
				s.Name = old.Name
				oc := old
				f.Previous = &oc
				f.Detail += "; it replaced the stored service " + describe(old) + ", which is gone as well"
				d.gone[strings.ToUpper(old.Name)] = true
			}
		}
	}
	f.ID = FindingID(d.host.Name, f.Kind, eventKey(e)...)
	d.findings = append(d.findings, f)
}

func (d *detector) cleared(e Event) {
	ev := e
	channel := e.Field(2)
	if channel == "" {
		channel = "System"
		if e.ID == EventAuditLogCleared {
			channel = "Security"
		}
	}
	detail := fmt.Sprintf("the %s log was cleared", channel)
	if who := joinAccount(e.Field(1), e.Field(0)); who != "" {
		detail += " by " + who
	}
	at := e.Time
	if at.IsZero() {
		at = d.at
	}
	d.findings = append(d.findings, Finding{
		ID: FindingID(d.host.Name, KindTamper, eventKey(e)...), Host: d.host, Kind: KindTamper,
		At: at, Event: &ev, Detail: detail,
	})
}

// checkLog compares the log's bounds with the watermark and the previous
// bounds. It returns a tamper finding when they show a clear or a deletion,
// and whether the log was reset (record ids restarted below the watermark),
// in which case every returned event is new.
func (d *detector) checkLog() (*Finding, bool) {
	lg, pl := d.obs.Log, d.prev.Log
	if lg.isZero() {
		return nil, false // the collector could not read the log; it says so in its errors
	}
	w := d.prev.Watermark
	tamper := func(detail string, key ...string) *Finding {
		return &Finding{
			ID: FindingID(d.host.Name, KindTamper, key...), Host: d.host, Kind: KindTamper,
			At: d.at, Detail: detail,
		}
	}
	switch {
	case w > 0 && lg.NewestRecord < w:
		return tamper(fmt.Sprintf("System log record ids went backwards: newest record %d is below the last one processed, %d; the log was cleared or replaced",
			lg.NewestRecord, w), "backwards", u(w), u(lg.NewestRecord), u(lg.OldestRecord)), true
	case pl.OldestRecord > 0 && lg.OldestRecord > 0 && lg.OldestRecord < pl.OldestRecord:
		d.rewind = true
		return tamper(fmt.Sprintf("System log restarted: its oldest record moved back from %d to %d; the log was cleared or replaced, and its records up to %d are read on the next poll",
			pl.OldestRecord, lg.OldestRecord, w), "restarted", u(pl.OldestRecord), u(lg.OldestRecord), u(w)), false
	case w > 0 && lg.OldestRecord > w+1:
		d.gapTo = lg.OldestRecord - 1 // reported once: the next poll starts after the gap
		if d.wrapExplains(lg) {
			return nil, false
		}
		return tamper(fmt.Sprintf("%d System log records after the last one processed (%d) are gone, and the log (%s, %d records held, %d bytes max) cannot have wrapped; records were deleted",
			lg.OldestRecord-w-1, w, retentionName(lg.Retention), lg.NewestRecord-lg.OldestRecord+1, lg.MaxBytes), "gap", u(w), u(lg.OldestRecord)), false
	}
	return nil, false
}

// addLogTamper reports what the log's bounds show, unless a 104 in the same
// observation already explains it (one clear, one finding): then the bounds
// are added to that finding's detail.
func (d *detector) addLogTamper(f Finding) {
	for i := range d.findings {
		g := &d.findings[i]
		if g.Kind == KindTamper && g.Event != nil {
			g.Detail += "; " + f.Detail
			return
		}
	}
	d.findings = append(d.findings, f)
}

// wrapExplains reports whether records after the watermark can have left
// the log through its own retention: a circular log that is plausibly full
// overwrote them, an auto-backup log archived them to a file (Windows logs
// 105, not 104, and the live log restarts nearly empty). A log set to retain
// never drops records except by a clear.
func (d *detector) wrapExplains(lg LogInfo) bool {
	switch strings.ToLower(lg.Retention) {
	case "retain":
		return false
	case "autobackup":
		return true
	case "circular", "":
		if lg.MaxBytes <= 0 {
			return true // size unknown: cannot tell a wrap from a deletion
		}
		held := lg.NewestRecord - lg.OldestRecord + 1
		return held >= uint64(lg.MaxBytes/minRecordBytes)
	}
	return true
}

// diff compares the inventories. It returns the inventory to remember and
// whether a new service was held back because its 7045 may still be coming
// (events were cut at the per-poll bound).
func (d *detector) diff() ([]Service, bool) {
	keep := make([]Service, 0, len(d.cur))
	deferred := false
	digest := d.obs.Digest
	stamp := strconv.FormatInt(d.at.UnixNano(), 10)
	for _, s := range sortedServices(d.cur) {
		key := strings.ToUpper(s.Name)
		old, existed := d.prevIdx.byKey[key]
		if !existed {
			if d.joined[key] {
				keep = append(keep, s)
				continue
			}
			if d.obs.More {
				deferred = true
				continue
			}
			keep = append(keep, s)
			sc := s
			d.findings = append(d.findings, Finding{
				ID: FindingID(d.host.Name, KindSilent, key, digest, stamp), Host: d.host, Kind: KindSilent,
				At: d.at, Service: &sc,
				Detail: "service appeared with no 7045 event (written to the registry directly, or its event was lost): " + describe(s),
			})
			continue
		}
		keep = append(keep, s)
		changes, words := compareServices(old, s)
		if len(changes) == 0 {
			continue
		}
		if d.joined[key] && d.foldIntoInstall(key, old, changes, words) {
			continue
		}
		sc, oc := s, old
		f := Finding{
			ID: FindingID(d.host.Name, KindModified, key, digest, stamp), Host: d.host, Kind: KindModified,
			At: d.at, Service: &sc, Previous: &oc, Changed: changes,
			Detail: "service " + s.Name + " changed: " + strings.Join(words, "; "),
		}
		if e, ok := d.takeStart(s); ok {
			f.Event = &e
		}
		d.findings = append(d.findings, f)
	}
	for _, s := range sortedServices(d.prev.Services) {
		key := strings.ToUpper(s.Name)
		if _, ok := d.curIdx.byKey[key]; ok || d.gone[key] {
			continue
		}
		sc := s
		d.findings = append(d.findings, Finding{
			ID: FindingID(d.host.Name, KindRemoved, key, digest, stamp), Host: d.host, Kind: KindRemoved,
			At: d.at, Previous: &sc, Service: &sc,
			Detail: "service removed: " + describe(s),
		})
	}
	return keep, deferred
}

// foldIntoInstall records a re-created service's changes on its installed
// finding, so one re-install is one finding.
func (d *detector) foldIntoInstall(key string, old Service, changes, words []string) bool {
	for i := len(d.findings) - 1; i >= 0; i-- {
		f := &d.findings[i]
		if f.Kind == KindInstalled && f.Service != nil && strings.ToUpper(f.Service.Name) == key {
			oc := old
			f.Previous = &oc
			f.Changed = changes
			f.Detail += "; replaces the previous definition: " + strings.Join(words, "; ")
			return true
		}
	}
	return false
}

// takeStart removes and returns the first 7040 event about s.
func (d *detector) takeStart(s Service) (Event, bool) {
	for i, e := range d.starts {
		if strings.EqualFold(e.Field(3), s.Name) || (e.Field(3) == "" && s.DisplayName != "" && strings.EqualFold(e.Field(0), s.DisplayName)) {
			d.starts = slices.Delete(d.starts, i, i+1)
			return e, true
		}
	}
	return Event{}, false
}

// orphanStarts reports 7040 events that no inventory change explains (the
// start type was changed and changed back, or the inventory was unchanged).
func (d *detector) orphanStarts() {
	for _, e := range d.starts {
		ev := e
		name := e.Field(3)
		if name == "" {
			name = e.Field(0)
		}
		f := Finding{
			ID: FindingID(d.host.Name, KindModified, eventKey(e)...), Host: d.host, Kind: KindModified,
			At: e.Time, Event: &ev, Changed: []string{ChangeStartMode},
			Detail: fmt.Sprintf("start type of %s changed from %s to %s (event 7040)", name, e.Field(1), e.Field(2)),
		}
		if f.At.IsZero() {
			f.At = d.at
		}
		if s, ok := d.curIdx.join(e.Field(3), ""); ok {
			sc := s
			f.Service = &sc
		} else if s, ok := d.curIdx.join(e.Field(0), ""); ok {
			sc := s
			f.Service = &sc
		} else {
			f.Service = &Service{Name: name, DisplayName: e.Field(0)}
		}
		d.findings = append(d.findings, f)
	}
	d.starts = nil
}

// compareServices lists what changed between two versions of a service, as
// Change* codes and as words for the alert.
func compareServices(old, s Service) (codes, words []string) {
	if !SameImage(old.ImagePath, s.ImagePath) {
		codes = append(codes, ChangeImagePath)
		words = append(words, fmt.Sprintf("image path %q → %q", old.ImagePath, s.ImagePath))
	}
	if NormalizeFilePath(old.ServiceDLL) != NormalizeFilePath(s.ServiceDLL) {
		codes = append(codes, ChangeServiceDLL)
		words = append(words, fmt.Sprintf("ServiceDll %q → %q", old.ServiceDLL, s.ServiceDLL))
	}
	if !strings.EqualFold(strings.TrimSpace(old.Account), strings.TrimSpace(s.Account)) {
		codes = append(codes, ChangeAccount)
		words = append(words, fmt.Sprintf("account %q → %q", old.Account, s.Account))
	}
	if old.StartMode != s.StartMode || old.DelayedAuto != s.DelayedAuto {
		codes = append(codes, ChangeStartMode)
		words = append(words, fmt.Sprintf("start mode %s → %s", startWords(old), startWords(s)))
	}
	return codes, words
}

func startWords(s Service) string {
	if s.DelayedAuto && s.StartMode == StartAuto {
		return "auto (delayed)"
	}
	return s.StartMode.String()
}

// serviceIndex finds services by key name or display name, case-insensitively.
type serviceIndex struct {
	byKey     map[string]Service
	byDisplay map[string][]Service
}

func newServiceIndex(svcs []Service) serviceIndex {
	ix := serviceIndex{byKey: make(map[string]Service, len(svcs)), byDisplay: make(map[string][]Service, len(svcs))}
	for _, s := range svcs {
		ix.byKey[strings.ToUpper(s.Name)] = s
		if s.DisplayName != "" {
			k := strings.ToUpper(s.DisplayName)
			ix.byDisplay[k] = append(ix.byDisplay[k], s)
		}
	}
	return ix
}

// join finds the service a 7045 names: by key name or display name; when
// several match, the one whose image path is the event's wins.
func (ix serviceIndex) join(name, imagePath string) (Service, bool) {
	name = strings.TrimSpace(name)
	if name == "" {
		return Service{}, false
	}
	k := strings.ToUpper(name)
	var cands []Service
	if s, ok := ix.byKey[k]; ok {
		cands = append(cands, s)
	}
	for _, s := range ix.byDisplay[k] {
		if !strings.EqualFold(s.Name, name) {
			cands = append(cands, s)
		}
	}
	if len(cands) == 0 {
		return Service{}, false
	}
	if imagePath != "" {
		for _, s := range cands {
			if SameImage(s.ImagePath, imagePath) {
				return s, true
			}
		}
	}
	return cands[0], true
}

func sortedServices(svcs []Service) []Service {
	out := slices.Clone(svcs)
	slices.SortFunc(out, func(a, b Service) int {
		return strings.Compare(strings.ToUpper(a.Name), strings.ToUpper(b.Name))
	})
	return out
}

// serviceFromInstall is what a 7045 says about a service that is gone.
func serviceFromInstall(in Install) Service {
	s := Service{Name: in.ServiceName, DisplayName: in.ServiceName, ImagePath: in.ImagePath, Account: in.Account}
	s.StartMode = parseStartType(in.StartType)
	s.Type = parseServiceType(in.ServiceType)
	return s
}

// parseStartType reads a 7045/4697 start type: English words or the number.
func parseStartType(v string) StartMode {
	v = strings.ToLower(strings.TrimSpace(v))
	switch {
	case strings.HasPrefix(v, "boot"):
		return StartBoot
	case strings.HasPrefix(v, "system"):
		return StartSystem
	case strings.HasPrefix(v, "auto"):
		return StartAuto
	case strings.HasPrefix(v, "demand"), strings.HasPrefix(v, "manual"):
		return StartDemand
	case strings.HasPrefix(v, "disabled"):
		return StartDisabled
	}
	if n, err := strconv.ParseUint(v, 0, 8); err == nil && n <= 4 {
		return StartMode(n)
	}
	return StartDemand
}

// parseServiceType reads a 7045/4697 service type: English words or the number.
func parseServiceType(v string) uint32 {
	v = strings.ToLower(strings.TrimSpace(v))
	switch {
	case strings.Contains(v, "kernel"):
		return TypeKernelDriver
	case strings.Contains(v, "file system"):
		return TypeFileSystemDriver
	case strings.Contains(v, "share"):
		return TypeShareProcess
	case strings.Contains(v, "user mode"), strings.Contains(v, "own process"):
		return TypeOwnProcess
	}
	if n, err := strconv.ParseUint(v, 0, 32); err == nil {
		return uint32(n)
	}
	return TypeOwnProcess
}

// ParseInstallFields converts the textual start and service types of a 7045
// (or the numbers of a 4697) to a StartMode and a Type.
func ParseInstallFields(startType, serviceType string) (StartMode, uint32) {
	return parseStartType(startType), parseServiceType(serviceType)
}

func describe(s Service) string {
	name := s.Name
	if s.DisplayName != "" && !strings.EqualFold(s.DisplayName, s.Name) {
		name += " (" + s.DisplayName + ")"
	}
	out := name
	if s.ImagePath != "" {
		out += ", " + s.ImagePath
	}
	if s.ServiceDLL != "" {
		out += ", ServiceDll " + s.ServiceDLL
	}
	if s.Account != "" {
		out += ", as " + s.Account
	}
	return out
}

func joinAccount(domain, user string) string {
	switch {
	case user == "":
		return ""
	case domain == "":
		return user
	}
	return domain + `\` + user
}

func retentionName(r string) string {
	if r == "" {
		return "retention unknown"
	}
	return r
}

func (l LogInfo) isZero() bool { return l.OldestRecord == 0 && l.NewestRecord == 0 }

func u(v uint64) string { return strconv.FormatUint(v, 10) }
