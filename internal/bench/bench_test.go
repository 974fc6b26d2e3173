package bench

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/broker/packet"
)

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name    string
		mode    string
		args    []string
		wantErr string
		check   func(t *testing.T, c *config)
	}{
		{
			name: "fanin defaults", mode: "fanin",
			check: func(t *testing.T, c *config) {
				if c.pubs != 50 || c.subs != 1 || c.addr != "127.0.0.1:1883" || c.version != packet.Version311 ||
					c.topic != "bench/%i" || c.filter != "bench/#" || c.size != 256 || c.duration != 10*time.Second {
					t.Errorf("unexpected defaults %+v", c)
				}
			},
		},
		{
			name: "fanout defaults", mode: "fanout",
			check: func(t *testing.T, c *config) {
				if c.pubs != 1 || c.subs != 100 {
					t.Errorf("pubs, subs = %d, %d, want 1, 100", c.pubs, c.subs)
				}
			},
		},
		{
			name: "url with credentials overrides host and port", mode: "pub",
			args: []string{"-host", "example", "-url", "mqtt://u:p@127.0.0.2:1999", "-v", "5", "-qos", "2"},
			check: func(t *testing.T, c *config) {
				if c.addr != "127.0.0.2:1999" || c.username != "u" || c.password != "p" || c.version != packet.Version5 || c.qos != 2 {
					t.Errorf("got addr %s user %s pass %s version %d qos %d", c.addr, c.username, c.password, c.version, c.qos)
				}
			},
		},
		{
			name: "sub mode takes the filter from -topic", mode: "sub",
			args: []string{"-topic", "a/+/c", "-clients", "3"},
			check: func(t *testing.T, c *config) {
				if c.filter != "a/+/c" || c.clients != 3 {
					t.Errorf("filter %q clients %d", c.filter, c.clients)
				}
			},
		},
		{name: "unknown mode", mode: "flood", wantErr: "unknown mode"},
		{name: "bad qos", mode: "pub", args: []string{"-qos", "3"}, wantErr: "-qos"},
		{name: "bad version", mode: "pub", args: []string{"-v", "4.5"}, wantErr: "invalid value"},
		{name: "bad version number", mode: "pub", args: []string{"-v", "6"}, wantErr: "-v: 6"},
		{name: "payload too small for fanin", mode: "fanin", args: []string{"-size", "10"}, wantErr: "-size"},
		{name: "window out of range", mode: "pub", args: []string{"-inflight", "0"}, wantErr: "-inflight"},
		{name: "stray argument", mode: "conn", args: []string{"extra"}, wantErr: "unexpected argument"},
		{name: "bad url scheme", mode: "pub", args: []string{"-url", "ws://x:1"}, wantErr: "scheme"},
		{name: "all problems at once", mode: "pub", args: []string{"-qos", "5", "-duration", "0s"}, wantErr: "-qos: 5 is not 0, 1 or 2; -duration"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			c, err := parseFlags(tt.mode, tt.args, &stderr)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseFlags: %v", err)
			}
			tt.check(t, c)
		})
	}
}

func TestMainUsage(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no mode", nil, 2, "Usage: sluice bench"},
		{"help", []string{"-h"}, 0, "Modes:"},
		{"mode help", []string{"fanin", "-h"}, 0, "-inflight"},
		{"bad flag", []string{"pub", "-nope"}, 2, "flag provided but not defined"},
		{"nothing listening", []string{"pub", "-port", "1", "-duration", "1s", "-quiet"}, 1, "connecting to 127.0.0.1:1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := Main(tt.args, &stdout, &stderr); code != tt.code {
				t.Errorf("exit code %d, want %d (stderr %q)", code, tt.code, stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.want) {
				t.Errorf("stderr %q does not contain %q", stderr.String(), tt.want)
			}
		})
	}
}

func TestCount(t *testing.T) {
	for in, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", -1000: "-1,000"} {
		if got := count(in); got != want {
			t.Errorf("count(%d) = %q, want %q", in, got, want)
		}
	}
}
