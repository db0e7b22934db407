// Package testutil holds helpers shared by tests of several packages. It is
// imported only from _test.go files.
package testutil

import (
	"bytes"
	"strings"
	"sync"
)

// Buffer collects output written from several goroutines (a logger, a child
// process's pipes) while a test reads it.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns everything written so far.
func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Tail returns the last n lines written.
func (s *Buffer) Tail(n int) string {
	lines := strings.Split(strings.TrimSpace(s.String()), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
