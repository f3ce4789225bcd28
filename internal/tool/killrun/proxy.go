package killrun

import (
	"io"
	"net"
	"sync"
	"time"
)

// slowAnswers is a TCP proxy in front of one abmeshd's OTLP port that
// passes requests on at once and holds every answer for delay before
// passing it back. When abmeshd's side of a connection ends (it was
// killed), the answers still held are dropped and the exporter's
// connection is closed: as when a node dies, what it acknowledged but
// the network had not yet delivered is lost, and the exporter re-sends
// those requests. It widens the window in which a request is in the
// replica's log but not yet acknowledged, where a re-sent request may be
// counted twice.
type slowAnswers struct {
	lis    net.Listener
	target string
	delay  time.Duration
	wg     sync.WaitGroup

	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

// newSlowAnswers listens on a free loopback port for connections to
// target.
func newSlowAnswers(target string, delay time.Duration) (*slowAnswers, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &slowAnswers{lis: lis, target: target, delay: delay, conns: map[net.Conn]struct{}{}}
	p.wg.Go(p.accept)
	return p, nil
}

// Addr is the proxy's address.
func (p *slowAnswers) Addr() string { return p.lis.Addr().String() }

func (p *slowAnswers) accept() {
	for {
		c, err := p.lis.Accept()
		if err != nil {
			return
		}
		p.wg.Go(func() { p.serve(c) })
	}
}

// track adds c to the open connections (false once the proxy is closed,
// when c is closed instead).
func (p *slowAnswers) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conns == nil {
		c.Close()
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *slowAnswers) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	c.Close()
}

// serve proxies one exporter connection.
func (p *slowAnswers) serve(client net.Conn) {
	if !p.track(client) {
		return
	}
	defer p.untrack(client)
	server, err := net.DialTimeout("tcp", p.target, time.Second)
	if err != nil {
		return // abmeshd is down: the exporter sees the connection fail
	}
	if !p.track(server) {
		return
	}
	defer p.untrack(server)
	go func() {
		io.Copy(server, client)
		server.Close()
	}()
	type chunk struct {
		at   time.Time
		data []byte
	}
	held := make(chan chunk, 1024)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for c := range held {
			time.Sleep(time.Until(c.at))
			if _, err := client.Write(c.data); err != nil {
				return
			}
		}
	}()
	buf := make([]byte, 64<<10)
	for {
		n, err := server.Read(buf)
		if n > 0 {
			held <- chunk{time.Now().Add(p.delay), append([]byte(nil), buf[:n]...)}
		}
		if err != nil {
			client.Close() // drop what is held: abmeshd's answers die with it
			close(held)
			<-done
			return
		}
	}
}

// close stops the proxy and closes every connection.
func (p *slowAnswers) close() {
	p.lis.Close()
	p.mu.Lock()
	conns := p.conns
	p.conns = nil
	p.mu.Unlock()
	for c := range conns {
		c.Close()
	}
	p.wg.Wait()
}
