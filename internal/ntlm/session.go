package ntlm

import (
	"crypto/rc4"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"sync"
)

// SignatureLen is the length of an NTLMSSP_MESSAGE_SIGNATURE.
const SignatureLen = 16

// Role is the local end of a Session.
type Role int

// Roles: a client seals with the client-to-server keys and unseals with the
// server-to-client keys; a server the other way round.
const (
	RoleClient Role = iota
	RoleServer
)

// Session is NTLMv2 session security with extended session security
// (MS-NLMP 3.4): separate sign and seal keys per direction, RC4 handles kept
// for the life of the context, and a sequence number per direction. It is safe
// for concurrent use; messages are processed in call order.
//
// After a failed Unseal or Verify the session is broken: the RC4 stream can no
// longer be trusted to be in step with the peer, so every later Unseal fails
// and the caller must authenticate again.
type Session struct {
	mu       sync.Mutex
	flags    Flags
	sendSign []byte
	recvSign []byte
	sendSeal *rc4.Cipher
	recvSeal *rc4.Cipher
	sendSeq  uint32
	recvSeq  uint32
	broken   error
}

// NewSession derives the session keys from the exported session key and the
// negotiated flags. Extended session security is required.
func NewSession(exportedSessionKey []byte, flags Flags, role Role) (*Session, error) {
	if len(exportedSessionKey) != 16 {
		return nil, fmt.Errorf("ntlm: exported session key of %d bytes, want 16", len(exportedSessionKey))
	}
	if !flags.Has(FlagExtendedSessionSecurity) {
		return nil, fmt.Errorf("%w: session security without EXTENDED_SESSIONSECURITY", ErrUnsupported)
	}
	send, recv := ClientToServer, ServerToClient
	if role == RoleServer {
		send, recv = recv, send
	}
	s := &Session{
		flags:    flags,
		sendSign: SignKey(exportedSessionKey, send),
		recvSign: SignKey(exportedSessionKey, recv),
	}
	var err error
	if s.sendSeal, err = rc4.NewCipher(SealKey(exportedSessionKey, flags, send)); err != nil {
		return nil, fmt.Errorf("ntlm: seal key: %w", err)
	}
	if s.recvSeal, err = rc4.NewCipher(SealKey(exportedSessionKey, flags, recv)); err != nil {
		return nil, fmt.Errorf("ntlm: seal key: %w", err)
	}
	return s, nil
}

// Flags returns the negotiated flags the session was built with.
func (s *Session) Flags() Flags { return s.flags }

// mac computes the 16-byte signature for msg at seq (MS-NLMP 3.4.4.2), using
// (and advancing) the given RC4 handle for the checksum when KEY_EXCH is set.
func (s *Session) mac(signKey []byte, handle *rc4.Cipher, seq uint32, msg []byte) []byte {
	var seqb [4]byte
	binary.LittleEndian.PutUint32(seqb[:], seq)
	checksum := hmacMD5(signKey, seqb[:], msg)[:8]
	if s.flags.Has(FlagKeyExch) {
		handle.XORKeyStream(checksum, checksum)
	}
	sig := make([]byte, SignatureLen)
	binary.LittleEndian.PutUint32(sig, 1)
	copy(sig[4:12], checksum)
	copy(sig[12:], seqb[:])
	return sig
}

// Seal encrypts msg for the peer and returns its signature and the sealed bytes
// (MS-NLMP 3.4.3), advancing the send sequence number.
func (s *Session) Seal(msg []byte) (sig, sealed []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sealed = make([]byte, len(msg))
	s.sendSeal.XORKeyStream(sealed, msg)
	sig = s.mac(s.sendSign, s.sendSeal, s.sendSeq, msg)
	s.sendSeq++
	return sig, sealed
}

// Sign returns the signature of msg without encrypting it (MS-NLMP 3.4.4).
func (s *Session) Sign(msg []byte) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	sig := s.mac(s.sendSign, s.sendSeal, s.sendSeq, msg)
	s.sendSeq++
	return sig
}

// Unseal decrypts a message from the peer and verifies its signature and
// sequence number. Any failure breaks the session.
func (s *Session) Unseal(sig, sealed []byte) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.broken != nil {
		return nil, s.broken
	}
	if err := checkSignatureShape(sig); err != nil {
		s.broken = err
		return nil, err
	}
	msg := make([]byte, len(sealed))
	s.recvSeal.XORKeyStream(msg, sealed)
	if err := s.verifyLocked(sig, msg); err != nil {
		return nil, err
	}
	return msg, nil
}

// Verify checks the signature of an unsealed message from the peer.
func (s *Session) Verify(msg, sig []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.broken != nil {
		return s.broken
	}
	if err := checkSignatureShape(sig); err != nil {
		s.broken = err
		return err
	}
	return s.verifyLocked(sig, msg)
}

func (s *Session) verifyLocked(sig, msg []byte) error {
	want := s.mac(s.recvSign, s.recvSeal, s.recvSeq, msg)
	if got := binary.LittleEndian.Uint32(sig[12:]); got != s.recvSeq {
		s.broken = fmt.Errorf("%w: sequence number %d, expected %d", ErrSignature, got, s.recvSeq)
		return s.broken
	}
	if subtle.ConstantTimeCompare(want, sig) != 1 {
		s.broken = fmt.Errorf("%w: checksum does not verify at sequence number %d", ErrSignature, s.recvSeq)
		return s.broken
	}
	s.recvSeq++
	return nil
}

func checkSignatureShape(sig []byte) error {
	if len(sig) != SignatureLen {
		return fmt.Errorf("%w: signature of %d bytes, want %d", ErrSignature, len(sig), SignatureLen)
	}
	if v := binary.LittleEndian.Uint32(sig); v != 1 {
		return fmt.Errorf("%w: signature version %d, want 1", ErrSignature, v)
	}
	return nil
}
