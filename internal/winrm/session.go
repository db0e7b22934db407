package winrm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Session modes (config winrm.session).
const (
	// SessionPerPoll: protocol v1 in a new shell every poll (Create,
	// Command, Receive, Delete).
	SessionPerPoll = "per-poll"
	// SessionShell: protocol v1 in a shell kept per host (Command, Receive).
	SessionShell = "shell"
	// SessionPersistent: protocol v2, one collector process per host reading
	// a request line per poll (Send, Receive).
	SessionPersistent = "persistent"
)

// Recycling bounds of a persistent session.
const (
	// DefaultSessionMaxPolls: polls answered by one shell before it is
	// replaced, below Windows' MaxConcurrentOperationsPerUser (1500), which
	// counts a kept shell's operations.
	DefaultSessionMaxPolls = 1000
	// DefaultSessionMaxIdle: a shell unused for longer is replaced rather
	// than reused. Windows reclaims idle shells after IdleTimeout (default
	// 2 h, at least 60 s when an administrator lowers it); a shell it already
	// reclaimed is replaced at once in the same poll (shell not found).
	DefaultSessionMaxIdle = 30 * time.Minute
	// closeTimeout bounds Close's deletion of every kept shell.
	closeTimeout = 20 * time.Second
	// closeParallel: shells deleted at once by Close.
	closeParallel = 16
)

// sessions holds one persistent collector per host.
type sessions struct {
	maxPolls int
	maxIdle  time.Duration
	now      func() time.Time

	logger *slog.Logger

	mu        sync.Mutex
	closed    bool
	closeBy   time.Time // set by Close (wall clock): no delete runs past it
	byHost    map[string]*session
	lastSweep time.Time
	// stale: sessions of hosts no longer polled, handed to sweep (Close waits).
	stale    chan staleSession
	sweep    sync.WaitGroup
	sweeping bool   // the delete goroutine runs (started on the first stale session)
	startDel func() // starts it
}

type staleSession struct {
	host string
	s    *session
}

// sweepLocked forgets the sessions unused for longer than maxIdle (hosts no
// longer polled: removed from AD, out of scope) and hands their shells to
// the delete goroutine. A session busy in a poll is not stale.
func (ss *sessions) sweepLocked(now time.Time) {
	for host, s := range ss.byHost {
		if !s.tryAcquire() {
			continue
		}
		if now.Sub(s.lastUsed) <= ss.maxIdle {
			s.release()
			continue
		}
		ss.retireLocked(host, s)
	}
}

// forget drops host's session at once (the poller no longer polls the host)
// and hands its shell to the delete goroutine. A session busy in a poll is
// dropped from byHost only: releaseSession hands its shells over when that
// poll ends. A poll that starts after forget opens a new session; the poller
// makes that rare (a scheduled poll of a host no longer monitored gives up),
// and the idle sweep deletes such a shell after maxIdle.
func (ss *sessions) forget(host string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s := ss.byHost[host]
	if s == nil || ss.closed {
		return
	}
	if !s.tryAcquire() {
		delete(ss.byHost, host) // releaseSession hands its shells over when the poll ends
		return
	}
	ss.retireLocked(host, s)
}

// retireLocked removes s, whose lock the caller holds, from byHost (if it
// is still there) and hands its shells to the delete goroutine, which
// releases it.
func (ss *sessions) retireLocked(host string, s *session) {
	if ss.byHost[host] == s {
		delete(ss.byHost, host)
	}
	s.gone = true
	if s.shellID == "" && len(s.orphans) == 0 {
		s.release()
		return
	}
	if !ss.sweeping {
		ss.sweeping = true
		ss.startDel()
	}
	select {
	case ss.stale <- staleSession{host, s}: // deleted, and released, by runSweeper
	default:
		ss.logger.Warn("winrm: too many kept shells waiting for deletion; this one is left to the host's idle timeout", "host", host)
		s.release()
	}
}

// releaseSession ends a poll's hold on s. A session that stopped being the
// host's during the poll (Forget) hands its shells to the delete goroutine
// instead of keeping them where nothing will use them again.
func (c *Collector) releaseSession(host string, s *session) {
	ss := c.sessions
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.closed || ss.byHost[host] == s || (s.shellID == "" && len(s.orphans) == 0) {
		s.release()
		return
	}
	ss.retireLocked(host, s)
}

