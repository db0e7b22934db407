package ntlm

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"
)

// DefaultVersion is the VERSION field a Client sends: Windows 10.0 build 20348,
// NTLMSSP revision 15. Servers use it only for diagnostics.
var DefaultVersion = [8]byte{10, 0, 0x7c, 0x4f, 0, 0, 0, 15}

// Options tune a Client. The zero value is ready to use.
type Options struct {
	// Workstation is sent in the AUTHENTICATE message; empty by default.
	Workstation string
	// Flags offered in NEGOTIATE; DefaultFlags when zero.
	Flags Flags
	// Version is the VERSION field; DefaultVersion when zero.
	Version [8]byte
	// TargetSPN, when set, is added as MsvAvTargetName (e.g. "HTTP/dc01.corp.example").
	TargetSPN string
	// ChannelBindings, when set, is the 16-byte MD5 of the gss_channel_bindings
	// structure, added as MsvAvChannelBindings (extended protection over TLS).
	ChannelBindings []byte
	// Rand supplies the client challenge and the random session key; crypto/rand when nil.
	Rand io.Reader
	// Now supplies the time for the NTLMv2 response when the server sends no
	// MsvAvTimestamp; time.Now when nil.
	Now func() time.Time
}

// Client is one NTLMv2 client security context: Negotiate, then Authenticate
// with the server's challenge, then Session for sealing. It holds the NT hash
// derived key, never the password.
type Client struct {
	user, domain  string
	responseKeyNT []byte
	opts          Options

	negotiate []byte
	session   *Session
	// kept for tests of the key schedule
	sessionBaseKey, exportedSessionKey []byte
}

