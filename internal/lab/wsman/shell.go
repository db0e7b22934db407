package wsman

import (
	"context"
	"errors"
	"io"
	"sync"
	"time"
)

// shell is one WinRS cmd shell.
type shell struct {
	id       string
	host     string
	owner    string
	lastUsed time.Time
	commands map[string]*command
}

// exitTerminated is the exit code of a process ended by the terminate
// signal (STATUS_CONTROL_C_EXIT as a signed int32).
const exitTerminated = -1073741510

// command is one running (or finished, not yet fully received) command.
// Its output is a bounded buffer: the process blocks when the client does
// not receive, as a real pipe does.
type command struct {
	id     string
	cancel context.CancelFunc
	limit  int // pending bytes above which writers block
	stdin  *input

	mu        sync.Mutex
	changed   chan struct{} // closed and replaced on every change
	stdout    []byte
	stderr    []byte
	done      bool
	exit      int
	delivered bool // the Done state has been sent
}

func newCommand(id string, cancel context.CancelFunc, limit int) *command {
	return &command{id: id, cancel: cancel, limit: limit, changed: make(chan struct{}), stdin: newInput()}
}

// notifyLocked wakes everyone waiting for a change.
func (c *command) notifyLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

func (c *command) finish(exit int) {
	c.mu.Lock()
	c.done, c.exit = true, exit
	c.notifyLocked()
	c.mu.Unlock()
}

var errTerminated = errors.New("wsman: command terminated")

// streamWriter feeds one output stream of a command.
type streamWriter struct {
	c      *command
	stderr bool
	ctx    context.Context
}

func (w streamWriter) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		w.c.mu.Lock()
		for len(w.c.stdout)+len(w.c.stderr) >= w.c.limit {
			ch := w.c.changed
			w.c.mu.Unlock()
			select {
			case <-ch:
			case <-w.ctx.Done():
				return written, errTerminated
			}
			w.c.mu.Lock()
		}
		n := min(len(p), w.c.limit-len(w.c.stdout)-len(w.c.stderr))
		if w.stderr {
			w.c.stderr = append(w.c.stderr, p[:n]...)
		} else {
			w.c.stdout = append(w.c.stdout, p[:n]...)
		}
		w.c.notifyLocked()
		w.c.mu.Unlock()
		p, written = p[n:], written+n
	}
	return written, nil
}

// receive waits for output as Windows does: it returns when the command is
// done, when maxBytes are buffered, when output has been waiting for
// linger, or at the operation timeout (ok false: no output at all).
func (c *command) receive(ctx context.Context, timeout, linger time.Duration, maxBytes int) (receiveChunk, bool) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	var lingerC <-chan time.Time
	for {
		c.mu.Lock()
		pending := len(c.stdout) + len(c.stderr)
		if c.done || pending >= maxBytes {
			return c.takeLocked(maxBytes), true
		}
		if pending > 0 && lingerC == nil {
			t := time.NewTimer(linger)
			defer t.Stop()
			lingerC = t.C
		}
		ch := c.changed
		c.mu.Unlock()
		select {
		case <-ch:
		case <-lingerC:
			c.mu.Lock()
			return c.takeLocked(maxBytes), true
		case <-deadline.C:
			c.mu.Lock()
			if len(c.stdout)+len(c.stderr) == 0 && !c.done {
				c.mu.Unlock()
				return receiveChunk{}, false
			}
			return c.takeLocked(maxBytes), true
		case <-ctx.Done():
			return receiveChunk{}, false
		}
	}
}

// takeLocked removes up to maxBytes of output (stdout first) and unlocks.
func (c *command) takeLocked(maxBytes int) receiveChunk {
	defer c.mu.Unlock()
	var ch receiveChunk
	n := min(len(c.stdout), maxBytes)
	ch.stdout = append([]byte(nil), c.stdout[:n]...)
	c.stdout = c.stdout[n:]
	m := min(len(c.stderr), maxBytes-n)
	ch.stderr = append([]byte(nil), c.stderr[:m]...)
	c.stderr = c.stderr[m:]
	if len(c.stdout) == 0 {
		c.stdout = nil // let the backing array go
	}
	if len(c.stderr) == 0 {
		c.stderr = nil
	}
	if c.done && len(c.stdout) == 0 && len(c.stderr) == 0 {
		ch.done, ch.exit = true, c.exit
		c.delivered = true
	}
	c.notifyLocked()
	return ch
}

// input is a command's standard input: what Send delivers, buffered as the
// pipe to the process would be, until End or the command finishes.
type input struct {
	mu      sync.Mutex
	changed chan struct{}
	buf     []byte
	eof     bool // the client sent End
	closed  bool // the process is gone: later input is dropped
}

func newInput() *input { return &input{changed: make(chan struct{})} }

func (in *input) notifyLocked() {
	close(in.changed)
	in.changed = make(chan struct{})
}

// write appends p; end marks the end of the stream. Input after End or
// after the process ended is dropped, as Windows does.
func (in *input) write(p []byte, end bool) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.eof || in.closed {
		return
	}
	in.buf = append(in.buf, p...)
	in.eof = end
	in.notifyLocked()
}

func (in *input) close() {
	in.mu.Lock()
	in.closed, in.buf = true, nil
	in.notifyLocked()
	in.mu.Unlock()
}

// stdinReader reads a command's input; a Read waiting for input returns
// when the command's context ends.
type stdinReader struct {
	in  *input
	ctx context.Context
}

func (r stdinReader) Read(p []byte) (int, error) {
	for {
		r.in.mu.Lock()
		if len(r.in.buf) > 0 {
			n := copy(p, r.in.buf)
			r.in.buf = r.in.buf[n:]
			if len(r.in.buf) == 0 {
				r.in.buf = nil
			}
			r.in.mu.Unlock()
			return n, nil
		}
		if r.in.eof || r.in.closed {
			r.in.mu.Unlock()
			return 0, io.EOF
		}
		ch := r.in.changed
		r.in.mu.Unlock()
		select {
		case <-ch:
		case <-r.ctx.Done():
			return 0, r.ctx.Err()
		}
	}
}
