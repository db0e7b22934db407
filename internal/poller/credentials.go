package poller

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/svcwatch/svcwatch/internal/inventory"
)

// ErrCredentialsPaused is returned by PollHost while polling is paused
// because several hosts refused the WinRM credentials.
var ErrCredentialsPaused = errors.New("polling paused: several hosts refused the WinRM credentials")

// breakerHosts is how many distinct hosts must refuse the credentials before
// all polling pauses: one host may have a broken local policy, several mean
// the password is wrong and every further logon brings the account closer
// to lockout.
const breakerHosts = 3

// credentialGuard keeps a wrong password from locking the poller's account:
// until one host has accepted the credentials, polls run one at a time; once
// breakerHosts distinct hosts refuse them, every poll pauses for MaxBackoff.
type credentialGuard struct {
	probe sync.Mutex // held by the single poll allowed while unproven

	mu       sync.Mutex
	proven   bool
	refused  map[string]time.Time // host → when it refused, since the last success
	pausedAt time.Time
	until    time.Time
}

func newCredentialGuard() *credentialGuard {
	return &credentialGuard{refused: make(map[string]time.Time)}
}

// enter blocks while another unproven poll is in flight and reports whether
// polling is paused. The returned func must be called when the poll is done.
func (g *credentialGuard) enter(now time.Time) (release func(), paused error) {
	if err := g.pausedErr(now); err != nil {
		return func() {}, err
	}
	g.mu.Lock()
	proven := g.proven
	g.mu.Unlock()
	if proven {
		return func() {}, nil
	}
	g.probe.Lock()
	// The probe before us may have tripped the breaker, or proven the
	// credentials, while we waited.
	if err := g.pausedErr(now); err != nil {
		g.probe.Unlock()
		return func() {}, err
	}
	g.mu.Lock()
	proven = g.proven
	g.mu.Unlock()
	if proven {
		g.probe.Unlock()
		return func() {}, nil
	}
	return g.probe.Unlock, nil
}

func (g *credentialGuard) pausedErr(now time.Time) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !now.Before(g.until) {
		return nil
	}
	return fmt.Errorf("%w until %s; fix winrm.password_env/_file and reload (SIGHUP) or restart", ErrCredentialsPaused, g.until.UTC().Format(time.RFC3339))
}

// accepted records a poll that authenticated.
func (g *credentialGuard) accepted() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.proven = true
	clear(g.refused)
}

// refusedBy records a host that refused the credentials; it returns a
// finding when this refusal trips the breaker (once per pause).
func (g *credentialGuard) refusedBy(host string, now time.Time, pause time.Duration, errText string) *inventory.Finding {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.proven = false
	g.refused[host] = now
	if len(g.refused) < breakerHosts || now.Before(g.until) {
		return nil
	}
	g.pausedAt, g.until = now, now.Add(pause)
	clear(g.refused)
	f := inventory.Finding{
		ID:   inventory.FindingID(credentialsHost, inventory.KindUnreachable, "credentials", g.pausedAt.UTC().Format(time.RFC3339Nano)),
		Host: inventory.Host{Name: credentialsHost},
		Kind: inventory.KindUnreachable, At: now,
		Detail: fmt.Sprintf("%d hosts refused the WinRM credentials; all polling is paused until %s so the account is not locked out. Fix the password (winrm.password_env / password_file) and reload with SIGHUP. Last error: %s",
			breakerHosts, g.until.UTC().Format(time.RFC3339), errText),
	}
	return &f
}

// credentialsHost names findings about the poller's own credentials.
const credentialsHost = "(winrm credentials)"
