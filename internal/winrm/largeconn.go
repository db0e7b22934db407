package winrm

import (
	"context"
	"crypto/tls"
	"net"
	"net/http/httptrace"
	"sync"
	"time"

	"github.com/svcwatch/svcwatch/internal/winrm/ntlmtransport"
)

// Kerberos, certificate and Basic go through net/http, whose TLS connections
// keep read buffers sized for the largest records they have seen: about
// 30 KB a host after a full inventory. As ntlmtransport does for NTLM, a
// connection that carried a large reply is closed once it has sat unused for
// largeIdle, instead of for winrm.keep_alive.
const largeReply = ntlmtransport.DefaultLargeResponse

var largeIdle = ntlmtransport.DefaultLargeIdleTimeout // a variable for tests

// trackedConn is a host connection under net/http (and its TLS). The
// request using it is marked by begin and end (see trackConn).
type trackedConn struct {
	net.Conn
	idle time.Duration

	mu    sync.Mutex
	users int // requests between begin and end (net/http may hand the connection on before end)
	large bool
	timer *time.Timer
}

// trackingDial wraps dial's connections in trackedConns.
func trackingDial(dial func(ctx context.Context, network, addr string) (net.Conn, error), idle time.Duration) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		nc, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &trackedConn{Conn: nc, idle: idle}, nil
	}
}

func (c *trackedConn) begin() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.users++
	if c.timer != nil {
		c.timer.Stop()
	}
}

// end marks the request done after a reply of n bytes; a connection that
// ever carried a large reply is closed after idle unused.
func (c *trackedConn) end(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.users = max(c.users-1, 0)
	c.large = c.large || n > largeReply
	if !c.large || c.users > 0 {
		return
	}
	if c.timer == nil {
		c.timer = time.AfterFunc(c.idle, c.closeIfIdle)
		return
	}
	c.timer.Reset(c.idle)
}

// closeIfIdle closes the socket unless a request took the connection
// meanwhile; net/http notices and drops it from its pool.
func (c *trackedConn) closeIfIdle() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.users == 0 {
		_ = c.Conn.Close()
	}
}

// trackConn returns ctx with a trace that marks the connection a request
// gets as busy, and done, which the caller calls with the reply size once
// the reply is read (or 0 on failure).
func trackConn(ctx context.Context) (context.Context, func(n int)) {
	var (
		mu  sync.Mutex
		cur *trackedConn
	)
	trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) {
		tc := trackedOf(info.Conn)
		mu.Lock()
		prev := cur
		cur = tc
		mu.Unlock()
		if prev != nil && prev != tc {
			prev.end(0) // a retry on another connection
		}
		if tc != nil {
			tc.begin()
		}
	}}
	done := func(n int) {
		mu.Lock()
		tc := cur
		cur = nil
		mu.Unlock()
		if tc != nil {
			tc.end(n)
		}
	}
	return httptrace.WithClientTrace(ctx, trace), done
}

func trackedOf(c net.Conn) *trackedConn {
	switch c := c.(type) {
	case *trackedConn:
		return c
	case *tls.Conn:
		tc, _ := c.NetConn().(*trackedConn)
		return tc
	}
	return nil
}
