package ntlm

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/rc4"
	"strings"

	"golang.org/x/crypto/md4"
)

// NTOWFv2 is MS-NLMP 3.3.2 NTOWFv2: HMAC_MD5(MD4(UTF-16LE(password)),
// UTF-16LE(Uppercase(user) || domain)). It is ResponseKeyNT and ResponseKeyLM.
func NTOWFv2(password, user, domain string) []byte {
	h := md4.New()
	h.Write(encodeUTF16(password))
	return hmacMD5(h.Sum(nil), encodeUTF16(strings.ToUpper(user)+domain))
}

func hmacMD5(key []byte, data ...[]byte) []byte {
	m := hmac.New(md5.New, key)
	for _, d := range data {
		m.Write(d)
	}
	return m.Sum(nil)
}

// rc4K encrypts data with a fresh RC4 handle keyed by key (MS-NLMP RC4K).
func rc4K(key, data []byte) []byte {
	c, err := rc4.NewCipher(key)
	if err != nil {
		// Keys here are always 5 to 16 bytes; anything else is a programming error.
		panic("ntlm: rc4 key: " + err.Error())
	}
	out := make([]byte, len(data))
	c.XORKeyStream(out, data)
	return out
}

// SessionBaseKey is HMAC_MD5(ResponseKeyNT, NTProofStr) (MS-NLMP 3.3.2); for
// NTLMv2 it is also the KeyExchangeKey.
func SessionBaseKey(responseKeyNT, ntProofStr []byte) []byte {
	return hmacMD5(responseKeyNT, ntProofStr)
}

// ExportedSessionKey recovers the exported session key from the key exchange
// key: with key exchange it is RC4K(KeyExchangeKey, EncryptedRandomSessionKey),
// without it is the key exchange key itself.
func ExportedSessionKey(keyExchangeKey, encryptedRandomSessionKey []byte, flags Flags) []byte {
	if flags.Has(FlagKeyExch) && len(encryptedRandomSessionKey) > 0 {
		return rc4K(keyExchangeKey, encryptedRandomSessionKey)
	}
	return append([]byte(nil), keyExchangeKey...)
}

const (
	clientSignMagic = "session key to client-to-server signing key magic constant\x00"
	serverSignMagic = "session key to server-to-client signing key magic constant\x00"
	clientSealMagic = "session key to client-to-server sealing key magic constant\x00"
	serverSealMagic = "session key to server-to-client sealing key magic constant\x00"
)

// Direction names the sender of a message for key derivation.
type Direction int

// Directions of session security keys.
const (
	ClientToServer Direction = iota
	ServerToClient
)

// SignKey is MS-NLMP 3.4.5.2 SIGNKEY with extended session security.
func SignKey(exportedSessionKey []byte, d Direction) []byte {
	magic := clientSignMagic
	if d == ServerToClient {
		magic = serverSignMagic
	}
	h := md5.Sum(append(append([]byte(nil), exportedSessionKey...), magic...))
	return h[:]
}

// SealKey is MS-NLMP 3.4.5.3 SEALKEY with extended session security: the
// exported key cut to 16, 7 or 5 bytes by 128 / 56 / neither, then hashed
// with the direction's magic constant.
func SealKey(exportedSessionKey []byte, flags Flags, d Direction) []byte {
	k := exportedSessionKey
	switch {
	case flags.Has(Flag128):
	case flags.Has(Flag56):
		k = k[:7]
	default:
		k = k[:5]
	}
	magic := clientSealMagic
	if d == ServerToClient {
		magic = serverSealMagic
	}
	h := md5.Sum(append(append([]byte(nil), k...), magic...))
	return h[:]
}
