package wsauth

// Server-side NTLMv2 arithmetic (MS-NLMP 3.3.2, 3.4.4, 3.4.5). Written
// independently of internal/ntlm so that client and lab cannot share a mistake.

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/rc4"
	"encoding/binary"
	"strings"
	"unicode/utf16"

	"golang.org/x/crypto/md4" //nolint:staticcheck // NTOWF is defined over MD4.
)

// utf16le encodes s as UTF-16 little-endian, the NTLM "Unicode" encoding.
func utf16le(s string) []byte {
	u := utf16.Encode([]rune(s))
	b := make([]byte, 2*len(u))
	for i, c := range u {
		binary.LittleEndian.PutUint16(b[2*i:], c)
	}
	return b
}

// fromUTF16le decodes UTF-16LE; an odd trailing byte is an error for the caller.
func fromUTF16le(b []byte) (string, bool) {
	if len(b)%2 != 0 {
		return "", false
	}
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = binary.LittleEndian.Uint16(b[2*i:])
	}
	return string(utf16.Decode(u)), true
}

func hmacMD5(key []byte, parts ...[]byte) []byte {
	m := hmac.New(md5.New, key)
	for _, p := range parts {
		m.Write(p)
	}
	return m.Sum(nil)
}

// ntowfv1 is MD4(UNICODE(password)).
func ntowfv1(password string) []byte {
	h := md4.New()
	h.Write(utf16le(password))
	return h.Sum(nil)
}

// ntowfv2 is HMAC_MD5(NTOWFv1, UNICODE(Uppercase(user) || domain)); the domain
// keeps its case, as the spec and Windows do.
func ntowfv2(password, user, domain string) []byte {
	return hmacMD5(ntowfv1(password), utf16le(strings.ToUpper(user)+domain))
}

// ntProofStr is HMAC_MD5(ResponseKeyNT, ServerChallenge || temp), where temp
// is the client's NTLMv2_CLIENT_CHALLENGE blob as received.
func ntProofStr(responseKeyNT, serverChallenge, temp []byte) []byte {
	return hmacMD5(responseKeyNT, serverChallenge, temp)
}

// sessionBaseKeyV2 is HMAC_MD5(ResponseKeyNT, NTProofStr); for NTLMv2 it is
// also the KeyExchangeKey.
func sessionBaseKeyV2(responseKeyNT, proof []byte) []byte {
	return hmacMD5(responseKeyNT, proof)
}

// rc4Once encrypts (or decrypts) data with a fresh RC4 state keyed by key.
func rc4Once(key, data []byte) []byte {
	c, err := rc4.NewCipher(key)
	if err != nil {
		// Only reachable with an empty or >256-byte key, which callers never pass.
		panic("wsauth: rc4 key: " + err.Error())
	}
	out := make([]byte, len(data))
	c.XORKeyStream(out, data)
	return out
}

// exportedSessionKey decrypts the client's EncryptedRandomSessionKey when
// KEY_EXCH was negotiated; otherwise the KeyExchangeKey itself is exported.
func exportedSessionKey(flags uint32, keyExchangeKey, encryptedRandomSessionKey []byte) []byte {
	if flags&flagKeyExch != 0 {
		return rc4Once(keyExchangeKey, encryptedRandomSessionKey)
	}
	return append([]byte(nil), keyExchangeKey...)
}

const (
	magicClientSign = "session key to client-to-server signing key magic constant\x00"
	magicServerSign = "session key to server-to-client signing key magic constant\x00"
	magicClientSeal = "session key to client-to-server sealing key magic constant\x00"
	magicServerSeal = "session key to server-to-client sealing key magic constant\x00"
)

// signKey is SIGNKEY (MS-NLMP 3.4.5.2) with extended session security.
func signKey(exported []byte, clientToServer bool) []byte {
	magic := magicServerSign
	if clientToServer {
		magic = magicClientSign
	}
	h := md5.New()
	h.Write(exported)
	h.Write([]byte(magic))
	return h.Sum(nil)
}

// sealKey is SEALKEY (MS-NLMP 3.4.5.3) with extended session security: the
// exported key is cut to 16, 7 or 5 bytes by the negotiated strength.
func sealKey(flags uint32, exported []byte, clientToServer bool) []byte {
	k := exported
	switch {
	case flags&flag128 != 0:
		k = exported[:16]
	case flags&flag56 != 0:
		k = exported[:7]
	default:
		k = exported[:5]
	}
	magic := magicServerSeal
	if clientToServer {
		magic = magicClientSeal
	}
	h := md5.New()
	h.Write(k)
	h.Write([]byte(magic))
	return h.Sum(nil)
}

// computeMIC is HMAC_MD5(ExportedSessionKey, NEGOTIATE || CHALLENGE ||
// AUTHENTICATE), the AUTHENTICATE message having its MIC field zeroed.
func computeMIC(exported, negotiate, challenge, authenticate []byte, micOffset int) []byte {
	zeroed := append([]byte(nil), authenticate...)
	clear(zeroed[micOffset : micOffset+16])
	return hmacMD5(exported, negotiate, challenge, zeroed)
}
