package topic

import (
	"errors"
	"strings"
	"testing"
)

func TestValidName(t *testing.T) {
	tests := []struct {
		name  string
		topic string
		want  bool
	}{
		{"MQTT-4.7.1-1 no + in name", "a/+/b", false},
		{"MQTT-4.7.1-1 no # in name", "a/#", false},
		{"MQTT-4.7.1-1 no + inside a level", "a+b", false},
		{"MQTT-4.7.3-1 empty name", "", false},
		{"MQTT-4.7.3-2 no U+0000", "a\x00b", false},
		{"MQTT-4.7.3-3 max length", strings.Repeat("a", MaxLen), true},
		{"MQTT-4.7.3-3 over max length", strings.Repeat("a", MaxLen+1), false},
		{"invalid UTF-8", "a/\xff", false},
		{"UTF-16 surrogate encoded in UTF-8", "a/\xed\xa0\x80", false},
		{"single slash", "/", true},
		{"empty levels", "a//b/", true},
		{"dollar topic", "$SYS/broker", true},
		{"unicode", "größe/℃", true},
		{"space is significant", " a ", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ValidName([]byte(tt.topic)); got != tt.want {
				t.Errorf("ValidName(%q) = %v, want %v", tt.topic, got, tt.want)
			}
		})
	}
}

func TestValidFilter(t *testing.T) {
	tests := []struct {
		name   string
		filter string
		want   bool
	}{
		{"MQTT-4.7.1-2 # alone", "#", true},
		{"MQTT-4.7.1-2 # after separator", "sport/tennis/#", true},
		{"MQTT-4.7.1-2 # not last", "sport/#/ranking", false},
		{"MQTT-4.7.1-2 # inside a level", "sport/tennis#", false},
		{"MQTT-4.7.1-2 ## level", "sport/##", false},
		{"MQTT-4.7.1-3 + alone", "+", true},
		{"MQTT-4.7.1-3 + levels", "+/tennis/+", true},
		{"MQTT-4.7.1-3 + with #", "+/#", true},
		{"MQTT-4.7.1-3 + after empty level", "/+", true},
		{"MQTT-4.7.1-3 + inside a level", "sport+", false},
		{"MQTT-4.7.1-3 + prefix of a level", "sport/+x", false},
		{"MQTT-4.7.1-3 ++ level", "a/++/b", false},
		{"MQTT-4.7.3-1 empty filter", "", false},
		{"MQTT-4.7.3-2 no U+0000", "a/\x00", false},
		{"MQTT-4.7.3-3 over max length", strings.Repeat("a", MaxLen+1), false},
		{"invalid UTF-8", "\xc3", false},
		{"empty levels", "//", true},
		{"dollar filter", "$SYS/#", true},
		{"MQTT-4.8.2-1 shared", "$share/g/a/+", true},
		{"MQTT-4.8.2-1 shared #", "$share/g/#", true},
		{"MQTT-4.8.2-1 empty share name", "$share//a", false},
		{"MQTT-4.8.2-2 share name with +", "$share/g+/a", false},
		{"MQTT-4.8.2-2 share name with #", "$share/#/a", false},
		{"MQTT-4.8.2-2 no filter after share name", "$share/g/", false},
		{"MQTT-4.8.2-2 no / after share name", "$share/g", false},
		{"shared with invalid inner filter", "$share/g/a#", false},
		{"$share alone is a plain filter", "$share", true},
		{"$share+ is invalid", "$share+", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ValidFilter([]byte(tt.filter)); got != tt.want {
				t.Errorf("ValidFilter(%q) = %v, want %v", tt.filter, got, tt.want)
			}
		})
	}
}

func TestParseShared(t *testing.T) {
	tests := []struct {
		name          string
		in            string
		group, filter string
		ok, wantErr   bool
	}{
		{"not shared", "a/b", "", "", false, false},
		{"not shared prefix without slash", "$share", "", "", false, false},
		{"MQTT-4.8.2-1 simple", "$share/g1/a/b", "g1", "a/b", true, false},
		{"MQTT-4.8.2-1 wildcard filter", "$share/g/+/#", "g", "+/#", true, false},
		{"MQTT-4.8.2-1 filter with leading slash", "$share/g//a", "g", "/a", true, false},
		{"MQTT-4.8.2-1 empty group", "$share//a", "", "", true, true},
		{"MQTT-4.8.2-2 group with +", "$share/a+/x", "", "", true, true},
		{"MQTT-4.8.2-2 group with #", "$share/#/x", "", "", true, true},
		{"MQTT-4.8.2-2 missing slash", "$share/g", "", "", true, true},
		{"MQTT-4.8.2-2 missing filter", "$share/g/", "", "", true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, f, ok, err := ParseShared(tt.in)
			if g != tt.group || f != tt.filter || ok != tt.ok || (err != nil) != tt.wantErr {
				t.Fatalf("ParseShared(%q) = %q, %q, %v, %v; want %q, %q, %v, err=%v",
					tt.in, g, f, ok, err, tt.group, tt.filter, tt.ok, tt.wantErr)
			}
			if err != nil && !errors.Is(err, ErrInvalidShared) {
				t.Errorf("error %v does not wrap ErrInvalidShared", err)
			}
		})
	}
}

