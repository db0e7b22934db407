package wsauth

// NTLMSSP message parsing and building (MS-NLMP 2.2). Input comes from the
// network: every length and offset is checked before it is used.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// Negotiate flags (MS-NLMP 2.2.2.5).
const (
	flagUnicode       uint32 = 0x00000001
	flagOEM           uint32 = 0x00000002
	flagRequestTarget uint32 = 0x00000004
	flagSign          uint32 = 0x00000010
	flagSeal          uint32 = 0x00000020
	flagLMKey         uint32 = 0x00000080
	flagNTLM          uint32 = 0x00000200
	flagAnonymous     uint32 = 0x00000800
	flagAlwaysSign    uint32 = 0x00008000
	flagTargetDomain  uint32 = 0x00010000
	flagESS           uint32 = 0x00080000
	flagIdentify      uint32 = 0x00100000
	flagTargetInfo    uint32 = 0x00800000
	flagVersion       uint32 = 0x02000000
	flag128           uint32 = 0x20000000
	flagKeyExch       uint32 = 0x40000000
	flag56            uint32 = 0x80000000
)

// NTLMSSP message types (MS-NLMP 2.2.1).
const (
	messageNegotiate    uint32 = 1
	messageChallenge    uint32 = 2
	messageAuthenticate uint32 = 3
)

// AV pair IDs (MS-NLMP 2.2.2.1).
const (
	avEOL             uint16 = 0
	avNbComputerName  uint16 = 1
	avNbDomainName    uint16 = 2
	avDNSComputerName uint16 = 3
	avDNSDomainName   uint16 = 4
	avDNSTreeName     uint16 = 5
	avFlags           uint16 = 6
	avTimestamp       uint16 = 7
)

// avFlagMICPresent is MsvAvFlags bit 0x2: the AUTHENTICATE message has a MIC.
const avFlagMICPresent uint32 = 0x00000002

var ntlmSignature = []byte("NTLMSSP\x00")

// maxNTLMMessage bounds a single NTLMSSP token; real ones are well under 4 KiB.
const maxNTLMMessage = 64 << 10

var errMalformed = errors.New("malformed NTLMSSP message")

// messageType returns the NTLMSSP message type of b, or 0 when b is not NTLMSSP.
func messageType(b []byte) uint32 {
	if len(b) < 12 || !bytes.Equal(b[:8], ntlmSignature) {
		return 0
	}
	return binary.LittleEndian.Uint32(b[8:12])
}

// field reads the (Len, MaxLen, Offset) descriptor at off and returns the
// payload it points at, checked against the message bounds.
func field(b []byte, off int) ([]byte, error) {
	if off+8 > len(b) {
		return nil, fmt.Errorf("%w: field header at %d past end", errMalformed, off)
	}
	n := int(binary.LittleEndian.Uint16(b[off:]))
	start := int(binary.LittleEndian.Uint32(b[off+4:]))
	if n == 0 {
		return nil, nil
	}
	if start < 0 || start > len(b) || n > len(b)-start {
		return nil, fmt.Errorf("%w: field at %d points outside the message", errMalformed, off)
	}
	return b[start : start+n], nil
}

type negotiateMessage struct {
	Flags uint32
}

func parseNegotiate(b []byte) (negotiateMessage, error) {
	if len(b) > maxNTLMMessage {
		return negotiateMessage{}, fmt.Errorf("%w: too long", errMalformed)
	}
	if messageType(b) != messageNegotiate || len(b) < 16 {
		return negotiateMessage{}, fmt.Errorf("%w: not a NEGOTIATE_MESSAGE", errMalformed)
	}
	return negotiateMessage{Flags: binary.LittleEndian.Uint32(b[12:16])}, nil
}

// avPair is one AV_PAIR of a target info list.
type avPair struct {
	ID    uint16
	Value []byte
}