// session is one host's kept shell and collector process. lock makes one
// poll at a time per host; a zero shellID means "none open". The fields are
// used only by the holder of lock.
type session struct {
	lock      chan struct{} // holds one token while a poll runs
	gone      bool          // swept: no longer in sessions.byHost, get a new one
	shellID   string
	commandID string
	polls     int
	lastUsed  time.Time
	// needScript: the collector has not been sent its script yet.
	needScript bool
	// orphans: shells whose delete failed (host down, connection lost);
	// deleted after the next successful poll and by Close.
	orphans []string
}

// maxOrphans bounds the shells remembered for a later delete; older ones are
// left to the host's idle timeout.
const maxOrphans = 8

func newSessions() *sessions {
	return &sessions{maxPolls: DefaultSessionMaxPolls, maxIdle: DefaultSessionMaxIdle, now: time.Now, byHost: map[string]*session{},
		logger: slog.New(slog.DiscardHandler),
		stale:  make(chan staleSession, 256)}
}

// runSweeper deletes the shells of stale sessions until the channel closes.
// Each shell is tried once; one that cannot be deleted (a host removed from
// AD is often switched off) is left to the host's idle timeout. Once Close's
// deadline has passed, what is left is not tried at all.
func (c *Collector) runSweeper() {
	ss := c.sessions
	defer ss.sweep.Done()
	for st := range ss.stale {
		for _, id := range st.s.takeShells() {
			budget := deleteTimeout
			ss.mu.Lock()
			if ss.closed {
				budget = min(budget, time.Until(ss.closeBy))
			}
			ss.mu.Unlock()
			if budget <= 0 {
				break // Close's deadline passed: the host's idle timeout will do
			}
			if err := c.tr.deleteShellWithin(context.Background(), st.host, c.params, id, budget); err != nil {
				c.logger.Warn("winrm: could not delete the kept shell of a host no longer polled; the host's idle timeout will", "host", st.host, "error", err)
			}
		}
		st.s.release()
	}
}

func (ss *sessions) get(host string) (*session, error) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.closed {
		return nil, fmt.Errorf("cancelled: the collector is closed: %w", context.Canceled)
	}
	if now := ss.now(); now.Sub(ss.lastSweep) > ss.maxIdle/2 {
		ss.lastSweep = now
		ss.sweepLocked(now)
	}
	s := ss.byHost[host]
	if s == nil {
		s = &session{lock: make(chan struct{}, 1)}
		ss.byHost[host] = s
	}
	return s, nil
}

// pollSession answers one request through host's persistent collector
// (protocol v2) and hands the answer line to parse.
func (c *Collector) pollSession(ctx context.Context, host string, r collectRequest, parse func([]byte) error) error {
	line, err := requestLine(r)
	if err != nil {
		return fmt.Errorf("request: %w: %v", ErrProtocol, err)
	}
	return c.pollKept(ctx, host, keptPoll{
		open:   func(s *session) error { return c.openSession(ctx, host, s) },
		ask:    func(s *session) error { return c.sendRequest(ctx, host, s, line) },
		answer: func(s *session) ([]byte, error) { return c.readAnswerLine(ctx, host, s) },
	}, parse)
}

// pollShell is protocol v1 in a kept shell (winrm.session shell): each poll
// runs the whole script as a new command in host's shell, so an idle poll is
// Command and Receive (2 requests) instead of Create, Command, Receive and
// Delete. Windows counts a kept shell's commands against
// MaxConcurrentOperationsPerUser until the shell is deleted: recycle keeps
// well under it.
func (c *Collector) pollShell(ctx context.Context, host string, r collectRequest, parse func([]byte) error) error {
	cmd, err := commandLine(r)
	if err != nil {
		return fmt.Errorf("request: %w: %v", ErrProtocol, err)
	}
	var commandID string
	return c.pollKept(ctx, host, keptPoll{
		open: func(s *session) error {
			id, err := c.tr.createShell(ctx, host, c.params)
			if err != nil {
				return err
			}
			s.shellID, s.polls, s.lastUsed = id, 0, c.sessions.now()
			return nil
		},
		ask: func(s *session) (err error) {
			commandID, err = c.tr.startCommand(ctx, host, c.params, s.shellID, cmd)
			return err
		},
		answer: func(s *session) ([]byte, error) {
			stdout := &capWriter{max: c.cfg.MaxOutputBytes}
			stderr := &capWriter{max: maxStderrBytes}
			exit, err := c.tr.receiveAll(ctx, host, c.params, s.shellID, commandID, stdout, stderr)
			if err != nil {
				return nil, err
			}
			return c.commandOutput(exit, stdout, stderr)
		},
	}, parse)
}

