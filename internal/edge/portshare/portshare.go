// Package portshare lets two servers share one TCP port: it splits a
// listener's connections by their first bytes into those that open with
// the HTTP/2 client preface (gRPC) and all others (HTTP/1.x). abmeshd's
// gRPC port uses it to also answer Connect-protocol clients, such as
// OpenFeature's Go flagd provider, which speak HTTP/1.1.
package portshare

import (
	"bytes"
	"errors"
	"net"
	"sync"
	"time"
)

// preface is the HTTP/2 client connection preface (RFC 9113 §3.4).
var preface = []byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")

// SniffTimeout bounds how long a new connection may take to send the
// bytes that tell its protocol; a slower one is closed.
var SniffTimeout = 10 * time.Second

// Split returns two listeners over l: h2 accepts the connections that
// start with the HTTP/2 preface, other all the rest. Each sees the whole
// byte stream of its connections, first bytes included. Closing either
// only stops its own Accept; closing l (the caller keeps it) stops both.
func Split(l net.Listener) (h2, other net.Listener) {
	a, b := newSub(l), newSub(l)
	go dispatch(l, a, b)
	return a, b
}

// dispatch accepts from l until it is closed and hands each connection,
// once sniffed, to h2 or other. Other Accept errors (out of file
// descriptors, say) are retried after a pause, as net/http does.
func dispatch(l net.Listener, h2, other *sub) {
	pause := time.Duration(0)
	for {
		c, err := l.Accept()
		if errors.Is(err, net.ErrClosed) {
			h2.fail(err)
			other.fail(err)
			return
		}
		if err != nil {
			pause = min(max(2*pause, 5*time.Millisecond), time.Second)
			time.Sleep(pause)
			continue
		}
		pause = 0
		go func() {
			isH2, conn, err := sniff(c)
			if err != nil {
				c.Close()
				return
			}
			if isH2 {
				h2.deliver(conn)
			} else {
				other.deliver(conn)
			}
		}()
	}
}

// sniff reads from c until its first bytes either are the HTTP/2 preface
// or differ from it, and returns c with those bytes put back in front.
func sniff(c net.Conn) (bool, net.Conn, error) {
	if err := c.SetReadDeadline(time.Now().Add(SniffTimeout)); err != nil {
		return false, nil, err
	}
	buf := make([]byte, 0, len(preface))
	for len(buf) < len(preface) && bytes.HasPrefix(preface, buf) {
		n, err := c.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err != nil { // closed or silent before telling its protocol
			return false, nil, err
		}
	}
	if err := c.SetReadDeadline(time.Time{}); err != nil {
		return false, nil, err
	}
	return bytes.Equal(buf, preface), &prefixed{Conn: c, head: buf}, nil
}

// prefixed is a connection whose first bytes were already read.
type prefixed struct {
	net.Conn
	head []byte
}

func (p *prefixed) Read(b []byte) (int, error) {
	if len(p.head) > 0 {
		n := copy(b, p.head)
		p.head = p.head[n:]
		return n, nil
	}
	return p.Conn.Read(b)
}

// sub is one side of a Split.
type sub struct {
	parent net.Listener
	conns  chan net.Conn
	done   chan struct{}
	once   sync.Once
	mu     sync.Mutex
	err    error // the parent's Accept error, once it failed
}

func newSub(parent net.Listener) *sub {
	return &sub{parent: parent, conns: make(chan net.Conn), done: make(chan struct{})}
}

// deliver hands c to the sub's Accept, or closes it if the sub is closed.
func (s *sub) deliver(c net.Conn) {
	select {
	case s.conns <- c:
	case <-s.done:
		c.Close()
	}
}

// fail ends the sub's Accept with the parent's error.
func (s *sub) fail(err error) {
	s.mu.Lock()
	s.err = err
	s.mu.Unlock()
	s.Close()
}

// Accept returns the next connection of this side.
func (s *sub) Accept() (net.Conn, error) {
	select {
	case c := <-s.conns:
		return c, nil
	case <-s.done:
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.err != nil {
			return nil, s.err
		}
		return nil, net.ErrClosed
	}
}

// Close stops this side's Accept; connections arriving for it later are
// closed.
func (s *sub) Close() error {
	s.once.Do(func() { close(s.done) })
	return nil
}

// Addr is the shared listener's address.
func (s *sub) Addr() net.Addr { return s.parent.Addr() }

// NetConn returns the connection p reads from once its head is consumed
// (as tls.Conn's NetConn does), so that a TLS connection underneath can
// be found.
func (p *prefixed) NetConn() net.Conn { return p.Conn }