// NewClient returns a security context for domain\user. A user given in UPN
// form (user@corp.example) goes in user with an empty domain.
func NewClient(domain, user, password string, opts Options) *Client {
	if opts.Flags == 0 {
		opts.Flags = DefaultFlags
	}
	if opts.Version == ([8]byte{}) {
		opts.Version = DefaultVersion
	}
	if opts.Rand == nil {
		opts.Rand = rand.Reader
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Client{
		user:          user,
		domain:        domain,
		responseKeyNT: NTOWFv2(password, user, domain),
		opts:          opts,
	}
}

// Negotiate returns the NEGOTIATE_MESSAGE. It is the same bytes on every call.
func (c *Client) Negotiate() []byte {
	if c.negotiate == nil {
		c.negotiate = buildNegotiate(c.opts.Flags, c.opts.Version)
	}
	return append([]byte(nil), c.negotiate...)
}

// Session returns the session security established by Authenticate, or nil.
func (c *Client) Session() *Session { return c.session }

// negotiatedFlags intersects the server's flags with ours and checks that what
// NTLMv2 with session security needs is there.
func (c *Client) negotiatedFlags(ch *Challenge) (Flags, error) {
	f := ch.Flags & c.opts.Flags
	f |= c.opts.Flags & FlagRequestTarget // a request, the server does not echo it
	for _, need := range []struct {
		f    Flags
		what string
	}{
		{FlagUnicode, "Unicode"},
		{FlagExtendedSessionSecurity, "extended session security (NTLMv2)"},
		{FlagTargetInfo, "target information (NTLMv2)"},
	} {
		if !f.Has(need.f) {
			return 0, fmt.Errorf("%w: the server did not agree to %s (offered %v, server %v)", ErrUnsupported, need.what, c.opts.Flags, ch.Flags)
		}
	}
	// Without 128 the seal key is cut to 56 or 40 bits (SEALKEY), which a
	// passive observer can brute-force; a server (or anyone on the path of a
	// challenge without a MIC) that drops it gets no session from us.
	if c.opts.Flags.Has(Flag128|FlagSeal) && !f.Has(Flag128) {
		return 0, fmt.Errorf("%w: the server did not agree to 128-bit session keys (offered %v, server %v)", ErrUnsupported, c.opts.Flags, ch.Flags)
	}
	if len(ch.TargetInfo) == 0 {
		return 0, fmt.Errorf("%w: the challenge has no target information, NTLMv2 is impossible", ErrUnsupported)
	}
	return f, nil
}

// clientAVPairs is the server's target information with what the client adds
// (MS-NLMP 3.1.5.1.2): the MIC flag when there is a timestamp, the SPN and the
// channel bindings when configured.
func (c *Client) clientAVPairs(ch *Challenge, withMIC bool) []byte {
	if !withMIC && c.opts.TargetSPN == "" && c.opts.ChannelBindings == nil {
		return ch.TargetInfo // unchanged, byte for byte
	}
	pairs := make([]AVPair, 0, len(ch.AVPairs)+3)
	haveFlags := false
	for _, p := range ch.AVPairs {
		switch p.ID {
		case AvFlags:
			v := binary.LittleEndian.Uint32(p.Value)
			if withMIC {
				v |= avFlagMIC
			}
			p = AVPair{ID: AvFlags, Value: binary.LittleEndian.AppendUint32(nil, v)}
			haveFlags = true
		case AvTargetName, AvChannelBindings:
			continue // ours replace the server's, if any
		}
		pairs = append(pairs, p)
	}
	if withMIC && !haveFlags {
		pairs = append(pairs, AVPair{ID: AvFlags, Value: binary.LittleEndian.AppendUint32(nil, avFlagMIC)})
	}
	if c.opts.TargetSPN != "" {
		pairs = append(pairs, AVPair{ID: AvTargetName, Value: encodeUTF16(c.opts.TargetSPN)})
	}
	if c.opts.ChannelBindings != nil {
		pairs = append(pairs, AVPair{ID: AvChannelBindings, Value: c.opts.ChannelBindings})
	}
	return encodeAVPairs(pairs)
}

// Authenticate parses the server's CHALLENGE_MESSAGE and returns the
// AUTHENTICATE_MESSAGE. On success Session is ready.
func (c *Client) Authenticate(challenge []byte) ([]byte, error) {
	if c.session != nil {
		return nil, errors.New("ntlm: this security context is already authenticated; start a new Client")
	}
	if c.opts.ChannelBindings != nil && len(c.opts.ChannelBindings) != 16 {
		return nil, fmt.Errorf("ntlm: channel bindings of %d bytes, want 16", len(c.opts.ChannelBindings))
	}
	negotiate := c.Negotiate()
	ch, err := ParseChallenge(challenge)
	if err != nil {
		return nil, err
	}
	flags, err := c.negotiatedFlags(ch)
	if err != nil {
		return nil, err
	}

	var clientChallenge [8]byte
	if _, err := io.ReadFull(c.opts.Rand, clientChallenge[:]); err != nil {
		return nil, fmt.Errorf("ntlm: client challenge: %w", err)
	}
	ts, withMIC := ch.Timestamp()
	if !withMIC {
		ts = fileTime(c.opts.Now())
	}

	// NTLMv2_CLIENT_CHALLENGE ("temp", MS-NLMP 3.3.2).
	temp := []byte{1, 1, 0, 0, 0, 0, 0, 0}
	temp = binary.LittleEndian.AppendUint64(temp, ts)
	temp = append(temp, clientChallenge[:]...)
	temp = append(temp, 0, 0, 0, 0)
	temp = append(temp, c.clientAVPairs(ch, withMIC)...)
	temp = append(temp, 0, 0, 0, 0)

	ntProofStr := hmacMD5(c.responseKeyNT, ch.ServerChallenge[:], temp)
	ntResponse := append(append([]byte(nil), ntProofStr...), temp...)
	lmResponse := make([]byte, 24) // Z(24) when the MIC protects the exchange
	if !withMIC {
		lmResponse = append(hmacMD5(c.responseKeyNT, ch.ServerChallenge[:], clientChallenge[:]), clientChallenge[:]...)
	}

	keyExchangeKey := SessionBaseKey(c.responseKeyNT, ntProofStr)
	exported := keyExchangeKey
	var encryptedKey []byte
	if flags.Has(FlagKeyExch) {
		exported = make([]byte, 16)
		if _, err := io.ReadFull(c.opts.Rand, exported); err != nil {
			return nil, fmt.Errorf("ntlm: random session key: %w", err)
		}
		encryptedKey = rc4K(keyExchangeKey, exported)
	}

	version := c.opts.Version
	if !flags.Has(FlagVersion) {
		version = [8]byte{}
	}
	msg, micOff := buildAuthenticate(authenticateFields{
		flags:                     flags,
		version:                   version,
		withMIC:                   withMIC,
		domain:                    c.domain,
		user:                      c.user,
		workstation:               c.opts.Workstation,
		lmResponse:                lmResponse,
		ntResponse:                ntResponse,
		encryptedRandomSessionKey: encryptedKey,
	})
	if withMIC {
		copy(msg[micOff:], hmacMD5(exported, negotiate, challenge, msg))
	}
	sess, err := NewSession(exported, flags, RoleClient)
	if err != nil {
		return nil, err
	}
	c.session = sess
	c.sessionBaseKey = keyExchangeKey
	c.exportedSessionKey = exported
	return msg, nil
}
