package ntlm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf16"
)

var signature = []byte("NTLMSSP\x00")

// Message types (MS-NLMP 2.2.1).
const (
	typeNegotiate    = 1
	typeChallenge    = 2
	typeAuthenticate = 3
)

const (
	negotiateLen       = 40 // NEGOTIATE_MESSAGE with Version
	challengeHeaderLen = 48 // CHALLENGE_MESSAGE without Version
	authHeaderLen      = 64 // AUTHENTICATE_MESSAGE up to NegotiateFlags
	versionLen         = 8
	micLen             = 16

	// maxMessageLen bounds what we accept from the server: a CHALLENGE is a few
	// hundred bytes; 64 KiB is far above any real one.
	maxMessageLen = 64 << 10
)

// Errors returned by this package; they are wrapped with detail.
var (
	// ErrInvalidMessage means an NTLM message from the server is malformed.
	ErrInvalidMessage = errors.New("ntlm: invalid message")
	// ErrUnsupported means the server asked for something this client refuses
	// (NTLMv1, no extended session security, no target information).
	ErrUnsupported = errors.New("ntlm: unsupported negotiation")
	// ErrSignature means a sealed or signed message failed verification.
	ErrSignature = errors.New("ntlm: message signature mismatch")
)

// AV pair identifiers (MS-NLMP 2.2.2.1).
const (
	AvEOL             uint16 = 0
	AvNbComputerName  uint16 = 1
	AvNbDomainName    uint16 = 2
	AvDNSComputerName uint16 = 3
	AvDNSDomainName   uint16 = 4
	AvDNSTreeName     uint16 = 5
	AvFlags           uint16 = 6
	AvTimestamp       uint16 = 7
	AvSingleHost      uint16 = 8
	AvTargetName      uint16 = 9
	AvChannelBindings uint16 = 10
)

// avFlagMIC is the MsvAvFlags bit saying the AUTHENTICATE message carries a MIC.
const avFlagMIC = 0x00000002

// AVPair is one attribute-value pair of the target information.
type AVPair struct {
	ID    uint16
	Value []byte
}

// Challenge is a parsed CHALLENGE_MESSAGE.
type Challenge struct {
	Flags           Flags
	ServerChallenge [8]byte
	TargetName      string
	// TargetInfo is the raw target information, MsvAvEOL included.
	TargetInfo []byte
	// AVPairs is TargetInfo parsed, without the terminating MsvAvEOL.
	AVPairs []AVPair
	// Version is the server's version field, zero when absent.
	Version [8]byte
}

// Timestamp returns the MsvAvTimestamp value as a FILETIME, if present.
func (c *Challenge) Timestamp() (uint64, bool) {
	for _, p := range c.AVPairs {
		if p.ID == AvTimestamp {
			return binary.LittleEndian.Uint64(p.Value), true
		}
	}
	return 0, false
}

// AV returns the value of the first pair with the given id.
func (c *Challenge) AV(id uint16) ([]byte, bool) {
	for _, p := range c.AVPairs {
		if p.ID == id {
			return p.Value, true
		}
	}
	return nil, false
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidMessage, fmt.Sprintf(format, args...))
}

// field reads a (Len, MaxLen, Offset) descriptor at off and returns the bytes
// it points to, checking every bound against msg. Payload may not overlap the
// fixed header (which ends at minOffset).
func field(msg []byte, off, minOffset int, name string) ([]byte, error) {
	if off+8 > len(msg) {
		return nil, invalid("%s field descriptor beyond the message", name)
	}
	n := int(binary.LittleEndian.Uint16(msg[off:]))
	start := int64(binary.LittleEndian.Uint32(msg[off+4:]))
	if n == 0 {
		return nil, nil
	}
	if start < int64(minOffset) {
		return nil, invalid("%s offset %d overlaps the header", name, start)
	}
	end := start + int64(n)
	if end > int64(len(msg)) {
		return nil, invalid("%s (offset %d, length %d) beyond the %d-byte message", name, start, n, len(msg))
	}
	return msg[start:end], nil
}

