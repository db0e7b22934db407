package wsauth

// NTLM session security (MS-NLMP 3.4.3, 3.4.4.2) for the accepting side:
// client-to-server keys unseal requests, server-to-client keys seal answers.
// RC4 handles run across messages for the life of the connection
// (connection-oriented NTLM), and each direction keeps its own sequence number.

import (
	"crypto/hmac"
	"crypto/rc4"
	"encoding/binary"
	"errors"
	"fmt"
)

// signatureLen is the size of an NTLMSSP_MESSAGE_SIGNATURE.
const signatureLen = 16

var errBadSignature = errors.New("NTLM message signature does not verify")

// sealSession is the server's half of an established NTLM security context.
type sealSession struct {
	flags uint32

	recvSign []byte // client-to-server signing key
	recvSeal *rc4.Cipher
	recvSeq  uint32

	sendSign []byte // server-to-client signing key
	sendSeal *rc4.Cipher
	sendSeq  uint32
}

// sessionKeys holds the derived keys; kept apart so tests can compare them.
type sessionKeys struct {
	ClientSign, ClientSeal, ServerSign, ServerSeal []byte
}

func deriveKeys(flags uint32, exported []byte) sessionKeys {
	return sessionKeys{
		ClientSign: signKey(exported, true),
		ClientSeal: sealKey(flags, exported, true),
		ServerSign: signKey(exported, false),
		ServerSeal: sealKey(flags, exported, false),
	}
}

func newSealSession(flags uint32, exported []byte) *sealSession {
	k := deriveKeys(flags, exported)
	recv, err := rc4.NewCipher(k.ClientSeal)
	if err != nil {
		panic("wsauth: rc4 seal key: " + err.Error()) // 16-byte key: unreachable
	}
	send, err := rc4.NewCipher(k.ServerSeal)
	if err != nil {
		panic("wsauth: rc4 seal key: " + err.Error())
	}
	return &sealSession{flags: flags, recvSign: k.ClientSign, recvSeal: recv, sendSign: k.ServerSign, sendSeal: send}
}

// checksum is HMAC_MD5(SigningKey, SeqNum || Message)[0:8].
func checksum(signKey []byte, seq uint32, msg []byte) []byte {
	return hmacMD5(signKey, binary.LittleEndian.AppendUint32(nil, seq), msg)[:8]
}

// unseal decrypts a client message and verifies its signature at the
// expected sequence number. The RC4 state advances even on failure; the
// caller must drop the context then, as Windows does.
func (s *sealSession) unseal(sealed, signature []byte) ([]byte, error) {
	if len(signature) != signatureLen {
		return nil, fmt.Errorf("%w: signature is %d bytes, want %d", errBadSignature, len(signature), signatureLen)
	}
	if binary.LittleEndian.Uint32(signature[0:4]) != 1 {
		return nil, fmt.Errorf("%w: signature version is not 1", errBadSignature)
	}
	plain := make([]byte, len(sealed))
	s.recvSeal.XORKeyStream(plain, sealed)
	if err := s.verify(plain, signature); err != nil {
		return nil, err
	}
	return plain, nil
}

// seal encrypts a server message and returns it with its signature.
func (s *sealSession) seal(plain []byte) (sealed, signature []byte) {
	sealed = make([]byte, len(plain))
	s.sendSeal.XORKeyStream(sealed, plain)
	return sealed, s.sign(plain)
}

// sign is GSS_GetMIC for the sending direction: a signature over msg
// without encrypting it (used for the SPNEGO mechListMIC).
func (s *sealSession) sign(msg []byte) []byte {
	sum := checksum(s.sendSign, s.sendSeq, msg)
	if s.flags&flagKeyExch != 0 {
		s.sendSeal.XORKeyStream(sum, sum)
	}
	sig := binary.LittleEndian.AppendUint32(make([]byte, 0, signatureLen), 1)
	sig = append(sig, sum...)
	sig = binary.LittleEndian.AppendUint32(sig, s.sendSeq)
	s.sendSeq++
	return sig
}

// verify is GSS_VerifyMIC for the receiving direction.
func (s *sealSession) verify(msg, signature []byte) error {
	if len(signature) != signatureLen || binary.LittleEndian.Uint32(signature[0:4]) != 1 {
		return fmt.Errorf("%w: malformed signature", errBadSignature)
	}
	want := checksum(s.recvSign, s.recvSeq, msg)
	if s.flags&flagKeyExch != 0 {
		s.recvSeal.XORKeyStream(want, want)
	}
	seq := binary.LittleEndian.Uint32(signature[12:16])
	ok := hmac.Equal(want, signature[4:12]) && seq == s.recvSeq
	s.recvSeq++
	if !ok {
		return errBadSignature
	}
	return nil
}
