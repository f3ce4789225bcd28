package portshare

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// accept returns l's next connection's first n bytes, failing after 5 s.
func accept(t *testing.T, l net.Listener, n int) string {
	t.Helper()
	type got struct {
		b   []byte
		err error
	}
	ch := make(chan got, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			ch <- got{nil, err}
			return
		}
		defer c.Close()
		b := make([]byte, n)
		_, err = io.ReadFull(c, b)
		ch <- got{b, err}
	}()
	select {
	case g := <-ch:
		if g.err != nil {
			t.Fatalf("accept: %v", g.err)
		}
		return string(g.b)
	case <-time.After(5 * time.Second):
		t.Fatal("no connection in 5 s")
	}
	return ""
}

func send(t *testing.T, addr, s string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := io.WriteString(c, s); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestSplit: connections opening with the HTTP/2 preface reach h2, the
// others (HTTP/1.1, a preface that diverges late) reach other, each with
// every byte it sent; closing the parent ends both Accepts with
// net.ErrClosed.
func TestSplit(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h2, other := Split(l)
	grpcStart := string(preface) + "\x00\x00\x12\x04"
	send(t, l.Addr().String(), grpcStart)
	if got := accept(t, h2, len(grpcStart)); got != grpcStart {
		t.Errorf("h2 got %q", got)
	}
	for _, req := range []string{"POST /flagd.evaluation.v1.Service/ResolveString HTTP/1.1\r\n", "PRI * HTTP/1.1\r\nHost: x\r\n\r\n"} {
		send(t, l.Addr().String(), req)
		if got := accept(t, other, len(req)); got != req {
			t.Errorf("other got %q, want %q", got, req)
		}
	}
	if h2.Addr().String() != l.Addr().String() || other.Addr().String() != l.Addr().String() {
		t.Errorf("addresses %v %v, want %v", h2.Addr(), other.Addr(), l.Addr())
	}
	l.Close()
	for _, s := range []net.Listener{h2, other} {
		if _, err := s.Accept(); !errors.Is(err, net.ErrClosed) {
			t.Errorf("Accept after the parent closed: %v", err)
		}
	}
}

// TestClosedSide: a closed side's Accept returns net.ErrClosed and its
// later connections are closed, while the other side goes on; a client
// that closes before telling its protocol reaches neither.
func TestClosedSide(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	h2, other := Split(l)
	h2.Close()
	if _, err := h2.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("closed side's Accept: %v", err)
	}
	c := send(t, l.Addr().String(), string(preface))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var ne net.Error
	if _, err := c.Read(make([]byte, 1)); err == nil || errors.As(err, &ne) && ne.Timeout() {
		t.Errorf("a connection for the closed side: read %v, want it closed", err)
	}
	short := send(t, l.Addr().String(), "PRI")
	short.Close()
	req := "GET / HTTP/1.1\r\n"
	send(t, l.Addr().String(), req)
	if got := accept(t, other, len(req)); got != req {
		t.Errorf("other got %q", got)
	}
}
