package chtest

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"
)

func TestServer(t *testing.T) {
	s := Start(t, Options{Password: "p&<w>"})
	db := s.Database(t)
	s.Exec(t, "CREATE TABLE "+db+".t (n UInt32, s String) ENGINE = TinyLog")
	s.Exec(t, "INSERT INTO "+db+".t VALUES (1, 'a'), (2, 'b')")
	if got := s.Exec(t, "SELECT n, s FROM "+db+".t ORDER BY n FORMAT TSV"); got != "1\ta\n2\tb\n" {
		t.Fatalf("rows = %q", got)
	}
	before := s.CPUTime()
	s.Exec(t, "SELECT count() FROM numbers(20000000) WHERE NOT ignore(sipHash64(number))")
	if used := s.CPUTime() - before; used <= 0 {
		t.Fatalf("CPUTime did not grow over a busy query (%s)", used)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := s.Query(ctx, "SELECT nope FROM "+db+".t"); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("bad query error = %v, want the server's exception", err)
	}

	t.Run("pause and resume", func(t *testing.T) {
		if err := s.Pause(); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		_, err := s.Query(ctx, "SELECT 1")
		cancel()
		if err == nil {
			t.Fatal("a paused server answered")
		}
		if err := s.Resume(); err != nil {
			t.Fatal(err)
		}
		if got := s.Exec(t, "SELECT 1"); got != "1\n" {
			t.Fatalf("SELECT 1 = %q", got)
		}
	})

	t.Run("stop and restart keep data and ports", func(t *testing.T) {
		addr := s.Addr()
		s.Stop()
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			t.Fatal("a stopped server accepts connections")
		}
		if err := s.Restart(); err != nil {
			t.Fatal(err)
		}
		if s.Addr() != addr {
			t.Fatalf("address changed: %s, was %s", s.Addr(), addr)
		}
		if got := s.Exec(t, "SELECT count() FROM "+db+".t"); got != "2\n" {
			t.Fatalf("count after restart = %q", got)
		}
	})
}

func TestMissingBinary(t *testing.T) {
	t.Setenv(EnvBinary, "/nonexistent/clickhouse-server")
	_, err := New(Options{})
	if err == nil || !strings.Contains(err.Error(), EnvBinary) {
		t.Fatalf("New with a missing binary = %v, want an error naming %s", err, EnvBinary)
	}
	if !strings.Contains(ErrNoServer.Error(), "apt-get install -y clickhouse-server") {
		t.Fatalf("ErrNoServer = %q, want it to say what to install", ErrNoServer)
	}
}
