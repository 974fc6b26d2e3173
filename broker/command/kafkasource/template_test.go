package kafkasource

import (
	"strings"
	"testing"
	"time"
)

func TestCompileTemplate(t *testing.T) {
	tests := []struct {
		name    string
		src     string
		wantErr string // "" = compiles
	}{
		{name: "literal", src: "plant/cmd"},
		{name: "key", src: "{{key}}"},
		{name: "spaces", src: "a/{{ header.line }}/{{ json.m.id }}/{{ topic }}-{{ partition }}"},
		{name: "unclosed", src: "a/{{ key", wantErr: "unclosed {{ at column 3"},
		{name: "empty", src: "a/{{  }}", wantErr: "empty {{ }} at column 3"},
		{name: "unknown", src: "{{ value }}", wantErr: "unknown placeholder {{value}}"},
		{name: "header without name", src: "{{ header. }}", wantErr: "no header name"},
		{name: "empty json segment", src: "{{ json.a..b }}", wantErr: "empty segment"},
		{name: "stray close", src: "a}}b", wantErr: "}} without {{ at column 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := compileTemplate(tt.src)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("compileTemplate(%q): %v", tt.src, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("compileTemplate(%q) = %v, want error containing %q", tt.src, err, tt.wantErr)
			}
		})
	}
}

func TestRenderTemplate(t *testing.T) {
	rec := func() *recordView {
		return &recordView{
			topic: "commands", partition: 2, key: []byte("press-7"),
			headers: []header{{"line", []byte("L1")}, {"line", []byte("L2")}, {"empty", nil}},
			value:   []byte(`{"machine":"m-9","n":42,"ok":true,"site":{"name":"north","lines":["a","b"]},"nil":null,"s":""}`),
		}
	}
	tests := []struct {
		name    string
		src     string
		rec     *recordView
		want    string
		wantErr string
	}{
		{name: "literal", src: "x/y", want: "x/y"},
		{name: "key", src: "dev/{{ key }}/cmd", want: "dev/press-7/cmd"},
		{name: "topic and partition", src: "{{topic}}-{{partition}}", want: "commands-2"},
		{name: "last header wins", src: "{{ header.line }}", want: "L2"},
		{name: "json string", src: "{{ json.machine }}", want: "m-9"},
		{name: "json number", src: "n{{ json.n }}", want: "n42"},
		{name: "json bool", src: "{{ json.ok }}", want: "true"},
		{name: "json nested", src: "{{ json.site.name }}/{{ json.site.lines.1 }}", want: "north/b"},
		{name: "missing header", src: "{{ header.device }}", wantErr: `no header "device"`},
		{name: "empty header", src: "{{ header.empty }}", wantErr: "is empty"},
		{name: "empty key", src: "{{ key }}", rec: &recordView{}, wantErr: "{{key}} is empty"},
		{name: "missing field", src: "{{ json.device }}", wantErr: `no field "device"`},
		{name: "missing nested field", src: "{{ json.site.zone }}", wantErr: `no field "zone" in site`},
		{name: "index out of range", src: "{{ json.site.lines.5 }}", wantErr: "out of range"},
		{name: "not an index", src: "{{ json.site.lines.x }}", wantErr: "not an index"},
		{name: "into a scalar", src: "{{ json.n.x }}", wantErr: "not an object or array"},
		{name: "object", src: "{{ json.site }}", wantErr: "object or array"},
		{name: "null", src: "{{ json.nil }}", wantErr: "is null"},
		{name: "empty string", src: "{{ json.s }}", wantErr: "is empty"},
		{name: "value not JSON", src: "{{ json.a }}", rec: &recordView{value: []byte("stop")}, wantErr: "not a JSON object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tm, err := compileTemplate(tt.src)
			if err != nil {
				t.Fatal(err)
			}
			r := tt.rec
			if r == nil {
				r = rec()
			}
			got, err := tm.render(r)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("render(%q) = %q, %v; want error containing %q", tt.src, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("render(%q) = %q, %v; want %q", tt.src, got, err, tt.want)
			}
		})
	}
}

func TestDeadline(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		ttl  time.Duration
		ts   time.Time
		want time.Time
	}{
		{name: "service default", ttl: 0, ts: now.Add(-time.Hour)},
		{name: "no timestamp", ttl: time.Minute},
		{name: "fresh", ttl: time.Minute, ts: now, want: now.Add(time.Minute)},
		{name: "future timestamp", ttl: time.Minute, ts: now.Add(time.Hour), want: now.Add(time.Minute)},
		{name: "partly spent", ttl: time.Minute, ts: now.Add(-20 * time.Second), want: now.Add(40 * time.Second)},
		{name: "spent", ttl: time.Minute, ts: now.Add(-time.Hour), want: now.Add(-59 * time.Minute)},
		{name: "sub-second left", ttl: time.Second, ts: now.Add(-999 * time.Millisecond), want: now.Add(time.Millisecond)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := deadline(tt.ttl, tt.ts, now); !got.Equal(tt.want) {
				t.Fatalf("deadline = %s, want %s", got, tt.want)
			}
		})
	}
}