// payloadStart is the offset of a non-empty payload field, or the maximum
// for an empty one. The descriptor was checked by field.
func payloadStart(msg []byte, off int) int64 {
	if binary.LittleEndian.Uint16(msg[off:]) == 0 {
		return 1 << 32
	}
	return int64(binary.LittleEndian.Uint32(msg[off+4:]))
}

// ParseChallenge parses a CHALLENGE_MESSAGE. Every length and offset is
// checked against the buffer; it never panics on malformed input.
func ParseChallenge(msg []byte) (*Challenge, error) {
	if len(msg) > maxMessageLen {
		return nil, invalid("challenge of %d bytes is larger than %d", len(msg), maxMessageLen)
	}
	if len(msg) < challengeHeaderLen {
		return nil, invalid("challenge of %d bytes is shorter than the %d-byte header", len(msg), challengeHeaderLen)
	}
	if !bytes.Equal(msg[:8], signature) {
		return nil, invalid("no NTLMSSP signature")
	}
	if t := binary.LittleEndian.Uint32(msg[8:]); t != typeChallenge {
		return nil, invalid("message type %d, want %d (CHALLENGE)", t, typeChallenge)
	}
	c := &Challenge{Flags: Flags(binary.LittleEndian.Uint32(msg[20:]))}
	copy(c.ServerChallenge[:], msg[24:32])

	// The payload may not overlap the 48-byte header. The Version field that
	// follows it is read only when no payload claims those bytes.
	minOffset := challengeHeaderLen
	name, err := field(msg, 12, minOffset, "TargetName")
	if err != nil {
		return nil, err
	}
	if c.Flags.Has(FlagUnicode) {
		s, err := decodeUTF16(name)
		if err != nil {
			return nil, invalid("TargetName: %v", err)
		}
		c.TargetName = s
	} else {
		c.TargetName = string(name)
	}
	info, err := field(msg, 40, minOffset, "TargetInfo")
	if err != nil {
		return nil, err
	}
	if c.Flags.Has(FlagVersion) && len(msg) >= challengeHeaderLen+versionLen &&
		payloadStart(msg, 12) >= challengeHeaderLen+versionLen && payloadStart(msg, 40) >= challengeHeaderLen+versionLen {
		copy(c.Version[:], msg[48:56])
	}
	if len(info) > 0 {
		pairs, used, err := parseAVPairs(info)
		if err != nil {
			return nil, err
		}
		c.AVPairs = pairs
		c.TargetInfo = append([]byte(nil), info[:used]...)
	}
	return c, nil
}

// parseAVPairs parses target information up to and including MsvAvEOL and
// returns the pairs (without EOL) and the number of bytes consumed.
func parseAVPairs(b []byte) ([]AVPair, int, error) {
	var pairs []AVPair
	off := 0
	for {
		if off+4 > len(b) {
			return nil, 0, invalid("TargetInfo ends without MsvAvEOL")
		}
		id := binary.LittleEndian.Uint16(b[off:])
		n := int(binary.LittleEndian.Uint16(b[off+2:]))
		off += 4
		if off+n > len(b) {
			return nil, 0, invalid("AV pair %d of length %d beyond TargetInfo", id, n)
		}
		v := b[off : off+n]
		off += n
		if id == AvEOL {
			if n != 0 {
				return nil, 0, invalid("MsvAvEOL with length %d", n)
			}
			return pairs, off, nil
		}
		want := map[uint16]int{AvFlags: 4, AvTimestamp: 8, AvChannelBindings: 16}[id]
		if want != 0 && n != want {
			return nil, 0, invalid("AV pair %d has length %d, want %d", id, n, want)
		}
		pairs = append(pairs, AVPair{ID: id, Value: append([]byte(nil), v...)})
	}
}

