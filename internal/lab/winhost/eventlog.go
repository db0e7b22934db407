package winhost

import (
	"sort"
	"time"

	"github.com/svcwatch/svcwatch/internal/inventory"
)

// eventLog is the System log. Only the records the collector asks for (7045,
// 104, 7040) are kept; every other record exists as a record id only.
type eventLog struct {
	oldest, newest uint64 // the log is empty when newest < oldest
	capacity       uint64 // records the log holds before it is full
	maxBytes       int64
	retention      string
	events         []inventory.Event // ascending RecordID
	lastTime       time.Time
}

func newEventLog(capacity uint64, maxBytes int64, retention string) eventLog {
	return eventLog{oldest: 1, newest: 0, capacity: max(capacity, 64), maxBytes: maxBytes, retention: retention}
}

func (l *eventLog) count() uint64 {
	if l.newest < l.oldest {
		return 0
	}
	return l.newest - l.oldest + 1
}

// room makes space for one more record; false when the log is full and set
// to retain (Windows then drops new events).
func (l *eventLog) room() bool {
	if l.count() < l.capacity {
		return true
	}
	switch l.retention {
	case RetentionRetain:
		return false
	case RetentionAutoBackup:
		l.oldest = l.newest + 1 // archived to a file; the live log starts empty
		l.events = l.events[:0]
		return true
	}
	l.oldest++
	l.trim()
	return true
}

// trim drops what circular overwrite pushed out.
func (l *eventLog) trim() {
	if l.retention == RetentionCircular && l.count() > l.capacity {
		l.oldest = l.newest - l.capacity + 1
	}
	i := sort.Search(len(l.events), func(i int) bool { return l.events[i].RecordID >= l.oldest })
	if i > 0 {
		l.events = append(l.events[:0], l.events[i:]...)
	}
}

func (l *eventLog) noise(n uint64) {
	for ; n > 0; n-- {
		if !l.room() {
			return
		}
		l.newest++
	}
}

// add writes one collected record; it returns 0 when the event was dropped.
func (l *eventLog) add(t time.Time, id int, sid string, data []string) uint64 {
	if !l.room() {
		return 0
	}
	if t.Before(l.lastTime) {
		t = l.lastTime
	}
	l.lastTime = t
	l.newest++
	l.events = append(l.events, inventory.Event{ID: id, RecordID: l.newest, Time: t.UTC(), SID: sid, Data: data})
	return l.newest
}

// clear empties the log; the 104 record that says so is the first of the new
// log and takes the next record id (Windows does not restart the numbering).
func (l *eventLog) clear(t time.Time, sid string, data []string) uint64 {
	l.oldest = l.newest + 1
	l.events = l.events[:0]
	return l.add(t, inventory.EventLogCleared, sid, data)
}

func (l *eventLog) info() inventory.LogInfo {
	return inventory.LogInfo{OldestRecord: l.oldest, NewestRecord: l.newest, MaxBytes: l.maxBytes, Retention: l.retention}
}
