package winrm

import (
	"cmp"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/jcmturner/gokrb5/v8/client"
	krbconfig "github.com/jcmturner/gokrb5/v8/config"
	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/spnego"
	"github.com/jcmturner/gokrb5/v8/types"
	"github.com/svcwatch/svcwatch/internal/config"
)

// ticketSource hands out service tickets. *client.Client implements it and
// keeps each SPN's ticket in its cache until the ticket expires, so one
// ticket per host is reused across polls (unlike masterzen's transport,
// which logs in to the KDC for every SOAP message).
type ticketSource interface {
	GetServiceTicket(spn string) (messages.Ticket, types.EncryptionKey, error)
}

// ticketReuse is how long one service ticket is used before asking the
// client again (which answers from its cache until the ticket expires).
const ticketReuse = 10 * time.Minute

// loginHoldOff is how long a refused Kerberos login is not retried. Every
// poll of every host asks for a login while there is none: without a pause,
// a wrong password would send one failed pre-authentication per host and
// lock the account within the first cycle.
const loginHoldOff = 5 * time.Minute

// kerberosAuth sets a SPNEGO (Negotiate) header with an AP-REQ for
// HTTP/<host> on each request. One login (TGT) per Collector, one service
// ticket per host, each AP-REQ with a fresh authenticator.
type kerberosAuth struct {
	mu       sync.Mutex
	cl       *client.Client
	tickets  ticketSource
	loggedIn bool
	login    func() error
	now      func() time.Time
	cache    map[string]cachedTicket // by SPN

	loginErr    error     // the last refused login, returned until loginHoldOff passes
	loginFailed time.Time // when it was refused
}

type cachedTicket struct {
	tkt     messages.Ticket
	key     types.EncryptionKey
	fetched time.Time
}

func newKerberosAuth(cfg config.WinRM, password string) (*kerberosAuth, error) {
	if cfg.KRB5Conf == "" {
		return nil, fmt.Errorf("winrm.auth kerberos needs winrm.krb5_conf (a krb5.conf naming the realm's KDCs)")
	}
	kc, err := krbconfig.Load(cfg.KRB5Conf)
	if err != nil {
		return nil, fmt.Errorf("winrm.krb5_conf %s: %w", cfg.KRB5Conf, err)
	}
	user, realm := cfg.Username, cfg.Realm
	if i := strings.IndexByte(user, '\\'); i >= 0 {
		user = user[i+1:] // DOMAIN\user: the NetBIOS domain is not the realm
	}
	if i := strings.LastIndexByte(user, '@'); i >= 0 {
		user, realm = user[:i], cmp.Or(realm, user[i+1:])
	}
	if realm == "" {
		realm = kc.LibDefaults.DefaultRealm
	}
	if user == "" || realm == "" {
		return nil, fmt.Errorf("winrm.auth kerberos needs winrm.username (user or user@REALM) and winrm.realm or a default_realm in krb5_conf")
	}
	realm = strings.ToUpper(realm)
	var cl *client.Client
	switch {
	case cfg.KeytabFile != "":
		kt, err := keytab.Load(cfg.KeytabFile)
		if err != nil {
			return nil, fmt.Errorf("winrm.keytab_file %s: %w", cfg.KeytabFile, err)
		}
		cl = client.NewWithKeytab(user, realm, kt, kc, client.DisablePAFXFAST(true))
	case password != "":
		cl = client.NewWithPassword(user, realm, password, kc, client.DisablePAFXFAST(true))
	default:
		return nil, fmt.Errorf("winrm.auth kerberos needs a password (winrm.password_env / password_file) or winrm.keytab_file")
	}
	return &kerberosAuth{cl: cl, tickets: cl, login: cl.Login, now: time.Now, cache: map[string]cachedTicket{}}, nil
}

func (k *kerberosAuth) authorize(req *http.Request, host string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if !k.loggedIn {
		if k.loginErr != nil && k.now().Sub(k.loginFailed) < loginHoldOff {
			return fmt.Errorf("%w (not retried before %s, so that the account is not locked out)", k.loginErr, k.loginFailed.Add(loginHoldOff).UTC().Format(time.RFC3339))
		}
		if err := k.login(); err != nil {
			k.loginErr = fmt.Errorf("%w: Kerberos login (AS exchange) for %s: %v; check the password or keytab, the realm, and that the KDCs in krb5_conf are reachable", ErrAuth, k.cl.Credentials.UserName(), err)
			k.loginFailed = k.now()
			return k.loginErr
		}
		k.loggedIn, k.loginErr = true, nil
	}
	spn := "HTTP/" + strings.ToLower(host)
	ct, ok := k.cache[spn]
	if !ok || k.now().Sub(ct.fetched) > ticketReuse {
		tkt, key, err := k.tickets.GetServiceTicket(spn)
		if err != nil {
			return fmt.Errorf("%w: Kerberos service ticket for %s: %v; check that the SPN exists (setspn -Q %s)", ErrAuth, spn, err, spn)
		}
		ct = cachedTicket{tkt: tkt, key: key, fetched: k.now()}
		k.cache[spn] = ct
	}
	init, err := spnego.NewNegTokenInitKRB5(k.cl, ct.tkt, ct.key)
	if err != nil {
		return fmt.Errorf("%w: SPNEGO token for %s: %v", ErrAuth, spn, err)
	}
	// The GSS-API framing (application tag 0, SPNEGO OID) around NegTokenInit.
	tok := spnego.SPNEGOToken{Init: true, NegTokenInit: init}
	raw, err := tok.Marshal()
	if err != nil {
		return fmt.Errorf("%w: SPNEGO token for %s: %v", ErrAuth, spn, err)
	}
	req.Header.Set("Authorization", "Negotiate "+base64.StdEncoding.EncodeToString(raw))
	return nil
}

// close ends the client's TGT renewal.
func (k *kerberosAuth) close() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.loggedIn {
		k.cl.Destroy()
		k.loggedIn = false
	}
	k.loginErr = nil
	clear(k.cache)
}

// invalidate drops host's cached ticket after the host refused it.
func (k *kerberosAuth) invalidate(host string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.cache, "HTTP/"+strings.ToLower(host))
}