// parseAVPairs reads an AV_PAIR list up to MsvAvEOL; the list must end with it.
func parseAVPairs(b []byte) ([]avPair, error) {
	var out []avPair
	for off := 0; ; {
		if off+4 > len(b) {
			return nil, fmt.Errorf("%w: AV pair list without MsvAvEOL", errMalformed)
		}
		id := binary.LittleEndian.Uint16(b[off:])
		n := int(binary.LittleEndian.Uint16(b[off+2:]))
		off += 4
		if n > len(b)-off {
			return nil, fmt.Errorf("%w: AV pair %d runs past the list", errMalformed, id)
		}
		if id == avEOL {
			return out, nil
		}
		if len(out) >= 64 {
			return nil, fmt.Errorf("%w: too many AV pairs", errMalformed)
		}
		out = append(out, avPair{ID: id, Value: b[off : off+n]})
		off += n
	}
}

func appendAVPair(b []byte, id uint16, value []byte) []byte {
	b = binary.LittleEndian.AppendUint16(b, id)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(value)))
	return append(b, value...)
}

// fileTime converts t to a Windows FILETIME (100 ns since 1601-01-01 UTC).
func fileTime(t time.Time) uint64 {
	const epochDelta = 116444736000000000
	return uint64(t.UnixNano()/100) + epochDelta
}

func fromFileTime(ft uint64) time.Time {
	const epochDelta = 116444736000000000
	return time.Unix(0, int64(ft-epochDelta)*100).UTC()
}

// challengeParams is what the server puts in its CHALLENGE_MESSAGE.
type challengeParams struct {
	Flags           uint32
	ServerChallenge [8]byte
	TargetName      string // NetBIOS domain
	TargetInfo      []byte
	Version         []byte // 8 bytes; nil means windowsVersion
}

// windowsVersion is the VERSION structure we claim: Windows Server 2019
// (10.0 build 17763), NTLMSSP revision 15, like a real DC.
var windowsVersion = []byte{10, 0, 0x03, 0x45, 0, 0, 0, 0x0f}

// buildTargetInfo renders the AV pairs a Windows server sends, in its order.
func buildTargetInfo(nbDomain, nbComputer, dnsDomain, dnsComputer string, now time.Time) []byte {
	var b []byte
	b = appendAVPair(b, avNbDomainName, utf16le(nbDomain))
	b = appendAVPair(b, avNbComputerName, utf16le(nbComputer))
	if dnsDomain != "" {
		b = appendAVPair(b, avDNSDomainName, utf16le(dnsDomain))
	}
	if dnsComputer != "" {
		b = appendAVPair(b, avDNSComputerName, utf16le(dnsComputer))
	}
	if dnsDomain != "" {
		b = appendAVPair(b, avDNSTreeName, utf16le(dnsDomain))
	}
	ts := binary.LittleEndian.AppendUint64(nil, fileTime(now))
	b = appendAVPair(b, avTimestamp, ts)
	return appendAVPair(b, avEOL, nil)
}

// buildChallenge renders a CHALLENGE_MESSAGE (MS-NLMP 2.2.1.2).
func buildChallenge(p challengeParams) []byte {
	const headerLen = 56
	name := utf16le(p.TargetName)
	b := make([]byte, headerLen, headerLen+len(name)+len(p.TargetInfo))
	copy(b, ntlmSignature)
	binary.LittleEndian.PutUint32(b[8:], messageChallenge)
	putField(b[12:], len(name), headerLen)
	binary.LittleEndian.PutUint32(b[20:], p.Flags)
	copy(b[24:32], p.ServerChallenge[:])
	putField(b[40:], len(p.TargetInfo), headerLen+len(name))
	version := p.Version
	if version == nil {
		version = windowsVersion
	}
	copy(b[48:56], version)
	b = append(b, name...)
	return append(b, p.TargetInfo...)
}

func putField(b []byte, n, offset int) {
	binary.LittleEndian.PutUint16(b[0:], uint16(n))
	binary.LittleEndian.PutUint16(b[2:], uint16(n))
	binary.LittleEndian.PutUint32(b[4:], uint32(offset))
}