func encodeAVPairs(pairs []AVPair) []byte {
	var b []byte
	for _, p := range pairs {
		b = binary.LittleEndian.AppendUint16(b, p.ID)
		b = binary.LittleEndian.AppendUint16(b, uint16(len(p.Value)))
		b = append(b, p.Value...)
	}
	return append(b, 0, 0, 0, 0) // MsvAvEOL
}

func encodeUTF16(s string) []byte {
	u := utf16.Encode([]rune(s))
	b := make([]byte, 2*len(u))
	for i, r := range u {
		binary.LittleEndian.PutUint16(b[2*i:], r)
	}
	return b
}

func decodeUTF16(b []byte) (string, error) {
	if len(b)%2 != 0 {
		return "", errors.New("odd length for UTF-16")
	}
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = binary.LittleEndian.Uint16(b[2*i:])
	}
	return string(utf16.Decode(u)), nil
}

// buildNegotiate returns a NEGOTIATE_MESSAGE with no domain or workstation.
func buildNegotiate(flags Flags, version [8]byte) []byte {
	m := make([]byte, negotiateLen)
	copy(m, signature)
	binary.LittleEndian.PutUint32(m[8:], typeNegotiate)
	binary.LittleEndian.PutUint32(m[12:], uint32(flags))
	// DomainNameFields and WorkstationFields: empty, pointing at the end.
	binary.LittleEndian.PutUint32(m[20:], negotiateLen)
	binary.LittleEndian.PutUint32(m[28:], negotiateLen)
	copy(m[32:], version[:])
	return m
}

// authenticateFields are the variable parts of an AUTHENTICATE_MESSAGE.
type authenticateFields struct {
	flags                     Flags
	version                   [8]byte
	withMIC                   bool
	domain, user, workstation string
	lmResponse, ntResponse    []byte
	encryptedRandomSessionKey []byte
}

// buildAuthenticate lays the message out as Windows does: header, Version,
// optional MIC (zero, filled in later), then Domain, User, Workstation, LM, NT
// and the encrypted session key. It returns the message and the MIC offset.
func buildAuthenticate(a authenticateFields) ([]byte, int) {
	head := authHeaderLen + versionLen
	micOff := -1
	if a.withMIC {
		micOff = head
		head += micLen
	}
	payloads := [][]byte{
		encodeUTF16(a.domain), encodeUTF16(a.user), encodeUTF16(a.workstation),
		a.lmResponse, a.ntResponse, a.encryptedRandomSessionKey,
	}
	descOffsets := []int{28, 36, 44, 12, 20, 52}
	m := make([]byte, head)
	copy(m, signature)
	binary.LittleEndian.PutUint32(m[8:], typeAuthenticate)
	for i, p := range payloads {
		d := descOffsets[i]
		binary.LittleEndian.PutUint16(m[d:], uint16(len(p)))
		binary.LittleEndian.PutUint16(m[d+2:], uint16(len(p)))
		binary.LittleEndian.PutUint32(m[d+4:], uint32(len(m)))
		m = append(m, p...)
	}
	binary.LittleEndian.PutUint32(m[60:], uint32(a.flags))
	copy(m[64:], a.version[:])
	return m, micOff
}

// fileTime converts t to a Windows FILETIME (100 ns since 1601-01-01 UTC)
// without going through UnixNano, which cannot represent dates before 1678.
func fileTime(t time.Time) uint64 {
	const epochDelta = 11644473600 // seconds from 1601 to 1970
	secs := t.Unix() + epochDelta
	if secs < 0 {
		return 0
	}
	return uint64(secs)*10_000_000 + uint64(t.Nanosecond()/100)
}

// SplitAccount splits an account name given as "DOMAIN\user" or "user@domain":
// the down-level form is split; a UPN is kept whole with an empty domain,
// which Windows accepts (MS-NLMP 3.1.5.1.2).
func SplitAccount(account string) (domain, user string) {
	if i := strings.IndexByte(account, '\\'); i >= 0 {
		return account[:i], account[i+1:]
	}
	return "", account
}