// keptPoll is what one poll does in a kept shell: open sets up a new shell
// (leaving nothing open when it fails), ask starts this poll's work in it,
// answer reads the result.
type keptPoll struct {
	open   func(*session) error
	ask    func(*session) error
	answer func(*session) ([]byte, error)
}

// pollKept runs one poll in host's kept shell, one poll per host at a time.
// The shell is recycled before Windows' quotas and idle timeout act; a
// reused shell the host has forgotten (idle timeout, WinRM restart) is
// replaced at once, since nothing ran yet; on any other failure (parse's
// included) the shell is deleted and the next poll opens a new one.
func (c *Collector) pollKept(ctx context.Context, host string, k keptPoll, parse func([]byte) error) error {
	s, err := c.acquireSession(ctx, host)
	if err != nil {
		return err
	}
	defer c.releaseSession(host, s)

	c.recycle(ctx, host, s)
	reused := s.shellID != ""
	if !reused {
		if err := k.open(s); err != nil {
			return err
		}
	}
	err = k.ask(s)
	if err != nil && reused && errors.Is(err, ErrShellNotFound) {
		c.discard(ctx, host, s)
		if err := k.open(s); err != nil {
			return err
		}
		err = k.ask(s)
	}
	var out []byte
	if err == nil {
		out, err = k.answer(s)
	}
	if err == nil {
		err = parse(out)
	}
	if err != nil {
		c.discard(ctx, host, s)
		return err
	}
	c.pollDone(ctx, host, s)
	return nil
}

// recycle deletes s's shell when it has served maxPolls polls or sat idle
// longer than maxIdle: before Windows' quotas and idle timeout act.
func (c *Collector) recycle(ctx context.Context, host string, s *session) {
	if s.shellID != "" && (s.polls >= c.sessions.maxPolls || c.sessions.now().Sub(s.lastUsed) > c.sessions.maxIdle) {
		c.discard(ctx, host, s)
	}
}

// pollDone counts a successful poll on s, retries deletes that failed
// before, and deletes the shell when Close ran during the poll.
func (c *Collector) pollDone(ctx context.Context, host string, s *session) {
	s.polls++
	s.lastUsed = c.sessions.now()
	c.deleteOrphans(ctx, host, s)
	c.sessions.mu.Lock()
	closed := c.sessions.closed
	c.sessions.mu.Unlock()
	if closed {
		c.discard(ctx, host, s) // Close ran during this poll and could not wait for it
	}
}

// deleteOrphans retries, once, the deletes that failed earlier, now that the
// host answers; a shell the host has forgotten is gone already. A shell that
// still cannot be deleted is left to the host's idle timeout.
func (c *Collector) deleteOrphans(ctx context.Context, host string, s *session) {
	for _, id := range s.orphans {
		if err := c.tr.deleteShell(ctx, host, c.params, id); err != nil {
			c.logger.Warn("winrm: could not delete an old shell; the host's idle timeout will", "host", host, "error", err)
		}
	}
	s.orphans = nil
}

// sendRequest sends the request line, after the v2 script when the session
// is new (one Send for both).
func (c *Collector) sendRequest(ctx context.Context, host string, s *session, line []byte) error {
	if s.needScript {
		line = append(sessionScriptLine(), line...)
	}
	if err := c.tr.send(ctx, host, c.params, s.shellID, s.commandID, line, false); err != nil {
		return err
	}
	s.needScript = false
	return nil
}

// acquireSession takes host's session for one poll: one poll at a time per
// host, and a poll waiting here spends its own deadline.
func (c *Collector) acquireSession(ctx context.Context, host string) (*session, error) {
	for {
		s, err := c.sessions.get(host)
		if err != nil {
			return nil, err
		}
		if !s.acquire(ctx) {
			return nil, fmt.Errorf("wait for the previous poll of this host: %w", ctxError(ctx))
		}
		if !s.gone {
			return s, nil
		}
		s.release() // swept while this poll waited: take the new one
	}
}

// openSession creates the shell and starts the bootstrap, which waits for
// the script on stdin (sendRequest sends it). On failure nothing stays open.
func (c *Collector) openSession(ctx context.Context, host string, s *session) error {
	shellID, err := c.tr.createShell(ctx, host, c.params)
	if err != nil {
		return err
	}
	commandID, err := c.tr.startCommand(ctx, host, c.params, shellID, sessionCommand)
	if err != nil {
		if derr := c.tr.deleteShell(ctx, host, c.params, shellID); derr != nil {
			c.logger.Warn("winrm: could not delete the shell of a failed session", "host", host, "error", derr)
		}
		return err
	}
	s.shellID, s.commandID, s.polls, s.lastUsed, s.needScript = shellID, commandID, 0, c.sessions.now(), true
	return nil
}