// challengeFlags answers the client's NEGOTIATE flags the way Windows does:
// echo what both sides support, always NTLMv2-style (ESS, target info).
func challengeFlags(client uint32) uint32 {
	f := flagUnicode | flagNTLM | flagTargetInfo | flagTargetDomain | flagESS | flagVersion
	f |= client & (flagRequestTarget | flagSign | flagSeal | flagAlwaysSign | flagKeyExch | flag128 | flag56 | flagIdentify)
	return f
}

type authenticateMessage struct {
	Flags                     uint32
	LMResponse                []byte
	NTResponse                []byte
	Domain                    string
	User                      string
	Workstation               string
	EncryptedRandomSessionKey []byte
	// MICOffset is where a MIC would sit (after VERSION), or 0 when the
	// payload starts too early for one.
	MICOffset int
	Raw       []byte
}

// parseAuthenticate reads an AUTHENTICATE_MESSAGE (MS-NLMP 2.2.1.3).
func parseAuthenticate(b []byte) (authenticateMessage, error) {
	var m authenticateMessage
	if len(b) > maxNTLMMessage {
		return m, fmt.Errorf("%w: too long", errMalformed)
	}
	if messageType(b) != messageAuthenticate || len(b) < 64 {
		return m, fmt.Errorf("%w: not an AUTHENTICATE_MESSAGE", errMalformed)
	}
	m.Raw = b
	m.Flags = binary.LittleEndian.Uint32(b[60:64])
	var err error
	var dom, usr, ws []byte
	for _, f := range []struct {
		off int
		dst *[]byte
	}{{12, &m.LMResponse}, {20, &m.NTResponse}, {28, &dom}, {36, &usr}, {44, &ws}, {52, &m.EncryptedRandomSessionKey}} {
		if *f.dst, err = field(b, f.off); err != nil {
			return m, err
		}
	}
	if m.Flags&flagUnicode == 0 {
		return m, fmt.Errorf("%w: OEM strings are not supported, only Unicode", errMalformed)
	}
	var ok [3]bool
	m.Domain, ok[0] = fromUTF16le(dom)
	m.User, ok[1] = fromUTF16le(usr)
	m.Workstation, ok[2] = fromUTF16le(ws)
	if !ok[0] || !ok[1] || !ok[2] {
		return m, fmt.Errorf("%w: odd-length Unicode string", errMalformed)
	}
	// The MIC sits at offset 72 when the fixed part extends past it.
	if minPayloadOffset(b) >= 88 {
		m.MICOffset = 72
	}
	return m, nil
}

// minPayloadOffset is the smallest non-empty payload offset, i.e. the end of
// the fixed part of an AUTHENTICATE_MESSAGE.
func minPayloadOffset(b []byte) int {
	lowest := len(b)
	for off := 12; off <= 52; off += 8 {
		n := binary.LittleEndian.Uint16(b[off:])
		start := int(binary.LittleEndian.Uint32(b[off+4:]))
		if n > 0 && start < lowest {
			lowest = start
		}
	}
	return lowest
}

// ntlmv2Blob is the parsed NTLMv2_CLIENT_CHALLENGE (MS-NLMP 2.2.2.7).
type ntlmv2Blob struct {
	Timestamp       uint64
	ClientChallenge []byte
	Pairs           []avPair
}

func parseNTLMv2Blob(temp []byte) (ntlmv2Blob, error) {
	var bl ntlmv2Blob
	if len(temp) < 28 {
		return bl, fmt.Errorf("%w: NTLMv2 client challenge too short", errMalformed)
	}
	if temp[0] != 1 || temp[1] != 1 {
		return bl, fmt.Errorf("%w: NTLMv2 client challenge version %d.%d", errMalformed, temp[0], temp[1])
	}
	bl.Timestamp = binary.LittleEndian.Uint64(temp[8:16])
	bl.ClientChallenge = temp[16:24]
	pairs, err := parseAVPairs(temp[28:])
	if err != nil {
		return bl, err
	}
	bl.Pairs = pairs
	return bl, nil
}

func (bl ntlmv2Blob) pair(id uint16) ([]byte, bool) {
	for _, p := range bl.Pairs {
		if p.ID == id {
			return p.Value, true
		}
	}
	return nil, false
}