// matchCases are shared by the reference Match, Tree.Match and
// Retained.Match tests; most come from the examples in MQTT 3.1.1 4.7.
var matchCases = []struct {
	name          string
	filter, topic string
	want          bool
}{
	{"MQTT-4.7.1-2 # matches parent level", "sport/tennis/player1/#", "sport/tennis/player1", true},
	{"MQTT-4.7.1-2 # matches one level", "sport/tennis/player1/#", "sport/tennis/player1/ranking", true},
	{"MQTT-4.7.1-2 # matches many levels", "sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", true},
	{"MQTT-4.7.1-2 sport/# matches sport", "sport/#", "sport", true},
	{"MQTT-4.7.1-2 # matches all", "#", "a/b/c", true},
	{"MQTT-4.7.1-2 # matches slash", "#", "/", true},
	{"MQTT-4.7.1-2 # does not match sibling", "sport/tennis/#", "sport/golf", false},
	{"MQTT-4.7.1-3 + matches one level", "sport/tennis/+", "sport/tennis/player1", true},
	{"MQTT-4.7.1-3 + does not match two levels", "sport/tennis/+", "sport/tennis/player1/ranking", false},
	{"MQTT-4.7.1-3 + does not match parent", "sport/+", "sport", false},
	{"MQTT-4.7.1-3 + matches empty level", "sport/+", "sport/", true},
	{"MQTT-4.7.1-3 +/+ matches /finance", "+/+", "/finance", true},
	{"MQTT-4.7.1-3 /+ matches /finance", "/+", "/finance", true},
	{"MQTT-4.7.1-3 + does not match /finance", "+", "/finance", false},
	{"MQTT-4.7.1-3 + in the middle", "a/+/c", "a/b/c", true},
	{"MQTT-4.7.1-3 + with #", "+/tennis/#", "sport/tennis/x/y", true},
	{"MQTT-4.7.2-1 # does not match $SYS", "#", "$SYS/monitor/Clients", false},
	{"MQTT-4.7.2-1 + does not match $SYS", "+/monitor/Clients", "$SYS/monitor/Clients", false},
	{"MQTT-4.7.2-1 +/# does not match $ topic", "+/#", "$foo", false},
	{"MQTT-4.7.2-1 $SYS/# matches", "$SYS/#", "$SYS/monitor/Clients", true},
	{"MQTT-4.7.2-1 $SYS/# matches $SYS", "$SYS/#", "$SYS", true},
	{"MQTT-4.7.2-1 $SYS/monitor/+ matches", "$SYS/monitor/+", "$SYS/monitor/Clients", true},
	{"MQTT-4.7.2-1 $ only at first level", "a/+", "a/$b", true},
	{"MQTT-4.7.2-1 # below $ level", "a/#", "a/$b/c", true},
	{"MQTT-4.7.3-1 empty name matches nothing", "#", "", false},
	{"MQTT-4.7.3-4 case sensitive", "ACCOUNTS", "Accounts", false},
	{"MQTT-4.7.3-4 no normalisation of spaces", "Accounts payable", "Accounts payable", true},
	{"MQTT-4.7.3-4 no trimming", "a", "a ", false},
	{"MQTT-4.7.3-4 trailing slash is a level", "a", "a/", false},
	{"MQTT-4.7.3-4 leading slash is a level", "/a", "a", false},
	{"empty levels match exactly", "a//b", "a//b", true},
	{"+ matches an empty middle level", "a/+/b", "a//b", true},
	{"exact", "a/b/c", "a/b/c", true},
	{"prefix is not a match", "a/b", "a/b/c", false},
	{"longer filter", "a/b/c/d", "a/b/c", false},
	{"shared filter matches as its inner filter", "$share/g/a/+", "a/b", true},
	{"malformed shared filter matches nothing", "$share//a", "a", false},
	{"invalid filter matches nothing", "a#", "a#", false},
}

func TestMatch(t *testing.T) {
	for _, tt := range matchCases {
		t.Run(tt.name, func(t *testing.T) {
			if got := Match(tt.filter, tt.topic); got != tt.want {
				t.Errorf("Match(%q, %q) = %v, want %v", tt.filter, tt.topic, got, tt.want)
			}
		})
	}
}