// readAnswerLine receives until one whole line of stdout: the answer. Output
// past the line, the collector ending, or more than max_output_bytes break
// the framing: the caller discards the session.
func (c *Collector) readAnswerLine(ctx context.Context, host string, s *session) ([]byte, error) {
	stdout := &capWriter{max: c.cfg.MaxOutputBytes}
	stderr := &capWriter{max: maxStderrBytes}
	for {
		r, err := c.tr.receive(ctx, host, c.params, s.shellID, s.commandID, stdout, stderr)
		if err != nil {
			return nil, err
		}
		if i := bytes.IndexByte(stdout.buf, '\n'); i >= 0 {
			if i != len(stdout.buf)-1 || stdout.dropped > 0 {
				return nil, fmt.Errorf("receive: %w: the collector wrote more than one line for one request: %s", ErrProtocol, sanitize(string(stdout.buf), 200))
			}
			if r.done {
				// Answered, then ended: this answer stands, the session does not.
				c.discard(ctx, host, s)
			}
			return stdout.buf[:i], nil
		}
		if r.done {
			if r.exit != 0 || len(stderr.buf) > 0 {
				return nil, fmt.Errorf("collector: %w: the persistent collector ended with exit code %d: %s", ErrScript, r.exit, sanitize(string(stderr.buf), 500))
			}
			return nil, fmt.Errorf("receive: %w: the persistent collector ended in the middle of an answer (%d bytes, no newline)", ErrProtocol, len(stdout.buf))
		}
	}
}

// discard deletes the session's shell (which ends its collector) and
// forgets it; the next poll opens a new one. Best effort: a failed delete
// is logged, the shell expires on the host's idle timeout.
func (c *Collector) discard(ctx context.Context, host string, s *session) {
	if s.shellID == "" {
		return
	}
	if err := c.tr.deleteShell(ctx, host, c.params, s.shellID); err != nil {
		c.logger.Warn("winrm: could not delete a kept shell; trying again after the next good poll, else the host's idle timeout removes it", "host", host, "session", c.cfg.Session, "error", err)
		if len(s.orphans) == maxOrphans {
			s.orphans = s.orphans[1:]
		}
		s.orphans = append(s.orphans, s.shellID)
	}
	s.shellID, s.commandID, s.polls = "", "", 0
}

// closeSessions deletes every kept shell, at most closeParallel at once,
// within closeTimeout, and returns the failures.
func (c *Collector) closeSessions() error {
	ss := c.sessions
	ss.mu.Lock()
	if ss.closed {
		ss.mu.Unlock()
		return nil
	}
	ss.closed = true
	ss.closeBy = time.Now().Add(closeTimeout)
	deadline := ss.closeBy
	all := ss.byHost
	ss.byHost = map[string]*session{}
	close(ss.stale)
	ss.mu.Unlock()
	ss.sweep.Wait() // stale shells first, within the same deadline

	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
		sem  = make(chan struct{}, closeParallel)
	)
	for host, s := range all {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
				defer func() { <-sem }()
			case <-ctx.Done():
				return
			}
			if !s.acquire(ctx) {
				return // a poll still runs: its own error path deletes the shell
			}
			defer s.release()
			for _, id := range s.takeShells() {
				if err := c.tr.deleteShellWithin(ctx, host, c.params, id, min(deleteTimeout, time.Until(deadline))); err != nil {
					mu.Lock()
					errs = append(errs, fmt.Errorf("%s: %w", sanitize(host, 255), err))
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// acquire takes the session for one poll, or gives up when ctx ends.
func (s *session) acquire(ctx context.Context) bool {
	select {
	case s.lock <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

func (s *session) release() { <-s.lock }

// takeShells returns the ids of every shell s holds (its kept shell and the
// orphans) and forgets them: the caller deletes them.
func (s *session) takeShells() []string {
	ids := s.orphans
	if s.shellID != "" {
		ids = append(ids, s.shellID)
	}
	s.shellID, s.commandID, s.polls, s.orphans = "", "", 0, nil
	return ids
}

// tryAcquire takes the session if no poll holds it.
func (s *session) tryAcquire() bool {
	select {
	case s.lock <- struct{}{}:
		return true
	default:
		return false
	}
}
